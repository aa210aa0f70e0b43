"""A run as a sequence of small named steps: locate, discover, select, grant, prepare, run.

The library half of the tool: it takes a `Request` and returns results or an exit code;
it never parses the command line and prints only through the `Reporter`. Wasmtime is
imported by the steps that need it, so listing and `--explain` never load it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable, NamedTuple, NoReturn

from cargo_task import machinecode
from cargo_task.config import Overrides
from cargo_task.discovery import Task, discover
from cargo_task.errors import ConfigError, TaskError
from cargo_task.files import cache_dir
from cargo_task.terminal import Reporter
from cargo_task.workspace import Project, locate

if TYPE_CHECKING:
    from cargo_task.build import Toolchain
    from cargo_task.cache import Cache
    from cargo_task.buildview import Protected
    from cargo_task.grants import Grants
    from cargo_task.sandbox import Compiled
    from cargo_task.scaffold import Scaffold


class Request(NamedTuple):
    cwd: Path
    environ: dict[str, str]
    task: str | None = None
    args: tuple[str, ...] = ()
    manifest_path: str | None = None
    package: str | None = None
    verbosity: int = 0
    color: str = "never"  # what cargo is told: always | never
    overrides: Overrides = Overrides()
    locked: bool = False  # `--locked`: the lock file of published tasks may not change


class Selection(NamedTuple):
    """The project, its tasks, and the one task a request names."""

    project: Project
    tasks: dict[str, Task]
    task: Task

    @property
    def project_root(self) -> Path:
        """The top of the project: the workspace root, or the package's root."""
        return (self.project.workspace or self.project.package or self.task.owner).root  # type: ignore[union-attr]

    @property
    def build_root(self) -> Path:
        return self.project.target_dir / "cargo-task"

    def protected(self, environ: dict[str, str]) -> list[Protected]:
        """What no `write` grant may cover, learned from cargo for the whole workspace."""
        from cargo_task.buildview import protected
        from cargo_task.discovery import discover_everywhere

        return protected(self.project, discover_everywhere(self.project), environ, cache_dir(environ))

    def table(self) -> str:
        """The table that configures the task, as a user would write it."""
        owner = self.task.owner
        section = "workspace" if owner.key == "workspace" else "package"
        return f"[{section}.metadata.tasks.{self.task.name}]"

    def readable_by_build(self) -> list[Path]:
        """What a confined build of the task may read of the user's files: the project, the
        task's own files and the path task-dependencies, wherever they are, and the crate
        cargo-task gives every task."""
        from cargo_task.scaffold import guest_crate

        owner = self.task.owner
        paths = [self.project_root, owner.root, self.task.source.parent, *(s for _, s in owner.sources)]
        paths += [Path(spec["path"]) for spec in owner.dependencies.values() if "path" in spec]
        return paths + [guest_crate()]

    def scaffold(self) -> Scaffold:
        """The owner's generated package, rendered once per run (rendering reads the cargo
        configuration files up the tree)."""
        from cargo_task.scaffold import render

        key = (self.task.owner.root, self.build_root)
        if key not in _rendered:
            _rendered[key] = render(self.task.owner, self.build_root)
        return _rendered[key]


_rendered: dict[tuple[Path, Path], Scaffold] = {}


# -- steps -----------------------------------------------------------------------------


def locate_project(request: Request) -> Project:
    return locate(request.manifest_path, request.package, request.cwd, request.environ)


def discover_tasks(project: Project) -> dict[str, Task]:
    return discover(project)


def select_task(project: Project, tasks: dict[str, Task], name: str) -> Selection:
    if name in tasks:
        return Selection(project, tasks, tasks[name])
    import difflib

    near = difflib.get_close_matches(name, list(tasks), n=1)
    member = next((m for m, names in _members_with_tasks(project).items() if name in names), None)
    if member:
        hint = f"the workspace member `{member}` has it: run `cargo task -p {member} {name}`"
    elif near:
        hint = f"a task with a similar name exists: `{near[0]}`"
    elif tasks:
        hint = "run `cargo task` to list the tasks"
    else:
        hint = "tasks are files in `tasks/`: create `tasks/{name}.rs` with a `fn main()`"
    raise ConfigError(f"no task `{name}`", help=hint.format(name=name))


