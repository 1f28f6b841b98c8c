"""Mock jobs: per-job state and the lifecycle that turns polls and clock time into a prediction."""

from __future__ import annotations

import base64
import math
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field

from contracts import (
    FaceAuto,
    FaceBoxes,
    FaceChoice,
    FacePoint,
    FaceReport,
    Prediction,
    PredictionUrls,
    Timings,
    result_url,
)
from mock_server.output import sample_mp4
from mock_server.scenarios import Scenario

__all__ = ["MOCK_SPEAKER_SCORE", "Job", "JobStore", "face_report", "output_path"]

#: The active-speaker score the mock reports for ``{"auto": true}`` (it analyses nothing; a clear speaker
#: scores about this much on real clips).
MOCK_SPEAKER_SCORE = 0.5


def face_report(choice: FaceChoice) -> FaceReport | None:
    """What a completed mock job reports for the request's ``face`` (the real server's shape, made up: the
    mock sees no video). None for ``"largest"`` (the real server reports nothing then either); the mode for
    boxes; track 0 and the frame of the point's time for a point; track 0 with :data:`MOCK_SPEAKER_SCORE`
    for auto."""
    if isinstance(choice, FacePoint):
        return FaceReport(mode="point", track=0, frame=round(choice.time * 25))
    if isinstance(choice, FaceBoxes):
        return FaceReport(mode="boxes")
    if isinstance(choice, FaceAuto):
        return FaceReport(mode="auto", track=0, score=MOCK_SPEAKER_SCORE)
    return None


def output_path(prediction_id: str) -> str:
    """Where a completed job's MP4 is served (like a CDN URL: no API key needed)."""
    return f"/storage/outputs/{prediction_id}/output.mp4"


@dataclass
class Job:
    id: str
    scenario: Scenario
    base_url: str
    #: Clock time the lifecycle counts from, and the stamp shown as created_at.
    started: float
    created_at: str
    webhook: str | None = None
    base64_output: bool = False
    #: Polls that moved the lifecycle on (a poll answered 429/5xx does not), and all poll requests.
    polls: int = 0
    poll_requests: int = 0
    #: The ended prediction as JSON, set once (kept serialised: a tenth of the model's memory, and the hot
    #: poll path sends it as is).
    final_json: bytes | None = None
    #: Set when an ended job's webhook was handed to the dispatcher.
    webhook_sent: bool = False
    #: Set when a sync-mode submit timed out: the job has visibly started.
    sync_waited: bool = False
    #: What a completed job reports as ``face`` (:func:`face_report` of the request's choice, made at submit:
    #: a job keeps no per-frame boxes).
    face: FaceReport | None = None

    # -- lifecycle ----------------------------------------------------------------------------------------
    def progress(self, now: float) -> float:
        """0..1 (1 = ended): the larger of the poll share and the time share of the scenario's lifecycle."""
        polls, seconds = self.scenario.polls, self.scenario.seconds
        by_polls = 1.0 if polls <= 0 else (0.0 if math.isinf(polls) else self.polls / polls)
        by_time = 1.0 if seconds <= 0 else (0.0 if math.isinf(seconds) else (now - self.started) / seconds)
        return min(1.0, max(by_polls, by_time))

    def view(self, now: float) -> tuple[Prediction, bool]:
        """The prediction as of *now*, and whether the job ended with this very call."""
        if self.final_json is not None:
            return Prediction.model_validate_json(self.final_json), False
        p = self.progress(now)
        if p >= 1.0:
            ended = self._ended()
            self.final_json = ended.model_dump_json().encode()
            return ended, True
        status = "processing" if (self.polls or self.sync_waited or now > self.started) else "created"
        pred = self.prediction(status)
        if status == "processing":
            pred.progress = round(p, 4)
        return pred, False

    @property
    def ended(self) -> bool:
        return self.final_json is not None

    @property
    def final(self) -> Prediction | None:
        """The ended prediction (parsed from its JSON), or None while the job runs."""
        return None if self.final_json is None else Prediction.model_validate_json(self.final_json)

    def end(self, prediction: Prediction) -> None:
        """Force the end state (cancellation)."""
        self.final_json = prediction.model_dump_json().encode()

    def prediction(self, status: str) -> Prediction:
        """A bare prediction of this job with *status* (no outputs, no error)."""
        return Prediction(
            id=self.id,
            urls=PredictionUrls(get=result_url(self.base_url, self.id)),
            status=status,  # type: ignore[arg-type]
            created_at=self.created_at,
        )

    def _ended(self) -> Prediction:
        pred = self.prediction("failed" if self.scenario.fails else "completed")
        # The scenario's nominal duration, so a client's timing display has a real, stable number to show.
        seconds = self.scenario.seconds
        pred.timings = Timings(inference=int(seconds * 1000) if math.isfinite(seconds) else 0)
        if self.scenario.fails:
            pred.code = self.scenario.code
            pred.error = self.scenario.error_text
        else:
            if self.base64_output:
                pred.outputs = [base64.b64encode(sample_mp4()).decode()]
            else:
                pred.outputs = [self.base_url + output_path(self.id)]
            pred.has_nsfw_contents = [False]
            pred.face = self.face
        return pred


@dataclass
class JobStore:
    """Jobs by id, oldest first; beyond ``max_jobs`` the oldest is forgotten (then 404, like expiry)."""

    max_jobs: int
    _jobs: OrderedDict[str, Job] = field(default_factory=OrderedDict)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    evicted: int = 0

    def add(self, job: Job) -> None:
        with self._lock:
            self._jobs[job.id] = job
            while len(self._jobs) > self.max_jobs:
                self._jobs.popitem(last=False)
                self.evicted += 1

    def get(self, prediction_id: str) -> Job | None:
        return self._jobs.get(prediction_id)

    def delete(self, prediction_id: str) -> bool:
        with self._lock:
            return self._jobs.pop(prediction_id, None) is not None

    def __iter__(self) -> Iterator[Job]:
        with self._lock:
            return iter(list(self._jobs.values()))

    def __len__(self) -> int:
        return len(self._jobs)
