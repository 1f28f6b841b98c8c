"""Active speaker detection: which face track's mouth moves while the video's own sound track has speech.

A speaker's mouth moves more while they speak than while they are silent; a listener's (or a second
speaker's, on a track that is not in the sound) moves independently of that speech. So for each track:

1. mouth opening per frame, from the detector's landmarks, normalised by the face box's height;
2. its *activity*: the absolute frame-to-frame change, lightly smoothed;
3. a voice-activity mask of the sound track: frames whose loudness (RMS per 40 ms video frame) is within
   ``voiced_db`` of the loudest, smoothed so short gaps between syllables count as speech;
4. the score: mean activity over voiced frames minus over unvoiced frames, in units of the track's
   activity spread (a point-biserial correlation up to a constant).

Activity rather than opening: a person with a naturally open mouth, or who smiles in the pauses, must
not look like a speaker. Measured on the shared clips (bench/active_speaker.py), correlating opening
with loudness directly picks the wrong face for one of the two speakers; this score separates both.

No usable speech (silence, a constant tone, under a second of sound, or nearly all frames voiced so that
there is nothing to contrast) gives no winner: the caller falls back to the largest face and says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lipsync.media.faces.base import Face
from lipsync.media.faces.tracking import FaceTrack

__all__ = [
    "SpeakerScore",
    "mouth_opening",
    "score_tracks",
    "speech_envelope",
    "voiced_frames",
]

#: MediaPipe face mesh: inner upper lip centre, inner lower lip centre.
_MESH_INNER_LIPS = (13, 14)
#: InsightFace 2d106det: the 20 lip points (outer and inner contour).
_LMK106_LIPS = tuple(range(52, 72))
FPS = 25
SAMPLE_RATE = 16_000


def mouth_opening(face: Face) -> float:
    """How open the mouth is, as a fraction of the face box's height."""
    lmk = np.asarray(face.landmarks, dtype=np.float64)
    height = max(face.bbox[3] - face.bbox[1], 1.0)
    if lmk.shape[0] >= 468:
        upper, lower = _MESH_INNER_LIPS
        return float(np.hypot(*(lmk[lower] - lmk[upper])) / height)
    if lmk.shape[0] == 106:
        lips = lmk[list(_LMK106_LIPS)]
        return float((lips[:, 1].max() - lips[:, 1].min()) / height)
    raise ValueError(f"no mouth points known for {lmk.shape[0]} landmarks")


def speech_envelope(audio_16k: np.ndarray, num_frames: int) -> np.ndarray:
    """Loudness per video frame (dB of the RMS over each 40 ms), ``num_frames`` values."""
    hop = SAMPLE_RATE // FPS
    wave = np.asarray(audio_16k, dtype=np.float64).reshape(-1)
    wave = np.pad(wave, (0, max(0, num_frames * hop - wave.size)))[: num_frames * hop]
    rms = np.sqrt(np.mean(wave.reshape(num_frames, hop) ** 2, axis=1))
    return np.asarray(20 * np.log10(rms + 1e-5))


def _smooth(x: np.ndarray, width: int) -> np.ndarray:
    return np.convolve(x, np.ones(width) / width, mode="same")


def voiced_frames(envelope: np.ndarray, *, voiced_db: float = 20.0) -> np.ndarray | None:
    """Boolean voice activity per frame, or None when the sound has no speech to contrast with silence."""
    if envelope.size < FPS or envelope.max() < -45 or np.std(envelope) < 3:
        return None  # too short, silent, or a steady tone
    voiced: np.ndarray = _smooth((envelope > envelope.max() - voiced_db).astype(np.float64), 5) > 0.5
    share = float(voiced.mean())
    if not 0.1 <= share <= 0.95:
        return None
    return voiced


@dataclass(frozen=True)
class SpeakerScore:
    track_id: int
    score: float  # activity contrast between voiced and unvoiced frames (≈ -1.5 .. 1.5; > 0 speaks)
    frames: int  # frames the track was seen in


def _activity(track: FaceTrack, num_frames: int) -> np.ndarray:
    """Smoothed |Δ mouth opening| per frame, NaN where the track was not seen (or its previous frame)."""
    opening = np.full(num_frames, np.nan)
    for frame, face in track.faces.items():
        if 0 <= frame < num_frames:
            opening[frame] = mouth_opening(face)
    change = np.abs(np.diff(opening, prepend=np.nan))
    seen = ~np.isnan(change)
    if not seen.any():
        return change
    filled = np.where(seen, change, 0.0)
    weight = _smooth(seen.astype(np.float64), 3)
    smoothed = np.divide(_smooth(filled, 3), weight, out=np.full(num_frames, np.nan), where=weight > 0)
    return np.where(seen, smoothed, np.nan)


def score_tracks(
    tracks: Sequence[FaceTrack], audio_16k: np.ndarray, num_frames: int, *, min_frames: int = FPS
) -> list[SpeakerScore] | None:
    """Each track's speaker score, best first; None when the sound track has no usable speech.

    Tracks seen on fewer than *min_frames* frames, or only while the sound is all voiced or all
    unvoiced, are not scored (there is nothing to compare).
    """
    voiced = voiced_frames(speech_envelope(audio_16k, num_frames))
    if voiced is None:
        return None
    scores: list[SpeakerScore] = []
    for track in tracks:
        activity = _activity(track, num_frames)
        seen = ~np.isnan(activity)
        on, off = activity[seen & voiced], activity[seen & ~voiced]
        if seen.sum() < min_frames or on.size < 3 or off.size < 3:
            continue
        spread = float(np.std(activity[seen]))
        score = float((on.mean() - off.mean()) / spread) if spread > 0 else 0.0
        scores.append(SpeakerScore(track.id, score, len(track.faces)))
    return sorted(scores, key=lambda s: -s.score) or None
