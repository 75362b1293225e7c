"""The command line: parse typed options, configure logging once, run the pipeline, map errors to exit
codes. Nothing imports this module; only `main()` exits. Heavy imports stay inside the commands so
`orch --help` starts fast."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console


app = typer.Typer(
    name="orch",
    help="Build, verify and publish multi-platform container images from services.yaml, "
    "with base images chosen by a registry policy and pinned by digest.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
policy_app = typer.Typer(help="Lint Dockerfiles against the registry policy; audit exceptions.", no_args_is_help=True)
exception_app = typer.Typer(help="List, draft, approve and retire policy exceptions.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")
app.add_typer(exception_app, name="exception")


class Globals:
    file: Path = Path("services.yaml")
    debug: bool = False
    log_format: str = "auto"
    logging_ready: bool = False


G = Globals()

# --- options, each defined once: flag, env var, default, help -------------------------------------
FileOpt = Annotated[Path, typer.Option("-f", "--file", envvar="ORCH_FILE", help="the services file")]
OnlyOpt = Annotated[
    list[str],
    typer.Option("--only", envvar="ORCH_ONLY", help="build these services and what they need (repeatable, or a,b)"),
]
ArchOpt = Annotated[
    list[str],
    typer.Option(
        "--arch", envvar="ORCH_ARCH", help="only these platforms: amd64, arm64 or linux/arm64 (repeatable, or a,b)"
    ),
]
JobsOpt = Annotated[
    int, typer.Option("--jobs", "-j", envvar="ORCH_JOBS", min=1, help="services built at once within a wave")
]
KeepGoingOpt = Annotated[
    bool,
    typer.Option(
        "--keep-going", envvar="ORCH_KEEP_GOING", help="after a failure, go on with services that do not depend on it"
    ),
]
LockedOpt = Annotated[
    bool, typer.Option("--locked", envvar="ORCH_LOCKED", help="refuse to start when orch.lock is missing or stale")
]
PushOpt = Annotated[
    bool,
    typer.Option("--push", envvar="ORCH_PUSH", help="publish every verified image to the registry of services.yaml"),
]
ReportOpt = Annotated[
    Path | None,
    typer.Option("--report", envvar="ORCH_REPORT", help="write report.json, junit.xml, summary.md and logs/ here"),
]
BuilderOpt = Annotated[
    str | None,
    typer.Option(
        "--builder",
        envvar="ORCH_BUILDER",
        help="buildx builder to use (default: services.yaml `builder:` or the current)",
    ),
]
NoCacheOpt = Annotated[
    bool, typer.Option("--no-cache", envvar="ORCH_NO_CACHE", help="rebuild without BuildKit's cache (implies --force)")
]
ForceOpt = Annotated[bool, typer.Option("--force", envvar="ORCH_FORCE", help="rebuild services that are up to date")]
FormatOpt = Annotated[str, typer.Option("--format", envvar="ORCH_FORMAT", help="text, json or sarif")]


@app.callback(invoke_without_command=True)
def _globals(
    file: FileOpt = Path("services.yaml"),
    debug: Annotated[bool, typer.Option("--debug", envvar="ORCH_DEBUG", help="tracebacks and debug logs")] = False,
    log_format: Annotated[
        str,
        typer.Option(
            "--log-format",
            envvar="ORCH_LOG_FORMAT",
            help="auto (console on a TTY, JSON lines otherwise), console or json",
        ),
    ] = "auto",
    version: Annotated[bool, typer.Option("--version", help="print the version and exit")] = False,
) -> None:
    if version:
        from orchestrator import __version__

        typer.echo(f"orch {__version__}")
        raise typer.Exit(0)
    G.file, G.debug, G.log_format = file, debug, log_format
    if log_format not in ("auto", "json", "console"):
        from orchestrator.errors import UsageError

        raise UsageError(f"--log-format {log_format}: expected auto, console or json")


def _logging() -> None:
    """Configure structlog once, for the commands that talk to an engine (plan, graph and policy check
    log nothing and skip its import: `orch plan` of a large graph starts faster)."""
    if G.logging_ready:
        return
    G.logging_ready = True
    _configure_logging(G.debug, G.log_format)


def _configure_logging(debug: bool, log_format: str) -> None:
    import logging

    import structlog

    tty = sys.stderr.isatty()
    use_json = log_format == "json" or (log_format == "auto" and not tty)
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if use_json:
        processors.append(structlog.processors.format_exc_info)  # a crash keeps its traceback in the JSON
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=tty and not os.environ.get("NO_COLOR"))
    )
    level = logging.DEBUG if debug else logging.INFO
    if not use_json and not debug:
        level = logging.WARNING  # the live table speaks on a terminal; logs say what goes wrong
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )


def _console(stderr: bool = False) -> Console:
    from rich.console import Console

    console = Console(stderr=stderr, no_color=bool(os.environ.get("NO_COLOR")), soft_wrap=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = 160  # CI logs and files: no terminal to fit, keep digests and names whole
    return console


def _registry() -> Any:
    _logging()
    from orchestrator.engine.registry import RegistryClient
    from orchestrator.engine.retry import RetryingRegistry

    return RetryingRegistry(RegistryClient())


def _engine(builder: str | None = None) -> Any:
    _logging()
    from orchestrator.engine.docker import DockerEngine
    from orchestrator.engine.retry import RetryingEngine

    return RetryingEngine(DockerEngine(builder=builder))


# --- graph and plan (no engine) -----------------------------------------------------------------


@app.command()
def graph(
    only: OnlyOpt = [],  # noqa: B006 - typer reads the default
    arch: ArchOpt = [],  # noqa: B006
    fmt: Annotated[str, typer.Option("--format", envvar="ORCH_GRAPH_FORMAT", help="text, dot or mermaid")] = "text",
) -> None:
    """Show the dependency graph and the build waves."""
    from orchestrator.config import load_project
    from orchestrator.prepare import make_selection

    project = load_project(G.file)
    sel = make_selection(project, only, arch)
    edges = sorted(sel.graph.edges)
    if fmt == "dot":
        typer.echo("digraph orch {\n  rankdir=LR;")
        for name in sorted(sel.graph.nodes):
            typer.echo(f'  "{name}";')
        for a, b in edges:
            typer.echo(f'  "{a}" -> "{b}";')
        typer.echo("}")
    elif fmt == "mermaid":
        typer.echo("graph LR")
        for name in sorted(sel.graph.nodes):
            typer.echo(f"  {_mermaid_id(name)}[{name}]")
        for a, b in edges:
            typer.echo(f"  {_mermaid_id(a)} --> {_mermaid_id(b)}")
    elif fmt == "text":
        for index, wave in enumerate(sel.waves, start=1):
            typer.echo(f"wave {index}:")
            for name in wave:
                deps = sorted(sel.graph.predecessors(name))
                plats = ", ".join(sel.platforms[name])
                typer.echo(f"  {name} [{plats}]" + (f" <- {', '.join(deps)}" if deps else ""))
    else:
        from orchestrator.errors import UsageError

        raise UsageError(f"--format {fmt}: expected text, dot or mermaid")


def _mermaid_id(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)


@app.command()
def plan(
    only: OnlyOpt = [],  # noqa: B006
    arch: ArchOpt = [],  # noqa: B006
    as_json: Annotated[bool, typer.Option("--json", envvar="ORCH_JSON", help="print the plan as JSON")] = False,
) -> None:
    """Print the build plan (reads orch.lock; never talks to an engine)."""
    from orchestrator.prepare import begin, choose, facts_from_lock, finish

    prep = begin(G.file, only, arch)
    lock = facts_from_lock(prep)
    choose(prep)
    built = finish(prep)
    if as_json:
        # pydantic-core writes indented JSON ~3x faster than json.dumps(indent=2), which falls back
        # to the pure-Python encoder (0.2 s of a 2,000-service plan); waves are lists either way
        typer.echo(built.model_dump_json(indent=2))
        return
    from rich.table import Table

    table = Table(title=f"{built.project}: {len(built.services)} services in {len(built.waves)} waves")
    for col in ("wave", "service", "platforms", "builder (toolchain)", "exception", "input"):
        table.add_column(col, overflow="fold", no_wrap=col in ("service", "input"))
    wave_of = {n: i for i, w in enumerate(built.waves, start=1) for n in w}
    for svc in built.services:
        builder = "—"
        if svc.builder is not None:
            if svc.builder.image:
                builder = (
                    f"{svc.builder.image.rsplit('/', 1)[-1]} ({svc.builder.toolchain} {svc.builder.toolchain_version})"
                )
            elif any("not resolved yet" in r for r in svc.builder.rejected):
                builder = "unresolved: run `orch lock`"
            else:
                builder = "none qualifies"
        arches = ",".join(p.split("/", 1)[1] for p in svc.platforms)
        exception = svc.builder.exception if svc.builder and svc.builder.exception else "—"
        table.add_row(str(wave_of[svc.name]), svc.name, arches, builder, exception, svc.input_hash[:12])
    console = _console()
    console.print(table)
    runtime = built.services[0].runtime if built.services else None
    if runtime is not None:
        console.print(f"runtime: {runtime.image}@{runtime.digest or 'unresolved'}", highlight=False)
    if lock is None or not all(s.resolved for s in built.services):
        console.print("[yellow]some images are unresolved: run `orch lock`[/yellow]")


# --- engine checks -------------------------------------------------------------------------------


@app.command()
def doctor(
    registry: Annotated[
        str | None,
        typer.Option(
            "--registry", envvar="ORCH_REGISTRY", help="registry address to check (default: from services.yaml)"
        ),
    ] = None,
    builder: BuilderOpt = None,
) -> None:
    """Check the engine: Docker, buildx, the builder's platforms, binfmt for emulated ones, the registry."""
    from orchestrator.doctor import run_doctor

    _logging()

    run_doctor(G.file, registry=registry, builder=builder, console=_console())


