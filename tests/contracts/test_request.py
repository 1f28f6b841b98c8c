"""Request validation: defaults are the reference's; bad input names the field."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from pydantic import ValidationError

import contracts as c

OK = {"audio": "https://x.example/a.wav", "video": "https://x.example/v.mp4"}


def _error(payload: dict[str, Any]) -> tuple[str, str | None]:
    with pytest.raises(ValidationError) as info:
        c.LipsyncRequest.model_validate(payload)
    return c.describe_validation_error(info.value)


def test_minimal_wavespeed_request_gets_reference_defaults() -> None:
    req = c.LipsyncRequest.model_validate(OK)
    assert (req.seed, req.guidance_scale, req.inference_steps) == (1247, 1.5, 20)
    assert req.loop_mode == "pingpong" and req.model_version == "1.6"
    assert not req.enable_sync_mode and not req.enable_base64_output


def test_missing_video_names_the_field() -> None:
    msg, field = _error({"audio": OK["audio"]})
    assert field == "video"
    assert msg == "Missing required parameter 'video'"


def test_non_url_is_rejected() -> None:
    msg, field = _error({**OK, "video": "not a url"})
    assert field == "video"
    assert "http(s) URL or a data: URI" in msg


@pytest.mark.parametrize("bad", ["file:///etc/passwd", "ftp://x/y.mp4", "http:///nohost"])
def test_other_schemes_are_rejected(bad: str) -> None:
    _msg, field = _error({**OK, "audio": bad})
    assert field == "audio"


def test_guidance_scale_out_of_range() -> None:
    msg, field = _error({**OK, "guidance_scale": 9})
    assert field == "guidance_scale"
    assert "less than or equal to 3" in msg and "(got 9)" in msg


def test_unknown_loop_mode() -> None:
    msg, field = _error({**OK, "loop_mode": "bounce"})
    assert field == "loop_mode"
    assert "pingpong" in msg


def test_unknown_field_is_rejected_by_name() -> None:
    msg, field = _error({**OK, "guidence_scale": 2})
    assert field == "guidence_scale"
    assert msg == "Unknown parameter 'guidence_scale'"


def test_data_uri_inputs_are_accepted_and_decoded() -> None:
    payload = base64.b64encode(b"RIFF1234WAVE").decode()
    req = c.LipsyncRequest.model_validate({**OK, "audio": f"data:audio/wav;base64,{payload}"})
    mime, data = c.parse_data_uri(req.audio)
    assert mime == "audio/wav" and data == b"RIFF1234WAVE"


def test_bad_data_uri() -> None:
    msg, field = _error({**OK, "video": "data:video/mp4;base64,!!!"})
    assert field == "video" and "base64" in msg


@pytest.mark.parametrize("steps", [9, 51])
def test_inference_steps_bounds(steps: int) -> None:
    _msg, field = _error({**OK, "inference_steps": steps})
    assert field == "inference_steps"


def test_a_url_longer_than_the_cap_is_refused_naming_the_field() -> None:
    long_url = "https://media.example/" + "a" * c.MAX_URL_LENGTH
    msg, field = _error({**OK, "video": long_url})
    assert field == "video"
    assert f"longer than {c.MAX_URL_LENGTH} characters" in msg


@pytest.mark.parametrize("raw", [b"", b"a", b"ab", b"abc", b"\x00" * 1000])
def test_data_uri_size_counts_the_bytes_without_decoding(raw: bytes) -> None:
    uri = "data:video/mp4;base64," + base64.b64encode(raw).decode()
    assert c.data_uri_size(uri) == len(raw)


def test_data_uri_size_of_percent_encoded_text_is_an_upper_bound() -> None:
    assert c.data_uri_size("data:text/plain,a%20b") == 5  # decodes to 3 bytes
