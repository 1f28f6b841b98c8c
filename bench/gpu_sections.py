"""The measurements of bench/gpu.py: one function per section, each run in its own (forked) process.

A section appends rows to a :class:`Recorder`, which rewrites the section's JSON after every row, so a section
killed at its time budget still returns what it measured. A row holds what was measured (median seconds of
one unit of work, the output seconds that unit produces, its FLOPs); the derived figures (GPU-seconds per
output second, TFLOP/s, $ per output minute) are computed once, in bench/gpu.py.

FLOPs: full-size models use ``flops.json`` (counted once on the reference shapes); the tiny ``--dry-run``
models are counted on the spot with ``torch.utils.flop_counter.FlopCounterMode`` (same counting rules).
"""

from __future__ import annotations

import gc
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch

from bench import gpu_adapter as eng

FPS = 25
#: Packages the lent GPU machine does not have and the wheels do not carry: the benchmark must not import them.
ABSENT_ON_DEVICE = ("mediapipe", "kornia")


@dataclass(frozen=True)
class Plan:
    """What a run measures: full size on a GPU, or the same steps with tiny models for ``--dry-run``."""

    name: str
    tiny: bool
    device: str
    dtypes: tuple[str, ...]  # the first is the pipeline's default precision on that device
    #: (release, latent side): 1.6 at 512-px faces → 64×64 latents, 1.5 at 256 px → 32×32.
    versions: tuple[tuple[str, int], ...]
    chunk_batches: tuple[int, ...]  # chunks per U-Net call (the staged pipeline's chunk batch)
    frames: int = 16
    steps: int = 20
    guidance: float = 1.5
    warmup: int = 2
    repeats: int = 5
    sampler_repeats: int = 2
    matmul_size: int = 8192
    e2e_clip: str = "demo1"
    e2e_seconds: float = 10.0
    #: e2e runs: the cached (DeepCache) schedule first, the production target; then the exact one.
    e2e_deep_cache: tuple[bool, ...] = (True, False)
    e2e_warmup: bool = True
    compile_backend: str = "inductor"
    #: torch intra-op threads (None: torch's default). One on the shared CPU: spinning OpenMP pools on an
    #: overloaded 2-core box made tiny forwards 20x slower.
    threads: int | None = None
    #: Seconds each section may take, and the whole run (one device command is at most 10 minutes).
    budgets: dict[str, float] = field(default_factory=dict)
    total_budget_s: float = 420.0


SECTIONS = ("unet", "sampler", "vae_audio", "e2e", "compile")

PLANS = {
    "gpu": Plan(
        name="gpu",
        tiny=False,
        device="cuda",
        dtypes=("fp16", "bf16"),
        versions=(("1.6", 64), ("1.5", 32)),
        chunk_batches=(1, 4),
        budgets={"unet": 70, "sampler": 80, "vae_audio": 35, "e2e": 120, "compile": 130},
    ),
    "dry-run": Plan(
        name="dry-run",
        tiny=True,
        device="cpu",
        dtypes=("fp32",),
        versions=(("1.6", 8), ("1.5", 4)),
        chunk_batches=(1,),
        frames=4,
        steps=3,  # one full DeepCache step and two cached ones
        warmup=0,
        repeats=1,
        sampler_repeats=1,
        matmul_size=256,
        e2e_seconds=0.3,
        e2e_deep_cache=(True,),
        e2e_warmup=False,
        compile_backend="eager",  # dynamo's graph capture without inductor's C++ build
        threads=1,
        # Generous: the dry run checks the plumbing, and CI's 2 cores may be shared.
        budgets={"unet": 150, "sampler": 150, "vae_audio": 150, "e2e": 200, "compile": 200},
        total_budget_s=900.0,
    ),
}


# --- recording -------------------------------------------------------------------------------------------------


