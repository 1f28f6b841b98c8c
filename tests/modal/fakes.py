"""In-memory stand-ins for the Modal objects the backends use, with Modal's semantics (no account, no network).

- ``FakeDict``: ``modal.Dict``'s methods; values are serialized (a read never aliases a write), single-key
  operations are atomic, ``put(..., skip_if_exists=True)`` is the only test-and-set.
- ``FakeVolume`` / ``FakeVolumeMount``: one committed state and one directory per "container". A write is
  visible to another container only after ``commit()`` here and ``reload()`` there; ``reload``/``commit``
  raise, like Modal's, while this process has a file of that mount open (checked in ``/proc/self/fd``).
- ``FakeFunction`` / ``FakeFunctionCall``: ``spawn`` runs the target in a thread (a container);
  ``get(timeout=0)`` raises the builtin ``TimeoutError`` while it runs and ``OutputExpiredError`` once
  expired; an error is retried like ``modal.Retries``; a ``Preempted`` attempt is restarted on the same
  call (same id), as Modal restarts a preempted input.
"""

from __future__ import annotations

import os
import pickle
import threading
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from modal.exception import InputCancellation, NotFoundError, OutputExpiredError

__all__ = [
    "FakeDict",
    "FakeFunction",
    "FakeFunctionCall",
    "FakeVolume",
    "FakeVolumeMount",
    "Preempted",
]

_MISSING = object()


class FakeDict:
    def __init__(self) -> None:
        self._data: dict[Any, bytes] = {}
        self._lock = threading.Lock()
        self.ops = 0

    def get(self, key: Any, default: Any = None) -> Any:
        with self._lock:
            self.ops += 1
            raw = self._data.get(key)
        return default if raw is None else pickle.loads(raw)

    def put(self, key: Any, value: Any, *, skip_if_exists: bool = False) -> bool:
        raw = pickle.dumps(value)
        with self._lock:
            self.ops += 1
            if skip_if_exists and key in self._data:
                return False
            self._data[key] = raw
            return True

    def pop(self, key: Any, default: Any = _MISSING) -> Any:
        with self._lock:
            self.ops += 1
            raw = self._data.pop(key, None)
        if raw is None:
            if default is _MISSING:
                raise KeyError(key)
            return default
        return pickle.loads(raw)

    def items(self) -> Iterable[tuple[Any, Any]]:
        with self._lock:
            self.ops += 1
            snapshot = list(self._data.items())
        return [(k, pickle.loads(v)) for k, v in snapshot]

    def keys(self) -> list[Any]:
        with self._lock:
            return list(self._data)


class FakeVolume:
    """The durable side of a Volume: path -> bytes as last committed."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.lock = threading.Lock()
        self.commits = 0
        self.reloads = 0

    def mount(self, root: Path) -> FakeVolumeMount:
        """A new container's view at *root* (starts from the committed state)."""
        mount = FakeVolumeMount(self, root)
        mount.reload()
        return mount


class FakeVolumeMount:
    def __init__(self, volume: FakeVolume, root: Path) -> None:
        self.volume = volume
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._base: dict[str, bytes] = {}  # what this container last synchronised with

    def _scan(self) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        for path in self.root.rglob("*"):
            if path.is_file():
                out[path.relative_to(self.root).as_posix()] = path.read_bytes()
        return out

    def open_files(self) -> list[str]:
        """Files under this mount that this process holds open (what makes Modal refuse to reload)."""
        found = []
        prefix = str(self.root) + os.sep
        for fd in os.listdir("/proc/self/fd"):
            try:
                target = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                continue
            if target.startswith(prefix):
                found.append(target)
        return found

    def _refuse_if_open(self, op: str) -> None:
        held = self.open_files()
        if held:
            raise RuntimeError(f"{op} failed: there are open files preventing the operation: {held[0]}")

    def commit(self) -> None:
        self._refuse_if_open("commit")
        local = self._scan()
        with self.volume.lock:
            for path in set(self._base) - set(local):
                self.volume.files.pop(path, None)
            for path, data in local.items():
                if self._base.get(path) != data:
                    self.volume.files[path] = data
            self.volume.commits += 1
        self._base = local
        self.reload()  # Modal reloads after a successful commit

    def reload(self) -> None:
        self._refuse_if_open("reload")
        local = self._scan()
        pending = {p: d for p, d in local.items() if self._base.get(p) != d}  # uncommitted here: kept
        with self.volume.lock:
            committed = dict(self.volume.files)
            self.volume.reloads += 1
        for path in set(local) - set(committed) - set(pending):
            (self.root / path).unlink()
        for path, data in committed.items():
            if path in pending:
                continue
            target = self.root / path
            if local.get(path) != data:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
        self._base = committed


