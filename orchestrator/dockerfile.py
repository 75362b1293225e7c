"""A pure Dockerfile reader: stages, the images they name, and the context files they take.

No engine, no subprocess. orch uses it to lint image references against the registry policy, to find
the images a Dockerfile names literally (to pin them by digest through buildx named contexts), to
know the stage names (a named build context must never equal one) and to find which context files
COPY/ADD and `RUN --mount=type=bind` read (for the input hash).

Follows BuildKit's dockerfile frontend where it matters: parser directives (`# escape=`,
`# syntax=`, `# check=`), line continuations with comment and blank lines inside them, heredocs for
RUN/COPY/ADD, exec (JSON) form, leading `--flags`, and variable substitution (`$V`, `${V}`,
`${V:-w}`, `${V-w}`, `${V:+w}`, `${V+w}`, `${V:?m}`) with the global ARG scope for FROM and the
stage scope (ARG/ENV, falling back to the global scope) for `--from=` and COPY sources.

A value that cannot be known statically stays unresolved (`None`): an ARG without a default and no
build arg given, the platform ARGs BuildKit predefines (`TARGETARCH`, ...) unless a build arg gives
them, and the substitution modifiers BuildKit added later (`${V#p}`, `${V%p}`, `${V/p/r}`).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Final, Literal

from orchestrator.errors import DockerfileError

__all__ = [
    "KEYWORDS",
    "PLATFORM_ARGS",
    "CopySource",
    "Dockerfile",
    "Heredoc",
    "ImageRef",
    "Instruction",
    "RefKind",
    "Stage",
    "StageRef",
    "load_dockerfile",
    "parse_dockerfile",
]

RefKind = Literal["from", "copy-from", "mount-from"]

KEYWORDS: Final = frozenset(
    {
        "ADD",
        "ARG",
        "CMD",
        "COPY",
        "ENTRYPOINT",
        "ENV",
        "EXPOSE",
        "FROM",
        "HEALTHCHECK",
        "LABEL",
        "MAINTAINER",
        "ONBUILD",
        "RUN",
        "SHELL",
        "STOPSIGNAL",
        "USER",
        "VOLUME",
        "WORKDIR",
    }
)

# ARGs BuildKit defines itself, per platform: they stay unresolved unless a build arg gives them.
PLATFORM_ARGS: Final = frozenset(
    {
        "BUILDPLATFORM",
        "BUILDOS",
        "BUILDARCH",
        "BUILDVARIANT",
        "TARGETPLATFORM",
        "TARGETOS",
        "TARGETARCH",
        "TARGETVARIANT",
    }
)

_DIRECTIVES: Final = frozenset({"syntax", "escape", "check"})
_DIRECTIVE_RE: Final = re.compile(r"^#\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(.*?)\s*$")
_HEREDOC_RE: Final = re.compile(r"^(\d*)<<(-?)(.+)$")
_HEREDOC_KEYWORDS: Final = frozenset({"RUN", "COPY", "ADD"})
_NAME_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_STAGE_NAME_RE: Final = re.compile(r"^[a-z][a-z0-9._-]*$")
_FLAG_NAME_RE: Final = re.compile(r"--([A-Za-z][A-Za-z0-9-]*)")
_URL_RE: Final = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://|^git@")
_MOUNT_ALIASES: Final = {
    "src": "source",
    "dst": "target",
    "destination": "target",
    "ro": "readonly",
    "readwrite": "rw",
}


def _frozen(m: Mapping[str, str] | None = None) -> Mapping[str, str]:
    return MappingProxyType(dict(m or {}))


@dataclass(frozen=True)
class Heredoc:
    """A heredoc body (`<<EOF ... EOF`) attached to a RUN/COPY/ADD instruction."""

    name: str
    body: str
    chomp: bool  # `<<-`: leading tabs stripped
    line: int  # the first body line (1-based)


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper-case
    args: str  # raw text after the keyword, continuations joined, flags included
    line: int  # 1-based line of the keyword
    end_line: int  # last line, heredoc terminators included
    flags: Mapping[str, str] = field(default_factory=_frozen, hash=False)
    # RUN --mount=...: keys lower-cased, aliases normalised (src->source, dst/destination->target,
    # ro->readonly), bare keys -> "true", "type" defaults to "bind". Values raw (unexpanded).
    mounts: tuple[Mapping[str, str], ...] = field(default=(), hash=False)
    heredocs: tuple[Heredoc, ...] = ()
    body: str = ""  # args with the leading flags removed


@dataclass(frozen=True)
class ImageRef:
    """An external image FROM / COPY --from / RUN --mount from= names (not a stage, not scratch)."""

    raw: str  # as written, e.g. "${BUILDER_IMAGE}"
    resolved: str | None  # after ARG substitution; None when it stays unresolved
    line: int
    kind: RefKind
    stage_index: int  # the stage it appears in
    via_args: tuple[str, ...] = ()  # ARG/ENV names substituted to get there (transitively)


@dataclass(frozen=True)
class StageRef:
    """A reference to another stage of the same Dockerfile."""

    raw: str
    line: int
    kind: RefKind
    stage_index: int  # the referring stage
    target_index: int  # the referenced stage


@dataclass(frozen=True)
class CopySource:
    """A build-context path COPY/ADD (no --from) or `RUN --mount=type=bind` (no from=) reads."""

    source: str  # after substitution when resolved, else as written; relative to the context
    raw: str
    resolved: bool
    line: int
    stage_index: int
    keyword: Literal["COPY", "ADD", "RUN"]


@dataclass(frozen=True)
class Stage:
    index: int
    name: str | None  # AS name, lower-cased
    base_raw: str  # the FROM argument as written
    base_resolved: str | None
    base_image: ImageRef | None  # FROM an external image (also when unresolved)
    base_stage: str | None  # FROM an earlier stage: its name
    base_stage_index: int | None
    is_scratch: bool
    platform: str | None  # --platform flag as written
    line: int
    instructions: tuple[Instruction, ...]  # FROM first
    image_refs: tuple[ImageRef, ...] = ()  # base_image included
    stage_refs: tuple[StageRef, ...] = ()
    copy_sources: tuple[CopySource, ...] = ()
    args: Mapping[str, str | None] = field(default_factory=_frozen, hash=False)  # ARGs declared

    @property
    def depends_on(self) -> tuple[int, ...]:
        """Indices of the stages this one reads from (FROM <stage>, --from=<stage>)."""
        return tuple(sorted({r.target_index for r in self.stage_refs}))


@dataclass(frozen=True)
class Dockerfile:
    path: str
    stages: tuple[Stage, ...]
    global_args: Mapping[str, str | None] = field(default_factory=_frozen, hash=False)
    global_instructions: tuple[Instruction, ...] = ()
    directives: Mapping[str, str] = field(default_factory=_frozen, hash=False)
    escape: str = "\\"
    build_args: Mapping[str, str] = field(default_factory=_frozen, hash=False)

    @property
    def syntax(self) -> str | None:
        return self.directives.get("syntax")

    def image_refs(self, target: str | None = None) -> list[ImageRef]:
        """Every external image named, in file order. `target` restricts to the stages it needs."""
        stages = self._needed(target) if target is not None else range(len(self.stages))
        return [ref for i in stages for ref in self.stages[i].image_refs]

    def stage_names(self) -> set[str]:
        return {s.name for s in self.stages if s.name is not None}

    def final_stage(self, target: str | None = None) -> Stage:
        if target is None:
            return self.stages[-1]
        wanted = target.lower()
        for stage in self.stages:
            if stage.name == wanted:
                return stage
        names = ", ".join(sorted(self.stage_names())) or "none"
        raise DockerfileError(
            f"{self.path}: no stage named {target!r} (stages: {names})",
            hint="set the service's target to one of the stage names",
        )

    def needed_stages(self, target: str | None = None) -> list[int]:
        """Indices of the stages building `target` needs: it and its ancestors, in file order."""
        return self._needed(target)

    def copy_sources(self, target: str | None = None) -> list[CopySource]:
        """Context paths read by the stages `target` needs, in file order."""
        return [src for i in self._needed(target) for src in self.stages[i].copy_sources]

    def unresolved_refs(self) -> list[ImageRef]:
        return [r for r in self.image_refs() if r.resolved is None]

    def _needed(self, target: str | None) -> list[int]:
        start = self.final_stage(target).index
        seen = {start}
        todo = [start]
        while todo:
            for dep in self.stages[todo.pop()].depends_on:
                if dep not in seen:
                    seen.add(dep)
                    todo.append(dep)
        return sorted(seen)


# --------------------------------------------------------------------------- variable substitution

# A scope maps a name to (value, via): value None = set but unknown statically (platform ARGs);
# a name missing from the scope is unset. `via` is the names its value came through.
_Var = tuple[str | None, tuple[str, ...]]
_Scope = Mapping[str, _Var]


class _SubstError(Exception):
    pass


@dataclass
class _Word:
    text: str = ""
    resolved: bool = True
    used: list[str] = field(default_factory=list)

    def use(self, names: Iterable[str]) -> None:
        for n in names:
            if n not in self.used:
                self.used.append(n)


class _Lexer:
    """BuildKit's shell-word processing: quote removal, the escape char, `$` substitution."""

    def __init__(self, scope: _Scope, escape: str) -> None:
        self.scope = scope
        self.esc = escape

    def word(self, s: str) -> _Word:
        return self._scan(s, split=False)[0]

    def words(self, s: str) -> list[_Word]:
        return self._scan(s, split=True)

    def _scan(self, s: str, *, split: bool) -> list[_Word]:
        out: list[_Word] = []
        cur = _Word()
        buf: list[str] = []
        in_word = False
        i, n, esc = 0, len(s), self.esc
        while i < n:
            c = s[i]
            if c == "'":
                j = s.find("'", i + 1)
                if j < 0:
                    raise _SubstError("unterminated single quote")
                buf.append(s[i + 1 : j])
                i, in_word = j + 1, True
            elif c == '"':
                i, in_word = i + 1, True
                while i < n and s[i] != '"':
                    if s[i] == esc and i + 1 < n:
                        nxt = s[i + 1]
                        buf.append(nxt if nxt in ('"', "$", esc) else esc + nxt)
                        i += 2
                    elif s[i] == "$":
                        i = self._dollar(s, i, cur, buf)
                    else:
                        buf.append(s[i])
                        i += 1
                if i >= n:
                    raise _SubstError("unterminated double quote")
                i += 1
            elif c == esc and i + 1 < n:
                buf.append(s[i + 1])
                i, in_word = i + 2, True
            elif c == "$":
                i, in_word = self._dollar(s, i, cur, buf), True
            elif split and c.isspace():
                if in_word:
                    cur.text = "".join(buf)
                    out.append(cur)
                    cur, buf, in_word = _Word(), [], False
                i += 1
            else:
                buf.append(c)
                i, in_word = i + 1, True
        if in_word or not split:
            cur.text = "".join(buf)
            out.append(cur)
        return out

    def _close_brace(self, s: str, k: int) -> int:
        depth = 1
        while k < len(s):
            ch = s[k]
            if ch == self.esc:
                k += 2
                continue
            if ch == "$" and s.startswith("{", k + 1):
                depth += 1
                k += 2
                continue
            if ch == "}":
                depth -= 1
                if depth == 0:
                    return k
            k += 1
        raise _SubstError("missing '}' in a ${...} substitution")

    def _lookup(self, name: str, word: _Word) -> tuple[bool, str | None]:
        """(is_set, value); value None with is_set True = unknown statically."""
        word.use([name])
        if name not in self.scope:
            return False, None
        value, via = self.scope[name]
        word.use(via)
        return True, value

    def _dollar(self, s: str, i: int, word: _Word, buf: list[str]) -> int:
        """Expand the `$...` at s[i] into buf; returns the index after it."""
        if s.startswith("{", i + 1):
            j = self._close_brace(s, i + 2)
            inner = s[i + 2 : j]
            m = _NAME_RE.match(inner)
            if not m:
                raise _SubstError(f"bad substitution ${{{inner}}}")
            name, rest = m.group(), inner[m.end() :]
            is_set, value = self._lookup(name, word)
            if rest == "":
                self._emit(value if is_set else None, word, buf)
                return j + 1
            colon = rest.startswith(":")
            op = rest[1:2] if colon else rest[:1]
            if op not in ("-", "+", "?"):
                word.resolved = False  # ${V#p}, ${V%p}, ${V/p/r}: not evaluated statically
                return j + 1
            alt = self._scan(rest[2:] if colon else rest[1:], split=False)[0]
            word.use(alt.used)
            if is_set and value is None:  # known to be set, value unknown
                word.resolved = False
                return j + 1
            present = is_set and (value != "" if colon else True)
            if op == "-":
                if present:
                    self._emit(value, word, buf)
                else:
                    self._emit(alt.text if alt.resolved else None, word, buf)
            elif op == "+":
                if present:
                    self._emit(alt.text if alt.resolved else None, word, buf)
            else:  # "?": an error at build time when absent
                self._emit(value if present else None, word, buf)
            return j + 1
        m = _NAME_RE.match(s, i + 1)
        if not m:
            buf.append("$")
            return i + 1
        is_set, value = self._lookup(m.group(), word)
        self._emit(value if is_set else None, word, buf)
        return m.end()

    @staticmethod
    def _emit(value: str | None, word: _Word, buf: list[str]) -> None:
        if value is None:
            word.resolved = False
        else:
            buf.append(value)


