"""RunOptions: one declaration of each option with its API and local ranges; LipsyncRequest composes it."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

import contracts as c
from tests.conftest import REPO_ROOT
from tests.contracts.option_values import non_default_options

OK = {"audio": "https://x.example/a.wav", "video": "https://x.example/v.mp4"}


@pytest.mark.parametrize(
    ("field", "api_ok", "local_only", "beyond_both"),
    [("inference_steps", 10, 1, 1001), ("guidance_scale", 3.0, 20.0, 0.5)],
)
def test_local_validation_widens_the_api_range(
    field: str, api_ok: float, local_only: float, beyond_both: float
) -> None:
    assert getattr(c.RunOptions(**{field: api_ok}), field) == api_ok
    assert getattr(c.RunOptions.local(**{field: local_only}), field) == local_only
    with pytest.raises(ValidationError) as api_error:
        c.RunOptions(**{field: local_only})
    assert c.describe_validation_error(api_error.value)[1] == field
    with pytest.raises(ValidationError) as local_error:
        c.RunOptions.local(**{field: beyond_both})
    assert c.describe_validation_error(local_error.value)[1] == field


def test_the_schema_shows_the_api_range() -> None:
    properties = c.LipsyncRequest.model_json_schema()["properties"]
    assert (properties["inference_steps"]["minimum"], properties["inference_steps"]["maximum"]) == (10, 50)
    assert (properties["guidance_scale"]["minimum"], properties["guidance_scale"]["maximum"]) == (1.0, 3.0)


def test_the_request_is_the_media_then_the_run_options_then_the_delivery_flags() -> None:
    names = list(c.LipsyncRequest.model_fields)
    run = list(c.RunOptions.model_fields)
    assert names == ["audio", "video", *run, "enable_sync_mode", "enable_base64_output"]


def test_run_options_of_a_request_keep_what_the_client_set() -> None:
    request = c.LipsyncRequest.model_validate({**OK, "seed": 9, "enable_sync_mode": True})
    options = request.run_options()
    assert type(options) is c.RunOptions
    assert options.seed == 9 and options.model_fields_set == {"seed"}
    full = c.LipsyncRequest.model_validate({**OK, **non_default_options()}).run_options()
    assert full.model_dump() == non_default_options()


def test_stored_options_of_older_versions_load() -> None:
    options = c.RunOptions.from_stored({"seed": 5, "inference_steps": 2, "retired_option": 1})
    assert (options.seed, options.inference_steps, options.deep_cache) == (5, 2, False)
    assert options.model_fields_set == {"seed", "inference_steps"}
    stored = c.RunOptions(**non_default_options()).model_dump(mode="json")
    assert c.RunOptions.from_stored(stored).model_dump() == non_default_options()


def test_unknown_options_are_refused_by_name() -> None:
    with pytest.raises(ValidationError) as info:
        c.RunOptions.local(stepz=3)
    assert c.describe_validation_error(info.value) == ("Unknown parameter 'stepz'", "stepz")


def test_guidance_above_one_turns_classifier_free_guidance_on() -> None:
    assert c.RunOptions().do_classifier_free_guidance
    assert not c.RunOptions(guidance_scale=1.0).do_classifier_free_guidance


def test_every_option_is_documented() -> None:
    text = (REPO_ROOT / "docs" / "options.md").read_text()
    missing = [name for name in c.RunOptions.model_fields if f"| `{name}` |" not in text]
    assert not missing, f"docs/options.md lacks rows for: {missing}"


def test_a_default_version_applies_only_when_the_client_chose_none() -> None:
    plain = c.LipsyncRequest.model_validate(OK).run_options(default_version="1.5")
    assert plain.model_version == "1.5" and "model_version" in plain.model_fields_set
    chosen = c.LipsyncRequest.model_validate({**OK, "model_version": "1.6"})
    assert chosen.run_options(default_version="1.5").model_version == "1.6"
