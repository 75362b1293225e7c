"""Which build-context files a service build takes, and a content hash over them.

The input hash of a service covers the context files its Dockerfile's COPY/ADD (and
`RUN --mount=type=bind`) read, after `.dockerignore`, so that a change elsewhere in a monorepo does
not rebuild it.

`.dockerignore` follows moby/patternmatcher: patterns are relative to the context root (a leading
`/` or `./` is dropped, the pattern is cleaned), `*` and `?` do not cross `/`, `**` matches any
number of directories, `[...]` classes and `\\` escapes as Go's filepath.Match, `!` re-includes,
the last matching pattern wins, and a pattern matching a directory matches everything below it.
COPY sources are filepath.Match globs per path component; a directory source takes everything below.

The walk uses os.scandir, never follows symlinks, and prunes a directory that is ignored (unless
an exception pattern could re-include something below it) or that no COPY source reaches.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import ConfigError

__all__ = ["context_files", "hash_files", "read_dockerignore"]

_CHUNK = 1 << 20


def read_dockerignore(context: Path, dockerfile: Path | None = None) -> list[str]:
    """The ignore patterns for a build, normalised like moby's ignorefile.ReadAll.

    `<Dockerfile>.dockerignore` next to the Dockerfile wins over `<context>/.dockerignore`, as in
    BuildKit. No file means no patterns.
    """
    candidates: list[Path] = []
    if dockerfile is not None:
        candidates.append(dockerfile.with_name(dockerfile.name + ".dockerignore"))
    candidates.append(context / ".dockerignore")
    for path in candidates:
        try:
            data = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as e:
            raise ConfigError(f"cannot read it: {e.strerror or e}", file=str(path)) from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError("not valid UTF-8", file=str(path)) from None
        return _parse_ignore(text.removeprefix("\ufeff"), str(path))
    return []


def _parse_ignore(text: str, where: str) -> list[str]:
    patterns: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if raw.startswith("#"):
            continue
        pattern = raw.strip()
        if not pattern:
            continue
        try:
            patterns.append(_normalise_ignore(pattern))
        except ValueError as e:
            raise ConfigError(str(e), file=where, line=number) from None
    return patterns


def _normalise_ignore(pattern: str) -> str:
    invert = pattern.startswith("!")
    if invert:
        pattern = pattern[1:].strip()
        if not pattern:
            raise ValueError("illegal exclusion pattern '!'")
    pattern = _clean(pattern)
    return "!" + pattern if invert else pattern


def _clean(path: str) -> str:
    """Go's filepath.Clean, then relative to the root ("" -> ".")."""
    cleaned = posixpath.normpath(path) if path else "."
    cleaned = cleaned.lstrip("/")
    return cleaned or "."


# ------------------------------------------------------------------------------------- patterns