# --------------------------------------------------------------------------------- line splitting


def _raw_words(s: str, escape: str) -> list[str]:
    """Split on unquoted whitespace, keeping quotes, escapes and `$` as written."""
    out: list[str] = []
    buf: list[str] = []
    quote: str | None = None
    i = 0
    while i < len(s):
        c = s[i]
        if quote:
            buf.append(c)
            if c == escape and quote == '"' and i + 1 < len(s):
                buf.append(s[i + 1])
                i += 1
            elif c == quote:
                quote = None
        elif c.isspace():
            if buf:
                out.append("".join(buf))
                buf = []
        else:
            buf.append(c)
            if c in "'\"":
                quote = c
            elif c == escape and i + 1 < len(s):
                buf.append(s[i + 1])
                i += 1
        i += 1
    if buf:
        out.append("".join(buf))
    return out


def _split_flags(s: str, escape: str) -> tuple[dict[str, str], list[dict[str, str]], str]:
    """Leading `--name[=value]` flags; `--mount` values parsed. Returns (flags, mounts, rest)."""
    flags: dict[str, str] = {}
    mounts: list[dict[str, str]] = []
    pos = 0
    while True:
        while pos < len(s) and s[pos].isspace():
            pos += 1
        m = _FLAG_NAME_RE.match(s, pos)
        if not m:
            break
        end = m.end()
        value = "true"
        if end < len(s) and s[end] == "=":
            k = end + 1
            quote: str | None = None
            while k < len(s) and (quote or not s[k].isspace()):
                if quote and s[k] == quote:
                    quote = None
                elif not quote and s[k] in "'\"":
                    quote = s[k]
                k += 1
            value, end = s[end + 1 : k], k
        elif end < len(s) and not s[end].isspace():
            break  # "--foo+bar": not a flag
        pos = end
        name = m.group(1)
        if name == "mount":
            mounts.append(_parse_mount(value))
        else:
            flags[name] = value
    return flags, mounts, s[pos:]


