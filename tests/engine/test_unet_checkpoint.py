"""Strict checkpoint loading and the full-size state-dict layout (fixtures README §1, §2)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from lipsync.engine.releases import unet_config_for
from lipsync.engine.unet import LatentSyncUNet, UNetConfig, load_unet
from lipsync.errors import WeightsError


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Tiny models are thousands of small ops: on a shared 2-core box, a second OpenMP thread mostly waits at
    barriers (tests ran 10x slower under load). One thread is faster and keeps CI times stable."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _read_manifest(path: Path) -> tuple[list[tuple[str, tuple[int, ...]]], dict[str, int]]:
    rows: list[tuple[str, tuple[int, ...]]] = []
    totals: dict[str, int] = {}
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("#"):
                name, value = line[1:].strip().split("\t")[:2]
                totals[name] = int(value.split()[0])
                continue
            key, shape, dtype = line.rstrip("\n").split("\t")
            assert dtype == "torch.float32"
            rows.append((key, tuple(int(x) for x in shape.strip("()").split(",") if x.strip())))
    return rows, totals


@pytest.fixture(scope="module")
def tiny_dir(fixtures_dir: Path) -> Path:
    return fixtures_dir / "unet_tiny"


@pytest.fixture(scope="module")
def tiny_state(tiny_dir: Path) -> dict[str, torch.Tensor]:
    ckpt = torch.load(tiny_dir / "latentsync_unet.pt", map_location="cpu", weights_only=True)
    return ckpt["state_dict"]


@pytest.mark.parametrize("version", ["1.5", "1.6"])
def test_full_size_layout_equals_the_manifest(fixtures_dir: Path, version: str) -> None:
    rows, totals = _read_manifest(fixtures_dir / "unet_full_manifest.tsv")
    with torch.device("meta"):
        model = LatentSyncUNet(unet_config_for(version))
    state = model.state_dict()
    # Same keys, same order, same shapes.
    assert [(k, tuple(v.shape)) for k, v in state.items()] == rows
    assert len(state) == totals["num_state_dict_keys"] == 1246
    assert (
        sum(v.numel() for v in state.values())
        == totals["total_state_dict_elements(params+persistent_buffers)"]
    )
    assert sum(p.numel() for p in model.parameters()) == totals["total_parameters"]


def test_versions_share_the_network_and_differ_in_resolution() -> None:
    v15, v16 = unet_config_for("1.5"), unet_config_for("1.6")
    assert (v15.resolution, v16.resolution) == (256, 512)
    assert (v15.latent_size, v16.latent_size) == (32, 64)
    with pytest.raises(ValueError, match="unknown LatentSync version"):
        unet_config_for("1.0")


def test_tiny_config_matches_the_fixture_json(tiny_dir: Path, tmp_path: Path) -> None:
    cfg = UNetConfig.from_json(tiny_dir / "config.json")
    assert cfg == UNetConfig.tiny()
    cfg.to_json(tmp_path / "config.json")
    assert UNetConfig.from_json(tmp_path / "config.json") == cfg


def test_unsupported_config_values_are_refused() -> None:
    with pytest.raises(ValueError, match="resnet_time_scale_shift"):
        UNetConfig.from_dict({"resnet_time_scale_shift": "scale_shift"})
    with pytest.raises(ValueError, match="unknown UNet config keys"):
        UNetConfig.from_dict({"no_such_key": 1})


def test_official_format_file_loads_bit_identically(
    tiny_dir: Path, tiny_state: dict[str, torch.Tensor]
) -> None:
    model = load_unet(tiny_dir / "latentsync_unet.pt", tiny_dir / "config.json")
    assert not model.training
    loaded = model.state_dict()
    assert list(loaded) == list(tiny_state)
    for key, value in tiny_state.items():
        assert torch.equal(loaded[key], value), key
    assert all(not p.requires_grad for p in model.parameters())
    assert all(not t.is_meta for t in [*model.parameters(), *model.buffers()])


def test_state_dict_is_assigned_not_copied(tiny_state: dict[str, torch.Tensor]) -> None:
    """Peak memory: loading must not hold a second copy of the weights."""
    state = {k: v.clone() for k, v in tiny_state.items()}
    pointers = {k: v.data_ptr() for k, v in state.items()}
    model = load_unet(state, UNetConfig.tiny())
    assert {k: v.data_ptr() for k, v in model.state_dict().items()} == pointers


def test_dtype_conversion(tiny_state: dict[str, torch.Tensor]) -> None:
    model = load_unet(tiny_state, UNetConfig.tiny(), dtype=torch.bfloat16)
    assert {t.dtype for t in model.state_dict().values()} == {torch.bfloat16}


def test_bare_state_dict_file_and_safetensors(tiny_state: dict[str, torch.Tensor], tmp_path: Path) -> None:
    from safetensors.torch import save_file

    torch.save(tiny_state, tmp_path / "bare.pt")
    save_file(tiny_state, tmp_path / "unet.safetensors")
    for path in (tmp_path / "bare.pt", tmp_path / "unet.safetensors"):
        model = load_unet(path, UNetConfig.tiny())
        assert torch.equal(model.conv_in.weight, tiny_state["conv_in.weight"])


MOTION_KEY = "up_blocks.3.motion_modules.2.temporal_transformer.proj_out.weight"


def _save(state: dict[str, torch.Tensor], path: Path) -> Path:
    torch.save({"global_step": 7, "state_dict": state}, path)
    return path


def test_missing_key_is_named(tiny_state: dict[str, torch.Tensor], tmp_path: Path) -> None:
    state = dict(tiny_state)
    del state[MOTION_KEY]
    with pytest.raises(WeightsError, match=re.escape(f"1 missing key(s): {MOTION_KEY}")):
        load_unet(_save(state, tmp_path / "ckpt.pt"), UNetConfig.tiny())


def test_extra_key_is_named(tiny_state: dict[str, torch.Tensor], tmp_path: Path) -> None:
    state = {**tiny_state, "down_blocks.0.audio_cross_attn.norm.weight": torch.ones(32)}
    with pytest.raises(
        WeightsError, match=r"1 unexpected key\(s\): down_blocks\.0\.audio_cross_attn\.norm\.weight"
    ):
        load_unet(_save(state, tmp_path / "ckpt.pt"), UNetConfig.tiny())


def test_wrong_shape_is_named(tiny_state: dict[str, torch.Tensor], tmp_path: Path) -> None:
    key = "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight"
    state = {**tiny_state, key: torch.zeros(32, 768)}  # an SD-1.5 text width instead of the audio width
    pattern = re.escape(f"1 wrong shape(s): {key} (expected (32, 16), got (32, 768))")
    with pytest.raises(WeightsError, match=pattern):
        load_unet(_save(state, tmp_path / "ckpt.pt"), UNetConfig.tiny())


def test_wrong_version_layout_lists_all_problems(tiny_state: dict[str, torch.Tensor]) -> None:
    """A 1.0-style checkpoint (no motion modules) is refused, not half-loaded as the reference does."""
    state = {k: v for k, v in tiny_state.items() if "motion_modules" not in k}
    with pytest.raises(WeightsError, match=r"missing key\(s\).*and \d+ more"):
        load_unet(state, UNetConfig.tiny())


def test_unreadable_or_absent_files(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="not found"):
        load_unet(tmp_path / "absent.pt", UNetConfig.tiny())
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="not a readable torch checkpoint"):
        load_unet(tmp_path / "junk.pt", UNetConfig.tiny())
    torch.save({"global_step": 0, "weights": [1, 2]}, tmp_path / "odd.pt")
    with pytest.raises(WeightsError, match="entries that are not named tensors"):
        load_unet(tmp_path / "odd.pt", UNetConfig.tiny())


@pytest.mark.parametrize("version", ["1.5", "1.6"])
def test_full_size_strict_check_names_each_bad_key(version: str) -> None:
    """The strict check runs before any tensor is touched, so meta tensors exercise the full-size layout."""
    with torch.device("meta"):
        good = LatentSyncUNet(unet_config_for(version)).state_dict()
    key = "mid_block.attentions.0.transformer_blocks.0.attn2.to_v.weight"
    broken = {k: v for k, v in good.items() if k != MOTION_KEY}
    broken["module.conv_in.weight"] = good["conv_in.weight"]
    broken[key] = torch.empty(1280, 768, device="meta")
    with pytest.raises(WeightsError) as info:
        load_unet(broken, version)
    message = str(info.value)
    assert f"1 missing key(s): {MOTION_KEY}" in message
    assert "1 unexpected key(s): module.conv_in.weight" in message
    assert f"1 wrong shape(s): {key} (expected (1280, 384), got (1280, 768))" in message