def _members_with_tasks(project: Project) -> dict[str, list[str]]:
    """Workspace members outside this run that have tasks of their own: name -> tasks."""
    from cargo_task.discovery import task_files
    from cargo_task.workspace import member_roots, read_manifest

    if project.workspace is None:
        return {}
    seen = {m.root for m in project.manifests}
    found = {}
    for root in member_roots(project.workspace):
        if root in seen or not (root / "tasks").is_dir():
            continue
        try:
            names = list(task_files(root / "tasks"))
            if names:
                found[read_manifest(root / "Cargo.toml", project.parsed).package_name or root.name] = names
        except ConfigError:
            continue  # its own run will say what is wrong with it
    return found


def decide_grants(selection: Selection, request: Request) -> Grants:
    from cargo_task.grants import grant

    return grant(
        selection.task,
        list(request.args),
        request.environ,
        request.overrides,
        protected=lambda: selection.protected(request.environ),
        cache_dir=cache_dir(request.environ),
    )


class _Build(NamedTuple):
    """Everything `prepare_component` decides before it knows whether to build."""

    task: Task
    plan: Scaffold
    toolchain: Toolchain
    engine: str  # the Wasmtime that will load the machine code
    cache: Cache
    record_name: str
    compiler: str  # tiered | winch | cranelift (`machinecode.compiler_choice`)


def prepare_component(
    selection: Selection, request: Request, reporter: Reporter, trust_cache: bool = True, for_build: bool = False
) -> Compiled:
    """The task's compiled component: from the cache when nothing changed, else built.
    `for_build`: compile what is built with the compiler warm runs prefer (`--build`)."""
    from cargo_task import build, fingerprint, sandbox
    from cargo_task.cache import Cache

    task = selection.task
    if task.settings.published is not None:  # a package's binary (`from`): built on its own
        from cargo_task import published

        return published.prepare(selection, request, reporter, trust_cache, for_build)
    toolchain = build.Toolchain.from_environment(request.environ, task.owner.root)
    job = _Build(
        task, selection.scaffold(), toolchain, sandbox.engine_id(),
        Cache(cache_dir(request.environ)),
        f"{task.name}.{fingerprint.toolchain_variant(toolchain)}",
        machinecode.compiler_choice(request.environ),
    )  # fmt: skip
    record = job.cache.load_record(job.plan.directory, job.record_name) if trust_cache else None
    if (
        record is not None
        and record.fingerprint == fingerprint.static_fingerprint(job.plan, task.name, toolchain, job.engine)
        and fingerprint.still_fresh(record.stamps)
    ):
        compiler = machinecode.compiler_for_build(job.compiler) if for_build else job.compiler
        payload = machinecode.cached_code(job.cache, record.wasm, compiler)
        if payload is not None:
            reporter.note(f"`{task.name}` is fresh; using its compiled component ({payload.strategy})")
            return payload
    return _build_and_compile(job, selection, request, reporter, trust_cache, for_build)


def tier_up(selection: Selection, request: Request, compiled: Compiled) -> None:
    """After a run on Winch's code, under the default choice: Cranelift's code in the
    background, for the next runs (`tierup.py`)."""
    if compiled.strategy != "winch" or not compiled.wasm or machinecode.compiler_choice(request.environ) != "tiered":
        return
    from cargo_task import tierup

    if selection.task.settings.published is not None:
        from cargo_task import published

        wasm = published.wasm_file(selection)
        if wasm is None:
            return
    else:
        wasm = selection.scaffold().wasm(selection.task.name)
    tierup.start(cache_dir(request.environ), wasm, compiled.wasm, selection.task.name)