# --- lock ----------------------------------------------------------------------------------------


@app.command()
def lock(
    check: Annotated[
        bool, typer.Option("--check", envvar="ORCH_LOCK_CHECK", help="exit 2 when orch.lock is missing or stale")
    ] = False,
    update: Annotated[
        bool, typer.Option("--update", envvar="ORCH_LOCK_UPDATE", help="re-resolve every tag and say which moved")
    ] = False,
) -> None:
    """Resolve every external base image to its multi-platform index digest and write orch.lock."""
    from orchestrator.prepare import begin, resolve

    prep = begin(G.file)
    registry = _registry()
    if check:
        resolve(prep, registry=registry, engine=None, locked=True)
        typer.echo(f"{prep.lock_path.name} is up to date ({len(prep.facts)} images)")
        return
    resolve(prep, registry=registry, engine=_engine(), locked=False, update=update)
    for change in prep.lock_changes:
        typer.echo(change)
    if update and not prep.lock_changes:
        typer.echo("no tag moved")
    typer.echo(f"{prep.lock_path.name}: {len(prep.facts)} images locked")


# --- build ---------------------------------------------------------------------------------------


@app.command()
def build(
    only: OnlyOpt = [],  # noqa: B006
    arch: ArchOpt = [],  # noqa: B006
    jobs: JobsOpt = 2,
    keep_going: KeepGoingOpt = False,
    locked: LockedOpt = False,
    push: PushOpt = False,
    report: ReportOpt = None,
    builder: BuilderOpt = None,
    no_cache: NoCacheOpt = False,
    force: ForceOpt = False,
) -> None:
    """Build every selected service for its platforms, verify each image, and publish with --push."""
    from orchestrator.build import BuildCommand

    _logging()

    code = BuildCommand(
        file=G.file,
        only=only,
        arch=arch,
        jobs=jobs,
        keep_going=keep_going,
        locked=locked,
        push=push,
        report=report,
        builder=builder,
        no_cache=no_cache,
        force=force or no_cache,
        command=" ".join(["orch", *sys.argv[1:]]),
    ).run(_console())
    raise typer.Exit(code)