class Recorder:
    """Collects one section's rows, notes and skips; rewrites ``path`` after every change."""

    def __init__(self, path: Path, section: str, budget_s: float, out_dir: Path) -> None:
        self.path, self.section, self.out_dir = path, section, out_dir
        self.deadline = time.monotonic() + budget_s
        self.data: dict[str, Any] = {"section": section, "rows": [], "notes": [], "skipped": [], "env": {}}

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def allows(self, what: str, predicted_s: float) -> bool:
        """Whether ``what`` (predicted to take ``predicted_s``) fits the budget; records a skip if not."""
        if predicted_s < self.left():
            return True
        self.data["skipped"].append(f"{what}: needs ~{predicted_s:.0f} s, {max(self.left(), 0):.0f} s left")
        self.save()
        return False

    def add(
        self, name: str, seconds: list[float], *, output_s: float, flops: float | None, **extra: Any
    ) -> None:
        row = {
            "section": self.section,
            "name": name,
            "seconds": statistics.median(seconds),
            "runs_s": [round(s, 5) for s in seconds],
            "output_s": output_s,
            "flops": flops,
            **extra,
        }
        self.data["rows"].append(row)
        print(f"  {name}: {row['seconds'] * 1000:.1f} ms", file=sys.stderr, flush=True)
        self.save()

    def note(self, text: str) -> None:
        self.data["notes"].append(text)
        self.save()

    def save(self) -> None:
        self.data["imported_absent_packages"] = [m for m in ABSENT_ON_DEVICE if m in sys.modules]
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1, default=str))
        os.replace(tmp, self.path)


def environment(device: torch.device) -> dict[str, Any]:
    import importlib.metadata as md

    def version(name: str) -> str | None:
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            return None

    env: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "packages": {n: version(n) for n in ("diffusers", "transformers", "av", "numpy", "huggingface-hub")},
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg(),
        "device_type": device.type,
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env |= {
            "card": props.name,
            "gpu_memory_gib": round(props.total_memory / 2**30, 1),
            "multiprocessors": props.multi_processor_count,
            "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(),
        }
    else:
        env["card"] = f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"
    return env


# --- timing and FLOPs ------------------------------------------------------------------------------------------


def timed(fn: Callable[[], object], device: torch.device, *, warmup: int, repeats: int) -> list[float]:
    """Seconds per call, after ``warmup`` calls: CUDA events around each call on a GPU, else a host clock."""
    with torch.inference_mode():
        for _ in range(warmup):
            fn()
        times = []
        for _ in range(repeats):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                fn()
                end.record()
                end.synchronize()
                times.append(start.elapsed_time(end) / 1000)
            else:
                t = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t)
    return times


