"""Run options: ``contracts.RunOptions`` validated with the local ranges, as one object or as keywords."""

from __future__ import annotations

from pathlib import Path

import pytest

from contracts import RunOptions
from lipsync.errors import InputError
from lipsync.pipeline import LipSync
from lipsync.pipeline.options import resolve_options


def test_local_runs_accept_smoke_test_ranges_the_api_refuses() -> None:
    options = resolve_options(inference_steps=1, guidance_scale=7.5)
    assert (options.inference_steps, options.guidance_scale) == (1, 7.5)
    with pytest.raises(ValueError, match="greater than or equal to 10"):
        RunOptions(inference_steps=1)


def test_overrides_apply_on_top_of_an_options_object() -> None:
    base = RunOptions(seed=7, loop_mode="cut_off")
    options = resolve_options(base, inference_steps=2)
    assert (options.seed, options.loop_mode, options.inference_steps) == (7, "cut_off", 2)
    assert options.model_fields_set == {"seed", "loop_mode", "inference_steps"}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"inference_steps": 0}, "inference_steps"),
        ({"inference_steps": 1001}, "inference_steps"),
        ({"guidance_scale": 0.5}, "guidance_scale"),
        ({"seed": -1}, "seed"),
        ({"loop_mode": "bounce"}, "loop_mode"),
        ({"on_no_face": "skip"}, "on_no_face"),
        ({"stepz": 3}, "stepz"),
    ],
)
def test_bad_options_raise_input_error_naming_the_field(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(InputError) as err:
        resolve_options(**overrides)
    assert err.value.field == field


def test_a_run_naming_another_checkpoint_fails_before_loading(tmp_path: Path) -> None:
    ls = LipSync(tmp_path / "no-weights", version="1.5", face_detector="mediapipe")
    with pytest.raises(InputError) as err:
        ls.run_options(model_version="1.6")
    assert err.value.field == "model_version"
    # Not naming it (the default 1.6 left unset) runs the checkpoint the LipSync holds.
    assert ls.run_options(RunOptions(seed=3)).seed == 3
    assert ls.run_options(model_version="1.5").model_version == "1.5"
