"""``VolumeStorage`` on a fake Volume: what one container writes, another sees only after commit + reload;
reload never trips over files this container has open; keys cannot leave the mount."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lipsync.server.keys import InvalidKey
from lipsync.server.local_storage import LocalStorage
from lipsync.server.modal_backends import VolumeStorage
from tests.modal.fakes import FakeVolume

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def two_containers(tmp_path: Path) -> tuple[FakeVolume, VolumeStorage, VolumeStorage]:
    volume = FakeVolume()
    api = VolumeStorage(tmp_path / "api" / "media", volume.mount(tmp_path / "api"))
    gpu = VolumeStorage(tmp_path / "gpu" / "media", volume.mount(tmp_path / "gpu"))
    return volume, api, gpu


async def test_a_write_is_committed_before_it_returns_and_a_miss_reloads(tmp_path: Path) -> None:
    volume, api, gpu = two_containers(tmp_path)
    await api.put_bytes("inputs/j1/video.mp4", b"video bytes")
    assert volume.commits == 1
    # The GPU container has not reloaded since it started; the miss makes it reload once.
    reloads = volume.reloads
    assert await gpu.size("inputs/j1/video.mp4") == len(b"video bytes")
    assert volume.reloads == reloads + 1
    copy = await gpu.local_path("inputs/j1/video.mp4", tmp_path / "scratch")
    assert copy.read_bytes() == b"video bytes"
    assert not copy.is_relative_to(gpu.root.parent)  # a scratch copy, not a file on the Volume
    # A key that exists is current: no more reloads for it.
    await gpu.read_head("inputs/j1/video.mp4", 5)
    assert volume.reloads == reloads + 1


async def test_uncommitted_writes_stay_invisible(tmp_path: Path) -> None:
    """What the commit discipline protects against: a file written without commit is not seen elsewhere."""
    _, api, gpu = two_containers(tmp_path)
    await LocalStorage(gpu.root).put_bytes("outputs/j1/output.mp4", b"not committed")
    assert await api.size("outputs/j1/output.mp4") is None
    with pytest.raises(FileNotFoundError):
        await api.read_head("outputs/j1/output.mp4", 4)
    await gpu.put_bytes("outputs/j1/output.mp4", b"committed")
    assert await api.read_head("outputs/j1/output.mp4", 9) == b"committed"


async def test_reload_waits_for_open_files_and_downloads_do_not_block_it(tmp_path: Path) -> None:
    volume, api, gpu = two_containers(tmp_path)
    await api.put_bytes("outputs/a/output.mp4", b"A" * 300_000)
    # A slow download from the API container is under way...
    chunks = api.iter_bytes("outputs/a/output.mp4", chunk_size=1000)
    first = await chunks.__anext__()
    # ...while the GPU container commits another output and the API container serves it (reload).
    await gpu.put_bytes("outputs/b/output.mp4", b"B" * 10)
    assert await api.size("outputs/b/output.mp4") == 10
    rest = b"".join([c async for c in chunks])
    assert first + rest == b"A" * 300_000
    assert api.volume.open_files() == []  # type: ignore[attr-defined]
    assert volume.files["media/outputs/b/output.mp4"] == b"B" * 10


async def test_the_fake_refuses_to_reload_with_an_open_file(tmp_path: Path) -> None:
    """The semantics the gate exists for (Modal's reload fails while files are open)."""
    _, api, _ = two_containers(tmp_path)
    await api.put_bytes("outputs/a/output.mp4", b"x")
    with (
        open(api.files.path_of("outputs/a/output.mp4"), "rb"),
        pytest.raises(RuntimeError, match="open files"),
    ):
        api.volume.reload()


async def test_many_requests_in_one_container_share_the_volume_safely(tmp_path: Path) -> None:
    """Uploads, reads and reload-triggering misses at once, as an API container with concurrent inputs."""
    _, api, gpu = two_containers(tmp_path)

    async def upload(i: int) -> None:
        async def body() -> AsyncIterator[bytes]:
            for _ in range(4):
                yield bytes([i]) * 1000
                await asyncio.sleep(0)

        await api.put_stream(f"uploads/k/{i}/f.bin", body(), max_bytes=10_000)

    async def read_back(i: int) -> bytes:
        await gpu.put_bytes(f"outputs/{i}/output.mp4", bytes([i]) * 50)
        return b"".join([c async for c in api.iter_bytes(f"outputs/{i}/output.mp4")])

    results = await asyncio.gather(*(upload(i) for i in range(6)), *(read_back(i) for i in range(6)))
    assert results[6:] == [bytes([i]) * 50 for i in range(6)]
    for i in range(6):
        assert await gpu.size(f"uploads/k/{i}/f.bin") == 4000


async def test_an_oversized_stream_stores_and_commits_nothing(tmp_path: Path) -> None:
    volume, api, gpu = two_containers(tmp_path)

    async def body() -> AsyncIterator[bytes]:
        for _ in range(5):
            yield b"z" * 1000

    with pytest.raises(ValueError, match="larger than"):
        await api.put_stream("uploads/k/1/big.bin", body(), max_bytes=2500)
    assert volume.commits == 0 and await gpu.size("uploads/k/1/big.bin") is None


async def test_deletes_are_committed(tmp_path: Path) -> None:
    _, api, gpu = two_containers(tmp_path)
    await gpu.put_bytes("outputs/j/output.mp4", b"x")
    assert await api.size("outputs/j/output.mp4") == 1
    await gpu.delete_prefix("outputs/j")
    api.volume.reload()
    assert await api.size("outputs/j/output.mp4") is None


async def test_unsafe_keys_are_refused(tmp_path: Path) -> None:
    _, api, _ = two_containers(tmp_path)
    for key in ("../secret", "/etc/passwd", "a/../../b", ".hidden/x"):
        with pytest.raises(InvalidKey):
            await api.size(key)
        with pytest.raises(InvalidKey):
            await api.put_bytes(key, b"x")
