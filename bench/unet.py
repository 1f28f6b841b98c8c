"""Benchmark the full-size LatentSync U-Net: forward time and peak memory while loading and running.

    nice .venv/bin/python bench/unet.py                       # CPU fp32, batch 2 (CFG), 16 frames, 32×32 latents
    .venv/bin/python bench/unet.py --device cuda --dtype bf16 --repeats 5
    .venv/bin/python bench/unet.py --checkpoint checkpoints/latentsync_unet.pt   # a real (or kept) checkpoint

Steps: (1) unless ``--checkpoint`` is given, a child process writes a random full-size checkpoint in the
official format (``{"global_step", "state_dict"}``, 1,246 fp32 tensors, ~5.07 GB) to a temporary file;
(2) a *fresh* child process loads it with :func:`lipsync.engine.unet.load_unet` and runs the forwards, so its
peak RSS (``ru_maxrss``) covers exactly our loading and running. Reference on the 2-core dev box: ~55 s per
forward, peak RSS ~6.6 GB (LATENTSYNC.md §9.3). FLOP utilisation uses ``fixtures/flops.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without installing
FLOPS_JSON = REPO.parent / "shared" / "reference" / "fixtures" / "flops.json"
GIB = 1024**3


def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def _current_rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _config(version: str):
    from lipsync.engine.releases import unet_config_for
    from lipsync.engine.unet import UNetConfig

    return UNetConfig.tiny() if version == "tiny" else unet_config_for(version)


def write_random_checkpoint(path: Path, version: str, seed: int) -> None:
    """Random weights in the fixtures' scheme (README: N(0, 1/fan_in), norms 1+0.1·N, biases 0.1·N)."""
    import torch

    from lipsync.engine.motion import PositionalEncoding
    from lipsync.engine.unet import LatentSyncUNet

    with torch.device("meta"):
        shapes = {k: v.shape for k, v in LatentSyncUNet(_config(version)).state_dict().items()}
    g = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    for key, shape in shapes.items():
        if key.endswith(".pe"):
            state[key] = PositionalEncoding(shape[-1], shape[1]).pe
        elif len(shape) >= 2:
            state[key] = torch.randn(shape, generator=g) / math.sqrt(math.prod(shape[1:]))
        elif key.endswith(".weight"):
            state[key] = 1 + 0.1 * torch.randn(shape, generator=g)
        else:
            state[key] = 0.1 * torch.randn(shape, generator=g)
    torch.save({"global_step": 0, "state_dict": state}, path)


def run_child(args: argparse.Namespace) -> dict[str, object]:
    import torch

    from lipsync.engine.deepcache import DeepCacheState
    from lipsync.engine.unet import load_unet

    torch.manual_seed(0)
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[args.dtype]
    device = torch.device(args.device)
    cuda = device.type == "cuda"

    rss_before = _current_rss_bytes()
    t0 = time.perf_counter()
    unet = load_unet(args.checkpoint, _config(args.version), device=device, dtype=dtype)
    load_s = time.perf_counter() - t0
    peak_load = _peak_rss_bytes()
    rss_after_load = _current_rss_bytes()

    b, f, s = args.batch, args.frames, args.latent
    sample = torch.randn(b, 13, f, s, s, device=device, dtype=dtype)
    audio = torch.randn(b * f, 50, unet.config.cross_attention_dim, device=device, dtype=dtype)
    timestep = torch.tensor(951)

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    times: list[float] = []
    cpu_times: list[float] = []  # process CPU time: far less sensitive than wall time to a shared machine
    with torch.no_grad():
        for i in range(args.warmup + args.repeats):
            sync()
            t, c = time.perf_counter(), time.process_time()
            unet(sample, timestep, audio)
            sync()
            if i >= args.warmup:
                times.append(time.perf_counter() - t)
                cpu_times.append(time.process_time() - c)
            print(
                f"  forward {i + 1}/{args.warmup + args.repeats}: {time.perf_counter() - t:.2f} s",
                file=sys.stderr,
            )
        cached_s = None
        if args.cached_step:
            cache = DeepCacheState(interval=3, step_index=0)
            unet(sample, timestep, audio, deep_cache=cache)  # a full step fills the cache
            cache.step_index = 1
            sync()
            t = time.perf_counter()
            unet(sample, torch.tensor(901), audio, deep_cache=cache)
            sync()
            cached_s = time.perf_counter() - t
    result: dict[str, object] = {
        "device": str(device) + (f" ({torch.cuda.get_device_name(device)})" if cuda else ""),
        "dtype": args.dtype,
        "threads": torch.get_num_threads(),
        "shape": [b, 13, f, s, s],
        "load_s": round(load_s, 2),
        "rss_before_load_gib": round(rss_before / GIB, 3),
        "peak_rss_load_gib": round(peak_load / GIB, 3),
        "rss_after_load_gib": round(rss_after_load / GIB, 3),
        "forward_s": [round(x, 3) for x in times],
        "median_forward_s": round(statistics.median(times), 3),
        "median_forward_cpu_s": round(statistics.median(cpu_times), 3),
        "deepcache_cached_step_s": None if cached_s is None else round(cached_s, 3),
        "peak_rss_run_gib": round(_peak_rss_bytes() / GIB, 3),
    }
    if cuda:
        result["peak_cuda_alloc_gib"] = round(torch.cuda.max_memory_allocated(device) / GIB, 3)
    return result


