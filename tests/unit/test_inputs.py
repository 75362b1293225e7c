"""Context files a build takes (.dockerignore, COPY sources) and their content hash."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from orchestrator.dockerfile import parse_dockerfile
from orchestrator.errors import ConfigError
from orchestrator.inputs import context_files, hash_files, read_dockerignore


def make(root: Path, files: dict[str, str]) -> Path:
    for rel, content in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(content)
    return root


def names(paths: list[Path]) -> list[str]:
    return [p.as_posix() for p in paths]


MONO = {
    "go.mod": "module x\n",
    "go.sum": "",
    "README.md": "readme\n",
    "docs/guide.md": "guide\n",
    "docs/keep.md": "keep\n",
    "services/api/main.go": "package main\n",
    "services/api/main_test.go": "package main\n",
    "services/api/testdata/big.bin": "x" * 10,
    "services/web/index.ts": "export {}\n",
    "services/web/node_modules/left-pad/index.js": "x\n",
    "node_modules/react/index.js": "x\n",
    "lib/util/util.go": "package util\n",
    ".git/HEAD": "ref: refs/heads/main\n",
}


# ---------------------------------------------------------------------------------- dockerignore


def test_read_dockerignore_normalises(tmp_path: Path) -> None:
    (tmp_path / ".dockerignore").write_text(
        "\ufeff# comment\n\n  /node_modules  \n./docs/*.md\n! docs/keep.md\n**/testdata\n a/../b \n"
    )
    assert read_dockerignore(tmp_path) == [
        "node_modules",
        "docs/*.md",
        "!docs/keep.md",
        "**/testdata",
        "b",
    ]


def test_dockerfile_specific_ignore_wins(tmp_path: Path) -> None:
    (tmp_path / ".dockerignore").write_text("a\n")
    svc = tmp_path / "services" / "api"
    svc.mkdir(parents=True)
    dockerfile = svc / "Dockerfile"
    dockerfile.write_text("FROM alpine\n")
    assert read_dockerignore(tmp_path, dockerfile) == ["a"]
    (svc / "Dockerfile.dockerignore").write_text("b\n")
    assert read_dockerignore(tmp_path, dockerfile) == ["b"]


def test_no_dockerignore(tmp_path: Path) -> None:
    assert read_dockerignore(tmp_path) == []
    assert read_dockerignore(tmp_path, tmp_path / "Dockerfile") == []


def test_bad_dockerignore(tmp_path: Path) -> None:
    (tmp_path / ".dockerignore").write_bytes(b"\xff\xfe\n")
    with pytest.raises(ConfigError, match=r"\.dockerignore: not valid UTF-8"):
        read_dockerignore(tmp_path)
    (tmp_path / ".dockerignore").write_text("a\n!\n")
    with pytest.raises(ConfigError, match=r"\.dockerignore:2: illegal exclusion"):
        read_dockerignore(tmp_path)


def test_ignore_with_exceptions_and_double_star(tmp_path: Path) -> None:
    make(tmp_path, MONO)
    ignore = [
        ".git",
        "**/node_modules",
        "docs",
        "!docs/keep.md",
        "**/*_test.go",
        "services/*/testdata",
        "*.md",
    ]
    got = names(context_files(tmp_path, sources=None, ignore=ignore))
    assert got == [
        "docs/keep.md",
        "go.mod",
        "go.sum",
        "lib/util/util.go",
        "services/api/main.go",
        "services/web/index.ts",
    ]


def test_later_patterns_win(tmp_path: Path) -> None:
    make(tmp_path, MONO)
    got = names(context_files(tmp_path, sources=None, ignore=["!README.md", "*.md"]))
    assert "README.md" not in got
    got = names(context_files(tmp_path, sources=None, ignore=["*.md", "!README.md"]))
    assert "README.md" in got


def test_ignore_everything_but(tmp_path: Path) -> None:
    make(tmp_path, MONO)
    got = names(context_files(tmp_path, sources=None, ignore=["*", "!services/api", "**/*_test.go"]))
    assert got == ["services/api/main.go", "services/api/testdata/big.bin"]


def test_question_mark_and_classes(tmp_path: Path) -> None:
    make(tmp_path, {"a1.txt": "", "a2.txt": "", "ab.txt": "", "a10.txt": ""})
    got = names(context_files(tmp_path, sources=None, ignore=["a?.txt", "!a[0-1]*"]))
    assert got == ["a1.txt", "a10.txt"]
    with pytest.raises(ConfigError, match=r"bad \.dockerignore pattern '\[a-1\]'"):
        context_files(tmp_path, sources=None, ignore=["[a-1]"])
    got = names(context_files(tmp_path, sources=None, ignore=["a[^0-9].txt"]))
    assert got == ["a1.txt", "a10.txt", "a2.txt"]


# ---------------------------------------------------------------------------------- COPY sources


def test_directory_and_glob_sources(tmp_path: Path) -> None:
    make(tmp_path, MONO)
    got = names(
        context_files(
            tmp_path,
            sources=["./go.mod", "go.sum", "services/api/", "lib/*/*.go", "/missing"],
            ignore=["**/testdata"],
        )
    )
    assert got == [
        "go.mod",
        "go.sum",
        "lib/util/util.go",
        "services/api/main.go",
        "services/api/main_test.go",
    ]


def test_dot_source_is_everything(tmp_path: Path) -> None:
    make(tmp_path, {"a": "", "b/c": ""})
    assert names(context_files(tmp_path, sources=[".", "a"], ignore=[])) == ["a", "b/c"]
    assert names(context_files(tmp_path, sources=["../../b"], ignore=[])) == ["b/c"]
    assert context_files(tmp_path, sources=[], ignore=[]) == []


def test_ignored_files_are_not_copied(tmp_path: Path) -> None:
    make(tmp_path, MONO)
    got = names(context_files(tmp_path, sources=["services/web"], ignore=["**/node_modules"]))
    assert got == ["services/web/index.ts"]


def test_sources_from_a_dockerfile(tmp_path: Path) -> None:
    make(tmp_path, MONO)
    d = parse_dockerfile(
        "FROM golang AS build\nCOPY go.mod go.sum ./\nCOPY services/api/ ./api/\n"
        "FROM alpine AS docs\nCOPY docs /docs\n"
        "FROM alpine\nCOPY --from=build /app /app\n"
    )
    sources = [c.source for c in d.copy_sources()]
    got = names(context_files(tmp_path, sources=sources, ignore=[]))
    assert got == [
        "go.mod",
        "go.sum",
        "services/api/main.go",
        "services/api/main_test.go",
        "services/api/testdata/big.bin",
    ]


# -------------------------------------------------------------------------------------- hashing


def service_hash(root: Path, sources: list[str] | None, ignore: list[str] | None = None) -> str:
    files = context_files(root, sources=sources, ignore=ignore or [])
    return hash_files(root, files)


def test_unrelated_change_does_not_change_hash(tmp_path: Path) -> None:
    make(tmp_path, MONO)
    api = ["go.mod", "go.sum", "services/api", "lib"]
    before = service_hash(tmp_path, api)
    whole_before = service_hash(tmp_path, None)
    (tmp_path / "services/web/index.ts").write_text("export const x = 1\n")
    (tmp_path / "services/web/new.ts").write_text("new\n")
    assert service_hash(tmp_path, api) == before
    assert service_hash(tmp_path, None) != whole_before
    (tmp_path / "lib/util/util.go").write_text("package util // changed\n")
    assert service_hash(tmp_path, api) != before


def test_hash_covers_path_mode_and_content(tmp_path: Path) -> None:
    make(tmp_path, {"a": "x", "b": ""})
    base = service_hash(tmp_path, None)
    assert base.startswith("sha256:")
    assert len(base) == len("sha256:") + 64
    assert service_hash(tmp_path, None) == base  # deterministic
    (tmp_path / "a").chmod(0o755)
    with_exec = service_hash(tmp_path, None)
    assert with_exec != base
    (tmp_path / "a").chmod(0o644)
    assert service_hash(tmp_path, None) == base
    # mtime is not an input
    os.utime(tmp_path / "a", (time.time() - 1000, time.time() - 1000))
    assert service_hash(tmp_path, None) == base
    # moving content between files changes the hash (no ambiguity at boundaries)
    (tmp_path / "a").write_text("")
    (tmp_path / "b").write_text("x")
    assert service_hash(tmp_path, None) != base
    (tmp_path / "a").write_text("x")
    (tmp_path / "b").write_text("")
    (tmp_path / "b").rename(tmp_path / "c")
    assert service_hash(tmp_path, None) != base


def test_hash_ignores_order_of_arguments(tmp_path: Path) -> None:
    make(tmp_path, {"a": "1", "b/c": "2"})
    assert hash_files(tmp_path, [Path("b/c"), Path("a")]) == hash_files(tmp_path, [Path("a"), Path("b/c"), Path("a")])


def test_symlinks(tmp_path: Path) -> None:
    ctx = make(tmp_path / "ctx", {"real.txt": "real\n", "dir/inner.txt": "inner\n"})
    outside = make(tmp_path / "outside", {"secret.txt": "secret\n"})
    (ctx / "inside-link").symlink_to("real.txt")
    (ctx / "dangling").symlink_to("nope")
    (ctx / "escape-rel").symlink_to("../outside/secret.txt")
    (ctx / "escape-abs").symlink_to(outside / "secret.txt")
    (ctx / "escape-dir").symlink_to(outside, target_is_directory=True)
    (ctx / "dir-link").symlink_to("dir", target_is_directory=True)

    got = names(context_files(ctx, sources=None, ignore=[]))
    assert got == ["dangling", "dir-link", "dir/inner.txt", "inside-link", "real.txt"]

    # a symlink is hashed as its target text, not the target's content
    before = service_hash(ctx, None)
    (ctx / "real.txt").write_text("changed\n")
    only_link = hash_files(ctx, [Path("inside-link")])
    (ctx / "real.txt").write_text("real\n")
    assert hash_files(ctx, [Path("inside-link")]) == only_link
    assert service_hash(ctx, None) == before
    # changing what escapes the context changes nothing
    (outside / "secret.txt").write_text("other\n")
    assert service_hash(ctx, None) == before

    with pytest.raises(ConfigError, match="outside the build context"):
        hash_files(ctx, [Path("escape-dir/secret.txt")])
    with pytest.raises(ConfigError, match="not a path inside"):
        hash_files(ctx, [Path("../outside/secret.txt")])


def test_hash_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read gone"):
        hash_files(tmp_path, [Path("gone")])


def test_context_must_be_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a directory"):
        context_files(tmp_path / "nope", sources=None, ignore=[])


def test_pruning_keeps_exceptions_below_ignored_dirs(tmp_path: Path) -> None:
    make(tmp_path, {"build/out/keep.txt": "", "build/out/drop.txt": "", "build/x": ""})
    got = names(context_files(tmp_path, sources=None, ignore=["build", "!build/out/keep.txt"]))
    assert got == ["build/out/keep.txt"]
    got = names(context_files(tmp_path, sources=None, ignore=["build", "!**/keep.txt"]))
    assert got == ["build/out/keep.txt"]


def test_monorepo_is_fast(tmp_path: Path) -> None:
    for d in range(60):
        sub = tmp_path / f"pkg{d}" / "src"
        sub.mkdir(parents=True)
        for f in range(50):
            (sub / f"f{f}.go").write_text(f"package p{d}\n")
    nm = tmp_path / "node_modules"
    for d in range(200):
        (nm / f"m{d}").mkdir(parents=True)
        (nm / f"m{d}" / "index.js").write_text("x")
    start = time.perf_counter()
    files = context_files(tmp_path, sources=None, ignore=["node_modules", "**/*.tmp"])
    digest = hash_files(tmp_path, files)
    some = context_files(tmp_path, sources=["pkg7/"], ignore=["node_modules"])
    elapsed = time.perf_counter() - start
    assert len(files) == 3000
    assert len(some) == 50
    assert digest.startswith("sha256:")
    assert elapsed < 5


def test_walk_prunes_ignored_and_unreached_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make(tmp_path, MONO)
    visited: list[str] = []
    real_scandir = os.scandir

    def spy(path: str) -> object:
        visited.append(Path(path).relative_to(tmp_path).as_posix())
        return real_scandir(path)

    monkeypatch.setattr("orchestrator.inputs.os.scandir", spy)
    context_files(tmp_path, sources=None, ignore=["**/node_modules", ".git", "docs"])
    assert not [v for v in visited if "node_modules" in v or v.startswith((".git", "docs"))]
    visited.clear()
    context_files(tmp_path, sources=None, ignore=["docs", "!docs/keep.md"])
    assert "docs" in visited
    visited.clear()
    context_files(tmp_path, sources=["services/api/*.go"], ignore=[])
    assert sorted(visited) == [".", "services", "services/api"]
