"""Length handling: which source video frame and how much audio each output frame uses.

The reference (LatentSync ``LipsyncPipeline.loop_video``) makes the output as long as the audio drives it
(``floor(L/2) + 2`` frames, :func:`lipsync.engine.audio.duration_frames`) and, when the video is shorter, plays it forward,
then backward, then forward again ("ping-pong"; the turn-around frame appears twice). A longer video is cut.
We keep that as ``pingpong`` (the default) and add three variants, all described on
``contracts.LipsyncRequest.loop_mode``:

``loop``     like pingpong, but the video restarts from its first frame instead of reversing.
``cut_off``  both are cut to the shorter one (a longer audio is trimmed to the video's length).
``silence``  the whole video is kept and the audio padded with silence; a longer audio ping-pongs the video.

Everything here is plain integer arithmetic so that the streaming pipeline can ask for the source index of
any output frame without holding the frame list the reference builds.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import get_args

from contracts import LoopMode

__all__ = [
    "AUDIO_SAMPLES_PER_FRAME",
    "CHUNK_FRAMES",
    "FPS",
    "LOOP_MODES",
    "SAMPLE_RATE",
    "Chunk",
    "LoopMode",
    "Timeline",
    "iter_chunks",
    "plan_timeline",
]

LOOP_MODES: tuple[LoopMode, ...] = get_args(LoopMode)

FPS = 25
SAMPLE_RATE = 16_000
#: 16 kHz audio samples per 25-fps video frame.
AUDIO_SAMPLES_PER_FRAME = SAMPLE_RATE // FPS  # 640
#: Frames per U-Net call (the reference's ``num_frames``); the last chunk may be shorter.
CHUNK_FRAMES = 16


@dataclass(frozen=True)
class Chunk:
    """Output frames ``start .. stop-1`` (the reference's 16-frame grid)."""

    index: int
    start: int
    stop: int

    @property
    def size(self) -> int:
        return self.stop - self.start


def iter_chunks(num_frames: int, size: int = CHUNK_FRAMES) -> Iterator[Chunk]:
    for index, start in enumerate(range(0, num_frames, size)):
        yield Chunk(index, start, min(start + size, num_frames))


@dataclass(frozen=True)
class Timeline:
    """The output's frame plan.

    ``num_frames`` output frames; output frame ``i`` shows source frame :meth:`source_index` ``(i)`` and is
    driven by audio window ``i``. ``audio_samples`` is the length of the output sound track (16 kHz), and
    ``pad_audio_to`` > 0 means the input audio must be padded with silence to that many samples *before*
    its features are computed (``silence`` mode with a longer video).
    """

    num_video_frames: int
    num_audio_frames: int
    loop_mode: LoopMode
    num_frames: int
    audio_samples: int
    pad_audio_to: int = 0

    def source_index(self, i: int) -> int:
        """Index (25-fps timeline of the input video) of the frame shown at output frame *i*."""
        if not 0 <= i < self.num_frames:
            raise IndexError(f"output frame {i} outside 0..{self.num_frames - 1}")
        n = self.num_video_frames
        if i < n:
            return i
        if self.loop_mode == "loop":
            return i % n
        # pingpong (and the audio-longer branches of cut_off/silence that reach here: only pingpong/silence,
        # since cut_off never outruns the video): even passes forward, odd passes backward.
        lap, pos = divmod(i, n)
        return pos if lap % 2 == 0 else n - 1 - pos

    def source_indices(self, start: int, stop: int) -> list[int]:
        return [self.source_index(i) for i in range(start, stop)]

    @property
    def repeats_video(self) -> bool:
        """True when some source frame is shown more than once (needs a second pass over the video)."""
        return self.num_frames > self.num_video_frames


def plan_timeline(
    num_video_frames: int, num_audio_frames: int, num_audio_samples: int, loop_mode: LoopMode = "pingpong"
) -> Timeline:
    """Decide the output length and the audio handling.

    *num_video_frames*: frames of the input video on the 25-fps timeline; *num_audio_frames*: frames the audio
    drives in the reference (``duration_frames(num_audio_samples)``); *num_audio_samples*: 16-kHz samples.
    """
    if num_video_frames <= 0:
        raise ValueError(f"num_video_frames must be > 0, got {num_video_frames}")
    if num_audio_samples <= 0 or num_audio_frames <= 0:
        raise ValueError(f"empty audio ({num_audio_samples} samples, {num_audio_frames} frames)")
    if loop_mode not in LOOP_MODES:
        raise ValueError(f"loop_mode must be one of {', '.join(LOOP_MODES)}; got {loop_mode!r}")
    n_audio = num_audio_frames
    pad_to = 0
    if loop_mode == "cut_off":
        n_out = min(n_audio, num_video_frames)
    elif loop_mode == "silence" and num_video_frames > n_audio:
        n_out = num_video_frames
        pad_to = num_video_frames * AUDIO_SAMPLES_PER_FRAME
    else:  # pingpong, loop, silence with the audio at least as long: the audio drives the length
        n_out = n_audio
    # The reference writes audio[: int(n_out / 25 * 16000)]; with the usual n_out = duration*25 + 2 that is the
    # whole audio. Padding only happens in silence mode, so the track is never longer than the audio we have.
    audio_samples = min(n_out * AUDIO_SAMPLES_PER_FRAME, max(num_audio_samples, pad_to))
    return Timeline(
        num_video_frames=num_video_frames,
        num_audio_frames=n_audio,
        loop_mode=loop_mode,
        num_frames=n_out,
        audio_samples=audio_samples,
        pad_audio_to=pad_to,
    )
