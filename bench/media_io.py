"""Decode and encode speed of the media layer on 1080x1920 frames (prints ms per frame).

    .venv/bin/python bench/media_io.py [--frames 100] [--presets medium,veryfast] [--video PATH]

Decode: ``iter_frames_25fps`` on the shared HEVC clip (demux scan + threaded decode + BT.601 RGB).
Encode: ``VideoWriter`` (libx264 CRF 18, yuv420p, 25 fps, AAC audio) fed with those decoded frames,
once per preset. Wall-clock times; the machine's core count is printed with them.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import av

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lipsync.media.io import VideoWriter, iter_frames_25fps, load_audio_16k  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--video", type=Path, default=REPO.parent / "shared" / "media" / "demo2_video.mp4")
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--presets", default="medium,fast,veryfast")
    args = parser.parse_args()

    print(f"machine: {os.cpu_count()} CPUs; clip: {args.video.name}; {args.frames} frames")
    # warm-up (codec init, page cache) so the first measurement is not an outlier
    for _ in iter_frames_25fps(args.video, max_frames=5):
        pass
    t0 = time.perf_counter()
    with av.open(str(args.video)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for n, _ in enumerate(container.decode(stream), start=1):
            if n == args.frames:
                break
    codec_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    frames = list(iter_frames_25fps(args.video, max_frames=args.frames))
    decode_s = time.perf_counter() - t0
    h, w = frames[0].shape[:2]
    print(
        f"decode {w}x{h} to RGB: {1000 * decode_s / len(frames):.1f} ms/frame "
        f"(of which the codec alone: {1000 * codec_s / args.frames:.1f})"
    )

    audio = load_audio_16k(args.video)[: int(len(frames) / 25 * 16000)]
    with tempfile.TemporaryDirectory() as tmp:
        for preset in args.presets.split(","):
            out = Path(tmp) / f"bench_{preset}.mp4"
            t0 = time.perf_counter()
            with VideoWriter(out, w, h, audio=audio, preset=preset) as writer:
                for frame in frames:
                    writer.write(frame)
            encode_s = time.perf_counter() - t0
            size_kb = out.stat().st_size / 1024
            print(
                f"encode {w}x{h} preset={preset}: {1000 * encode_s / len(frames):.1f} ms/frame, "
                f"{size_kb / (len(frames) / 25):.0f} KiB per second of video"
            )


if __name__ == "__main__":
    main()
