"""``monitor`` and its groups without a command print their help; typer's usage errors are one line, exit 2.

Both go through typer's public API only (a group callback with ``invoke_without_command``, and
``typer.TyperException``, the base of typer's usage errors), not typer's private ``typer._click``.
"""

from __future__ import annotations

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
