"""The release table is the one source of versions: what derives from it, and the copy it cannot feed."""

from __future__ import annotations

from typing import get_args

import pytest

from contracts import LipsyncRequest, ModelVersion
from lipsync.engine.releases import (
    ASSETS,
    DEFAULT_VERSION,
    RELEASES,
    VERSIONS,
    get_release,
    normalise_version,
    unet_config_for,
)
from lipsync.engine.unet_config import UNetConfig
from lipsync.engine.weights import WeightsLayout, hub_files
from lipsync.errors import WeightsError


def test_versions_and_resolutions_are_the_official_releases() -> None:
    assert VERSIONS == ("1.5", "1.6")
    assert DEFAULT_VERSION == "1.6"  # the newest
    # stage2.yaml / stage2_512.yaml of the reference: data.resolution 256 and 512, the same network.
    assert [RELEASES[v].resolution for v in VERSIONS] == [256, 512]
    assert unet_config_for("1.5") == UNetConfig(resolution=256)
    assert unet_config_for("v1.6") == UNetConfig(resolution=512)


def test_contracts_literal_and_default_match_the_table() -> None:
    # contracts is torch-free and below lipsync, so it holds a copy; this keeps the copy equal.
    assert get_args(ModelVersion) == VERSIONS
    assert LipsyncRequest.model_fields["model_version"].default == DEFAULT_VERSION


@pytest.mark.parametrize(("text", "key"), [("1.6", "1.6"), ("v1.5", "1.5"), (" 1.6 ", "1.6"), ("2.0", None)])
def test_normalise_version(text: str, key: str | None) -> None:
    assert normalise_version(text) == key


def test_unknown_version_names_the_choices() -> None:
    with pytest.raises(WeightsError, match=r"unknown LatentSync version '2\.0'; expected one of 1\.5, 1\.6"):
        get_release("2.0")


@pytest.mark.parametrize("version", ["1.5", "1.6"])
def test_hub_files_and_layout_come_from_the_release(version: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    release = RELEASES[version]
    pinned = {(f.repo_id, f.filename, f.revision, f.sha256, f.size) for f in hub_files(version)}
    expected = {(release.repo, name, release.revision, p.sha256, p.size) for name, p in release.files.items()}
    for asset in ASSETS.values():
        expected |= {(asset.repo, name, asset.revision, p.sha256, p.size) for name, p in asset.files.items()}
    assert pinned == expected
    layout = WeightsLayout(tmp_path, version)
    targets = {f.target for f in hub_files(version, include_face_models=False)}
    assert {p.relative_to(tmp_path).as_posix() for p in layout.engine_files()} == targets
    assert release.repo == f"ByteDance/LatentSync-{version}"