# --- verify --------------------------------------------------------------------------------------


@app.command()
def verify(
    image: Annotated[str | None, typer.Argument(help="an image reference; without it, the services")] = None,
    binary: Annotated[
        list[str], typer.Option("--binary", envvar="ORCH_VERIFY_BINARY", help="path of a binary inside the image")
    ] = [],  # noqa: B006
    platform: Annotated[
        list[str],
        typer.Option("--platform", envvar="ORCH_VERIFY_PLATFORM", help="platform(s) to verify (default: all)"),
    ] = [],  # noqa: B006
    startup_cmd: Annotated[
        str | None,
        typer.Option(
            "--startup-cmd", envvar="ORCH_VERIFY_STARTUP_CMD", help="arguments to start the image with (shell-quoted)"
        ),
    ] = None,
    expect: Annotated[str, typer.Option("--expect", envvar="ORCH_VERIFY_EXPECT", help="exit-0 or running")] = "exit-0",
    runtime: Annotated[
        str | None,
        typer.Option(
            "--runtime",
            envvar="ORCH_VERIFY_RUNTIME",
            help="the runtime base the image must start with (its layers first), e.g. a pinned UBI9-minimal",
        ),
    ] = None,
    toolchain: Annotated[
        str | None, typer.Option("--go", envvar="ORCH_VERIFY_GO", help="required Go version, e.g. '>=1.25.4'")
    ] = None,
    only: OnlyOpt = [],  # noqa: B006
    arch: ArchOpt = [],  # noqa: B006
    report: ReportOpt = None,
) -> None:
    """Verify images: ELF architecture, static linking, Go build info, runtime base, start-up per platform."""
    from orchestrator.verify.command import verify_command

    _logging()

    code = verify_command(
        G.file,
        image=image,
        binaries=binary,
        platforms=platform,
        startup_cmd=startup_cmd,
        expect=expect,
        go_requirement=toolchain,
        runtime=runtime,
        only=only,
        arch=arch,
        report=report,
        console=_console(),
    )
    raise typer.Exit(code)


