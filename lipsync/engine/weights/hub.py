"""Downloading a release from the Hugging Face hub (pinned revisions, sha256-checked) and re-verifying it.

This is the only module that talks to the hub; the hub client itself is a seam (``hub=``), so tests serve
files from a fake hub instead of reaching huggingface.co.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lipsync.engine.releases import DEFAULT_VERSION, FACE_MODELS, VAE, Asset, get_release
from lipsync.engine.weights.layout import WeightsLayout, default_weights_dir, sha256_file
from lipsync.errors import WeightsError

__all__ = ["HubDownload", "HubFile", "download_weights", "hub_files", "verify_weights"]

#: ``hf_hub_download``-compatible callable: ``(repo_id, filename, *, revision, local_dir) -> local path``.
HubDownload = Callable[..., Any]


@dataclass(frozen=True)
class HubFile:
    """One file to fetch: ``repo_id``/``filename`` at ``revision``, stored at ``root / target``."""

    repo_id: str
    filename: str
    revision: str
    sha256: str
    size: int
    target: str


def _asset_files(asset: Asset) -> list[HubFile]:
    return [
        HubFile(asset.repo, name, asset.revision, pin.sha256, pin.size, f"{asset.folder}/{name}")
        for name, pin in asset.files.items()
    ]


def hub_files(version: str = DEFAULT_VERSION, *, include_face_models: bool = True) -> tuple[HubFile, ...]:
    """The pinned files of a release (paths relative to the layout root), from the release table."""
    release = get_release(version)
    files = [
        HubFile(release.repo, name, release.revision, pin.sha256, pin.size, f"{release.folder}/{name}")
        for name, pin in release.files.items()
    ]
    files += _asset_files(VAE)
    if include_face_models:
        files += _asset_files(FACE_MODELS)
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
    layout.write_manifest(
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
