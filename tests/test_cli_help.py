"""`refcr dump|pre-dump|restore --help`: every option on one line, in CRIU's
groups; every CRIU option refcr lacks refused in one line naming it."""
from __future__ import annotations

from pathlib import Path

import pytest
from test_cli_plain import refcr

from refcr import options as cliopts
from refcr.cli import build_parser, main

COMMANDS = ("dump", "pre-dump", "restore")


def subparser(command: str):
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return sub.choices[command]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_lists_every_option_on_one_line_in_criu_groups(command: str, tmp_path: Path) -> None:
    res = refcr(command, "--help", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    text = res.stdout
    titles = [title for title, _ in cliopts.GROUPS[command]]
    for title in titles:
        assert f"\n{title}:\n" in text, f"no group {title!r} in {text}"
    lines = text.splitlines()
    options = [line for line in lines if line.startswith("  -")]
    for line in options:
        flags, _, helptext = line.strip().partition("  ")
        assert helptext.strip(), f"option without its help on the same line: {line!r}"
    p = subparser(command)
    shown = [a for a in p._actions if a.help != "==SUPPRESS=="]
    for a in shown:
        assert any(a.option_strings[0] in line.split("  ")[1] for line in options), f"{a.option_strings} not listed"
    assert len(options) == len(shown)
    refused = text[text.index("CRIU options refcr refuses"):].replace("\n", " ")
    for spellings, _, _ in cliopts.REFUSED[command]:
        assert "/".join(spellings) in refused


@pytest.mark.parametrize("command", COMMANDS)
def test_refused_criu_options_are_one_line_errors_naming_them(command: str, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    base = {"dump": ["-t", "1"], "pre-dump": ["-t", "1"], "restore": []}[command]
    for spellings, takes_value, _ in cliopts.REFUSED[command]:
        for spelling in spellings:
            extra = [spelling, "x"] if takes_value else [spelling]
            assert main([command, *base, "-D", str(tmp_path / "img"), *extra]) == 1
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and f"{spelling} is a CRIU option refcr does not support" in err, err
            assert not (tmp_path / "img").exists()
