"""The data orch reads: services.yaml and the policy directory, as frozen pydantic models.

Every model forbids unknown keys and is immutable; nothing past the loader sees a raw dict. Closed
choices are `Literal`s. Validation here is structural; what needs the whole project (unknown
dependencies, cycles, policy decisions) belongs to the later stages.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

SERVICE_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
KNOWN_ARCHES = ("amd64", "arm64", "arm", "386", "ppc64le", "s390x", "riscv64")


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def normalise_platform(value: str) -> str:
    """`arm64`, `linux/arm64`, `linux/arm64/v8` → `linux/arm64`; `arm/v7` keeps its variant."""
    text = value.strip().lower()
    parts = text.split("/")
    if len(parts) == 1 or (len(parts) == 2 and parts[0] in KNOWN_ARCHES):
        parts = ["linux", *parts]
    if parts[0] != "linux":
        raise ValueError(f"unsupported OS in platform {value!r}: orch builds linux images only")
    if parts[1] not in KNOWN_ARCHES:
        raise ValueError(f"unknown architecture in platform {value!r} (known: {', '.join(KNOWN_ARCHES)})")
    if len(parts) == 3 and parts[1] == "arm64" and parts[2] == "v8":
        parts = parts[:2]
    if len(parts) > 3:
        raise ValueError(f"malformed platform {value!r}: expected os/arch[/variant]")
    return "/".join(parts)


def platform_arch(platform: str) -> str:
    return platform.split("/")[1]


def _check_specifier(value: str) -> str:
    try:
        SpecifierSet(value)
    except InvalidSpecifier as exc:
        raise ValueError(f"{value!r} is not a version specifier (write e.g. '>=1.25.4' or '>=1.25.0,<1.25.4')") from exc
    return value


Platform = Annotated[str, AfterValidator(normalise_platform)]
Specifier = Annotated[str, AfterValidator(_check_specifier)]


# --- services.yaml -----------------------------------------------------------------------------


class ToolchainRequirement(Frozen):
    name: str = Field(description="toolchain of the builder stage, e.g. go")
    version: Specifier = Field(description="PEP 440 specifier, e.g. '>=1.25.4'")


class HttpProbe(Frozen):
    port: int = Field(ge=1, le=65535)
    path: str = "/healthz"


class Startup(Frozen):
    command: tuple[str, ...] = ()
    expect: Literal["exit-0", "running"] = "running"
    grace: float = Field(default=3.0, gt=0, le=600)
    http: HttpProbe | None = None


class Service(Frozen):
    dockerfile: str
    context: str = "."
    target: str | None = None
    depends_on: tuple[str, ...] = ()
    platforms: tuple[Platform, ...] | None = None
    toolchain: ToolchainRequirement | None = None
    build_args: dict[str, str] = Field(default_factory=dict)
    binaries: tuple[str, ...] = ()
    allow_cgo: bool = False
    startup: Startup | None = None
    tags: tuple[str, ...] = ()

    @field_validator("binaries")
    @classmethod
    def _absolute(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for path in value:
            if not path.startswith("/"):
                raise ValueError(f"binary path {path!r} must be absolute inside the image")
        return value


class ServicesFile(Frozen):
    version: Literal[1]
    project: str
    registry: str = Field(description="push prefix, e.g. 127.0.0.1:5000/orch-demo")
    platforms: tuple[Platform, ...] = ("linux/amd64", "linux/arm64")
    policy: str = "policy/"
    builder: str | None = None
    services: dict[str, Service]

    @field_validator("services")
    @classmethod
    def _names(cls, value: dict[str, Service]) -> dict[str, Service]:
        for name in value:
            if not SERVICE_NAME.match(name):
                raise ValueError(f"service name {name!r} must be lower-case letters, digits, '.', '_' or '-'")
        return value

    @field_validator("platforms")
    @classmethod
    def _non_empty(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("at least one platform is needed")
        return value


# --- policy/policy.yaml --------------------------------------------------------------------------


class Tier(Frozen):
    name: str
    registries: tuple[str, ...]
    requires_exception: bool = False


class BuilderCandidate(Frozen):
    image: str
    version_command: tuple[str, ...] | None = None


class AdvisoryScope(Frozen):
    goarch: str | None = None
    when: Literal["emulated"] | None = None


class Advisory(Frozen):
    id: str
    toolchain: str
    versions: Specifier
    applies_to: AdvisoryScope = AdvisoryScope()
    summary: str
    url: str | None = None

    @property
    def blocking(self) -> bool:
        """An advisory with a `when` condition warns and flags; one without rejects the candidate."""
        return self.applies_to.when is None


class PolicyFile(Frozen):
    version: Literal[1] = 1
    tiers: tuple[Tier, ...]
    prohibited: tuple[str, ...] = ()
    runtime: str
    builders: dict[str, tuple[BuilderCandidate, ...]]
    advisories: tuple[Advisory, ...] = ()
    mirrors: dict[str, str] = Field(default_factory=dict)


# --- policy/exceptions/<ID>.yaml ----------------------------------------------------------------

ExceptionStatus = Literal["requested", "approved", "rejected", "retired"]


class RevertWhen(Frozen):
    toolchain: str
    version: Specifier
    tier: int = Field(default=1, ge=1)


class ExceptionRecord(Frozen):
    id: str
    status: ExceptionStatus
    services: tuple[str, ...]
    stage: Literal["builder", "runtime"] = "builder"
    image: str
    instead_of: str | None = None
    reason: str
    requested_by: str | None = None
    approved_by: str | None = None
    approved_on: dt.date | None = None
    review_by: dt.date | None = None
    expires: dt.date
    retired_on: dt.date | None = None
    revert_when: RevertWhen | None = None


# --- what resolution learns about an external image (orch.lock entries) ------------------------


class ResolvedImage(Frozen):
    """An external image resolved through the registry: its index digest, per-platform manifests
    and, for builder candidates, the toolchain version probed from the image itself."""

    name: str = Field(description="the image as the policy or Dockerfile names it")
    pull: str = Field(description="where it is pulled from (after mirrors), without digest")
    digest: str = Field(description="the multi-platform index digest")
    platforms: dict[str, str] = Field(description="platform -> manifest digest")
    toolchain: str | None = None
    toolchain_version: str | None = None
    probe_error: str | None = None

    @property
    def pinned_pull(self) -> str:
        base = self.pull.split("@", 1)[0]
        return f"{base}@{self.digest}"
