"""How long a run will take, said before it starts (a CPU with development weights takes minutes per second).

The figures are end-to-end seconds (decode to encode) per output frame, per denoising step, per U-Net branch
(classifier-free guidance runs two), measured with ``lipsync run`` on this project's 2-core development
machine (bench/RESULTS.md, "first hour"). On a GPU the progress ETA, measured as the run goes, is the figure
to trust; no estimate is given up front there.
"""

from __future__ import annotations

from contracts import RunOptions

__all__ = ["CPU_SECONDS_PER_FRAME_STEP", "describe_plan", "estimate_seconds"]

#: At a 256-px face (LatentSync 1.5); the cost grows with the face's pixels (1.6's 512 px: 4-5x with the tiny
#: weights). ``tiny``: the random development weights, measured 0.058 s (README's first try, idle machine,
#: bench/RESULTS.md issue 18); ``official``: rough.
CPU_SECONDS_PER_FRAME_STEP = {"tiny": 0.06, "official": 1.0}
_BASE_RESOLUTION = 256


def estimate_seconds(
    frames: int, options: RunOptions, *, device: str, tiny: bool, resolution: int = _BASE_RESOLUTION
) -> float | None:
    """Rough wall-clock seconds of a run on a CPU, or None on an accelerator (see the module docstring)."""
    if not device.startswith("cpu"):
        return None
    branches = 2 if options.do_classifier_free_guidance else 1
    per_step = (
        CPU_SECONDS_PER_FRAME_STEP["tiny" if tiny else "official"] * (resolution / _BASE_RESOLUTION) ** 2
    )
    return frames * options.inference_steps * branches * per_step


def describe_plan(
    frames: int, options: RunOptions, *, device: str, tiny: bool, resolution: int = _BASE_RESOLUTION
) -> str:
    """One line for the user: what will be generated, and on a CPU about how long it takes."""
    cfg = ", guidance on (2 U-Net passes per step)" if options.do_classifier_free_guidance else ""
    text = f"{frames} output frames ({frames / 25:.2f} s at 25 fps), {options.inference_steps} steps{cfg}, on {device}"
    seconds = estimate_seconds(frames, options, device=device, tiny=tiny, resolution=resolution)
    if seconds is not None:
        weights = "development (tiny) weights" if tiny else "the official weights"
        text += (
            f": about {seconds / 60:.0f} min on a 2-core CPU with {weights}"
            if seconds >= 90
            else f": about {seconds:.0f} s on a 2-core CPU with {weights}"
        )
        text += (
            " (fewer steps, --guidance 1, --version 1.5 or --duration N make a quicker first try)"
            if seconds >= 300
            else ""
        )
    return text
