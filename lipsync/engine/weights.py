"""Model weights: where they live, downloading them (pinned + checksummed), tiny dev weights, and loading.

Directory layout under one root (``LIPSYNC_WEIGHTS_DIR``, default ``~/.cache/lipsync/weights``)::

    <root>/
      latentsync-1.6/                    one folder per release ("1.5", "1.6")
        latentsync_unet.pt               ByteDance/LatentSync-1.6 : latentsync_unet.pt
        whisper/tiny.pt                  ByteDance/LatentSync-1.6 : whisper/tiny.pt  (= OpenAI whisper tiny)
        lipsync-weights.json             what was written here: kind (official|tiny), files + sha256
      sd-vae-ft-mse/                     stabilityai/sd-vae-ft-mse (shared by all releases)
        config.json
        diffusion_pytorch_model.safetensors
      insightface/                       InsightFace root: FaceAnalysis(name="buffalo_l", root=<this>)
        models/buffalo_l/det_10g.onnx
        models/buffalo_l/2d106det.onnx

This module is the only place that talks to the Hugging Face hub; everything else loads local files.
Official and tiny weights go through the same :func:`load_engine_models`; the only difference is that a tiny
folder's ``lipsync-weights.json`` carries the (tiny) U-Net config, where official weights use the release's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from lipsync.errors import WeightsError

if TYPE_CHECKING:
    from lipsync.engine.audio import AudioEncoder
    from lipsync.engine.unet import LatentSyncUNet, UNetConfig
    from lipsync.engine.vae import VAE

__all__ = [
    "DEFAULT_VERSION",
    "VERSIONS",
    "EngineModels",
    "HubFile",
    "WeightsLayout",
    "default_weights_dir",
    "download_weights",
    "hub_files",
    "load_engine_models",
    "sha256_file",
    "verify_weights",
    "write_tiny_weights",
]

VERSIONS = ("1.5", "1.6")
DEFAULT_VERSION = "1.6"
WEIGHTS_DIR_ENV = "LIPSYNC_WEIGHTS_DIR"
MANIFEST_NAME = "lipsync-weights.json"
MANIFEST_FORMAT = 1

# -------------------------------------------------------------------------------------------------------------
# Pinned sources. Revisions are commit hashes, so a re-upload on the hub can never change what we run.
# The hashes and sizes are the Git-LFS sha256 object ids of those files, as recorded in several public
# deployment manifests that pin the same revisions (the hub itself is unreachable from where this was written;
# LATENTSYNC.md §1 has the 1.6 U-Net size/prefix and the tiny.pt hash). A wrong entry fails loudly as a
# checksum mismatch, never silently.
# -------------------------------------------------------------------------------------------------------------
LATENTSYNC_REPOS = {"1.5": "ByteDance/LatentSync-1.5", "1.6": "ByteDance/LatentSync-1.6"}
LATENTSYNC_REVISIONS = {
    "1.5": "32a20d29aead0498e3e885e90dbbe8027da1b61b",
    "1.6": "c42c7e6c8e9c213626389fa7d9a3c444b8536353",
}
UNET_SHA256 = {
    "1.5": ("6440b49a7ccceff56cdc001f5f17605216337f5bbd66fa360139768926e23f51", 5_072_348_184),
    "1.6": ("0a478e89eb660f82da4c35dbdde8a5adfb27f99d1b4e50edd03729e1e98316d3", 5_072_222_488),
}
#: OpenAI's multilingual whisper ``tiny.pt`` (the hash is also in OpenAI's own download URL).
WHISPER_TINY_SHA256 = ("65147644a518d12f04e32d6f3b26facc3f8dd46e5390956a9424a650c0ce22b9", 75_572_083)

VAE_REPO = "stabilityai/sd-vae-ft-mse"
VAE_REVISION = "31f26fdeee1355a5c34592e401dd41e45d25a493"
VAE_FILES = {
    "config.json": ("92d3dfb746fca211a2c9e019e285f8597412211728dce3c5bcf4eda0f2d62e7e", 547),
    "diffusion_pytorch_model.safetensors": (
        "a1d993488569e928462932c8c38a0760b874d166399b14414135bd9c42df5815",
        334_643_276,
    ),
}

#: InsightFace's ``buffalo_l`` pack. The reference lets insightface fetch ``buffalo_l.zip`` from GitHub
#: releases on first use; we take the two files it actually loads from a pinned hub mirror of that pack.
FACE_REPO = "public-data/insightface"
FACE_REVISION = "33c1063c49c785b7652d3fd529f86fa4f149392b"
FACE_FILES = {
    "models/buffalo_l/det_10g.onnx": (
        "5838f7fe053675b1c7a08b633df49e7af5495cee0493c7dcf6697200b85b5b91",
        16_923_827,
    ),
    "models/buffalo_l/2d106det.onnx": (
        "f001b856447c413801ef5c42091ed0cd516fcd21f2d6b79635b1e733a7109dbf",
        5_030_888,
    ),
}

#: ``hf_hub_download``-compatible callable: ``(repo_id, filename, *, revision, local_dir) -> local path``.
HubDownload = Callable[..., Any]


def default_weights_dir() -> Path:
    """``$LIPSYNC_WEIGHTS_DIR`` if set, else ``~/.cache/lipsync/weights``."""
    env = os.environ.get(WEIGHTS_DIR_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "lipsync" / "weights"


def _normalise_version(version: str) -> str:
    key = str(version).strip().removeprefix("v")
    if key not in VERSIONS:
        raise WeightsError(f"unknown LatentSync version {version!r}; expected one of {', '.join(VERSIONS)}")
    return key


def sha256_file(path: str | os.PathLike[str], *, chunk_size: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()


# -------------------------------------------------------------------------------------------------------------
# Layout
# -------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WeightsLayout:
    """Where each file of one release lives under ``root`` (see the module docstring)."""

    root: Path
    version: str = DEFAULT_VERSION

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root).expanduser())
        object.__setattr__(self, "version", _normalise_version(self.version))

    @classmethod
    def default(cls, version: str = DEFAULT_VERSION) -> WeightsLayout:
        return cls(default_weights_dir(), version)

    @property
    def version_dir(self) -> Path:
        return self.root / f"latentsync-{self.version}"

    @property
    def unet_path(self) -> Path:
        return self.version_dir / "latentsync_unet.pt"

    @property
    def whisper_path(self) -> Path:
        return self.version_dir / "whisper" / "tiny.pt"

    @property
    def vae_dir(self) -> Path:
        return self.root / "sd-vae-ft-mse"

    @property
    def face_models_dir(self) -> Path:
        """InsightFace root: pass as ``FaceAnalysis(name="buffalo_l", root=face_models_dir)``."""
        return self.root / "insightface"

    @property
    def buffalo_l_dir(self) -> Path:
        return self.face_models_dir / "models" / "buffalo_l"

    @property
    def manifest_path(self) -> Path:
        return self.version_dir / MANIFEST_NAME

    def engine_files(self) -> list[Path]:
        return [
            self.unet_path,
            self.whisper_path,
            self.vae_dir / "config.json",
            self.vae_dir / "diffusion_pytorch_model.safetensors",
        ]

    def face_model_files(self) -> list[Path]:
        return [self.buffalo_l_dir / "det_10g.onnx", self.buffalo_l_dir / "2d106det.onnx"]

    def check(self, *, face_models: bool = False) -> None:
        """Raise :class:`WeightsError` listing every missing file (face models only when asked)."""
        wanted = self.engine_files() + (self.face_model_files() if face_models else [])
        missing = [p for p in wanted if not p.is_file()]
        if missing:
            listed = "\n  ".join(str(p) for p in missing)
            raise WeightsError(
                f"LatentSync {self.version} weights are incomplete under {self.root}; missing:\n  {listed}\n"
                f"Run `lipsync weights download --version {self.version} --dir {self.root}` "
                f"(or `lipsync weights tiny DIR` for tiny development weights)."
            )

    def read_manifest(self) -> dict[str, Any] | None:
        """The ``lipsync-weights.json`` written by download/tiny, or None for hand-copied official files."""
        if not self.manifest_path.is_file():
            return None
        try:
            data = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise WeightsError(f"unreadable weights manifest {self.manifest_path}: {exc}") from exc
        if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
            raise WeightsError(
                f"{self.manifest_path} is not a lipsync weights manifest (format {MANIFEST_FORMAT})"
            )
        return data

    @property
    def is_tiny(self) -> bool:
        manifest = self.read_manifest()
        return bool(manifest and manifest.get("kind") == "tiny")

    def unet_config(self) -> UNetConfig:
        """The U-Net config: the manifest's for tiny weights, the release's for official ones."""
        from lipsync.engine.unet import UNetConfig

        manifest = self.read_manifest()
        if manifest and manifest.get("unet_config") is not None:
            try:
                return UNetConfig.from_dict(dict(manifest["unet_config"]))
            except (TypeError, ValueError) as exc:
                raise WeightsError(f"{self.manifest_path}: invalid unet_config: {exc}") from exc
        return UNetConfig.for_version(self.version)

    def _write_manifest(
        self, kind: str, files: Iterable[Path], extra: Mapping[str, Any] | None = None
    ) -> None:
        data: dict[str, Any] = {"format": MANIFEST_FORMAT, "kind": kind, "version": self.version}
        data.update(extra or {})
        data["files"] = {p.relative_to(self.root).as_posix(): sha256_file(p) for p in files}
        self.version_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.manifest_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, self.manifest_path)


# -------------------------------------------------------------------------------------------------------------
# Download
# -------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HubFile:
    """One file to fetch: ``repo_id``/``filename`` at ``revision``, stored at ``root / target``."""

    repo_id: str
    filename: str
    revision: str
    sha256: str
    size: int
    target: str


def hub_files(version: str = DEFAULT_VERSION, *, include_face_models: bool = True) -> tuple[HubFile, ...]:
    """The pinned files of a release (paths relative to the layout root)."""
    version = _normalise_version(version)
    repo, rev = LATENTSYNC_REPOS[version], LATENTSYNC_REVISIONS[version]
    vdir = f"latentsync-{version}"
    files = [
        HubFile(repo, "latentsync_unet.pt", rev, *UNET_SHA256[version], f"{vdir}/latentsync_unet.pt"),
        HubFile(repo, "whisper/tiny.pt", rev, *WHISPER_TINY_SHA256, f"{vdir}/whisper/tiny.pt"),
    ]
    files += [
        HubFile(VAE_REPO, name, VAE_REVISION, *pin, f"sd-vae-ft-mse/{name}")
        for name, pin in VAE_FILES.items()
    ]
    if include_face_models:
        files += [
            HubFile(FACE_REPO, name, FACE_REVISION, *pin, f"insightface/{name}")
            for name, pin in FACE_FILES.items()
        ]
    return tuple(files)


def _default_hub() -> HubDownload:
    from huggingface_hub import hf_hub_download

    return hf_hub_download


def _hub_error(exc: BaseException, item: HubFile) -> WeightsError | None:
    """Translate what the hub client raised into a WeightsError; None for anything that is not a hub problem."""
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        LocalEntryNotFoundError,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    where = f"{item.repo_id}/{item.filename}@{item.revision[:12]}"
    # LocalEntryNotFoundError is what hf_hub_download raises when the hub cannot be reached at all (its cause is
    # the transport's connect error); ConnectionError/TimeoutError cover other clients plugged into the seam.
    if isinstance(exc, LocalEntryNotFoundError | ConnectionError | TimeoutError):
        return WeightsError(
            f"cannot reach the Hugging Face hub to download {where}: {exc}\n"
            "Check the network (HF_ENDPOINT / proxy settings), or copy the files into the weights directory by "
            "hand (see docs/engine-audio-weights.md); `lipsync weights tiny DIR` writes development weights offline."
        )
    if isinstance(exc, GatedRepoError):
        return WeightsError(
            f"access to {where} is gated; log in with `hf auth login` (or set HF_TOKEN): {exc}"
        )
    if isinstance(
        exc, RepositoryNotFoundError | RevisionNotFoundError | RemoteEntryNotFoundError | EntryNotFoundError
    ):
        return WeightsError(f"the hub has no {where} (pinned revision): {exc}")
    if isinstance(exc, OSError):  # HfHubHTTPError and disk errors (full disk, permissions)
        return WeightsError(f"downloading {where} failed: {exc}")
    return None


def _verify(path: Path, item: HubFile) -> str | None:
    """None when ``path`` has the pinned size and sha256, else a description of the difference."""
    size = path.stat().st_size
    if size != item.size:
        return f"size {size:,} B, expected {item.size:,} B"
    digest = sha256_file(path)
    if digest != item.sha256:
        return f"sha256 {digest}, expected {item.sha256}"
    return None


def download_weights(
    version: str = DEFAULT_VERSION,
    dest: str | os.PathLike[str] | None = None,
    *,
    hub: HubDownload | None = None,
    include_face_models: bool = True,
    files: Sequence[HubFile] | None = None,
    log: Callable[[str], None] | None = None,
) -> WeightsLayout:
    """Fetch a release's pinned files into ``dest`` (default :func:`default_weights_dir`), checking sha256.

    Files already present with the right checksum are kept. A download with the wrong size or checksum is
    deleted and raises :class:`WeightsError` (nothing unverified ever reaches its final path). ``hub`` is the
    seam for the hub (default ``huggingface_hub.hf_hub_download``); ``files`` overrides the pinned list.
    """
    layout = WeightsLayout(Path(dest) if dest is not None else default_weights_dir(), version)
    items = (
        tuple(files)
        if files is not None
        else hub_files(layout.version, include_face_models=include_face_models)
    )
    fetch = hub if hub is not None else _default_hub()
    say = log or (lambda _msg: None)
    # Partial downloads live here (hf resumes them on the next run); emptied once everything is verified.
    staging = layout.root / ".download"
    written: list[Path] = []
    for item in items:
        target = layout.root / item.target
        if target.is_file() and _verify(target, item) is None:
            say(f"ok       {item.target} (already present, checksum verified)")
            written.append(target)
            continue
        say(f"download {item.repo_id}/{item.filename} @ {item.revision[:12]}")
        local_dir = staging / item.repo_id.replace("/", "--")
        try:
            fetched = Path(
                fetch(item.repo_id, item.filename, revision=item.revision, local_dir=str(local_dir))
            )
        except Exception as exc:
            error = _hub_error(exc, item)
            if error is None:
                raise
            raise error from exc
        if not fetched.is_file():
            raise WeightsError(f"the hub client returned {fetched}, which is not a file ({item.target})")
        problem = _verify(fetched, item)
        if problem is not None:
            fetched.unlink(missing_ok=True)
            raise WeightsError(
                f"checksum mismatch for {item.repo_id}/{item.filename} @ {item.revision[:12]}: {problem}. "
                "The corrupt download was deleted; run the command again."
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        if fetched.resolve() != target.resolve():
            shutil.move(str(fetched), str(target))
        written.append(target)
        say(f"ok       {item.target}")
    shutil.rmtree(staging, ignore_errors=True)
    layout._write_manifest(
        "official",
        written,
        {"sources": [dataclasses.asdict(i) for i in items]},
    )
    return layout


def verify_weights(layout: WeightsLayout, *, face_models: bool = False) -> list[str]:
    """Re-hash the files listed in the manifest (or the pinned list when there is none).

    Returns the relative paths checked; raises :class:`WeightsError` naming every missing or changed file.
    """
    layout.check(face_models=face_models)
    manifest = layout.read_manifest()
    if manifest and isinstance(manifest.get("files"), dict):
        expected = {str(k): str(v) for k, v in manifest["files"].items()}
    else:
        expected = {f.target: f.sha256 for f in hub_files(layout.version, include_face_models=face_models)}
    problems = []
    for rel, digest in sorted(expected.items()):
        path = layout.root / rel
        if not path.is_file():
            problems.append(f"missing  {rel}")
        elif sha256_file(path) != digest:
            problems.append(f"changed  {rel} (sha256 differs from {digest[:16]}…)")
    if problems:
        raise WeightsError(f"weights under {layout.root} failed verification:\n  " + "\n  ".join(problems))
    return sorted(expected)


# -------------------------------------------------------------------------------------------------------------
# Tiny development weights
# -------------------------------------------------------------------------------------------------------------

#: Whisper dims of the tiny weights: encoder width = the tiny U-Net's cross_attention_dim; 1500 positions (30 s)
#: so the real windowing runs unchanged. The decoder is shrunk but present, as in OpenAI's files.
TINY_WHISPER_TEXT_DIMS = {
    "n_vocab": 51865,
    "n_text_ctx": 448,
    "n_text_state": 2,
    "n_text_head": 1,
    "n_text_layer": 4,
}


def _randomise_(tensors: Iterable[tuple[str, torch.Tensor]], generator: torch.Generator) -> None:
    """Unit-gain random values (the fixtures' scheme): outputs are O(1), so every layer matters.

    ndim >= 2: N(0, 1/fan_in); 1-D ``*weight`` (norm scales): 1 + 0.1·N(0,1); 1-D ``*bias``: 0.1·N(0,1).
    """
    with torch.no_grad():
        for name, t in tensors:
            noise = torch.randn(t.shape, generator=generator, dtype=torch.float32)
            if t.ndim >= 2:
                fan_in = int(torch.tensor(t.shape[1:]).prod())
                t.copy_(noise / fan_in**0.5)
            elif name.endswith("weight"):
                t.copy_(1.0 + 0.1 * noise)
            else:
                t.copy_(0.1 * noise)


def _openai_whisper_checkpoint(dims: Mapping[str, int], generator: torch.Generator) -> dict[str, Any]:
    """A random whisper checkpoint in OpenAI's format: ``{"dims", "model_state_dict"}``, float16 tensors."""
    from transformers.models.whisper.modeling_whisper import sinusoids

    shapes: list[tuple[str, tuple[int, ...]]] = []

    def block(prefix: str, width: int, cross: bool) -> None:
        for attn in ("attn", "cross_attn") if cross else ("attn",):
            shapes.extend(
                [
                    (f"{prefix}.{attn}.query.weight", (width, width)),
                    (f"{prefix}.{attn}.query.bias", (width,)),
                    (f"{prefix}.{attn}.key.weight", (width, width)),  # no bias, as in whisper
                    (f"{prefix}.{attn}.value.weight", (width, width)),
                    (f"{prefix}.{attn}.value.bias", (width,)),
                    (f"{prefix}.{attn}.out.weight", (width, width)),
                    (f"{prefix}.{attn}.out.bias", (width,)),
                    (f"{prefix}.{attn}_ln.weight", (width,)),
                    (f"{prefix}.{attn}_ln.bias", (width,)),
                ]
            )
        shapes.extend(
            [
                (f"{prefix}.mlp.0.weight", (4 * width, width)),
                (f"{prefix}.mlp.0.bias", (4 * width,)),
                (f"{prefix}.mlp.2.weight", (width, 4 * width)),
                (f"{prefix}.mlp.2.bias", (width,)),
                (f"{prefix}.mlp_ln.weight", (width,)),
                (f"{prefix}.mlp_ln.bias", (width,)),
            ]
        )

    a, t = dims["n_audio_state"], dims["n_text_state"]
    shapes += [
        ("encoder.conv1.weight", (a, dims["n_mels"], 3)),
        ("encoder.conv1.bias", (a,)),
        ("encoder.conv2.weight", (a, a, 3)),
        ("encoder.conv2.bias", (a,)),
    ]
    for i in range(dims["n_audio_layer"]):
        block(f"encoder.blocks.{i}", a, cross=False)
    shapes += [("encoder.ln_post.weight", (a,)), ("encoder.ln_post.bias", (a,))]
    shapes += [
        ("decoder.token_embedding.weight", (dims["n_vocab"], t)),
        ("decoder.positional_embedding", (dims["n_text_ctx"], t)),
    ]
    for i in range(dims["n_text_layer"]):
        block(f"decoder.blocks.{i}", t, cross=True)
    shapes += [("decoder.ln.weight", (t,)), ("decoder.ln.bias", (t,))]

    state = {name: torch.empty(shape) for name, shape in shapes}
    _randomise_(state.items(), generator)
    # The encoder's positional table is a fixed sinusoid buffer in whisper, not a learned parameter.
    state["encoder.positional_embedding"] = sinusoids(dims["n_audio_ctx"], a)
    return {"dims": dict(dims), "model_state_dict": {k: v.to(torch.float16) for k, v in state.items()}}


def write_tiny_weights(
    dest: str | os.PathLike[str], version: str = DEFAULT_VERSION, seed: int = 0
) -> WeightsLayout:
    """Write tiny random weights in exactly the official layout and file formats (a development aid).

    - ``latentsync_unet.pt``: ``torch.save({"global_step": 0, "state_dict": ...})`` of a
      :class:`LatentSyncUNet` built from ``UNetConfig.tiny()`` (same 1,246 keys as the real one);
    - ``whisper/tiny.pt``: OpenAI's ``{"dims", "model_state_dict"}`` (float16) with a 16-wide encoder;
    - ``sd-vae-ft-mse/``: a small ``AutoencoderKL`` written by ``save_pretrained`` (safetensors);
    - ``lipsync-weights.json`` with ``"kind": "tiny"`` and the U-Net config, which loading uses.

    The output is meaningless (random weights) but exercises every loading and inference code path offline.
    Face models are not written: use the MediaPipe face backend with tiny weights.
    """
    from lipsync.engine.unet import LatentSyncUNet, UNetConfig
    from lipsync.engine.vae import tiny_autoencoder

    layout = WeightsLayout(Path(dest), version)
    generator = torch.Generator().manual_seed(seed)
    config = UNetConfig.tiny()

    unet = LatentSyncUNet(config)
    _randomise_(unet.named_parameters(), generator)  # buffers (pos_encoder.pe) keep their constructed values
    layout.unet_path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"global_step": 0, "state_dict": unet.state_dict()}, layout.unet_path)

    dims = {
        "n_mels": 80,
        "n_audio_ctx": 1500,
        "n_audio_state": config.cross_attention_dim,
        "n_audio_head": 2,
        "n_audio_layer": 4,
        **TINY_WHISPER_TEXT_DIMS,
    }
    layout.whisper_path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(_openai_whisper_checkpoint(dims, generator), layout.whisper_path)

    tiny_autoencoder(seed).save_pretrained(layout.vae_dir, safe_serialization=True)

    layout._write_manifest(
        "tiny",
        layout.engine_files(),
        {
            "note": "TINY RANDOM DEVELOPMENT WEIGHTS written by `lipsync weights tiny`: outputs are meaningless.",
            "seed": seed,
            "unet_config": config.to_dict(),
        },
    )
    return layout


