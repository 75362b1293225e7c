"""The pure Dockerfile reader: stages, image references, ARG substitution, copy sources."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from orchestrator.dockerfile import Dockerfile, ImageRef, load_dockerfile, parse_dockerfile
from orchestrator.errors import DockerfileError, ExitCode


def df(text: str, **build_args: str) -> Dockerfile:
    return parse_dockerfile(textwrap.dedent(text), build_args=build_args or None)


SEED = """\
    FROM quay.io/jordigilh/golang:1.25-bookworm AS builder
    WORKDIR /src
    COPY go.mod go.sum ./
    RUN go mod download
    COPY cmd/ cmd/
    COPY internal/ internal/
    RUN CGO_ENABLED=0 GOOS=${GOOS:-linux} GOARCH=${GOARCH:-amd64} go build -o /out/app ./cmd/app

    FROM registry.access.redhat.com/ubi9/ubi-minimal:latest
    COPY --from=builder /out/app /usr/local/bin/app
    ENTRYPOINT ["/usr/local/bin/app"]
"""

ORCH_STYLE = """\
    # syntax=docker/dockerfile:1.7
    ARG BUILDER_IMAGE
    ARG RUNTIME_IMAGE
    FROM --platform=$BUILDPLATFORM ${BUILDER_IMAGE} AS builder
    ARG TARGETOS TARGETARCH
    WORKDIR /src
    COPY . .
    RUN --mount=type=cache,target=/root/.cache/go-build \\
        --mount=type=cache,target=/go/pkg/mod \\
        GOOS=$TARGETOS GOARCH=$TARGETARCH go build -o /out/app ./cmd/app

    FROM ${RUNTIME_IMAGE}
    COPY --from=builder /out/app /usr/local/bin/app
