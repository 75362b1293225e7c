"""Load services.yaml and the policy directory into frozen models, with errors that point at lines.

YAML is composed with libyaml's C composer where present and walked here, so every key keeps its
line, duplicate keys are errors, aliases are expanded within a bound, and only the standard tags are
honoured. Validation errors name the file, the line and the key, and suggest a near match.
"""

from __future__ import annotations

import datetime as dt
import difflib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import NoneType, UnionType
from typing import Any, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from orchestrator.errors import ConfigError
from orchestrator.models import ExceptionRecord, PolicyFile, Service, ServicesFile

try:  # libyaml's composer is ~10x faster; PyYAML without libyaml still works.
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on the PyYAML build
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

MAX_NODES = 200_000
MAX_DEPTH = 100  # services.yaml is ~6 levels deep; deeper is an alias trick or garbage
MAX_BYTES = 16 * 1024 * 1024
_STANDARD_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:timestamp",
    "tag:yaml.org,2002:map",
    "tag:yaml.org,2002:seq",
}
_STR_TAG = "tag:yaml.org,2002:str"
# the safe constructor's functions for the standard scalar tags, called directly: its construct_object
# would remember every node it ever built (a leak across loads) and costs a cache lookup per scalar
_scalar_constructor = yaml.SafeLoader("")
_SCALAR_CONSTRUCTORS = {
    tag: _scalar_constructor.yaml_constructors[tag]
    for tag in _STANDARD_TAGS - {_STR_TAG, "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}
}

Path_ = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class YamlDocument:
    """A parsed YAML document and the line of every key path in it."""

    file: str
    data: Any
    lines: Mapping[Path_, int] = field(repr=False)

    def line_of(self, path: Sequence[str | int]) -> int | None:
        key = tuple(path)
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key[:-1]
        return self.lines.get((), None)


def read_text(path: Path, what: str) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{what} not found", file=str(path)) from None
    except IsADirectoryError:
        raise ConfigError(f"{what} is a directory, expected a file", file=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what}: {exc.strerror}", file=str(path)) from None
    if len(raw) > MAX_BYTES:
        raise ConfigError(f"{what} is larger than {MAX_BYTES // 1024 // 1024} MiB", file=str(path))
    if b"\x00" in raw:
        raise ConfigError(f"{what} is binary (it contains NUL bytes), expected YAML text", file=str(path))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{what} is not valid UTF-8 (byte 0x{raw[exc.start]:02x})", file=str(path), line=line
        ) from None