def _parse_mount(value: str) -> dict[str, str]:
    mount: dict[str, str] = {}
    for row in csv.reader([value]):
        for item in row:
            key, sep, val = item.partition("=")
            key = key.strip().lower()
            if not key:
                continue
            key = _MOUNT_ALIASES.get(key, key)
            mount[key] = val if sep else "true"
    mount.setdefault("type", "bind")
    return mount


@dataclass
class _Logical:
    keyword: str
    args: str
    line: int
    end_line: int
    heredocs: tuple[Heredoc, ...]


def _continuation(line: str, escape: str) -> tuple[str, bool]:
    stripped = line.rstrip(" \t")
    if stripped.endswith(escape):
        return stripped[: -len(escape)], True
    return line, False


def _heredoc_names(args: str, escape: str) -> list[tuple[str, bool]]:
    found: list[tuple[str, bool]] = []
    for raw in _raw_words(args, escape):
        m = _HEREDOC_RE.match(raw)
        if not m:
            continue
        name = m.group(3).replace('"', "").replace("'", "")
        if name and "<" not in name:
            found.append((name, m.group(2) == "-"))
    return found


def _logical_lines(lines: list[str], path: str, escape: str) -> list[_Logical]:
    out: list[_Logical] = []
    i, n = 0, len(lines)
    while i < n:
        stripped = lines[i].strip()
        if not stripped or stripped.startswith("#"):
            i += 1
            continue
        start = i
        parts: list[str] = []
        while True:
            body, more = _continuation(lines[i], escape)
            parts.append(body)
            if not more:
                break
            i += 1
            while i < n and (not lines[i].strip() or lines[i].lstrip().startswith("#")):
                i += 1
            if i >= n:
                i -= 1
                break
        keyword, _, args = "".join(parts).strip().partition(" ")
        if "\t" in keyword:  # "RUN\tmake": split on the first blank of either kind
            keyword, _, rest = keyword.partition("\t")
            args = rest + " " + args
        keyword, args = keyword.upper(), args.strip()
        if keyword not in KEYWORDS:
            raise DockerfileError(
                f"{path}:{start + 1}: unknown instruction {keyword!r}",
                hint="check the spelling; a continuation line may be missing its escape character",
            )
        heredocs: list[Heredoc] = []
        if keyword in _HEREDOC_KEYWORDS and "<<" in args:
            for name, chomp in _heredoc_names(args, escape):
                body_start = i + 1
                k = body_start
                while k < n and (lines[k].lstrip("\t") if chomp else lines[k]) != name:
                    k += 1
                if k >= n:
                    raise DockerfileError(
                        f"{path}:{start + 1}: unterminated heredoc <<{name}",
                        hint=f"end the heredoc with a line holding only {name!r}",
                    )
                body_lines = lines[body_start:k]
                if chomp:
                    body_lines = [ln.lstrip("\t") for ln in body_lines]
                body = "".join(ln + "\n" for ln in body_lines)
                heredocs.append(Heredoc(name=name, body=body, chomp=chomp, line=body_start + 1))
                i = k
        out.append(_Logical(keyword, args, start + 1, i + 1, tuple(heredocs)))
        i += 1
    return out