def _build_and_compile(
    job: _Build, selection: Selection, request: Request, reporter: Reporter, trust_cache: bool, for_build: bool
) -> Compiled:
    from cargo_task import build, confine, fingerprint, sandbox, scaffold
    from cargo_task.buildview import check_task_inputs
    from cargo_task.cache import Record
    from cargo_task.discovery import discover_everywhere
    from cargo_task.errors import BuildError

    name = job.task.name
    try:
        scaffold.write(job.plan)
        started = scaffold.mark_build_start(job.plan.directory)
    except OSError as e:
        raise BuildError(
            f"could not write the generated package in `{job.plan.directory}`: {e.strerror}",
            help="cargo-task builds tasks under the target directory (CARGO_TARGET_DIR)",
        ) from None
    if not confine.available():
        reporter.warning("the build is not confined: this system offers no Landlock, so build "
                         "scripts and proc-macros of task-dependencies run with your rights")  # fmt: skip
    compiler = machinecode.compiler_for_build(job.compiler) if for_build else job.compiler

    def meanwhile():  # what does not depend on the build: done while cargo works
        sandbox.engine(machinecode.COMPILERS[compiler][-1])  # loads Wasmtime
        return discover_everywhere(selection.project)  # reads every member's manifest

    everywhere = _Meanwhile(meanwhile)
    sysroot = build.build_task(job.toolchain, job.plan, name, request.verbosity, request.color,
                               readable=selection.readable_by_build())  # fmt: skip
    sources = fingerprint.dep_info_sources(job.plan.dep_info(name), job.toolchain.cwd)
    check_task_inputs(job.task, sources, everywhere.result(), selection.project_root)
    payload = machinecode.compile_wasm(job.cache, job.plan.wasm(name).read_bytes(), name, compiler, reporter, trust_cache)
    configuration = fingerprint.config_files(job.plan, job.toolchain)
    stamps = fingerprint.stamps_of_steady_build(sources, sysroot, configuration, started)
    if stamps is not None:
        static = fingerprint.static_fingerprint(job.plan, name, job.toolchain, job.engine)
        record = Record(static, stamps, payload.wasm)
        machinecode.keep_in_cache(reporter, lambda: job.cache.save_record(job.plan.directory, job.record_name, record))
    return payload


class _Meanwhile:
    """Work on a thread while the main thread waits for cargo; `result()` waits for it and
    raises what it raised, so its errors come out where they did when it ran in line."""

    def __init__(self, work: Callable[[], object]):
        import threading

        self._outcome: tuple[bool, object] | None = None
        self._thread = threading.Thread(target=self._run, args=(work,), name="meanwhile", daemon=True)
        self._thread.start()

    def _run(self, work: Callable[[], object]) -> None:
        try:
            self._outcome = (True, work())
        except BaseException as e:  # noqa: BLE001 - raised again by result()
            self._outcome = (False, e)

    def result(self):
        self._thread.join()
        ok, value = self._outcome or (False, RuntimeError("no outcome"))
        if not ok:
            raise value  # type: ignore[misc]
        return value


def announce(selection: Selection, grants: Grants, reporter: Reporter) -> None:
    if grants.writes_protected:
        shown = ", ".join(f"`{p}`" for p in grants.writes_protected[:3])
        more = len(grants.writes_protected) - 3
        reporter.warning(
            f"task `{selection.task.name}` may write {shown}"
            + (f" and {more} more protected paths" if more > 0 else "")
            + " (allow-write-manifest = true)"
        )
    import shlex

    shown = shlex.join(grants.argv[1:])
    reporter.status("Running", f"task `{selection.task.name}`" + (f" {shown}" if shown else ""))


# -- entry points ----------------------------------------------------------------------


def list_tasks(request: Request) -> tuple[list[Task], list[str]]:
    """The tasks a run can see, and the other workspace members that have tasks of their own."""
    project = locate_project(request)
    return list(discover_tasks(project).values()), list(_members_with_tasks(project))


