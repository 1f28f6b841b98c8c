"""Whisper audio features against the reference fixtures (fixtures/README.md §3) and the windowing rules."""

from __future__ import annotations

import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from lipsync.engine.audio import (
    AudioEncoder,
    duration_frames,
    frame_count,
    frame_windows,
    log_mel,
    read_audio_16k,
)
from lipsync.errors import EmptyMedia, NoAudioStream, UnreadableMedia, WeightsError
from tests.conftest import FIXTURES_DIR, require_path

WHISPER_DIR = FIXTURES_DIR / "whisper_tiny"

# Tolerances (fp32, CPU, MKL branch pinned by tests/conftest.py). Measured: mel 1.2e-7 max (one float32
# ulp at 1.0; up to 4.8e-5 on other CPUs with MKL's own choice of kernels, at values near the −8 floor), features
# 2.9e-6 on values up to 7.0, features computed from the reference's own mel 3.6e-6 (SDPA vs matmul order).
MEL_ATOL = 2.5e-7
FEATURE_ATOL = 1e-5
ENCODER_ATOL = 1e-5


def _read_wav_int16(path: Path) -> np.ndarray:
    """The reference's ffmpeg ``s16le`` pipe reproduced with the stdlib: int16 / 32768."""
    with wave.open(str(path)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 16000)
        data = wav.readframes(wav.getnframes())
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0


@pytest.fixture(scope="module")
def whisper_dir() -> Path:
    return require_path(WHISPER_DIR)


@pytest.fixture(scope="module")
def encoder(whisper_dir: Path) -> AudioEncoder:
    return AudioEncoder.from_checkpoint(whisper_dir / "tiny.pt")


@pytest.fixture(scope="module")
def short_ref(whisper_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(whisper_dir / "features.safetensors"))


@pytest.fixture(scope="module")
def short_features(encoder: AudioEncoder, whisper_dir: Path) -> torch.Tensor:
    return encoder.features(_read_wav_int16(whisper_dir / "speech.wav"))


@pytest.fixture(scope="module")
def long_features(encoder: AudioEncoder, whisper_dir: Path) -> torch.Tensor:
    return encoder.features(_read_wav_int16(whisper_dir / "speech_long.wav"))


@pytest.fixture(scope="module")
def long_ref(whisper_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(whisper_dir / "features_long.safetensors"))


# ----------------------------------------------------------------------------------------------- parity


def test_log_mel_matches_reference(whisper_dir: Path, short_ref: dict[str, torch.Tensor]) -> None:
    mel = log_mel(_read_wav_int16(whisper_dir / "speech.wav"))
    assert mel.shape == short_ref["mel"].shape == (80, 731)  # 117,037 samples // 160
    assert mel.dtype == torch.float32
    torch.testing.assert_close(mel, short_ref["mel"], atol=MEL_ATOL, rtol=0)


def test_log_mel_long_uses_the_global_max(whisper_dir: Path, long_ref: dict[str, torch.Tensor]) -> None:
    mel = log_mel(_read_wav_int16(whisper_dir / "speech_long.wav"))
    assert mel.shape == (80, 3401)
    torch.testing.assert_close(mel, long_ref["mel"], atol=MEL_ATOL, rtol=0)


def test_log_mel_floor_depends_on_the_whole_file() -> None:
    rng = np.random.default_rng(0)
    loud = (0.5 * rng.standard_normal(16_000)).astype(np.float32)
    quiet = (1e-4 * rng.standard_normal(16_000)).astype(np.float32)
    both = log_mel(np.concatenate([loud, quiet]))
    alone = log_mel(quiet)
    # Floor = (max - 8 + 4) / 4 in the normalised domain = max - 2, with max over the *whole* file.
    assert both.min().item() == pytest.approx(both.max().item() - 2, abs=1e-5)
    # Alone, the quiet signal reaches far below that floor: the loud half's peak set the floor of the quiet half.
    assert alone.min().item() < both.max().item() - 2 - 0.5


def test_features_short_match_reference(
    short_features: torch.Tensor, short_ref: dict[str, torch.Tensor]
) -> None:
    feats = short_features
    assert feats.shape == (365, 5, 64)  # L = floor(731 / 2)
    assert feats.dtype == torch.float32 and feats.device.type == "cpu"
    torch.testing.assert_close(feats, short_ref["feature_array"], atol=FEATURE_ATOL, rtol=0)


def test_encoder_alone_matches_reference_on_reference_mel(
    encoder: AudioEncoder, long_ref: dict[str, torch.Tensor]
) -> None:
    # Isolates the encoder (key mapping, pre-ln_post states, fp16 positional table) from the mel.
    torch.testing.assert_close(
        encoder.features_from_mel(long_ref["mel"]), long_ref["feature_array"], atol=ENCODER_ATOL, rtol=0
    )


