"""The WaveSpeed routes declared once (lipsync.web.wavespeed_router), as both apps serve them.

Routing, the multipart ``file`` part and the schema's links are properties of the shared declaration, so each
test runs against the mock and the real server alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from contracts import MEDIA_REF_PATTERN, Paths
from lipsync.server import create_app
from lipsync.server.memory import MemoryJobStore, MemoryStorage
from lipsync.server.worker import InProcessRunner
from mock_server.app import create_app as create_mock_app
from tests.server.conftest import make_settings
from tests.server.fakes import FakeEngine, FakeFetcher, RecordingWebhooks

KEY = "declaration-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
_HTTP_METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture(params=["mock", "server"])
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestClient]:
    if request.param == "mock":
        app = create_mock_app(api_keys=(KEY,))
    else:
        app = create_app(
            make_settings(tmp_path, api_keys=[KEY]),
            store=MemoryJobStore(),
            storage=MemoryStorage(),
            runner=InProcessRunner(lambda device: FakeEngine()),
            fetcher=FakeFetcher(),
            webhooks=RecordingWebhooks(),
        )
    with TestClient(app) as test_client:
        yield test_client


def _documented(schema: dict[str, Any]) -> dict[str, set[str]]:
    return {
        path: {method.upper() for method in item if method in _HTTP_METHODS}
        for path, item in schema["paths"].items()
    }


def test_every_documented_path_answers_other_methods_with_405_and_its_allow(client: TestClient) -> None:
    documented = _documented(client.get("/openapi.json").json())
    assert Paths.DELETE in documented and len(documented) >= 10  # the server adds /healthz
    for template, methods in documented.items():
        path = template.replace("{prediction_id}", "0" * 32)
        for method in ("OPTIONS", "PUT", "PATCH", "DELETE", *({"GET", "POST"} - methods)):
            response = client.request(method, path, headers=AUTH)
            assert response.status_code == 405, (method, path, response.text)
            assert set(response.headers["allow"].split(", ")) == methods, (method, path)
            assert response.json() == {"code": 405, "message": "Method Not Allowed", "data": None}


def test_options_on_the_delete_path_is_not_taken_for_a_prediction_id(client: TestClient) -> None:
    response = client.options(Paths.DELETE)
    assert response.status_code == 405 and response.headers["allow"] == "POST"


def test_a_plain_form_value_is_not_a_file(client: TestClient) -> None:
    response = client.post(Paths.UPLOAD_BINARY, headers=AUTH, data={"file": "not a file"})
    assert response.status_code == 400
    assert "'file'" in response.json()["message"]
    stored = client.post(Paths.UPLOAD_BINARY, headers=AUTH, files={"file": ("a.wav", b"RIFF", "audio/wav")})
    assert stored.status_code == 200 and stored.json()["data"]["size"] == 4


def test_schema_states_what_is_enforced(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    components = schema["components"]["schemas"]
    request = components["LipsyncRequest"]["properties"]
    assert request["audio"]["pattern"] == request["video"]["pattern"] == MEDIA_REF_PATTERN
    history = components["HistoryRequest"]["properties"]
    assert history["created_after"]["anyOf"][0]["format"] == "date-time"
    ticket_size = components["UploadTicketRequest"]["properties"]["size"]
    assert ticket_size["maximum"] == 500 * 1024 * 1024
    file_part = components["Body_upload_binary"]["properties"]["file"]
    assert file_part["format"] == "binary"
    submit = schema["paths"][Paths.SUBMIT]["post"]["responses"]
    assert set(submit) == {"200", "400", "401", "429"}
    links = submit["200"]["links"]
    assert {link["operationId"] for link in links.values()} == {
        "get_result",
        "get_prediction",
        "cancel_prediction",
        "delete_predictions",
    }
    cancel = schema["paths"][Paths.CANCEL.format(id="{prediction_id}")]["post"]["responses"]
    assert set(cancel) == {"200", "400", "401", "404", "409"}
    ticket = schema["paths"][Paths.UPLOAD_TICKET]["post"]["responses"]
    assert set(ticket) == {"200", "400", "401", "413"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("audio", "ftp://media.example/a.wav"),
        ("audio", " https://media.example/a.wav"),
        ("video", "data:video/mp4;base64,abc"),
        ("seed", True),
        ("seed", "7"),
        ("enable_sync_mode", 0),
    ],
)
def test_values_outside_the_schema_are_400_naming_the_field(
    client: TestClient, field: str, value: Any
) -> None:
    body = {"audio": "https://media.example/a.wav", "video": "https://media.example/v.mp4", field: value}
    response = client.post(Paths.SUBMIT, headers=AUTH, json=body)
    assert response.status_code == 400, response.text
    assert f"'{field}'" in response.json()["message"]


def test_integral_numbers_count_as_integers(client: TestClient) -> None:
    body = {"audio": "https://media.example/a.wav", "video": "https://media.example/v.mp4", "seed": 7.0}
    assert client.post(Paths.SUBMIT, headers=AUTH, json=body).status_code == 200
    ticket = client.post(Paths.UPLOAD_TICKET, headers=AUTH, json={"filename": "a.wav", "size": 4.0})
    assert ticket.status_code == 200
    assert (
        client.post(Paths.UPLOAD_TICKET, headers=AUTH, json={"filename": "a", "size": True}).status_code
        == 400
    )
