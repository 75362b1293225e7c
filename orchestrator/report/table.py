"""The terminal summary: one row per (service, platform), and the failures below it.

Also home of the cell rule the Markdown summary shares: a (service, platform) cell of a step is
failed if any row of that step for that service and that platform (or for platform "all") failed,
else skipped if any skipped, else up-to-date if any up-to-date, else passed; "—" without a row.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import Console
from rich.table import Table
from rich.text import Text

from orchestrator.results import ALL_PLATFORMS, RunReport, Status, Step, StepResult

NO_ROW = "—"
EVIDENCE_LINES = 5

STATUS_STYLE: dict[str, str] = {
    "passed": "green",
    "failed": "red",
    "skipped": "yellow",
    "up-to-date": "cyan",
}

_PRECEDENCE: tuple[Status, ...] = ("failed", "skipped", "up-to-date", "passed")


def services_of(report: RunReport) -> list[str]:
    """Services in summary order, then any that only appear in the results."""
    names = [s.service for s in report.services]
    for r in report.results:
        if r.service not in names:
            names.append(r.service)
    return names


def platforms_of(report: RunReport, service: str) -> list[str]:
    """The service's concrete platforms in order of first appearance (results, then digests);
    `["all"]` when it has none (a service skipped or failed before it reached a platform)."""
    platforms: list[str] = []
    for r in report.results:
        if r.service == service and r.platform != ALL_PLATFORMS and r.platform not in platforms:
            platforms.append(r.platform)
    for s in report.services:
        if s.service == service:
            platforms.extend(p for p in s.platform_digests if p not in platforms)
    return platforms or [ALL_PLATFORMS]


def rows_for(report: RunReport, service: str, platform: str, step: Step) -> list[StepResult]:
    """The rows of a step that count for a (service, platform) cell: that platform's and "all"'s."""
    return [
        r for r in report.results if r.service == service and r.step == step and r.platform in (platform, ALL_PLATFORMS)
    ]


def aggregate(rows: Iterable[StepResult]) -> Status | None:
    """failed > skipped > up-to-date > passed; None when there is no row."""
    statuses = {r.status for r in rows}
    return next((s for s in _PRECEDENCE if s in statuses), None)


def cell_status(report: RunReport, service: str, platform: str, step: Step) -> Status | None:
    return aggregate(rows_for(report, service, platform, step))


def emulated(report: RunReport, service: str, platform: str) -> bool:
    """True when any verify row of exactly this platform ran under emulation."""
    return any(
        r.emulated is True
        for r in report.results
        if r.service == service and r.platform == platform and r.step == "verify"
    )


def platform_digest(report: RunReport, service: str, platform: str) -> str | None:
    """The platform's digest, else a digest on that platform's rows, else the service digest."""
    summary = next((s for s in report.services if s.service == service), None)
    if summary is not None and platform in summary.platform_digests:
        return summary.platform_digests[platform]
    for r in report.results:
        if r.service == service and r.platform == platform and r.digest:
            return r.digest
    return summary.digest if summary is not None else None


def short_digest(digest: str | None, *, algorithm: bool = True) -> str:
    """`sha256:<64 hex>` → `sha256:abcdef123456` (or `abcdef123456` without the algorithm)."""
    if not digest:
        return ""
    algo, sep, hexpart = digest.partition(":")
    if not sep:
        algo, hexpart = "", digest
    short = hexpart[:12]
    return f"{algo}:{short}" if algorithm and algo else short


def format_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s"


def platform_time(report: RunReport, service: str, platform: str) -> float:
    """Time of the rows of exactly this platform ("all" rows only for the "all" line)."""
    return sum(r.duration_s for r in report.results if r.service == service and r.platform == platform)


def _status_text(status: Status | None, suffix: str = "") -> Text:
    if status is None:
        return Text(NO_ROW, style="dim")
    return Text(status + suffix, style=STATUS_STYLE[status])


def _digest_text(digest: str | None) -> Text:
    short = short_digest(digest, algorithm=False)
    return Text(short) if short else Text(NO_ROW, style="dim")


def summary_table(report: RunReport) -> Table:
    table = Table(
        title=f"{report.project}: exit {report.exit_code} in {format_duration(report.duration_s)}",
        title_justify="left",
    )
    table.add_column("Service", style="bold")
    table.add_column("Platform")
    table.add_column("Build")
    table.add_column("Verify")
    table.add_column("Push")
    table.add_column("Digest", no_wrap=True)
    table.add_column("Time", justify="right")
    for service in services_of(report):
        for platform in platforms_of(report, service):
            verify = cell_status(report, service, platform, "verify")
            suffix = " (emulated)" if verify and emulated(report, service, platform) else ""
            table.add_row(
                Text(service),
                Text(platform),
                _status_text(cell_status(report, service, platform, "build")),
                _status_text(verify, suffix),
                _status_text(cell_status(report, service, platform, "push")),
                _digest_text(platform_digest(report, service, platform)),
                Text(format_duration(platform_time(report, service, platform))),
            )
    return table


def failure_heading(r: StepResult) -> str:
    parts = [r.service, r.platform, r.step]
    if r.check:
        parts.append(r.check)
    return " ".join(parts)


def render_summary(report: RunReport, console: Console) -> None:
    """The table, then each failure: where, its message and the first lines of its evidence."""
    console.print(summary_table(report))
    failures = [r for r in report.results if r.status == "failed"]
    if not failures:
        return
    console.print()
    console.print(Text(f"Failures ({len(failures)})", style="bold red"))
    for r in failures:
        line = Text("✗ ", style="red")
        line.append(failure_heading(r), style="bold")
        if r.message:
            line.append(": " + r.message)
        console.print(line)
        if r.evidence:
            lines = r.evidence.splitlines()
            for ev in lines[:EVIDENCE_LINES]:
                console.print(Text("    " + ev, style="dim"))
            if len(lines) > EVIDENCE_LINES:
                more = f"    … {len(lines) - EVIDENCE_LINES} more lines"
                console.print(Text(more, style="dim"))
        if r.log:
            console.print(Text(f"    log: {r.log}", style="dim"))
