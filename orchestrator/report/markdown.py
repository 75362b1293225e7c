"""summary.md: the run for humans in a CI job summary (GitHub's GITHUB_STEP_SUMMARY renders it).

A heading with project, exit code and duration; per service a table of platforms by build/verify/
push (same cell rule as the terminal table); then failures with their message and evidence, the
run's warnings, and which platforms were verified under emulation.
"""

from __future__ import annotations

import re

from orchestrator.report.table import (
    cell_status,
    failure_heading,
    format_duration,
    platform_digest,
    platforms_of,
    services_of,
    short_digest,
)
from orchestrator.results import RunReport, Status, StepResult

EMOJI: dict[str, str] = {
    "passed": "✅",
    "failed": "❌",
    "skipped": "⏭️",
    "up-to-date": "♻️",
}
NO_ROW = "—"
EVIDENCE_LINES = 60

_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|#])")


def _clean(text: str) -> str:
    return _CONTROL.sub("", text)


def md_inline(text: str) -> str:
    """Text safe in a table cell or a paragraph: markdown punctuation escaped, one line."""
    return _MD_SPECIAL.sub(r"\\\1", _clean(text)).replace("\r", "").replace("\n", " ")


def _code_span(text: str) -> str:
    text = _clean(text).replace("\n", " ").replace("|", "\\|")
    return f"`{text}`" if "`" not in text else f"`` {text} ``"


def _fence(text: str) -> str:
    """A fenced block longer than any backtick run inside the text."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def _cell(status: Status | None, suffix: str = "") -> str:
    if status is None:
        return NO_ROW
    return f"{EMOJI[status]} {status}{suffix}"


def _emulated_platforms(report: RunReport, service: str) -> list[str]:
    platforms: list[str] = []
    for r in report.results:
        if r.service == service and r.step == "verify" and r.emulated is True and r.platform not in platforms:
            platforms.append(r.platform)
    return platforms


def _service_section(report: RunReport, service: str) -> list[str]:
    lines = [f"## {md_inline(service)}", ""]
    summary = next((s for s in report.services if s.service == service), None)
    if summary is not None:
        facts = [_code_span(summary.image), _cell(summary.status)]
        if summary.pushed:
            facts.append("pushed")
        if summary.tags:
            facts.append("tags " + ", ".join(_code_span(t) for t in summary.tags))
        if summary.reason:
            facts.append(md_inline(summary.reason))
        if summary.exception:
            facts.append("exception " + _code_span(summary.exception))
        lines += [" · ".join(facts), ""]
    emulated = _emulated_platforms(report, service)
    lines += [
        "| Service | Platform | Build | Verify | Push | Digest |",
        "|---|---|---|---|---|---|",
    ]
    for platform in platforms_of(report, service):
        verify = cell_status(report, service, platform, "verify")
        suffix = " (emulated)" if verify and platform in emulated else ""
        digest = short_digest(platform_digest(report, service, platform))
        cells = [
            md_inline(service),
            md_inline(platform),
            _cell(cell_status(report, service, platform, "build")),
            _cell(verify, suffix),
            _cell(cell_status(report, service, platform, "push")),
            _code_span(digest) if digest else NO_ROW,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    if emulated:
        names = ", ".join(md_inline(p) for p in emulated)
        lines += ["> [!NOTE]", f"> Verified under emulation (QEMU): {names}.", ""]
    return lines


def _failure(r: StepResult) -> list[str]:
    lines = [f"### ❌ {md_inline(failure_heading(r))}", ""]
    if r.message:
        lines += ["\n".join("> " + md_inline(m) for m in r.message.splitlines()), ""]
    if r.evidence:
        evidence = _clean(r.evidence).splitlines()
        shown = "\n".join(evidence[:EVIDENCE_LINES])
        lines += [_fence(shown), ""]
        if len(evidence) > EVIDENCE_LINES:
            lines += [f"… {len(evidence) - EVIDENCE_LINES} more lines of evidence.", ""]
    if r.log:
        lines += [f"Log: {_code_span(r.log)}", ""]
    return lines


def to_markdown(report: RunReport) -> str:
    mark = EMOJI["passed"] if report.exit_code == 0 else EMOJI["failed"]
    lines = [
        f"# {mark} orch {md_inline(report.command)}: {md_inline(report.project)}"
        f" (exit {report.exit_code}, {format_duration(report.duration_s)})",
        "",
        f"Started {md_inline(report.started_at)}.",
        "",
    ]
    for service in services_of(report):
        lines += _service_section(report, service)
    failures = [r for r in report.results if r.status == "failed"]
    if failures:
        lines += ["## Failures", ""]
        for r in failures:
            lines += _failure(r)
    if report.warnings:
        lines += ["## Warnings", ""]
        lines += [f"- ⚠️ {md_inline(w)}" for w in report.warnings]
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"
