"""Every operator command explains itself with an example, and offers JSON output."""

from __future__ import annotations

import pytest

from tagrelay.cli.main import main


@pytest.mark.parametrize("command", ["deploy", "rollback", "pin", "unpin", "dora"])
def test_help_explains_the_command_with_an_example_and_json_output(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])

    out = capsys.readouterr().out
    assert exited.value.code == 0
    example = out.split("example:\n", 1)[1]
    assert f"  tagrelay {command} " in example
    assert "--output" in out and "json" in out


def test_the_top_level_help_lists_the_operator_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])

    listed = capsys.readouterr().out
    for command in ("deploy", "rollback", "pin", "unpin", "dora"):
        assert f"\n    {command} " in listed