def test_frame_windows_short_match_reference(
    encoder: AudioEncoder, short_features: torch.Tensor, short_ref: dict[str, torch.Tensor]
) -> None:
    windows = encoder.frame_windows(short_features)
    assert windows.shape == (184, 50, 64)  # floor(365 / 2) + 2
    torch.testing.assert_close(windows, short_ref["chunks"], atol=FEATURE_ATOL, rtol=0)


def test_features_long_two_windows_match_reference(
    encoder: AudioEncoder, long_features: torch.Tensor, long_ref: dict[str, torch.Tensor]
) -> None:
    feats = long_features
    # 1500 rows from window 1 + int(401 / 2) = 200 from the zero-padded window 2.
    assert feats.shape == (1700, 5, 64)
    torch.testing.assert_close(feats, long_ref["feature_array"], atol=FEATURE_ATOL, rtol=0)
    windows = encoder.frame_windows(feats)
    assert windows.shape[0] == int(long_ref["num_chunks"]) == 852
    # Frames at the start, across the 30-s boundary (744–756 read rows 1484–1517) and at the end.
    torch.testing.assert_close(
        windows[long_ref["chunks_index"]], long_ref["chunks_subset"], atol=FEATURE_ATOL, rtol=0
    )


def test_batched_windows_equal_one_at_a_time(
    whisper_dir: Path, long_features: torch.Tensor, long_ref: dict[str, torch.Tensor]
) -> None:
    batched = AudioEncoder.from_checkpoint(whisper_dir / "tiny.pt", window_batch=4)
    ours = batched.features(_read_wav_int16(whisper_dir / "speech_long.wav"))
    torch.testing.assert_close(ours, long_features, atol=1e-6, rtol=0)


def test_frame_features_from_a_file_path(
    encoder: AudioEncoder, whisper_dir: Path, short_features: torch.Tensor
) -> None:
    # read_audio_16k (PyAV) gives the same int16 samples as the stdlib reader, hence identical features.
    assert torch.equal(
        encoder.frame_features(whisper_dir / "speech.wav"), encoder.frame_windows(short_features)
    )


# ---------------------------------------------------------------------------------------- windowing rules


def _features_with_row_ids(length: int, layers: int = 5, width: int = 3) -> torch.Tensor:
    """Features whose every value encodes (row, layer): row*10 + layer."""
    rows = torch.arange(length, dtype=torch.float32)[:, None, None] * 10
    return (
        (rows + torch.arange(layers, dtype=torch.float32)[None, :, None])
        .expand(length, layers, width)
        .clone()
    )


@pytest.mark.parametrize(("length", "expected"), [(1, 2), (350, 177), (365, 184), (500, 252), (1700, 852)])
def test_frame_count_is_floor_half_plus_two(length: int, expected: int) -> None:
    assert frame_count(length) == expected == length // 2 + 2


def test_window_indices_follow_the_reference_examples() -> None:
    feats = _features_with_row_ids(500)
    windows = frame_windows(feats)
    assert windows.shape == (252, 50, 3)

    def rows(frame: int) -> list[int]:
        w = windows[frame, :, 0]
        # rows r..r+4 of a window are one time index (layers 0..4): time-major, layer-minor.
        assert torch.equal(w.reshape(10, 5) % 10, torch.arange(5.0).expand(10, 5))
        return [int(v) // 10 for v in w.reshape(10, 5)[:, 0]]

    assert rows(0) == [0, 0, 0, 0, 0, 1, 2, 3, 4, 5]
    assert rows(1) == [0, 0, 0, 1, 2, 3, 4, 5, 6, 7]
    assert rows(2) == list(range(10))
    assert rows(251) == [498, 499, 499, 499, 499, 499, 499, 499, 499, 499]


def test_explicit_num_frames_cuts_or_extends_with_clamped_windows() -> None:
    feats = _features_with_row_ids(40)
    full = frame_windows(feats)
    torch.testing.assert_close(frame_windows(feats, num_frames=7), full[:7])
    longer = frame_windows(feats, num_frames=full.shape[0] + 3)
    torch.testing.assert_close(longer[: full.shape[0]], full)
    assert torch.all(longer[full.shape[0] :] == 39 * 10 + torch.arange(5.0).repeat(10)[None, :, None])


def test_other_frame_rates_use_int_i_times_50_over_fps() -> None:
    feats = _features_with_row_ids(100)
    windows = frame_windows(feats, fps=30)
    # The reference loop stops after the first i with int(i*50/30) > 100: i = 61 → 62 frames.
    assert windows.shape[0] == frame_count(100, fps=30) == 62
    centre = int(17 * 50 / 30)
    assert int(windows[17, 4 * 5, 0]) // 10 == centre  # time slot 4 of 10 is the centre row


def test_duration_frames_predicts_the_output_length() -> None:
    assert duration_frames(117_037) == 184
    assert duration_frames(544_193) == 852
    assert duration_frames(16_000 * 10) == 252


# ------------------------------------------------------------------------------------------ inputs, errors


def test_read_audio_16k_equals_the_int16_wav(whisper_dir: Path) -> None:
    np.testing.assert_array_equal(
        read_audio_16k(whisper_dir / "speech.wav"), _read_wav_int16(whisper_dir / "speech.wav")
    )


def test_read_audio_16k_resamples_like_ffmpeg(media_dir: Path, tmp_path: Path) -> None:
    if shutil.which("ffmpeg") is None:
        pytest.skip("the ffmpeg CLI (the reference's decoder) is not installed")
    source = media_dir / "demo1_video.mp4"  # AAC, 44.1 kHz stereo
    raw = subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-loglevel",
            "error",
            "-i",
            str(source),
            "-f",
            "s16le",
            "-ac",
            "1",
            "-ar",
            "16000",
            "-",
        ],
        check=True,
        capture_output=True,
    ).stdout
    reference = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    ours = read_audio_16k(source)
    assert ours.shape == reference.shape
    # Same libswresample; downmix/rounding order differs in a handful of samples by one LSB.
    assert np.abs(ours - reference).max() <= 1 / 32768 + 1e-9
    assert np.mean(ours != reference) < 1e-3


