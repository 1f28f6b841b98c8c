"""Whisper audio features, exactly as LatentSync computes them (LATENTSYNC.md §2.3, §4).

Three steps, each usable on its own:

1. :func:`log_mel` — the reference log-mel spectrogram of the whole file. Unlike ``WhisperFeatureExtractor``
   the dynamic-range clamp uses the maximum over the *whole file*, and the last 30-s window is zero padded in the
   normalised log-mel domain (not by padding the waveform).
2. :meth:`AudioEncoder.features` — each 30-s window (3000 mel frames) goes through the Whisper encoder on its
   own; the five hidden states *before* ``ln_post`` (input embedding + the 4 block outputs) are kept, and
   ``floor(window_frames / 2)`` encoder frames of each window → ``(L, 5, C)`` at 50 feature frames per second.
3. :func:`frame_windows` — one ``(50, C)`` window per 25-fps video frame: feature rows ``2i-4 … 2i+5``
   (clamped to the file), time-major / layer-minor, and ``floor(L/2) + 2`` frames for the whole file.

The encoder is a ``transformers`` ``WhisperEncoder`` loaded from OpenAI's ``tiny.pt`` format
(``{"dims", "model_state_dict"}``) with the key mapping of LATENTSYNC.md §4.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from lipsync.errors import EmptyMedia, NoAudioStream, UnreadableMedia, WeightsError

__all__ = [
    "CHUNK_FRAMES",
    "FEATURE_RATE",
    "HOP_LENGTH",
    "N_FFT",
    "SAMPLE_RATE",
    "AudioEncoder",
    "duration_frames",
    "frame_count",
    "frame_windows",
    "log_mel",
    "mel_filters",
    "read_audio_16k",
]

SAMPLE_RATE = 16_000
N_FFT = 400
HOP_LENGTH = 160  # 100 mel frames per second
CHUNK_FRAMES = 3_000  # one 30-s Whisper window, in mel frames
FEATURE_RATE = 50  # encoder frames per second (conv2 has stride 2)
#: LatentSync's ``audio_feat_length``: 2 video frames of context before, 2 after (→ 10 encoder frames).
AUDIO_FEAT_LENGTH = (2, 2)


# ---------------------------------------------------------------------------------------------------------
# Waveform and log-mel
# ---------------------------------------------------------------------------------------------------------


def read_audio_16k(path: str | os.PathLike[str]) -> npt.NDArray[np.float32]:
    """Decode any audio (or the audio of a video) to mono 16 kHz float32 in [-1, 1).

    Like the reference's ``ffmpeg -f s16le -ac 1 -ar 16000`` pipe, samples are quantised to int16 and divided
    by 32768, so the features see the same values (PyAV drives the same libswresample).
    """
    import av  # heavy; only needed when reading files

    try:
        container = av.open(os.fspath(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise UnreadableMedia(f"cannot open audio {os.fspath(path)!r}: {exc}") from exc
    with container:
        if not container.streams.audio:
            raise NoAudioStream(f"{os.fspath(path)!r} has no audio stream")
        resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        parts: list[npt.NDArray[Any]] = []
        try:
            for frame in container.decode(audio=0):
                for out in resampler.resample(frame):
                    parts.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                parts.append(out.to_ndarray().reshape(-1))
        except av.error.FFmpegError as exc:
            raise UnreadableMedia(f"cannot decode audio of {os.fspath(path)!r}: {exc}") from exc
    samples = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)
    return samples.astype(np.float32) / 32768.0


@functools.lru_cache(maxsize=4)
def mel_filters(n_mels: int = 80) -> torch.Tensor:
    """``(n_mels, 201)`` float32 mel filterbank, equal (to 2e-9) to whisper's ``mel_filters.npz``.

    Whisper's file is ``librosa.filters.mel(sr=16000, n_fft=400, n_mels=80)``: Slaney mel scale, Slaney area
    normalisation. ``transformers`` builds the same bank without a librosa dependency.
    """
    from transformers.audio_utils import mel_filter_bank

    bank = mel_filter_bank(
        num_frequency_bins=N_FFT // 2 + 1,
        num_mel_filters=n_mels,
        min_frequency=0.0,
        max_frequency=SAMPLE_RATE / 2,
        sampling_rate=SAMPLE_RATE,
        norm="slaney",
        mel_scale="slaney",
    )
    return torch.from_numpy(np.ascontiguousarray(bank.T, dtype=np.float32))


def log_mel(waveform_16k: npt.NDArray[np.floating[Any]] | torch.Tensor, *, n_mels: int = 80) -> torch.Tensor:
    """Reference log-mel of the whole file: ``(n_mels, n_samples // 160)`` float32 on the CPU.

    ``|STFT|²`` (Hann 400, hop 160, centred, reflect padding; the last STFT frame dropped) → mel → ``log10``
    clamped at 1e-10 → floored at (global max − 8) → ``(x + 4) / 4``.
    """
    audio = (
        torch.as_tensor(np.asarray(waveform_16k, dtype=np.float32))
        if not torch.is_tensor(waveform_16k)
        else (waveform_16k.detach().to("cpu", torch.float32))
    )
    if audio.ndim != 1:
        raise ValueError(f"expected a mono 1-D waveform, got shape {tuple(audio.shape)}")
    if audio.numel() < HOP_LENGTH:
        # Fewer samples than one hop gives no mel frame (and reflect padding would fail).
        return torch.zeros((n_mels, 0), dtype=torch.float32)
    window = torch.hann_window(N_FFT)
    stft = torch.stft(audio, N_FFT, HOP_LENGTH, window=window, return_complex=True)
    magnitudes = stft[..., :-1].abs() ** 2
    mel = mel_filters(n_mels) @ magnitudes
    log_spec = torch.clamp(mel, min=1e-10).log10()
    log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)  # global max: the whole file, not per window
    return (log_spec + 4.0) / 4.0


def _mel_windows(mel: torch.Tensor) -> list[tuple[torch.Tensor, int]]:
    """Split into 3000-frame windows, zero padded in the normalised domain; with the encoder frames to keep."""
    windows = []
    total = mel.shape[-1]
    for start in range(0, total, CHUNK_FRAMES):
        segment = mel[:, start : start + CHUNK_FRAMES]
        keep = segment.shape[-1] // 2
        if segment.shape[-1] < CHUNK_FRAMES:
            segment = torch.nn.functional.pad(segment, (0, CHUNK_FRAMES - segment.shape[-1]))
        windows.append((segment, keep))
    return windows


# ---------------------------------------------------------------------------------------------------------
# Per-video-frame windows
# ---------------------------------------------------------------------------------------------------------


def frame_count(num_features: int, fps: float = 25) -> int:
    """Number of video frames the reference produces for ``L`` feature rows: the loop appends frame ``i`` and
    stops after the first ``i`` with ``int(i * 50 / fps) > L`` (``floor(L/2) + 2`` at 25 fps)."""
    i = 0
    while int(i * float(FEATURE_RATE) / fps) <= num_features:
        i += 1
    return i + 1


def frame_windows(
    features: torch.Tensor,
    num_frames: int | None = None,
    fps: float = 25,
    audio_feat_length: tuple[int, int] = AUDIO_FEAT_LENGTH,
) -> torch.Tensor:
    """Cut ``(L, S, C)`` features into ``(N, 10*S, C)`` per-frame windows (``(N, 50, 384)`` for Whisper tiny).

    Frame ``i`` takes feature rows ``c-4 … c+5`` where ``c = int(i*50/fps)``, each clamped to ``[0, L-1]``;
    rows are ordered time-major, layer-minor. ``num_frames=None`` gives the reference count
    (:func:`frame_count`); an explicit count cuts that many (frames past the end repeat the clamped tail).
    """
    if features.ndim != 3:
        raise ValueError(f"expected features of shape (L, layers, C), got {tuple(features.shape)}")
    length = features.shape[0]
    if length == 0:
        raise EmptyMedia("the audio is too short to produce any audio features")
    n = frame_count(length, fps) if num_frames is None else int(num_frames)
    if n < 0:
        raise ValueError(f"num_frames must be >= 0, got {num_frames}")
    before = audio_feat_length[0] * 2
    after = (audio_feat_length[1] + 1) * 2
    frames = torch.arange(n, dtype=torch.float64)
    # int(i * 50 / fps) in float64, as the reference computes it in Python floats.
    centres = torch.floor(frames * FEATURE_RATE / fps).to(torch.int64)
    offsets = torch.arange(-before, after, dtype=torch.int64)
    index = (centres[:, None] + offsets[None, :]).clamp_(0, length - 1).to(features.device)
    windows = features[index]  # (N, 10, S, C)
    return windows.reshape(n, -1, features.shape[-1])


# ---------------------------------------------------------------------------------------------------------
# The encoder
# ---------------------------------------------------------------------------------------------------------

# OpenAI whisper encoder names → transformers WhisperEncoder names (LATENTSYNC.md §4), applied in order.
_KEY_RENAMES = (
    ("blocks.", "layers."),
    (".attn.query", ".self_attn.q_proj"),
    (".attn.key", ".self_attn.k_proj"),
    (".attn.value", ".self_attn.v_proj"),
    (".attn.out", ".self_attn.out_proj"),
    (".attn_ln", ".self_attn_layer_norm"),
    (".mlp.0", ".fc1"),
    (".mlp.2", ".fc2"),
    (".mlp_ln", ".final_layer_norm"),
    ("ln_post", "layer_norm"),
    ("positional_embedding", "embed_positions.weight"),
)
_ENCODER_DIMS = ("n_mels", "n_audio_ctx", "n_audio_state", "n_audio_head", "n_audio_layer")


def _map_openai_encoder_keys(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    mapped: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        if not key.startswith("encoder."):
            continue  # the decoder is in the file but LatentSync never runs it
        name = key[len("encoder.") :]
        for old, new in _KEY_RENAMES:
            name = name.replace(old, new)
        mapped[name] = value
    return mapped


class AudioEncoder:
    """Whisper encoder that returns LatentSync's audio features.

    >>> enc = AudioEncoder.from_checkpoint("weights/latentsync-1.6/whisper/tiny.pt")
    >>> feats = enc.features(read_audio_16k("speech.wav"))   # (L, 5, 384)
    >>> windows = enc.frame_windows(feats)                    # (floor(L/2)+2, 50, 384)
    """

    def __init__(self, encoder: Any, *, window_batch: int = 1) -> None:
        # ``encoder`` is a transformers WhisperEncoder; typed loosely so importing this module stays cheap.
        self.encoder = encoder.eval()
        #: 30-s windows encoded per forward. 1 matches the reference call for call; more is faster on a GPU.
        self.window_batch = max(1, int(window_batch))

    # -- loading ------------------------------------------------------------------------------------------

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike[str],
        *,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        window_batch: int = 1,
    ) -> AudioEncoder:
        """Load OpenAI's ``tiny.pt`` format strictly; any problem is a :class:`WeightsError`."""
        path = Path(path)
        if not path.is_file():
            raise WeightsError(f"Whisper checkpoint not found: {path}")
        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises a zoo of types for a corrupt/truncated/non-torch file
            raise WeightsError(f"cannot read Whisper checkpoint {path}: {exc}") from exc
        return cls.from_openai_checkpoint(
            checkpoint, device=device, dtype=dtype, window_batch=window_batch, source=str(path)
        )

    @classmethod
    def from_openai_checkpoint(
        cls,
        checkpoint: Mapping[str, Any],
        *,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        window_batch: int = 1,
        source: str = "<checkpoint>",
    ) -> AudioEncoder:
        """Build from an in-memory ``{"dims": {...}, "model_state_dict": {...}}`` dict."""
        from transformers import WhisperConfig
        from transformers.models.whisper.modeling_whisper import WhisperEncoder

        if (
            not isinstance(checkpoint, Mapping)
            or "dims" not in checkpoint
            or "model_state_dict" not in checkpoint
        ):
            raise WeightsError(
                f"{source} is not an OpenAI Whisper checkpoint (needs 'dims' and 'model_state_dict')"
            )
        dims = checkpoint["dims"]
        missing_dims = [d for d in _ENCODER_DIMS if d not in dims]
        if missing_dims:
            raise WeightsError(f"{source}: 'dims' lacks {', '.join(missing_dims)}")
        state = _map_openai_encoder_keys(checkpoint["model_state_dict"])
        if not state:
            raise WeightsError(f"{source}: no 'encoder.*' weights in model_state_dict")
        width = int(dims["n_audio_state"])
        config = WhisperConfig(
            d_model=width,
            encoder_layers=int(dims["n_audio_layer"]),
            encoder_attention_heads=int(dims["n_audio_head"]),
            encoder_ffn_dim=4 * width,  # openai-whisper's MLP is always 4x wide
            num_mel_bins=int(dims["n_mels"]),
            max_source_positions=int(dims["n_audio_ctx"]),
            dropout=0.0,
            attention_dropout=0.0,
            activation_dropout=0.0,
            activation_function="gelu",  # exact (erf) GELU, as openai-whisper
        )
        config._attn_implementation = "sdpa"
        with torch.device("meta"):  # no throw-away random init; the checkpoint tensors are assigned in place
            encoder = WhisperEncoder(config)
        try:
            encoder.load_state_dict(state, strict=True, assign=True)
        except RuntimeError as exc:  # missing/unexpected keys or shape mismatches
            raise WeightsError(
                f"{source} does not match a Whisper encoder of dims {dict(dims)}: {exc}"
            ) from exc
        # tiny.pt stores float16: upcast like openai-whisper's Whisper(dims) does (the positional table keeps its
        # fp16-rounded values, which the reference uses too).
        encoder = encoder.to(device=torch.device(device), dtype=dtype)
        return cls(encoder, window_batch=window_batch)

    # -- properties ---------------------------------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        return self.encoder.conv1.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.encoder.conv1.weight.dtype

    @property
    def hidden_size(self) -> int:
        return int(self.encoder.config.d_model)

    @property
    def num_states(self) -> int:
        """Hidden states per encoder frame: the input embedding plus one per block (5 for Whisper tiny)."""
        return len(self.encoder.layers) + 1

    # -- running ------------------------------------------------------------------------------------------

    @torch.inference_mode()
    def encode_windows(self, mel_windows: torch.Tensor) -> torch.Tensor:
        """``(B, n_mels, 3000)`` → ``(B, 1500, num_states, C)``: the pre-``ln_post`` hidden states.

        transformers' own ``hidden_states[-1]`` is taken *after* ``layer_norm`` (= ``ln_post``), which the
        reference never applies, so the blocks are run here one by one.
        """
        enc = self.encoder
        x = mel_windows.to(device=self.device, dtype=self.dtype)
        x = torch.nn.functional.gelu(enc.conv1(x))
        x = torch.nn.functional.gelu(enc.conv2(x))
        x = x.permute(0, 2, 1)  # (B, T=1500, C)
        x = x + enc.embed_positions.weight[: x.shape[1]]
        states = [x]
        for layer in enc.layers:
            x = layer(x, None)
            states.append(x)
        return torch.stack(states, dim=2)

    def features_from_mel(self, mel: torch.Tensor) -> torch.Tensor:
        """Whole-file ``(n_mels, T)`` log-mel → ``(L, num_states, C)`` float32 on the CPU, ``L = Σ floor(w/2)``."""
        # A window keeping 0 frames (a 1-frame tail) contributes nothing: do not run the encoder for it.
        windows = [(w, keep) for w, keep in _mel_windows(mel) if keep > 0]
        if not windows:
            raise EmptyMedia("the audio is too short to produce any audio features")
        out: list[torch.Tensor] = []
        for first in range(0, len(windows), self.window_batch):
            group = windows[first : first + self.window_batch]
            states = self.encode_windows(torch.stack([w for w, _ in group]))
            for (_, keep), window_states in zip(group, states, strict=True):
                # Copied to float32 on the CPU as the reference does (fp16 values stay exact in fp32).
                out.append(window_states[:keep].to("cpu", torch.float32))
        return torch.cat(out, dim=0)

    def features(self, waveform_16k: npt.NDArray[np.floating[Any]] | torch.Tensor) -> torch.Tensor:
        """Mono 16-kHz waveform → whole-file features ``(L, 5, C)`` (float32, CPU)."""
        return self.features_from_mel(log_mel(waveform_16k, n_mels=int(self.encoder.config.num_mel_bins)))

    def frame_windows(
        self, features: torch.Tensor, num_frames: int | None = None, fps: float = 25
    ) -> torch.Tensor:
        """Per-video-frame ``(N, 50, C)`` windows; see :func:`frame_windows`."""
        return frame_windows(features, num_frames=num_frames, fps=fps)

    def frame_features(
        self,
        audio: npt.NDArray[np.floating[Any]] | torch.Tensor | str | os.PathLike[str],
        num_frames: int | None = None,
    ) -> torch.Tensor:
        """Waveform (16 kHz mono) or audio/video file → ``(N, 50, C)`` per-frame features at 25 fps."""
        waveform = read_audio_16k(audio) if isinstance(audio, str | os.PathLike) else audio
        return self.frame_windows(self.features(waveform), num_frames=num_frames)


def duration_frames(num_samples: int, fps: float = 25) -> int:
    """Frames the reference outputs for ``num_samples`` of 16-kHz audio (mel → features → frames)."""
    mel_frames = num_samples // HOP_LENGTH
    features = sum(min(CHUNK_FRAMES, mel_frames - s) // 2 for s in range(0, mel_frames, CHUNK_FRAMES))
    return frame_count(features, fps) if features else 0
