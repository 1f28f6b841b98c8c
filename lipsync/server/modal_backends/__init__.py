"""The server's backends on Modal: ``JobStore`` on a ``modal.Dict``, ``Storage`` on a ``modal.Volume``,
``Runner`` through ``Function.spawn`` + ``FunctionCall`` (imported by ``modal_app.py`` only).

- ``handles``        the Modal methods used, as protocols; ``ModalBackends``, the bundle modal_app builds
- ``dict_store``     ``DictBackend`` (per-job locks on the Dict's test-and-set, ``DictLock``) and
                     ``DictJobStore`` (the one JobStore on it, plus the FunctionCall bookkeeping)
- ``volume_storage`` ``VolumeStorage``: commit after every write, reload on a miss, a gate around both
- ``calls``          what became of a FunctionCall (``inspect_call``) and what that means for its job
- ``runner``         ``ModalRunner``: one spawned GPU call per job, the reconciler, cancel escalation
- ``wiring``         ``create_modal_api``, ``run_job``, ``sweep``, ``load_engine`` (what modal_app calls)

Everything here is tested without a Modal account against in-memory fakes with Modal's semantics
(``tests/modal``); see docs/deploy-modal.md for the deployment itself.
"""

from __future__ import annotations

from lipsync.server.modal_backends.calls import CallOutcome, inspect_call
from lipsync.server.modal_backends.dict_store import ActiveJob, DictBackend, DictJobStore, DictLock, StoreBusy
from lipsync.server.modal_backends.handles import (
    CallHandle,
    CallLookup,
    DictHandle,
    ModalBackends,
    ModalTuning,
    Spawner,
    VolumeHandle,
)
from lipsync.server.modal_backends.runner import ModalRunner
from lipsync.server.modal_backends.volume_storage import VolumeGate, VolumeStorage
from lipsync.server.modal_backends.wiring import (
    JobReport,
    create_modal_api,
    load_engine,
    make_runner,
    make_storage,
    make_store,
    run_job,
    sweep,
)

__all__ = [
    "ActiveJob",
    "CallHandle",
    "CallLookup",
    "CallOutcome",
    "DictBackend",
    "DictHandle",
    "DictJobStore",
    "DictLock",
    "JobReport",
    "ModalBackends",
    "ModalRunner",
    "ModalTuning",
    "Spawner",
    "StoreBusy",
    "VolumeGate",
    "VolumeHandle",
    "VolumeStorage",
    "create_modal_api",
    "inspect_call",
    "load_engine",
    "make_runner",
    "make_storage",
    "make_store",
    "run_job",
    "sweep",
]