def parse_yaml(text: str, file: str) -> YamlDocument:
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise ConfigError(f"invalid YAML: {exc.problem or exc}", file=file, line=line) from None
    except yaml.reader.ReaderError as exc:  # a control character: it has a position, not a mark
        line = text[: exc.position].count("\n") + 1 if isinstance(exc.position, int) else None
        char = exc.character
        if not isinstance(char, int):
            char = ord(str(char)[:1] or "?")
        raise ConfigError(
            f"invalid YAML: character U+{char:04X} is not allowed ({exc.reason})",
            file=file,
            line=line,
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", file=file) from None
    except UnicodeEncodeError as exc:  # lone surrogates in a str that did not come from read_text
        line = text[: exc.start].count("\n") + 1
        raise ConfigError("invalid YAML: text is not encodable as UTF-8", file=file, line=line) from None
    lines: dict[Path_, int] = {}
    if node is None:
        return YamlDocument(file, None, lines)
    walker = _Walker(file, lines)
    return YamlDocument(file, walker.build(node, ()), lines)


class _Walker:
    def __init__(self, file: str, lines: dict[Path_, int]) -> None:
        self.file = file
        self.lines = lines
        self.count = 0
        self.stack: set[int] = set()  # ids of the collection nodes being built (recursive aliases)

    def build(self, node: yaml.Node, path: Path_) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise ConfigError(
                f"document expands to more than {MAX_NODES} nodes (alias bomb?)",
                file=self.file,
                line=node.start_mark.line + 1,
            )
        if len(path) > MAX_DEPTH:
            raise ConfigError(
                f"document is nested more than {MAX_DEPTH} levels deep",
                file=self.file,
                line=node.start_mark.line + 1,
            )
        self.lines.setdefault(path, node.start_mark.line + 1)
        if node.tag not in _STANDARD_TAGS:
            raise ConfigError(
                f"YAML tag {node.tag!r} is not allowed (only plain YAML data is read)",
                file=self.file,
                line=node.start_mark.line + 1,
            )
        if isinstance(node, yaml.CollectionNode):
            if id(node) in self.stack:
                raise ConfigError(
                    "recursive alias (an anchor used inside itself)",
                    file=self.file,
                    line=node.start_mark.line + 1,
                )
            self.stack.add(id(node))
            try:
                return self._collection(node, path)
            finally:
                self.stack.discard(id(node))
        return self._scalar(node)

    def _collection(self, node: yaml.CollectionNode, path: Path_) -> Any:
        if isinstance(node, yaml.MappingNode):
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    raise ConfigError(
                        "YAML merge keys ('<<') are not supported; write the keys out",
                        file=self.file,
                        line=key_node.start_mark.line + 1,
                    )
                if not isinstance(key_node, yaml.ScalarNode):
                    raise ConfigError(
                        "mapping keys must be plain strings",
                        file=self.file,
                        line=key_node.start_mark.line + 1,
                    )
                key = self.build(key_node, path)
                if not isinstance(key, str):
                    # every key orch reads is a name: `on:`, `1:` or `null:` mean the text written,
                    # not YAML 1.1's True, 1 or None
                    key = key_node.value
                if not isinstance(key, str):
                    raise ConfigError(
                        "mapping keys must be plain strings",
                        file=self.file,
                        line=key_node.start_mark.line + 1,
                    )
                if key in result:
                    raise ConfigError(
                        f"duplicate key {key!r} (first on line {self.lines.get((*path, key))})",
                        file=self.file,
                        line=key_node.start_mark.line + 1,
                    )
                self.lines[(*path, key)] = key_node.start_mark.line + 1
                result[key] = self.build(value_node, (*path, key))
            return result
        return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]

    def _scalar(self, node: yaml.Node) -> Any:
        if node.tag == _STR_TAG:
            return node.value
        construct = _SCALAR_CONSTRUCTORS.get(node.tag)
        if construct is None:  # `!!map text` or `!!seq text`
            raise ConfigError(
                f"YAML tag {node.tag!r} needs a collection, not the text {node.value!r}",
                file=self.file,
                line=node.start_mark.line + 1,
            )
        try:
            return construct(_scalar_constructor, node)
        # inside PyYAML `!!bool maybe` is a KeyError, `!!int ""` an IndexError, `!!timestamp x` an
        # AttributeError
        except (yaml.YAMLError, ValueError, LookupError, AttributeError, OverflowError) as exc:
            reason = str(exc)
            if isinstance(exc, LookupError | AttributeError):
                reason = f"not a valid {node.tag.rsplit(':', 1)[-1]}"
            raise ConfigError(
                f"cannot read value {node.value!r}: {reason}",
                file=self.file,
                line=node.start_mark.line + 1,
            ) from None


def suggest(word: str, choices: Sequence[str]) -> str | None:
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return match[0] if match else None


