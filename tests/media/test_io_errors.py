"""Broken and unsuitable inputs raise the right typed error, naming the file and its role."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from lipsync.errors import (
    EmptyMedia,
    MediaError,
    MediaTooLong,
    NoVideoStream,
    ResolutionError,
    UnreadableMedia,
)
from lipsync.media.io import (
    MediaLimits,
    count_frames_25fps,
    iter_frames_25fps,
    load_audio_16k,
    plan_frames_25fps,
    probe,
)
from tests.media.media_factory import (
    audio_only_copy,
    empty_wav,
    faststart_copy,
    text_named_mp4,
    truncated_copy,
)


@pytest.fixture(scope="module")
def demo1(media_dir: Path) -> Path:
    return media_dir / "demo1_video.mp4"


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory, demo1: Path) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("broken inputs")
    zero = d / "zero bytes.mp4"
    zero.write_bytes(b"")
    return {
        "truncated": truncated_copy(demo1, d / "cut off.mp4", 0.5),  # index (moov) at the end: lost
        "truncated_faststart": truncated_copy(faststart_copy(demo1, d / "web.mp4"), d / "cut web.mp4", 0.6),
        "audio_only": audio_only_copy(demo1, d / "sound only.m4a"),
        "text": text_named_mp4(d / "notes.mp4"),
        "empty_wav": empty_wav(d / "silence.wav"),
        "zero_bytes": zero,
        "missing": d / "does not exist.mp4",
    }


VIDEO_READERS: dict[str, Callable[[Path], object]] = {
    "probe": lambda p: probe(p, role="video"),
    "plan": plan_frames_25fps,
    "count": count_frames_25fps,
    "iter": lambda p: next(iter_frames_25fps(p)),
}


def _check_message(exc: MediaError, path: Path, role: str, *phrases: str) -> None:
    text = str(exc)
    assert exc.field == role
    assert path.name in text, text
    assert f"{role} file" in text, text
    for phrase in phrases:
        assert phrase in text, text
    assert exc.wavespeed_code == 1401


@pytest.mark.parametrize("reader", list(VIDEO_READERS))
def test_truncated_mp4(broken: dict[str, Path], reader: str) -> None:
    with pytest.raises(UnreadableMedia) as exc:
        VIDEO_READERS[reader](broken["truncated"])
    _check_message(exc.value, broken["truncated"], "video", "corrupt or truncated")


@pytest.mark.parametrize("reader", list(VIDEO_READERS))
def test_truncated_mp4_whose_index_survived(broken: dict[str, Path], reader: str) -> None:
    """With the index in front, the file still opens; the missing data is noticed before any work."""
    with pytest.raises(UnreadableMedia) as exc:
        VIDEO_READERS[reader](broken["truncated_faststart"])
    _check_message(exc.value, broken["truncated_faststart"], "video", "truncated")


@pytest.mark.parametrize("reader", list(VIDEO_READERS))
def test_audio_only_file_as_video(broken: dict[str, Path], reader: str) -> None:
    with pytest.raises(NoVideoStream) as exc:
        VIDEO_READERS[reader](broken["audio_only"])
    _check_message(exc.value, broken["audio_only"], "video", "audio-only", "audio input")


def test_audio_only_file_is_fine_as_audio(broken: dict[str, Path]) -> None:
    info = probe(broken["audio_only"], role="audio")
    assert info.has_audio and not info.has_video and info.duration_s > 9
    assert load_audio_16k(broken["audio_only"]).size > 9 * 16000


@pytest.mark.parametrize("reader", [*VIDEO_READERS, "audio"])
def test_text_file_named_mp4(broken: dict[str, Path], reader: str) -> None:
    role = "audio" if reader == "audio" else "video"
    read = (lambda p: load_audio_16k(p)) if reader == "audio" else VIDEO_READERS[reader]
    with pytest.raises(UnreadableMedia) as exc:
        read(broken["text"])
    _check_message(exc.value, broken["text"], role, "not a media file")


@pytest.mark.parametrize(
    ("key", "phrase"), [("zero_bytes", "empty (0 bytes)"), ("missing", "does not exist")]
)
def test_empty_and_missing_files(broken: dict[str, Path], key: str, phrase: str) -> None:
    with pytest.raises(UnreadableMedia) as exc:
        probe(broken[key], role="video")
    _check_message(exc.value, broken[key], "video", phrase)
    with pytest.raises(UnreadableMedia) as exc:
        load_audio_16k(broken[key])
    _check_message(exc.value, broken[key], "audio", phrase)


def test_zero_second_wav(broken: dict[str, Path]) -> None:
    with pytest.raises(EmptyMedia) as exc:
        probe(broken["empty_wav"], role="audio")
    _check_message(exc.value, broken["empty_wav"], "audio", "0 seconds")
    with pytest.raises(NoVideoStream):  # and it is no video either
        probe(broken["empty_wav"], role="video")


def test_resolution_limits(demo1: Path) -> None:
    with pytest.raises(ResolutionError) as exc:
        probe(demo1, role="video", limits=MediaLimits(max_side=1280))
    _check_message(exc.value, demo1, "video", "1080x1920", "1280 px")
    with pytest.raises(ResolutionError) as exc:
        probe(demo1, role="video", limits=MediaLimits(min_side=1200))
    _check_message(exc.value, demo1, "video", "at least 1200 px")
    assert probe(demo1, role="video", limits=MediaLimits(min_side=None, max_side=None)).width == 1080


def test_duration_limit(demo1: Path, media_dir: Path) -> None:
    with pytest.raises(MediaTooLong) as exc:
        probe(demo1, role="video", limits=MediaLimits(max_duration_s=5))
    _check_message(exc.value, demo1, "video", "10.0 s", "limit is 5 s")
    wav = media_dir / "demo1_audio.wav"
    with pytest.raises(MediaTooLong) as exc:
        probe(wav, role="audio", limits=MediaLimits(max_duration_s=5))
    _check_message(exc.value, wav, "audio", "9.6 s")
    assert probe(demo1, role="video", limits=MediaLimits(max_duration_s=10.5)).has_video


def test_plain_probe_describes_without_judging(broken: dict[str, Path]) -> None:
    info = probe(broken["audio_only"])
    assert not info.has_video and info.width == 0 and info.video_codec is None and info.num_frames_25 == 0
    assert info.audio_codec == "aac" and info.audio_sample_rate == 44100 and info.audio_channels == 2