# -------------------------------------------------------------------------------------------------------------
# Loading
# -------------------------------------------------------------------------------------------------------------


@dataclass
class EngineModels:
    """Everything the sampler needs, on one device."""

    unet: LatentSyncUNet
    audio_encoder: AudioEncoder
    vae: VAE
    unet_config: UNetConfig
    device: torch.device
    dtype: torch.dtype
    version: str
    tiny: bool


def load_engine_models(
    layout: WeightsLayout,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    *,
    audio_dtype: str | torch.dtype | None = None,
) -> EngineModels:
    """Load U-Net, Whisper encoder and VAE from ``layout`` — the one path for official and tiny weights.

    ``device``/``dtype`` default to :func:`~lipsync.engine.device.select_device` /
    :func:`~lipsync.engine.device.select_dtype` (reference behaviour); the Whisper encoder follows the
    reference's own rule (float16 on any GPU) unless ``audio_dtype`` says otherwise.
    """
    from lipsync.engine.audio import AudioEncoder
    from lipsync.engine.device import select_audio_dtype, select_device, select_dtype
    from lipsync.engine.unet import load_unet
    from lipsync.engine.vae import VAE

    layout.check()
    target = select_device(device)
    precision = select_dtype(target, dtype)
    config = layout.unet_config()
    audio_encoder = AudioEncoder.from_checkpoint(
        layout.whisper_path, device=target, dtype=select_audio_dtype(target, audio_dtype)
    )
    if audio_encoder.hidden_size != config.cross_attention_dim:
        raise WeightsError(
            f"{layout.whisper_path} is {audio_encoder.hidden_size}-wide but the U-Net expects "
            f"{config.cross_attention_dim}-wide audio features (cross_attention_dim)"
        )
    unet = load_unet(layout.unet_path, config, device=target, dtype=precision)
    vae = VAE.from_pretrained(layout.vae_dir, device=target, dtype=precision)
    return EngineModels(
        unet=unet,
        audio_encoder=audio_encoder,
        vae=vae,
        unet_config=config,
        device=target,
        dtype=precision,
        version=layout.version,
        tiny=layout.is_tiny,
    )
