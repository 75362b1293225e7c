from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from rich.console import Console

from orchestrator.report import render_summary, summary_table, to_junit, to_markdown, write_reports
from orchestrator.report.junit import xml_safe
from orchestrator.report.table import aggregate, cell_status, short_digest
from orchestrator.results import RunReport, ServiceSummary, StepResult, exit_code_of

AMD64 = "linux/amd64"
ARM64 = "linux/arm64"
BASE_AMD64 = "sha256:" + "a" * 64
BASE_ARM64 = "sha256:" + "b" * 64
BASE_INDEX = "sha256:" + "abcdef123456" + "0" * 52
EVIDENCE = "expected a static binary\n/app/server: NEEDED libc.so.6 <&> \x01bell\nline 3"


def _report() -> RunReport:
    results = (
        # base: passed on two platforms, arm64 verified under emulation, pushed as one index.
        StepResult(service="base", platform=AMD64, step="build", status="passed", duration_s=10),
        StepResult(service="base", platform=ARM64, step="build", status="passed", duration_s=30),
        StepResult(
            service="base",
            platform=AMD64,
            step="verify",
            status="passed",
            check="arch",
            emulated=False,
        ),
        StepResult(
            service="base",
            platform=ARM64,
            step="verify",
            status="passed",
            check="arch",
            emulated=True,
        ),
        StepResult(service="base", platform="all", step="push", status="passed", digest=BASE_INDEX),
        # api: the build fails on amd64.
        StepResult(
            service="api",
            platform=AMD64,
            step="build",
            status="failed",
            message="RUN go build exited 1",
            log="logs/api-linux-amd64.log",
        ),
        # web depends on api: skipped.
        StepResult(
            service="web",
            platform="all",
            step="build",
            status="skipped",
            message="dependency api failed",
        ),
        # worker: builds, fails a verification check with awkward evidence.
        StepResult(service="worker", platform=AMD64, step="build", status="passed"),
        StepResult(
            service="worker",
            platform=AMD64,
            step="verify",
            status="failed",
            check="static",
            message="binary is dynamically linked",
            evidence=EVIDENCE,
            emulated=False,
            log="logs/worker-linux-amd64-verify.log",
        ),
        # cache: nothing changed.
        StepResult(service="cache", platform=AMD64, step="build", status="up-to-date"),
    )
    services = (
        ServiceSummary(
            service="base",
            image="registry.local/base",
            tags=("1.0",),
            status="passed",
            digest=BASE_INDEX,
            platform_digests={AMD64: BASE_AMD64, ARM64: BASE_ARM64},
            input_hash="h1",
            pushed=True,
        ),
        ServiceSummary(service="api", image="registry.local/api", status="failed", input_hash="h2"),
        ServiceSummary(
            service="web",
            image="registry.local/web",
            status="skipped",
            input_hash="h3",
            reason="dependency api failed",
        ),
        ServiceSummary(service="worker", image="registry.local/worker", status="failed", input_hash="h4"),
        ServiceSummary(service="cache", image="registry.local/cache", status="up-to-date", input_hash="h5"),
    )
    return RunReport(
        project="demo",
        command="build",
        started_at="2025-01-01T00:00:00Z",
        duration_s=75.5,
        exit_code=exit_code_of(results),
        results=results,
        services=services,
        warnings=("builder golang:1.25 is 40 days old",),
    )


@pytest.fixture
def no_step_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


@pytest.mark.usefixtures("no_step_summary")
def test_write_reports_writes_three_files_and_json_round_trips(tmp_path: Path) -> None:
    report = _report()
    paths = write_reports(report, tmp_path / "out")
    assert set(paths) == {"report.json", "junit.xml", "summary.md"}
    assert all(p.is_file() for p in paths.values())
    assert RunReport.model_validate_json(paths["report.json"].read_text()) == report


@pytest.mark.usefixtures("no_step_summary")
def test_junit_parses_and_counts(tmp_path: Path) -> None:
    report = _report()
    root = ET.parse(write_reports(report, tmp_path)["junit.xml"]).getroot()
    suite = root.find("testsuite")
    assert suite is not None
    assert suite.get("name") == "orch"
    assert suite.get("tests") == str(len(report.results)) == "10"
    assert suite.get("failures") == "2"
    assert suite.get("skipped") == "2"  # the skipped dependent and the up-to-date service
    cases = suite.findall("testcase")
    assert len(cases) == 10
    names = {(c.get("classname"), c.get("name")) for c in cases}
    assert ("worker", "linux/amd64 verify static") in names
    assert ("base", "all push") in names

    failed = {c.get("classname"): c.find("failure") for c in cases if c.find("failure") is not None}
    assert set(failed) == {"api", "worker"}
    verify_failure = failed["worker"]
    assert verify_failure is not None
    assert verify_failure.get("message") == "binary is dynamically linked"
    text = verify_failure.text or ""
    assert "NEEDED libc.so.6 <&> bell" in text  # escaped on the way out, intact on the way in
    assert "\x01" not in text

    api = next(c for c in cases if c.get("classname") == "api")
    assert "[[ATTACHMENT|logs/api-linux-amd64.log]]" in (api.findtext("system-out") or "")
    skipped = [c.find("skipped") for c in cases if c.find("skipped") is not None]
    messages = {s.get("message") for s in skipped if s is not None}
    assert messages == {"dependency api failed", "up-to-date"}


