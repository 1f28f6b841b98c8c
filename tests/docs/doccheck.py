"""Check the code blocks of README.md and docs/*.md against the code (collected by Sybil, see ../../conftest.py).

Every block is checked; how deeply depends on what it is:

- **python**: it compiles, and every name it imports exists (``import a.b``, ``from a import b``), so a
  renamed module, class or function breaks the build, not a reader's first try. A block marked
  ``<!-- doc: run -->`` (an HTML comment just above it, invisible when rendered) is executed in the sandbox
  (see :class:`Sandbox`); ``<!-- doc: run-pytest -->`` runs it as a test file of a fresh pytest session.
- **bash**: each command (``\\`` continuations joined, comments and placeholders removed) is checked:
  ``lipsync …`` by click's own parser on the real CLI (the sub-command path, every option and its value's
  type/choices), ``make TARGET`` against the Makefile, ``pip install …`` against the distribution name and
  extras of pyproject.toml, ``modal run modal_app.py::NAME`` against modal_app.py. A block marked
  ``<!-- doc: run -->`` is then executed line by line in the sandbox.

Commands that cannot be checked here are listed in :data:`NOT_CHECKED` with the reason; anything else is
an error, so a new kind of command in the docs has to be given a check or a reason.
"""

from __future__ import annotations

import ast
import importlib
import os
import re
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from typer import _click as click  # typer parses with its vendored click: check with the parser the CLI uses
from typer._click.exceptions import MissingParameter, UsageError
from typer.exceptions import Exit

REPO_ROOT = Path(__file__).resolve().parents[2]

#: Commands the docs show that no test here can run, and why. Their lines are recognised and passed over.
NOT_CHECKED: dict[str, str] = {
    "modal setup": "logs in to a Modal account (needs the network and a person)",
    "modal secret": "creates a secret in a Modal workspace (the names are checked by tests/modal)",
    "modal deploy": "deploys to Modal's cloud; modal_app.py itself is imported and tested in tests/modal",
    "curl": "talks to a deployment; the same routes are exercised over real HTTP in tests/server",
    "export": "sets environment variables only",
    "cd": "changes directory only",
    "git": "clones or updates a checkout",
    "python3 -m venv": "creates a virtual environment",
}

_PLACEHOLDERS = (
    (re.compile(r"<[^<>\s]*[Kk][Ee][Yy][^<>]*>"), "doc-key"),
    (re.compile(r"<[^<>]+>"), "placeholder"),
    (re.compile(r"\$\{?KEY\}?"), "doc-key"),
)


def _unplaceholder(line: str) -> str:
    for pattern, value in _PLACEHOLDERS:
        line = pattern.sub(value, line)
    return line


# ---- python blocks ----------------------------------------------------------------------------------------


def imported_names(source: str) -> Iterator[tuple[str, str | None]]:
    """``(module, name or None)`` for every import statement of *source*."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                yield node.module, alias.name


def check_python(source: str) -> None:
    """Compile *source* and resolve its imports; AssertionError naming what is missing."""
    compile(source, "<doc block>", "exec")
    missing: list[str] = []
    for module, name in imported_names(source):
        try:
            mod = importlib.import_module(module)
        except ImportError as exc:
            missing.append(f"import {module}: {exc}")
            continue
        if name is not None and name != "*" and not hasattr(mod, name):
            try:
                importlib.import_module(f"{module}.{name}")
            except ImportError:
                missing.append(f"from {module} import {name}: no such name")
    assert not missing, "the block imports names that do not exist:\n" + "\n".join(missing)


# ---- shell blocks -----------------------------------------------------------------------------------------


def shell_commands(source: str) -> Iterator[str]:
    """The commands of a shell block: continuations joined, comments and blank lines dropped."""
    joined = re.sub(r"\\\n\s*", " ", source)
    for raw in joined.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError:  # an unbalanced quote inside a comment: fall back to a plain cut
            tokens = shlex.split(line.split(" #", 1)[0])
        if tokens:
            yield shlex.join(tokens)


def _lipsync_command() -> click.Command:
    from lipsync.cli import app

    return typer.main.get_command(app)


def check_lipsync(args: list[str]) -> None:
    """Parse ``lipsync ARGS`` with the real CLI's click parser (no command body runs)."""
    command: click.Command = _lipsync_command()
    ctx = click.Context(command, info_name="lipsync")
    rest = [_unplaceholder(a) for a in args if a not in ("…", "...")]
    path = ["lipsync"]
    while hasattr(command, "get_command") and rest and not rest[0].startswith("-"):  # a group
        sub = command.get_command(ctx, rest[0])
        assert sub is not None, f"`{' '.join(path)}` has no sub-command {rest[0]!r}"
        path.append(rest.pop(0))
        command = sub
    try:
        command.make_context(" ".join(path), rest, parent=ctx)
    except MissingParameter:  # the docs elide required options with "…": tolerated
        pass
    except Exit:  # --help
        pass
    except UsageError as exc:
        raise AssertionError(f"`{' '.join(path)} {shlex.join(rest)}`: {exc.format_message()}") from None


