"""The end-to-end lip-sync pipeline: ``LipSync(...).run(video, audio, out, options=None, **overrides)``.

See docs/pipeline.md. Submodules: ``options`` (``contracts.RunOptions`` validated for local runs), ``timeline`` (length handling /
loop modes, chunks), ``plan`` (a run's pure plan), ``frames`` (bounded re-decoding frame source), ``inputs``
(``check_inputs``), ``stages`` (the per-chunk stage functions), ``driver`` (``Job`` and the one driver,
threaded or inline), ``staged`` (the generic thread-per-stage runner), ``tuning`` (throughput settings,
model preparation, thread counts), ``progress`` (events, stage timer), ``lipsync`` (``LipSync``,
``RunResult``).
"""

from __future__ import annotations

from lipsync.pipeline.driver import DriverConfig, Job, PipelineRun, RunCounters, RunStats
from lipsync.pipeline.inputs import CheckedInputs, check_inputs
from lipsync.pipeline.lipsync import LipSync, RunResult
from lipsync.pipeline.options import ON_NO_FACE_MODES, OnNoFace, RunOptions
from lipsync.pipeline.plan import RunPlan, plan_run
from lipsync.pipeline.progress import STAGES, ProgressCallback, ProgressEvent, StageTimer
from lipsync.pipeline.timeline import (
    CHUNK_FRAMES,
    LOOP_MODES,
    Chunk,
    LoopMode,
    Timeline,
    iter_chunks,
    plan_timeline,
)

__all__ = [
    "CHUNK_FRAMES",
    "LOOP_MODES",
    "ON_NO_FACE_MODES",
    "STAGES",
    "CheckedInputs",
    "Chunk",
    "DriverConfig",
    "Job",
    "LipSync",
    "LoopMode",
    "OnNoFace",
    "PipelineRun",
    "ProgressCallback",
    "ProgressEvent",
    "RunCounters",
    "RunOptions",
    "RunPlan",
    "RunResult",
    "RunStats",
    "StageTimer",
    "Timeline",
    "check_inputs",
    "iter_chunks",
    "plan_run",
    "plan_timeline",
]
