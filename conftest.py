"""Documentation as tests: Sybil collects the code blocks of README.md and docs/*.md (see tests/docs/doccheck.py).

Lives at the repository root because README.md does; pytest's ``testpaths`` names README.md and docs/.
"""

from __future__ import annotations

import wave
from collections.abc import Iterator
from pathlib import Path

import pytest
from sybil import Example, Sybil
from sybil.parsers.markdown import CodeBlockParser

from tests.docs.doccheck import Sandbox, check_python, check_shell, marker_before


class LazySandbox:
    """Built on the first ``<!-- doc: run -->`` block, so checking the other blocks costs nothing."""

    def __init__(self, factory: pytest.TempPathFactory) -> None:
        self._factory = factory
        self._sandbox: Sandbox | None = None
        self._server: object = None

    def get(self) -> Sandbox:
        if self._sandbox is None:
            from mock_server.config import MockConfig
            from mock_server.server import MockServer
            from tests.conftest import MEDIA_DIR, require_path
            from tests.pipeline.clips import face_clip

            media = require_path(MEDIA_DIR)
            root = self._factory.mktemp("docs")
            face_clip(media, root / "face.mp4", frames=50)
            with (
                wave.open(str(media / "demo1_audio.wav")) as src,
                wave.open(str(root / "speech.wav"), "wb") as dst,
            ):
                dst.setparams(src.getparams())
                dst.writeframes(src.readframes(2 * src.getframerate()))
            server = MockServer(MockConfig(api_keys=("doc-key",))).start()
            self._server = server
            self._sandbox = Sandbox(root, server.base_url, "doc-key")
        return self._sandbox

    def close(self) -> None:
        if self._server is not None:
            self._server.stop()  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def doc_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LazySandbox]:
    lazy = LazySandbox(tmp_path_factory)
    yield lazy
    lazy.close()


def _marker(example: Example) -> str | None:
    return marker_before(example.document.text, example.start)


def _python(example: Example) -> None:
    source = str(example.parsed)
    check_python(source)
    marker = _marker(example)
    sandbox = example.namespace["doc_sandbox"]
    if marker == "run":
        sandbox.get().run_python(source)
    elif marker == "run-pytest":
        sandbox.get().run_pytest(source, f"{Path(example.path).stem}_{example.line}".replace("-", "_"))
    elif marker is not None:
        raise AssertionError(f"unknown doc marker {marker!r}")


def _shell(example: Example) -> None:
    source = str(example.parsed)
    check_shell(source)
    marker = _marker(example)
    if marker == "run":
        example.namespace["doc_sandbox"].get().run_shell(source)
    elif marker is not None:
        raise AssertionError(f"unknown doc marker {marker!r}")


pytest_collect_file = Sybil(
    parsers=[CodeBlockParser("python", _python), CodeBlockParser("bash", _shell)],
    patterns=["*.md"],
    fixtures=["doc_sandbox"],
).pytest()