def _model_at(model: type[BaseModel], loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The model class whose fields apply at `loc` (for did-you-mean on unknown keys).

    Walks the annotations: a model consumes a field name, a dict a key, a tuple or list an index;
    Optional is unwrapped without consuming anything."""
    current: Any = model
    for part in loc:
        current = _unwrap_optional(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            info = current.model_fields.get(str(part))
            if info is None:
                return None
            current = info.annotation
            continue
        origin, args = get_origin(current), get_args(current)
        if origin is dict and len(args) == 2:
            current = args[1]
        elif origin in (tuple, list) and args:
            current = args[0]
        else:
            return None
    current = _unwrap_optional(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap_optional(annotation: Any) -> Any:
    """`X | None` → X (and the first model of a wider union)."""
    if get_origin(annotation) not in (Union, UnionType):
        return annotation
    args = [a for a in get_args(annotation) if a is not NoneType]
    if len(args) == 1:
        return args[0]
    return next((a for a in args if isinstance(a, type) and issubclass(a, BaseModel)), annotation)


def validate(model: type[M], doc: YamlDocument, *, what: str) -> M:
    if doc.data is None:
        raise ConfigError(f"{what} is empty", file=doc.file)
    if not isinstance(doc.data, dict):
        raise ConfigError(f"{what} must be a mapping at the top level", file=doc.file, line=1)
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        raise _config_error(model, doc, exc) from None


def _config_error(model: type[BaseModel], doc: YamlDocument, exc: ValidationError) -> ConfigError:
    errors = exc.errors()
    # an unknown key is usually a misspelt one, and then its "required key is missing" twin is noise
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = [p for p in first["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
    key = ".".join(str(p) for p in loc) or None
    line = doc.line_of(loc)
    hint = None
    if first["type"] == "extra_forbidden" and loc:
        owner = _model_at(model, loc[:-1])
        if owner is not None:
            near = suggest(str(loc[-1]), list(owner.model_fields))
            allowed = ", ".join(owner.model_fields)
            hint = f"did you mean '{near}'? " if near else ""
            hint += f"allowed keys here: {allowed}"
        message = "unknown key"
    elif first["type"] == "missing":
        message = "required key is missing"
    else:
        message = first["msg"].removeprefix("Value error, ")
    more = len(errors) - 1
    if more:
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    return ConfigError(message, file=doc.file, line=line, key=key, hint=hint)


# --- the project --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServicePaths:
    context: Path
    dockerfile: Path


@dataclass(frozen=True)
class Project:
    """services.yaml as loaded: the model, where it lives, and every service's paths, resolved."""

    file: Path
    root: Path
    spec: ServicesFile
    paths: Mapping[str, ServicePaths]
    doc: YamlDocument = field(repr=False)

    @property
    def services(self) -> Mapping[str, Service]:
        return self.spec.services

    def platforms_of(self, name: str) -> tuple[str, ...]:
        return self.spec.services[name].platforms or self.spec.platforms

    @property
    def policy_dir(self) -> Path:
        return _inside(self.root, self.spec.policy, self.file, ("policy",), self.doc, must_exist=False)


def _inside(
    root: Path,
    rel: str,
    file: Path,
    key: Sequence[str | int],
    doc: YamlDocument,
    *,
    must_exist: bool,
    dirs: dict[Path, Path] | None = None,
) -> Path:
    line = doc.line_of(key)
    keyname = ".".join(str(k) for k in key)
    if "\x00" in rel:
        raise ConfigError(f"path {rel!r} cannot be used: embedded null byte", file=str(file), line=line, key=keyname)
    try:
        candidate = _resolve(root / rel, {} if dirs is None else dirs)
        exists = candidate.exists()
    except (OSError, ValueError, RuntimeError) as exc:  # NUL byte, name too long, symlink loop
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"path {rel!r} cannot be used: {reason}", file=str(file), line=line, key=keyname) from None
    if not candidate.is_relative_to(root):
        raise ConfigError(
            f"path {rel!r} leaves the project directory {root} (resolved to {candidate})",
            file=str(file),
            line=line,
            key=keyname,
            hint="every path in services.yaml is relative to its directory and must stay inside it",
        )
    if must_exist and not exists:
        raise ConfigError(f"path {rel!r} does not exist", file=str(file), line=line, key=keyname)
    return candidate


