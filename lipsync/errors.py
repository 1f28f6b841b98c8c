"""One small exception hierarchy for the whole project (torch-free, importable everywhere).

    LipsyncError                      base; carries ``job_id`` and ``field`` context when known
    ├── InputError                    the request or its media cannot be processed (user can fix it)
    │   ├── MediaError                unusable media file
    │   │   ├── UnreadableMedia       corrupt / truncated / not a media file / unsupported codec
    │   │   ├── NoVideoStream         the "video" input has no video stream
    │   │   ├── NoAudioStream         the "audio" input has no audio stream
    │   │   ├── EmptyMedia            zero-length video or audio
    │   │   ├── MediaTooLong          longer than the configured limit
    │   │   ├── ResolutionError       frame size outside the supported range
    │   │   └── NoFaceDetected        no usable face (names the first frame and its timestamp)
    │   └── MediaFetchError           an input URL could not be downloaded / was refused
    ├── WeightsError                  model weights missing, corrupt, or the hub unreachable
    ├── EngineError                   the model failed while running (a bug or an OOM, not the user's fault)
    ├── JobCancelled                  the job was cancelled while running
    └── (client side, in ``lipsync.client``) APIError / TransportError / JobFailed / JobTimeout

Every error knows the WaveSpeed task error ``code`` it maps to (``wavespeed_code``) and a short stable
machine-readable ``error_type`` so the API, the CLI (exit codes) and logs all agree.
"""

from __future__ import annotations

__all__ = [
    "EmptyMedia",
    "EngineError",
    "InputError",
    "JobCancelled",
    "LipsyncError",
    "MediaError",
    "MediaFetchError",
    "MediaTooLong",
    "NoAudioStream",
    "NoFaceDetected",
    "NoVideoStream",
    "ResolutionError",
    "UnreadableMedia",
    "WeightsError",
]


class LipsyncError(Exception):
    """Base of every error this project raises on purpose."""

    #: WaveSpeed task error code (see contracts.TaskErrorCode).
    wavespeed_code: int = 5000
    #: Stable slug for logs, CLI output and the API's ``error`` text prefix.
    error_type: str = "internal_error"
    #: Process exit code used by the CLI.
    exit_code: int = 1

    def __init__(self, message: str, *, job_id: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.job_id = job_id
        self.field = field

    def with_context(self, *, job_id: str | None = None, field: str | None = None) -> LipsyncError:
        """Attach context in place (keeps the original type and traceback); returns self."""
        if job_id is not None:
            self.job_id = job_id
        if field is not None:
            self.field = field
        return self

    def __str__(self) -> str:
        parts = [self.message]
        if self.field:
            parts.append(f"(field: {self.field})")
        if self.job_id:
            parts.append(f"(job: {self.job_id})")
        return " ".join(parts)


class InputError(LipsyncError):
    wavespeed_code = 1401
    error_type = "invalid_input"
    exit_code = 2


class MediaError(InputError):
    wavespeed_code = 1401
    error_type = "media_error"
    exit_code = 3


class UnreadableMedia(MediaError):
    error_type = "media_unreadable"


class NoVideoStream(MediaError):
    error_type = "no_video_stream"


class NoAudioStream(MediaError):
    error_type = "no_audio_stream"


class EmptyMedia(MediaError):
    error_type = "empty_media"


class MediaTooLong(MediaError):
    error_type = "media_too_long"


class ResolutionError(MediaError):
    error_type = "unsupported_resolution"


class NoFaceDetected(MediaError):
    """No usable face. ``frame_index``/``timestamp_s`` name the first frame without one (25-fps timeline)."""

    wavespeed_code = 1403
    error_type = "no_face"
    exit_code = 4

    def __init__(
        self,
        message: str,
        *,
        frame_index: int | None = None,
        timestamp_s: float | None = None,
        job_id: str | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message, job_id=job_id, field=field)
        self.frame_index = frame_index
        self.timestamp_s = timestamp_s


class MediaFetchError(InputError):
    wavespeed_code = 1402
    error_type = "media_not_reachable"
    exit_code = 3


class WeightsError(LipsyncError):
    wavespeed_code = 5003
    error_type = "weights_unavailable"
    exit_code = 5


class EngineError(LipsyncError):
    wavespeed_code = 1403
    error_type = "engine_error"
    exit_code = 6


class JobCancelled(LipsyncError):
    wavespeed_code = 1405
    error_type = "cancelled"
    exit_code = 130
