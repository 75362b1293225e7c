"""Image references: normalisation (`golang:1.25` is `docker.io/library/golang:1.25`), registry
patterns (`docker.io`, `quay.io/*`, `quay.io/jordigilh/*`) and mirrors."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_REGISTRY = "docker.io"
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class ImageName:
    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """registry/repository, without tag or digest."""
        return f"{self.registry}/{self.repository}"

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    def with_digest(self, digest: str) -> ImageName:
        return ImageName(self.registry, self.repository, self.tag, digest)

    @property
    def unpinned(self) -> bool:
        return self.digest is None and self.tag in (None, "latest")


class BadReference(ValueError):
    pass


def parse(ref: str) -> ImageName:
    text = ref.strip()
    if not text or any(c.isspace() for c in text) or "$" in text:
        raise BadReference(f"{ref!r} is not an image reference")
    digest = None
    if "@" in text:
        text, digest = text.split("@", 1)
        if not _DIGEST.match(digest):
            raise BadReference(f"{ref!r}: digest must be sha256:<64 hex digits>")
    tag = None
    last = text.rsplit("/", 1)[-1]
    if ":" in last:
        text, tag = text.rsplit(":", 1)
    first, _, rest = text.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        registry, repository = first, rest
    else:
        registry, repository = DEFAULT_REGISTRY, text
    if registry == DEFAULT_REGISTRY and "/" not in repository:
        repository = f"library/{repository}"
    if not repository or repository != repository.lower():
        raise BadReference(f"{ref!r}: repository names are lower-case")
    return ImageName(registry, repository, tag, digest)


def normalise(ref: str) -> str:
    return str(parse(ref))


def matches(pattern: str, image: ImageName) -> bool:
    """`host` matches every image of that registry; `host/path/*` everything below that path;
    `host/path` that one repository."""
    pat = pattern.strip().rstrip("/")
    if pat.endswith("/*"):
        prefix = pat[:-2]
        if "/" not in prefix:
            return image.registry == prefix
        return image.name.startswith(prefix + "/")
    if "/" not in pat:
        return image.registry == pat
    return image.name == pat or normalise_pattern_repo(pat) == image.name


def normalise_pattern_repo(pattern: str) -> str:
    try:
        return parse(pattern).name
    except BadReference:
        return pattern


def mirror(ref: str, mirrors: Mapping[str, str]) -> str:
    """Where a policy name is actually pulled from: the longest matching prefix is replaced."""
    image = parse(ref)
    full = str(image)
    best = ""
    for prefix in mirrors:
        p = prefix.rstrip("/")
        if (image.name == p or image.name.startswith(p + "/")) and len(p) > len(best):
            best = p
    if not best:
        return full
    return mirrors[best].rstrip("/") + full[len(best) :]
