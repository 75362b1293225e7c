"""orch build against the real engine and registry: multi-arch builds in graph order, lock digests,
incremental rebuilds, failure propagation, retries through a faulty registry proxy, verified publish."""

from __future__ import annotations

import http.client
import json
import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import REGISTRY, go_dockerfile, go_main, orch, write_project

from orchestrator.engine.registry import RegistryClient

SERVICES = """\
version: 1
project: buildtest
registry: {registry}
platforms: [linux/amd64, linux/arm64]
services:
  base:
    dockerfile: dockerfiles/base.Dockerfile
    context: src
    toolchain: {{name: go, version: ">=1.24"}}
    binaries: [/usr/local/bin/base]
    startup: {{command: ["--version"], expect: exit-0}}
  api:
    dockerfile: dockerfiles/api.Dockerfile
    context: src
    depends_on: [base]
    toolchain: {{name: go, version: ">=1.24"}}
    binaries: [/usr/local/bin/base, /usr/local/bin/api]
    startup: {{command: ["serve"], expect: running, grace: 2, http: {{port: 8080}}}}
  worker:
    dockerfile: dockerfiles/worker.Dockerfile
    context: src
    depends_on: [base]
    toolchain: {{name: go, version: ">=1.24"}}
    binaries: [/usr/local/bin/worker]
    startup: {{command: ["--version"], expect: exit-0}}
  tool:
    dockerfile: dockerfiles/tool.Dockerfile
    context: src
    toolchain: {{name: go, version: ">=1.24"}}
    binaries: [/usr/local/bin/tool]
    startup: {{command: ["--version"], expect: exit-0}}
"""


def events(result: Any) -> list[dict[str, Any]]:
    out = []
    for line in result.stderr.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def builds(result: Any) -> list[str]:
    return sorted(e["service"] for e in events(result) if e.get("event") == "engine.build")


def report_of(directory: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((directory / "report.json").read_text())
    return data


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, run_id: str) -> Path:
    root = tmp_path_factory.mktemp("buildproj")
    registry = f"{REGISTRY}/{run_id}-build"
    return write_project(
        root,
        SERVICES.format(registry=registry),
        programs={n: go_main(n) for n in ("base", "api", "worker", "tool")},
        dockerfiles={
            "base": go_dockerfile("base"),
            "api": go_dockerfile("api", "base"),
            "worker": go_dockerfile("worker", "base"),
            "tool": go_dockerfile("tool"),
        },
    )


