"""A scenario and its optional NAME.desc (a Python dict literal).

The format is CRIU's (test/zdtm/static/*.desc): besides refcr's own keys,
CRIU's ``arch`` (the test runs only there: skipped elsewhere), ``deps``
(programs the test runs: skipped if one is missing), the flags ``excl``
(run alone in CRIU; here its items share one xdist group), ``reqrst``,
``nouser``, ``samens`` (no meaning here: every item is restored, in its
flavor's namespaces) are understood.  In zdtm/static an unknown key or
flag is an error (a typo would silently drop a check); in a
``--zdtm-static`` directory of tests written for CRIU it is a warning
(Scenario.warnings), since CRIU grows keys refcr does not know.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

KNOWN_KEYS = frozenset({"flags", "opts", "dopts", "ropts", "flavor", "feature", "dump_env",
                        "peer", "peer_netns", "checkpoints", "restore_checkpoint",
                        "track_mem", "predump", "restore_each",
                        "device", "plugins", "outer_netns", "action_script", "outer_mnt",
                        "arch", "deps", "transient"})
TRANSIENT = frozenset({"threads", "children", "signals", "timers"})
KNOWN_FLAGS = frozenset({"crfail", "noauto", "suid", "shell_job", "excl", "reqrst", "nouser", "samens"})


class DescError(Exception):
    """A NAME.desc that cannot be used; the message names the file."""


@dataclass(frozen=True)
class Scenario:
    name: str
    source: Path
    flags: frozenset[str] = frozenset()
    opts: tuple[str, ...] = ()
    dopts: tuple[str, ...] = ()
    ropts: tuple[str, ...] = ()
    flavors: tuple[str, ...] | None = None  # None: every flavor
    features: tuple[str, ...] = ()
    dump_env: dict[str, str] = field(default_factory=dict)
    peer: str | None = None          # zdtm/peers/NAME: a daemon outside the dumped tree (peers.py)
    peer_netns: bool = False         # ... started in the scenario's net namespace
    checkpoints: int = 0             # --leave-running dumps before the real one (cropts.py)
    restore_checkpoint: int = 0      # restore that checkpoint (1..checkpoints) instead of the real dump
    track_mem: bool = False          # checkpoints form a --track-mem chain (chain.py)
    predump: bool = False            # checkpoints are `refcr pre-dump`s (chain.py)
    restore_each: bool = False       # afterwards restore every checkpoint too (chain.py)
    devices: tuple[str, ...] = ()    # device paths it needs; missing on the host: runs in a guest (guest.py)
    plugins: tuple[str, ...] = ()    # plugins/NAME/NAME.so, loaded with -L for dump and restore
    outer_netns: tuple[str, ...] | None = None  # commands run in a private outer net namespace (outerns.py)
    action_script: str | None = None  # --action-script: inline text (#!...) or a repo path (outerns.py)
    outer_mnt: tuple[str, ...] = ()   # work-dir dirs given a tmpfs in a private outer mount ns (outermnt.py)
    arch: tuple[str, ...] = ()        # CRIU's 'arch': machines it runs on (empty: all)
    deps: tuple[str, ...] = ()        # CRIU's 'deps': programs it needs
    warnings: tuple[str, ...] = ()    # unknown keys/flags of a non-strict .desc
    libdir: Path | None = None        # --zdtm-libdir: the plugin directory for every item
    built: Path | None = None         # the binary, when not next to the source (external.py)

    @property
    def excl(self) -> bool:
        return "excl" in self.flags
    transient: frozenset[str] = frozenset()  # what the scenario churns on purpose (snapshot.diff); it checks them

    @property
    def binary(self) -> Path:
        return self.built or self.source.with_suffix("")

    @property
    def crfail(self) -> bool:
        return "crfail" in self.flags

    @property
    def noauto(self) -> bool:
        return "noauto" in self.flags

    @property
    def shell_job(self) -> bool:
        return "shell_job" in self.flags

    @property
    def plugin_dirs(self) -> list[Path]:
        """--zdtm-libdir, else plugins/NAME of the repo for each of the .desc's plugins."""
        if self.libdir is not None:
            return [self.libdir]
        return [self.source.resolve().parents[2] / "plugins" / p for p in self.plugins]

    def _plugin_opts(self) -> list[str]:
        return [f"--libdir={d}" for d in self.plugin_dirs]

    def dump_opts(self) -> list[str]:
        return [*self._plugin_opts(), *self.opts, *self.dopts]

    def restore_opts(self) -> list[str]:
        return [*self._plugin_opts(), *self.opts, *self.ropts]


