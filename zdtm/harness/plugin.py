"""pytest nodes and hooks: one item per scenario per flavor.

zdtm/conftest.py re-exports the hooks defined here.  Item ids look like
``zdtm/static/NAME.c::h``.
"""
from __future__ import annotations

import dataclasses
import os
import platform
import shlex
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from . import apps, external, features, guest, procs
from .build import BuildResult, build
from .desc import DescError, Scenario, load
from .flavors import (
    DEFAULT_SELECTION,
    FLAVORS,
    REQUIRED_FLAVORS,
    Flavor,
    parse_selection,
    required_in,
    unavailable_here,
)
from .layout import Layout
from .locks import locked
from .report import RequiredTracker, read_required, skip_reason, tail
from .runner import RunConfig, ScenarioRun, StepFailed, Timeouts
from .stress import Stress


@dataclass(frozen=True)
class Options:
    keep: bool
    no_cr: bool
    flavors: tuple[str, ...]
    iterations: int
    noauto: bool
    build: bool
    timeout_scale: float
    refcr: tuple[str, ...]
    guest: bool = False  # --zdtm-guest: every item in the QEMU guest
    static: Path | None = None  # --zdtm-static: the scenarios of another directory (external.py)
    libdir: Path | None = None  # --zdtm-libdir: the plugin directory for every item
    stress: bool = False  # --zdtm-stress: CPU and memory hogs for the whole session (harness/stress.py)

    @classmethod
    def from_config(cls, config: pytest.Config) -> "Options":
        def opt(name: str, default: object) -> object:
            return config.getoption(name, default)

        try:
            flavors = parse_selection(str(opt("zdtm_flavor", ",".join(DEFAULT_SELECTION))))
        except ValueError as e:
            raise pytest.UsageError(f"--zdtm-flavor: {e}") from None
        iterations = int(opt("zdtm_iters", 1))  # type: ignore[arg-type]
        if iterations < 1:
            raise pytest.UsageError("--zdtm-iters must be at least 1")
        refcr_cmd = opt("zdtm_refcr", None)
        refcr = tuple(shlex.split(str(refcr_cmd))) if refcr_cmd else (sys.executable, "-m", "refcr")
        return cls(
            keep=bool(opt("zdtm_keep", False)),
            no_cr=bool(opt("zdtm_no_cr", False)),
            flavors=flavors,
            iterations=iterations,
            noauto=bool(opt("zdtm_noauto", False)),
            build=not bool(opt("zdtm_no_build", False)),
            timeout_scale=_timeout_scale(float(opt("zdtm_timeout_scale", 1.0)),  # type: ignore[arg-type]
                                         bool(opt("zdtm_stress", False))),
            refcr=refcr,
            guest=bool(opt("zdtm_guest", False)),
            static=_dir_option(config, "zdtm_static", "--zdtm-static"),
            libdir=_dir_option(config, "zdtm_libdir", "--zdtm-libdir"),
            stress=bool(opt("zdtm_stress", False)),
        )


def _dir_option(config: pytest.Config, name: str, flag: str) -> Path | None:
    value = config.getoption(name, None)
    if not value:
        return None
    path = (Path(str(config.invocation_params.dir)) / str(value)).resolve()
    if not path.is_dir():
        raise pytest.UsageError(f"{flag}={value}: not a directory")
    return path


def _timeout_scale(given: float, stress: bool) -> float:
    """Under --zdtm-stress timeouts (which catch hangs) are 3x, unless given."""
    return 3.0 if stress and given == 1.0 else given


@dataclass
class SessionState:
    """Per-process state of the plugin (kept in config.stash, never global)."""

    layout: Layout
    options: Options
    build_result: BuildResult | None = None
    probe: features.FeatureProbe | None = None
    tracker: RequiredTracker | None = None
    required_problems: list[str] | None = None
    noauto_deselected: list[str] = field(default_factory=list)
    stress: Stress | None = None


STATE = pytest.StashKey[SessionState]()


def _state(config: pytest.Config) -> SessionState:
    return config.stash[STATE]


def is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def child_env(layout: Layout) -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(layout.repo)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


