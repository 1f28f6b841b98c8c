"""A fake Modal deployment: one Dict, one Volume, a spawnable GPU function, API and GPU backends over them."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from lipsync.server.interfaces import Engine
from lipsync.server.modal_backends import ModalBackends, ModalTuning, run_job
from lipsync.server.settings import ServerSettings
from tests.modal.fakes import FakeDict, FakeFunction, FakeVolume
from tests.server.conftest import make_settings
from tests.server.fakes import FakeEngine, FakeFetcher, RecordingWebhooks


@dataclass
class FakeDeployment:
    """What ``modal deploy`` would create, in memory. ``gpu_backends()`` is one new GPU container."""

    tmp: Path
    settings: ServerSettings
    jobs: FakeDict = field(default_factory=FakeDict)
    volume: FakeVolume = field(default_factory=FakeVolume)
    tuning: ModalTuning = field(
        default_factory=lambda: ModalTuning(lock_ttl_s=5.0, reconcile_s=0.2, cancel_grace_s=0.3)
    )
    #: None: the real engine, built from ``settings`` (``load_engine``), as on Modal.
    engine: Engine | None = field(default_factory=FakeEngine)
    webhooks: RecordingWebhooks = field(default_factory=RecordingWebhooks)
    fetcher: FakeFetcher = field(default_factory=FakeFetcher)
    function: FakeFunction = field(init=False)
    _containers: Iterator[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        self.function = FakeFunction(self.run_gpu_job)
        self.api = self._backends("api")

    def _backends(self, name: str) -> ModalBackends:
        root = self.tmp / name
        settings = self.settings.model_copy(update={"data_dir": root})
        return ModalBackends(
            settings=settings,
            jobs=self.jobs,
            volume=self.volume.mount(root),
            spawn=lambda job_id: self.function.spawn(job_id),
            lookup=lambda call_id: self.function.lookup(call_id),  # late-bound: tests swap the function
            current_call=lambda: self.function.current_call(),
            engine_factory=None if self.engine is None else (lambda device: self._engine()),
            tuning=self.tuning,
            fetcher=self.fetcher,
            webhooks=self.webhooks,
        )

    def gpu_backends(self) -> ModalBackends:
        return self._backends(f"gpu-{next(self._containers)}")

    def _engine(self) -> Engine:
        assert self.engine is not None
        return self.engine

    def run_gpu_job(self, job_id: str) -> dict[str, Any]:
        """The default GPU function: a fresh container runs the job (``run_job`` as the class does)."""
        return run_job(job_id, backends=self.gpu_backends(), engine=self._engine()).as_dict()

    def use_target(
        self, target: Callable[[str], Any], *, retries: int = 0, autostart: bool = True
    ) -> FakeFunction:
        self.function = FakeFunction(target, retries=retries, autostart=autostart)
        return self.function


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[FakeDeployment]:
    d = FakeDeployment(tmp_path, make_settings(tmp_path, max_active_jobs_per_key=100))
    yield d
    d.function.hold.set()
    d.function.join()
