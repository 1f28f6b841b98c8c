"""Frame selection of ffmpeg's ``-r 25`` output-rate conversion, reproduced without ffmpeg.

The reference re-encodes every input with ``ffmpeg -i IN -r 25 -crf 18 temp/video.mp4`` and lip-syncs
the frames of that file. For an MP4 output ffmpeg's default video sync is *CFR* (``VSYNC_VSCFR`` when
the input file has a single stream): for every decoded input frame it compares where the frame falls on
the 1/25 s output grid with how many frames it has already emitted, and emits the frame 0, 1 or more
times (optionally re-emitting the previous one first to fill a gap). This is *not* "nearest frame per
tick": ffmpeg tolerates a drift of 1.1 output frames before it drops or duplicates, so e.g. a 30 fps
input keeps its first 12 frames, then drops every sixth.

Two generations of that logic exist and pick different frames:

* ``"ffmpeg7"`` (default): newer ffmpeg (6.1 on), which takes each frame's exact duration. Verified
  frame for frame against ffmpeg 7.0.2 and 9.0.2. LatentSync's ``setup_env.sh`` installs ffmpeg from
  conda-forge, which ships these versions.
* ``"ffmpeg4"``: ffmpeg up to 6.0 rounds each duration to whole output frames first. Verified against
  ffmpeg 4.2.2 and 5.1.9 (Ubuntu 22.04's apt ffmpeg 4.4, used by the reference's Cog image, is one).

Verification (``tests/media/test_io_fps.py``): constant 24/29.97/30/60 fps and randomised
variable-frame-rate clips with B-frames, start offsets and audio tracks, run through the real binaries
with the reference's command; given the timestamps each version's demuxer reports, the selection here
is identical on every clip. (Demuxers differ between versions in edge cases, e.g. ffmpeg 5.1/7.0 read
the last MP4 sample's duration differently; we use PyAV's libavformat, which agrees with 9.0.)

At exactly 25 fps both keep every frame once. The class below is pure arithmetic on timestamps
(no PyAV) so it can drive both the streaming decoder and the frame counter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Literal

import numpy as np
from numpy.typing import NDArray

__all__ = ["OUTPUT_FPS", "FfmpegCompat", "RateConverter", "select_frames_25fps"]

OUTPUT_FPS = 25
AV_TIME_BASE = 1_000_000
FfmpegCompat = Literal["ffmpeg7", "ffmpeg4"]


def _rescale(a: int, src: Fraction, dst: Fraction) -> int:
    """``av_rescale_q``: a * src / dst rounded to nearest, halfway cases away from zero."""
    num = a * src.numerator * dst.denominator
    den = src.denominator * dst.numerator
    q, r = divmod(abs(num), den)
    if 2 * r >= den:
        q += 1
    return q if num >= 0 else -q


def _lrintf(x: float) -> int:
    """C ``lrintf``: convert to single precision, then round half to even (Python's ``round``)."""
    return round(float(np.float32(x)))


@dataclass
class RateConverter:
    """Streaming state of ffmpeg's CFR video sync towards a 25 fps output.

    Feed the input frames in presentation order with :meth:`push` (timestamps in ``time_base`` units,
    exactly as the demuxer reports them); each call returns ``(n_prev, n_total)``: emit the previous
    input frame ``n_prev`` times, then this frame ``n_total - n_prev`` times. :meth:`finish` returns
    how many extra copies of the last frame ffmpeg emits at the end of the stream.
    """

    time_base: Fraction
    #: ``AVFormatContext.start_time`` in microseconds; ffmpeg shifts every input timestamp by it.
    start_time_us: int = 0
    #: ffmpeg uses ``VSYNC_VSCFR`` (no initial duplication) when the input file has one stream.
    single_stream_input: bool = False
    compat: FfmpegCompat = "ffmpeg7"
    #: the stream's average frame rate (duration fallback when even the guessed rate is unknown).
    average_rate: Fraction | None = None
    #: ``av_guess_frame_rate`` of the stream: the filter graph's frame rate, which ffmpeg falls back
    #: to for frames without a duration (and, before 6.1, for durations under half an output frame).
    guessed_rate: Fraction | None = None

    next_pts: int = field(default=0, init=False)
    frames_out: int = field(default=0, init=False)
    _prev_hist: list[int] = field(default_factory=lambda: [0, 0, 0], init=False)

    def __post_init__(self) -> None:
        if self.compat not in ("ffmpeg7", "ffmpeg4"):
            raise ValueError(f"compat must be 'ffmpeg7' or 'ffmpeg4', not {self.compat!r}")
        # ffmpeg's demuxer adds -start_time (rescaled into the stream time base) to every timestamp.
        self._ts_offset = _rescale(-self.start_time_us, Fraction(1, AV_TIME_BASE), self.time_base)

    # -- helpers mirroring fftools ------------------------------------------------------------------

    def _sync_pts(self, pts: int) -> float:
        """``adjust_frame_pts_to_encoder_tb``: the frame time in output frames, 16 extra bits."""
        extra_bits = 16  # av_clip(29 - av_log2(25), 0, 16)
        fine = Fraction(1, OUTPUT_FPS << extra_bits)
        value = _rescale(pts, self.time_base, fine) / (1 << extra_bits)
        if self.compat == "ffmpeg4":
            value += (1.0 if value > 0 else -1.0) / (1 << 17)  # unconditional in <= 6.0, FFSIGN(0) = -1
        elif value != round(value):
            value += (1.0 if value > 0 else -1.0) / (1 << 17)
        return value

    def _duration_out(self, duration: int) -> float:
        tb = float(self.time_base.numerator) / self.time_base.denominator
        out_tb = 1.0 / OUTPUT_FPS
        if self.compat == "ffmpeg7":
            # the decoded frame's duration (the packet's); only when that is missing does ffmpeg fall
            # back to the filter graph's frame rate
            if duration > 0:
                return duration * tb / out_tb
            rate = self.guessed_rate or self.average_rate
            return 1.0 / (float(rate) * out_tb) if rate else 0.0
        # <= 6.0: the sink frame rate's duration capped at one output frame, replaced by the packet
        # duration rounded to whole output frames when that is at least one.
        d = 0.0
        if self.guessed_rate:
            d = 1.0 / (float(self.guessed_rate) * out_tb)
        d = min(d, 1.0 / (OUTPUT_FPS * out_tb))
        rounded = _lrintf(duration * tb / out_tb)
        return float(rounded) if rounded > 0 else d

    # -- public API -----------------------------------------------------------------------------------

    def push(self, pts: int, duration: int) -> tuple[int, int]:
        pts = pts + self._ts_offset
        duration_out = self._duration_out(duration)
        sync_ipts = self._sync_pts(pts)
        delta0 = sync_ipts - self.next_pts
        delta = delta0 + duration_out
        n_prev, n = 0, 1
        if delta0 < 0 < delta:
            # the frame started before the next output slot: clip the part already covered
            sync_ipts = float(self.next_pts)
            duration_out += delta0
            delta0 = 0.0
        if self.single_stream_input and self.frames_out == 0 and delta0 >= 0.5:
            # VSCFR: a late first frame moves the output start instead of being duplicated
            delta = duration_out
            delta0 = 0.0
            self.next_pts = round(sync_ipts)
        if delta < -1.1:
            n = 0
        elif delta > 1.1:
            n = _lrintf(delta)
            if delta0 > 1.1:
                n_prev = min(_lrintf(delta0 - 0.6), n)
        self._prev_hist = [n_prev, *self._prev_hist[:2]]
        if n_prev and self.frames_out == 0:
            n_prev = 0  # nothing to repeat before the first frame (ffmpeg skips it as well)
        self.next_pts += n
        self.frames_out += n
        return n_prev, n

    def finish(self) -> int:
        """Copies of the last frame emitted at end of stream (median of the last three gap fills)."""
        n = sorted(self._prev_hist)[1]
        self.next_pts += n
        self.frames_out += n
        return n


def select_frames_25fps(
    frames: list[tuple[int, int]],
    time_base: Fraction,
    *,
    start_time_us: int = 0,
    single_stream_input: bool = False,
    compat: FfmpegCompat = "ffmpeg7",
    average_rate: Fraction | None = None,
    guessed_rate: Fraction | None = None,
) -> NDArray[np.int64]:
    """Indices into *frames* ((pts, duration) in presentation order) of every 25 fps output frame."""
    conv = RateConverter(
        time_base,
        start_time_us=start_time_us,
        single_stream_input=single_stream_input,
        compat=compat,
        average_rate=average_rate,
        guessed_rate=guessed_rate,
    )
    out: list[int] = []
    for i, (pts, duration) in enumerate(frames):
        n_prev, n = conv.push(pts, duration)
        out.extend([i - 1] * n_prev)
        out.extend([i] * (n - n_prev))
    if frames:
        out.extend([len(frames) - 1] * conv.finish())
    return np.asarray(out, dtype=np.int64)
