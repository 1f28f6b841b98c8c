"""The up-front estimate: frames x steps x U-Net passes x the measured seconds per frame-step, by face size."""

from __future__ import annotations

from contracts import RunOptions
from lipsync.pipeline.estimate import describe_plan, estimate_seconds


def test_cost_follows_steps_guidance_and_face_pixels() -> None:
    quick = RunOptions.local(inference_steps=10, guidance_scale=1.0)
    # 52 frames x 10 steps x 1 pass x 0.06 s at 256 px (measured 0.058 s); x 4 at 512 px
    assert estimate_seconds(52, quick, device="cpu", tiny=True) == 52 * 10 * 0.06
    assert estimate_seconds(52, quick, device="cpu", tiny=True, resolution=512) == 52 * 10 * 0.06 * 4
    guided = RunOptions.local(inference_steps=10, guidance_scale=1.5)
    assert estimate_seconds(52, guided, device="cpu", tiny=True) == 2 * 52 * 10 * 0.06


def test_a_gpu_run_gets_no_guess_and_a_long_cpu_run_says_how_to_shorten_it() -> None:
    defaults = RunOptions()
    assert estimate_seconds(250, defaults, device="cuda:0", tiny=False) is None
    assert describe_plan(250, defaults, device="cuda:0", tiny=False) == (
        "250 output frames (10.00 s at 25 fps), 20 steps, guidance on (2 U-Net passes per step), on cuda:0"
    )
    long = describe_plan(250, defaults, device="cpu", tiny=True, resolution=512)
    assert (
        long.endswith("--duration N make a quicker first try)") and "about 40 min" in long
    )  # 250 x 20 x 2 x 0.06 s x 4 = 2,400 s
