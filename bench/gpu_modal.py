"""Run the one-shot GPU benchmark (bench/gpu.py) on a Modal GPU: a developer tool, not part of the deployment.

    modal run bench/gpu_modal.py                              # H100: every section, ~8 minutes of GPU time
    modal run bench/gpu_modal.py --sections unet,sampler      # a subset
    LIPSYNC_BENCH_GPU=L40S modal run bench/gpu_modal.py       # another Modal GPU type

It runs in the deployment's own GPU image (``modal_app.gpu_image``: the same pinned torch, diffusers, PyAV),
with bench/ and the demo clip + flops.json from ../shared added, and writes results.json, results.md and
profile_unet.txt to bench/out/ here. Costs about 8 GPU-minutes (~$0.53 at Modal's H100 rate).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import modal

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # `modal run bench/gpu_modal.py` imports this file alone

import modal_app  # noqa: E402  (after the path: the deployment's pinned GPU image is the one definition)

SHARED = Path(os.environ.get("LIPSYNC_SHARED_DIR", REPO.parent / "shared"))
REMOTE_SHARED = "/root/shared"
GPU = os.environ.get("LIPSYNC_BENCH_GPU", "H100")

image = (
    modal_app.gpu_image.add_local_dir(REPO / "bench", "/root/bench", ignore=["out", "__pycache__"])
    .add_local_file(SHARED / "media" / "demo1_video.mp4", f"{REMOTE_SHARED}/media/demo1_video.mp4")
    .add_local_file(SHARED / "media" / "demo1_audio.wav", f"{REMOTE_SHARED}/media/demo1_audio.wav")
    .add_local_file(
        SHARED / "reference" / "fixtures" / "flops.json", f"{REMOTE_SHARED}/reference/fixtures/flops.json"
    )
)
app = modal.App("lipsync-gpu-bench")


@app.function(image=image, gpu=GPU, timeout=15 * 60)
def run_benchmark(sections: str) -> dict[str, str]:
    """bench/gpu.py in the container; returns its output files by name."""
    import subprocess
    import tempfile

    out = Path(tempfile.mkdtemp(prefix="gpu-bench-"))
    env = os.environ | {"LIPSYNC_SHARED_DIR": REMOTE_SHARED, "PYTHONPATH": "/root", "PYTHONUNBUFFERED": "1"}
    subset = ["--sections", sections] if sections else []  # default: every section
    subprocess.run([sys.executable, "-m", "bench.gpu", "--out", str(out), *subset], cwd="/root", env=env)
    return {p.name: p.read_text() for p in out.iterdir() if p.is_file()}


@app.local_entrypoint()
def main(sections: str = "") -> None:
    files = run_benchmark.remote(sections)
    out = REPO / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out / name).write_text(text)
    print(files.get("results.md", "no results.md came back"))
    print(f"written to {out}: {', '.join(sorted(files))}")