def explain(request: Request) -> tuple[Selection, Grants]:
    project = locate_project(request)
    selection = select_task(project, discover_tasks(project), request.task or "")
    return selection, decide_grants(selection, request)


def build(request: Request, names: list[str], reporter: Reporter) -> int:
    """`--build`: build and precompile the named tasks, or every task visible from here,
    without running them (for CI and editors). Each goes through a run's checks and
    `prepare_component`, so its next run is warm; the first error stops the rest."""
    project = locate_project(request)
    tasks = discover_tasks(project)
    # Every name is checked before anything is built: a typo fails at once.
    selections = [select_task(project, tasks, name) for name in dict.fromkeys(names or tasks)]
    if not selections:
        reporter.warning("no tasks to build")
    for selection in selections:
        decide_grants(selection, request)  # what a run refuses (grants, protected paths) fails here too
        prepare_component(selection, request, reporter, for_build=True)
        reporter.status("Finished", f"task `{selection.task.name}`")
    return 0


def run(request: Request, reporter: Reporter, abandon: Callable[[TaskError], NoReturn]) -> int:
    from cargo_task import sandbox

    project = locate_project(request)
    selection = select_task(project, discover_tasks(project), request.task or "")
    grants = decide_grants(selection, request)
    payload = prepare_component(selection, request, reporter)
    announce(selection, grants, reporter)
    host = sandbox.HostSetup(
        table=selection.table(), environ=request.environ,
        cargo_target_dir=selection.scaffold().directory / "commands" / selection.task.name,
    )  # fmt: skip
    try:
        try:
            code = sandbox.run(selection.task.name, payload, grants, abandon, host, reporter.warning)
            if code != 0:
                _hint_asked_grants(selection.task, reporter)
            return code
        except TaskError:
            _hint_asked_grants(selection.task, reporter)
            raise
        except sandbox.StaleComponent:  # cached by another Wasmtime: compile afresh, once
            payload = prepare_component(selection, request, reporter, trust_cache=False)
            return sandbox.run(selection.task.name, payload, grants, abandon, host, reporter.warning)
    finally:  # after the run, whatever its outcome: the task never waits for it
        try:
            tier_up(selection, request, payload)
        except (TaskError, OSError):
            pass  # the next warm run starts it again; never hide the task's own outcome


def _hint_asked_grants(task: Task, reporter: Reporter) -> None:
    """A published task that failed may have failed for a grant it asks for and was not
    given: say which (it is never given by itself)."""
    if task.settings.published is None:
        return
    from cargo_task.published import ungranted_asks

    missing = ungranted_asks(task)
    if missing:
        reporter.warning(f"task `{task.name}` asks for {', '.join(f'`{k}`' for k in missing)}, which its "
                         f"table does not grant; see `cargo task --explain {task.name}`")  # fmt: skip


def update(request: Request, names: list[str], reporter: Reporter) -> int:
    """`--update`: resolve the named published tasks (default: all visible) afresh and
    write their lock entries; builds nothing."""
    from cargo_task import published

    project = locate_project(request)
    tasks = discover_tasks(project)
    selections = [select_task(project, tasks, name) for name in dict.fromkeys(names or tasks)]
    chosen = [s for s in selections if s.task.settings.published is not None]
    for selection in selections:
        if names and selection.task.settings.published is None:
            raise ConfigError(f"task `{selection.task.name}` is a file, not a package: there is nothing to update",
                              help="`--update` resolves tasks that have a `from` table")  # fmt: skip
    if not chosen:
        reporter.warning("no tasks with a `from` table")
    for selection in chosen:
        published.update(selection, request, reporter)
    return 0


def add(request: Request, spec: str, name: str | None, reporter: Reporter) -> int:
    """`--add CRATE[@VERSION] [NAME]`: resolve, then add the task's table to the manifest."""
    from cargo_task import adder

    project = locate_project(request)
    adder.add(project, discover_tasks(project), spec, name, request, reporter)
    return 0
