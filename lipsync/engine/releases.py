"""The release table: every fact about a LatentSync release, written once.

``RELEASES`` maps a version ("1.5", "1.6") to its :class:`Release`: the hub repo and pinned revision, the
files with their sha256 and size, the face resolution and the U-Net config. Everything that lists versions
derives from it: :data:`VERSIONS`, :data:`DEFAULT_VERSION`, the CLI's ``--version`` choices, the weights
download/verify/tiny code, :func:`unet_config_for`, the pipeline's version check. ``contracts`` cannot
import ``lipsync`` (it is torch-free and below it), so a test holds its ``ModelVersion`` Literal equal to
:data:`VERSIONS`.

The shared assets (the VAE every release uses, InsightFace's face models) are pinned here too, in
:data:`ASSETS`; a face detector names the assets it needs (``lipsync.media.faces.DETECTORS``).

Revisions are commit hashes, so a re-upload on the hub can never change what we run. The hashes and sizes
are the Git-LFS sha256 object ids of those files, as recorded in several public deployment manifests that pin
the same revisions (the hub itself was unreachable from where this was written; LATENTSYNC.md §1 has the 1.6
U-Net size/prefix and the tiny.pt hash). A wrong entry fails loudly as a checksum mismatch, never silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from lipsync.engine.unet_config import UNetConfig
from lipsync.errors import WeightsError

__all__ = [
    "ASSETS",
    "DEFAULT_VERSION",
    "FACE_MODELS",
    "RELEASES",
    "VAE",
    "VERSIONS",
    "Asset",
    "FilePin",
    "Release",
    "get_release",
    "normalise_version",
    "unet_config_for",
]


@dataclass(frozen=True)
class FilePin:
    """What a pinned file must be: its sha256 and size in bytes."""

    sha256: str
    size: int


@dataclass(frozen=True)
class Release:
    """One LatentSync release: where its files come from and what network they build.

    ``files`` maps paths inside ``repo`` (at ``revision``) to their pins; they are stored under
    ``<weights root>/latentsync-<version>/`` with the same relative paths.
    """

    version: str
    repo: str
    revision: str
    files: Mapping[str, FilePin]
    resolution: int
    unet_config: UNetConfig

    @property
    def folder(self) -> str:
        """The release's folder under the weights root."""
        return f"latentsync-{self.version}"


@dataclass(frozen=True)
class Asset:
    """Pinned files shared by all releases, stored under ``<weights root>/<folder>/``."""

    name: str
    repo: str
    revision: str
    files: Mapping[str, FilePin]
    folder: str


#: OpenAI's multilingual whisper ``tiny.pt`` (the hash is also in OpenAI's own download URL); both releases
#: ship the same file.
_WHISPER_TINY = FilePin("65147644a518d12f04e32d6f3b26facc3f8dd46e5390956a9424a650c0ce22b9", 75_572_083)


def _release(version: str, revision: str, unet: FilePin, resolution: int) -> Release:
    # The releases share the network (the ``model:`` sections of the reference's ``stage2.yaml`` and
    # ``stage2_512.yaml`` are identical); only the face resolution differs.
    return Release(
        version=version,
        repo=f"ByteDance/LatentSync-{version}",
        revision=revision,
        files=MappingProxyType({"latentsync_unet.pt": unet, "whisper/tiny.pt": _WHISPER_TINY}),
        resolution=resolution,
        unet_config=UNetConfig(resolution=resolution),
    )


#: Every release, oldest first.
RELEASES: Mapping[str, Release] = MappingProxyType(
    {
        r.version: r
        for r in (
            _release(
                "1.5",
                "32a20d29aead0498e3e885e90dbbe8027da1b61b",
                FilePin("6440b49a7ccceff56cdc001f5f17605216337f5bbd66fa360139768926e23f51", 5_072_348_184),
                resolution=256,
            ),
            _release(
                "1.6",
                "c42c7e6c8e9c213626389fa7d9a3c444b8536353",
                FilePin("0a478e89eb660f82da4c35dbdde8a5adfb27f99d1b4e50edd03729e1e98316d3", 5_072_222_488),
                resolution=512,
            ),
        )
    }
)
VERSIONS: tuple[str, ...] = tuple(RELEASES)
#: The newest release is the default everywhere (API, CLI, server settings, ``LipSync``).
DEFAULT_VERSION: str = VERSIONS[-1]

VAE = Asset(
    name="vae",
    repo="stabilityai/sd-vae-ft-mse",
    revision="31f26fdeee1355a5c34592e401dd41e45d25a493",
    files=MappingProxyType(
        {
            "config.json": FilePin("92d3dfb746fca211a2c9e019e285f8597412211728dce3c5bcf4eda0f2d62e7e", 547),
            "diffusion_pytorch_model.safetensors": FilePin(
                "a1d993488569e928462932c8c38a0760b874d166399b14414135bd9c42df5815", 334_643_276
            ),
        }
    ),
    folder="sd-vae-ft-mse",
)

#: InsightFace's ``buffalo_l`` pack. The reference lets insightface fetch ``buffalo_l.zip`` from GitHub
#: releases on first use; we take the two files it actually loads from a pinned hub mirror of that pack.
FACE_MODELS = Asset(
    name="insightface",
    repo="public-data/insightface",
    revision="33c1063c49c785b7652d3fd529f86fa4f149392b",
    files=MappingProxyType(
        {
            "models/buffalo_l/det_10g.onnx": FilePin(
                "5838f7fe053675b1c7a08b633df49e7af5495cee0493c7dcf6697200b85b5b91", 16_923_827
            ),
            "models/buffalo_l/2d106det.onnx": FilePin(
                "f001b856447c413801ef5c42091ed0cd516fcd21f2d6b79635b1e733a7109dbf", 5_030_888
            ),
        }
    ),
    folder="insightface",
)

#: Shared assets by name; face detectors list the names they need (``DetectorSpec.weights``).
ASSETS: Mapping[str, Asset] = MappingProxyType({a.name: a for a in (VAE, FACE_MODELS)})


def normalise_version(version: object) -> str | None:
    """The table key for ``version`` ("v1.6", " 1.6 " → "1.6"), or None when no release has it."""
    key = str(version).strip().removeprefix("v")
    return key if key in RELEASES else None


def get_release(version: object) -> Release:
    """The release ``version`` names; :class:`~lipsync.errors.WeightsError` for an unknown one."""
    key = normalise_version(version)
    if key is None:
        raise WeightsError(f"unknown LatentSync version {version!r}; expected one of {', '.join(VERSIONS)}")
    return RELEASES[key]


def unet_config_for(version: object) -> UNetConfig:
    """Full-size U-Net config of an official release (the releases share the network; only the face
    resolution differs: 1.5 256 px, 1.6 512 px); ValueError naming the known versions for another."""
    key = normalise_version(version)
    if key is None:
        raise ValueError(f"unknown LatentSync version {version!r}; expected one of {sorted(RELEASES)}")
    return RELEASES[key].unet_config
