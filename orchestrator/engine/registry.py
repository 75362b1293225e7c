"""A small OCI distribution client: where orch itself talks to a registry (resolution, read-back).

HTTP for loopback addresses (as Docker does for 127.0.0.0/8), HTTPS elsewhere; anonymous bearer tokens
and the engine's own credentials (`docker login`, ~/.docker/config.json `auths`). Nothing here ever
logs a credential. 5xx, resets and timeouts raise TransientEngineError, which the retry wrapper retries.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.errors import EngineError, ImageNotFound, TransientEngineError
from orchestrator.policy.refs import ImageName, parse

INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
ACCEPT = ", ".join(INDEX_TYPES + MANIFEST_TYPES)
USER_AGENT = "orch-registry-client/1"
TIMEOUT = 30.0


@dataclass(frozen=True)
class IndexInfo:
    """A reference as the registry serves it: the digest of what the tag points at, and, for an
    index, each platform's manifest digest (attestation entries listed separately)."""

    digest: str
    media_type: str
    platforms: dict[str, str]
    attestations: tuple[str, ...] = ()

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES


def _is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]", maxsplit=1)[0][1:]
    return name in ("localhost", "::1") or name.startswith("127.")


def _platform_of(entry: dict[str, Any]) -> str | None:
    plat = entry.get("platform") or {}
    os_, arch = plat.get("os"), plat.get("architecture")
    if not os_ or not arch or os_ == "unknown":
        return None
    text = f"{os_}/{arch}"
    variant = plat.get("variant")
    if variant and not (arch == "arm64" and variant == "v8"):
        text += f"/{variant}"
    return text


