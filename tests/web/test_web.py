"""lipsync.web: the error envelope, bearer auth and OpenAPI tweaks, through requests to a small app."""

from __future__ import annotations

from typing import Annotated

import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.testclient import TestClient

from contracts import LipsyncRequest
from lipsync.web import (
    ERROR_RESPONSES,
    api_error,
    bearer_auth,
    envelope_response,
    extract_bearer,
    install_error_handlers,
    install_openapi,
    operation_id,
)

KEYS = {"key-one", "key-two"}


def _app() -> FastAPI:
    app = FastAPI(generate_unique_id_function=operation_id)
    install_error_handlers(app)
    install_openapi(app)
    keys = set(KEYS)
    router = APIRouter(dependencies=[Depends(bearer_auth(lambda: keys))], responses=ERROR_RESPONSES)

    @router.post("/submit")
    def submit_thing(body: LipsyncRequest) -> object:
        return envelope_response({"audio": body.audio})

    @router.get("/things/{thing_id}")
    def get_thing(thing_id: str) -> object:
        raise api_error(404, "prediction not found")

    @router.get("/busy")
    def busy() -> object:
        raise api_error(429, "slow down", headers={"Retry-After": "3"})

    @router.get("/crash")
    def crash() -> object:
        raise RuntimeError("boom")

    @router.get("/whoami")
    def whoami(key: Annotated[str, Depends(bearer_auth(KEYS))]) -> object:
        return envelope_response({"key": key})

    app.include_router(router)
    app.state.keys = keys
    return app


@pytest.fixture
def client() -> TestClient:
    # raise_server_exceptions=False: we want to see the 500 envelope, not the re-raised RuntimeError.
    return TestClient(_app(), raise_server_exceptions=False)


AUTH = {"Authorization": "Bearer key-one"}


def test_success_envelope(client: TestClient) -> None:
    r = client.request(
        "POST", "/submit", json={"audio": "https://a/x.wav", "video": "https://a/y.mp4"}, headers=AUTH
    )
    assert r.status_code == 200
    assert r.json() == {"code": 200, "message": "success", "data": {"audio": "https://a/x.wav"}}
    assert r.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"video": "https://a/y.mp4"}, "audio"),
        ({"audio": "https://a/x.wav", "video": "ftp://nope"}, "video"),
        ({"audio": "https://a/x.wav", "video": "https://a/y.mp4", "guidence_scale": 2}, "guidence_scale"),
        ({"audio": "https://a/x.wav", "video": "https://a/y.mp4", "inference_steps": 5}, "inference_steps"),
    ],
)
def test_validation_error_is_400_naming_the_field(client: TestClient, body: dict, field: str) -> None:
    r = client.request("POST", "/submit", json=body, headers=AUTH)
    assert r.status_code == 400
    out = r.json()
    assert out["code"] == 400 and out["data"] is None
    assert f"'{field}'" in out["message"]


def test_malformed_json_is_400(client: TestClient) -> None:
    r = client.request(
        "POST", "/submit", content=b"{not json", headers={**AUTH, "Content-Type": "application/json"}
    )
    assert r.status_code == 400
    assert r.json() == {"code": 400, "message": "Request body is not valid JSON", "data": None}


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, "Missing API key"),
        ({"Authorization": "Bearer nope"}, "Invalid API key"),
        ({"Authorization": "Basic a2V5LW9uZQ=="}, "Missing API key"),
        ({"Authorization": "Bearer key-one-but-longer"}, "Invalid API key"),
    ],
)
def test_auth_rejects_with_401_envelope(client: TestClient, headers: dict, expected: str) -> None:
    r = client.request("GET", "/things/x", headers=headers)
    assert r.status_code == 401
    assert r.json()["code"] == 401 and r.json()["data"] is None
    assert r.json()["message"].startswith(expected)
    assert r.headers["www-authenticate"] == "Bearer"


def test_auth_accepts_every_configured_key(client: TestClient) -> None:
    for key in sorted(KEYS):
        r = client.request("GET", "/whoami", headers={"Authorization": f"Bearer {key}"})
        assert r.json()["data"] == {"key": key}


def test_http_errors_use_the_envelope(client: TestClient) -> None:
    r = client.request("GET", "/things/abc", headers=AUTH)
    assert (r.status_code, r.json()) == (404, {"code": 404, "message": "prediction not found", "data": None})
    r = client.request("GET", "/no/such/route", headers=AUTH)
    assert (r.status_code, r.json()) == (404, {"code": 404, "message": "Not Found", "data": None})
    r = client.request("DELETE", "/submit", headers=AUTH)
    assert (r.status_code, r.json()["code"]) == (405, 405)
    r = client.request("GET", "/busy", headers=AUTH)
    assert (r.status_code, r.headers["retry-after"], r.json()["message"]) == (429, "3", "slow down")


def test_unexpected_exception_is_a_json_500(client: TestClient) -> None:
    r = client.request("GET", "/crash", headers=AUTH)
    assert (r.status_code, r.json()) == (500, {"code": 500, "message": "Internal server error", "data": None})


def test_allow_any_accepts_any_key_but_still_requires_one() -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/k")
    def k(key: Annotated[str, Depends(bearer_auth((), allow_any=True))]) -> object:
        return envelope_response({"key": key})

    client = TestClient(app)
    assert client.get("/k", headers={"Authorization": "Bearer whatever"}).json()["data"] == {
        "key": "whatever"
    }
    assert client.get("/k").status_code == 401


def test_extract_bearer() -> None:
    assert extract_bearer("Bearer abc") == "abc"
    assert extract_bearer("bearer  abc ") == "abc"
    assert extract_bearer("Basic abc") is None
    assert extract_bearer("Bearer ") is None
    assert extract_bearer(None) is None


def test_openapi_has_stable_ids_400_not_422_and_bearer() -> None:
    schema = _app().openapi()
    ops = {op["operationId"]: op for item in schema["paths"].values() for op in item.values()}
    assert set(ops) == {"submit_thing", "get_thing", "busy", "crash", "whoami"}
    submit = ops["submit_thing"]
    assert "422" not in submit["responses"]
    assert submit["responses"]["400"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/ErrorEnvelope"
    )
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
