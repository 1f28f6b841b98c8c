"""The detector registry: one entry per backend, and everything that lists detectors reads it."""

from __future__ import annotations

import pytest

from lipsync.engine.releases import ASSETS
from lipsync.media.faces import DEFAULT_DETECTOR, DETECTOR_NAMES, DETECTORS, get_detector_spec


def test_registry_lists_both_backends_and_what_they_need() -> None:
    assert DETECTOR_NAMES == ("insightface", "mediapipe")
    assert DEFAULT_DETECTOR == "insightface"  # what LatentSync was trained with
    assert DETECTORS["insightface"].weights == ("insightface",)
    assert DETECTORS["mediapipe"].weights == ()  # bundled models, offline
    for spec in DETECTORS.values():
        assert set(spec.weights) <= set(ASSETS), spec.name  # names the release table's assets
        assert spec.description


def test_lookup_ignores_case_and_names_the_choices() -> None:
    assert get_detector_spec(" MediaPipe ").name == "mediapipe"
    with pytest.raises(
        ValueError, match="unknown face detector 'dlib'; expected one of insightface, mediapipe"
    ):
        get_detector_spec("dlib")


def test_missing_weights_hint_points_at_the_offline_backend() -> None:
    hint = DETECTORS["insightface"].missing_weights_hint()
    assert "use `--face-detector mediapipe` with development weights" in hint
