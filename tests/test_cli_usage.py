"""``monitor`` and its groups without a command print their help; typer's usage errors are one line, exit 2.

Both go through typer's public API only (a group callback with ``invoke_without_command``, and
``typer.TyperException``, the base of typer's usage errors), not typer's private ``typer._click``.
"""

from __future__ import annotations

import itertools

import pytest

from monitor.cli import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run ``monitor ARGS`` through the console-script entry point; (exit code, stdout, stderr)."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


@pytest.mark.parametrize(
    ("args", "commands"),
    [
        ((), ("kafka", "ingest", "reference", "drift", "detect", "up", "demo")),
        (("kafka",), ("start", "stop", "status", "fetch")),
        (("reference",), ("add", "list")),
    ],
)
def test_a_group_without_a_command_prints_its_help(
    capsys: pytest.CaptureFixture[str], args: tuple[str, ...], commands: tuple[str, ...]
) -> None:
    code, out, err = run(capsys, *args)
    assert code == 0 and err == ""
    assert "Usage: monitor" in out
    for command in commands:
        assert command in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--bogus",), "No such option: --bogus"),
        (("nosuch",), "No such command 'nosuch'"),
        (("kafka", "nosuch"), "No such command 'nosuch'"),
        (("drift",), "Missing option '--reference'"),
        (("reference", "add", "--bogus"), "No such option: --bogus"),
    ],
)
def test_a_usage_error_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    code, out, err = run(capsys, *args)
    assert code == 2 and out == ""
    assert err.startswith("monitor: error: ") and message in err
    assert err.strip().count("\n") == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--end", "99999999999999999"), "--end: timestamp '99999999999999999' out of range: must be between 1970"),
        (("--end", "0001-01-01T00:00:00Z"), "--end: timestamp '0001-01-01T00:00:00Z' out of range"),
        (("--end", "9999-12-31T23:59:59-05:00"), "out of range: must be between 1970-01-01 and 2200-01-01"),
        (("--window", "10000000d"), "--window: duration '10000000d' is too long: at most 3650d"),
        (("--window", "9" * 400 + "s"), "is too long: at most 3650d"),
    ],
)
def test_detect_refuses_out_of_range_times_and_windows_in_one_line(
    capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    """Checked before the configuration is read, as bad input (exit 2), never an OverflowError (exit 3)."""
    code, out, err = run(capsys, "detect", "--model", "fraud", *args)
    assert code == 2 and out == ""
    assert err.startswith("monitor: error: ") and message in err
    assert err.strip().count("\n") == 0 and "Traceback" not in err


COMMAND_PATHS = [
    (),
    ("up",),
    ("ingest",),
    ("detect",),
    ("drift",),
    ("estimate",),
    ("demo",),
    ("kafka",),
    ("kafka", "start"),
    ("reference",),
    ("reference", "add"),
]


@pytest.mark.parametrize("path", COMMAND_PATHS, ids=lambda p: " ".join(p) or "monitor")
def test_help_paragraphs_are_reflowed_to_the_terminal_width(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, path: tuple[str, ...]
) -> None:
    """A docstring's source line breaks never show: each prose line of the description is filled to the
    terminal's width before the next starts (examples, which are indented, keep their own lines)."""
    monkeypatch.setenv("COLUMNS", "160")
    monkeypatch.setenv("TERMINAL_WIDTH", "160")
    code, out, _ = run(capsys, *path, "--help")
    assert code == 0
    description = out.split("╭")[0].splitlines()
    prose = [line.strip() for line in description if line.startswith(" ") and not line.startswith("  ")]
    prose = [line for line in prose if line and not line.startswith("Usage:")]
    assert prose, out
    for line, following in itertools.pairwise(description):
        text, nxt = line.strip(), following.strip()
        if text in prose and nxt in prose and nxt:
            # the next line continues the same paragraph: this one was filled, up to one word short
            assert len(line.rstrip()) + 1 + len(nxt.split()[0]) > 160 - 2, (line, following)


def test_version_is_the_installed_distributions(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    code, out, err = run(capsys, "--version")
    assert (code, err) == (0, "")
    assert out == f"monitor {version('model-monitor')}\n"