# --- policy --------------------------------------------------------------------------------------


@policy_app.command("check")
def policy_check(fmt: FormatOpt = "text") -> None:
    """Lint every service's Dockerfile against the policy (no build)."""
    from orchestrator import __version__
    from orchestrator.policy.lint import to_json, to_sarif, to_text
    from orchestrator.prepare import begin, choose, facts_from_lock, lint

    prep = begin(G.file)
    facts_from_lock(prep)
    choose(prep)
    findings = lint(prep)
    if fmt == "json":
        typer.echo(to_json(findings))
    elif fmt == "sarif":
        typer.echo(to_sarif(findings, tool_version=__version__))
    else:
        typer.echo(to_text(findings) if findings else "no findings")
    errors = [f for f in findings if f.severity == "error"]
    raise typer.Exit(4 if errors else 0)


@policy_app.command("audit")
def policy_audit(
    fmt: FormatOpt = "text",
    offline: Annotated[
        bool, typer.Option("--offline", envvar="ORCH_OFFLINE", help="use orch.lock only; resolve nothing")
    ] = False,
) -> None:
    """List exceptions that are expired, past review, expiring, unused, used beyond scope or no longer needed."""
    from orchestrator import __version__
    from orchestrator.policy.audit import audit, to_json, to_sarif, to_text
    from orchestrator.prepare import begin, choose, facts_from_lock, resolve

    prep = begin(G.file)
    if offline:
        facts_from_lock(prep)
    else:
        resolve(prep, registry=_registry(), engine=_engine(), locked=False)
    choose(prep)
    items = audit(prep.policy, prep.project, prep.parsed, facts=prep.facts, choices=prep.choices, today=prep.today)
    if fmt == "json":
        typer.echo(to_json(items))
    elif fmt == "sarif":
        typer.echo(to_sarif(items, tool_version=__version__))
    else:
        typer.echo(to_text(items) if items else "no exceptions recorded")
    raise typer.Exit(4 if any(i.severity == "error" for i in items) else 0)


# --- exceptions ----------------------------------------------------------------------------------


@exception_app.command("list")
def exception_list() -> None:
    """List the exception records with their status and dates."""
    from orchestrator.prepare import load

    _, pol = load(G.file)
    if not pol.exceptions:
        typer.echo("no exception records")
    for loaded in pol.exceptions:
        r = loaded.record
        typer.echo(
            f"{r.id}  {r.status:<9} {r.stage:<7} {r.image}  services={','.join(r.services)}  "
            f"review_by={r.review_by}  expires={r.expires}  ({loaded.file.name})"
        )