def _words(path: Path, key: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(value.split())
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise DescError(f"{path}: '{key}' must be a string or a list of strings, not {value!r}")


def _chain_keys(path: Path, raw: dict) -> dict[str, bool]:
    """'track_mem', 'predump', 'restore_each' (harness/chain.py)."""
    keys = {k: raw.get(k, False) for k in ("track_mem", "predump", "restore_each")}
    if not all(isinstance(v, bool) for v in keys.values()):
        raise DescError(f"{path}: 'track_mem', 'predump' and 'restore_each' must be True or False")
    if any(keys.values()) and not raw.get("checkpoints"):
        raise DescError(f"{path}: 'track_mem', 'predump' and 'restore_each' need 'checkpoints'")
    if keys["predump"] and (keys["restore_each"] or raw.get("restore_checkpoint")):
        raise DescError(f"{path}: pre-dumps cannot be restored ('predump' with a restore of a checkpoint)")
    return keys


def load(source: Path, strict: bool = True) -> Scenario:
    """The scenario for zdtm/static/NAME.c, with NAME.desc applied if present;
    `strict`: an unknown key or flag is an error, else a warning."""
    desc_path = source.with_suffix(".desc")
    name = source.stem
    if not desc_path.exists():
        return Scenario(name=name, source=source)
    try:
        raw = ast.literal_eval(desc_path.read_text())
    except (SyntaxError, ValueError) as e:
        raise DescError(f"{desc_path}: not a Python literal: {e}") from None
    if not isinstance(raw, dict):
        raise DescError(f"{desc_path}: must be a dict literal, not {type(raw).__name__}")
    warnings = []
    unknown = set(raw) - KNOWN_KEYS
    if unknown:
        msg = f"{desc_path}: unknown key(s) {sorted(unknown)}; known: {sorted(KNOWN_KEYS)}"
        if strict:
            raise DescError(msg)
        warnings.append(msg + " (ignored)")
        raw = {k: v for k, v in raw.items() if k in KNOWN_KEYS}
    flags = frozenset(_words(desc_path, "flags", raw.get("flags", "")))
    bad_flags = flags - KNOWN_FLAGS
    if bad_flags:
        msg = f"{desc_path}: unknown flag(s) {sorted(bad_flags)}; known: {sorted(KNOWN_FLAGS)}"
        if strict:
            raise DescError(msg)
        warnings.append(msg + " (ignored)")
        flags = flags & KNOWN_FLAGS
    env = raw.get("dump_env", {})
    if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        raise DescError(f"{desc_path}: 'dump_env' must be a dict of strings")
    flavors = _words(desc_path, "flavor", raw["flavor"]) if "flavor" in raw else None
    peer = raw.get("peer")
    if peer is not None and not (isinstance(peer, str) and re.fullmatch(r"[\w.-]+", peer)):
        raise DescError(f"{desc_path}: 'peer' must be the name of a file in zdtm/peers/, not {peer!r}")
    if not isinstance(raw.get("peer_netns", False), bool):
        raise DescError(f"{desc_path}: 'peer_netns' must be True or False")
    plugins = _words(desc_path, "plugins", raw.get("plugins", ""))
    if len(plugins) > 1 or not all(re.fullmatch(r"[\w.-]+", p) for p in plugins):
        raise DescError(f"{desc_path}: 'plugins' names one directory of plugins/ (refcr takes one -L), "
                        f"not {plugins!r}")
    checkpoints, restore_cp = raw.get("checkpoints", 0), raw.get("restore_checkpoint", 0)
    if not (isinstance(checkpoints, int) and isinstance(restore_cp, int) and checkpoints >= 0
            and 0 <= restore_cp <= checkpoints):
        raise DescError(f"{desc_path}: 'checkpoints' must be a count and 'restore_checkpoint' one of 1..checkpoints")
    outer = raw.get("outer_netns")
    if outer is not None and not (isinstance(outer, list) and all(isinstance(c, str) for c in outer)):
        raise DescError(f"{desc_path}: 'outer_netns' must be a list of commands (strings)")
    script = raw.get("action_script")
    if script is not None and not isinstance(script, str):
        raise DescError(f"{desc_path}: 'action_script' must be a script's text or a path in the repository")
    return Scenario(
        name=name,
        source=source,
        flags=flags,
        opts=_words(desc_path, "opts", raw.get("opts", "")),
        dopts=_words(desc_path, "dopts", raw.get("dopts", "")),
        ropts=_words(desc_path, "ropts", raw.get("ropts", "")),
        flavors=flavors,
        features=_words(desc_path, "feature", raw.get("feature", "")),
        dump_env=dict(env),
        peer=peer,
        peer_netns=bool(raw.get("peer_netns", False)),
        checkpoints=checkpoints,
        restore_checkpoint=restore_cp,
        **_chain_keys(desc_path, raw),
        devices=_words(desc_path, "device", raw.get("device", "")),
        plugins=plugins,
        outer_netns=tuple(outer) if outer is not None else None,
        outer_mnt=_words(desc_path, "outer_mnt", raw.get("outer_mnt", "")),
        action_script=script,
        arch=_words(desc_path, "arch", raw.get("arch", "")),
        deps=_words(desc_path, "deps", raw.get("deps", "")),
        warnings=tuple(warnings),
        transient=_transient(desc_path, raw.get("transient", "")),
    )


def _transient(desc_path: Path, value: object) -> frozenset[str]:
    words = frozenset(_words(desc_path, "transient", value))
    if not words <= TRANSIENT:
        raise DescError(f"{desc_path}: 'transient' words are {', '.join(sorted(TRANSIENT))}, "
                        f"not {', '.join(sorted(words - TRANSIENT))}")
    return words
