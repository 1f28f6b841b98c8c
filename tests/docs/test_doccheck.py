"""The documentation checker itself: it must reject what is broken, or the doc tests prove nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs.doccheck import (
    Sandbox,
    check_lipsync,
    check_make,
    check_pip,
    check_python,
    check_shell,
    marker_before,
    shell_commands,
)


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["weights", "download", "./weights"], "unexpected extra argument"),  # issue 14: --dir is needed
        (["run", "--bogus"], "No such option: --bogus"),
        (["submit", "--seed", "x"], "--seed"),
        (["nope"], "no sub-command 'nope'"),
    ],
)
def test_a_broken_lipsync_command_is_rejected(args: list[str], problem: str) -> None:
    with pytest.raises(AssertionError, match=problem):
        check_lipsync(args)


def test_a_valid_lipsync_command_passes_with_placeholders_and_elisions() -> None:
    check_lipsync(["weights", "download", "--dir", "./weights"])
    check_lipsync(["submit", "…", "--api-key", "<KEY>", "--seed", "7", "--loop-mode", "loop"])


def test_make_pip_and_python_checks() -> None:
    check_make(["serve", "FETCH_ALLOW=127.0.0.1"])
    with pytest.raises(AssertionError, match="no such target"):
        check_make(["deploy-everything"])
    check_pip(["install", "lipsync-api[mock] @ git+https://github.com/org/lipsync@v1"])
    check_pip(["install", "-e", ".[dev]"])
    with pytest.raises(AssertionError, match="unrelated project"):
        check_pip(["install", "lipsync[mock]"])
    with pytest.raises(AssertionError, match="no extra 'gpu'"):
        check_pip(["install", ".[gpu]"])
    check_python("from lipsync.client import Client\nimport contracts")
    with pytest.raises(AssertionError, match="no such name"):
        check_python("from lipsync.client import Klient")
    with pytest.raises(SyntaxError):
        check_python("mock.configure(**MockConfig fields)")


def test_an_unknown_command_needs_a_check_or_a_reason() -> None:
    check_shell("export LIPSYNC_API_KEY=...  # comment\ncurl -s http://x")
    check_shell("LIPSYNC_DEVICES= lipsync serve --host 0.0.0.0")  # an environment prefix, then the command
    with pytest.raises(AssertionError, match="No such option"):
        check_shell("LIPSYNC_DEVICES= lipsync serve --hots 0.0.0.0")
    with pytest.raises(AssertionError, match="no check for the documented command `rm -rf /`"):
        check_shell("rm -rf /")


def test_commands_are_split_as_a_shell_would() -> None:
    source = "lipsync submit --base-url http://h \\\n    --api-key K   # the key\n# a comment\n\nmake test\n"
    assert list(shell_commands(source)) == ["lipsync submit --base-url http://h --api-key K", "make test"]


def test_markers_and_the_sandbox_report_failures(tmp_path: Path) -> None:
    text = "intro\n<!-- doc: run -->\n```python\nx = 1\n```\n"
    assert marker_before(text, text.index("```")) == "run"
    assert marker_before("no marker\n```", len("no marker\n")) is None
    sandbox = Sandbox(tmp_path, "http://127.0.0.1:9", "k")
    assert sandbox.substitute('Client(api_key="<KEY>", base_url="http://127.0.0.1:8000")') == (
        'Client(api_key="k", base_url="http://127.0.0.1:9")'
    )
    sandbox.run_python("import pathlib; pathlib.Path('ran').write_text('yes')")
    assert (tmp_path / "ran").read_text() == "yes"
    with pytest.raises(AssertionError, match="failed"):
        sandbox.run_python("raise SystemExit(3)")
    with pytest.raises(AssertionError, match="failed"):
        sandbox.run_shell("false")
