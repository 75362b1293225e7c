"""The Docker engine through python-on-whales: the only module that imports it.

Every call is logged; `DockerException` becomes one of orch's errors keeping the command, its exit code
and stderr; python-on-whales' mixed return types are narrowed to what orch needs.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import structlog
from python_on_whales import DockerClient
from python_on_whales.exceptions import DockerException

from orchestrator.engine import (
    BuilderInfo,
    BuildOutcome,
    BuildRequest,
    EngineInfo,
    RunOutcome,
    StartupSpec,
    native_platform,
)
from orchestrator.errors import (
    BuildFailed,
    EngineError,
    EngineUnavailable,
    ImageNotFound,
    PublishFailed,
    TransientEngineError,
)

log = structlog.get_logger("orch.engine")

_TRANSIENT = re.compile(
    r"connection reset|connection refused|i/o timeout|timeout|TLS handshake|EOF|"
    r"50[0-9] |status(?: code)?:? 50[0-9]|503 Service|502 Bad|500 Internal|too many requests|429",
    re.IGNORECASE,
)
BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")
_QEMU_NAMES = {
    "arm64": "qemu-aarch64",
    "amd64": "qemu-x86_64",
    "arm": "qemu-arm",
    "ppc64le": "qemu-ppc64le",
    "s390x": "qemu-s390x",
    "riscv64": "qemu-riscv64",
}


def emulators() -> frozenset[str]:
    """Architectures this host can run through an enabled binfmt_misc handler (QEMU)."""
    found = set()
    for arch, name in _QEMU_NAMES.items():
        entry = BINFMT_DIR / name
        try:
            if entry.read_text().startswith("enabled"):
                found.add(arch)
        except OSError:
            continue
    return frozenset(found)


def _stderr(exc: DockerException) -> str:
    return (exc.stderr or exc.stdout or "").strip()


def _convert(exc: DockerException, what: str, cls: type[EngineError] = EngineError) -> EngineError:
    stderr = _stderr(exc)
    tail = stderr.splitlines()[-1] if stderr else f"exit code {exc.return_code}"
    if "Cannot connect to the Docker daemon" in stderr or "Is the docker daemon running" in stderr:
        return EngineUnavailable(
            f"{what}: the Docker engine is not reachable",
            command=exc.docker_command,
            returncode=exc.return_code,
            stderr=stderr,
            hint="start it with `scripts/engine.sh up` (or `just engine-up`)",
        )
    if re.search(r"not found|manifest unknown|No such image|pull access denied", stderr, re.I) and cls is EngineError:
        return ImageNotFound(f"{what}: {tail}", command=exc.docker_command, returncode=exc.return_code, stderr=stderr)
    if _TRANSIENT.search(stderr) and cls in (EngineError, PublishFailed):
        return TransientEngineError(
            f"{what}: {tail}", command=exc.docker_command, returncode=exc.return_code, stderr=stderr
        )
    return cls(f"{what}: {tail}", command=exc.docker_command, returncode=exc.return_code, stderr=stderr)


class DockerEngine:
    """The Engine over one Docker daemon (`host`, or DOCKER_HOST) and one buildx builder."""

    def __init__(self, *, host: str | None = None, builder: str | None = None) -> None:
        self.docker = DockerClient(host=host) if host else DockerClient()
        self.builder = builder
        self.native = native_platform()

    @contextmanager
    def _call(self, what: str, cls: type[EngineError] = EngineError, **fields: Any) -> Iterator[None]:
        start = time.monotonic()
        log.debug("engine.call", call=what, **fields)
        try:
            yield
        except DockerException as exc:
            raise _convert(exc, what, cls) from None
        except FileNotFoundError as exc:
            raise EngineUnavailable(
                f"{what}: the docker client is not installed ({exc.filename})",
                hint="run `scripts/engine.sh up`",
            ) from None
        finally:
            log.debug("engine.done", call=what, seconds=round(time.monotonic() - start, 3), **fields)

    # -- facts ------------------------------------------------------------------------------------

    def info(self) -> EngineInfo:
        with self._call("docker version"):
            version = self.docker.version()
        server = version.server
        if server is None:
            raise EngineUnavailable("the Docker engine did not answer", hint="run `scripts/engine.sh up`")
        with self._call("docker info"):
            info = self.docker.info()
        with self._call("docker buildx version"):
            buildx_version = self.docker.buildx.version()
        builders: list[BuilderInfo] = []
        with self._call("docker buildx ls"):
            for b in self.docker.buildx.list():
                plats: list[str] = []
                for node in b.nodes or []:
                    plats.extend(str(p) for p in (node.platforms or []))
                builders.append(
                    BuilderInfo(
                        str(b.name), str(b.driver), tuple(dict.fromkeys(plats)), str(getattr(b, "status", "") or "")
                    )
                )
        driver_status = json.dumps(getattr(info, "driver_status", None) or [], default=str)
        # the containerd image store reports its snapshotter as the driver type (Driver is then
        # "overlayfs", where the classic store says "overlay2")
        containerd = "io.containerd.snapshotter" in driver_status
        return EngineInfo(
            server_version=str(server.version),
            api_version=str(server.api_version),
            buildx_version=str(buildx_version.get("version") if isinstance(buildx_version, dict) else buildx_version),
            native_platform=self.native,
            builders=tuple(builders),
            containerd_store=bool(containerd),
            emulators=emulators(),
        )

    def local_digest(self, ref: str) -> str | None:
        """The image's digest in the local (containerd) store: the index digest, or None."""
        try:
            image = self.docker.image.inspect(ref)
        except DockerException as exc:
            if "No such image" in _stderr(exc) or "not found" in _stderr(exc).lower():
                return None
            raise _convert(exc, f"docker image inspect {ref}") from None
        return str(image.id)

    # -- build ------------------------------------------------------------------------------------

    def build(self, request: BuildRequest, on_line: Callable[[str], None]) -> BuildOutcome:
        lines: list[str] = []
        with tempfile.TemporaryDirectory(prefix="orch-build-") as tmp:
            metadata = Path(tmp) / "metadata.json"
            log.info(
                "engine.build", service=request.service, platforms=list(request.platforms), tags=list(request.tags)
            )
            try:
                stream = self.docker.buildx.build(
                    request.context,
                    file=request.dockerfile,
                    platforms=list(request.platforms),
                    build_args=dict(request.build_args),
                    build_contexts=dict(request.build_contexts),
                    labels=dict(request.labels),
                    tags=list(request.tags),
                    target=request.target,
                    cache=not request.no_cache,
                    builder=request.builder or self.builder,
                    network=request.network,
                    load=True,
                    provenance=False,
                    progress="plain",
                    metadata_file=metadata,
                    stream_logs=True,
                )
                if stream is None or not isinstance(stream, Iterator):
                    raise EngineError(f"build of {request.service}: buildx returned no log stream")
                for chunk in stream:
                    for line in chunk.splitlines():
                        lines.append(line)
                        on_line(line)
            except DockerException as exc:
                text = "\n".join(lines)
                raise BuildFailed(
                    f"build of {request.service} failed: {_failure_summary(text or _stderr(exc))}",
                    command=exc.docker_command,
                    returncode=exc.return_code,
                    stderr=text or _stderr(exc),
                ) from None
            try:
                data = json.loads(metadata.read_text())
            except (OSError, ValueError) as exc:
                raise EngineError(f"build of {request.service}: buildx wrote no metadata ({exc})") from None
        digest = data.get("containerimage.digest")
        if not digest:
            raise EngineError(f"build of {request.service}: buildx reported no image digest")
        return BuildOutcome(digest=str(digest), log="\n".join(lines))

    # -- reading images ---------------------------------------------------------------------------

    def extract(self, image: str, platform: str, paths: Sequence[str]) -> dict[str, bytes | None]:
        """Files of one platform's image, read from a created (never started) container."""
        name = f"orch-extract-{uuid.uuid4().hex[:12]}"
        result: dict[str, bytes | None] = {}
        with self._call("docker create", image=image, platform=platform):
            container = self.docker.container.create(
                image, ["/nonexistent"], name=name, platform=platform, entrypoint=""
            )
        try:
            with tempfile.TemporaryDirectory(prefix="orch-extract-") as tmp:
                for index, path in enumerate(paths):
                    dest = Path(tmp) / str(index)
                    try:
                        self.docker.container.copy((container, path), dest)
                    except DockerException as exc:
                        if "Could not find" in _stderr(exc) or "No such" in _stderr(exc):
                            result[path] = None
                            continue
                        raise _convert(exc, f"docker cp {path}") from None
                    result[path] = dest.read_bytes() if dest.is_file() else None
        finally:
            self._remove(container)
        return result

    def save(self, image: str, dest: Path) -> None:
        with self._call("docker save", image=image):
            self.docker.image.save(image, output=dest)

    def _remove(self, container: Any) -> None:
        try:
            self.docker.container.remove(container, force=True, volumes=True)
        except DockerException as exc:
            log.warning("engine.cleanup_failed", container=str(container), error=_stderr(exc))

    # -- running ----------------------------------------------------------------------------------

    def probe(self, image: str, platform: str, command: Sequence[str]) -> str:
        with self._call("docker run (probe)", image=image, platform=platform):
            output = self.docker.run(
                image, list(command), remove=True, platform=platform, entrypoint="", pull="missing"
            )
        return str(output or "")

    def run(self, image: str, platform: str, spec: StartupSpec) -> RunOutcome:
        name = f"orch-start-{uuid.uuid4().hex[:12]}"
        publish = [("127.0.0.1:0", spec.http_port)] if spec.http_port else []
        with self._call("docker run", image=image, platform=platform):
            container = self.docker.container.run(
                image,
                list(spec.command),
                detach=True,
                name=name,
                platform=platform,
                publish=publish,
                pull="never",
            )
        try:
            return self._watch(container, spec)
        finally:
            self._remove(container)

    def _watch(self, container: Any, spec: StartupSpec) -> RunOutcome:
        deadline = time.monotonic() + spec.grace
        exit_code: int | None = None
        while True:
            container.reload()
            if not container.state.running:
                exit_code = int(container.state.exit_code or 0)
                break
            if spec.expect == "running" and time.monotonic() >= deadline:
                break
            if spec.expect == "exit-0" and time.monotonic() >= deadline + 60:
                break
            time.sleep(0.1)
        status = error = None
        if exit_code is None and spec.http_port:
            status, error = self._http_probe(container, spec)
        output = str(self.docker.container.logs(container) or "")
        return RunOutcome(exit_code=exit_code, output=output, http_status=status, http_error=error)

    def _http_probe(self, container: Any, spec: StartupSpec) -> tuple[int | None, str | None]:
        container.reload()
        ports = (container.network_settings.ports or {}).get(f"{spec.http_port}/tcp") or []
        if not ports:
            return None, f"port {spec.http_port} is not published"
        host_port = ports[0].get("HostPort")
        url = f"http://127.0.0.1:{host_port}{spec.http_path}"
        last = "no answer"
        for _ in range(20):
            try:
                with urllib.request.urlopen(url, timeout=3) as response:
                    return int(response.status), None
            except urllib.error.HTTPError as exc:
                return int(exc.code), None
            except (urllib.error.URLError, OSError) as exc:
                last = str(getattr(exc, "reason", exc))
                time.sleep(0.25)
        return None, f"GET {spec.http_path} on port {spec.http_port}: {last}"

    # -- publishing -------------------------------------------------------------------------------

    def tag(self, source: str, target: str) -> None:
        with self._call("docker tag", source=source, target=target):
            self.docker.image.tag(source, target)

    def push(self, ref: str) -> None:
        with self._call("docker push", PublishFailed, ref=ref):
            self.docker.image.push(ref, quiet=True)

    def pull(self, ref: str, platform: str) -> None:
        with self._call("docker pull", ref=ref, platform=platform):
            self.docker.image.pull(ref, quiet=True, platform=platform)


def _failure_summary(text: str) -> str:
    """The line that says why a build failed (buildx' ERROR line, else the last line)."""
    for line in reversed(text.splitlines()):
        if "ERROR:" in line or line.startswith("ERROR") or "error:" in line.lower():
            return line.strip()[:400]
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[-1].strip()[:400] if lines else "no output"