def counted_flops(fn: Callable[[], object]) -> float:
    """FLOPs of one call as flops.json counts them (matmul/conv/attention; 2 per multiply-accumulate)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


def unet_flops(table: dict[str, Any], batch: int, latent: int) -> float:
    """One full U-Net forward of ``batch`` 16-frame clips (flops.json counts are linear in the batch)."""
    return float(table["unet"][f"forward_b1_f16_latent{latent}_{latent * 8}px"]["flops"]) * batch


def sampler_flops(table: dict[str, Any], chunks: int, latent: int, steps: int, deep_cache: bool) -> float:
    """U-Net FLOPs of a CFG sampler run over ``chunks`` 16-frame chunks (DeepCache: full every 3rd step)."""
    per_chunk = table["unet"][
        f"deepcache_steps_b2_f16_latent{latent}_{latent * 8}px"
    ]  # batch 2 = one CFG chunk
    full, cached = float(per_chunk[0]), float(per_chunk[1])
    return chunks * sum(full if (not deep_cache or i % 3 == 0) else cached for i in range(steps))


def matmul_ceiling(device: torch.device, dtype: torch.dtype, n: int) -> float:
    """Measured TFLOP/s of an n×n×n matrix product on random data (METHOD.md: use measured ceilings)."""
    g = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn((n, n), generator=g).to(device, dtype)
    b = torch.randn((n, n), generator=g).to(device, dtype)
    times = timed(lambda: a @ b, device, warmup=2, repeats=5)
    return 2 * n**3 / statistics.median(times) / 1e12


def release(*objects: object) -> None:
    del objects
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# --- sections --------------------------------------------------------------------------------------------------


def section_unet(rec: Recorder, plan: Plan, device: torch.device) -> None:
    """Full U-Net forwards (batch = CFG × chunk batch) per precision and latent size; SDPA kernels used."""
    table = None if plan.tiny else eng.flops_table()
    rec.data["env"]["matmul_tflops"] = {
        d: round(matmul_ceiling(device, eng.select_dtype(device, d), plan.matmul_size), 1)
        for d in plan.dtypes
    }
    predicted = 10.0
    for dtype in plan.dtypes:
        models = eng.random_models(plan.versions[0][0], plan.device, dtype, tiny=plan.tiny)
        unet = models.unet
        for version, latent in plan.versions:
            for k in plan.chunk_batches:
                name = f"unet {version} {latent}x{latent} {dtype} eager b{2 * k}"
                if not rec.allows(name, predicted):
                    continue
                forward = partial(unet, *eng.unet_inputs(unet, 2 * k, plan.frames, latent))
                started = time.monotonic()
                seconds = timed(forward, device, warmup=plan.warmup, repeats=plan.repeats)
                predicted = (time.monotonic() - started) * 1.5
                record_forward(rec, plan, table, name, seconds, forward, version, dtype, latent, k, "eager")
        if dtype == plan.dtypes[0]:
            sdpa_profile(rec, unet, device, plan)
        release(models, unet)


def record_forward(
    rec: Recorder,
    plan: Plan,
    table: dict[str, Any] | None,
    name: str,
    seconds: list[float],
    forward: Callable[[], object],
    version: str,
    dtype: str,
    latent: int,
    k: int,
    mode: str,
    **extra: Any,
) -> None:
    """A U-Net forward row at batch 2k (CFG × k chunks). A 20-step exact run calls the forward ``steps``
    times for k chunks of ``frames`` frames: that is the output one forward stands for."""
    flops = counted_flops(forward) if table is None else unet_flops(table, 2 * k, latent)
    output_s = k * plan.frames / FPS / plan.steps
    rec.add(
        name,
        seconds,
        output_s=output_s,
        flops=flops,
        version=version,
        dtype=dtype,
        mode=mode,
        batch=2 * k,
        **extra,
    )


def sdpa_profile(rec: Recorder, unet: Any, device: torch.device, plan: Plan) -> None:
    """Profile one forward: which SDPA kernels ran, and the top ops by device time (profile_unet.txt)."""
    from torch.profiler import ProfilerActivity, profile

    version, latent = plan.versions[0]
    inputs = eng.unet_inputs(unet, 2, plan.frames, latent)
    cuda = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with torch.inference_mode():
        unet(*inputs)
        with profile(activities=activities) as prof:
            unet(*inputs)
            if cuda:
                torch.cuda.synchronize(device)
    averages = prof.key_averages()
    keys = ("scaled_dot_product", "flash", "efficient_attention", "cudnn_attention", "fmha", "sdpa")
    rec.data["env"]["sdpa_ops"] = sorted({e.key for e in averages if any(k in e.key.lower() for k in keys)})
    rec.data["env"]["sdpa_flags"] = {
        "flash": torch.backends.cuda.flash_sdp_enabled(),
        "mem_efficient": torch.backends.cuda.mem_efficient_sdp_enabled(),
        "cudnn": torch.backends.cuda.cudnn_sdp_enabled(),
        "math": torch.backends.cuda.math_sdp_enabled(),
    }
    sort = "self_cuda_time_total" if cuda else "self_cpu_time_total"
    header = (
        f"U-Net {version} forward, batch 2, {plan.frames} frames, {latent}x{latent} latents, {unet.dtype}\n"
    )
    (rec.out_dir / "profile_unet.txt").write_text(header + averages.table(sort_by=sort, row_limit=30))
    rec.save()


def section_sampler(rec: Recorder, plan: Plan, device: torch.device) -> None:
    """The CFG sampler per chunk batch: exact 20-step schedule and the cached (DeepCache) one."""
    table = None if plan.tiny else eng.flops_table()
    dtype = plan.dtypes[0]
    models = eng.random_models(plan.versions[0][0], plan.device, dtype, tiny=plan.tiny)
    predicted = 20.0
    for version, latent in plan.versions:
        for k in plan.chunk_batches:
            for deep_cache in (True, False):  # the cached schedule first: it is the production target
                name = f"sampler {version} {dtype} {plan.steps} steps CFG {'DeepCache' if deep_cache else 'exact'} x{k} chunks"
                if not rec.allows(name, predicted):
                    continue

                def run(deep_cache: bool = deep_cache, k: int = k, latent: int = latent) -> object:
                    return eng.sample(
                        models.unet,
                        chunks=k,
                        frames=plan.frames,
                        latent=latent,
                        steps=plan.steps,
                        guidance=plan.guidance,
                        deep_cache=deep_cache,
                    )

                started = time.monotonic()
                seconds = timed(run, device, warmup=min(plan.warmup, 1), repeats=plan.sampler_repeats)
                predicted = (time.monotonic() - started) * (1.2 if deep_cache else 0.8) * 2
                if table is None:
                    flops = counted_flops(run)
                else:
                    flops = sampler_flops(table, k, latent, plan.steps, deep_cache)
                rec.add(
                    name,
                    seconds,
                    output_s=k * plan.frames / FPS,
                    flops=flops,
                    version=version,
                    dtype=dtype,
                    deep_cache=deep_cache,
                    chunks=k,
                    steps=plan.steps,
                )
    release(models)


def section_vae_audio(rec: Recorder, plan: Plan, device: torch.device) -> None:
    """VAE encode (twice per frame: masked and reference) and decode per frame; Whisper features per second."""
    import numpy as np

    table = None if plan.tiny else eng.flops_table()
    dtype = plan.dtypes[0]
    models = eng.random_models(plan.versions[0][0], plan.device, dtype, tiny=plan.tiny)
    vae, n = models.vae, plan.frames
    g = torch.Generator(device="cpu").manual_seed(2)
    for version, latent in plan.versions:
        px = latent * 8
        pixels = (torch.rand((n, 3, px, px), generator=g) * 2 - 1).to(device, models.dtype)
        latents = torch.randn((n, 4, latent, latent), generator=g).to(device, models.dtype)
        for what, fn, per_frame in (
            ("encode", partial(vae.encode, pixels), 2),
            ("decode", partial(vae.decode, latents), 1),
        ):
            name = f"vae {what} {px}px x{n} frames {dtype}"
            if not rec.allows(name, 5.0):
                continue
            seconds = timed(fn, device, warmup=plan.warmup, repeats=plan.repeats)
            if table is None:
                flops = counted_flops(fn)
            else:
                flops = n * float(table["vae"][f"{what}_1frame_{px}px"]["flops"])
            # `per_frame` calls per output frame: this many of these calls make n / per_frame output frames.
            rec.add(name, seconds, output_s=n / per_frame / FPS, flops=flops, version=version, dtype=dtype)
    seconds_audio = plan.e2e_seconds
    wave = np.random.default_rng(3).standard_normal(int(16000 * seconds_audio)).astype(np.float32) * 0.1
    name = f"whisper features {seconds_audio:g} s audio"
    if rec.allows(name, 5.0):
        features = partial(models.audio_encoder.features, wave)
        seconds = timed(features, device, warmup=plan.warmup, repeats=plan.repeats)
        windows = max(1, int(np.ceil(seconds_audio / 30)))
        flops = (
            counted_flops(features)
            if table is None
            else windows * float(table["whisper_tiny_encoder"]["forward_one_30s_window"]["flops"])
        )
        rec.add(name, seconds, output_s=seconds_audio, flops=flops, dtype=str(models.audio_encoder.dtype))
    release(models)


def section_e2e(rec: Recorder, plan: Plan, device: torch.device) -> None:
    """The staged pipeline on a real clip, full-size random weights, the fixed face: wall, stages, GPU busy."""
    import argparse
    import tempfile

    from bench.throughput import cut_speech, model_flops, run_once

    media = eng.shared_dir() / "media"
    video, speech = media / f"{plan.e2e_clip}_video.mp4", media / f"{plan.e2e_clip}_audio.wav"
    version = plan.versions[0][0]
    models = eng.random_models(version, plan.device, plan.dtypes[0], tiny=plan.tiny)
    detector = eng.FixedFaceDetector.demo1()
    rec.note(
        "face detector: FixedFaceDetector (MediaPipe's demo1 frame-0 face on every frame); detection is "
        "not timed here (MediaPipe/InsightFace weights are not on the device; see bench/pipeline.py)"
    )
    predicted = 60.0
    with tempfile.TemporaryDirectory(prefix="bench-gpu-e2e-") as tmp_name:
        tmp = Path(tmp_name)
        audio = cut_speech(speech, tmp / "speech.wav", plan.e2e_seconds)
        warm_audio = cut_speech(speech, tmp / "warm.wav", 0.7)
        for deep_cache in plan.e2e_deep_cache:
            name = f"e2e staged {version} {plan.dtypes[0]} {plan.steps} steps CFG {'DeepCache' if deep_cache else 'exact'} {plan.e2e_clip} {plan.e2e_seconds:g} s"
            if not rec.allows(name, predicted):
                continue
            args = argparse.Namespace(
                steps=plan.steps,
                guidance=plan.guidance,
                deep_cache=deep_cache,
                queue_chunks=1,
                model_threads=None,
                split_model=None,
                compile=False,
                preset="veryfast",
            )
            ls = eng.make_lipsync(models, detector, pipeline="staged", preset="veryfast")
            if plan.e2e_warmup:  # CUDA context, cuDNN autotuning, first-call costs: not counted
                run_once(ls, video, warm_audio, tmp / "warm.mp4", args, "staged")
            started = time.monotonic()
            row = run_once(ls, video, audio, tmp / "out.mp4", args, "staged")
            predicted = (time.monotonic() - started) * (2.2 if deep_cache else 1.2)
            flops = (
                None
                if plan.tiny
                else model_flops(
                    row["face_frames"],
                    models.unet_config.resolution,
                    plan.steps,
                    plan.guidance > 1,
                    deep_cache,
                )
            )
            busy = row.get("gpu_busy_s")
            rec.add(
                name,
                [row["wall_s"]],
                output_s=row["output_s"],
                flops=flops,
                version=version,
                deep_cache=deep_cache,
                frames=row["frames"],
                face_frames=row["face_frames"],
                stages_s={k: round(v, 3) for k, v in row["stages_s"].items()},
                gpu_busy_s=busy,
                gpu_busy_fraction=None if busy is None else busy / row["wall_s"],
                gpu_peak_mem_gib=row.get("gpu_peak_mem_gb"),
                chunk_batch=row.get("chunk_batch"),
                max_chunks_in_flight=row.get("max_chunks_in_flight"),
                peak_rss_mb=row["peak_rss_mb"],
            )
    release(models)


def section_compile(rec: Recorder, plan: Plan, device: torch.device) -> None:
    """``torch.compile`` of the U-Net (the pipeline's CompiledUNet): compile seconds apart, then forwards."""
    table = None if plan.tiny else eng.flops_table()
    version, latent = plan.versions[0]
    k = max(plan.chunk_batches)
    predicted = 90.0 if device.type == "cuda" else 10.0
    for dtype in plan.dtypes:
        name = f"unet {version} {latent}x{latent} {dtype} compiled ({plan.compile_backend}) b{2 * k}"
        if not rec.allows(name, predicted):
            continue
        models = eng.random_models(version, plan.device, dtype, tiny=plan.tiny)
        compiled = eng.compile_unet(models.unet, backend=plan.compile_backend)
        shape = eng.WarmupShape(2 * k, plan.frames, latent)
        compile_s = compiled.warm_up([shape])[shape]
        predicted = compile_s * 1.3
        inputs = eng.unet_inputs(compiled, 2 * k, plan.frames, latent)
        with eng.no_recompile():
            seconds = timed(partial(compiled, *inputs), device, warmup=plan.warmup, repeats=plan.repeats)
        eager = partial(models.unet, *inputs)  # FLOPs are counted on the eager module
        mode = f"compile:{plan.compile_backend}"
        record_forward(
            rec, plan, table, name, seconds, eager, version, dtype, latent, k, mode, compile_s=compile_s
        )
        release(models, compiled)


RUNNERS: dict[str, Callable[[Recorder, Plan, torch.device], None]] = {
    "unet": section_unet,
    "sampler": section_sampler,
    "vae_audio": section_vae_audio,
    "e2e": section_e2e,
    "compile": section_compile,
}
assert tuple(RUNNERS) == SECTIONS


def preimport() -> None:
    """Import what the sections use, once, in the parent (which never touches CUDA), before it forks them."""
    import diffusers  # noqa: F401
    import transformers.models.whisper.modeling_whisper  # noqa: F401

    import bench.throughput  # noqa: F401
    import lipsync.pipeline  # noqa: F401


def run_section(name: str, plan: Plan, budget_s: float, result: Path, out_dir: Path) -> None:
    """The body of one section's process: environment, then the measurements, recorded as they come."""
    rec = Recorder(result, name, budget_s, out_dir)
    device = eng.select_device(plan.device)
    rec.data["env"] = environment(device)
    rec.data["plan"] = {k: v for k, v in asdict(plan).items() if k != "budgets"}
    rec.save()
    torch.manual_seed(0)
    if plan.threads:
        torch.set_num_threads(plan.threads)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    RUNNERS[name](rec, plan, device)
    if device.type == "cuda":
        rec.data["env"]["section_peak_gpu_mem_gib"] = round(
            torch.cuda.max_memory_allocated(device) / 2**30, 2
        )
    rec.save()