def _flops(version: str, batch: int, frames: int, latent: int) -> float | None:
    if not FLOPS_JSON.is_file() or frames != 16 or version == "tiny":
        return None
    table = json.loads(FLOPS_JSON.read_text())["unet"]
    key = f"forward_b{batch}_f16_latent{latent}_{latent * 8}px"
    return float(table[key]["flops"]) if key in table else None


def main(argv: list[str] | None = None) -> int:
    from lipsync.engine.releases import VERSIONS

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", choices=["fp32", "fp16", "bf16"], default="fp32")
    p.add_argument(
        "--version", choices=[*VERSIONS, "tiny"], default="1.5", help="tiny: a seconds-long smoke run"
    )
    p.add_argument("--batch", type=int, default=2, help="2 = one chunk with CFG")
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--latent", type=int, default=32, help="latent side: 32 (256 px) or 64 (512 px)")
    p.add_argument("--repeats", type=int, default=2, help="timed forwards (CPU fp32 takes ~55 s each)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    p.add_argument(
        "--no-cached-step", dest="cached_step", action="store_false", help="skip the DeepCache step"
    )
    p.add_argument("--checkpoint", type=Path, help="use this latentsync_unet.pt instead of a random one")
    p.add_argument("--keep", type=Path, help="write the random checkpoint here and keep it")
    p.add_argument("--json", action="store_true", help="print the result as JSON only")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--write-only", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.write_only:
        write_random_checkpoint(args.write_only, args.version, seed=0)
        return 0
    if args.child:
        print(json.dumps(run_child(args)))
        return 0

    passthrough = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--json"]
    with tempfile.TemporaryDirectory(prefix="unet-bench-") as tmp:
        ckpt = args.checkpoint
        if ckpt is None:
            ckpt = args.keep or Path(tmp) / "latentsync_unet.pt"
            if not ckpt.is_file():
                print(f"writing a random full-size checkpoint to {ckpt} …", file=sys.stderr)
                t = time.perf_counter()
                subprocess.run(
                    [sys.executable, __file__, "--write-only", str(ckpt), "--version", args.version],
                    check=True,
                )
                print(
                    f"  written in {time.perf_counter() - t:.0f} s, {ckpt.stat().st_size:,} bytes",
                    file=sys.stderr,
                )
        cmd = [sys.executable, __file__, "--child", *passthrough]
        if args.checkpoint is None:
            cmd += ["--checkpoint", str(ckpt)]
        out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    flops = _flops(args.version, args.batch, args.frames, args.latent)
    if flops is not None:
        result["tflops_per_forward"] = round(flops / 1e12, 3)
        result["achieved_tflops_s"] = round(flops / 1e12 / result["median_forward_s"], 3)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"LatentSync UNet {args.version}, {result['device']}, {args.dtype}, input {tuple(result['shape'])}")
    print(f"  median forward      {result['median_forward_s']:.2f} s   (runs: {result['forward_s']})")
    cpu = result["median_forward_cpu_s"]
    print(f"  median CPU time     {cpu:.2f} s   (all threads; {result['threads']} threads)")
    if result.get("deepcache_cached_step_s") is not None:
        print(f"  DeepCache cached step {result['deepcache_cached_step_s']:.2f} s")
    print(f"  load                {result['load_s']:.2f} s, peak RSS {result['peak_rss_load_gib']:.2f} GiB")
    print(f"  peak RSS running    {result['peak_rss_run_gib']:.2f} GiB")
    if "peak_cuda_alloc_gib" in result:
        print(f"  peak CUDA alloc     {result['peak_cuda_alloc_gib']:.2f} GiB")
    if "achieved_tflops_s" in result:
        print(
            f"  throughput          {result['achieved_tflops_s']:.2f} TFLOP/s ({result['tflops_per_forward']} TFLOP/forward)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
