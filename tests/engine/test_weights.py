"""Weights layout, tiny weights, pinned + checksummed downloads (through a fake hub), and the one loading path."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from huggingface_hub.errors import LocalEntryNotFoundError

from lipsync.engine.attention import Attention
from lipsync.engine.releases import FACE_MODELS, RELEASES, VAE
from lipsync.engine.weights import (
    MANIFEST_NAME,
    HubFile,
    WeightsLayout,
    default_weights_dir,
    download_weights,
    hub_files,
    load_engine_models,
    verify_weights,
    write_tiny_weights,
)
from lipsync.errors import WeightsError
from tests.conftest import FIXTURES_DIR, require_path


class FakeHub:
    """Stands in for ``hf_hub_download`` (the HF hub is an edge we do not own): serves ``root/<repo>/<file>``.

    Like the real function with ``local_dir``, it writes the file to ``local_dir/<filename>`` and returns that
    path. ``corrupt`` maps filenames to a function that spoils the bytes served.
    """

    def __init__(self, root: Path, corrupt: dict[str, object] | None = None) -> None:
        self.root = root
        self.corrupt = corrupt or {}
        self.calls: list[tuple[str, str, str]] = []

    def __call__(self, repo_id: str, filename: str, *, revision: str, local_dir: str) -> str:
        self.calls.append((repo_id, filename, revision))
        data = (self.root / repo_id / filename).read_bytes()
        spoil = self.corrupt.get(filename)
        if callable(spoil):
            data = spoil(data)
        out = Path(local_dir) / filename
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
        return str(out)


class UnreachableHub:
    """What ``hf_hub_download`` raises when the hub cannot be reached and nothing is cached."""

    def __call__(self, repo_id: str, filename: str, *, revision: str, local_dir: str) -> str:
        raise LocalEntryNotFoundError(
            "An error happened while trying to locate the file on the Hub and we cannot find the requested files"
            " in the local cache. Please check your connection and try again."
        )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    write_tiny_weights(root, version="1.6", seed=0)
    return root


@pytest.fixture(scope="module")
def hub_mirror(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, tuple[HubFile, ...]]:
    """The pinned file list of 1.6, served from a local folder of tiny files, with their checksums."""
    root = tmp_path_factory.mktemp("hub")
    files = []
    for item in hub_files("1.6", include_face_models=True):
        source = tiny_dir / item.target
        served = root / item.repo_id / item.filename
        served.parent.mkdir(parents=True, exist_ok=True)
        if source.is_file():
            shutil.copyfile(source, served)
        else:  # face models: opaque bytes (the face backend, not this module, parses ONNX)
            served.write_bytes(hashlib.sha256(item.filename.encode()).digest() * 64)
        files.append(dataclasses.replace(item, sha256=_sha256(served), size=served.stat().st_size))
    return root, tuple(files)


# ------------------------------------------------------------------------------------------------ layout


def test_default_dir_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LIPSYNC_WEIGHTS_DIR", str(tmp_path / "w"))
    assert default_weights_dir() == tmp_path / "w"
    assert WeightsLayout.default("1.5").root == tmp_path / "w"
    monkeypatch.delenv("LIPSYNC_WEIGHTS_DIR")
    assert default_weights_dir() == Path.home() / ".cache" / "lipsync" / "weights"


def test_layout_paths(tmp_path: Path) -> None:
    layout = WeightsLayout(tmp_path, "v1.5")
    assert layout.version == "1.5"
    assert layout.unet_path == tmp_path / "latentsync-1.5" / "latentsync_unet.pt"
    assert layout.whisper_path == tmp_path / "latentsync-1.5" / "whisper" / "tiny.pt"
    assert layout.vae_dir == tmp_path / "sd-vae-ft-mse"
    assert layout.buffalo_l_dir == layout.face_models_dir / "models" / "buffalo_l"
    with pytest.raises(WeightsError, match="unknown LatentSync version"):
        WeightsLayout(tmp_path, "1.0")


def test_check_lists_every_missing_file(tmp_path: Path) -> None:
    layout = WeightsLayout(tmp_path, "1.6")
    with pytest.raises(WeightsError) as info:
        layout.check(face_models=True)
    message = str(info.value)
    for path in layout.engine_files() + layout.face_model_files():
        assert str(path) in message
    assert "lipsync weights download" in message


def test_pinned_sources_are_commits_and_checksums() -> None:
    for version in ("1.5", "1.6"):
        files = hub_files(version)
        layout = WeightsLayout(Path("/w"), version)
        targets = {Path("/w") / f.target for f in files}
        assert set(layout.engine_files() + layout.face_model_files()) == targets
        for f in files:
            assert re.fullmatch(r"[0-9a-f]{40}", f.revision), f  # a commit, never a branch name
            assert re.fullmatch(r"[0-9a-f]{64}", f.sha256), f
            assert f.size > 0
    assert {f.repo_id for f in hub_files("1.6")} == {
        "ByteDance/LatentSync-1.6",
        "stabilityai/sd-vae-ft-mse",
        "public-data/insightface",
    }
    assert len(hub_files("1.6", include_face_models=False)) == 4


# ------------------------------------------------------------------------------------------------ tiny


def test_tiny_weights_use_the_official_formats(tiny_dir: Path) -> None:
    layout = WeightsLayout(tiny_dir, "1.6")
    layout.check()

    unet = torch.load(layout.unet_path, weights_only=True)
    assert set(unet) == {"global_step", "state_dict"}
    manifest = require_path(FIXTURES_DIR / "unet_full_manifest.tsv").read_text().splitlines()
    official_keys = [line.split("\t")[0] for line in manifest if line and not line.startswith("#")]
    assert list(unet["state_dict"]) == official_keys  # the 1,246 unprefixed keys, in order
    assert all(t.dtype == torch.float32 for t in unet["state_dict"].values())

    whisper = torch.load(layout.whisper_path, weights_only=True)
    assert set(whisper) == {"dims", "model_state_dict"}
    reference = torch.load(require_path(FIXTURES_DIR / "whisper_tiny" / "tiny.pt"), weights_only=True)
    assert set(whisper["dims"]) == set(reference["dims"])
    assert set(whisper["model_state_dict"]) == set(reference["model_state_dict"])  # same 167 keys
    assert all(t.dtype == torch.float16 for t in whisper["model_state_dict"].values())

    assert sorted(p.name for p in layout.vae_dir.iterdir()) == [
        "config.json",
        "diffusion_pytorch_model.safetensors",
    ]
    marker = json.loads(layout.manifest_path.read_text())
    assert marker["kind"] == "tiny" and "unet_config" in marker
    assert layout.is_tiny


def test_tiny_weights_are_reproducible(tiny_dir: Path, tmp_path: Path) -> None:
    again = write_tiny_weights(tmp_path, version="1.6", seed=0)
    for path in again.engine_files():
        rel = path.relative_to(tmp_path)
        if path.suffix == ".pt":  # torch.save pickles are not byte-stable; compare tensors
            a, b = torch.load(path, weights_only=True), torch.load(tiny_dir / rel, weights_only=True)
            sa = a.get("state_dict", a.get("model_state_dict"))
            sb = b.get("state_dict", b.get("model_state_dict"))
            assert all(torch.equal(sa[k], sb[k]) for k in sa)
        else:
            assert path.read_bytes() == (tiny_dir / rel).read_bytes()


def test_tiny_weights_load_and_run_through_load_engine_models(tiny_dir: Path) -> None:
    models = load_engine_models(WeightsLayout(tiny_dir, "1.6"), "cpu")
    assert models.tiny and models.version == "1.6"
    assert models.dtype is torch.float32 and models.device == torch.device("cpu")
    assert models.audio_encoder.hidden_size == models.unet_config.cross_attention_dim == 16

    speech = np.random.default_rng(0).standard_normal(16_000).astype(np.float32) * 0.1
    audio = models.audio_encoder.frame_features(speech)
    assert audio.shape == (27, 50, 16)  # 1 s: 100 mel frames → L = 50 → floor(50/2) + 2 video frames

    # The development U-Net's spatial attention runs 2 heads (the manifest's config, not the fixtures' 8).
    spatial = [m for m in models.unet.modules() if type(m) is Attention]  # not the motion modules' subclass
    assert spatial and {m.heads for m in spatial} == {2}

    frames = torch.rand(4, 3, 64, 64) * 2 - 1
    latents = models.vae.encode(frames, generator=torch.Generator().manual_seed(0))
    assert latents.shape == (4, 4, 8, 8)
    sample = torch.randn(1, 13, 4, 8, 8)
    with torch.no_grad():
        eps = models.unet(sample, torch.tensor(951), audio[:4])
    assert eps.shape == (1, 4, 4, 8, 8) and torch.isfinite(eps).all()
    assert models.vae.decode(latents).shape == (4, 3, 64, 64)


def test_loading_is_strict_without_the_tiny_marker(tiny_dir: Path, tmp_path: Path) -> None:
    # Same files, no manifest: the official 1.6 config applies and the tiny checkpoint must be refused.
    shutil.copytree(tiny_dir, tmp_path / "w")
    (tmp_path / "w" / "latentsync-1.6" / MANIFEST_NAME).unlink()
    with pytest.raises(WeightsError):
        load_engine_models(WeightsLayout(tmp_path / "w", "1.6"), "cpu")


# ---------------------------------------------------------------------------------------------- download


def test_download_fetches_pinned_revisions_and_verifies(
    hub_mirror: tuple[Path, tuple[HubFile, ...]], tmp_path: Path
) -> None:
    root, files = hub_mirror
    hub = FakeHub(root)
    log: list[str] = []
    layout = download_weights("1.6", tmp_path / "w", hub=hub, files=files, log=log.append)

    assert hub.calls == [(f.repo_id, f.filename, f.revision) for f in files]
    assert {c[2] for c in hub.calls} == {RELEASES["1.6"].revision, VAE.revision, FACE_MODELS.revision}
    layout.check(face_models=True)
    for item in files:
        assert _sha256(layout.root / item.target) == item.sha256
    assert not (layout.root / ".download").exists()
    manifest = layout.read_manifest()
    assert manifest is not None and manifest["kind"] == "official"
    assert len(manifest["files"]) == len(files)
    assert verify_weights(layout, face_models=True) == sorted(f.target for f in files)
    assert any("download" in line for line in log)

    # A second run finds every file present and verified: no hub traffic.
    again = FakeHub(root)
    download_weights("1.6", tmp_path / "w", hub=again, files=files)
    assert again.calls == []


def test_download_rejects_a_corrupted_file(
    hub_mirror: tuple[Path, tuple[HubFile, ...]], tmp_path: Path
) -> None:
    root, files = hub_mirror

    def flip_one_byte(data: bytes) -> bytes:
        return data[:100] + bytes([data[100] ^ 0xFF]) + data[101:]

    hub = FakeHub(root, corrupt={"whisper/tiny.pt": flip_one_byte})
    with pytest.raises(
        WeightsError, match=r"checksum mismatch for ByteDance/LatentSync-1\.6/whisper/tiny\.pt"
    ) as info:
        download_weights("1.6", tmp_path / "w", hub=hub, files=files)
    assert "sha256" in str(info.value)
    layout = WeightsLayout(tmp_path / "w", "1.6")
    assert not layout.whisper_path.exists()  # nothing unverified reaches its final path
    assert not list((tmp_path / "w" / ".download").rglob("tiny.pt"))  # the bad download is deleted


def test_download_rejects_a_truncated_file(
    hub_mirror: tuple[Path, tuple[HubFile, ...]], tmp_path: Path
) -> None:
    root, files = hub_mirror
    hub = FakeHub(root, corrupt={"latentsync_unet.pt": lambda data: data[: len(data) // 2]})
    with pytest.raises(WeightsError, match="size"):
        download_weights("1.6", tmp_path / "w", hub=hub, files=files)


def test_download_replaces_a_corrupted_existing_file(
    hub_mirror: tuple[Path, tuple[HubFile, ...]], tmp_path: Path
) -> None:
    root, files = hub_mirror
    layout = download_weights("1.6", tmp_path / "w", hub=FakeHub(root), files=files)
    layout.whisper_path.write_bytes(b"bit rot")
    with pytest.raises(WeightsError, match=r"whisper/tiny\.pt"):
        verify_weights(layout)
    hub = FakeHub(root)
    download_weights("1.6", tmp_path / "w", hub=hub, files=files)
    assert [c[1] for c in hub.calls] == ["whisper/tiny.pt"]
    verify_weights(layout)


def test_unreachable_hub_is_a_clear_weights_error(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="cannot reach the Hugging Face hub") as info:
        download_weights("1.6", tmp_path / "w", hub=UnreachableHub())
    assert "ByteDance/LatentSync-1.6/latentsync_unet.pt" in str(info.value)
    assert isinstance(info.value.__cause__, LocalEntryNotFoundError)
    assert info.value.exit_code == 5


def test_other_connection_failures_are_reported_too(tmp_path: Path) -> None:
    def refused(repo_id: str, filename: str, *, revision: str, local_dir: str) -> str:
        raise ConnectionRefusedError(111, "Connection refused")

    with pytest.raises(WeightsError, match="cannot reach the Hugging Face hub"):
        download_weights("1.5", tmp_path / "w", hub=refused)


def test_bugs_in_the_hub_client_are_not_disguised(tmp_path: Path) -> None:
    def broken(repo_id: str, filename: str, *, revision: str, local_dir: str) -> str:
        raise TypeError("unexpected keyword")

    with pytest.raises(TypeError):
        download_weights("1.6", tmp_path / "w", hub=broken)


def test_downloaded_official_layout_goes_through_the_same_strict_loader(
    hub_mirror: tuple[Path, tuple[HubFile, ...]], tmp_path: Path
) -> None:
    # The fake hub served tiny files under official names: loaded as official 1.6 weights (full-size config)
    # they must be refused, not half-loaded (proof that downloaded weights take the checked path).
    root, files = hub_mirror
    layout = download_weights(
        "1.6", tmp_path / "w", hub=FakeHub(root), files=files, include_face_models=False
    )
    assert not layout.is_tiny
    with pytest.raises(WeightsError, match="384"):
        load_engine_models(layout, "cpu")
