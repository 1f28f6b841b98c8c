"""VideoWriter: H.264 yuv420p 25 fps + AAC, one encode, output length following the audio."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from lipsync.media.io import VideoWriter, iter_frames_25fps, load_audio_16k, probe
from tests.media.media_factory import read_wav_mono


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def _gradient(h: int, w: int, k: int = 0) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack(
        [(xx * 255) // max(w - 1, 1), (yy * 255) // max(h - 1, 1), np.full_like(xx, 40 + 8 * k)], -1
    )
    return img.astype(np.uint8)


@pytest.fixture(scope="module")
def real_frames(media_dir: Path) -> list[np.ndarray]:
    return list(iter_frames_25fps(media_dir / "demo1_video.mp4", max_frames=22))


@pytest.fixture(scope="module")
def speech(media_dir: Path) -> np.ndarray:
    samples, _ = read_wav_mono(media_dir / "demo1_audio.wav")
    return samples


def test_round_trip_on_the_real_clip(
    tmp_path: Path, real_frames: list[np.ndarray], speech: np.ndarray
) -> None:
    audio = speech[:12480]  # 0.78 s -> the video must cover 19.5 frames -> 20 frames
    out = tmp_path / "result.mp4"
    with VideoWriter(out, 1080, 1920, audio=audio, preset="ultrafast") as writer:
        for frame in real_frames:  # 22 frames: like the reference, the caller may send a few more
            writer.write(frame)
    assert (writer.frames_written, writer.frames_dropped, writer.frames_held) == (20, 2, 0)

    with av.open(str(out)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        assert v.codec_context.name == "h264" and v.codec_context.pix_fmt == "yuv420p"
        assert (v.codec_context.width, v.codec_context.height) == (1080, 1920)
        assert v.average_rate == 25 and v.frames == 20
        assert a.codec_context.name == "aac" and a.rate == 16000 and a.channels == 1
        assert c.duration / 1e6 == pytest.approx(audio.size / 16000, abs=1 / 25)
        first = next(c.demux(v))
        assert b"crf=18.0" in bytes(first)  # x264's settings SEI: CRF 18 by default
    data = out.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat")  # faststart: playable while downloading

    info = probe(out, role="video")
    assert (info.width, info.height, info.fps) == (1080, 1920, 25.0)
    decoded = list(iter_frames_25fps(out))
    assert len(decoded) == 20
    worst = min(_psnr(x, y) for x, y in zip(real_frames, decoded, strict=False))
    assert worst > 40, f"round trip PSNR {worst:.1f} dB"

    sound = load_audio_16k(out)
    assert abs(sound.size - audio.size) <= 1024  # AAC frames
    n = min(sound.size, audio.size)
    assert float(np.corrcoef(sound[:n], audio[:n])[0, 1]) > 0.99


def test_default_encoder_settings(tmp_path: Path) -> None:
    out = tmp_path / "defaults.mp4"
    with VideoWriter(out, 64, 48) as writer:
        for k in range(5):
            writer.write(_gradient(48, 64, k))
    with av.open(str(out)) as c:
        assert not c.streams.audio
        sei = bytes(next(c.demux(c.streams.video[0])))
        assert b"crf=18.0" in sei and b"rc_lookahead=40" in sei  # CRF 18, libx264's "medium" preset
        assert c.streams.video[0].frames == 5
        assert c.duration / 1e6 == pytest.approx(5 / 25, abs=1e-3)


def test_odd_size_is_padded_by_one_repeated_pixel(tmp_path: Path) -> None:
    out = tmp_path / "odd.mp4"
    frames = [_gradient(383, 215, k) for k in range(3)]
    with VideoWriter(out, 215, 383, crf=0, preset="ultrafast") as writer:
        assert (writer.encoded_width, writer.encoded_height) == (216, 384)
        for f in frames:
            writer.write(f)
    decoded = list(iter_frames_25fps(out))
    assert decoded[0].shape == (384, 216, 3)
    assert _psnr(decoded[1][:383, :215], frames[1]) > 40
    # the extra column/row repeat the last ones (up to chroma subsampling)
    assert np.abs(decoded[1][:383, 215].astype(int) - decoded[1][:383, 214]).mean() < 3
    assert np.abs(decoded[1][383, :215].astype(int) - decoded[1][382, :215]).mean() < 3


def test_short_video_holds_its_last_frame_to_the_audio_length(tmp_path: Path, speech: np.ndarray) -> None:
    out = tmp_path / "held.mp4"
    with VideoWriter(out, 64, 48, audio=speech[:16000], preset="ultrafast", crf=0) as writer:
        for k in range(10):
            writer.write(_gradient(48, 64, k))
    assert (writer.frames_written, writer.frames_held) == (25, 15)
    decoded = list(iter_frames_25fps(out))
    assert len(decoded) == 25
    assert all(_psnr(f, decoded[9]) > 45 for f in decoded[10:])
    assert _psnr(decoded[9], decoded[8]) < 45  # the frames did change before


def test_failure_inside_the_block_leaves_no_file(tmp_path: Path) -> None:
    out = tmp_path / "never.mp4"
    with pytest.raises(RuntimeError, match="boom"), VideoWriter(out, 64, 48, preset="ultrafast") as writer:
        writer.write(_gradient(48, 64))
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_no_frames_is_an_error_and_leaves_no_file(tmp_path: Path) -> None:
    out = tmp_path / "empty.mp4"
    with pytest.raises(ValueError, match="no frames"), VideoWriter(out, 64, 48):
        pass
    assert list(tmp_path.iterdir()) == []


def test_rejects_wrong_frames_and_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="positive"):
        VideoWriter(tmp_path / "x.mp4", 0, 48)
    with pytest.raises(ValueError, match="crf"):
        VideoWriter(tmp_path / "x.mp4", 64, 48, crf=60)
    with pytest.raises(ValueError, match="mono"):
        VideoWriter(tmp_path / "x.mp4", 64, 48, audio=np.zeros((2, 100), np.float32))
    writer = VideoWriter(tmp_path / "x.mp4", 64, 48)
    try:
        with pytest.raises(ValueError, match=r"\(48, 64, 3\) uint8"):
            writer.write(np.zeros((48, 64, 3), np.float32))
        with pytest.raises(ValueError, match=r"\(48, 64, 3\) uint8"):
            writer.write(np.zeros((64, 48, 3), np.uint8))
    finally:
        writer.abort()
    assert list(tmp_path.iterdir()) == []


def test_unicode_output_path(tmp_path: Path, speech: np.ndarray) -> None:
    out = tmp_path / "sortie vidéo 出力" / "résultat final.mp4"
    with VideoWriter(out, 64, 48, audio=speech[:3200], preset="ultrafast") as writer:
        for k in range(5):
            writer.write(_gradient(48, 64, k))
    assert out.is_file() and probe(out).has_audio
    assert [p.name for p in out.parent.iterdir()] == ["résultat final.mp4"]


def test_decode_and_encode_colour_conversions_are_inverse(tmp_path: Path, media_dir: Path) -> None:
    """Decoding (BT.601, as OpenCV) then writing losslessly (BT.601, as ffmpeg) gives back the source's own
    YUV planes up to rounding, so untouched pixels keep their colour. A mismatched matrix (e.g. BT.709 on
    decode, PyAV's default for this BT.709-tagged clip) shifts the chroma measurably."""
    src = media_dir / "demo1_video.mp4"
    with av.open(str(src)) as c:
        first = next(c.decode(video=0))
        source_yuv = first.to_ndarray().astype(int)  # yuv420p planes stacked: (1920 * 3 / 2, 1080)
        rgb_709 = first.to_ndarray(format="rgb24")

    def chroma_error(rgb: np.ndarray, name: str) -> tuple[float, float]:
        out = tmp_path / name
        with VideoWriter(out, 1080, 1920, crf=0, preset="ultrafast") as writer:  # CRF 0: lossless
            writer.write(rgb)
        with av.open(str(out)) as c:
            yuv = next(c.decode(video=0)).to_ndarray().astype(int)
        diff = np.abs(yuv - source_yuv)
        return float(diff[:1920].mean()), float(diff[1920:].mean())

    luma, chroma = chroma_error(next(iter_frames_25fps(src)), "bt601.mp4")
    assert luma < 1.5 and chroma < 0.05
    _, chroma_709 = chroma_error(rgb_709, "bt709.mp4")
    assert chroma_709 > 4 * chroma