def _glob_regex(pattern: str, *, double_star: bool) -> str:
    """A Go filepath.Match-style glob (plus `**` for .dockerignore) as a regex body."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            if double_star and pattern.startswith("*", i + 1):
                i += 2
                if pattern.startswith("/", i):
                    i += 1
                out.append(".*" if i >= n else "(?:.*/)?")
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "\\" and i + 1 < n:
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        elif c == "[":
            j = i + 1
            if j < n and pattern[j] == "^":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 2 if pattern[j] == "\\" else 1
            if j >= n:
                raise ValueError(f"bad pattern {pattern!r}: unterminated '['")
            body = pattern[i + 1 : j]
            negate = body.startswith("^")
            if negate:
                body = body[1:]
            body = body.replace("[", "\\[")
            out.append(f"[^/{body}]" if negate else f"[{body}]")
            i = j
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


@dataclass(frozen=True)
class _Ignore:
    regex: re.Pattern[str]
    exclusion: bool  # a `!` pattern
    parts: tuple[re.Pattern[str] | None, ...]  # per component; None = contains "**"


def _compile_ignore(patterns: Sequence[str]) -> list[_Ignore]:
    out: list[_Ignore] = []
    for raw in patterns:
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        try:
            pattern = _normalise_ignore(pattern)
            exclusion = pattern.startswith("!")
            body = pattern[1:] if exclusion else pattern
            regex = re.compile("^" + _glob_regex(body, double_star=True) + "$")
            parts = tuple(
                None if "**" in part else re.compile(_glob_regex(part, double_star=False)) for part in body.split("/")
            )
        except (ValueError, re.error) as e:
            raise ConfigError(f"bad .dockerignore pattern {raw!r}: {e}") from None
        out.append(_Ignore(regex, exclusion, parts))
    return out


@dataclass(frozen=True)
class _Source:
    parts: tuple[re.Pattern[str], ...]  # empty = the whole context


def _compile_sources(sources: Sequence[str]) -> list[_Source]:
    out: list[_Source] = []
    for raw in sources:
        cleaned = _clean("/" + raw)
        if cleaned == ".":
            out.append(_Source(()))
            continue
        try:
            parts = tuple(re.compile(_glob_regex(p, double_star=False)) for p in cleaned.split("/"))
        except (ValueError, re.error) as e:
            raise ConfigError(f"bad COPY source pattern {raw!r}: {e}") from None
        out.append(_Source(parts))
    return out


class _Matcher:
    def __init__(self, ignore: Sequence[str], sources: Sequence[str] | None) -> None:
        self.ignore = _compile_ignore(ignore)
        self.exclusions = [p for p in self.ignore if p.exclusion]
        self.sources = None if sources is None else _compile_sources(sources)
        if self.sources is not None and any(not s.parts for s in self.sources):
            self.sources = None  # "." takes everything

    def hits(self, rel: str, parent_hits: tuple[bool, ...]) -> tuple[bool, ...]:
        """Per pattern: does it match `rel` or one of its parents."""
        return tuple(
            parent or p.regex.match(rel) is not None for p, parent in zip(self.ignore, parent_hits, strict=True)
        )

    def excluded(self, hits: tuple[bool, ...]) -> bool:
        for p, hit in zip(reversed(self.ignore), reversed(hits), strict=True):
            if hit:
                return not p.exclusion
        return False

    def may_reinclude_below(self, parts: list[str]) -> bool:
        """Could an exception pattern match something below the directory `parts`?"""
        for p in self.exclusions:
            for k, comp in enumerate(p.parts):
                if comp is None:
                    return True
                if k >= len(parts):
                    return True
                if not comp.fullmatch(parts[k]):
                    break
            else:
                return True
        return False

    def source_reach(self, parts: list[str]) -> int:
        """0: no source reaches `parts`; 1: a source lies below it; 2: a source covers it."""
        if self.sources is None:
            return 2
        best = 0
        for s in self.sources:
            n = min(len(parts), len(s.parts))
            if all(s.parts[k].fullmatch(parts[k]) for k in range(n)):
                if len(parts) >= len(s.parts):
                    return 2
                best = 1
        return best


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def context_files(context: Path, *, sources: Sequence[str] | None, ignore: Sequence[str]) -> list[Path]:
    """The files of `context` a build takes, as sorted paths relative to it.

    `sources`: COPY/ADD source patterns relative to the context (None = the whole context).
    `ignore`: .dockerignore patterns. Symlinks are listed (not followed) unless they point out of
    the context; other special files are skipped.
    """
    if not context.is_dir():
        raise ConfigError(f"the build context {context} is not a directory")
    matcher = _Matcher(ignore, sources)
    real_root = os.path.realpath(context)
    found: list[str] = []
    no_hits = tuple(False for _ in matcher.ignore)
    # (absolute dir, relative parts, pattern hits of the dir and its parents, covered by a source)
    stack: list[tuple[str, list[str], tuple[bool, ...], bool]] = [(str(context), [], no_hits, matcher.sources is None)]
    while stack:
        abs_dir, parts, parent_hits, covered = stack.pop()
        try:
            with os.scandir(abs_dir) as it:
                entries = list(it)
        except OSError as e:
            rel_dir = "/".join(parts) or "."
            raise ConfigError(f"cannot read {rel_dir} in the build context {context}: {e.strerror or e}") from None
        for entry in entries:
            entry_parts = [*parts, entry.name]
            rel = "/".join(entry_parts)
            hits = matcher.hits(rel, parent_hits)
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
                is_link = not is_dir and entry.is_symlink()
                is_file = not is_dir and not is_link and entry.is_file(follow_symlinks=False)
            except OSError:
                continue
            if is_dir:
                if matcher.excluded(hits) and not matcher.may_reinclude_below(entry_parts):
                    continue
                reach = 2 if covered else matcher.source_reach(entry_parts)
                if reach:
                    stack.append((entry.path, entry_parts, hits, reach == 2))
                continue
            if not (is_file or is_link) or matcher.excluded(hits):
                continue
            if not covered and matcher.source_reach(entry_parts) != 2:
                continue
            if is_link and not _inside(os.path.realpath(entry.path), real_root):
                continue  # points out of the context: never part of the inputs
            found.append(rel)
    found.sort()
    return [Path(r) for r in found]


def hash_files(context: Path, files: Sequence[Path]) -> str:
    """`sha256:<hex>` over (relative path, executable bit, content) in sorted path order.

    A symlink is hashed as its target text, never followed; a file reached through a symlinked
    directory that leaves the context is refused.
    """
    real_root = os.path.realpath(context)
    checked_dirs: dict[str, bool] = {}
    digest = hashlib.sha256()
    for rel in sorted({Path(f).as_posix() for f in files}):
        if rel.startswith("/") or ".." in rel.split("/") or rel in ("", "."):
            raise ConfigError(f"{rel!r} is not a path inside the build context {context}")
        full = context / rel
        parent = str(full.parent)
        if parent not in checked_dirs:
            checked_dirs[parent] = _inside(os.path.realpath(parent), real_root)
        if not checked_dirs[parent]:
            raise ConfigError(f"{rel} lies outside the build context {context} (via a symlink)")
        try:
            st = full.lstat()
            digest.update(os.fsencode(rel) + b"\0")
            if stat.S_ISLNK(st.st_mode):
                digest.update(b"l" + os.fsencode(str(full.readlink())) + b"\0")
            elif stat.S_ISREG(st.st_mode):
                digest.update(b"x" if st.st_mode & 0o111 else b"-")
                digest.update(st.st_size.to_bytes(8, "big"))
                with full.open("rb") as fh:
                    while chunk := fh.read(_CHUNK):
                        digest.update(chunk)
            else:
                raise ConfigError(f"{rel} in the build context {context} is not a regular file")
        except OSError as e:
            raise ConfigError(f"cannot read {rel} in the build context {context}: {e.strerror or e}") from None
    return "sha256:" + digest.hexdigest()
