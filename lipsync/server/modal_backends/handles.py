"""The parts of Modal the backends use, as small protocols, and the bundle ``modal_app.py`` hands over.

Only blocking methods of ``modal.Dict``, ``modal.Volume`` and ``modal.FunctionCall`` are used, always from a
worker thread (:func:`in_thread`), so an in-memory fake with the same methods and the same semantics
(``tests/modal/fakes.py``) can stand in for each of them.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from lipsync.server.interfaces import Clock, Engine, Fetcher, SystemClock, WebhookSender
from lipsync.server.settings import ServerSettings

__all__ = [
    "CallHandle",
    "CallLookup",
    "DictHandle",
    "ModalBackends",
    "ModalTuning",
    "Spawner",
    "VolumeHandle",
    "in_thread",
]

T = TypeVar("T")

#: Blocking Modal calls run here, not in asyncio's default executor, which has min(32, CPUs + 4) threads:
#: an API container with one CPU and 100 concurrent requests would queue its Dict round trips behind 5.
_MODAL_IO = ThreadPoolExecutor(max_workers=64, thread_name_prefix="modal-io")


async def in_thread(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` on the Modal I/O threads."""
    return await asyncio.get_running_loop().run_in_executor(_MODAL_IO, functools.partial(fn, *args))


class DictHandle(Protocol):
    """The ``modal.Dict`` methods used: single-key operations are atomic on Modal's side; values are
    serialized (a read never aliases a write); ``put(..., skip_if_exists=True)`` is the only test-and-set."""

    def get(self, key: Any, default: Any = None) -> Any: ...

    def put(self, key: Any, value: Any, *, skip_if_exists: bool = False) -> bool: ...

    def pop(self, key: Any, default: Any = ...) -> Any: ...

    def items(self) -> Iterable[tuple[Any, Any]]: ...


class VolumeHandle(Protocol):
    """A mounted ``modal.Volume``: writes become visible to other containers after ``commit()`` here and
    ``reload()`` there; ``reload()`` fails while this container has a file of the Volume open."""

    def commit(self) -> None: ...

    def reload(self) -> None: ...


class CallHandle(Protocol):
    """``modal.FunctionCall``: ``get(timeout=0)`` returns the result, raises the call's error, raises the
    builtin ``TimeoutError`` while it is still queued or running, and ``modal.exception.OutputExpiredError``
    once its result has expired."""

    def get(self, timeout: float | None = None) -> Any: ...

    def cancel(self, terminate_containers: bool = False) -> None: ...


#: Starts the GPU job method for a job id and returns the FunctionCall id (``Function.spawn``).
Spawner = Callable[[str], str]
#: ``modal.FunctionCall.from_id``.
CallLookup = Callable[[str], CallHandle]
#: The id of the FunctionCall running now (``modal.current_function_call_id``), None outside Modal.
CurrentCall = Callable[[], "str | None"]
#: Builds the engine for a device (the server's ``engine_factory_from_settings(settings)``).
EngineFactory = Callable[[str], Engine]


@dataclass(frozen=True)
class ModalTuning:
    """The Modal-only knobs the backends need (from ``ModalSettings``)."""

    lock_ttl_s: float = 10.0
    reconcile_s: float = 30.0
    cancel_grace_s: float = 30.0


@dataclass
class ModalBackends:
    """Everything the API function, the GPU class and the sweep need, built once per container.

    ``modal_app.py`` builds it from the real Modal objects; tests build it from fakes. ``fetcher`` and
    ``webhooks`` default to the server's real (SSRF-guarded) ones from ``settings``.
    """

    settings: ServerSettings
    jobs: DictHandle
    volume: VolumeHandle
    spawn: Spawner
    lookup: CallLookup
    current_call: CurrentCall
    engine_factory: EngineFactory | None = None
    tuning: ModalTuning = field(default_factory=ModalTuning)
    clock: Clock = field(default_factory=SystemClock)
    fetcher: Fetcher | None = None
    webhooks: WebhookSender | None = None