def makefile_targets() -> set[str]:
    text = (REPO_ROOT / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", text, re.M))


def check_make(args: list[str]) -> None:
    targets = [a for a in args if not a.startswith("-") and "=" not in a]
    known = makefile_targets()
    for target in targets:
        assert target in known, (
            f"`make {target}`: no such target in the Makefile ({', '.join(sorted(known))})"
        )


def _project() -> dict[str, Any]:
    project: dict[str, Any] = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    return project


def check_pip(args: list[str]) -> None:
    """``pip install SPEC…``: every requirement naming this project uses its distribution name and real
    extras (``lipsync-api[mock] @ git+…``, ``.[dev]``, ``./lipsync[mock]``)."""
    project = _project()
    extras = set(project["optional-dependencies"])
    specs = [a for a in args[1:] if not a.startswith("-")] if args[:1] == ["install"] else []
    for spec in specs:
        m = re.match(r"^(?P<name>[^\[@\s]+)(\[(?P<extras>[^\]]*)\])?", spec)
        if m is None:
            continue
        name = m["name"]
        is_path = name.startswith((".", "/", "dist/")) or name.endswith(".whl")
        if not is_path:
            assert name != "lipsync", "`pip install lipsync` installs an unrelated project (PyPI's lipsync)"
            if name != project["name"]:
                continue  # another package (e.g. the docs install modal itself)
        for extra in filter(None, (m["extras"] or "").split(",")):
            assert extra.strip() in extras, (
                f"`pip install {spec}`: no extra {extra!r} ({', '.join(sorted(extras))})"
            )


def check_modal(args: list[str]) -> None:
    if args[:1] == ["run"]:
        target = next(a for a in args[1:] if not a.startswith("-"))
        file, _, function = target.partition("::")
        source = (REPO_ROOT / file).read_text()
        assert re.search(rf"^def {re.escape(function)}\(", source, re.M), f"`modal run {target}`: no function"
        return
    for prefix in ("setup", "secret", "deploy"):
        if args[:1] == [prefix]:
            return
    raise AssertionError(f"`modal {shlex.join(args)}`: no check for this modal command")


CHECKS: dict[str, Callable[[list[str]], None]] = {
    "lipsync": check_lipsync,
    ".venv/bin/lipsync": check_lipsync,
    "make": check_make,
    "pip": check_pip,
    "modal": check_modal,
}


def check_shell(source: str) -> None:
    for command in shell_commands(source):
        tokens = shlex.split(command)
        while len(tokens) > 1 and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", tokens[0]):  # VAR=value command ...
            tokens.pop(0)
        command = shlex.join(tokens)
        name = tokens[0]
        if name in CHECKS:
            CHECKS[name](tokens[1:])
        elif not any(command == key or command.startswith(key + " ") for key in NOT_CHECKED):
            raise AssertionError(f"no check for the documented command `{command}`: add one or a reason")


# ---- running blocks ---------------------------------------------------------------------------------------


@dataclass
class Sandbox:
    """Where ``<!-- doc: run -->`` blocks run: a directory with ``face.mp4`` / ``speech.wav`` (a 2-s cut of a
    real clip), and a mock WaveSpeed server whose URL and key replace the docs' local URL and ``<KEY>``."""

    root: Path
    base_url: str
    api_key: str

    def substitute(self, text: str) -> str:
        text = re.sub(r"http://127\.0\.0\.1:8000", self.base_url, text)
        return _unplaceholder(text).replace("doc-key", self.api_key)

    def env(self) -> dict[str, str]:
        bin_dir = str(Path(sys.executable).parent)
        return {
            **os.environ,
            "LIPSYNC_BASE_URL": self.base_url,
            "LIPSYNC_API_KEY": self.api_key,
            "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
            "PYTHONPATH": str(REPO_ROOT),
        }

    def run_python(self, source: str) -> None:
        self._run([sys.executable, "-c", self.substitute(source)])

    def run_pytest(self, source: str, name: str) -> None:
        path = self.root / f"test_doc_{name}.py"
        path.write_text(self.substitute(source))
        self._run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(path)])

    def run_shell(self, source: str) -> None:
        for command in shell_commands(self.substitute(source)):
            self._run(["bash", "-c", command])

    def _run(self, argv: list[str]) -> None:
        proc = subprocess.run(
            argv, cwd=self.root, env=self.env(), capture_output=True, text=True, timeout=300, check=False
        )
        assert proc.returncode == 0, (
            f"{argv[-1][:200]!r} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
        )


def marker_before(text: str, start: int) -> str | None:
    """The ``<!-- doc: X -->`` marker right above a block starting at *start*, if any."""
    before = text[:start].rstrip().rsplit("\n", 1)[-1].strip()
    m = re.fullmatch(r"<!--\s*doc:\s*([\w-]+)\s*-->", before)
    return m.group(1) if m else None
