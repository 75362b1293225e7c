"""The verification checks as pure functions of what was read from an image.

Each returns CheckResults: (check, status, message, evidence). The image module reads the bytes
through the engine; nothing here runs anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from orchestrator.models import Advisory, platform_arch
from orchestrator.policy.rules import matching_advisories, satisfies
from orchestrator.verify.elf import NotAnElf, describe_non_elf, platform_mismatch, read_elf
from orchestrator.verify.gobuildinfo import read_go_buildinfo

Check = Literal["arch", "static", "go-buildinfo", "runtime-base", "startup", "index"]
CRASH_SIGNATURES = ("fatal error:", "panic:", "exec format error", "SIGSEGV", "SIGILL", "taggedPointerPack")


@dataclass(frozen=True)
class CheckResult:
    check: Check
    passed: bool
    message: str
    evidence: str = ""
    target: str = ""  # the binary path, when the check is about one
    emulated: bool | None = None
    warning: bool = False


def check_binary(
    path: str,
    data: bytes | None,
    *,
    platform: str,
    toolchain: str | None,
    requirement: str | None,
    allow_cgo: bool,
    advisories: Sequence[Advisory],
) -> list[CheckResult]:
    """Architecture, static linking and (for Go) build info of one binary of one platform image."""
    if data is None:
        return [CheckResult("arch", False, f"{platform}: {path} does not exist in the image", target=path)]
    try:
        info = read_elf(data)
    except NotAnElf as exc:
        what = describe_non_elf(data)
        return [
            CheckResult(
                "arch", False, f"{platform}: {path} is not an ELF binary ({what})", evidence=str(exc), target=path
            )
        ]
    results: list[CheckResult] = []
    mismatch = platform_mismatch(info, platform)
    if mismatch:
        results.append(
            CheckResult(
                "arch",
                False,
                f"{platform} image holds an {info.machine} binary at {path}",
                evidence=mismatch,
                target=path,
            )
        )
    else:
        results.append(CheckResult("arch", True, f"{path}: {info.describe()}", target=path))
    if info.is_static:
        results.append(CheckResult("static", True, f"{path}: statically linked", target=path))
    else:
        parts = []
        if info.interpreter:
            parts.append(f"interpreter {info.interpreter}")
        if info.needed:
            parts.append(f"needs {', '.join(info.needed)}")
        results.append(
            CheckResult(
                "static",
                False,
                f"{platform}: {path} is dynamically linked ({'; '.join(parts)})",
                evidence=info.describe(),
                target=path,
            )
        )
    results.extend(
        _check_go(
            path,
            data,
            platform=platform,
            toolchain=toolchain,
            requirement=requirement,
            allow_cgo=allow_cgo,
            advisories=advisories,
        )
    )
    return results


def _check_go(
    path: str,
    data: bytes,
    *,
    platform: str,
    toolchain: str | None,
    requirement: str | None,
    allow_cgo: bool,
    advisories: Sequence[Advisory],
) -> list[CheckResult]:
    info = read_go_buildinfo(data)
    if info is None:
        if toolchain == "go":
            return [CheckResult("go-buildinfo", False, f"{path}: no Go build info (not a Go binary?)", target=path)]
        return []
    problems: list[str] = []
    arch = platform_arch(platform)
    if info.goarch and info.goarch != arch:
        problems.append(f"GOARCH={info.goarch} but the platform is {platform}")
    if info.cgo_enabled and not allow_cgo:
        problems.append("CGO_ENABLED=1 (the service does not allow cgo)")
    version = info.version_tuple
    if toolchain == "go" and requirement and not satisfies(version, requirement):
        problems.append(f"built with {info.go_version}, the service requires go {requirement}")
    summary = (
        f"{path}: {info.go_version} GOOS={info.goos} GOARCH={info.goarch} "
        f"CGO_ENABLED={'1' if info.cgo_enabled else '0'} -buildmode={info.buildmode}"
    )
    results = [
        CheckResult(
            "go-buildinfo",
            not problems,
            summary if not problems else f"{platform}: {path}: " + "; ".join(problems),
            evidence=summary,
            target=path,
        )
    ]
    for advisory in matching_advisories(
        advisories, toolchain="go", version=version, platforms=[f"linux/{info.goarch or arch}"]
    ):
        results.append(
            CheckResult(
                "go-buildinfo",
                not advisory.blocking,
                f"{platform}: {path} built with {info.go_version} (GOARCH={info.goarch}) matches advisory "
                f"{advisory.id}: {advisory.summary}",
                evidence=advisory.url or "",
                target=path,
                warning=not advisory.blocking,
            )
        )
    return results


def check_runtime_base(
    *,
    platform: str,
    image_diff_ids: Sequence[str],
    base_diff_ids: Sequence[str],
    runtime_label: str | None,
    runtime_digest: str,
    runtime_name: str,
    require_label: bool = True,
) -> CheckResult:
    if not base_diff_ids:
        return CheckResult("runtime-base", False, f"{platform}: the pinned runtime has no layers to compare")
    prefix = tuple(image_diff_ids[: len(base_diff_ids)])
    if prefix != tuple(base_diff_ids):
        return CheckResult(
            "runtime-base",
            False,
            f"{platform}: the image's layers do not begin with the pinned {runtime_name} layers",
            evidence=f"expected first layers {list(base_diff_ids)}, "
            f"image has {list(image_diff_ids[: len(base_diff_ids) + 1])}",
        )
    if runtime_label != runtime_digest and (require_label or runtime_label is not None):
        return CheckResult(
            "runtime-base",
            False,
            f"{platform}: label io.orch.runtime.digest is {runtime_label!r}, expected {runtime_digest}",
        )
    return CheckResult(
        "runtime-base", True, f"{platform}: runs on {runtime_name}@{runtime_digest[:19]} ({len(base_diff_ids)} layers)"
    )


def check_startup(
    *,
    platform: str,
    exit_code: int | None,
    output: str,
    http_status: int | None,
    http_error: str | None,
    expect: str,
    grace: float,
    http_path: str | None,
    emulated: bool,
) -> CheckResult:
    how = "emulated" if emulated else "native"
    crash = crash_signature(output)
    tail = "\n".join(output.strip().splitlines()[-15:])
    if crash:
        return CheckResult("startup", False, f"{platform} ({how}): crashed: {crash}", evidence=tail, emulated=emulated)
    if expect == "exit-0":
        if exit_code == 0:
            return CheckResult("startup", True, f"{platform} ({how}): exited 0", evidence=tail, emulated=emulated)
        if exit_code is None:
            return CheckResult(
                "startup",
                False,
                f"{platform} ({how}): still running, expected to exit 0",
                evidence=tail,
                emulated=emulated,
            )
        return CheckResult(
            "startup", False, f"{platform} ({how}): exited {exit_code}, expected 0", evidence=tail, emulated=emulated
        )
    if exit_code is not None:
        return CheckResult(
            "startup",
            False,
            f"{platform} ({how}): exited {exit_code} within {grace:g}s, expected to keep running",
            evidence=tail,
            emulated=emulated,
        )
    if http_path is not None:
        if http_status is None or not 200 <= http_status < 400:
            got = http_error or f"HTTP {http_status}"
            return CheckResult(
                "startup",
                False,
                f"{platform} ({how}): health probe {http_path} failed: {got}",
                evidence=tail,
                emulated=emulated,
            )
        return CheckResult(
            "startup",
            True,
            f"{platform} ({how}): running after {grace:g}s, {http_path} answered {http_status}",
            evidence=tail,
            emulated=emulated,
        )
    return CheckResult(
        "startup", True, f"{platform} ({how}): running after {grace:g}s", evidence=tail, emulated=emulated
    )


def crash_signature(output: str) -> str | None:
    for line in output.splitlines():
        for signature in CRASH_SIGNATURES:
            if signature in line:
                return line.strip()[:300]
    return None


def check_index(platforms: Mapping[str, str], expected: Sequence[str], attestations: int = 0) -> CheckResult:
    have = sorted(platforms)
    want = sorted(expected)
    if have != want or attestations:
        extra = f" and {attestations} attestation entr{'y' if attestations == 1 else 'ies'}" if attestations else ""
        return CheckResult(
            "index", False, f"index lists {', '.join(have) or 'nothing'}{extra}; expected {', '.join(want)}"
        )
    return CheckResult("index", True, f"index lists exactly {', '.join(want)}")
