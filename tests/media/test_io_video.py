"""Video probing and streaming 25 fps decode on the shared 1080x1920 HEVC clips and variants made from them."""

from __future__ import annotations

import gc
import shutil
import weakref
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from lipsync.media.io import count_frames_25fps, iter_frames_25fps, plan_frames_25fps, probe
from tests.media.media_factory import (
    cfr_pts,
    demuxed_timing,
    marked_clip,
    paint_index,
    read_index,
    source_frames,
    vfr_pts,
)
from tests.media.r25_expectation import expected_selection

N_SOURCE = 60


@pytest.fixture(scope="module")
def demo1(media_dir: Path) -> Path:
    return media_dir / "demo1_video.mp4"


@pytest.fixture(scope="module")
def demo2(media_dir: Path) -> Path:
    return media_dir / "demo2_video.mp4"


@pytest.fixture(scope="module")
def small_frames(demo1: Path) -> list[np.ndarray]:
    """The first 60 frames of the shared clip at 216x384 (decoded once for all variants)."""
    return list(source_frames(demo1, N_SOURCE, 216, 384))


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory, small_frames: list[np.ndarray]) -> dict[str, Path]:
    """30 fps and phone-like VFR variants of the shared clip, each frame stamped with its index.
    The VFR and open-GOP clips have a keyframe every 10 frames so windows exercise seeking; with open
    GOPs the frames just before a keyframe need the previous one (the decoder must back up further)."""
    d = tmp_path_factory.mktemp("video_variants")
    return {
        "30fps": marked_clip(
            small_frames, d / "clip 30fps.mp4", cfr_pts(N_SOURCE, 30, Fraction(1, 30)), Fraction(1, 30)
        ),
        "vfr": marked_clip(
            small_frames,
            d / "clip vfr.mp4",
            vfr_pts(N_SOURCE, Fraction(1, 90000)),
            Fraction(1, 90000),
            options={"g": "10", "keyint_min": "10"},
        ),
        "25fps": marked_clip(
            small_frames,
            d / "clip 25fps.mp4",
            cfr_pts(N_SOURCE, 25, Fraction(1, 25)),
            Fraction(1, 25),
            rate=25,
        ),
        "open_gop": marked_clip(
            small_frames,
            d / "clip open gop.mp4",
            cfr_pts(N_SOURCE, 25, Fraction(1, 25)),
            Fraction(1, 25),
            rate=25,
            options={"g": "10", "bf": "3", "x264-params": "open-gop=1"},
        ),
        "rot90": marked_clip(
            small_frames,
            d / "clip rot90.mp4",
            cfr_pts(20, 25, Fraction(1, 25)),
            Fraction(1, 25),
            rate=25,
            rotation=90,
        ),
        "rot0": marked_clip(
            small_frames, d / "clip rot0.mp4", cfr_pts(20, 25, Fraction(1, 25)), Fraction(1, 25), rate=25
        ),
    }


# -- the shared clips ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "frames", "seconds"), [("demo1", 250, 10.0), ("demo2", 502, 20.08)])
def test_shared_clip_probe_and_count(media_dir: Path, name: str, frames: int, seconds: float) -> None:
    path = media_dir / f"{name}_video.mp4"
    with av.open(str(path)) as c:  # the container's own frame count, independent of our code
        assert c.streams.video[0].frames == frames
    info = probe(path, role="video")
    assert (info.width, info.height) == (1080, 1920)
    assert info.video_codec == "hevc" and info.has_video and info.has_audio
    assert info.fps == pytest.approx(25.0)
    assert info.rotation == 0
    assert info.video_duration_s == pytest.approx(seconds, abs=0.01)
    assert info.num_frames == frames and info.num_frames_25 == frames
    # a 25 fps input keeps every frame exactly once
    assert count_frames_25fps(path) == frames
    plan = plan_frames_25fps(path)
    assert plan.selection.tolist() == list(range(frames))


def test_frames_are_bit_identical_to_the_reference_reader(demo1: Path) -> None:
    """The reference reads frames with cv2.VideoCapture (BT.601, BGR); ours are the same pixels in RGB."""
    n = 6
    ours = list(iter_frames_25fps(demo1, max_frames=n))
    cap = cv2.VideoCapture(str(demo1))
    try:
        for k in range(n):
            ok, bgr = cap.read()
            assert ok
            assert ours[k].shape == (1920, 1080, 3) and ours[k].dtype == np.uint8
            assert ours[k].flags["C_CONTIGUOUS"]
            assert np.array_equal(ours[k], bgr[:, :, ::-1]), f"frame {k} differs from OpenCV"
    finally:
        cap.release()


def test_window_after_a_keyframe_seeks_and_matches_sequential_decode(demo2: Path) -> None:
    """demo2 has keyframes at 0, 250 and 498: frames 251..253 come from a seek, and equal OpenCV's
    sequential read of the same frames."""
    window = list(iter_frames_25fps(demo2, start_frame=251, max_frames=3))
    assert len(window) == 3
    cap = cv2.VideoCapture(str(demo2))
    try:
        for _ in range(251):
            assert cap.grab()
        for k in range(3):
            ok, bgr = cap.read()
            assert ok
            assert np.array_equal(window[k], bgr[:, :, ::-1]), f"frame {251 + k} differs"
    finally:
        cap.release()


def test_streaming_keeps_no_frames_alive(demo1: Path) -> None:
    """Iterating does not accumulate frames: once the caller drops a frame, it is gone."""
    alive: list[weakref.ref[np.ndarray]] = []
    for frame in iter_frames_25fps(demo1, max_frames=12):
        alive.append(weakref.ref(frame))
        del frame
        gc.collect()
        assert sum(r() is not None for r in alive) <= 1
    assert len(alive) == 12


