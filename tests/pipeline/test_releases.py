"""Release- and detector-dependent paths of the pipeline: 1.6 end to end at its 512-px face size on tiny
weights, and the weights a face detector needs being checked before it is built.

Kept as cheap as an end-to-end run can be on 2 CPU cores: 1 step, guidance 1.0 (no CFG batch), 3 frames.
At 512 px the tiny U-Net's spatial attention sees 64x64 = 4,096 tokens per frame (16x the 256-px cost), so this
one run still takes ~10 s on an idle 2-core machine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from lipsync import LipSync
from lipsync.errors import WeightsError
from tests.conftest import require_path
from tests.pipeline.clips import face_clip, inspect_output, speech

FAST = {"inference_steps": 1, "guidance_scale": 1.0}


@pytest.fixture(scope="module")
def tiny_models_16(tiny_weights: Path) -> Any:
    from lipsync.engine.weights import WeightsLayout, load_engine_models

    return load_engine_models(WeightsLayout(tiny_weights, "1.6"), "cpu", "fp32")


@pytest.mark.slow
def test_16_tiny_weights_run_end_to_end_at_512_px(
    tiny_models_16: Any, mediapipe_detector: Any, media_dir: Path, tmp_path: Path
) -> None:
    media = require_path(media_dir)
    video = face_clip(media, tmp_path / "face.mp4", frames=3)
    audio = speech(media, tmp_path / "speech.wav", 0.12)
    assert tiny_models_16.unet_config.resolution == 512

    seen: list[tuple[int, ...]] = []

    def record(_module: torch.nn.Module, args: tuple[Any, ...]) -> None:
        seen.append(tuple(args[0].shape))

    handle = tiny_models_16.unet.register_forward_pre_hook(record)
    try:
        ls = LipSync(version="1.6", models=tiny_models_16, detector=mediapipe_detector)
        result = ls.run(video, audio, tmp_path / "out.mp4", **FAST)
    finally:
        handle.remove()

    # 512-px face crops are 64x64 latents (VAE factor 8): the U-Net ran at the 1.6 size.
    assert seen and {shape[-2:] for shape in seen} == {(64, 64)}
    info, frames = inspect_output(result.out)
    assert (info.width, info.height) == (480, 640)
    assert info.frames == len(frames) == result.frames == 3
    assert result.frames_without_face == 0


def test_missing_detector_weights_name_the_offline_detector(tiny_weights: Path) -> None:
    # Tiny weights have no InsightFace models; the registry says the detector needs them.
    ls = LipSync(tiny_weights, version="1.5", device="cpu", dtype="fp32", face_detector="insightface")
    with pytest.raises(WeightsError) as err:
        ls.load()
    message = str(err.value)
    assert "det_10g.onnx" in message
    assert "use `--face-detector mediapipe` with development weights" in message
