"""Audio decode to the reference's 16 kHz mono float32.

The reference feeds Whisper with ``ffmpeg -i FILE -f s16le -ac 1 -ar 16000 -`` divided by 32768. We do
the same conversion in-process: PyAV's resampler is FFmpeg's ``aresample`` (libswresample) with the
same defaults, converting to signed 16-bit mono 16 kHz, then ``int16 / 32768``. For 16-bit 16 kHz mono
WAV input the result is exactly the stored samples / 32768; for other formats it matches the ffmpeg
command line (verified against the ffmpeg binary, see docs/media.md).
"""

from __future__ import annotations

import av
import av.audio.stream
import numpy as np
from numpy.typing import NDArray

from lipsync.errors import EmptyMedia, MediaTooLong, NoAudioStream
from lipsync.media.container import PathLike, describe_path, media_errors, open_input

__all__ = ["SAMPLE_RATE", "load_audio_16k"]

SAMPLE_RATE = 16000


def load_audio_16k(
    path: PathLike,
    *,
    max_duration_s: float | None = None,
    field: str = "audio",
) -> NDArray[np.float32]:
    """Decode the first audio stream of *path* (any container/codec) to float32 mono 16 kHz.

    Raises :class:`NoAudioStream`, :class:`EmptyMedia` (no samples), :class:`MediaTooLong` (longer
    than *max_duration_s*) or :class:`UnreadableMedia`, all with ``field`` set to *field*.
    """
    name = describe_path(path)
    with open_input(path, field) as container:
        if not container.streams.audio:
            what = "a video without a sound track" if container.streams.video else "a file without audio"
            raise NoAudioStream(
                f"The {field} file '{name}' is {what}. Upload speech audio (WAV, MP3, M4A, ...) or a video "
                "that has a sound track.",
                field=field,
            )
        stream: av.audio.stream.AudioStream = container.streams.audio[0]
        _check_declared_duration(stream, container.duration, max_duration_s, name, field)
        limit = None if max_duration_s is None else int(max_duration_s * SAMPLE_RATE) + 1
        resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        chunks: list[NDArray[np.int16]] = []
        total = 0
        with media_errors(path, field):
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunk: NDArray[np.int16] = np.asarray(out.to_ndarray(), dtype=np.int16).reshape(-1)
                    chunks.append(chunk)
                    total += chunk.shape[0]
                if limit is not None and total > limit:
                    raise _too_long(name, field, max_duration_s, total / SAMPLE_RATE, at_least=True)
            for out in resampler.resample(None):
                chunk = np.asarray(out.to_ndarray(), dtype=np.int16).reshape(-1)
                chunks.append(chunk)
                total += chunk.shape[0]
    if total == 0:
        raise EmptyMedia(
            f"The {field} file '{name}' is empty (0 seconds of sound). Upload audio with speech in it.",
            field=field,
        )
    if limit is not None and total > limit:
        raise _too_long(name, field, max_duration_s, total / SAMPLE_RATE)
    samples: NDArray[np.float32] = np.concatenate(chunks).astype(np.float32)
    samples /= np.float32(32768.0)
    return samples


def _check_declared_duration(
    stream: av.audio.stream.AudioStream,
    container_duration_us: int | None,
    max_duration_s: float | None,
    name: str,
    field: str,
) -> None:
    """Fail before decoding when the container already says the file is too long."""
    if max_duration_s is None:
        return
    if stream.duration is not None and stream.time_base is not None:
        declared = float(stream.duration * stream.time_base)
    elif container_duration_us:
        declared = container_duration_us / 1_000_000
    else:
        return
    if declared > max_duration_s + 1.0 / SAMPLE_RATE:
        raise _too_long(name, field, max_duration_s, declared)


def _too_long(
    name: str, field: str, limit: float | None, seconds: float, *, at_least: bool = False
) -> MediaTooLong:
    more = "more than " if at_least else ""
    return MediaTooLong(
        f"The {field} file '{name}' is {more}{seconds:.1f} s long; the limit is {limit:g} s. "
        "Trim it or split the job.",
        field=field,
    )
