"""Where weights live on disk: one root, one folder per release, the shared assets, and the manifest."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lipsync.engine.releases import ASSETS, DEFAULT_VERSION, FACE_MODELS, VAE, Asset, Release, get_release
from lipsync.errors import WeightsError

if TYPE_CHECKING:
    from lipsync.engine.unet_config import UNetConfig

__all__ = [
    "MANIFEST_FORMAT",
    "MANIFEST_NAME",
    "WEIGHTS_DIR_ENV",
    "WeightsLayout",
    "default_weights_dir",
    "sha256_file",
]

WEIGHTS_DIR_ENV = "LIPSYNC_WEIGHTS_DIR"
MANIFEST_NAME = "lipsync-weights.json"
MANIFEST_FORMAT = 1


def default_weights_dir() -> Path:
    """``$LIPSYNC_WEIGHTS_DIR`` if set, else ``~/.cache/lipsync/weights``."""
    env = os.environ.get(WEIGHTS_DIR_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "lipsync" / "weights"


def sha256_file(path: str | os.PathLike[str], *, chunk_size: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class WeightsLayout:
    """Where each file of one release lives under ``root`` (see :mod:`lipsync.engine.weights`)."""

    root: Path
    version: str = DEFAULT_VERSION

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root).expanduser())
        object.__setattr__(self, "version", get_release(self.version).version)

    @classmethod
    def default(cls, version: str = DEFAULT_VERSION) -> WeightsLayout:
        return cls(default_weights_dir(), version)

    @property
    def release(self) -> Release:
        return get_release(self.version)

    @property
    def version_dir(self) -> Path:
        return self.root / self.release.folder

    @property
    def unet_path(self) -> Path:
        return self.version_dir / "latentsync_unet.pt"

    @property
    def whisper_path(self) -> Path:
        return self.version_dir / "whisper" / "tiny.pt"

    def asset_dir(self, asset: Asset) -> Path:
        return self.root / asset.folder

    @property
    def vae_dir(self) -> Path:
        return self.asset_dir(VAE)

    @property
    def face_models_dir(self) -> Path:
        """InsightFace root: pass as ``FaceAnalysis(name="buffalo_l", root=face_models_dir)``."""
        return self.asset_dir(FACE_MODELS)

    @property
    def buffalo_l_dir(self) -> Path:
        return self.face_models_dir / "models" / "buffalo_l"

    @property
    def manifest_path(self) -> Path:
        return self.version_dir / MANIFEST_NAME

    def asset_files(self, asset: Asset) -> list[Path]:
        return [self.asset_dir(asset) / name for name in asset.files]

    def engine_files(self) -> list[Path]:
        """The release's own files, then the VAE's: everything :func:`load_engine_models` reads."""
        return [self.version_dir / name for name in self.release.files] + self.asset_files(VAE)

    def face_model_files(self) -> list[Path]:
        return self.asset_files(FACE_MODELS)

    def check(self, *, face_models: bool = False, assets: Iterable[str] = (), hint: str = "") -> None:
        """Raise :class:`WeightsError` listing every missing file.

        The engine's files always; ``assets`` adds shared assets by name (what a face detector needs,
        ``DetectorSpec.weights``; ``face_models=True`` is short for InsightFace's). ``hint`` ends the message
        (e.g. how to do without those files).
        """
        names = [*assets, *([FACE_MODELS.name] if face_models else [])]
        unknown = sorted(set(names) - set(ASSETS))
        if unknown:
            raise WeightsError(f"unknown weights {unknown}; expected some of {', '.join(ASSETS)}")
        wanted = self.engine_files() + [
            p for name in dict.fromkeys(names) for p in self.asset_files(ASSETS[name])
        ]
        missing = [p for p in wanted if not p.is_file()]
        if missing:
            listed = "\n  ".join(str(p) for p in missing)
            raise WeightsError(
                f"LatentSync {self.version} weights are incomplete under {self.root}; missing:\n  {listed}\n"
                f"Run `lipsync weights download --version {self.version} --dir {self.root}` "
                f"(or `lipsync weights tiny DIR` for tiny development weights)."
                + (f"\n{hint}" if hint else "")
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
        from lipsync.engine.unet_config import UNetConfig

        manifest = self.read_manifest()
        if manifest and manifest.get("unet_config") is not None:
            try:
                return UNetConfig.from_dict(dict(manifest["unet_config"]))
            except (TypeError, ValueError) as exc:
                raise WeightsError(f"{self.manifest_path}: invalid unet_config: {exc}") from exc
        return self.release.unet_config

    def write_manifest(
        self, kind: str, files: Iterable[Path], extra: Mapping[str, Any] | None = None
    ) -> None:
        """Record what was written here (``kind`` official|tiny, files + sha256), atomically."""
        data: dict[str, Any] = {"format": MANIFEST_FORMAT, "kind": kind, "version": self.version}
        data.update(extra or {})
        data["files"] = {p.relative_to(self.root).as_posix(): sha256_file(p) for p in files}
        self.version_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.manifest_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, self.manifest_path)
