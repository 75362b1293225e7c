"""The error tree. Each class carries its exit code; only `cli.main()` turns one into an exit.

Messages say what failed, where, and what to do. Exit codes (lowest non-zero wins when a run has several
failures; 130 overrides all):

    0 success, 2 usage or configuration, 3 graph, 4 policy, 5 engine or registry unavailable,
    6 build failed, 7 verification failed, 8 publish failed, 130 interrupted.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    USAGE = 2
    GRAPH = 3
    POLICY = 4
    ENGINE = 5
    BUILD = 6
    VERIFY = 7
    PUBLISH = 8
    INTERRUPTED = 130


def worst_exit_code(codes: Iterable[int]) -> int:
    """The exit code of a run with several failures: 130 overrides all, else the lowest non-zero."""
    failures = {int(c) for c in codes if int(c) != 0}
    if ExitCode.INTERRUPTED in failures:
        return int(ExitCode.INTERRUPTED)
    return min(failures, default=0)


class OrchError(Exception):
    """Base of every error orch reports. `hint` says what to do about it."""

    exit_code: ExitCode = ExitCode.USAGE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class ConfigError(OrchError):
    """services.yaml, a policy file, an exception record or orch.lock is wrong (exit 2)."""

    exit_code = ExitCode.USAGE

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        key: str | None = None,
        hint: str | None = None,
    ) -> None:
        where = ""
        if file:
            where = f"{file}:{line}: " if line else f"{file}: "
        if key:
            where += f"{key}: "
        super().__init__(where + message, hint=hint)
        self.file = file
        self.line = line
        self.key = key


class UsageError(OrchError):
    """A command-line combination that cannot work (exit 2)."""

    exit_code = ExitCode.USAGE


class LockError(OrchError):
    """orch.lock is missing or stale while `--locked` asks for it to be current (exit 2)."""

    exit_code = ExitCode.USAGE


class DockerfileError(OrchError):
    """A Dockerfile that cannot be read or parsed (exit 2)."""

    exit_code = ExitCode.USAGE


class GraphError(OrchError):
    """A cycle, an unknown service, an empty selection (exit 3)."""

    exit_code = ExitCode.GRAPH


class PolicyError(OrchError):
    """A policy violation: no qualifying builder, an expired or out-of-scope exception, a lint error (exit 4)."""

    exit_code = ExitCode.POLICY


class EngineError(OrchError):
    """A call to the engine or a registry failed. Keeps the command, its exit code and stderr (exit 5)."""

    exit_code = ExitCode.ENGINE

    def __init__(
        self,
        message: str,
        *,
        command: list[str] | None = None,
        returncode: int | None = None,
        stderr: str = "",
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.command = command or []
        self.returncode = returncode
        self.stderr = stderr


class EngineUnavailable(EngineError):
    """The engine, buildx, binfmt or the registry is not there (exit 5)."""


class TransientEngineError(EngineError):
    """A failure worth retrying: connection reset or refused, 5xx, timeouts (retried, then exit 5)."""


class ImageNotFound(EngineError):
    """A reference the registry does not know (exit 5)."""


class BuildFailed(EngineError):
    """A Dockerfile step failed. Never retried (exit 6)."""

    exit_code = ExitCode.BUILD


class VerificationFailed(OrchError):
    """A built image failed verification (exit 7)."""

    exit_code = ExitCode.VERIFY


class PublishFailed(EngineError):
    """A push or its read-back failed (exit 8)."""

    exit_code = ExitCode.PUBLISH


class Interrupted(OrchError):
    """Ctrl-C (exit 130)."""

    exit_code = ExitCode.INTERRUPTED
