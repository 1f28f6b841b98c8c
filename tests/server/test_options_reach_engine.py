"""Every RunOptions field sent over HTTP reaches ``LipSync.run`` through the REAL engine adapter.

The fake engines sit before ``LipSyncEngine``; here the adapter is the real one and only the pipeline it
builds is replaced (a ``LipSync`` that records what ``run`` validated instead of loading weights), so a
field dropped anywhere between the request body and the pipeline fails this test. The values come from
``RunOptions``' own schema, so a new field is covered without editing this file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from contracts import RunOptions
from lipsync.pipeline import LipSync
from lipsync.server.engine_adapter import LipSyncEngine
from lipsync.server.interfaces import Engine
from tests.contracts.option_values import non_default_options
from tests.server.conftest import Harness
from tests.server.fakes import make_mp4

_OUTPUT = make_mp4(frames=5, size=32)


class RecordingLipSync(LipSync):
    """The real ``LipSync`` option handling (``run_options``), without weights or media work."""

    def __init__(self, seen: list[RunOptions], weights_dir: Path | None, **kwargs: Any) -> None:
        super().__init__(weights_dir, **kwargs)
        self.seen = seen

    def run(  # type: ignore[override]  # records instead of returning a RunResult
        self, video: Any, audio: Any, out: Any, options: RunOptions | None = None, **overrides: Any
    ) -> None:
        overrides.pop("progress", None)
        self.seen.append(self.run_options(options, **overrides))
        Path(out).write_bytes(_OUTPUT)


class Recorder:
    def __init__(self) -> None:
        self.versions: list[str] = []
        self.seen: list[RunOptions] = []

    def pipeline_factory(self, weights_dir: Path | None, **kwargs: Any) -> RecordingLipSync:
        self.versions.append(kwargs["version"])
        return RecordingLipSync(self.seen, weights_dir, **{**kwargs, "face_detector": "mediapipe"})

    def engine(self, default_version: str = "1.6") -> Engine:
        return LipSyncEngine(
            device="cpu", default_version=default_version, pipeline_factory=self.pipeline_factory
        )


def _run(h: Harness, body: dict[str, Any]) -> dict[str, Any]:
    r = h.submit(body)
    assert r.status_code == 200, r.text
    data: dict[str, Any] = h.wait_status(r.json()["data"]["id"], {"completed", "failed"})
    assert data["status"] == "completed", data["error"]
    return data


def test_every_option_sent_over_http_reaches_lipsync_run(harness_factory: Callable[..., Harness]) -> None:
    recorder = Recorder()
    h = harness_factory(recorder.engine())
    sent = non_default_options()
    _run(h, sent)
    assert len(recorder.seen) == 1
    assert recorder.seen[0].model_dump() == sent
    assert recorder.versions == [sent["model_version"]]  # the adapter loaded the checkpoint asked for


def test_without_model_version_the_servers_default_checkpoint_runs(
    harness_factory: Callable[..., Harness],
) -> None:
    recorder = Recorder()
    h = harness_factory(recorder.engine(default_version="1.5"), model_version="1.5")
    _run(h, {"seed": 3})
    assert recorder.versions == ["1.5"]
    assert (recorder.seen[0].seed, recorder.seen[0].model_version) == (3, "1.5")
