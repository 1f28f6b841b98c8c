"""`lipsync faces`: a picture of the faces at a moment and the `face` option that picks each."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
from typer.testing import CliRunner

from lipsync.cli import app
from tests.media.two_faces import side_by_side
from tests.pipeline.clips import write_clip


def test_faces_lists_both_people_with_their_point_and_draws_them(media_dir: Path, tmp_path: Path) -> None:
    video = write_clip(tmp_path / "two.mp4", side_by_side(media_dir, 30))
    out = tmp_path / "faces.png"
    result = CliRunner().invoke(
        app, ["faces", str(video), "--time", "1.0", "--face-detector", "mediapipe", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("face ")]
    choices = [json.loads(line.split(": ", 1)[1])["face"] for line in lines]
    assert len(choices) == 2 and all(c["time"] == 1.0 for c in choices)
    assert sorted(c["point"][0] < 0.5 for c in choices) == [False, True]  # one face each side
    picture = cv2.imread(str(out))
    assert picture is not None and picture.shape[:2] == (640, 960)


def test_faces_at_a_time_past_the_end_is_an_error(media_dir: Path, tmp_path: Path) -> None:
    video = write_clip(tmp_path / "two.mp4", side_by_side(media_dir, 10))
    result = CliRunner().invoke(
        app,
        ["faces", str(video), "--time", "5", "--face-detector", "mediapipe", "-o", str(tmp_path / "f.png")],
    )
    assert result.exit_code == 2 and "no frame at 5 s" in result.output
