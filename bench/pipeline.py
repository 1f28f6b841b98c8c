"""End-to-end pipeline cost per stage and peak memory against input length (tiny weights, 1080x1920).

    nice .venv/bin/python bench/pipeline.py [--lengths 10,60] [--pipeline staged|sequential] [--steps 1]

For each length, a 1080x1920 input is made by looping a real clip (HEVC packets stream-copied with shifted
timestamps, so no re-encode) with its speech looped to the same length; then ``LipSync.run`` runs in a fresh
child process (tiny random weights in the official formats, MediaPipe faces, CPU) and reports its per-stage
wall time (ms per output frame) and its peak RSS. The goal: peak RSS flat in length (60 s within 10 % of 10 s).
The U-Net is a tiny random one, so "diffuse" says nothing about real speed (see bench/unet.py for that);
the CPU-side stages (decode, align, paste, encode) are the real ones.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
MEDIA = Path(os.environ.get("LIPSYNC_SHARED_DIR", REPO.parent / "shared")) / "media"
STAGES = ("decode", "detect", "align", "vae_encode", "diffuse", "vae_decode", "paste", "encode", "audio")


def loop_video(src: Path, dst: Path, seconds: float) -> Path:
    """Repeat *src*'s video packets (stream copy) until *seconds*; audio dropped (the speech is separate)."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        vout = out.add_stream_from_template(vin)
        # (payload, pts, dts, duration, keyframe): muxing consumes a packet, so each lap builds new ones.
        packets = [
            (bytes(p), p.pts, p.dts, p.duration, p.is_keyframe) for p in inp.demux(vin) if p.dts is not None
        ]
        period = max(pts + (duration or 0) for _, pts, _, duration, _ in packets) - min(q[1] for q in packets)
        end = seconds / float(vin.time_base)
        lap = 0
        while True:
            for payload, pts, dts, duration, keyframe in packets:
                if pts + lap * period >= end:
                    return dst
                packet = av.Packet(payload)
                packet.pts, packet.dts = pts + lap * period, dts + lap * period
                packet.duration = duration
                packet.is_keyframe = keyframe
                packet.time_base = vin.time_base
                packet.stream = vout
                out.mux(packet)
            lap += 1


def loop_speech(src: Path, dst: Path, seconds: float) -> Path:
    import numpy as np

    with wave.open(str(src), "rb") as w:
        rate = w.getframerate()
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    n = int(seconds * rate)
    data = np.tile(samples, n // samples.size + 1)[:n]
    with wave.open(str(dst), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(data.tobytes())
    return dst


def child(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    from lipsync import LipSync

    ls = LipSync(
        args.weights, version=args.version, device="cpu", face_detector="mediapipe", pipeline=args.pipeline
    ).load()
    rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = ls.run(
        args.video,
        args.audio,
        args.out,
        inference_steps=args.steps,
        guidance_scale=args.guidance,
        loop_mode="pingpong",
    )
    print(
        json.dumps(
            {
                "frames": result.frames,
                "wall_s": result.wall_s,
                "ms_per_frame": result.ms_per_frame(),
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "rss_after_load_mb": rss_loaded / 1024,
                "decoded_frames": result.decoded_frames,
                "cpu_s": sum(resource.getrusage(resource.RUSAGE_SELF)[:2]),
                "torch_threads": torch.get_num_threads(),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lengths", default="10,60", help="input lengths in seconds")
    parser.add_argument("--clip", default="demo1", help="shared clip to loop (demo1 or demo2)")
    parser.add_argument("--version", default="1.5")
    parser.add_argument("--pipeline", default="staged", choices=("sequential", "staged"))
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--guidance", type=float, default=1.0)
    parser.add_argument("--weights", type=Path, help="tiny weights dir (written to a temp dir if omitted)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--video", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--audio", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp_name:
        tmp = Path(tmp_name)
        if args.weights is None:
            from lipsync.engine.weights import write_tiny_weights

            args.weights = tmp / "weights"
            write_tiny_weights(args.weights, args.version)
        print(
            f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; clip {args.clip} looped; "
            f"LatentSync {args.version} tiny weights, {args.steps} step(s), guidance {args.guidance}, MediaPipe, "
            f"{args.pipeline} pipeline"
        )
        rows = {}
        for seconds in (float(s) for s in args.lengths.split(",")):
            video = loop_video(MEDIA / f"{args.clip}_video.mp4", tmp / f"in_{seconds:g}s.mp4", seconds)
            audio = loop_speech(MEDIA / f"{args.clip}_audio.wav", tmp / f"in_{seconds:g}s.wav", seconds)
            cmd = [sys.executable, __file__, "--child", "--video", str(video), "--audio", str(audio)]
            cmd += ["--out", str(tmp / f"out_{seconds:g}s.mp4"), "--weights", str(args.weights)]
            cmd += ["--version", args.version, "--steps", str(args.steps), "--guidance", str(args.guidance)]
            cmd += ["--pipeline", args.pipeline]
            started = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode:
                sys.exit(f"child failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            row["process_s"] = time.perf_counter() - started
            rows[seconds] = row
            ms = row["ms_per_frame"]
            cpu_side = sum(ms.get(s, 0.0) for s in ("decode", "align", "paste", "encode"))
            print(
                f"\n{seconds:g} s input -> {row['frames']} frames in {row['wall_s']:.0f} s "
                f"(decoded {row['decoded_frames']} source frames); peak RSS {row['peak_rss_mb']:.0f} MB "
                f"(after loading: {row['rss_after_load_mb']:.0f} MB); CPU time {row['cpu_s']:.0f} s "
                f"({row['cpu_s'] / row['wall_s']:.2f} cores busy on average); load average "
                f"{os.getloadavg()[0]:.1f}"
            )
            print("  ms/frame: " + ", ".join(f"{s} {ms.get(s, 0.0):.1f}" for s in STAGES))
            print(
                f"  CPU-side stages without the detector network (decode+align+paste+encode): {cpu_side:.1f} ms"
            )
        lengths = sorted(rows)
        if len(lengths) >= 2:
            a, b = rows[lengths[0]]["peak_rss_mb"], rows[lengths[-1]]["peak_rss_mb"]
            print(
                f"\npeak RSS {lengths[-1]:g} s / {lengths[0]:g} s = {b / a:.3f} "
                f"({'flat: within 10 %' if b <= 1.1 * a else 'GROWS with length'})"
            )


if __name__ == "__main__":
    main()
