"""Throughput of the whole pipeline: per-stage time, overlap, GPU busy fraction, GPU-seconds per output second.

    nice .venv/bin/python bench/throughput.py                       # CPU: tiny weights, 1080x1920 clip
    python bench/throughput.py --version 1.6 --steps 20 --guidance 1.5 [--deep-cache] [--compile]   # CUDA

A real 1080x1920 HEVC clip from ../shared/media (its first ``--seconds`` of speech drive the output length)
goes through ``LipSync`` with MediaPipe faces, once per pipeline in ``--pipelines``, after an unmeasured
warm-up job (CUDA context, cuDNN autotuning, first-call overheads; with ``--compile`` the warm-up compile is
reported separately and does not count).

* On CUDA the models are **full size with random weights** (1.27 B-parameter U-Net, SD VAE, Whisper-tiny
  encoder), built on the device in the model's precision (``--dtype``; default as the reference: fp16 on
  Ampere+). Printed: per-stage time, GPU busy fraction (CUDA events around the model stages; their union over
  the wall time; an upper bound, it includes launch gaps inside a stage), output seconds per wall second,
  GPU-seconds per output second (one GPU held for the wall time) and achieved TFLOP/s from the FLOP counts in
  ``../shared/reference/fixtures/flops.json``.
* On the CPU the models are the tiny random ones (``lipsync weights tiny``): the model stages cost what tiny
  convolutions cost, the media stages are the real ones. Printed: per-stage time against the wall time, i.e.
  how well the stages overlap (wall vs. the sum of the stage times and vs. the slowest stage).

Stage times are the stages' own busy wall time (``RunResult.timings_ms``); in the staged pipeline they run
concurrently, so their sum can exceed the wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("LIPSYNC_SHARED_DIR", REPO.parent / "shared"))
MEDIA = SHARED / "media"
FLOPS = SHARED / "reference" / "fixtures" / "flops.json"
STAGES = ("audio", "decode", "detect", "align", "vae_encode", "diffuse", "vae_decode", "paste", "encode")
MODEL_STAGES = ("vae_encode", "diffuse", "vae_decode")
#: The timer stages each staged-pipeline worker runs.
WORKER_STAGES = {
    "decode": ("decode",),
    "align": ("detect", "align"),
    "model": MODEL_STAGES,
    "vae_encode": ("vae_encode",),
    "diffuse": ("diffuse",),
    "vae_decode": ("vae_decode",),
    "paste": ("paste",),
}


# --- inputs and models ---------------------------------------------------------------------------------------


def cut_speech(src: Path, dst: Path, seconds: float) -> Path:
    with wave.open(str(src), "rb") as w:
        rate, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
        data = w.readframes(min(w.getnframes(), int(seconds * rate)))
    with wave.open(str(dst), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(data)
    return dst


def tiny_models(tmp: Path, version: str, device: str) -> Any:
    from lipsync.engine.weights import WeightsLayout, load_engine_models, write_tiny_weights

    write_tiny_weights(tmp / "weights", version)
    return load_engine_models(WeightsLayout(tmp / "weights", version), device, "fp32")


def full_size_random_models(version: str, device: str, dtype: str) -> Any:
    """The real architectures at full size with random values, built directly on the device."""
    from bench.gpu_adapter import random_models

    return random_models(version, device, dtype)


# --- FLOPs ---------------------------------------------------------------------------------------------------


def model_flops(face_frames: int, resolution: int, steps: int, cfg: bool, deep_cache: bool) -> float:
    """U-Net + VAE FLOPs for *face_frames* output frames with a face (flops.json counts; 16-frame chunks)."""
    table = json.loads(FLOPS.read_text())
    latent = {256: "latent32_256px", 512: "latent64_512px"}[resolution]
    unet = table["unet"]
    per_frame_step_full = unet[f"forward_b1_f16_{latent}"]["flops"] / 16
    scale = 2 if cfg else 1
    if deep_cache:
        # The cached-step counts are for batch 2 (CFG); the schedule repeats every 3 steps.
        cached = unet[f"deepcache_steps_b2_f16_{latent}"][1] / (2 * 16)
        per_frame = sum(per_frame_step_full if i % 3 == 0 else cached for i in range(steps)) * scale
    else:
        per_frame = per_frame_step_full * steps * scale
    vae = table["vae"]
    px = f"{resolution}px"
    vae_per_frame = 2 * vae[f"encode_1frame_{px}"]["flops"] + vae[f"decode_1frame_{px}"]["flops"]
    return face_frames * (per_frame + vae_per_frame)


# --- one run -------------------------------------------------------------------------------------------------


def run_once(
    ls: Any, video: Path, audio: Path, out: Path, args: argparse.Namespace, pipeline: str
) -> dict[str, Any]:
    import torch

    from lipsync.media.io import VideoWriter
    from lipsync.pipeline.driver import DriverConfig
    from lipsync.pipeline.timeline import FPS

    options = {
        "inference_steps": args.steps,
        "guidance_scale": args.guidance,
        "deep_cache": args.deep_cache,
        "loop_mode": "pingpong",
    }
    cuda = ls.models is not None and ls.models.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    job = ls.prepare(video, audio, **options)
    k = ls.tuning.chunk_batch(
        job.models, do_cfg=job.options.do_classifier_free_guidance, deep_cache=args.deep_cache
    )
    config = DriverConfig(
        mode="threaded" if pipeline == "staged" else "inline",
        chunk_batch=k if pipeline == "staged" else 1,
        queue_chunks=args.queue_chunks,
        model_threads=args.model_threads,
        split_model=args.split_model,
        gpu_timing=True,
        no_recompile=args.compile,
    )
    run = job.drive(config)
    frames = run.frames()
    inputs = job.inputs
    with VideoWriter(
        out, inputs.width, inputs.height, fps=FPS, audio=job.audio_track, preset=args.preset
    ) as writer:
        try:
            for frame in frames:
                with job.timer("encode"):
                    writer.write(frame)
        finally:
            frames.close()
        with job.timer("encode"):
            writer.close()
    if cuda:
        torch.cuda.synchronize()
    wall = time.perf_counter() - started
    stages = {s: job.timer.totals_ms.get(s, 0.0) / 1000 for s in STAGES}
    out_s = writer.frames_written / FPS
    row: dict[str, Any] = {
        "pipeline": pipeline,
        "frames": writer.frames_written,
        "output_s": out_s,
        "wall_s": wall,
        "stages_s": stages,
        "face_frames": job.timeline.num_frames - run.counters.frames_without_face,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if run.runner is not None:
        row["workers"] = [stage.name for stage in run.runner.stages]
        row["chunk_batch"] = run.stats.chunk_batch
        row["unet_batches"] = run.stats.unet_batches
        row["max_chunks_in_flight"] = run.stats.max_in_flight
        row["in_flight_bound"] = run.stats.in_flight_bound
        row["gpu_ms"] = run.stats.gpu_ms
        row["gpu_busy_s"] = None if run.stats.gpu_busy_ms is None else run.stats.gpu_busy_ms / 1000
    elif cuda:
        # Inline: each chunk ends in a device->host copy, so the model stages' wall time is device time.
        row["gpu_busy_s"] = sum(stages[s] for s in MODEL_STAGES)
    if cuda:
        row["gpu_peak_mem_gb"] = torch.cuda.max_memory_allocated() / 2**30
    return row


def report(row: dict[str, Any], args: argparse.Namespace, resolution: int, cuda: bool) -> None:
    stages = row["stages_s"]
    frames = max(row["frames"], 1)
    wall = row["wall_s"]
    busy = {s: t for s, t in stages.items() if t > 0}
    slowest = max(busy, key=lambda s: busy[s])
    total = sum(busy.values())
    print(f"\n[{row['pipeline']}] {row['frames']} frames ({row['output_s']:.2f} s of video) in {wall:.2f} s")
    print("  stage        s     ms/frame")
    for s, t in busy.items():
        print(f"  {s:<10} {t:7.2f} {1000 * t / frames:9.1f}")
    print(f"  sum of stages {total:.2f} s; slowest {slowest} {busy[slowest]:.2f} s")
    print(f"  wall / slowest stage = {wall / busy[slowest]:.2f}; wall / sum of stages = {wall / total:.2f}")
    if "workers" in row:
        # A worker's busy time is the sum of the stages it runs (the CPU layout chains the model stages).
        workers = {w: sum(stages.get(s, 0.0) for s in WORKER_STAGES[w]) for w in row["workers"]}
        workers["encode (caller)"] = stages["encode"]
        row["workers_s"] = workers
        top = max(workers, key=lambda w: workers[w])
        print("  worker busy s: " + ", ".join(f"{w} {t:.2f}" for w, t in workers.items()))
        print(f"  wall / slowest worker ({top}) = {wall / workers[top]:.2f}")
    print(f"  output seconds per wall second = {row['output_s'] / wall:.3f}")
    if "chunk_batch" in row:
        print(f"  workers: {' | '.join(row['workers'])} | encode (caller)")
        print(
            f"  chunk batch {row['chunk_batch']} (U-Net calls: {row['unet_batches']}); chunks in flight: max "
            f"{row['max_chunks_in_flight']} of bound {row['in_flight_bound']}"
        )
    print(f"  peak RSS so far {row['peak_rss_mb']:.0f} MB")
    if cuda and row.get("gpu_busy_s"):
        gpu = row["gpu_busy_s"]
        flops = model_flops(row["face_frames"], resolution, args.steps, args.guidance > 1.0, args.deep_cache)
        row["model_tflop"] = flops / 1e12
        print(f"  GPU busy fraction = {gpu / wall:.2f} ({gpu:.2f} s of model-stage device time)")
        print(f"  GPU-seconds per output second = {wall / row['output_s']:.2f}")
        print(
            f"  model FLOPs {flops / 1e12:.0f} TFLOP: {flops / 1e12 / gpu:.0f} TFLOP/s while busy, "
            f"{flops / 1e12 / wall:.0f} TFLOP/s over the wall time"
        )
        if row.get("gpu_ms"):
            print(
                "  device ms per model stage: " + ", ".join(f"{k} {v:.0f}" for k, v in row["gpu_ms"].items())
            )
        print(f"  GPU peak memory {row['gpu_peak_mem_gb']:.1f} GiB")


def compare_presets(clip: Path, presets: list[str], frames: int, tmp: Path) -> None:
    """Encode the same decoded frames with each preset: ms per frame, size, and PSNR against the frames."""
    import numpy as np

    from lipsync.media.io import VideoWriter, iter_frames_25fps

    source = list(iter_frames_25fps(clip, max_frames=frames))
    height, width = source[0].shape[:2]
    print(f"\nx264 presets at CRF 18 on {len(source)} frames of {clip.name} ({width}x{height}):")
    for preset in presets:
        out = tmp / f"preset_{preset}.mp4"
        started = time.perf_counter()
        with VideoWriter(out, width, height, preset=preset) as writer:
            for frame in source:
                writer.write(frame)
        ms = 1000 * (time.perf_counter() - started) / len(source)
        decoded = list(iter_frames_25fps(out))
        mse = np.mean(
            [np.mean((a.astype(np.float64) - b) ** 2) for a, b in zip(decoded, source, strict=True)]
        )
        kib_s = out.stat().st_size / 1024 / (len(source) / 25)
        print(
            f"  {preset:<10} {ms:6.1f} ms/frame  {kib_s:6.0f} KiB/s  PSNR {10 * np.log10(255**2 / mse):.2f} dB"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clip", default="demo1", help="shared clip (demo1 or demo2)")
    parser.add_argument("--seconds", type=float, default=4.0, help="seconds of speech (output length)")
    parser.add_argument("--version", default="1.5")
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--guidance", type=float, default=1.0)
    parser.add_argument("--deep-cache", action="store_true")
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--dtype", default="auto", help="CUDA only: auto (fp16 on Ampere+) | fp16 | bf16 | fp32"
    )
    parser.add_argument("--pipelines", default="sequential,staged")
    parser.add_argument("--chunk-batch", default="auto")
    parser.add_argument("--queue-chunks", type=int, default=1)
    parser.add_argument("--model-threads", type=int, default=None)
    parser.add_argument(
        "--split-model",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="VAE encode / U-Net / VAE decode on three workers (default: on CUDA only)",
    )
    parser.add_argument(
        "--compile", action="store_true", help="torch.compile the U-Net (warm-up not counted)"
    )
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--preset", default="veryfast", help="x264 preset of the output")
    parser.add_argument("--torch-threads", type=int, default=None, help="the process's torch threads")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per pipeline (alternating); best reported"
    )
    parser.add_argument(
        "--compare-presets", default="", help="e.g. medium,veryfast: only compare x264 presets on the clip"
    )
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()

    import torch

    from lipsync import LipSync
    from lipsync.engine.device import select_device
    from lipsync.media.faces import create_detector

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    device = select_device(args.device)
    cuda = device.type == "cuda"
    chunk_batch = args.chunk_batch if args.chunk_batch == "auto" else int(args.chunk_batch)
    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as tmp_name:
        tmp = Path(tmp_name)
        if args.compare_presets:
            video = MEDIA / f"{args.clip}_video.mp4"
            compare_presets(video, args.compare_presets.split(","), int(args.seconds * 25), tmp)
            return
        started = time.perf_counter()
        models = (
            full_size_random_models(args.version, str(device), args.dtype)
            if cuda
            else tiny_models(tmp, args.version, "cpu")
        )
        load_s = time.perf_counter() - started
        detector = create_detector("mediapipe")
        video = MEDIA / f"{args.clip}_video.mp4"
        audio = cut_speech(MEDIA / f"{args.clip}_audio.wav", tmp / "speech.wav", args.seconds)
        warm_audio = cut_speech(MEDIA / f"{args.clip}_audio.wav", tmp / "warm.wav", 0.7)
        name = torch.cuda.get_device_name(device) if cuda else f"CPU ({os.cpu_count()} cores)"
        print(
            f"device: {name}; load average {os.getloadavg()[0]:.1f}; torch {torch.__version__}, "
            f"{torch.get_num_threads()} intra-op threads\n"
            f"models: LatentSyncUNet {args.version} ({'full size, random' if cuda else 'tiny, random'}), "
            f"{models.dtype}, built in {load_s:.1f} s; {args.steps} steps, guidance {args.guidance}, "
            f"DeepCache {'on' if args.deep_cache else 'off'}, compile {'on' if args.compile else 'off'}\n"
            f"input: {video.name} (1080x1920 HEVC), {args.seconds:g} s of {audio.name}; x264 preset {args.preset}"
        )
        engines = {}
        for pipeline in args.pipelines.split(","):
            ls = LipSync(
                version=args.version,
                models=models,
                detector=detector,
                pipeline=pipeline,  # type: ignore[arg-type]
                chunk_batch=chunk_batch,
                compile=args.compile,
                channels_last=args.channels_last,
                preset=args.preset,
            )
            if args.compile:
                t = time.perf_counter()
                compiled = ls.tuning.warm_up(models, guidance_scale=args.guidance, deep_cache=args.deep_cache)
                print(
                    f"[{pipeline}] compile warm-up: {time.perf_counter() - t:.1f} s for {len(compiled)} shape(s)"
                )
            run_once(ls, video, warm_audio, tmp / "warm.mp4", args, pipeline)  # not measured
            engines[pipeline] = ls
        # Pipelines alternate, each run --repeat times; the best run of each is reported (the machine may be
        # shared: the minimum is the least disturbed measurement), with every wall time listed.
        runs: dict[str, list[dict[str, Any]]] = {p: [] for p in engines}
        for _ in range(args.repeat):
            for pipeline, ls in engines.items():
                runs[pipeline].append(run_once(ls, video, audio, tmp / f"{pipeline}.mp4", args, pipeline))
        rows = []
        for measured in runs.values():
            row = min(measured, key=lambda r: r["wall_s"])
            row["all_wall_s"] = [round(r["wall_s"], 2) for r in measured]
            report(row, args, models.unet_config.resolution, cuda)
            if len(measured) > 1:
                print(f"  wall of every run: {row['all_wall_s']} s (best reported)")
            rows.append(row)
        if len(rows) == 2:
            a, b = rows
            print(f"\n{b['pipeline']} vs {a['pipeline']}: {a['wall_s'] / b['wall_s']:.2f}x the throughput")
        if args.json:
            args.json.write_text(
                json.dumps({"args": vars(args) | {"json": str(args.json)}, "rows": rows}, indent=1)
            )


if __name__ == "__main__":
    main()