def required_flavors(layout: Layout) -> dict[str, tuple[str, ...]]:
    """Each scenario of required.txt -> the flavors it must pass in."""
    out = {}
    for name in read_required(layout.required_list):
        source, app = layout.static / f"{name}.c", layout.apps / f"{name}.py"
        try:
            desc_flavors = load(source).flavors if source.exists() else None
        except DescError:
            desc_flavors = None  # the collection error reports it
        if not source.exists() and app.exists():
            try:
                desc_flavors = apps.load_app(app).flavors
            except Exception:  # noqa: BLE001 - the collection error reports it
                desc_flavors = None
        out[name] = required_in(desc_flavors)
    return out


# ---- hooks ------------------------------------------------------------------------

def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("zdtm", "zdtm checkpoint/restore scenarios")
    g.addoption("--zdtm-keep", action="store_true", help="keep every work dir (failed runs always keep theirs)")
    g.addoption("--zdtm-no-cr", action="store_true",
                help="no dump/restore: start, snapshot twice, SIGTERM, expect PASS (validates scenarios)")
    g.addoption("--zdtm-flavor", default=",".join(DEFAULT_SELECTION), metavar="LIST",
                help=f"comma-separated flavors to run, or 'all' (known: {', '.join(FLAVORS)}; default %(default)s)")
    g.addoption("--zdtm-iters", type=int, default=1, metavar="N", help="dump/restore N times in a row")
    g.addoption("--zdtm-noauto", action="store_true", help="also run scenarios flagged noauto")
    g.addoption("--zdtm-no-build", action="store_true", help="do not run make -C zdtm first")
    g.addoption("--zdtm-timeout-scale", type=float, default=1.0, metavar="X", help="multiply every timeout by X")
    g.addoption("--zdtm-refcr", default=None, metavar="CMD",
                help="command to run refcr (default: the current python -m refcr)")
    g.addoption("--zdtm-static", default=None, metavar="DIR",
                help="run the tests of DIR (NAME.c + NAME.desc, written for CRIU's zdtm library or refcr's) "
                     "instead of zdtm/static; built into zdtm/work/ext")
    g.addoption("--zdtm-libdir", default=None, metavar="DIR",
                help="plugin directory (-L) for every item, instead of the .desc's 'plugins'")
    g.addoption("--zdtm-stress", action="store_true",
                help="run the session with a CPU hog on every core and a memory hog (zdtm/harness/stress.py)")
    g.addoption("--zdtm-guest", action="store_true",
                help="run every item inside the QEMU guest (kernel 6.12), not only those needing a missing device")


def pytest_configure(config: pytest.Config) -> None:
    options = Options.from_config(config)
    layout = Layout.here()
    if options.static is not None:
        layout = dataclasses.replace(layout, static_dir=options.static)
        _collect_also(config, options.static)
        # zdtm/conftest.py's hooks see only files below zdtm/: DIR's need a global one
        config.pluginmanager.register(ExternalCollector(), "zdtm-external")
    state = SessionState(layout=layout, options=options)
    if not is_xdist_worker(config) and not layout.external:
        state.tracker = RequiredTracker(required_flavors(layout), state.options.flavors)
        config.pluginmanager.register(RequiredRecorder(state.tracker), "zdtm-required")
    config.stash[STATE] = state
    config.addinivalue_line("markers", "zdtm: a zdtm checkpoint/restore scenario")
    procs.become_subreaper()
    if state.options.stress and not is_xdist_worker(config):
        state.stress = Stress.start()


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(STATE, None)
    if state is not None and state.stress is not None:
        state.stress.stop()
        state.stress = None


def _collect_also(config: pytest.Config, directory: Path) -> None:
    """`pytest zdtm --zdtm-static=DIR`: DIR is collected too (named or not)."""
    rootdir = Path(str(config.invocation_params.dir))
    for arg in config.args:
        p = (rootdir / str(arg).split("::", 1)[0]).resolve()
        if p == directory or p in directory.parents:
            return
    config.args.append(str(directory))


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    layout = _state(parent.config).layout
    if layout.is_scenario_source(file_path):
        return ScenarioFile.from_parent(parent, path=file_path)
    if not layout.external and layout.is_app_source(file_path):
        return AppFile.from_parent(parent, path=file_path)
    return None


