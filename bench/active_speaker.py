"""Active speaker detection accuracy on two real speakers side by side (docs/faces.md, issue 16).

Every combination of: which speaker sits left, whose original voice is the sound track, the two faces'
scales, and which 4-s (or longer) window of the clips; prints each case's chosen side, the scores, and
the accuracy. Run from the repository root: ``python -m bench.active_speaker [--frames 100] [--quick]``.
"""

from __future__ import annotations

import argparse
import itertools
import os
import time

from lipsync.media.faces import create_detector
from lipsync.media.faces.selection import choose_speaker
from lipsync.media.faces.tracking import track_faces
from tests.conftest import MEDIA_DIR
from tests.media.two_faces import original_voice, side_by_side


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=250, help="frames per case (25 fps; demo1 has 250)")
    parser.add_argument("--starts", type=int, nargs="+", default=[0], help="first frame of each window")
    parser.add_argument("--quick", action="store_true", help="one scale pair")
    args = parser.parse_args()
    orders = [("demo1", "demo2"), ("demo2", "demo1")]
    scales = [(1.0, 0.8)] if args.quick else [(1.0, 0.8), (0.7, 1.0), (0.6, 0.6)]
    starts = args.starts
    right = total = undecided = 0
    started = time.perf_counter()
    with create_detector("mediapipe") as detector:
        for order, scale, start in itertools.product(orders, scales, starts):
            frames = list(side_by_side(MEDIA_DIR, args.frames, scales=scale, order=order, start=start))
            tracks = track_faces([(i, detector.detect_all(f)) for i, f in enumerate(frames)])
            for voice in order:
                audio = original_voice(MEDIA_DIR, voice, len(frames), start)
                sel = choose_speaker(tracks, len(frames), audio)
                want = "left" if voice == order[0] else "right"
                faces = [sel.face(i, f, detector) for i, f in enumerate(frames)]
                sides = {
                    "left" if (f.bbox[0] + f.bbox[2]) / 2 < 480 else "right" for f in faces if f is not None
                }
                got = sides.pop() if len(sides) == 1 else f"{sel.mode}:{sorted(sides)}"
                if sel.mode != "auto":
                    got = "undecided (fell back to the largest face)"
                ok = got == want
                right += ok
                undecided += sel.mode != "auto"
                total += 1
                print(
                    f"{'ok ' if ok else 'BAD' if sel.mode == 'auto' else '-- '} left={order[0]} scales={scale} start={start:3d} voice={voice}: "
                    f"chose {got} (score {sel.summary.get('score')}, runner-up {sel.summary.get('runner_up')})",
                    flush=True,
                )
    load = os.getloadavg()[0]
    print(
        f"\nright {right}/{total}, wrong {total - right - undecided}, undecided {undecided} with {args.frames}-frame "
        f"windows; {time.perf_counter() - started:.0f} s, load {load:.1f}"
    )


if __name__ == "__main__":
    main()
