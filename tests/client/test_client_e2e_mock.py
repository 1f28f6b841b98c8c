"""End to end over real HTTP: Client.upload() + run() + download() against the mock served by uvicorn.

The client's ``sleep`` seam drives the mock's virtual clock, so polling advances the job without any real
waiting, and the result is a real MP4 that PyAV decodes.
"""

from __future__ import annotations

import io
import wave
from pathlib import Path
from typing import Any

import av
import pytest

from lipsync.client import Client


def _tiny_wav(seconds: float = 0.4, rate: int = 16_000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\x00\x01" * int(seconds * rate))
    return buf.getvalue()


@pytest.mark.wavespeed_mock(api_keys=["e2e-key"], scenario="success; polls=3")
def test_upload_run_download_over_real_http(wavespeed_server: Any, tmp_path: Path) -> None:
    from mock_server.output import sample_mp4

    face = tmp_path / "face.mp4"
    face.write_bytes(sample_mp4())
    speech = _tiny_wav()
    seen: list[str] = []

    with Client(wavespeed_server.base_url, "e2e-key", env={}, sleep=wavespeed_server.advance) as client:
        video_url = client.upload(face)
        audio_url = client.upload(speech, filename="speech.wav")
        # What was uploaded is what the server hands back.
        assert client.download(audio_url, tmp_path / "echo.wav").read_bytes() == speech

        result = client.run(
            video_url, audio_url, seed=7, face={"auto": True}, on_progress=lambda p: seen.append(p.status)
        )
        out = client.download(result, tmp_path / "out.mp4")

    assert result.status == "completed"
    # The mock's report for auto (mock_server.jobs.face_report), parsed into the typed model.
    assert result.face is not None and (result.face.mode, result.face.track) == ("auto", 0)
    assert seen[0] == "created" and seen[-1] == "completed" and "processing" in seen
    with av.open(str(out)) as container:
        frames = sum(1 for _ in container.decode(video=0))
        assert frames > 0
        assert container.streams.audio, "the result carries the audio track"