def _named_paths(config: pytest.Config) -> set[Path]:
    rootdir = Path(str(config.invocation_params.dir))
    return {(rootdir / str(a).split("::", 1)[0]).resolve() for a in config.args}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    state = _state(config)
    if state.options.noauto:
        return
    named = _named_paths(config)
    keep, drop = [], []
    for item in items:
        if isinstance(item, ScenarioItem) and item.scenario.noauto and item.path.resolve() not in named:
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        state.noauto_deselected = [item.nodeid for item in drop]
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_report_header(config: pytest.Config) -> list[str]:
    o = _state(config).options
    mode = "start/SIGTERM only (--zdtm-no-cr)" if o.no_cr else f"dump/restore x{o.iterations}"
    lines = [f"zdtm: flavors {','.join(o.flavors)}, {mode}, refcr: {shlex.join(o.refcr)}"]
    stress = _state(config).stress
    if stress is not None:
        lines.append(f"zdtm: {stress.describe()}, timeouts x{o.timeout_scale:g}")
    return lines


def whole_suite(config: pytest.Config, layout: Layout) -> bool:
    """True if this session was asked to run every scenario (no filtering) in
    every required flavor."""
    if not set(REQUIRED_FLAVORS) <= set(_state(config).options.flavors):
        return False
    o = config.option
    if getattr(o, "keyword", "") or getattr(o, "markexpr", "") or getattr(o, "deselect", None):
        return False
    if getattr(o, "lf", False) or getattr(o, "failedfirst", False) or getattr(o, "stepwise", False):
        return False
    # every scenario: zdtm/static and zdtm/apps (required.txt names both kinds)
    wanted = {layout.static.resolve(), layout.apps.resolve()}
    for arg in config.args:
        if "::" in str(arg):
            continue
        p = (Path(str(config.invocation_params.dir)) / str(arg)).resolve()
        wanted = {d for d in wanted if not (p == d or p in d.parents)}
    return not wanted


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash.get(STATE, None)
    if state is None or state.tracker is None or session.config.option.collectonly:
        return
    problems = state.tracker.problems(whole_suite(session.config, state.layout))
    state.required_problems = problems
    if problems and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:  # type: ignore[no-untyped-def]
    state = config.stash.get(STATE, None)
    if state is None:
        return
    tr = terminalreporter
    if state.noauto_deselected and tr.verbosity >= 0:
        tr.line(f"zdtm: deselected {len(state.noauto_deselected)} noauto scenario item(s) "
                "(name them on the command line or pass --zdtm-noauto): " + " ".join(state.noauto_deselected))
    if not state.required_problems:
        return
    tr.section("zdtm: required scenarios not passed", sep="=", red=True, bold=True)
    for line in state.required_problems:
        tr.line(f"REQUIRED {line}", red=True)
    tr.line(f"(the list is {state.layout.required_list})")


# ---- nodes ------------------------------------------------------------------------

class ScenarioFile(pytest.File):
    """zdtm/static/NAME.c: one item per flavor."""

    def collect(self):  # type: ignore[no-untyped-def]
        state = _state(self.config)
        try:
            scenario = load(self.path, strict=not state.layout.external)
        except DescError as e:
            raise self.CollectError(str(e)) from None
        for w in scenario.warnings:
            self.warn(pytest.PytestWarning(w))
        if state.layout.external:
            scenario = dataclasses.replace(scenario, built=external.binary(state.layout, self.path))
        if state.options.libdir is not None:
            scenario = dataclasses.replace(scenario, libdir=state.options.libdir)
        selected = state.options.flavors
        wanted = scenario.flavors if scenario.flavors is not None else tuple(FLAVORS)
        for name in wanted:
            if name not in FLAVORS:
                raise self.CollectError(f"{scenario.name}.desc: unknown flavor {name!r}")
        chosen = [n for n in wanted if n in selected]
        if chosen:
            for name in chosen:
                yield ScenarioItem.from_parent(self, name=name, scenario=scenario, flavor=FLAVORS[name])
        else:
            # Keep the scenario visible: its flavors were all left out.
            for name in wanted:
                yield ScenarioItem.from_parent(
                    self, name=name, scenario=scenario, flavor=FLAVORS[name],
                    not_selected=f"flavor {name!r} not selected (--zdtm-flavor={','.join(selected)})",
                )


