"""16 kHz mono audio decode from WAV, MP3, M4A/AAC, Ogg/Opus, FLAC and a video's sound track."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from lipsync.errors import EmptyMedia, MediaTooLong, NoAudioStream
from lipsync.media.io import load_audio_16k, probe
from tests.media.media_factory import empty_wav, encode_audio, read_wav_mono, video_without_audio


@pytest.fixture(scope="module")
def wav(media_dir: Path) -> Path:
    return media_dir / "demo1_audio.wav"


@pytest.fixture(scope="module")
def encoded(tmp_path_factory: pytest.TempPathFactory, wav: Path) -> dict[str, Path]:
    """The shared speech WAV re-encoded into the formats users upload (at their usual sample rates)."""
    d = tmp_path_factory.mktemp("audio_variants")
    return {
        "mp3": encode_audio(wav, d / "speech.mp3", "mp3", rate=44100),
        "m4a": encode_audio(wav, d / "speech.m4a", "aac", rate=48000),
        "ogg": encode_audio(wav, d / "speech.ogg", "libopus", rate=48000),
        "flac": encode_audio(wav, d / "speech.flac", "flac", rate=22050),
        "wav44k": encode_audio(wav, d / "speech 44k.wav", "pcm_s16le", rate=44100),
    }


@pytest.mark.parametrize(("name", "seconds"), [("demo1", 9.6), ("demo2", 19.84)])
def test_shared_wav_is_exactly_int16_over_32768(media_dir: Path, name: str, seconds: float) -> None:
    path = media_dir / f"{name}_audio.wav"
    reference, rate = read_wav_mono(path)  # Python's wave module: independent of FFmpeg
    assert rate == 16000
    audio = load_audio_16k(path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert audio.shape[0] == round(seconds * 16000)
    assert np.array_equal(audio, reference)
    info = probe(path, role="audio")
    assert info.has_audio and not info.has_video
    assert info.audio_sample_rate == 16000 and info.audio_channels == 1
    assert info.duration_s == pytest.approx(seconds, abs=1e-3)


@pytest.mark.parametrize("fmt", ["mp3", "m4a", "ogg", "flac", "wav44k"])
def test_compressed_and_resampled_formats_decode_to_the_same_speech(
    encoded: dict[str, Path], wav: Path, fmt: str
) -> None:
    reference, _ = read_wav_mono(wav)
    audio = load_audio_16k(encoded[fmt])
    assert audio.dtype == np.float32
    # the containers record the encoders' delay and padding, so length and alignment survive
    assert abs(audio.shape[0] - reference.shape[0]) <= 160
    n = min(audio.shape[0], reference.shape[0])
    corr = float(np.corrcoef(audio[:n], reference[:n])[0, 1])
    assert corr > 0.99, f"{fmt}: the decoded speech does not match the source (corr {corr:.4f})"
    assert float(np.abs(audio).max()) <= 1.0


def test_lossless_resampled_wav_matches_source_closely(encoded: dict[str, Path], wav: Path) -> None:
    """16k -> 44.1k -> 16k through FFmpeg's resampler (both ways) keeps the waveform aligned and close."""
    reference, _ = read_wav_mono(wav)
    audio = load_audio_16k(encoded["wav44k"])
    assert audio.shape == reference.shape
    err = audio - reference
    snr = 10 * np.log10(np.mean(reference**2) / np.mean(err**2))
    assert snr > 30


def test_sound_track_of_a_video(media_dir: Path) -> None:
    """The shared video's own AAC track (44.1 kHz stereo) decodes, mono-mixed, at 16 kHz."""
    audio = load_audio_16k(media_dir / "demo1_video.mp4")
    assert audio.shape[0] == pytest.approx(10.0 * 16000, abs=16000 * 0.02)
    assert 0.01 < float(np.sqrt(np.mean(audio**2))) < 0.5


def test_max_duration(wav: Path) -> None:
    assert load_audio_16k(wav, max_duration_s=9.6).shape[0] == 153600
    with pytest.raises(MediaTooLong) as exc:
        load_audio_16k(wav, max_duration_s=5)
    assert exc.value.field == "audio"
    assert "9.6 s" in str(exc.value) and "limit is 5 s" in str(exc.value)


def test_zero_length_wav_is_empty_media(tmp_path: Path) -> None:
    path = empty_wav(tmp_path / "silence 0s.wav")
    with pytest.raises(EmptyMedia) as exc:
        load_audio_16k(path)
    assert exc.value.field == "audio" and "silence 0s.wav" in str(exc.value) and "0 seconds" in str(exc.value)
    with pytest.raises(EmptyMedia):
        probe(path, role="audio")


def test_video_without_sound_as_audio_input(tmp_path: Path, media_dir: Path) -> None:
    path = video_without_audio(media_dir / "demo1_video.mp4", tmp_path / "mute.mp4")
    with pytest.raises(NoAudioStream) as exc:
        load_audio_16k(path)
    assert exc.value.field == "audio"
    assert "mute.mp4" in str(exc.value) and "video without a sound track" in str(exc.value)
    with pytest.raises(NoAudioStream):
        probe(path, role="audio")


def test_unicode_path(tmp_path: Path, wav: Path) -> None:
    path = tmp_path / "голос и 声音 file.wav"
    shutil.copy(wav, path)
    assert load_audio_16k(path).shape[0] == 153600