def _set_status(exc_id: str, status: str, by: str | None) -> None:
    from orchestrator.config import today
    from orchestrator.errors import ConfigError
    from orchestrator.policy.exceptions import set_status
    from orchestrator.prepare import load

    _, pol = load(G.file)
    loaded = pol.exception(exc_id)
    if loaded is None:
        raise ConfigError(
            f"no exception record with id {exc_id!r}",
            hint=f"known: {', '.join(e.record.id for e in pol.exceptions) or 'none'}",
        )
    text = set_status(loaded, status, by=by, on=today())  # type: ignore[arg-type,unused-ignore]
    loaded.file.write_text(text, encoding="utf-8")
    typer.echo(f"{exc_id}: {status} ({loaded.file})")


@exception_app.command("approve")
def exception_approve(
    exc_id: Annotated[str, typer.Argument(metavar="ID")],
    by: Annotated[str, typer.Option("--by", envvar="ORCH_APPROVER", help="who approves")],
) -> None:
    """Approve a requested exception (records who and when)."""
    _set_status(exc_id, "approved", by)


@exception_app.command("retire")
def exception_retire(exc_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    """Retire an exception whose reason went away (records the date)."""
    _set_status(exc_id, "retired", None)


@exception_app.command("new")
def exception_new(
    service: Annotated[
        str, typer.Option("--service", envvar="ORCH_EXCEPTION_SERVICE", help="the service that needs the exception")
    ],
    stage: Annotated[
        str, typer.Option("--stage", envvar="ORCH_EXCEPTION_STAGE", help="builder or runtime")
    ] = "builder",
    by: Annotated[str, typer.Option("--by", envvar="USER", help="who requests it")] = "unknown",
    offline: Annotated[bool, typer.Option("--offline", envvar="ORCH_OFFLINE", help="use orch.lock only")] = False,
) -> None:
    """Draft exceptions/<ID>.yaml (status requested) and a Markdown request with orch's evidence."""
    from orchestrator.config import suggest
    from orchestrator.errors import GraphError
    from orchestrator.policy.exceptions import draft
    from orchestrator.prepare import begin, choose, facts_from_lock, resolve

    prep = begin(G.file)
    if service not in prep.project.services:
        near = suggest(service, list(prep.project.services))
        raise GraphError(f"--service {service}: no such service", hint=f"did you mean '{near}'?" if near else None)
    if offline:
        facts_from_lock(prep)
    else:
        resolve(prep, registry=_registry(), engine=_engine(), locked=False)
    choose(prep)
    exc_id, record, markdown = draft(
        service=service,
        stage=stage,
        project=prep.project,
        policy=prep.policy,
        choice=prep.choices.get(service),
        facts=prep.facts,
        today=prep.today,
        requested_by=by,
    )
    directory = prep.policy.directory / "exceptions"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{exc_id}.yaml").write_text(record, encoding="utf-8")
    (directory / f"{exc_id}.md").write_text(markdown, encoding="utf-8")
    typer.echo(f"drafted {directory / (exc_id + '.yaml')} and {exc_id}.md (status: requested)")
    typer.echo(f"next: fill in the request, then `orch exception approve {exc_id} --by NAME`")


# --- the one exit point --------------------------------------------------------------------------


def _on_sigint(signum: int, frame: object) -> None:
    from orchestrator.errors import Interrupted

    raise Interrupted("interrupted")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; every error becomes its exit code here and only here."""
    import signal

    from orchestrator.errors import OrchError

    started = time.monotonic()
    previous = signal.signal(signal.SIGINT, _on_sigint)
    try:
        app(args=argv, standalone_mode=True)
        code = 0
    except SystemExit as exc:  # click's standalone mode: usage errors exit 2, --help 0
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except OrchError as exc:
        if G.debug:
            import traceback

            traceback.print_exc()
        print(f"orch: error: {exc}", file=sys.stderr)
        code = int(exc.exit_code)
    finally:
        signal.signal(signal.SIGINT, previous)
    if G.debug:
        print(f"orch: finished in {time.monotonic() - started:.2f}s with exit {code}", file=sys.stderr)
    if argv is None:
        sys.exit(code)
    return code
