"""SARIF 2.1.0 output shared by `orch policy check` and `orch policy audit`.

One run, one tool (`orch`), the rules that produced results, and one result per finding with its
file (relative to the project root, so code-scanning UIs resolve it against the checkout) and line.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Literal

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
TOOL_NAME = "orch"
SRCROOT = "%SRCROOT%"

Level = Literal["error", "warning", "note"]


@dataclass(frozen=True)
class Rule:
    id: str
    name: str  # PascalCase-free slug, e.g. "prohibited-registry"
    short: str  # one line: what the rule checks
    help: str  # what to do about it
    level: Level = "error"


@dataclass(frozen=True)
class Result:
    rule_id: str
    level: Level
    message: str
    uri: str
    line: int | None = None


def sarif_level(severity: str) -> Level:
    """orch severities → SARIF levels (`info` is SARIF's `note`)."""
    if severity == "error":
        return "error"
    if severity == "warning":
        return "warning"
    return "note"


def to_sarif(
    rules: Sequence[Rule],
    results: Sequence[Result],
    *,
    tool_version: str,
    information_uri: str | None = None,
) -> str:
    """A SARIF 2.1.0 log. Only the rules some result uses are listed; results refer to them by
    index as well as by id."""
    used = {r.rule_id for r in results}
    listed = [rule for rule in rules if rule.id in used]
    known = {rule.id for rule in listed}
    missing = sorted(used - known)
    if missing:
        raise ValueError(f"SARIF results name rules that are not defined: {', '.join(missing)}")
    index = {rule.id: i for i, rule in enumerate(listed)}
    driver: dict[str, Any] = {
        "name": TOOL_NAME,
        "version": tool_version,
        "semanticVersion": tool_version,
        "rules": [_rule(rule) for rule in listed],
    }
    if information_uri:
        driver["informationUri"] = information_uri
    log = {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {"driver": driver},
                "columnKind": "unicodeCodePoints",
                "results": [_result(result, index[result.rule_id]) for result in results],
            }
        ],
    }
    return json.dumps(log, indent=2) + "\n"


def _rule(rule: Rule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "name": rule.name,
        "shortDescription": {"text": rule.short},
        "fullDescription": {"text": rule.short},
        "help": {"text": rule.help},
        "defaultConfiguration": {"level": rule.level},
    }


def _result(result: Result, rule_index: int) -> dict[str, Any]:
    uri = result.uri.replace("\\", "/")
    artifact: dict[str, Any]
    artifact = {"uri": PurePosixPath(uri).as_uri()} if uri.startswith("/") else {"uri": uri, "uriBaseId": SRCROOT}
    physical: dict[str, Any] = {"artifactLocation": artifact}
    if result.line is not None and result.line >= 1:
        physical["region"] = {"startLine": result.line}
    return {
        "ruleId": result.rule_id,
        "ruleIndex": rule_index,
        "level": result.level,
        "message": {"text": result.message},
        "locations": [{"physicalLocation": physical}],
    }
