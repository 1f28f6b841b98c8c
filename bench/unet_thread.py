"""One tiny U-Net call (CFG batch, 16 frames, 256 px) on the main thread and on a worker thread: wall and CPU.

    .venv/bin/python bench/unet_thread.py WEIGHTS_DIR    (``lipsync weights tiny WEIGHTS_DIR`` writes them)

Issue 18 saw the same call at the same OpenMP thread count cost ~2x the CPU time on the main thread at load
average 5-6; on an idle machine the two cost the same (bench/RESULTS.md): run it before blaming a thread.
"""

from __future__ import annotations

import os
import resource
import sys
import threading
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lipsync.engine.weights import WeightsLayout, load_engine_models


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    models = load_engine_models(WeightsLayout(Path(sys.argv[1]), "1.5"), "cpu", "fp32")
    cfg = models.unet_config
    latent = cfg.resolution // models.vae.downsample_factor
    sample = torch.randn(2, cfg.in_channels, 16, latent, latent)
    context = torch.randn(32, 50, cfg.cross_attention_dim)

    def call(where: str) -> None:
        with torch.no_grad():
            wall, cpu = time.perf_counter(), cpu_s()
            models.unet(sample, torch.tensor(951), context)
            wall, cpu = time.perf_counter() - wall, cpu_s() - cpu
        print(
            f"{where}: {torch.get_num_threads()} threads, wall {wall:.1f} s, CPU {cpu:.1f} s, "
            f"load average {os.getloadavg()[0]:.1f}",
            flush=True,
        )

    def worker() -> None:
        torch.get_num_threads()  # torch's lazy per-thread init first (see lipsync/pipeline/staged.py)
        torch.set_num_threads(2)
        call("worker thread")
        torch.set_num_threads(1)
        call("worker thread")

    torch.set_num_threads(2)
    call("main thread (first call)")
    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    torch.set_num_threads(2)
    call("main thread")


if __name__ == "__main__":
    main()
