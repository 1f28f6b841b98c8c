"""``modal_app`` offline: it imports without an account, and its functions carry the configured GPUs,
timeouts, retries, scaling, volumes, secrets and snapshot flags, read back from what Modal would deploy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement

import modal_app
from lipsync.modal_settings import DEFAULT_GPUS, ModalSettings

ROOT = Path(__file__).resolve().parents[2]


def deploy_definition(fn: Any) -> dict[str, Any]:
    """The values ``modal deploy`` sends for *fn* (its FunctionCreate request is built from them).

    modal 1.6 keeps them in the closure of the (not yet run) loader of the function; ``Function.info()``
    exposes GPUs, timeouts, retries count, volumes, secrets and concurrency but not the autoscaler, the
    retry backoff or the snapshot flag, so those are read here. If a modal upgrade moves them, this fails
    loudly (pyproject pins modal < 2).
    """
    from modal._utils.async_utils import synchronizer

    load = synchronizer._translate_in(fn)._load
    return dict(
        zip(load.__code__.co_freevars, (cell.cell_contents for cell in load.__closure__), strict=True)
    )


def gpu_service() -> Any:
    return modal_app.LipSyncWorker._get_class_service_function()


def test_the_gpu_class_is_configured_from_the_settings() -> None:
    s = modal_app.settings
    info = modal_app.LipSyncWorker().run_job.info()
    assert [gpu for gpu, count in info.gpus] == [g.upper() for g in s.gpus] and {c for _, c in info.gpus} == {
        1
    }
    assert (info.timeout, info.startup_timeout, info.max_retries) == (
        s.gpu_timeout_s,
        s.gpu_startup_timeout_s,
        s.gpu_retries,
    )
    assert (info.cpu, info.memory_mib) == (s.gpu_cpu, s.gpu_memory_mib)
    assert {path: (v.name, v.read_only) for path, v in info.volumes.items()} == {
        s.weights_mount: (s.weights_volume, True),
        s.data_mount: (s.data_volume, False),
    }
    assert info.secrets == [f"modal.Secret.from_name({s.secret_name!r})"]
    assert info.method_names == ["run_job"] and info.concurrency_info is None  # one job per container

    definition = deploy_definition(gpu_service())
    scaling = definition["autoscaler_settings"]
    assert (scaling.max_containers, scaling.min_containers, scaling.scaledown_window) == (
        s.gpu_max_containers,
        s.gpu_min_containers,
        s.gpu_scaledown_window_s,
    )
    retry = definition["retry_policy"]
    assert (retry.retries, retry.backoff_coefficient, retry.initial_delay_ms, retry.max_delay_ms) == (
        s.gpu_retries,
        s.retry_backoff,
        round(s.retry_initial_delay_s * 1000),
        round(s.retry_max_delay_s * 1000),
    )
    assert definition["enable_memory_snapshot"] is s.memory_snapshot
    assert "enable_gpu_snapshot" not in definition["experimental_options"]  # GPU snapshots stay off


def test_the_api_function_is_a_concurrent_asgi_app_on_a_cpu() -> None:
    s = modal_app.settings
    info = modal_app.api.info()
    assert info.gpus == [] and info.web_info is not None
    assert info.concurrency_info is not None and info.concurrency_info.max_inputs == s.api_max_inputs
    assert (info.timeout, info.cpu, info.memory_mib) == (s.api_timeout_s, s.api_cpu, s.api_memory_mib)
    assert {p: v.name for p, v in info.volumes.items()} == {s.data_mount: s.data_volume}
    assert info.secrets == [f"modal.Secret.from_name({s.secret_name!r})"]
    definition = deploy_definition(modal_app.api)
    scaling = definition["autoscaler_settings"]
    assert (scaling.max_containers, scaling.min_containers, scaling.scaledown_window) == (
        s.api_max_containers,
        s.api_min_containers,
        s.api_scaledown_window_s,
    )
    assert definition["enable_memory_snapshot"] is s.memory_snapshot
    assert definition["retry_policy"] is None  # web functions are not retried; clients retry


def test_weights_and_sweep_functions() -> None:
    s = modal_app.settings
    download = modal_app.download_weights.info()
    assert {p: (v.name, v.read_only) for p, v in download.volumes.items()} == {
        s.weights_mount: (s.weights_volume, False)
    }
    assert download.gpus == [] and download.timeout == s.download_timeout_s
    sweep = modal_app.sweep_jobs.info()
    assert sweep.schedule == f"Period(minutes={s.sweep_minutes})"


def test_the_defaults_are_the_documented_fallback_list() -> None:
    assert ModalSettings().gpus == list(DEFAULT_GPUS) == ["L40S", "A100-80GB"]


def _probe(env: dict[str, str]) -> dict[str, Any]:
    """Import modal_app in a fresh interpreter with *env* and report what it would deploy."""
    code = textwrap.dedent(
        """
        import json, modal_app
        from tests.modal.test_modal_app import deploy_definition
        info = modal_app.LipSyncWorker().run_job.info()
        d = deploy_definition(modal_app.LipSyncWorker._get_class_service_function())
        api = modal_app.api.info()
        print(json.dumps({
            "gpus": [g for g, _ in info.gpus], "timeout": info.timeout, "retries": info.max_retries,
            "max_containers": d["autoscaler_settings"].max_containers,
            "scaledown": d["autoscaler_settings"].scaledown_window,
            "snapshot": d["enable_memory_snapshot"], "api_max_inputs": api.concurrency_info.max_inputs,
            "image_env": modal_app.settings.as_env()["LIPSYNC_MODAL_GPUS"],
            "schedule": modal_app.sweep_jobs.info().schedule,
        }))
        """
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LIPSYNC_MODAL_")}
    out = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_environment_variables_drive_the_deployment() -> None:
    got = _probe(
        {
            "LIPSYNC_MODAL_GPUS": "H100, A100-40GB",
            "LIPSYNC_MODAL_GPU_TIMEOUT_S": "7200",
            "LIPSYNC_MODAL_GPU_RETRIES": "4",
            "LIPSYNC_MODAL_GPU_MAX_CONTAINERS": "3",
            "LIPSYNC_MODAL_GPU_SCALEDOWN_WINDOW_S": "60",
            "LIPSYNC_MODAL_MEMORY_SNAPSHOT": "true",
            "LIPSYNC_MODAL_API_MAX_INPUTS": "50",
            "LIPSYNC_MODAL_SWEEP_MINUTES": "0",
        }
    )
    assert got == {
        "gpus": ["H100", "A100-40GB"],
        "timeout": 7200,
        "retries": 4,
        "max_containers": 3,
        "scaledown": 60,
        "snapshot": True,
        "api_max_inputs": 50,
        "image_env": "H100,A100-40GB",
        "schedule": None,
    }


def test_bad_settings_fail_at_import() -> None:
    with pytest.raises(ValueError, match="at least one GPU"):
        ModalSettings(gpus="")
    with pytest.raises(ValueError):
        ModalSettings(gpu_scaledown_window_s=1)  # Modal's minimum is 2
    with pytest.raises(ValueError):
        ModalSettings(retry_max_delay_s=90)  # Modal caps retry delays at 60 s


def test_image_pins_are_within_pyproject_ranges() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared: dict[str, list[Requirement]] = {}
    specs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        specs.extend(extra)
    for spec in specs:
        req = Requirement(spec)
        declared.setdefault(req.name.lower().replace("_", "-"), []).append(req)
    checked = 0
    for pin in modal_app.GPU_PACKAGES:
        name, version = pin.split("==")
        key = name.lower().replace("_", "-")
        if key == "onnxruntime-gpu":
            key = "onnxruntime"  # the CUDA build of the declared package
        for req in declared.get(key, []):
            assert req.specifier.contains(version, prereleases=True), f"{pin} is outside {req}"
            checked += 1
    assert checked >= 10
    assert set(modal_app.API_PACKAGES) <= set(modal_app.GPU_PACKAGES)
    assert all("==" in pin for pin in modal_app.GPU_PACKAGES)


_IMPORT_STRICT = "import warnings; warnings.simplefilter('error'); import {module}"


def _import_strict(module: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _IMPORT_STRICT.format(module=module)],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_no_deprecated_modal_name_is_used() -> None:
    """Importing the app with every warning an error: any modal DeprecationError (a UserWarning) fails."""
    result = _import_strict("modal_app", ROOT)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "decoration",
    [
        "@app.function(keep_warm=1)",
        "@app.function(container_idle_timeout=60)",
        "@app.function(allow_concurrent_inputs=10)",
    ],
)
def test_the_deprecation_check_catches_deprecated_names(tmp_path: Path, decoration: str) -> None:
    """The same check on an app that uses a deprecated name fails (so the test above can fail)."""
    (tmp_path / "old_app.py").write_text(
        f"import modal\napp = modal.App('old')\n{decoration}\ndef f() -> None:\n    pass\n"
    )
    result = _import_strict("old_app", tmp_path)
    assert result.returncode != 0 and "DeprecationError" in result.stderr
