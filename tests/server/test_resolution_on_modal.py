"""Input resolution over the Modal backends: a resolution an API container abandoned (it was scaled down or
crashed mid-download) is taken over by the scheduled ``sweep`` function, which then spawns the GPU call.

The Modal objects are ``tests/modal``'s fakes (Dict, Volume, FunctionCall with Modal's semantics); the rest
is the deployed code path (``modal_backends.sweep`` with the real DictJobStore, VolumeStorage, ModalRunner).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from contracts import RunOptions
from lipsync.server.interfaces import JobRecord
from lipsync.server.modal_backends import make_store, sweep
from tests.modal.conftest import FakeDeployment
from tests.server.conftest import AUDIO, VIDEO, make_settings


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[FakeDeployment]:
    d = FakeDeployment(tmp_path, make_settings(tmp_path, max_active_jobs_per_key=100))
    yield d
    d.function.hold.set()
    d.function.join()


def abandoned(job_id: str, *, attempts: int = 1) -> JobRecord:
    return JobRecord(
        id=job_id,
        owner="k_a",
        base_url="http://api.test",
        options=RunOptions(),
        inputs={},
        created_at=time.time(),
        status="resolving",
        worker_id="resolver-of-a-container-that-is-gone",
        lease_until=time.time() - 1,
        attempts=attempts,
        sources={"video": VIDEO, "audio": AUDIO},
    )


def test_the_scheduled_sweep_takes_over_an_abandoned_resolution(deployment: FakeDeployment) -> None:
    store = make_store(deployment.api)
    asyncio.run(store.create(abandoned("j1")))
    asyncio.run(store.create(abandoned("j2", attempts=2)))  # interrupted once too often: failed
    counts = sweep(deployment.gpu_backends(), gpu_timeout_s=3900)
    assert counts == {"requeued": 1, "failed": 1, "purged": 0}
    assert deployment.fetcher.calls == [VIDEO, AUDIO]
    (call,) = deployment.function.calls.values()  # one GPU call, for the resolved job only
    assert call.done.wait(30)
    job = asyncio.run(store.get("j1"))
    assert job is not None and job.status == "completed", job
    failed = asyncio.run(store.get("j2"))
    assert failed is not None and (failed.status, failed.code) == ("failed", 5000)
