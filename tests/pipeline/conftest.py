"""Fixtures for the pipeline tests: tiny weights written once per session, models loaded once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``lipsync weights tiny`` output (official layout and formats, random values) for 1.5 and 1.6."""
    from lipsync.engine.weights import write_tiny_weights

    root = tmp_path_factory.mktemp("weights")
    write_tiny_weights(root, "1.5")
    write_tiny_weights(root, "1.6")
    return root


@pytest.fixture(scope="session")
def tiny_models(tiny_weights: Path):  # type: ignore[no-untyped-def]
    """LatentSync 1.5 tiny models on the CPU in float32, loaded once and shared (LipSync(models=...))."""
    from lipsync.engine.weights import WeightsLayout, load_engine_models

    torch.set_num_threads(2)
    return load_engine_models(WeightsLayout(tiny_weights, "1.5"), "cpu", "fp32")


@pytest.fixture(scope="session")
def mediapipe_detector():  # type: ignore[no-untyped-def]
    from lipsync.media.faces import create_detector

    detector = create_detector("mediapipe")
    yield detector
    detector.close()