def _resolve(path: Path, dirs: dict[Path, Path]) -> Path:
    """`path.resolve()`, with the real path of each parent directory remembered in `dirs`: two
    thousand Dockerfiles in one directory cost one realpath and two thousand lstats."""
    if ".." in path.parts:
        return path.resolve()
    parent = path.parent
    real = dirs.get(parent)
    if real is None:
        real = dirs[parent] = parent.resolve()
    candidate = real / path.name if path.name else real
    return candidate.resolve() if candidate.is_symlink() else candidate


def load_project(file: Path | str) -> Project:
    path = Path(file)
    text = read_text(path, "services file")
    doc = parse_yaml(text, str(path))
    spec = validate(ServicesFile, doc, what="services file")
    root = path.resolve().parent
    paths: dict[str, ServicePaths] = {}
    dirs: dict[Path, Path] = {}
    contexts: dict[str, Path] = {}  # services usually share a few contexts
    for name, svc in spec.services.items():
        context = contexts.get(svc.context)
        if context is None:
            context = _inside(
                root, svc.context, path, ("services", name, "context"), doc,
                must_exist=True, dirs=dirs,
            )  # fmt: skip
            if not context.is_dir():
                raise ConfigError(
                    f"context {svc.context!r} is not a directory",
                    file=str(path),
                    line=doc.line_of(("services", name, "context")),
                    key=f"services.{name}.context",
                )
            contexts[svc.context] = context
        dockerfile = _inside(
            root, svc.dockerfile, path, ("services", name, "dockerfile"), doc,
            must_exist=True, dirs=dirs,
        )  # fmt: skip
        if not dockerfile.is_file():
            raise ConfigError(
                f"dockerfile {svc.dockerfile!r} is not a file",
                file=str(path),
                line=doc.line_of(("services", name, "dockerfile")),
                key=f"services.{name}.dockerfile",
            )
        paths[name] = ServicePaths(context=context, dockerfile=dockerfile)
    return Project(file=path, root=root, spec=spec, paths=paths, doc=doc)


# --- the policy directory -----------------------------------------------------------------------


@dataclass(frozen=True)
class LoadedException:
    record: ExceptionRecord
    file: Path


@dataclass(frozen=True)
class Policy:
    directory: Path
    spec: PolicyFile
    exceptions: tuple[LoadedException, ...]

    def exception(self, exc_id: str) -> LoadedException | None:
        return next((e for e in self.exceptions if e.record.id == exc_id), None)


def load_policy(directory: Path) -> Policy:
    policy_file = directory / "policy.yaml"
    if not policy_file.exists():
        raise ConfigError(
            "policy file not found",
            file=str(policy_file),
            hint="services.yaml's `policy:` names the policy directory; it must hold policy.yaml",
        )
    doc = parse_yaml(read_text(policy_file, "policy file"), str(policy_file))
    spec = validate(PolicyFile, doc, what="policy file")
    exceptions: list[LoadedException] = []
    exc_dir = directory / "exceptions"
    if exc_dir.is_dir():
        seen: dict[str, Path] = {}
        for entry in sorted(exc_dir.glob("*.y*ml")):
            exc_doc = parse_yaml(read_text(entry, "exception record"), str(entry))
            record = validate(ExceptionRecord, exc_doc, what="exception record")
            if record.id in seen:
                raise ConfigError(f"exception id {record.id!r} is also used by {seen[record.id]}", file=str(entry))
            seen[record.id] = entry
            exceptions.append(LoadedException(record=record, file=entry))
    return Policy(directory=directory, spec=spec, exceptions=tuple(exceptions))


def today() -> dt.date:
    """Today's date, or ORCH_TODAY (tests, and replaying history)."""
    value = os.environ.get("ORCH_TODAY")
    if not value:
        return dt.date.today()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ConfigError(
            f"ORCH_TODAY={value!r} is not a date", hint="write it as YYYY-MM-DD, e.g. 2026-01-09"
        ) from None
