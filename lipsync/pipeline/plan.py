"""A run's plan: what will be computed, decided up front from the checked inputs and the options alone.

The plan is pure data (no models, no counters, no driver): the output timeline, its 16-frame chunks, the
seed, the audio the features are computed from and the sound track written, and the decoding window the
frame source needs. Both driver modes (:mod:`lipsync.pipeline.driver`) walk the same plan.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lipsync.pipeline.inputs import CheckedInputs, Waveform
from lipsync.pipeline.timeline import CHUNK_FRAMES, Chunk, LoopMode, Timeline, iter_chunks, plan_timeline

__all__ = ["RunPlan", "plan_run"]


@dataclass(frozen=True, eq=False)
class RunPlan:
    """``timeline``: which source frame and audio window each output frame uses; ``chunks``: the output in
    U-Net calls; ``seed``: the run's one RNG seed; ``waveform``: the audio the features are computed from
    (padded with silence in ``silence`` mode); ``decode_window``/``backward_block``: frames the decoder keeps
    (one chunk when no source frame is shown twice, a window for ping-pong/loop replays otherwise)."""

    timeline: Timeline
    chunks: tuple[Chunk, ...]
    seed: int
    waveform: Waveform
    decode_window: int
    backward_block: int

    @property
    def num_frames(self) -> int:
        return self.timeline.num_frames

    @property
    def chunks_total(self) -> int:
        return len(self.chunks)

    @property
    def first_pass_frames(self) -> int:
        """Output frames after which every source frame has been seen once (the no-face check runs there)."""
        return min(self.timeline.num_frames, self.timeline.num_video_frames)

    @property
    def audio_track(self) -> Waveform:
        """The output's sound track (16 kHz mono float32)."""
        return self.waveform[: self.timeline.audio_samples]


def plan_run(inputs: CheckedInputs, *, seed: int, loop_mode: LoopMode) -> RunPlan:
    """The plan for lip-syncing *inputs* with this seed and loop mode."""
    waveform = inputs.waveform
    timeline = plan_timeline(inputs.num_video_frames, inputs.audio_frames, int(waveform.shape[0]), loop_mode)
    if timeline.pad_audio_to > waveform.shape[0]:
        waveform = np.pad(waveform, (0, timeline.pad_audio_to - waveform.shape[0]))
    window = 3 * CHUNK_FRAMES if timeline.repeats_video else CHUNK_FRAMES
    return RunPlan(
        timeline=timeline,
        chunks=tuple(iter_chunks(timeline.num_frames)),
        seed=int(seed),
        waveform=waveform,
        decode_window=window,
        backward_block=min(2 * CHUNK_FRAMES, window),
    )