class RegistryClient:
    def __init__(self, docker_config: Path | None = None) -> None:
        self._config = docker_config or Path(os.environ.get("DOCKER_CONFIG", Path.home() / ".docker")) / "config.json"
        self._tokens: dict[str, str] = {}
        self.requests = 0

    # -- public -----------------------------------------------------------------------------------

    def resolve(self, ref: str) -> IndexInfo:
        image = parse(ref)
        body, media_type, digest = self._get_manifest(image, image.digest or image.tag or "latest")
        doc = json.loads(body)
        media_type = doc.get("mediaType") or media_type
        platforms: dict[str, str] = {}
        attestations: list[str] = []
        if media_type in INDEX_TYPES or "manifests" in doc:
            for entry in doc.get("manifests", []):
                if (entry.get("annotations") or {}).get("vnd.docker.reference.type"):
                    attestations.append(entry["digest"])
                    continue
                plat = _platform_of(entry)
                if plat is None:
                    attestations.append(entry["digest"])
                    continue
                platforms[plat] = entry["digest"]
        else:
            config = self.blob_json(image, doc["config"]["digest"])
            plat = f"{config.get('os', 'linux')}/{config.get('architecture', 'unknown')}"
            platforms[plat] = digest
        return IndexInfo(digest, media_type, platforms, tuple(attestations))

    def manifest_json(self, image: ImageName, reference: str) -> dict[str, Any]:
        body, _, _ = self._get_manifest(image, reference)
        data: dict[str, Any] = json.loads(body)
        return data

    def blob_json(self, image: ImageName, digest: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self._request(image, f"blobs/{digest}")[0])
        return data

    def exists(self, ref: str) -> str | None:
        try:
            return self.resolve(ref).digest
        except ImageNotFound:
            return None

    def ping(self, registry: str) -> None:
        url = f"{self._scheme(registry)}://{registry}/v2/"
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            if exc.code == 401:
                return  # it answers; auth is per repository
            if exc.code >= 500 or exc.code == 429:
                raise TransientEngineError(f"registry {registry} answered {exc.code} on /v2/") from None
            raise EngineError(f"registry {registry} answered {exc.code} on /v2/") from None
        except (urllib.error.URLError, OSError) as exc:
            raise EngineError(
                f"registry {registry} is not reachable: {getattr(exc, 'reason', exc)}",
                hint="start it with `scripts/engine.sh up`, or check services.yaml `registry:`",
            ) from None

    # -- HTTP -------------------------------------------------------------------------------------

    def _get_manifest(self, image: ImageName, reference: str) -> tuple[bytes, str, str]:
        body, headers = self._request(image, f"manifests/{reference}", accept=ACCEPT)
        digest = headers.get("Docker-Content-Digest") or "sha256:" + hashlib.sha256(body).hexdigest()
        if reference.startswith("sha256:") and "sha256:" + hashlib.sha256(body).hexdigest() != reference:
            raise EngineError(f"registry returned content not matching {reference} for {image.name}")
        return body, headers.get("Content-Type", ""), digest

    @staticmethod
    def _scheme(registry: str) -> str:
        return "http" if _is_loopback(registry) else "https"

    def _request(self, image: ImageName, path: str, *, accept: str | None = None) -> tuple[bytes, dict[str, str]]:
        registry = "registry-1.docker.io" if image.registry == "docker.io" else image.registry
        url = f"{self._scheme(registry)}://{registry}/v2/{image.repository}/{path}"
        for attempt in range(2):
            headers = {"User-Agent": USER_AGENT}
            if accept:
                headers["Accept"] = accept
            auth = self._tokens.get(registry) or self._basic(image.registry)
            if auth:
                headers["Authorization"] = auth
            request = urllib.request.Request(url, headers=headers)
            self.requests += 1
            try:
                with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                    return response.read(), dict(response.headers.items())
            except urllib.error.HTTPError as exc:
                if exc.code == 401 and attempt == 0 and self._authenticate(registry, image, exc):
                    continue
                if exc.code == 404:
                    raise ImageNotFound(
                        f"{image.name}: {path.rsplit('/', maxsplit=1)[-1]} not found in {registry}",
                        hint="check the image name and tag, or the policy's mirrors",
                    ) from None
                if exc.code >= 500 or exc.code == 429:
                    raise TransientEngineError(f"registry {registry} answered {exc.code} for {url}") from None
                raise EngineError(f"registry {registry} answered {exc.code} {exc.reason} for {url}") from None
            except (TimeoutError, urllib.error.URLError, http.client.HTTPException, ConnectionError) as exc:
                reason = getattr(exc, "reason", exc)
                if isinstance(reason, ConnectionRefusedError):
                    raise EngineError(
                        f"registry {registry} is not reachable (connection refused)",
                        hint="start it with `scripts/engine.sh up`, or check the mirrors in the policy",
                    ) from None
                raise TransientEngineError(f"registry {registry}: {reason} for {url}") from None
        raise EngineError(f"registry {registry} refused the credentials for {image.name}")

    def _basic(self, registry: str) -> str | None:
        try:
            auths = json.loads(self._config.read_text()).get("auths", {})
        except (OSError, ValueError):
            return None
        for key in (registry, f"https://{registry}", f"http://{registry}"):
            entry = auths.get(key)
            if entry and entry.get("auth"):
                return f"Basic {entry['auth']}"
        return None

    def _authenticate(self, registry: str, image: ImageName, exc: urllib.error.HTTPError) -> bool:
        challenge = exc.headers.get("WWW-Authenticate", "")
        if not challenge.lower().startswith("bearer"):
            return False
        params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        realm = params.pop("realm", None)
        if not realm:
            return False
        params.setdefault("scope", f"repository:{image.repository}:pull")
        headers = {"User-Agent": USER_AGENT}
        basic = self._basic(image.registry)
        if basic:
            headers["Authorization"] = basic
        token_url = realm + "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(
                urllib.request.Request(token_url, headers=headers), timeout=TIMEOUT
            ) as response:
                data = json.loads(response.read())
        except (urllib.error.URLError, OSError, ValueError):
            return False
        token = data.get("token") or data.get("access_token")
        if not token:
            return False
        self._tokens[registry] = f"Bearer {token}"
        return True