def _skip(reason: str) -> None:
    """Skip, reported at the scenario's location rather than this file's."""
    raise pytest.skip.Exception(reason, _use_item_location=True)


class ScenarioItem(pytest.Item):
    def __init__(self, *, scenario: Scenario, flavor: Flavor, not_selected: str | None = None, **kw) -> None:  # type: ignore[no-untyped-def]
        super().__init__(**kw)
        self.scenario = scenario
        self.flavor = flavor
        self.not_selected = not_selected
        self.add_marker(pytest.mark.zdtm)
        if scenario.name.startswith(("pty", "inherit_fd_tty", "dev_tty", "ctty")) or scenario.shell_job:
            # host ptys are one shared index space: terminal items run on one worker
            # (with --dist loadgroup), one after another (inherit_fd_tty*: its peer
            # and the harness allocate ptys while pty00 may need a given index)
            self.add_marker(pytest.mark.xdist_group("terminals"))
        if scenario.excl:
            # CRIU's 'excl' (run alone): its items at least run one after another
            self.add_marker(pytest.mark.xdist_group("excl"))
        if scenario.devices:
            # a device is one per host (/dev/rtc opens once) and a QEMU guest keeps a
            # core busy: items with devices run on one worker, one after another
            self.add_marker(pytest.mark.xdist_group("devices"))
        self.run_state: ScenarioRun | None = None
        self.in_guest = False  # set by setup(): the item runs in a QEMU guest (guest.py)

    def setup(self) -> None:
        if self.not_selected:
            _skip(self.not_selected)
        why = unavailable_here(self.flavor)
        if why:
            _skip(why)
        state = _state(self.config)
        sc = self.scenario
        if state.options.no_cr and (sc.peer or sc.checkpoints or sc.shell_job):
            _skip("--zdtm-no-cr: its protocol includes the checkpoint/restore (peer, checkpoints or shell_job)")
        if state.options.build:
            if state.build_result is None:
                state.build_result = build(state.layout)
            if not state.build_result.ok:
                pytest.fail(
                    f"make -C zdtm or make -C plugins failed (log: {state.build_result.log_path}):\n"
                    f"{state.build_result.tail}",
                    pytrace=False,
                )
            if state.layout.external:
                res = external.build(state.layout, self.path)
                if not res.ok:
                    pytest.fail(f"building {self.path.name} failed (log: {res.log_path}):\n{res.tail}", pytrace=False)
        self._check_criu_keys()
        if state.probe is None:
            state.probe = features.FeatureProbe(state.options.refcr, child_env(state.layout), state.layout.repo)
        for feat in self.scenario.features:
            try:
                why = state.probe.missing(feat)
            except features.UnknownFeature as e:
                pytest.fail(f"{self.scenario.name}.desc: {e}", pytrace=False)
            if why is not None:
                _skip(f"kernel feature {feat!r} missing: {why}")
        self._choose_guest(state)

    def _check_criu_keys(self) -> None:
        """CRIU's .desc keys 'arch' and 'deps': skip where they cannot hold."""
        sc = self.scenario
        if sc.arch and platform.machine() not in sc.arch:
            _skip(f"{sc.name}.desc: arch {' '.join(sc.arch)}, this machine is {platform.machine()}")
        missing = [d for d in sc.deps if not (os.path.exists(d) if d.startswith("/") else shutil.which(d))]
        if missing:
            _skip(f"{sc.name}.desc: deps {' '.join(missing)} not on this machine")

    def _choose_guest(self, state: SessionState) -> None:
        """Devices the host lacks (or --zdtm-guest): run the item in a guest."""
        missing = guest.missing_devices(self.scenario.devices)
        for d in self.scenario.plugin_dirs:
            if not any(d.glob("*.so")):
                how = "--zdtm-libdir" if self.scenario.libdir else "make -C plugins"
                pytest.fail(f"{self.scenario.name}: no plugin (*.so) in {d} ({how})", pytrace=False)
        if not missing and not state.options.guest:
            return
        why = guest.unavailable()
        if why:
            _skip(f"needs {' '.join(missing) or 'the guest'} (not on this host); the QEMU guest cannot run: {why}")
        self.in_guest = True

    def runtest(self) -> None:
        state = _state(self.config)
        o = state.options
        workdir = state.layout.workdir(self.flavor.name, self.scenario.name)
        run = self._make_run(RunConfig(
            scenario=self.scenario,
            flavor=self.flavor,
            workdir=workdir,
            env=child_env(state.layout),
            no_cr=o.no_cr,
            iterations=o.iterations,
            timeouts=Timeouts().scaled(o.timeout_scale),
            refcr=o.refcr,
        ))
        self.run_state = run
        # Another pytest session may be running the same scenario: take turns.
        with locked(workdir.parent / f".{workdir.name}.lock"):
            try:
                run.run()
            except BaseException:
                for path in run.artifacts():
                    self.add_report_section("call", f"{path.name} (last lines)", tail(path))
                raise
            if not o.keep:
                shutil.rmtree(workdir, ignore_errors=True)

    def _make_run(self, cfg: RunConfig) -> ScenarioRun:
        return (guest.GuestRun if self.in_guest else ScenarioRun)(cfg)

    def repr_failure(self, excinfo, style=None):  # type: ignore[no-untyped-def]
        if isinstance(excinfo.value, StepFailed):
            e = excinfo.value
            run = self.run_state
            done = " -> ".join(run.steps_done) if run else ""
            lines = [f"{self.scenario.name}::{self.flavor.name}: step '{e.step}' failed: {e.message}"]
            lines += e.details
            if run:
                lines.append(f"steps passed: {done or '(none)'}")
                lines.append(f"work dir kept: {run.cfg.workdir}")
            return "\n".join(lines)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):  # type: ignore[no-untyped-def]
        return self.path, 0, f"{self.scenario.name}::{self.flavor.name}"


