"""The end-to-end lip-sync pipeline: ``LipSync(...).run(video, audio, out, options=None, **overrides)``.

See docs/pipeline.md. Submodules: ``options`` (``contracts.RunOptions`` validated for local runs),
``timeline`` (length handling / loop modes), ``frames`` (bounded re-decoding frame source), ``inputs`` (``check_inputs``), ``stages`` (the
per-chunk stage functions), ``progress`` (events, stage timer), ``lipsync`` (``LipSync``, ``RunResult``).
"""

from __future__ import annotations

from lipsync.pipeline.inputs import CheckedInputs, check_inputs
from lipsync.pipeline.lipsync import CHUNK_FRAMES, Chunk, Job, LipSync, RunResult, iter_chunks
from lipsync.pipeline.options import ON_NO_FACE_MODES, OnNoFace, RunOptions
from lipsync.pipeline.progress import STAGES, ProgressCallback, ProgressEvent, StageTimer
from lipsync.pipeline.timeline import LOOP_MODES, LoopMode, Timeline, plan_timeline

__all__ = [
    "CHUNK_FRAMES",
    "LOOP_MODES",
    "ON_NO_FACE_MODES",
    "STAGES",
    "CheckedInputs",
    "Chunk",
    "Job",
    "LipSync",
    "LoopMode",
    "OnNoFace",
    "ProgressCallback",
    "ProgressEvent",
    "RunOptions",
    "RunResult",
    "StageTimer",
    "Timeline",
    "check_inputs",
    "iter_chunks",
    "plan_timeline",
]
