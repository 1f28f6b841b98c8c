"""The 25 fps frame selection against real ffmpeg output (pure arithmetic: no decoding, fast)."""

from __future__ import annotations

import itertools
import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from lipsync.media.fps import RateConverter, select_frames_25fps
from tests.media.r25_expectation import expected_selection

ORACLE = json.loads((Path(__file__).parent / "ffmpeg_r25_oracle.json").read_text())
CASES: list[dict[str, Any]] = ORACLE["cases"]
VERSION_CASES = [(c, v) for c in CASES for v in c["versions"]]


def _compat(version: str) -> str:
    return "ffmpeg4" if int(version.split(".")[0]) <= 6 and version != "6.1" else "ffmpeg7"


@pytest.mark.parametrize(
    ("case", "version"), VERSION_CASES, ids=[f"{c['name']}-ffmpeg{v}" for c, v in VERSION_CASES]
)
def test_selection_matches_ffmpeg_binary(case: dict[str, Any], version: str) -> None:
    """Given the timestamps a version's demuxer reported, we pick exactly the frames it wrote."""
    run = case["versions"][version]
    selection = select_frames_25fps(
        [tuple(f) for f in run["frames"]],
        Fraction(*case["time_base"]),
        start_time_us=case["start_time_us"],
        single_stream_input=case["single_stream_input"],
        compat=_compat(version),  # type: ignore[arg-type]
        average_rate=Fraction(*case["average_rate"]),
        guessed_rate=Fraction(*case["guessed_rate"]),
    )
    assert selection.tolist() == run["selection"]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_independent_statement_matches_ffmpeg9(case: dict[str, Any]) -> None:
    """The tests' own exact-arithmetic statement of the rule agrees with ffmpeg 9.0.2 (so it can be trusted
    as the expectation for clips made on the fly in test_io_video.py)."""
    run = case["versions"]["9.0.2"]
    tb = Fraction(*case["time_base"])
    start = Fraction(case["start_time_us"], 1_000_000)
    starts = [p * tb - start for p, _ in run["frames"]]
    durations = [d * tb for _, d in run["frames"]]
    assert expected_selection(starts, durations) == run["selection"]


def test_oracle_covers_the_interesting_cases() -> None:
    """The oracle holds drops, duplicates and gap fills, for both generations of ffmpeg."""
    versions = {v for c in CASES for v in c["versions"]}
    assert {"9.0.2", "7.0.2", "5.1.9"} <= versions
    sel = [c["versions"]["9.0.2"]["selection"] for c in CASES]
    assert any(len(set(s)) < len(s) for s in sel)  # duplicated frames
    assert any(len(set(s)) < max(s) + 1 for s in sel)  # dropped frames
    assert any(not c["single_stream_input"] for c in CASES) and any(c["single_stream_input"] for c in CASES)
    by_name = {c["name"]: c for c in CASES}
    # the two generations really differ (which is why the option exists)
    cfr30 = by_name["cfr30"]["versions"]
    assert cfr30["9.0.2"]["selection"] != cfr30["5.1.9"]["selection"]


def test_25fps_input_keeps_every_frame_once() -> None:
    tb = Fraction(1, 12800)
    frames = [(i * 512, 512) for i in range(250)]  # the shared clips' layout
    for compat in ("ffmpeg7", "ffmpeg4"):
        assert select_frames_25fps(frames, tb, compat=compat).tolist() == list(range(250))  # type: ignore[arg-type]


def test_30fps_drops_every_sixth_frame_after_the_drift_allowance() -> None:
    tb = Fraction(1, 30)
    frames = [(i, 1) for i in range(60)]
    sel = select_frames_25fps(frames, tb).tolist()
    assert sel == expected_selection([Fraction(i, 30) for i in range(60)], [Fraction(1, 30)] * 60)
    assert len(sel) == 52
    dropped = sorted(set(range(60)) - set(sel))
    assert all(b - a == 6 for a, b in itertools.pairwise(dropped))


def test_rate_converter_rejects_unknown_compat() -> None:
    with pytest.raises(ValueError, match="compat"):
        RateConverter(Fraction(1, 25), compat="ffmpeg3")  # type: ignore[arg-type]


def test_start_time_offset_and_late_video_start() -> None:
    """Audio starting before the video (start_time < video's first pts) duplicates the first frame
    (CFR); a single-stream file instead starts the output at its first frame (VSCFR)."""
    tb = Fraction(1, 1000)
    frames = [(100 + 40 * i, 40) for i in range(10)]  # video starts at 0.1 s
    with_audio = select_frames_25fps(frames, tb, start_time_us=0).tolist()
    starts = [Fraction(100 + 40 * i, 1000) for i in range(10)]
    assert with_audio == expected_selection(starts, [Fraction(40, 1000)] * 10)
    assert with_audio[:4] == [0, 0, 0, 0]  # 2.5 frames of lead-in filled with the first picture
    alone = select_frames_25fps(frames, tb, start_time_us=0, single_stream_input=True).tolist()
    assert alone == list(range(10))
