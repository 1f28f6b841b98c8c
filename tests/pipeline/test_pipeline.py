"""LipSync end to end through the Python API, on short windows cut from the real clips (tiny weights,
MediaPipe faces): length handling, frames without a face, progress, cancellation, up-front validation."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from lipsync import LipSync
from lipsync.errors import InputError, JobCancelled, NoFaceDetected, WeightsError
from lipsync.media.io import iter_frames_25fps
from lipsync.pipeline import ProgressEvent
from tests.media.media_factory import read_index
from tests.pipeline.clips import face_clip, face_region, inspect_output, psnr, speech
from tests.pipeline.test_timeline import reference_pingpong

FAST = {"inference_steps": 1, "guidance_scale": 1.0}


def reference_frame_count(samples: int) -> int:
    """floor(L/2) + 2 with L = (samples // 160) // 2 (one Whisper window; inputs here are < 30 s)."""
    return (samples // 160 // 2) // 2 + 2


def written_frames(n_out: int, track_samples: int) -> int:
    """The writer stops at the end of the sound track: ceil(samples / 640) frames at most."""
    return min(n_out, math.ceil(track_samples / 640))


@pytest.fixture
def lipsync(tiny_models, mediapipe_detector) -> LipSync:  # type: ignore[no-untyped-def]
    return LipSync(version="1.5", models=tiny_models, detector=mediapipe_detector)


def shown_indices(path: Path) -> tuple[list[int], object]:
    info, frames = inspect_output(path)
    return [read_index(f) for f in frames], info


# --- length handling -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def short_video(tmp_path_factory: pytest.TempPathFactory, media_dir: Path) -> Path:
    return face_clip(media_dir, tmp_path_factory.mktemp("clips") / "v6.mp4", frames=6, marked=True)


@pytest.fixture(scope="module")
def long_audio(tmp_path_factory: pytest.TempPathFactory, media_dir: Path) -> Path:
    return speech(media_dir, tmp_path_factory.mktemp("clips") / "a05.wav", 0.5)  # 8000 samples -> 14 frames


@pytest.mark.parametrize("mode", ["pingpong", "loop", "cut_off"])
def test_audio_longer_than_video(
    mode: str, lipsync: LipSync, short_video: Path, long_audio: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.mp4"
    result = lipsync.run(short_video, long_audio, out, loop_mode=mode, **FAST)  # type: ignore[arg-type]
    n_audio = reference_frame_count(8000)
    assert n_audio == 14
    if mode == "pingpong":
        expected = reference_pingpong(6, n_audio)
    elif mode == "loop":
        expected = [i % 6 for i in range(n_audio)]
    else:
        expected = list(range(6))
    track = 8000 if mode != "cut_off" else 6 * 640
    expected = expected[: written_frames(len(expected), track)]
    indices, info = shown_indices(out)
    assert indices == expected
    assert result.frames == len(expected)
    assert info.fps == 25 and (info.width, info.height) == (480, 640)
    assert info.audio_codec == "aac"
    # AAC pads to whole 1024-sample frames (64 ms at 16 kHz).
    assert track / 16000 <= info.audio_duration_s < track / 16000 + 0.065
    # Every source frame was decoded about once per pass over it, never held for the whole run.
    assert result.decoded_frames <= 2 * result.frames + 16


def test_silence_keeps_the_whole_longer_video(lipsync: LipSync, media_dir: Path, tmp_path: Path) -> None:
    video = face_clip(media_dir, tmp_path / "v16.mp4", frames=16, marked=True)
    audio = speech(media_dir, tmp_path / "a03.wav", 0.3)  # 4800 samples -> 9 frames
    out = tmp_path / "out.mp4"
    result = lipsync.run(video, audio, out, loop_mode="silence", **FAST)
    indices, info = shown_indices(out)
    assert indices == list(range(16)) and result.frames == 16
    assert 16 * 640 / 16000 <= info.audio_duration_s < 16 * 640 / 16000 + 0.065
    # The padding is silence: the decoded track is (near) zero after the speech ends.
    import av

    with av.open(str(out)) as c:
        pcm = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(c.streams.audio[0])])
    speech_part = np.abs(pcm[:4000]).mean()
    tail = np.abs(pcm[6000 : 16 * 640]).max()
    assert speech_part > 20 * tail


def test_video_longer_than_audio_is_cut_like_the_reference(
    lipsync: LipSync, media_dir: Path, tmp_path: Path
) -> None:
    video = face_clip(media_dir, tmp_path / "v16.mp4", frames=16, marked=True)
    audio = speech(media_dir, tmp_path / "a03.wav", 0.3)
    out = tmp_path / "out.mp4"
    lipsync.run(video, audio, out, loop_mode="pingpong", **FAST)
    indices, _ = shown_indices(out)
    assert indices == list(range(written_frames(reference_frame_count(4800), 4800)))


# --- frames without a face -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gap_video(tmp_path_factory: pytest.TempPathFactory, media_dir: Path) -> Path:
    """12 frames; 5, 6 and 7 show a face-free part of the same video."""
    return face_clip(media_dir, tmp_path_factory.mktemp("clips") / "gap.mp4", frames=12, no_face=[5, 6, 7])


def test_passthrough_copies_faceless_frames_and_resumes(
    lipsync: LipSync,
    gap_video: Path,
    media_dir: Path,
    tmp_path: Path,
    mediapipe_detector,  # type: ignore[no-untyped-def]
) -> None:
    audio = speech(media_dir, tmp_path / "a.wav", 0.8)
    out = tmp_path / "out.mp4"
    result = lipsync.run(gap_video, audio, out, loop_mode="cut_off", **FAST)
    assert result.frames == 12 and result.frames_without_face == 3
    _, frames = inspect_output(out)
    source = list(iter_frames_25fps(gap_video))
    for i, (got, src) in enumerate(zip(frames, source, strict=True)):
        region = face_region(src, mediapipe_detector, 256)
        if i in (5, 6, 7):
            assert region is None
            assert psnr(got, src) >= 40, f"frame {i} should be copied unchanged"
        else:
            assert region is not None
            assert psnr(got, src, ~region) >= 40, f"frame {i}: outside the face must be kept"
            assert psnr(got, src, region) < 35, f"frame {i}: the face should have been regenerated"


def test_fail_names_the_first_faceless_frame_before_any_diffusion(
    lipsync: LipSync, gap_video: Path, media_dir: Path, tmp_path: Path
) -> None:
    audio = speech(media_dir, tmp_path / "a.wav", 0.8)
    out = tmp_path / "out.mp4"
    events: list[ProgressEvent] = []
    with pytest.raises(NoFaceDetected) as err:
        lipsync.run(gap_video, audio, out, on_no_face="fail", progress=events.append, **FAST)
    assert err.value.frame_index == 5 and err.value.timestamp_s == pytest.approx(0.2)
    assert err.value.field == "video" and "frame 5 (0.20 s)" in str(err.value)
    assert not any(e.stage == "diffuse" for e in events)
    assert list(tmp_path.glob("*.mp4")) == []  # no output, no partial file


@pytest.mark.parametrize("on_no_face", ["passthrough", "fail"])
def test_a_video_without_any_face_fails(
    on_no_face: str, lipsync: LipSync, media_dir: Path, tmp_path: Path
) -> None:
    video = face_clip(media_dir, tmp_path / "empty.mp4", frames=6, no_face=range(6))
    audio = speech(media_dir, tmp_path / "a.wav", 0.5)
    with pytest.raises(NoFaceDetected) as err:
        lipsync.run(video, audio, tmp_path / "out.mp4", on_no_face=on_no_face, **FAST)  # type: ignore[arg-type]
    assert err.value.frame_index == 0 and err.value.exit_code == 4 and err.value.wavespeed_code == 1403
    assert not (tmp_path / "out.mp4").exists()


# --- progress, cancellation, validation ----------------------------------------------------------------------


def test_progress_events_cover_every_stage_and_reach_one(
    lipsync: LipSync, short_video: Path, media_dir: Path, tmp_path: Path
) -> None:
    audio = speech(media_dir, tmp_path / "a.wav", 0.8)  # 22 frames of ping-pong: two chunks
    events: list[ProgressEvent] = []
    result = lipsync.run(
        short_video,
        audio,
        tmp_path / "o.mp4",
        loop_mode="pingpong",
        progress=events.append,
        inference_steps=2,
        guidance_scale=1.0,
    )
    stages = {e.stage for e in events}
    assert {
        "audio",
        "decode",
        "detect",
        "vae_encode",
        "diffuse",
        "vae_decode",
        "paste",
        "encode",
        "done",
    } <= stages
    fractions = [e.fraction for e in events]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    diffuse = [e for e in events if e.stage == "diffuse"]
    assert [(e.chunk, e.step) for e in diffuse] == [(0, 1), (0, 2), (1, 1), (1, 2)]
    assert set(result.timings_ms) >= {
        "audio",
        "decode",
        "detect",
        "align",
        "vae_encode",
        "diffuse",
        "vae_decode",
        "paste",
        "encode",
    }


def test_progress_callback_can_cancel(
    lipsync: LipSync, short_video: Path, media_dir: Path, tmp_path: Path
) -> None:
    audio = speech(media_dir, tmp_path / "a.wav", 0.8)

    def cancel_on_diffusion(event: ProgressEvent) -> None:
        if event.stage == "diffuse":
            raise JobCancelled("cancelled by the test")

    with pytest.raises(JobCancelled):
        lipsync.run(short_video, audio, tmp_path / "o.mp4", progress=cancel_on_diffusion, **FAST)
    assert list(tmp_path.glob("*.mp4")) == []


def test_inputs_and_options_are_checked_before_loading_weights(
    media_dir: Path, tmp_path: Path, short_video: Path
) -> None:
    # No weights exist under this directory: every error below must come before any loading is tried.
    ls = LipSync(tmp_path / "no-weights", version="1.5", face_detector="mediapipe")
    audio = speech(media_dir, tmp_path / "a.wav", 0.5)
    with pytest.raises(InputError) as err:
        ls.run(short_video, audio, tmp_path / "o.mp4", loop_mode="bounce")  # type: ignore[arg-type]
    assert err.value.field == "loop_mode"
    with pytest.raises(InputError) as err:
        ls.run(short_video, audio, tmp_path / "o.mp4", inference_steps=0)
    assert err.value.field == "inference_steps"
    with pytest.raises(InputError) as err:
        ls.run(short_video, tmp_path / "missing.wav", tmp_path / "o.mp4")
    assert err.value.field == "audio"
    with pytest.raises(InputError) as err:
        ls.run(short_video, audio, tmp_path / "o.mov")
    assert err.value.field == "out"
    with pytest.raises(WeightsError):  # valid inputs: now the missing weights show
        ls.run(short_video, audio, tmp_path / "o.mp4")


def test_constructor_rejects_unknown_version_and_detector() -> None:
    with pytest.raises(InputError):
        LipSync(version="2.0")
    with pytest.raises(InputError):
        LipSync(face_detector="dlib")