class AppFile(pytest.File):
    """zdtm/apps/NAME.py: a real program's driver (apps.py), one item per flavor."""

    def collect(self):  # type: ignore[no-untyped-def]
        state = _state(self.config)
        try:
            app = apps.load_app(self.path)
        except Exception as e:  # noqa: BLE001 - any error of the driver module is its collection error
            raise self.CollectError(f"{self.path.name}: {type(e).__name__}: {e}") from None
        scenario = apps.scenario_of(self.path, app)
        wanted = scenario.flavors or ()
        for name in wanted:
            if name not in FLAVORS:
                raise self.CollectError(f"{self.path.name}: unknown flavor {name!r}")
        chosen = [n for n in wanted if n in state.options.flavors]
        why = None if chosen else f"flavors not selected (--zdtm-flavor={','.join(state.options.flavors)})"
        for name in chosen or wanted:
            yield AppItem.from_parent(self, name=name, scenario=scenario, flavor=FLAVORS[name],
                                      not_selected=why, app=app)


class AppItem(ScenarioItem):
    def __init__(self, *, app: "apps.App", **kw) -> None:  # type: ignore[no-untyped-def]
        super().__init__(**kw)
        self.app = app
        if app.group:
            self.add_marker(pytest.mark.xdist_group(app.group))

    def _make_run(self, cfg: RunConfig) -> ScenarioRun:
        return apps.AppRun(cfg, self.app)

    def _check_criu_keys(self) -> None:
        """A program an app needs is part of the set-up: missing, the item fails (never skips)."""
        missing = [d for d in self.scenario.deps if not (os.path.exists(d) if d.startswith("/") else shutil.which(d))]
        if missing:
            pytest.fail(f"{self.scenario.name}: {' '.join(missing)} not installed (./dev.sh setup installs it)",
                        pytrace=False)


class ExternalCollector:
    """pytest_collect_file for the --zdtm-static directory (outside zdtm/)."""

    def pytest_collect_file(self, file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
        layout = _state(parent.config).layout
        if layout.zdtm not in file_path.resolve().parents and layout.is_scenario_source(file_path):
            return ScenarioFile.from_parent(parent, path=file_path)
        return None


class RequiredRecorder:
    """Feeds every test report to the RequiredTracker.

    A plugin object rather than a conftest hook because pytest_runtest_logreport
    gets no config; registered only where the tracker lives (xdist controller).
    """

    def __init__(self, tracker: RequiredTracker) -> None:
        self.tracker = tracker

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        reason = skip_reason(report.longrepr) if report.outcome == "skipped" else None
        self.tracker.record(report.nodeid, report.when, report.outcome, reason)
