"""The one-shot GPU benchmark (bench/gpu.sh, bench/gpu.py) stays runnable between GPU loans.

The dry run is the real script on the CPU with tiny models: every section, the forked processes, the
budgets, the carried-wheel install (when ``make gpu-wheels`` has filled ``.whl/``; CI runs it first), the
fixed face detector on the real demo clip, and the files written to ``$OUT``.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench import gpu, gpu_bundle
from bench.gpu_adapter import DEMO1_FACE
from bench.gpu_sections import ABSENT_ON_DEVICE, PLANS, SECTIONS, Recorder, sampler_flops, unet_flops
from tests.conftest import REPO_ROOT, SHARED_DIR, require_path

WHEELS = REPO_ROOT / ".whl"
#: The device tool returns at most 8 files from $OUT.
MAX_OUT_FILES = 8


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    require_path(SHARED_DIR / "media" / "demo1_video.mp4")
    out = tmp_path_factory.mktemp("gpu-out")
    wheels = WHEELS if list(WHEELS.glob("*.whl")) else tmp_path_factory.mktemp("no-wheels")
    if wheels != WHEELS and os.environ.get("CI", "").lower() == "true":
        pytest.fail("CI runs `make gpu-wheels` before the tests: .whl/ has no wheels")
    env = os.environ | {"PYTHON": sys.executable, "OUT": str(out), "LIPSYNC_GPU_WHEELS": str(wheels)}
    proc = subprocess.run(
        ["bash", str(REPO_ROOT / "bench" / "gpu.sh"), "--dry-run"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    return proc, out


def _results(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / "results.json").read_text())
    return data


def test_dry_run_measures_every_section(dry_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    proc, out = dry_run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = _results(out)
    assert results["plan"] == "dry-run"
    assert {name: s["status"] for name, s in results["sections"].items()} == dict.fromkeys(SECTIONS, "ok")
    by_section: dict[str, list[dict[str, Any]]] = {}
    for row in results["rows"]:
        by_section.setdefault(row["section"], []).append(row)
    assert set(by_section) == set(SECTIONS)
    plan = PLANS["dry-run"]
    # every precision × latent × chunk batch of the U-Net; both schedules of the sampler per size
    assert len(by_section["unet"]) == len(plan.dtypes) * len(plan.versions) * len(plan.chunk_batches)
    assert len(by_section["sampler"]) == 2 * len(plan.versions) * len(plan.chunk_batches)
    assert {r["deep_cache"] for r in by_section["sampler"]} == {True, False}
    for row in results["rows"]:
        assert row["seconds"] > 0 and row["output_s"] > 0, row
        assert math.isclose(row["gpu_s_per_output_s"], row["seconds"] / row["output_s"]), row
        assert math.isclose(row["usd_per_output_min"], row["gpu_s_per_output_s"] * 60 * 0.001097), row
        if row["section"] != "e2e":  # the tiny models are FLOP-counted on the spot
            assert row["flops"] > 0 and row["tflop_s"] > 0, row


def test_dry_run_e2e_runs_the_staged_pipeline_on_the_demo_clip(
    dry_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    _, out = dry_run
    (e2e,) = [r for r in _results(out)["rows"] if r["section"] == "e2e"]
    assert e2e["frames"] == round(PLANS["dry-run"].e2e_seconds * 25)
    # the fixed detector finds the face on every frame of the timeline (which may run a frame past the output)
    assert e2e["face_frames"] >= e2e["frames"]
    for stage in ("decode", "align", "vae_encode", "diffuse", "vae_decode", "paste", "encode"):
        assert e2e["stages_s"][stage] > 0, stage


def test_dry_run_reports_compile_time_sdpa_and_files(
    dry_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    _, out = dry_run
    results = _results(out)
    (compiled,) = [r for r in results["rows"] if r["section"] == "compile"]
    assert compiled["compile_s"] > 0
    assert any("scaled_dot_product" in op for op in results["env"]["sdpa_ops"])
    files = sorted(p.name for p in out.iterdir())
    assert files == ["profile_unet.txt", "results.json", "results.md", "run.log"]
    assert len(files) <= MAX_OUT_FILES
    table = (out / "results.md").read_text()
    for row in results["rows"]:
        assert f"| {row['section']} | {row['name']} |" in table


def test_the_benchmark_never_imports_what_the_gpu_machine_lacks(
    dry_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    _, out = dry_run
    for name, section in _results(out)["sections"].items():
        assert section["imported_absent_packages"] == [], (name, ABSENT_ON_DEVICE)


def test_the_carried_wheels_are_the_versions_the_tests_run() -> None:
    """bench/gpu-wheels.txt pins what this environment has, so the lent machine runs what CI tested."""
    pins = re.findall(r"^([\w-]+)==([\w.]+)", (REPO_ROOT / "bench" / "gpu-wheels.txt").read_text(), re.M)
    assert pins
    assert {name: importlib.metadata.version(name) for name, _ in pins} == dict(pins)


def test_the_price_is_modals_documented_h100_rate() -> None:
    doc = (REPO_ROOT / "docs" / "deploy-modal.md").read_text()
    (documented,) = re.findall(r"H100 \$([0-9.]+) per GPU-second", doc)
    assert float(documented) == gpu.MODAL_H100_USD_PER_GPU_S


def test_flop_helpers_reproduce_the_per_frame_totals_of_flops_json(fixtures_dir: Path) -> None:
    table = json.loads((fixtures_dir / "flops.json").read_text())
    for latent, px in ((32, "256px"), (64, "512px")):
        per_frame = table["per_output_frame"][px]
        assert (
            sampler_flops(table, 1, latent, 20, deep_cache=False) / 16
            == per_frame["unet_cfg_20steps_per_frame"]
        )
        assert (
            sampler_flops(table, 1, latent, 20, deep_cache=True) / 16
            == per_frame["unet_cfg_20steps_deepcache_per_frame"]
        )
        assert unet_flops(table, 2, latent) == table["unet"][f"forward_b2_f16_latent{latent}_{px}"]["flops"]


def test_demo1_face_is_mediapipes_face_on_frame_0(media_dir: Path) -> None:
    import numpy as np

    from lipsync.media.faces import create_detector
    from lipsync.media.io import iter_frames_25fps

    frame = next(iter(iter_frames_25fps(media_dir / "demo1_video.mp4", max_frames=1)))
    with create_detector("mediapipe") as detector:
        face = detector.detect(frame)
    assert face is not None
    np.testing.assert_allclose(face.points3, DEMO1_FACE["points3"], atol=1)
    np.testing.assert_allclose(face.bbox, DEMO1_FACE["bbox"], atol=1)


def test_a_section_skips_what_its_budget_cannot_fit(tmp_path: Path) -> None:
    rec = Recorder(tmp_path / "s.json", "unet", budget_s=30, out_dir=tmp_path)
    assert rec.allows("small", predicted_s=1)
    assert not rec.allows("large", predicted_s=60)
    saved = json.loads((tmp_path / "s.json").read_text())
    assert len(saved["skipped"]) == 1 and saved["skipped"][0].startswith("large: needs ~60 s")


def test_the_full_run_fits_one_device_command() -> None:
    """Sections' budgets + the grace for the last one stay under 8 minutes; the command limit is 10."""
    plan = PLANS["gpu"]
    assert set(plan.budgets) == set(SECTIONS)
    assert plan.total_budget_s + gpu.GRACE_S <= 8 * 60


def test_the_working_tree_and_carried_files_fit_what_travels() -> None:
    carried = sum(gpu_bundle.bundle_bytes(WHEELS).values()) if WHEELS.is_dir() else 0
    assert gpu_bundle.tree_bytes(REPO_ROOT) + carried <= gpu_bundle.TRAVEL_LIMIT
