"""An independent statement of ffmpeg's ``-r 25`` CFR frame choice, in exact arithmetic (tests only).

Written from ffmpeg's documented/observed behaviour rather than from ``lipsync.media.fps``: every input
frame covers ``[t, t + d)`` on the output grid (t and d in output-frame units, as exact fractions);
with ``n`` frames already written, the frame is shown ``round(t + d - n)`` times when that exceeds 1.1,
dropped when it is below -1.1, shown once otherwise; a part of it that lies before slot ``n`` is
clipped first; a gap of more than 1.1 frames before it is filled with the previous frame. ffmpeg
nudges non-integer start times by 2^-17 frames away from zero to avoid exact halves. The test suite
checks this statement against real ffmpeg output (``ffmpeg_r25_oracle.json``) before trusting it.
"""

from __future__ import annotations

import math
from fractions import Fraction

NUDGE = Fraction(1, 1 << 17)


def _round_half_even(x: Fraction) -> int:
    return round(x)  # Fraction.__round__ rounds half to even, like C's lrint in the default mode


def expected_selection(starts: list[Fraction], durations: list[Fraction]) -> list[int]:
    """Input frame index for each output frame; *starts*/*durations* in seconds, presentation order."""
    out: list[int] = []
    gap_fills: list[int] = []
    for i, (t_s, d_s) in enumerate(zip(starts, durations, strict=True)):
        t = t_s * 25
        d = d_s * 25
        if t != math.floor(t):
            t += NUDGE if t > 0 else -NUDGE
        n = len(out)
        lead = t - n
        if lead < 0 < lead + d:
            d += lead
            lead = Fraction(0)
        span = lead + d
        fill = 0
        if span < Fraction(-11, 10):
            shown = 0
        elif span > Fraction(11, 10):
            shown = _round_half_even(span)
            if lead > Fraction(11, 10):
                fill = min(_round_half_even(lead - Fraction(3, 5)), shown)
        else:
            shown = 1
        gap_fills.append(fill)
        if i == 0:
            fill = 0
        out.extend([i - 1] * fill)
        out.extend([i] * (shown - fill))
    if starts:
        last_three = ([0, 0, 0, *gap_fills])[-3:]
        out.extend([len(starts) - 1] * sorted(last_three)[1])
    return out
