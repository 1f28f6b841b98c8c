"""`lipsync weights download|tiny|verify|path` through typer's CliRunner (the hub is a fake: an edge we don't own)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

import pytest
import typer
from huggingface_hub.errors import LocalEntryNotFoundError
from typer.testing import CliRunner

from lipsync.cli import weights as weights_cli
from lipsync.engine.weights import WeightsLayout, hub_files, load_engine_models


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    app = typer.Typer()
    weights_cli.register(app)

    @app.callback()
    def _root() -> None:  # keeps `weights` a sub-command even though it is the only group here
        pass

    return app


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(scope="module")
def tiny_dir(app: typer.Typer, runner: CliRunner, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny")
    result = runner.invoke(app, ["weights", "tiny", str(out), "--version", "1.6", "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert "tiny development weights" in result.output
    return out


class FakeHub:
    """Serves ``root/<repo_id>/<filename>`` with ``hf_hub_download``'s calling convention."""

    def __init__(self, root: Path, spoil: set[str] | None = None) -> None:
        self.root = root
        self.spoil = spoil or set()
        self.calls: list[tuple[str, str, str]] = []

    def __call__(self, repo_id: str, filename: str, *, revision: str, local_dir: str) -> str:
        self.calls.append((repo_id, filename, revision))
        data = (self.root / repo_id / filename).read_bytes()
        if filename in self.spoil:
            data = b"\0" + data[1:]
        out = Path(local_dir) / filename
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
        return str(out)


@pytest.fixture(scope="module")
def mirror(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    """The pinned 1.6 list (engine files only) served from tiny files, with the tiny files' checksums."""
    root = tmp_path_factory.mktemp("hub")
    files = []
    for item in hub_files("1.6", include_face_models=False):
        served = root / item.repo_id / item.filename
        served.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tiny_dir / item.target, served)
        digest = hashlib.sha256(served.read_bytes()).hexdigest()
        files.append(dataclasses.replace(item, sha256=digest, size=served.stat().st_size))
    return root, files


def test_tiny_output_loads_through_the_engine_loader(tiny_dir: Path) -> None:
    models = load_engine_models(WeightsLayout(tiny_dir, "1.6"), "cpu")
    assert models.tiny and models.unet_config.cross_attention_dim == models.audio_encoder.hidden_size


@pytest.mark.parametrize(("version", "resolution"), [("1.5", 256), ("1.6", 512)])
def test_tiny_weights_take_the_release_resolution(
    app: typer.Typer, runner: CliRunner, tmp_path: Path, version: str, resolution: int
) -> None:
    # The tiny network is the same for every release; the face size it runs at is the release's.
    result = runner.invoke(app, ["weights", "tiny", str(tmp_path), "--version", version])
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / f"latentsync-{version}" / "lipsync-weights.json").read_text())
    assert manifest["kind"] == "tiny" and manifest["unet_config"]["resolution"] == resolution
    assert WeightsLayout(tmp_path, version).unet_config().latent_size == resolution // 8


def test_verify_and_path_on_tiny_weights(app: typer.Typer, runner: CliRunner, tiny_dir: Path) -> None:
    result = runner.invoke(app, ["weights", "verify", "--dir", str(tiny_dir)])
    assert result.exit_code == 0, result.output
    assert "4 files verified: tiny development" in result.output

    result = runner.invoke(app, ["weights", "path", "--dir", str(tiny_dir)])
    assert result.exit_code == 0, result.output
    assert f"{WeightsLayout(tiny_dir).unet_path}  [present]" in result.output
    assert "[missing]" in result.output  # no face models in tiny weights


def test_download_with_a_fake_hub(
    app: typer.Typer, runner: CliRunner, mirror: tuple[Path, list], tmp_path: Path
) -> None:
    root, files = mirror
    hub = FakeHub(root)
    result = runner.invoke(
        app,
        ["weights", "download", "--dir", str(tmp_path), "--no-face-models"],
        obj={"hf_hub_download": hub, "hub_files": files},
    )
    assert result.exit_code == 0, result.output
    assert "LatentSync 1.6 weights ready" in result.output
    assert [c[:2] for c in hub.calls] == [(f.repo_id, f.filename) for f in files]
    WeightsLayout(tmp_path, "1.6").check()
    verified = runner.invoke(app, ["weights", "verify", "--dir", str(tmp_path)])
    assert verified.exit_code == 0 and "official" in verified.output


def test_download_rejects_a_corrupted_file(
    app: typer.Typer, runner: CliRunner, mirror: tuple[Path, list], tmp_path: Path
) -> None:
    root, files = mirror
    result = runner.invoke(
        app,
        ["weights", "download", "--dir", str(tmp_path), "--no-face-models"],
        obj={"hf_hub_download": FakeHub(root, spoil={"config.json"}), "hub_files": files},
    )
    assert result.exit_code == 5  # WeightsError.exit_code
    assert "checksum mismatch for stabilityai/sd-vae-ft-mse/config.json" in result.output
    assert not (tmp_path / "sd-vae-ft-mse" / "config.json").exists()


def test_download_reports_an_unreachable_hub(app: typer.Typer, runner: CliRunner, tmp_path: Path) -> None:
    def offline(repo_id: str, filename: str, *, revision: str, local_dir: str) -> str:
        raise LocalEntryNotFoundError(
            "cannot find the requested files in the local cache; check your connection"
        )

    result = runner.invoke(
        app,
        ["weights", "download", "--dir", str(tmp_path), "--version", "1.5"],
        obj={"hf_hub_download": offline},
    )
    assert result.exit_code == 5
    assert "cannot reach the Hugging Face hub" in result.output
    assert "ByteDance/LatentSync-1.5/latentsync_unet.pt" in result.output


def test_verify_reports_missing_weights(app: typer.Typer, runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["weights", "verify", "--dir", str(tmp_path)])
    assert result.exit_code == 5
    assert "missing" in result.output and "latentsync_unet.pt" in result.output


def test_registered_in_the_real_cli(runner: CliRunner) -> None:
    from lipsync.cli import app as real_app

    result = runner.invoke(real_app, ["weights", "--help"])
    assert result.exit_code == 0, result.output
    for command in ("download", "tiny", "verify", "path"):
        assert command in result.output
