"""Reports of a run, all derived from its RunReport: report.json, junit.xml, summary.md, the table.

Pure: no engine, no subprocess. The runner writes build logs under `<directory>/logs/` itself;
StepResult.log holds their paths relative to the report directory.
"""

from __future__ import annotations

import os
from pathlib import Path

from orchestrator.report.junit import to_junit
from orchestrator.report.markdown import to_markdown
from orchestrator.report.table import render_summary, summary_table
from orchestrator.results import RunReport

__all__ = ["render_summary", "summary_table", "to_junit", "to_markdown", "write_reports"]

STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"


def write_reports(report: RunReport, directory: Path) -> dict[str, Path]:
    """Write report.json, junit.xml and summary.md into `directory` (created if missing); append
    summary.md to $GITHUB_STEP_SUMMARY when set. Returns the paths written, keyed by file name
    ("report.json", "junit.xml", "summary.md", and "GITHUB_STEP_SUMMARY" when appended)."""
    directory.mkdir(parents=True, exist_ok=True)
    markdown = to_markdown(report)
    contents = {
        "report.json": report.model_dump_json(indent=2) + "\n",
        "junit.xml": to_junit(report),
        "summary.md": markdown,
    }
    written: dict[str, Path] = {}
    for name, text in contents.items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written[name] = path
    step_summary = os.environ.get(STEP_SUMMARY_ENV)
    if step_summary:
        path = Path(step_summary)
        with path.open("a", encoding="utf-8") as fh:
            fh.write(markdown + "\n")
        written[STEP_SUMMARY_ENV] = path
    return written