"""


# ------------------------------------------------------------------------------------ the seed


def test_seed_dockerfile_stages_and_images() -> None:
    d = df(SEED)
    assert [s.name for s in d.stages] == ["builder", None]
    assert d.stage_names() == {"builder"}
    refs = d.image_refs()
    assert [(r.resolved, r.kind, r.stage_index, r.line) for r in refs] == [
        ("quay.io/jordigilh/golang:1.25-bookworm", "from", 0, 1),
        ("registry.access.redhat.com/ubi9/ubi-minimal:latest", "from", 1, 9),
    ]
    assert all(r.via_args == () for r in refs)
    final = d.final_stage()
    assert final.index == 1
    assert final.stage_refs[0].target_index == 0
    assert final.depends_on == (0,)
    run = d.stages[0].instructions[-1]
    assert run.keyword == "RUN"
    assert "${GOOS:-linux}" in run.args


def test_seed_copy_sources() -> None:
    d = df(SEED)
    assert [(c.source, c.line, c.keyword) for c in d.copy_sources()] == [
        ("go.mod", 3, "COPY"),
        ("go.sum", 3, "COPY"),
        ("cmd/", 5, "COPY"),
        ("internal/", 6, "COPY"),
    ]


# ----------------------------------------------------------------------------------- orch style


def test_orch_style_unresolved_without_build_args() -> None:
    d = df(ORCH_STYLE)
    assert d.syntax == "docker/dockerfile:1.7"
    assert dict(d.global_args) == {"BUILDER_IMAGE": None, "RUNTIME_IMAGE": None}
    builder = d.stages[0]
    assert builder.name == "builder"
    assert builder.platform == "$BUILDPLATFORM"
    refs = d.image_refs()
    assert [(r.raw, r.resolved, r.via_args) for r in refs] == [
        ("${BUILDER_IMAGE}", None, ("BUILDER_IMAGE",)),
        ("${RUNTIME_IMAGE}", None, ("RUNTIME_IMAGE",)),
    ]
    assert d.unresolved_refs() == refs


def test_orch_style_resolved_with_build_args() -> None:
    d = df(
        ORCH_STYLE,
        BUILDER_IMAGE="127.0.0.1:5000/golang:1.25",
        RUNTIME_IMAGE="127.0.0.1:5000/ubi-minimal:9",
    )
    assert [r.resolved for r in d.image_refs()] == [
        "127.0.0.1:5000/golang:1.25",
        "127.0.0.1:5000/ubi-minimal:9",
    ]
    # the platform flag stays raw, whatever the build args
    assert d.stages[0].platform == "$BUILDPLATFORM"
    run = d.stages[0].instructions[-1]
    assert [dict(m) for m in run.mounts] == [
        {"type": "cache", "target": "/root/.cache/go-build"},
        {"type": "cache", "target": "/go/pkg/mod"},
    ]
    assert run.body.startswith("GOOS=$TARGETOS")
    assert run.line == 8
    assert run.end_line == 10
    assert dict(d.stages[0].args) == {"TARGETOS": None, "TARGETARCH": None}


def test_undeclared_build_args_do_not_reach_from() -> None:
    d = df("FROM ${IMG}\n", IMG="alpine:3")
    assert d.image_refs()[0].resolved is None


# -------------------------------------------------------------------------------- hidden images


def test_prohibited_image_hidden_behind_arg() -> None:
    d = df(
        """\
        ARG BASE=docker.io/library/golang:1.25
        FROM ${BASE}
        """
    )
    (ref,) = d.image_refs()
    assert ref == ImageRef(
        raw="${BASE}",
        resolved="docker.io/library/golang:1.25",
        line=2,
        kind="from",
        stage_index=0,
        via_args=("BASE",),
    )


def test_build_arg_overrides_default() -> None:
    d = df("ARG BASE=docker.io/library/golang:1.25\nFROM $BASE\n", BASE="quay.io/x/go:1")
    assert d.image_refs()[0].resolved == "quay.io/x/go:1"


def test_via_args_are_transitive_and_quoted_defaults() -> None:
    d = df(
        """\
        ARG REG="docker.io"
        ARG BASE='${REG}/library/golang:1.25'
        ARG FULL=${REG}/library/alpine:3
        FROM ${FULL} AS a
        FROM "${BASE}"
        """
    )
    a, b = d.image_refs()
    assert a.resolved == "docker.io/library/alpine:3"
    assert a.via_args == ("FULL", "REG")
    # single quotes keep ${REG} literal, as in BuildKit
    assert b.resolved == "${REG}/library/golang:1.25"
    assert dict(d.global_args)["REG"] == "docker.io"


@pytest.mark.parametrize(
    ("from_arg", "build_args", "expected"),
    [
        ("${V:-alpine:3}", {}, "alpine:3"),
        ("${V:-alpine:3}", {"V": "busybox"}, "busybox"),
        ("${V:-alpine:3}", {"V": ""}, "alpine:3"),
        ("${V-alpine:3}", {"V": ""}, ""),
        ("${V-alpine:3}", {}, "alpine:3"),
        ("alpine${V:+:$V}", {"V": "3.20"}, "alpine:3.20"),
        ("alpine${V:+:$V}", {}, "alpine"),
        ("$V", {}, None),
        ("${V}", {}, None),
        ("${V#x}", {"V": "xy"}, None),
        ("${TARGETARCH:-amd64}/alpine", {}, None),
        ("${TARGETARCH}/alpine", {"TARGETARCH": "arm64"}, "arm64/alpine"),
        ("a\\$V", {}, "a$V"),
    ],
)
def test_substitution_forms(from_arg: str, build_args: dict[str, str], expected: str | None) -> None:
    text = f"ARG V\nFROM {from_arg}\n"
    d = parse_dockerfile(text, build_args=build_args)
    assert d.stages[0].base_resolved == expected


def test_copy_from_image_index_and_stage() -> None:
    d = df(
        """\
        FROM alpine:3 AS tools
        FROM debian:12
        COPY --from=ghcr.io/x/tool:1 /t /t
        COPY --from=0 /bin/sh /bin/sh
        COPY --from=TOOLS /x /x
        RUN --mount=type=bind,from=quay.io/x/data:2,source=/d,target=/d true
        RUN --mount=from=tools,target=/t true
        """
    )
    refs = d.image_refs()
    assert [(r.resolved, r.kind, r.line) for r in refs] == [
        ("alpine:3", "from", 1),
        ("debian:12", "from", 2),
        ("ghcr.io/x/tool:1", "copy-from", 3),
        ("quay.io/x/data:2", "mount-from", 6),
    ]
    final = d.final_stage()
    assert [(r.kind, r.target_index, r.line) for r in final.stage_refs] == [
        ("copy-from", 0, 4),
        ("copy-from", 0, 5),
        ("mount-from", 0, 7),
    ]
    assert d.copy_sources() == []


def test_copy_from_with_stage_arg() -> None:
    d = df(
        """\
        ARG TOOL=ghcr.io/x/tool:1
        FROM alpine:3
        ARG TOOL
        COPY --from=${TOOL} /t /t
        """
    )
    ref = d.image_refs()[-1]
    assert (ref.resolved, ref.kind, ref.via_args) == ("ghcr.io/x/tool:1", "copy-from", ("TOOL",))


def test_in_graph_dependency_is_an_image_ref() -> None:
    d = df("FROM platform-base\nRUN true\n")
    (ref,) = d.image_refs()
    assert ref.resolved == "platform-base"
    assert d.stages[0].base_image == ref


def test_stage_base_and_scratch() -> None:
    d = df(
        """\
        FROM golang:1.25 AS Base
        FROM base AS build
        FROM scratch
        COPY --from=build /app /app
        """
    )
    assert d.stages[0].name == "base"
    assert d.stages[1].base_stage == "base"
    assert d.stages[1].base_stage_index == 0
    assert d.stages[1].base_image is None
    assert d.stages[2].is_scratch
    assert d.stages[2].base_image is None
    assert [r.resolved for r in d.image_refs()] == ["golang:1.25"]
    assert d.needed_stages() == [0, 1, 2]


def test_from_via_arg_can_name_a_stage() -> None:
    d = df("ARG B=builder\nFROM alpine AS builder\nFROM ${B}\n")
    assert d.stages[1].base_stage == "builder"
    assert [r.resolved for r in d.image_refs()] == ["alpine"]


# ------------------------------------------------------------------------------------ syntax


def test_heredocs_are_skipped() -> None:
    d = df(
        """\
        FROM alpine
        RUN <<EOF
        FROM evil:latest
        NOTAKEYWORD here
        EOF
        RUN <<-"SCRIPT" cat > /x && cat <<TWO
        \t\techo hi
        \tSCRIPT
        two
        TWO
        COPY <<CONF /etc/app.conf
        key = value
        CONF
        COPY real.txt /real.txt
        """
    )
    insns = d.stages[0].instructions
    assert [i.keyword for i in insns] == ["FROM", "RUN", "RUN", "COPY", "COPY"]
    assert insns[1].heredocs[0].body == "FROM evil:latest\nNOTAKEYWORD here\n"
    assert (insns[1].line, insns[1].end_line) == (2, 5)
    docs = insns[2].heredocs
    assert [(h.name, h.chomp, h.body) for h in docs] == [
        ("SCRIPT", True, "echo hi\n"),
        ("TWO", False, "two\n"),
    ]
    assert [r.resolved for r in d.image_refs()] == ["alpine"]
    assert [c.source for c in d.copy_sources()] == ["real.txt"]


def test_unterminated_heredoc() -> None:
    with pytest.raises(DockerfileError, match=r"^Dockerfile:2: unterminated heredoc <<EOF"):
        df("FROM alpine\nRUN <<EOF\necho\n")


def test_shell_shift_and_here_string_are_not_heredocs() -> None:
    d = df("FROM alpine\nRUN echo $((1<<2)) && cat <<< hi\nRUN true\n")
    assert [i.keyword for i in d.stages[0].instructions] == ["FROM", "RUN", "RUN"]


def test_continuations_with_comments_and_blank_lines() -> None:
    d = df(
        """\
        FROM alpine \\
        # a comment inside the continuation
          AS base
        RUN apk add \\
            # git is needed
            git \\

            curl
        COPY a \\
             b /dst/
        """
    )
    assert d.stages[0].name == "base"
    run = d.stages[0].instructions[1]
    assert run.line == 4
    assert run.end_line == 8
    assert "git" in run.args
    assert "curl" in run.args
    assert "#" not in run.args
    assert [(c.source, c.line) for c in d.copy_sources()] == [("a", 9), ("b", 9)]


def test_backtick_escape() -> None:
    d = df(
        """\
        # escape=`
        FROM mcr.microsoft.com/windows/servercore:ltsc2022
        COPY C:\\src\\app `
             C:\\dst\\
        RUN echo `$HOME
        """
    )
    assert d.escape == "`"
    (src,) = d.copy_sources()
    assert src.source == "C:\\src\\app"
    assert d.stages[0].instructions[1].end_line == 4


def test_exec_form_copy_and_flags() -> None:
    d = df(
        """\
        FROM alpine
        COPY --chown=1000:1000 --chmod=0755 --link ["bin/run me", "conf/*.yaml", "/dst/"]
        ADD https://example.com/x.tgz local.tgz /opt/
        ADD --checksum=sha256:abc git@github.com:x/y.git /src
        """
    )
    copy = d.stages[0].instructions[1]
    assert dict(copy.flags) == {"chown": "1000:1000", "chmod": "0755", "link": "true"}
    assert [(c.source, c.keyword) for c in d.copy_sources()] == [
        ("bin/run me", "COPY"),
        ("conf/*.yaml", "COPY"),
        ("local.tgz", "ADD"),
    ]


def test_copy_source_substitution() -> None:
    d = df(
        """\
        FROM alpine
        ARG DIR=services/api
        ENV CONF=conf
        COPY ${DIR}/ $CONF "${MISSING}" /dst/
        """
    )
    got = [(c.source, c.resolved) for c in d.copy_sources()]
    assert got == [("services/api/", True), ("conf", True), ('"${MISSING}"', False)]


def test_run_bind_mount_is_a_copy_source() -> None:
    d = df(
        """\
        FROM golang:1.25
        RUN --mount=type=bind,src=go.mod,dst=/src/go.mod --mount=type=bind,target=/ctx \\
            --mount=type=secret,id=tok --mount=type=cache,target=/c go build
        """
    )
    assert [(c.source, c.keyword) for c in d.copy_sources()] == [("go.mod", "RUN"), (".", "RUN")]


def test_copy_sources_restricted_by_target() -> None:
    d = df(
        """\
        FROM golang:1.25 AS deps
        COPY go.mod go.sum ./
        FROM deps AS build
        COPY cmd/ cmd/
        FROM alpine AS docs
        COPY docs/ /docs/
        FROM alpine AS tools
        COPY tools/ /tools/
        FROM alpine AS final
        COPY --from=build /out/app /app
        COPY static/ /static/
        """
    )
    assert [c.source for c in d.copy_sources()] == [
        "go.mod",
        "go.sum",
        "cmd/",
        "static/",
    ]
    assert [c.source for c in d.copy_sources("docs")] == ["docs/"]
    assert [c.source for c in d.copy_sources("build")] == ["go.mod", "go.sum", "cmd/"]
    assert d.needed_stages("FINAL") == [0, 1, 4]
    assert [r.resolved for r in d.image_refs("docs")] == ["alpine"]
    with pytest.raises(DockerfileError, match="no stage named 'nope'"):
        d.copy_sources("nope")


def test_case_insensitive_keywords_and_as() -> None:
    d = df("from alpine:3 as Base\nrun true\ncopy --FROM=base a b\n")
    assert d.stages[0].name == "base"
    assert [i.keyword for i in d.stages[0].instructions] == ["FROM", "RUN", "COPY"]


# ------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("", r"^Dockerfile:1: no FROM instruction"),
        ("# only a comment\n", r"^Dockerfile:1: no FROM instruction"),
        ("ARG A=1\n", r"^Dockerfile:2: no FROM instruction"),
        ("RUN true\nFROM alpine\n", r"^Dockerfile:1: RUN before the first FROM"),
        ("FROM alpine\nRUNN true\n", r"^Dockerfile:2: unknown instruction 'RUNN'"),
        ("FROM alpine\n  echo oops\n", r"^Dockerfile:2: unknown instruction 'ECHO'"),
        ("FROM\n", r"^Dockerfile:1: FROM takes"),
        ("FROM a AS\n", r"^Dockerfile:1: FROM takes"),
        ("FROM a AS x\nFROM b AS X\n", r"^Dockerfile:2: duplicate stage name 'x'"),
        ("FROM a\nCOPY --from=3 /a /b\n", r"^Dockerfile:2: --from=3 names stage 3"),
        ("FROM a\nCOPY onlyone\n", r"^Dockerfile:2: COPY needs a source"),
        ("FROM ${A\n", r"^Dockerfile:1: missing '}'"),
        ("# escape=x\nFROM a\n", r"^Dockerfile:1: invalid escape"),
    ],
)
def test_parse_errors(text: str, pattern: str) -> None:
    with pytest.raises(DockerfileError, match=pattern) as info:
        parse_dockerfile(text)
    assert info.value.exit_code == ExitCode.USAGE


def test_directives_only_at_the_top() -> None:
    d = df("FROM alpine\n# escape=`\nRUN echo \\\n  hi\n")
    assert d.escape == "\\"
    assert d.stages[0].instructions[1].end_line == 4


def test_crlf_and_bom() -> None:
    d = parse_dockerfile("\ufeffFROM alpine AS a\r\nRUN echo \\\r\n  hi\r\n")
    assert d.stages[0].name == "a"
    assert d.stages[0].instructions[1].end_line == 3


# ------------------------------------------------------------------------------------ loading


def test_load_dockerfile(tmp_path: Path) -> None:
    p = tmp_path / "Dockerfile"
    p.write_text("ARG BASE=alpine:3\nFROM $BASE\n")
    d = load_dockerfile(p, build_args={"BASE": "busybox"})
    assert d.path == str(p)
    assert d.image_refs()[0].resolved == "busybox"


def test_load_missing(tmp_path: Path) -> None:
    with pytest.raises(DockerfileError, match="no such Dockerfile"):
        load_dockerfile(tmp_path / "Dockerfile")


def test_load_binary_and_non_utf8(tmp_path: Path) -> None:
    binary = tmp_path / "bin.Dockerfile"
    binary.write_bytes(b"\x7fELF\x00\x01")
    with pytest.raises(DockerfileError, match=r"bin\.Dockerfile: not a text file"):
        load_dockerfile(binary)
    latin = tmp_path / "latin.Dockerfile"
    latin.write_bytes(b"FROM alpine\nLABEL x=\xe9\n")
    with pytest.raises(DockerfileError, match=r"latin\.Dockerfile:2: not valid UTF-8"):
        load_dockerfile(latin)


def test_errors_name_the_file(tmp_path: Path) -> None:
    p = tmp_path / "svc.Dockerfile"
    p.write_text("FROM alpine\nBOGUS x\n")
    with pytest.raises(DockerfileError, match=rf"^{p}:2: unknown instruction"):
        load_dockerfile(p)


def test_results_are_hashable() -> None:
    d = df(ORCH_STYLE)
    assert len({*d.image_refs(), *d.copy_sources()}) == 3
    assert hash(d.stages[0]) == hash(d.stages[0])