def test_junit_strips_characters_xml_cannot_hold() -> None:
    assert xml_safe("a\x00b\x1bc\ud800d\ufffe\te\n") == "abcd\te\n"
    report = _report().model_copy(update={"project": "x\x0b<y>"})
    ET.fromstring(to_junit(report).encode())


@pytest.mark.usefixtures("no_step_summary")
def test_markdown_summary(tmp_path: Path) -> None:
    md = write_reports(_report(), tmp_path)["summary.md"].read_text(encoding="utf-8")
    assert md.startswith("# ❌ orch build: demo (exit 6, 1m16s)")
    assert "| api | linux/amd64 | ❌ failed | — | — | — |" in md
    assert "| web | all | ⏭️ skipped | — | — | — |" in md
    assert "| cache | linux/amd64 | ♻️ up-to-date |" in md
    arm64_row = "| base | linux/arm64 | ✅ passed | ✅ passed (emulated) | ✅ passed |"
    assert f"{arm64_row} `sha256:bbbbbbbbbbbb` |" in md
    assert "## Failures" in md
    assert "> binary is dynamically linked" in md
    assert "NEEDED libc.so.6 <&> bell" in md  # evidence verbatim in a fenced block
    assert "\x01" not in md
    assert "Verified under emulation (QEMU): linux/arm64." in md
    assert "## Warnings" in md
    assert "builder golang:1.25 is 40 days old" in md


def test_markdown_without_failures_has_no_failure_section() -> None:
    report = _report()
    ok = report.model_copy(
        update={
            "results": tuple(r for r in report.results if r.status != "failed"),
            "warnings": (),
            "exit_code": 0,
        }
    )
    md = to_markdown(ok)
    assert md.startswith("# ✅")
    assert "Failures" not in md
    assert "Warnings" not in md


def test_rich_table_and_failures() -> None:
    console = Console(record=True, width=200, file=io.StringIO())
    render_summary(_report(), console)
    text = console.export_text()
    assert "passed (emulated)" in text
    assert "bbbbbbbbbbbb" in text  # arm64's own digest
    assert "abcdef123456" not in text  # platform digests win over the index digest
    assert "worker linux/amd64 verify static: binary is dynamically linked" in text
    assert "NEEDED libc.so.6 <&>" in text
    assert "log: logs/worker-linux-amd64-verify.log" in text
    assert summary_table(_report()).row_count == 6


def test_rich_markup_in_messages_is_not_interpreted() -> None:
    report = _report()
    results = tuple(
        r.model_copy(update={"message": "[bold]not markup[/bold]"}) if r.service == "api" else r for r in report.results
    )
    console = Console(record=True, width=200, file=io.StringIO())
    render_summary(report.model_copy(update={"results": results}), console)
    assert "[bold]not markup[/bold]" in console.export_text()


def test_cell_rule() -> None:
    rows = [
        StepResult(service="s", platform=AMD64, step="push", status="passed"),
        StepResult(service="s", platform=ARM64, step="push", status="skipped"),
        StepResult(service="s", platform="all", step="push", status="up-to-date"),
    ]
    report = _report().model_copy(update={"results": tuple(rows)})
    assert cell_status(report, "s", AMD64, "push") == "up-to-date"
    assert cell_status(report, "s", ARM64, "push") == "skipped"
    assert cell_status(report, "s", AMD64, "build") is None
    failed_all = StepResult(service="s", platform="all", step="push", status="failed")
    report = report.model_copy(update={"results": (*rows, failed_all)})
    assert cell_status(report, "s", AMD64, "push") == "failed"
    assert aggregate([]) is None
    assert short_digest(BASE_INDEX) == "sha256:abcdef123456"
    assert short_digest(BASE_INDEX, algorithm=False) == "abcdef123456"
    assert short_digest(None) == ""


def test_github_step_summary_is_appended(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    step_summary = tmp_path / "step_summary.md"
    step_summary.write_text("earlier step\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    paths = write_reports(_report(), tmp_path / "out")
    assert paths["GITHUB_STEP_SUMMARY"] == step_summary
    text = step_summary.read_text(encoding="utf-8")
    assert text.startswith("earlier step\n# ❌ orch build: demo")
    assert paths["summary.md"].read_text(encoding="utf-8") in text