# -- frame-rate conversion on variants ------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["30fps", "vfr", "25fps"])
def test_variant_selection_matches_ffmpeg_rule(clips: dict[str, Path], variant: str) -> None:
    """Each 25 fps frame shows the input frame ffmpeg -r 25 would pick (read back from the stamped index)."""
    path = clips[variant]
    starts, durations = demuxed_timing(path)
    expected = expected_selection(starts, durations)
    got = [read_index(f) for f in iter_frames_25fps(path)]
    assert got == expected
    assert count_frames_25fps(path) == len(expected)
    if variant == "25fps":
        assert got == list(range(N_SOURCE))
    elif variant == "30fps":
        assert len(got) == 52 and len(set(got)) == 52  # 2.0 s at 30 fps -> 8 drops, ffmpeg keeps 2 more
    else:
        assert len(set(got)) < len(got)  # the VFR stall is filled by repeating a frame


@pytest.mark.parametrize("variant", ["30fps", "vfr", "open_gop"])
def test_windows_equal_slices_of_the_full_sequence(clips: dict[str, Path], variant: str) -> None:
    path = clips[variant]
    plan = plan_frames_25fps(path)
    full = [read_index(f) for f in iter_frames_25fps(path, plan=plan)]
    for start, count in [
        (0, 1),
        (7, 5),
        (9, 3),
        (21, 9),
        (33, 16),
        (39, 2),
        (len(full) - 2, 10),
        (len(full), 3),
    ]:
        window = [
            read_index(f) for f in iter_frames_25fps(path, start_frame=start, max_frames=count, plan=plan)
        ]
        assert window == full[start : start + count], (start, count)
    assert [read_index(f) for f in iter_frames_25fps(path, start_frame=40)] == full[40:]


def test_display_matrix_rotation_is_applied(clips: dict[str, Path]) -> None:
    """A phone-style rotated clip (display matrix 90 deg counter-clockwise, as ffmpeg -autorotate reads it)
    comes out upright: the same pixels as the unrotated encode, rotated."""
    upright = list(iter_frames_25fps(clips["rot0"], max_frames=4))
    rotated = list(iter_frames_25fps(clips["rot90"], max_frames=4))
    for a, b in zip(upright, rotated, strict=True):
        assert b.shape == (216, 384, 3)
        assert np.array_equal(b, np.rot90(a, 1))
    info = probe(clips["rot90"], role="video")
    assert (info.width, info.height, info.rotation) == (384, 216, 90)


def test_paths_with_spaces_quotes_and_unicode(tmp_path: Path, clips: dict[str, Path]) -> None:
    weird = tmp_path / "dir with spaces" / "vidéo 'ünï' \"quoted\" 😀.mp4"
    weird.parent.mkdir()
    shutil.copy(clips["30fps"], weird)
    assert probe(weird, role="video").width == 216
    assert count_frames_25fps(weird) == 52
    assert len(list(iter_frames_25fps(weird, max_frames=3))) == 3


def test_argument_validation(clips: dict[str, Path]) -> None:
    with pytest.raises(ValueError, match="start_frame"):
        next(iter_frames_25fps(clips["25fps"], start_frame=-1))
    with pytest.raises(ValueError, match="max_frames"):
        next(iter_frames_25fps(clips["25fps"], max_frames=-1))
    assert list(iter_frames_25fps(clips["25fps"], max_frames=0)) == []
    assert list(iter_frames_25fps(clips["25fps"], start_frame=10_000)) == []


def test_legacy_ffmpeg_selection_is_available(clips: dict[str, Path]) -> None:
    """compat='ffmpeg4' reproduces ffmpeg <= 6.0, which drops a different 30 fps frame (see test_io_fps)."""
    new = [read_index(f) for f in iter_frames_25fps(clips["30fps"])]
    old = [read_index(f) for f in iter_frames_25fps(clips["30fps"], compat="ffmpeg4")]
    assert len(new) == len(old) == 52 and new != old
    assert count_frames_25fps(clips["30fps"], compat="ffmpeg4") == 52


@pytest.mark.parametrize(
    ("suffix", "codec", "options"),
    [
        (".mkv", "libx264", {}),
        (".mov", "libx264", {}),
        (".ts", "libx264", {}),  # no seek index: windows decode from the start
        (".webm", "libvpx-vp9", {"deadline": "realtime", "cpu-used": "8"}),
    ],
)
def test_other_containers_and_codecs(
    tmp_path: Path, small_frames: list[np.ndarray], suffix: str, codec: str, options: dict[str, str]
) -> None:
    n = 24
    path = tmp_path / f"clip{suffix}"
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=30)
        stream.width, stream.height, stream.pix_fmt = 216, 384, "yuv420p"
        stream.options = options
        for i, frame in enumerate(small_frames[:n]):
            vf = av.VideoFrame.from_ndarray(paint_index(frame, i), format="rgb24")
            vf.pts = i
            for packet in stream.encode(vf):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    info = probe(path, role="video")
    assert (info.width, info.height) == (216, 384) and info.fps == pytest.approx(30)
    starts, durations = demuxed_timing(path)
    full = [read_index(f) for f in iter_frames_25fps(path)]
    assert full == expected_selection(starts, durations)
    assert len(full) == count_frames_25fps(path)
    assert [read_index(f) for f in iter_frames_25fps(path, start_frame=12, max_frames=5)] == full[12:17]