def _directives(lines: list[str], path: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for number, line in enumerate(lines, start=1):
        m = _DIRECTIVE_RE.match(line.strip())
        if not m or m.group(1).lower() not in _DIRECTIVES:
            break
        key = m.group(1).lower()
        if key in found:
            raise DockerfileError(f"{path}:{number}: the parser directive {key!r} is given twice")
        found[key] = m.group(2)
    escape = found.get("escape", "\\")
    if escape not in ("\\", "`"):
        raise DockerfileError(f"{path}:1: invalid escape directive {escape!r}", hint="use '\\' or '`'")
    return found


# ---------------------------------------------------------------------------------------- parser


@dataclass
class _Refs:
    index: int
    names: list[str | None]
    image_refs: list[ImageRef] = field(default_factory=list)
    stage_refs: list[StageRef] = field(default_factory=list)


class _Parser:
    def __init__(self, path: str, build_args: Mapping[str, str], escape: str) -> None:
        self.path = path
        self.build_args = build_args
        self.escape = escape
        self.global_scope: dict[str, _Var] = {name: (build_args.get(name), ()) for name in PLATFORM_ARGS}
        self.global_args: dict[str, str | None] = {}

    def err(self, line: int, message: str, hint: str | None = None) -> DockerfileError:
        return DockerfileError(f"{self.path}:{line}: {message}", hint=hint)

    def expand(self, s: str, scope: _Scope, line: int) -> _Word:
        try:
            return _Lexer(scope, self.escape).word(s)
        except _SubstError as e:
            raise self.err(line, f"{e} in {s!r}") from None

    def expand_words(self, s: str, scope: _Scope, line: int) -> list[_Word]:
        try:
            return _Lexer(scope, self.escape).words(s)
        except _SubstError as e:
            raise self.err(line, f"{e} in {s!r}") from None

    def declare_args(self, ins: Instruction, scope: dict[str, _Var], fallback: _Scope | None) -> dict[str, str | None]:
        """ARG a[=x] b ...: updates scope; returns the declared defaults (expanded)."""
        declared: dict[str, str | None] = {}
        words = _raw_words(ins.body, self.escape)
        if not words:
            raise self.err(ins.line, "ARG requires at least one argument")
        for raw in words:
            name, sep, default_raw = raw.partition("=")
            if not _NAME_RE.fullmatch(name):
                raise self.err(ins.line, f"invalid ARG name {name!r}")
            default: _Word | None = self.expand(default_raw, scope, ins.line) if sep else None
            declared[name] = default.text if default and default.resolved else None
            if name in self.build_args:
                scope[name] = (self.build_args[name], ())
            elif default is not None:
                scope[name] = (default.text if default.resolved else None, tuple(default.used))
            elif fallback is not None and name in fallback:
                scope[name] = fallback[name]
            elif name in PLATFORM_ARGS:
                scope[name] = (None, ())
            else:
                scope.pop(name, None)
        return declared

    def set_env(self, ins: Instruction, scope: dict[str, _Var]) -> None:
        words = _raw_words(ins.body, self.escape)
        if not words:
            raise self.err(ins.line, "ENV requires at least one argument")
        if "=" not in words[0]:  # legacy `ENV NAME value with spaces`
            value = self.expand(ins.body[len(words[0]) :].strip(), scope, ins.line)
            scope[words[0]] = (value.text if value.resolved else None, tuple(value.used))
            return
        for raw in words:
            name, sep, value_raw = raw.partition("=")
            if not sep:
                raise self.err(ins.line, f"ENV {name!r} has no value")
            value = self.expand(value_raw, scope, ins.line)
            scope[name] = (value.text if value.resolved else None, tuple(value.used))

    def parse(self, logical: list[_Logical]) -> tuple[tuple[Instruction, ...], tuple[Stage, ...]]:
        instructions = [self.instruction(lg) for lg in logical]
        first_from = next((k for k, ins in enumerate(instructions) if ins.keyword == "FROM"), None)
        head = instructions if first_from is None else instructions[:first_from]
        for ins in head:
            if ins.keyword != "ARG":
                raise self.err(
                    ins.line,
                    f"{ins.keyword} before the first FROM",
                    hint="a Dockerfile starts with FROM; only ARG may come before it",
                )
            self.global_args.update(self.declare_args(ins, self.global_scope, None))
        if first_from is None:
            raise self.err(
                head[-1].end_line + 1 if head else 1,
                "no FROM instruction",
                hint="a Dockerfile needs at least one FROM",
            )

        # Pass 1: stage boundaries and names (COPY --from may name any stage).
        groups: list[list[Instruction]] = []
        names: list[str | None] = []
        for ins in instructions[first_from:]:
            if ins.keyword == "FROM":
                groups.append([ins])
                names.append(self.stage_name(ins))
            else:
                groups[-1].append(ins)
        seen: dict[str, int] = {}
        for idx, (name, group) in enumerate(zip(names, groups, strict=True)):
            if name is not None:
                if name in seen:
                    raise self.err(group[0].line, f"duplicate stage name {name!r}")
                seen[name] = idx

        stages = tuple(self.stage(idx, group, names) for idx, group in enumerate(groups))
        return tuple(head), stages

    def instruction(self, lg: _Logical) -> Instruction:
        flags, mounts, body = _split_flags(lg.args, self.escape)
        return Instruction(
            keyword=lg.keyword,
            args=lg.args,
            line=lg.line,
            end_line=lg.end_line,
            flags=_frozen(flags),
            mounts=tuple(_frozen(m) for m in mounts),
            heredocs=lg.heredocs,
            body=body.strip(),
        )

    def from_words(self, ins: Instruction) -> list[str]:
        words = _raw_words(ins.body, self.escape)
        if len(words) == 1 or (len(words) == 3 and words[1].lower() == "as"):
            return words
        raise self.err(ins.line, f"FROM takes 'image [AS name]', got {ins.body!r}")

    def stage_name(self, ins: Instruction) -> str | None:
        words = self.from_words(ins)
        if len(words) == 1:
            return None
        name = words[2].lower()
        if not _STAGE_NAME_RE.match(name):
            raise self.err(ins.line, f"invalid stage name {words[2]!r}")
        return name

    def stage(self, idx: int, group: list[Instruction], names: list[str | None]) -> Stage:
        frm = group[0]
        base_raw = self.from_words(frm)[0]
        base = self.expand(base_raw, self.global_scope, frm.line)
        resolved = base.text if base.resolved else None
        found = _Refs(idx, names)
        image_refs, stage_refs = found.image_refs, found.stage_refs
        base_stage_index: int | None = None
        is_scratch = False
        base_image: ImageRef | None = None
        if resolved is not None and resolved.lower() in names[:idx]:
            base_stage_index = names[:idx].index(resolved.lower())
            stage_refs.append(StageRef(base_raw, frm.line, "from", idx, base_stage_index))
        elif resolved is not None and resolved.lower() == "scratch":
            is_scratch = True
        else:
            base_image = ImageRef(base_raw, resolved, frm.line, "from", idx, tuple(base.used))
            image_refs.append(base_image)

        scope: dict[str, _Var] = {}
        args: dict[str, str | None] = {}
        sources: list[CopySource] = []

        def lookup_scope() -> dict[str, _Var]:
            return {**self.global_scope, **scope}

        for ins in group[1:]:
            kw = ins.keyword
            if kw == "ARG":
                args.update(self.declare_args(ins, scope, self.global_scope))
            elif kw == "ENV":
                self.set_env(ins, scope)
            elif kw in ("COPY", "ADD"):
                if "from" in ins.flags:
                    self.ref(ins.flags["from"], ins, "copy-from", lookup_scope(), found)
                else:
                    sources.extend(self.sources(ins, idx, lookup_scope()))
            elif kw == "RUN":
                for mount in ins.mounts:
                    if "from" in mount:
                        self.ref(mount["from"], ins, "mount-from", lookup_scope(), found)
                    elif mount.get("type") == "bind":
                        raw = mount.get("source", ".")
                        w = self.expand(raw, lookup_scope(), ins.line)
                        sources.append(CopySource(w.text if w.resolved else raw, raw, w.resolved, ins.line, idx, "RUN"))

        return Stage(
            index=idx,
            name=names[idx],
            base_raw=base_raw,
            base_resolved=resolved,
            base_image=base_image,
            base_stage=names[base_stage_index] if base_stage_index is not None else None,
            base_stage_index=base_stage_index,
            is_scratch=is_scratch,
            platform=frm.flags.get("platform"),
            line=frm.line,
            instructions=tuple(group),
            image_refs=tuple(image_refs),
            stage_refs=tuple(stage_refs),
            copy_sources=tuple(sources),
            args=MappingProxyType(args),
        )

    def ref(self, raw: str, ins: Instruction, kind: RefKind, scope: _Scope, found: _Refs) -> None:
        """Classify a --from= / from= value as a stage (by name or index) or an image."""
        idx, names = found.index, found.names
        image_refs, stage_refs = found.image_refs, found.stage_refs
        w = self.expand(raw, scope, ins.line)
        resolved = w.text if w.resolved else None
        if resolved is not None:
            if resolved.isdigit():
                target = int(resolved)
                if target >= len(names):
                    raise self.err(
                        ins.line,
                        f"--from={raw} names stage {target} but there are {len(names)} stages",
                    )
                if target == idx:
                    raise self.err(ins.line, f"--from={raw} names the stage it is in")
                stage_refs.append(StageRef(raw, ins.line, kind, idx, target))
                return
            if resolved.lower() in names:
                target = names.index(resolved.lower())
                if target == idx:
                    raise self.err(ins.line, f"--from={raw} names the stage it is in")
                stage_refs.append(StageRef(raw, ins.line, kind, idx, target))
                return
        image_refs.append(ImageRef(raw, resolved, ins.line, kind, idx, tuple(w.used)))

    def sources(self, ins: Instruction, idx: int, scope: _Scope) -> list[CopySource]:
        kw: Literal["COPY", "ADD"] = "COPY" if ins.keyword == "COPY" else "ADD"
        body = ins.body
        words: list[tuple[str, _Word]]
        exec_form: list[str] | None = None
        if body.startswith("["):
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
            if isinstance(parsed, list) and all(isinstance(x, str) for x in parsed):
                exec_form = parsed
        if exec_form is not None:
            words = [(x, self.expand(x, scope, ins.line)) for x in exec_form]
        else:
            raws = _raw_words(body, self.escape)
            words = [(r, self.expand(r, scope, ins.line)) for r in raws]
        if len(words) < 2:
            raise self.err(ins.line, f"{kw} needs a source and a destination")
        out: list[CopySource] = []
        for raw, w in words[:-1]:
            if ins.heredocs and _HEREDOC_RE.match(raw):
                continue  # the heredoc body is the source, not a context file
            text = w.text if w.resolved else raw
            if kw == "ADD" and _URL_RE.match(text):
                continue
            out.append(CopySource(text, raw, w.resolved, ins.line, idx, kw))
        return out


def parse_dockerfile(text: str, *, path: str = "Dockerfile", build_args: Mapping[str, str] | None = None) -> Dockerfile:
    """Parse Dockerfile text. Raises DockerfileError naming path:line."""
    text = text.removeprefix("\ufeff")
    lines = [ln.removesuffix("\r") for ln in text.split("\n")]
    directives = _directives(lines, path)
    escape = directives.get("escape", "\\")
    given = dict(build_args or {})
    parser = _Parser(path, given, escape)
    logical = _logical_lines(lines, path, escape)
    head, stages = parser.parse(logical)
    return Dockerfile(
        path=path,
        stages=stages,
        global_args=MappingProxyType(parser.global_args),
        global_instructions=head,
        directives=_frozen(directives),
        escape=escape,
        build_args=_frozen(given),
    )


def load_dockerfile(path: Path, *, build_args: Mapping[str, str] | None = None) -> Dockerfile:
    """Read and parse a Dockerfile; missing, unreadable, binary or non-UTF-8 -> DockerfileError."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DockerfileError(
            f"{path}: no such Dockerfile", hint="check the service's dockerfile and context"
        ) from None
    except OSError as e:
        raise DockerfileError(f"{path}: cannot read the Dockerfile: {e.strerror or e}") from None
    if b"\x00" in data:
        raise DockerfileError(f"{path}: not a text file (it holds NUL bytes)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise DockerfileError(f"{path}:{line}: not valid UTF-8") from None
    return parse_dockerfile(text, path=str(path), build_args=build_args)
