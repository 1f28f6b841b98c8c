"""Regenerate ``ffmpeg_r25_oracle.json``: what real ffmpeg binaries pick for ``-r 25`` (dev tool, not a test).

    .venv/bin/python tests/media/make_ffmpeg_oracle.py OUT.json VERSION=/path/to/ffmpeg [...]

For each clip (constant 24/29.97/30/60 fps and randomised variable-frame-rate clips with B-frames,
start offsets and audio tracks, all built by ``media_factory``), it records

* the clip's timestamps as each ffmpeg version's demuxer reports them (``-debug_ts``; versions differ,
  e.g. 5.1 and 7.0 read the last MP4 sample's duration differently from newer releases),
* the frames that version actually wrote: it runs ``ffmpeg -i clip -r 25 -crf 18 out.mp4`` (the
  reference's command) and reads back the frame-index code painted into every input frame.

``test_io_fps.py`` feeds those timestamps to :func:`lipsync.media.fps.select_frames_25fps` and expects
the same frames. The binaries used for the committed file: ffmpeg 9.0.2 and 7.0.2 (imageio-ffmpeg
wheels 0.8.1 and 0.6.0) and 5.1.9 (Debian 12 apt). ffmpeg 4.2.2 (imageio-ffmpeg 0.5.1) chose the
same frames as 5.1.9 on every clip but its ``-debug_ts`` omits durations, so it is not recorded.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.media.media_factory import cfr_pts, paint_index, read_index, vfr_pts, write_video

_DEMUX = re.compile(r"demuxer -> ist_index:0(?::0)? type:video .*?pkt_pts:(-?\d+) .*?duration:(-?\d+)")


def _clips(tmp: Path) -> list[tuple[str, Path]]:
    base = np.full((64, 192, 3), 90, np.uint8)
    out: list[tuple[str, Path]] = []

    def add(name: str, pts: list[int], tb: Fraction, **kw: object) -> None:
        frames = [paint_index(base, i) for i in range(len(pts))]
        path = tmp / f"{name}.mp4"
        write_video(path, frames, pts, tb, **kw)  # type: ignore[arg-type]
        out.append((name, path))

    add("cfr30", cfr_pts(60, 30, Fraction(1, 30)), Fraction(1, 30))
    add("cfr24", cfr_pts(50, 24, Fraction(1, 24)), Fraction(1, 24), rate=24)
    add("cfr60", cfr_pts(90, 60, Fraction(1, 60)), Fraction(1, 60), rate=60)
    add("ntsc2997", [i * 1001 for i in range(60)], Fraction(1, 30000))
    add("vfr_phone", vfr_pts(60, Fraction(1, 90000)), Fraction(1, 90000))
    audio = (np.sin(np.arange(16000 * 6) / 20) * 0.1).astype(np.float32)
    rng = random.Random(20261125)
    for k in range(12):
        tb = Fraction(1, rng.choice([90000, 1000, 600, 15360, 30000]))
        mode = ["jitter", "slow", "fast", "mixed"][k % 4]
        t = Fraction(rng.choice([0, 0, Fraction(1, 10), Fraction(37, 1000)]))
        pts: list[int] = []
        for _ in range(rng.randint(30, 80)):
            pts.append(max(round(t / tb), pts[-1] + 1 if pts else 0))
            ms = {
                "jitter": rng.randint(25, 45),
                "slow": rng.randint(40, 90),
                "fast": rng.randint(8, 30),
                "mixed": rng.choice([10, 16, 33, 33, 40, 50, 120, 300]),
            }[mode]
            t += Fraction(ms, 1000)
        add(
            f"random{k}_{mode}",
            pts,
            tb,
            audio=audio if k % 2 else None,
            options={"bf": "2" if k % 3 else "0"},
        )
    return out


def main() -> None:
    target = Path(sys.argv[1])
    binaries = dict(arg.split("=", 1) for arg in sys.argv[2:])
    cases = []
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        for name, path in _clips(tmp):
            with av.open(str(path)) as c:
                s = c.streams.video[0]
                case: dict[str, object] = {
                    "name": name,
                    "time_base": [s.time_base.numerator, s.time_base.denominator],
                    "start_time_us": int(c.start_time or 0),
                    "single_stream_input": len(c.streams) == 1,
                    "average_rate": [s.average_rate.numerator, s.average_rate.denominator],
                    "guessed_rate": [s.guessed_rate.numerator, s.guessed_rate.denominator],
                    "versions": {},
                }
            for version, ffmpeg in binaries.items():
                out = tmp / f"{name}_{version}.mp4"
                log = subprocess.run(
                    [
                        ffmpeg,
                        "-nostdin",
                        "-debug_ts",
                        "-y",
                        "-i",
                        str(path),
                        "-r",
                        "25",
                        "-crf",
                        "18",
                        str(out),
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stderr
                frames = sorted((int(p), int(d)) for p, d in _DEMUX.findall(log))
                with av.open(str(out)) as oc:
                    selection = [read_index(f.to_ndarray(format="rgb24")) for f in oc.decode(video=0)]
                case["versions"][version] = {"frames": frames, "selection": selection}  # type: ignore[index]
                print(name, version, len(frames), "->", len(selection))
            cases.append(case)
    target.write_text(json.dumps({"command": "ffmpeg -i IN -r 25 -crf 18 OUT.mp4", "cases": cases}) + "\n")


if __name__ == "__main__":
    main()
