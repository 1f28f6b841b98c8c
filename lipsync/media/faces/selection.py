"""Choose the face to sync in a video with several people (the ``face`` run option), before the run.

- ``largest``: nothing to prepare; every frame's largest face, as the reference does.
- boxes: per frame, the detected face that overlaps the caller's box most (no pre-pass needed).
- point / auto: one pass over the video detects every face, links them into tracks
  (:mod:`~lipsync.media.faces.tracking`), picks a track (under the point at that time; or the active
  speaker, :mod:`~lipsync.media.faces.speaker`) and keeps that track's faces for the run, so the synced
  person never changes when another face grows larger.

The result says what was chosen and how (:attr:`FaceSelection.summary`: a ``contracts.FaceReport`` as a
dict), for the job's metadata (the API's ``face`` extension) and logs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from contracts import FaceAuto, FaceBoxes, FaceChoice, FacePoint, FaceReport
from lipsync.errors import InputError
from lipsync.media.faces.base import Face, FaceDetector, MultiFaceDetector
from lipsync.media.faces.speaker import score_tracks
from lipsync.media.faces.tracking import FaceTrack, box_iou, track_faces

__all__ = ["FaceSelection", "choose_speaker", "prepare_selection"]

FPS = 25
#: A caller's box must overlap a detected face at least this much to name it.
MIN_BOX_IOU = 0.2
#: The active speaker's score must reach this to be trusted (on the shared clips real speakers score
#: 0.23-1.05 over 4-10 s; where no face clearly follows the speech every score is near or below 0).
MIN_SPEAKER_SCORE = 0.1


@dataclass
class FaceSelection:
    """Answers "which face in source frame *i*?" for the run, and says how it was decided."""

    mode: str
    #: ``contracts.FaceReport`` as a JSON dict (fields that do not apply left out): see :func:`_report`.
    summary: dict[str, Any] = field(default_factory=dict)
    _faces: dict[int, Face] | None = None  # point/auto: the chosen track's faces
    _boxes: list[Any] | None = None  # boxes: the caller's per-frame boxes

    def face(self, index: int, frame: np.ndarray, detector: FaceDetector) -> Face | None:
        if self._faces is not None:
            return self._faces.get(index)
        if self._boxes is not None:
            box = self._boxes[index] if index < len(self._boxes) else None
            if box is None:
                return None
            h, w = frame.shape[:2]
            target = (box.x1 * w, box.y1 * h, box.x2 * w, box.y2 * h)
            best = max(
                ((box_iou(f.bbox, target), f) for f in _all_faces(detector, frame)),
                key=lambda pair: pair[0],
                default=(0.0, None),
            )
            return best[1] if best[0] >= MIN_BOX_IOU else None
        return detector.detect(frame)


def _report(mode: str, **fields: Any) -> dict[str, Any]:
    """The summary of a selection, checked against the one definition of the report (``contracts.FaceReport``)."""
    report: dict[str, Any] = FaceReport.model_validate({"mode": mode, **fields}).model_dump(mode="json")
    return report


def _all_faces(detector: FaceDetector, frame: np.ndarray) -> list[Face]:
    if not isinstance(detector, MultiFaceDetector):
        raise InputError(
            f"the {getattr(detector, 'name', type(detector).__name__)} face detector cannot list every face; "
            "choosing a face needs insightface or mediapipe",
            field="face",
        )
    return detector.detect_all(frame)


def prepare_selection(
    choice: FaceChoice,
    *,
    num_frames: int,
    frames: Callable[[], Iterable[np.ndarray]],
    detector: FaceDetector,
    original_audio: Callable[[], np.ndarray | None],
) -> FaceSelection:
    """Resolve *choice* for a video of *num_frames* 25-fps frames.

    *frames* yields the video's frames in order (called once, only for point/auto); *original_audio*
    returns the video's own sound track at 16 kHz, or None when it has none (called only for auto).
    Raises :class:`~lipsync.errors.InputError` (field ``face``) when the choice does not fit the video.
    """
    if choice == "largest":
        return FaceSelection("largest", _report("largest"))
    if isinstance(choice, FaceBoxes):
        if len(choice.boxes) != num_frames:
            raise InputError(
                f"face.boxes has {len(choice.boxes)} entries but the video has {num_frames} frames at 25 fps "
                "(one entry per frame, null where there is no face to sync)",
                field="face.boxes",
            )
        return FaceSelection("boxes", _report("boxes"), _boxes=list(choice.boxes))
    if isinstance(choice, FacePoint):
        at = round(choice.time * FPS)
        if at >= num_frames:
            raise InputError(
                f"face.time {choice.time:g} s is past the end of the video ({num_frames / FPS:.2f} s)",
                field="face.time",
            )
    size: list[tuple[int, int]] = []  # (width, height) of the frames, for normalised points

    def detections() -> Iterable[tuple[int, list[Face]]]:
        for i, frame in enumerate(frames()):
            if not size:
                size.append((int(frame.shape[1]), int(frame.shape[0])))
            yield i, _all_faces(detector, frame)

    tracks = track_faces(list(detections()))
    if isinstance(choice, FacePoint):
        return _by_point(choice, tracks, at, size[0] if size else (1, 1))
    assert isinstance(choice, FaceAuto)
    return choose_speaker(tracks, num_frames, original_audio())


def _by_point(choice: FacePoint, tracks: list[FaceTrack], at: int, size: tuple[int, int]) -> FaceSelection:
    px, py = choice.point[0] * size[0], choice.point[1] * size[1]
    present = [(t, t.faces[at]) for t in tracks if at in t.faces]
    if not present:
        raise InputError(
            f"face.point: no face was found in frame {at} ({at / FPS:.2f} s); choose a time where the person "
            "is visible",
            field="face.point",
        )
    for track, face in sorted(present, key=lambda tf: _area(tf[1].bbox)):  # smallest first: a face in front
        x1, y1, x2, y2 = face.bbox
        if x1 <= px <= x2 and y1 <= py <= y2:
            return FaceSelection(
                "point",
                _report("point", track=track.id, frame=at, frames_with_face=len(track.faces)),
                _faces=dict(track.faces),
            )
    boxes = ", ".join(f"track {t.id} at {tuple(round(v) for v in f.bbox)}" for t, f in present)
    raise InputError(
        f"face.point ({choice.point[0]:g}, {choice.point[1]:g}) = pixel ({px:.0f}, {py:.0f}) is on no face in "
        f"frame {at} ({at / FPS:.2f} s); the faces there: {boxes}",
        field="face.point",
    )


def _area(box: tuple[float, float, float, float]) -> float:
    return (box[2] - box[0]) * (box[3] - box[1])


def choose_speaker(tracks: list[FaceTrack], num_frames: int, audio: np.ndarray | None) -> FaceSelection:
    """The active speaker among *tracks* given the video's own sound (16 kHz), or the largest-face fallback."""
    scores = score_tracks(tracks, audio, num_frames) if audio is not None else None
    if not scores or scores[0].score < MIN_SPEAKER_SCORE:
        if audio is None:
            why = "the video has no sound track"
        elif not scores:
            why = "its sound track has no usable speech"
        else:
            why = f"no face's mouth clearly follows its speech (best score {scores[0].score:.2f})"
        return FaceSelection(
            "largest",
            _report("auto", fallback="largest", reason=f"{why}: synced the largest face instead"),
        )
    best = scores[0]
    track = next(t for t in tracks if t.id == best.track_id)
    summary = _report(
        "auto",
        track=best.track_id,
        score=round(best.score, 3),
        runner_up=round(scores[1].score, 3) if len(scores) > 1 else None,
        frames_with_face=len(track.faces),
    )
    return FaceSelection("auto", summary, _faces=dict(track.faces))
