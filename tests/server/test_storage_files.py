"""Storage backends (local directory, memory, S3 through moto) and the signed download route."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lipsync.server.interfaces import Storage
from lipsync.server.keys import InvalidKey, check_key, safe_filename
from lipsync.server.local_storage import LocalStorage
from lipsync.server.memory import MemoryStorage
from lipsync.server.signing import UrlSigner
from tests.server.conftest import Harness

BAD_KEYS = ["", "../etc/passwd", "a/../../b", "/abs", "a//b", ".hidden", "a/.b", "a\\b", "a/b/", "a b", "ü"]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_unsafe_keys_are_rejected(key: str) -> None:
    with pytest.raises(InvalidKey):
        check_key(key)


def test_safe_filename() -> None:
    assert safe_filename("../../etc/passwd") == "passwd"
    assert safe_filename("C:\\Users\\me\\face video.MP4") == "face_video.MP4"
    assert safe_filename("...") == "upload"


@pytest.fixture(scope="module")
def s3_client() -> Iterator[Any]:
    moto = pytest.importorskip("moto", reason="S3 tests need moto (dev extra)")
    import boto3

    with moto.mock_aws():
        client = boto3.client(
            "s3", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
        )
        client.create_bucket(Bucket="media")
        yield client


@pytest.fixture(params=["local", "memory", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "local":
        return LocalStorage(tmp_path / "media")
    if request.param == "memory":
        return MemoryStorage()
    from lipsync.server.s3_storage import S3Storage

    client = request.getfixturevalue("s3_client")
    return S3Storage("media", prefix=f"t-{tmp_path.name}/", client=client)


async def _chunks(parts: list[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def test_storage_roundtrip(storage: Storage, tmp_path: Path) -> None:
    async def scenario() -> None:
        src = tmp_path / "src.bin"
        src.write_bytes(b"hello world")
        assert await storage.put_file("outputs/j1/output.mp4", src) == 11
        assert await storage.put_file("outputs/j1/output.mp4", src) == 11  # idempotent rewrite
        assert await storage.size("outputs/j1/output.mp4") == 11
        assert await storage.read_head("outputs/j1/output.mp4", 5) == b"hello"
        assert (
            b"".join([c async for c in storage.iter_bytes("outputs/j1/output.mp4", chunk_size=4)])
            == b"hello world"
        )
        local = await storage.local_path("outputs/j1/output.mp4", tmp_path)
        assert local.read_bytes() == b"hello world"
        assert await storage.put_bytes("inputs/j1/video.mp4", b"v") == 1
        assert await storage.put_stream("inputs/j1/audio.wav", _chunks([b"ab", b"cd"]), max_bytes=4) == 4
        with pytest.raises(ValueError):
            await storage.put_stream("inputs/j1/big.wav", _chunks([b"abc", b"def"]), max_bytes=4)
        assert await storage.size("inputs/j1/big.wav") is None  # nothing partial left behind
        await storage.delete_prefix("inputs/j1")
        assert await storage.size("inputs/j1/video.mp4") is None
        assert await storage.size("outputs/j1/output.mp4") == 11
        assert await storage.size("missing/key") is None
        with pytest.raises(FileNotFoundError):
            await storage.local_path("missing/key", tmp_path)
        with pytest.raises(InvalidKey):
            await storage.put_bytes("../escape", b"x")

    asyncio.run(scenario())


def test_local_storage_stays_inside_its_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    store = LocalStorage(root)
    (tmp_path / "secret.txt").write_text("top secret")
    (root / "link").symlink_to(tmp_path)  # a symlink planted inside storage still cannot lead out
    with pytest.raises(InvalidKey):
        store.path_of("link/secret.txt")
    assert not list(root.glob(".tmp-*"))


def test_s3_downloads_are_presigned(s3_client: Any) -> None:
    from lipsync.server.s3_storage import S3Storage

    url = S3Storage("media", prefix="p/", client=s3_client).presigned_url(
        "outputs/j/output.mp4", expires_s=60
    )
    assert url is not None and "p/outputs/j/output.mp4" in url and "Signature=" in url


# ---- the /files route ------------------------------------------------------------------------------------


def _output_url(harness: Harness) -> str:
    data = harness.submit({"enable_sync_mode": True}).json()["data"]
    return str(data["outputs"][0]).removeprefix("http://testserver")


def test_download_needs_a_valid_unexpired_signature(harness: Harness) -> None:
    url = _output_url(harness)
    assert harness.client.get(url).status_code == 200
    assert harness.client.head(url).status_code == 200
    tampered = url.replace("sig=", "sig=A")
    assert harness.client.get(tampered).status_code == 403
    path, query = url.split("?")
    expires = int(query.split("expires=")[1].split("&")[0])
    signer = harness.app.state.server.signer
    past = signer.download_url(
        "", path.removeprefix("/files/"), expires=int(harness.app.state.server.clock.now()) - 1
    )
    r = harness.client.get(past)
    assert r.status_code == 403 and r.json()["message"] == "Download URL is invalid or has expired"
    longer = url.replace(f"expires={expires}", f"expires={expires + 3600}")
    assert harness.client.get(longer).status_code == 403
    assert harness.client.get(path).status_code == 400  # no signature at all: missing query parameters


@pytest.mark.parametrize(
    "key",
    [
        "../secret",
        "..%2Fsecret",
        "outputs/%2e%2e/%2e%2e/secret",
        "outputs/..%2F..%2Fsecret",
        "%2Fetc%2Fpasswd",
    ],
)
def test_path_traversal_is_refused_even_with_a_valid_signature(
    harness_factory: Callable[..., Harness], tmp_path: Path, key: str
) -> None:
    from urllib.parse import unquote

    (tmp_path / "secret").write_text("top secret")
    (tmp_path / "etc").mkdir()
    harness = harness_factory(storage=LocalStorage(tmp_path / "media"))
    assert _output_url(harness)  # storage works
    signer: UrlSigner = harness.app.state.server.signer
    expires = int(harness.app.state.server.clock.now()) + 600
    sig = signer.download_url("", unquote(key), expires=expires).split("sig=")[1]
    raw = f"/files/{key}?expires={expires}&sig={sig}"
    r = harness.client.get(raw)
    assert r.status_code == 404, r.text
    assert b"top secret" not in r.content


def test_uploads_of_one_key_are_not_visible_through_another_signature(harness: Harness) -> None:
    signer: UrlSigner = harness.app.state.server.signer
    expires = int(harness.app.state.server.clock.now()) + 600
    url = _output_url(harness)
    other_key_sig = signer.download_url("", "outputs/other/output.mp4", expires=expires).split("sig=")[1]
    path = url.split("?")[0]
    assert harness.client.get(f"{path}?expires={expires}&sig={other_key_sig}").status_code == 403
