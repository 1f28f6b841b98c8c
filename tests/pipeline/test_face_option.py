"""The ``face`` run option through ``LipSync.run`` on two real speakers side by side (tests/media/two_faces.py).

With tiny weights the generated mouth is noise, so the check is spatial: the chosen person's face region is
regenerated (changed), the other person's half of the picture is left as it was (only re-encoded).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lipsync import LipSync
from lipsync.errors import InputError
from tests.media.two_faces import original_voice, side_by_side
from tests.pipeline.clips import decode_frames, psnr, speech, write_clip

FRAMES = 60
FAST = {"inference_steps": 1, "guidance_scale": 1.0}


@pytest.fixture(scope="module")
def two_people(media_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """demo1 left, demo2 right; the video's own sound is demo1's original voice."""
    path = tmp_path_factory.mktemp("two") / "two.mp4"
    frames = list(side_by_side(media_dir, FRAMES))
    return write_clip(path, frames, audio=original_voice(media_dir, "demo1", FRAMES))


@dataclass
class Rig:
    """The two-person clip and what runs it (tiny 1.5 models, MediaPipe)."""

    video: Path
    media_dir: Path
    models: Any
    detector: Any

    def lipsync(self) -> LipSync:
        return LipSync(models=self.models, detector=self.detector, version="1.5")

    def sync(self, tmp_path: Path, **face: object) -> tuple[Any, tuple[float, float]]:
        """Run it with demo2's speech (1.2 s); the result and the halves' PSNR."""
        audio = speech(self.media_dir, tmp_path / "speech.wav", 1.2, speaker="demo2")
        out = tmp_path / "out.mp4"
        with self.lipsync() as ls:
            result = ls.run(self.video, audio, out, **face, **FAST)
        return result, _halves_changed(out, self.video)


@pytest.fixture(scope="module")
def rig(two_people: Path, media_dir: Path, tiny_models: Any, mediapipe_detector: Any) -> Rig:
    return Rig(two_people, media_dir, tiny_models, mediapipe_detector)


def _halves_changed(out: Path, video: Path) -> tuple[float, float]:
    """PSNR (dB) of the output against the input on the left and the right half (lower: changed more)."""
    got = np.stack(list(decode_frames(out)))
    src = np.stack(list(decode_frames(video, count=len(got))))
    return psnr(got[:, :, :480], src[:, :, :480]), psnr(got[:, :, 480:], src[:, :, 480:])


@pytest.mark.parametrize(
    ("face", "synced"),
    [
        ({"auto": True}, "left"),  # demo1's voice is the video's own sound: demo1 (left) is the speaker
        ({"point": [0.75, 0.5], "time": 1.0}, "right"),
    ],
)
def test_only_the_chosen_person_is_synced(face: object, synced: str, rig: Rig, tmp_path: Path) -> None:
    result, (left, right) = rig.sync(tmp_path, face=face)
    changed, kept = (left, right) if synced == "left" else (right, left)
    assert kept > 40 and changed < kept - 5, (left, right)
    if face == {"auto": True}:
        assert result.face["mode"] == "auto" and result.face["score"] > 0.1
    else:
        assert result.face["mode"] == "point"


def test_the_reference_choice_jumps_between_the_two_people(rig: Rig, tmp_path: Path) -> None:
    """Why the option exists: "largest" frame by frame picks one face here and the other face there (their
    sizes are close), so both halves of the picture get regenerated mouths."""
    result, (left, right) = rig.sync(tmp_path)
    assert left < 40 and right < 40, (left, right)
    assert result.face == {"mode": "largest"}


def test_a_point_on_no_face_fails_before_the_run_naming_the_frame(rig: Rig, tmp_path: Path) -> None:
    audio = speech(rig.media_dir, tmp_path / "speech.wav", 0.5)
    with (
        rig.lipsync() as ls,
        pytest.raises(InputError, match=r"is on no face in frame 25 \(1\.00 s\)") as err,
    ):
        ls.run(rig.video, audio, tmp_path / "out.mp4", face={"point": [0.5, 0.02], "time": 1.0}, **FAST)
    assert err.value.field == "face.point"
    assert not (tmp_path / "out.mp4").exists()


def test_a_single_face_gives_the_same_frames_in_every_mode(
    media_dir: Path,
    tmp_path: Path,
    tiny_models,  # type: ignore[no-untyped-def]
    mediapipe_detector,  # type: ignore[no-untyped-def]
) -> None:
    from tests.pipeline.clips import face_clip

    video = face_clip(media_dir, tmp_path / "one.mp4", frames=8)
    audio = speech(media_dir, tmp_path / "speech.wav", 0.3)
    first = next(decode_frames(video, count=1))
    h, w = first.shape[:2]
    x1, y1, x2, y2 = mediapipe_detector.detect(first).bbox
    box = {"x1": max(x1 / w, 0), "y1": max(y1 / h, 0), "x2": min(x2 / w, 1), "y2": min(y2 / h, 1)}
    modes = ("largest", {"point": [0.5, 0.45], "time": 0.0}, {"auto": True}, {"boxes": [box] * 8})
    with LipSync(models=tiny_models, detector=mediapipe_detector, version="1.5") as ls:
        outputs = [np.stack(list(ls.prepare(video, audio, face=face, **FAST).frames())) for face in modes]
    for other in outputs[1:]:
        assert np.array_equal(outputs[0], other)