class Preempted(BaseException):
    """Raised by a test target to end an attempt the way a preemption does: Modal restarts the input."""


class FakeFunctionCall:
    def __init__(self, call_id: str) -> None:
        self.object_id = call_id
        self.done = threading.Event()
        self.started = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None
        self.expired = False
        self.cancelled = False
        self.attempts = 0
        self._lock = threading.Lock()

    def get(self, timeout: float | None = None) -> Any:
        if not self.done.wait(timeout):
            raise TimeoutError()  # the builtin, as modal's poll_function raises while the call runs
        if self.expired:
            raise OutputExpiredError()
        if self.error is not None:
            raise self.error
        return self.result

    def cancel(self, terminate_containers: bool = False) -> None:
        """Queued: it never starts. Running: its input is cancelled (the thread's later result is ignored,
        as a terminated container's would be)."""
        self.cancelled = True
        self.finish_with(error=InputCancellation("cancelled"))

    # -- test controls -----------------------------------------------------------------------------------

    def expire(self) -> None:
        """Modal dropped the output (past its retention)."""
        self.expired = True

    def finish_with(self, *, result: Any = None, error: BaseException | None = None) -> None:
        with self._lock:
            if self.done.is_set():  # cancelled meanwhile: the first outcome stands
                return
            self.result, self.error = result, error
            self.done.set()


class FakeFunction:
    """``spawn(job_id)`` runs ``target(job_id)`` in a thread with ``current_call()`` set to the call id.

    ``retries``: failed attempts re-run (``modal.Retries``); a ``Preempted`` attempt is restarted without
    counting. ``hold``: while cleared, spawned calls wait before starting (queued, no container yet).
    """

    def __init__(self, target: Callable[[str], Any], *, retries: int = 0, autostart: bool = True) -> None:
        self.target = target
        self.retries = retries
        self.calls: dict[str, FakeFunctionCall] = {}
        self.spawned: list[tuple[str, str]] = []  # (job_id, call_id)
        self.hold = threading.Event()
        if autostart:
            self.hold.set()
        self._local = threading.local()
        self._threads: list[threading.Thread] = []
        self.fail_spawns = 0

    def spawn(self, job_id: str) -> str:
        if self.fail_spawns:
            self.fail_spawns -= 1
            raise ConnectionError("Modal is unreachable (simulated)")
        call = FakeFunctionCall(f"fc-{uuid.uuid4().hex[:16]}")
        self.calls[call.object_id] = call
        self.spawned.append((job_id, call.object_id))
        thread = threading.Thread(target=self._run, args=(call, job_id), name=call.object_id, daemon=True)
        self._threads.append(thread)
        thread.start()
        return call.object_id

    def _run(self, call: FakeFunctionCall, job_id: str) -> None:
        while not self.hold.wait(0.01):
            if call.done.is_set():  # cancelled while queued
                return
        if call.done.is_set():
            return
        call.started.set()
        self._local.call_id = call.object_id
        failures = 0
        while True:
            call.attempts += 1
            try:
                result = self.target(job_id)
            except Preempted:
                continue
            except Exception as exc:
                failures += 1
                if failures <= self.retries:
                    continue
                call.finish_with(error=exc)
                return
            call.finish_with(result=result)
            return

    def lookup(self, call_id: str) -> FakeFunctionCall:
        try:
            return self.calls[call_id]
        except KeyError:
            raise NotFoundError(f"FunctionCall {call_id} not found") from None

    def current_call(self) -> str | None:
        return getattr(self._local, "call_id", None)

    def join(self, timeout: float = 30.0) -> None:
        for thread in self._threads:
            thread.join(timeout)
        alive = [t.name for t in self._threads if t.is_alive()]
        assert not alive, f"calls still running: {alive}"
