"""The live display on a terminal: services x platforms, state, elapsed. JSON log events elsewhere."""

from __future__ import annotations

import threading
import time

from rich.console import Console
from rich.live import Live
from rich.table import Table

from orchestrator.plan import BuildPlan

_STYLE = {"passed": "green", "failed": "red", "skipped": "yellow", "up-to-date": "cyan"}


class LiveProgress:
    def __init__(self, plan: BuildPlan, console: Console) -> None:
        self.plan = plan
        self.state: dict[tuple[str, str], str] = {(s.name, p): "waiting" for s in plan.services for p in s.platforms}
        self.started: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()
        self.live = Live(
            self._table(), console=console, refresh_per_second=4, transient=True, get_renderable=self._table
        )

    def update(self, service: str, platform: str, state: str) -> None:
        with self._lock:
            keys = [k for k in self.state if k[0] == service and (platform in ("all", k[1]))]
            for key in keys:
                self.state[key] = state
                self.started.setdefault(key, time.monotonic())

    def _table(self) -> Table:
        table = Table(title=f"orch build: {self.plan.project}")
        for col in ("service", "platform", "state", "elapsed"):
            table.add_column(col)
        now = time.monotonic()
        with self._lock:
            for (service, platform), state in self.state.items():
                status = state.split(":")[-1]
                style = _STYLE.get(status, "white")
                started = self.started.get((service, platform))
                elapsed = f"{now - started:5.1f}s" if started else ""
                table.add_row(service, platform, f"[{style}]{state}[/{style}]", elapsed)
        return table