@pytest.fixture(scope="module")
def first_build(project: Path) -> Any:
    result = orch("build", "--push", "--report", "out", cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr[-4000:]
    return result


def test_multi_arch_build_pushes_verified_indexes_pinned_to_the_lock(project: Path, first_build: Any) -> None:
    assert builds(first_build) == ["api", "base", "tool", "worker"]
    report = report_of(project / "out")
    lock = json.loads((project / "orch.lock").read_text())
    client = RegistryClient()
    for image in lock["images"]:  # the lock pins each base image to the registry's index digest
        assert client.resolve(image["pull"]).digest == image["digest"]
    runtime = next(i for i in lock["images"] if "ubi-minimal" in i["name"])
    for summary in report["services"]:
        ref = f"{summary['image']}:{summary['tags'][0]}"
        info = client.resolve(ref)
        assert sorted(info.platforms) == ["linux/amd64", "linux/arm64"]
        assert info.attestations == ()
        assert info.digest == summary["digest"]
        assert summary["pushed"] is True
        assert summary["runtime_digest"] == runtime["digest"]
        manifest = client.manifest_json(_image(ref), info.platforms["linux/arm64"])
        config = client.blob_json(_image(ref), manifest["config"]["digest"])
        labels = config["config"]["Labels"]
        assert labels["io.orch.runtime.digest"] == runtime["digest"]
        assert labels["io.orch.input-hash"] == summary["input_hash"]
        assert labels["io.orch.builder.image"] == "registry.access.redhat.com/ubi9/go-toolset:1.25"
        if summary["service"] in ("base", "tool"):
            assert labels["org.opencontainers.image.base.digest"] == runtime["digest"]
        else:  # api and worker build FROM base: their immediate base is base's image, by digest
            base = next(s for s in report["services"] if s["service"] == "base")
            assert labels["org.opencontainers.image.base.digest"] == base["digest"]
    rows = report["results"]
    assert {(r["service"], r["platform"]) for r in rows if r["step"] == "push" and r["status"] == "passed"} == {
        (s, p) for s in ("base", "api", "worker", "tool") for p in ("linux/amd64", "linux/arm64")
    }
    junit = (project / "out" / "junit.xml").read_text()
    assert 'failures="0"' in junit


def _image(ref: str) -> Any:
    from orchestrator.policy.refs import parse

    return parse(ref)


def test_second_run_is_up_to_date_and_starts_no_build(project: Path, first_build: Any) -> None:
    again = orch("build", "--push", "--report", "out2", cwd=project)
    assert again.returncode == 0, again.stderr[-3000:]
    assert builds(again) == []
    rows = report_of(project / "out2")["results"]
    assert {r["status"] for r in rows if r["step"] == "build"} == {"up-to-date"}
    assert {r["status"] for r in rows if r["step"] == "push"} == {"up-to-date"}
    # a new release tag on an unchanged, verified image: tagged from it and pushed, nothing rebuilt
    services = project / "services.yaml"
    original = services.read_text()
    services.write_text(
        original.replace(
            "    binaries: [/usr/local/bin/tool]", "    binaries: [/usr/local/bin/tool]\n    tags: [release-1]"
        )
    )
    try:
        tagged = orch("build", "--push", "--report", "out2b", cwd=project)
    finally:
        services.write_text(original)
    assert tagged.returncode == 0, tagged.stderr[-3000:]
    assert builds(tagged) == []
    tool = next(s for s in report_of(project / "out2b")["services"] if s["service"] == "tool")
    registry = tool["image"]
    assert RegistryClient().resolve(f"{registry}:release-1").digest == tool["digest"]


def test_touching_one_file_rebuilds_that_service_and_its_dependents(project: Path, first_build: Any) -> None:
    source = project / "src" / "cmd" / "base" / "main.go"
    source.write_text(source.read_text().replace("base v1", "base v2"))
    result = orch("build", "--report", "out3", cwd=project)
    assert result.returncode == 0, result.stderr[-3000:]
    assert builds(result) == ["api", "base", "worker"]  # tool does not depend on base
    tool = project / "src" / "cmd" / "tool" / "main.go"
    tool.write_text(tool.read_text().replace("tool v1", "tool v2"))
    result = orch("build", "--report", "out4", cwd=project)
    assert builds(result) == ["tool"]


def test_arch_and_only_build_the_closure_for_one_platform(project: Path, first_build: Any) -> None:
    result = orch("build", "--arch", "arm64", "--only", "api", "--report", "out5", cwd=project)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = report_of(project / "out5")["results"]
    assert {r["service"] for r in rows} == {"base", "api"}
    assert {r["platform"] for r in rows} <= {"linux/arm64", "all"}
    refused = orch("build", "--arch", "arm64", "--push", cwd=project)
    assert refused.returncode == 2
    assert "partial index" in refused.stderr


BROKEN = """\
version: 1
project: broken
registry: {registry}
platforms: [linux/amd64, linux/arm64]
services:
  good:
    dockerfile: dockerfiles/good.Dockerfile
    context: src
    toolchain: {{name: go, version: ">=1.24"}}
    binaries: [/usr/local/bin/good]
  bad:
    dockerfile: dockerfiles/bad.Dockerfile
    context: src
    toolchain: {{name: go, version: ">=1.24"}}
    binaries: [/usr/local/bin/bad]
  child:
    dockerfile: dockerfiles/child.Dockerfile
    context: src
    depends_on: [bad]
    binaries: [/usr/local/bin/bad]
"""


def test_broken_service_fails_once_dependents_skip_independent_builds(tmp_path: Path, run_id: str) -> None:
    root = write_project(
        tmp_path,
        BROKEN.format(registry=f"{REGISTRY}/{run_id}-broken"),
        programs={"good": go_main("good"), "bad": "package main\n\nfunc main() { undefined() }\n"},
        dockerfiles={"good": go_dockerfile("good"), "bad": go_dockerfile("bad"), "child": "FROM bad\n"},
    )
    result = orch("build", "--keep-going", "--jobs", "1", "--report", "out", cwd=root)
    assert result.returncode == 6, result.stderr[-3000:]
    assert builds(result) == ["bad", "good"]  # the compile error ran exactly once, the child never
    assert not [e for e in events(result) if e.get("event") == "retry"]
    report = report_of(root / "out")
    status = {s["service"]: s for s in report["services"]}
    assert status["good"]["status"] == "passed"
    assert status["bad"]["status"] == "failed"
    assert status["child"]["status"] == "skipped"
    assert "dependency failed: bad" in status["child"]["reason"]
    bad_rows = [r for r in report["results"] if r["service"] == "bad" and r["step"] == "build"]
    assert all(r["status"] == "failed" for r in bad_rows)
    assert "undefined" in (bad_rows[0]["evidence"] or "") + (root / "out" / bad_rows[0]["log"]).read_text()
    junit = (root / "out" / "junit.xml").read_text()
    assert 'classname="bad"' in junit
    assert "<failure" in junit
    assert "<skipped" in junit


class _FaultyProxy(socketserver.ThreadingTCPServer):
    """A loopback proxy in front of the registry that answers orch's own requests (its User-Agent) with
    503 two times out of three for each URL (counted per URL, so concurrent callers cannot starve each
    other), and passes the engine's (BuildKit, docker pull and push) through untouched."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.count: dict[str, int] = {}
        self.failed = 0
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _ProxyHandler)


class _ProxyHandler(socketserver.StreamRequestHandler):
    server: _FaultyProxy

    def handle(self) -> None:  # one HTTP/1.1 request per connection is enough for both clients
        if self.rfile.peek(1)[:1] == b"\x16":  # a TLS ClientHello: the engine tries https first, and falls
            # back to http when the server answers in plain HTTP ("server gave HTTP response to HTTPS client")
            self.wfile.write(b"HTTP/1.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            return
        while True:
            request_line = self.rfile.readline()
            if not request_line:
                return
            headers: list[tuple[str, str]] = []
            while True:
                line = self.rfile.readline().decode("latin-1")
                if line in ("\r\n", "\n", ""):
                    break
                key, _, value = line.partition(":")
                headers.append((key.strip(), value.strip()))
            length = int(next((v for k, v in headers if k.lower() == "content-length"), "0"))
            body = self.rfile.read(length) if length else b""
            agent = next((v for k, v in headers if k.lower() == "user-agent"), "")
            if agent.startswith("orch-registry-client"):
                url = request_line.decode("latin-1").split(" ")[1]
                with self.server.lock:
                    self.server.count[url] = self.server.count.get(url, 0) + 1
                    fail = self.server.count[url] % 3 != 0
                    if fail:
                        self.server.failed += 1
                if fail:
                    self.wfile.write(
                        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    )
                    return
            method, path, _ = request_line.decode("latin-1").split(" ", 2)
            chunked = any(k.lower() == "transfer-encoding" and "chunked" in v.lower() for k, v in headers)
            if chunked:
                body = self._read_chunked()
            conn = http.client.HTTPConnection(self.server.upstream, timeout=60)
            fwd = {k: v for k, v in headers if k.lower() not in ("transfer-encoding", "connection", "host")}
            fwd["Host"] = self.server.upstream
            fwd["Content-Length"] = str(len(body))
            conn.request(method, path, body=body if method not in ("GET", "HEAD") or body else None, headers=fwd)
            response = conn.getresponse()
            data = response.read()
            out = [f"HTTP/1.1 {response.status} {response.reason}\r\n"]
            for key, value in response.getheaders():
                if key.lower() in ("transfer-encoding", "connection", "content-length"):
                    continue
                if key.lower() == "location":
                    value = value.replace(self.server.upstream, f"127.0.0.1:{self.server.server_address[1]}")
                out.append(f"{key}: {value}\r\n")
            length_out = response.getheader("Content-Length", "0") if method == "HEAD" else str(len(data))
            out.append(f"Content-Length: {length_out}\r\nConnection: close\r\n\r\n")
            self.wfile.write("".join(out).encode("latin-1") + (b"" if method == "HEAD" else data))
            conn.close()
            return

    def _read_chunked(self) -> bytes:
        body = b""
        while True:
            size = int(self.rfile.readline().strip() or b"0", 16)
            if size == 0:
                self.rfile.readline()
                return body
            body += self.rfile.read(size)
            self.rfile.readline()


@pytest.fixture
def faulty_registry() -> Iterator[_FaultyProxy]:
    proxy = _FaultyProxy(REGISTRY)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy.shutdown()
        proxy.server_close()


def test_transient_registry_errors_are_retried_and_logged(
    tmp_path: Path, run_id: str, faulty_registry: _FaultyProxy
) -> None:
    port = faulty_registry.server_address[1]
    proxied = f"127.0.0.1:{port}"
    services = f"""\
version: 1
project: flaky
registry: {proxied}/{run_id}-flaky
services:
  tool:
    dockerfile: dockerfiles/tool.Dockerfile
    context: src
    toolchain: {{name: go, version: ">=1.24"}}
    binaries: [/usr/local/bin/tool]
"""
    root = write_project(
        tmp_path, services, programs={"tool": go_main("tool")}, dockerfiles={"tool": go_dockerfile("tool")}
    )
    policy = root / "policy" / "policy.yaml"
    policy.write_text(policy.read_text().replace(f"{REGISTRY}/mirror", f"{proxied}/mirror"))
    env = {"ORCH_RETRY_WAIT": "0.05"}
    locked = orch("lock", cwd=root, env=env)  # resolution and probe pulls go through the proxy
    assert locked.returncode == 0, locked.stderr[-3000:]
    lock = json.loads((root / "orch.lock").read_text())["images"]
    assert all(i["pull"].startswith(proxied) for i in lock)
    assert all(i["toolchain_version"] for i in lock if i.get("toolchain"))
    retries = [e for e in events(locked) if e.get("event") == "retry" and "resolve" in e.get("call", "")]
    assert len(retries) >= 2, "resolution through the faulty proxy must have been retried"
    built = orch("build", "--push", "--report", "out", cwd=root, env=env)  # pulls, push, read-back: proxy
    assert built.returncode == 0, built.stderr[-3000:]
    assert builds(built) == ["tool"]  # the build itself ran once
    pushed = f"{proxied}/{run_id}-flaky/tool"
    readback = [e for e in events(built) if e.get("event") == "retry" and pushed in e.get("call", "")]
    assert readback, "the registry look-up and read-back of the pushed image must have been retried"
    report = report_of(root / "out")
    summary = report["services"][0]
    assert summary["pushed"] is True
    info = RegistryClient().resolve(f"{REGISTRY}/{run_id}-flaky/tool:{summary['tags'][0]}")  # direct
    assert info.digest == summary["digest"]
    assert faulty_registry.failed >= 4


def test_push_with_a_failing_verifier_publishes_nothing(tmp_path: Path, run_id: str) -> None:
    from rich.console import Console

    from orchestrator.build import BuildCommand
    from orchestrator.verify.checks import CheckResult
    from orchestrator.verify.image import PlatformVerdict, VerifyTarget

    class Failing:
        def verify(self, target: VerifyTarget) -> tuple[CheckResult, list[PlatformVerdict]]:
            bad = CheckResult("arch", False, "injected failure")
            return CheckResult("index", True, "ok"), [PlatformVerdict(p, (bad,), 0.0) for p in target.platforms]

    registry = f"{REGISTRY}/{run_id}-gate"
    services = f"""\
version: 1
project: gate
registry: {registry}
services:
  tool:
    dockerfile: dockerfiles/tool.Dockerfile
    context: src
    toolchain: {{name: go, version: ">=1.24"}}
    binaries: [/usr/local/bin/tool]
"""
    root = write_project(
        tmp_path, services, programs={"tool": go_main("tool")}, dockerfiles={"tool": go_dockerfile("tool")}
    )
    command = BuildCommand(file=root / "services.yaml", push=True, verifier=Failing())
    with (tmp_path / "console.txt").open("w") as out:
        code = command.run(Console(file=out, width=200))
    assert code == 7
    client = RegistryClient()
    assert command.last_report is not None
    summary = command.last_report.services[0]
    assert summary.pushed is False
    assert client.exists(f"{registry}/tool:orch-{summary.input_hash[:12]}") is None


def test_orch_verify_checks_the_built_services_again(project: Path, first_build: Any) -> None:
    result = orch("verify", "--only", "api", "--report", "verify-out", cwd=project)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    rows = report_of(project / "verify-out")["results"]
    checks = {(r["service"], r["platform"], r["check"]) for r in rows if r["status"] == "passed"}
    for platform in ("linux/amd64", "linux/arm64"):
        for check in ("arch", "static", "go-buildinfo", "runtime-base", "startup"):
            assert ("api", platform, check) in checks


LOCKED = """\
version: 1
project: locked
registry: {registry}
services:
  tool:
    dockerfile: dockerfiles/tool.Dockerfile
    context: src
    toolchain: {{name: go, version: ">=1.24"}}
    binaries: [/usr/local/bin/tool]
"""


def test_locked_refuses_a_missing_or_stale_lock(tmp_path: Path, run_id: str) -> None:
    root = write_project(
        tmp_path,
        LOCKED.format(registry=f"{REGISTRY}/{run_id}-locked"),
        programs={"tool": go_main("tool")},
        dockerfiles={"tool": go_dockerfile("tool")},
    )
    missing = orch("build", "--locked", cwd=root)
    assert missing.returncode == 2
    assert "orch.lock does not exist" in missing.stderr
    assert orch("lock", cwd=root).returncode == 0
    assert orch("lock", "--check", cwd=root).returncode == 0
    policy = root / "policy" / "policy.yaml"  # the same images, pulled from another mirror now
    policy.write_text(policy.read_text().replace(f"{REGISTRY}/mirror/quay.io", f"{REGISTRY}/elsewhere/quay.io"))
    stale = orch("lock", "--check", cwd=root)
    assert stale.returncode == 2
    assert f"pulled from {REGISTRY}/elsewhere/quay.io" in stale.stderr
    refused = orch("build", "--locked", cwd=root)
    assert refused.returncode == 2
    assert not [e for e in events(refused) if e.get("event") == "engine.build"]
    policy.write_text(policy.read_text().replace(f"{REGISTRY}/elsewhere/quay.io", f"{REGISTRY}/mirror/quay.io"))
    unknown = orch("build", "--builder", "no-such-builder", cwd=root)
    assert unknown.returncode == 5, unknown.stderr[-2000:]
    assert "no buildx builder named 'no-such-builder'" in unknown.stderr
    lock_file = root / "orch.lock"  # a lock that pins an index the registry does not have
    good = json.loads(lock_file.read_text())
    bad = json.loads(lock_file.read_text())
    bad["images"][0]["digest"] = "sha256:" + "0" * 64
    lock_file.write_text(json.dumps(bad))
    gone = orch("lock", "--check", cwd=root)
    assert gone.returncode == 2
    assert "pins images the registry no longer has" in gone.stderr
    relocked = orch("lock", cwd=root)  # without --locked, a vanished pin is resolved again
    assert relocked.returncode == 0, relocked.stderr[-2000:]
    assert json.loads(lock_file.read_text())["images"] == good["images"]


def test_ctrl_c_stops_the_build_pushes_nothing_and_exits_130(tmp_path: Path, run_id: str) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    registry = f"{REGISTRY}/{run_id}-interrupt"
    slow = go_dockerfile("tool").replace("RUN --mount", "RUN sleep 60\nRUN --mount")
    root = write_project(
        tmp_path,
        LOCKED.format(registry=registry).replace("project: locked", "project: interrupt"),
        programs={"tool": go_main("tool", "interrupt")},
        dockerfiles={"tool": slow},
    )
    env = {**os.environ, "ORCH_LOG_FORMAT": "json", "NO_COLOR": "1", "PYTHONPATH": str(Path(__file__).parents[2])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "build", "--push"],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 300
    for line in proc.stderr:  # wait until buildx is running
        if '"engine.build"' in line or time.monotonic() > deadline:
            break
    time.sleep(3)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole process group
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted" in err
    leftovers = subprocess.run(
        ["docker", "ps", "-a", "--filter", "name=orch-", "--format", "{{.Names}}"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert leftovers.stdout.strip() == ""
    catalog = subprocess.run(
        ["curl", "-fsS", f"http://{REGISTRY}/v2/{run_id}-interrupt/tool/tags/list"], capture_output=True, text=True
    )
    assert catalog.returncode != 0 or '"tags":null' in catalog.stdout or "orch-" not in catalog.stdout
