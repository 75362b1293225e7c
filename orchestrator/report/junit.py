"""junit.xml: one test case per result row, for CI test reporters.

`<testsuites>` wraps one `<testsuite name="orch">`; each StepResult is a `<testcase>` with the
service as classname and "<platform> <step>[ <check>]" as name. Failed rows carry `<failure>`,
skipped and up-to-date rows `<skipped>`; the log is attached as `[[ATTACHMENT|path]]` in
`<system-out>`.
ElementTree does the escaping; characters XML 1.0 cannot hold at all are stripped first.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from orchestrator.results import RunReport, StepResult

SUITE_NAME = "orch"

# Everything outside XML 1.0's Char production (C0 controls but tab/LF/CR, surrogates, U+FFFE/F).
_INVALID_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_safe(text: str) -> str:
    """Text without the characters XML 1.0 forbids (escaping of `<&>"` is ElementTree's job)."""
    return _INVALID_XML.sub("", text)


def _seconds(value: float) -> str:
    return f"{value:.3f}"


def case_name(r: StepResult) -> str:
    name = f"{r.platform} {r.step}"
    return f"{name} {r.check}" if r.check else name


def _failure_text(r: StepResult) -> str:
    parts = [p for p in (r.message, r.evidence) if p]
    return "\n\n".join(parts)


def _testcase(suite: ET.Element, r: StepResult) -> None:
    case = ET.SubElement(
        suite,
        "testcase",
        classname=xml_safe(r.service),
        name=xml_safe(case_name(r)),
        time=_seconds(r.duration_s),
    )
    if r.status == "failed":
        failure = ET.SubElement(
            case,
            "failure",
            message=xml_safe(r.message or f"{r.step} failed"),
            type=xml_safe(r.check or r.step),
        )
        failure.text = xml_safe(_failure_text(r)) or None
    elif r.status in ("skipped", "up-to-date"):
        if r.status == "up-to-date":
            message = f"up-to-date: {r.message}" if r.message else "up-to-date"
        else:
            message = r.message or "skipped"
        ET.SubElement(case, "skipped", message=xml_safe(message))
    out: list[str] = []
    if r.log:
        out.append(f"[[ATTACHMENT|{r.log}]]")
    if r.message:
        out.append(r.message)
    if r.digest:
        out.append(f"digest: {r.digest}")
    if r.emulated is not None:
        out.append(f"emulated: {'yes' if r.emulated else 'no'}")
    if out:
        ET.SubElement(case, "system-out").text = xml_safe("\n".join(out))


def to_junit(report: RunReport) -> str:
    results = report.results
    counts = {
        "tests": str(len(results)),
        "failures": str(sum(r.status == "failed" for r in results)),
        "errors": "0",
        "skipped": str(sum(r.status in ("skipped", "up-to-date") for r in results)),
        "time": _seconds(report.duration_s),
    }
    root = ET.Element("testsuites", {"name": SUITE_NAME, **counts})
    suite = ET.SubElement(
        root,
        "testsuite",
        {"name": SUITE_NAME, **counts, "timestamp": xml_safe(report.started_at)},
    )
    properties = ET.SubElement(suite, "properties")
    for key, value in (
        ("project", report.project),
        ("command", report.command),
        ("exit_code", str(report.exit_code)),
    ):
        ET.SubElement(properties, "property", name=key, value=xml_safe(value))
    for r in results:
        _testcase(suite, r)
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"