def test_read_audio_errors(tmp_path: Path, media_dir: Path) -> None:
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"this is not audio at all" * 10)
    with pytest.raises(UnreadableMedia):
        read_audio_16k(junk)
    silent_video = tmp_path / "silent.mp4"
    _write_silent_video(silent_video)
    with pytest.raises(NoAudioStream):
        read_audio_16k(silent_video)


def _write_silent_video(path: Path) -> None:
    """Write a 3-frame MP4 with no audio stream, with PyAV."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for _ in range(3):
            frame = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), dtype=np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def test_empty_or_too_short_audio_is_an_empty_media_error(encoder: AudioEncoder) -> None:
    with pytest.raises(EmptyMedia):
        encoder.features(np.zeros(0, dtype=np.float32))
    with pytest.raises(EmptyMedia):
        encoder.features(np.zeros(300, dtype=np.float32))  # one mel frame → no encoder frame
    with pytest.raises(ValueError, match="mono"):
        log_mel(np.zeros((2, 16000), dtype=np.float32))


def test_checkpoint_errors_are_weights_errors(whisper_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="not found"):
        AudioEncoder.from_checkpoint(tmp_path / "nope.pt")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes((whisper_dir / "tiny.pt").read_bytes()[:5000])
    with pytest.raises(WeightsError, match="cannot read"):
        AudioEncoder.from_checkpoint(corrupt)

    checkpoint = torch.load(whisper_dir / "tiny.pt", weights_only=True)
    torch.save({"model_state_dict": checkpoint["model_state_dict"]}, tmp_path / "no_dims.pt")
    with pytest.raises(WeightsError, match="dims"):
        AudioEncoder.from_checkpoint(tmp_path / "no_dims.pt")

    missing = dict(checkpoint["model_state_dict"])
    del missing["encoder.blocks.2.attn.key.weight"]
    torch.save({"dims": checkpoint["dims"], "model_state_dict": missing}, tmp_path / "missing.pt")
    with pytest.raises(WeightsError, match=r"layers\.2\.self_attn\.k_proj\.weight"):
        AudioEncoder.from_checkpoint(tmp_path / "missing.pt")

    extra = dict(checkpoint["model_state_dict"])
    extra["encoder.blocks.0.attn.key.bias"] = torch.zeros(64, dtype=torch.float16)
    torch.save({"dims": checkpoint["dims"], "model_state_dict": extra}, tmp_path / "extra.pt")
    with pytest.raises(WeightsError, match=r"k_proj\.bias"):
        AudioEncoder.from_checkpoint(tmp_path / "extra.pt")

    wrong_dims = dict(checkpoint["dims"], n_audio_state=32)
    torch.save({"dims": wrong_dims, "model_state_dict": checkpoint["model_state_dict"]}, tmp_path / "dims.pt")
    with pytest.raises(WeightsError, match="size mismatch"):
        AudioEncoder.from_checkpoint(tmp_path / "dims.pt")


def test_loaded_encoder_uses_the_checkpoint_positional_table(
    encoder: AudioEncoder, whisper_dir: Path
) -> None:
    # tiny.pt stores the sinusoids rounded to fp16; the reference uses those values, not fresh fp32 ones.
    stored = torch.load(whisper_dir / "tiny.pt", weights_only=True)["model_state_dict"][
        "encoder.positional_embedding"
    ]
    assert stored.dtype == torch.float16
    assert torch.equal(encoder.encoder.embed_positions.weight, stored.float())
    assert encoder.hidden_size == 64 and encoder.num_states == 5
