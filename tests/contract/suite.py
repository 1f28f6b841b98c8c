"""The contract suite: what every app implementing the WaveSpeed lip-sync API must do.

``ContractSuite`` is not collected by itself (its name does not start with ``Test``). A test module
subclasses it as ``Test<Something>Contract`` and provides a ``contract_target`` fixture returning a
:class:`tests.contract.target.ContractTarget`; every test below then runs against that app. The mock's
subclass is in ``test_mock_contract.py``; see ``README.md`` for adding the real server.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings

from contracts import (
    MODEL_ID,
    BinaryUploadResponse,
    DeleteResponse,
    HistoryResponse,
    Paths,
    PredictionResponse,
    UploadTicketResponse,
    WebhookSecretResponse,
)
from tests.contract.target import ContractTarget

__all__ = ["COMMITTED_OPENAPI", "ContractSuite"]

COMMITTED_OPENAPI = Path(__file__).resolve().parents[2] / "openapi.json"
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
_EXAMPLES_PER_OPERATION = 8


def _error(response: httpx.Response, status: int) -> str:
    """Assert *response* is the error envelope with *status*; return its message."""
    assert response.status_code == status, f"expected {status}, got {response.status_code}: {response.text}"
    body = response.json()
    assert set(body) >= {"code", "message", "data"} and body["code"] == status and body["data"] is None, body
    assert isinstance(body["message"], str) and body["message"]
    return str(body["message"])


class ContractSuite:
    """Subclass me as ``Test...Contract`` with a ``contract_target`` fixture."""

    # -- helpers ----------------------------------------------------------------------------------------------
    @staticmethod
    def auth(target: ContractTarget) -> dict[str, str]:
        return {"Authorization": f"Bearer {target.api_key}"}

    def submit(
        self, target: ContractTarget, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> httpx.Response:
        return target.client.post(Paths.SUBMIT, json=body, headers={**self.auth(target), **(headers or {})})

    def submit_job(self, target: ContractTarget, spec: Any) -> str:
        response = self.submit(target, spec.body, spec.headers)
        assert response.status_code == 200, (
            f"{target.name}: submit answered {response.status_code}: {response.text}"
        )
        return str(response.json()["data"]["id"])

    def get(self, target: ContractTarget, path: str, **kw: Any) -> httpx.Response:
        return target.client.get(path, headers=self.auth(target), **kw)

    def post(self, target: ContractTarget, path: str, **kw: Any) -> httpx.Response:
        return target.client.post(path, headers=self.auth(target), **kw)

    # -- submit and lifecycle -----------------------------------------------------------------------------------
    def test_submit_answers_200_with_a_fresh_prediction(self, contract_target: ContractTarget) -> None:
        response = self.submit(contract_target, contract_target.completing_job().body)
        assert response.status_code == 200, response.text  # the official SDK breaks on 201/202
        envelope = PredictionResponse.model_validate(response.json())
        assert (envelope.code, envelope.message) == (200, "success")
        data = envelope.data
        assert data.status in ("created", "processing")
        assert data.model == MODEL_ID and data.outputs == [] and data.error == ""
        assert data.urls.get.endswith(Paths.RESULT.format(id=data.id))
        assert _ISO.match(data.created_at), data.created_at

    def test_job_completes_with_a_playable_mp4(self, contract_target: ContractTarget) -> None:
        pid = self.submit_job(contract_target, contract_target.completing_job())
        data = contract_target.drive_to_completion(pid)
        assert data["status"] == "completed", data
        assert data["error"] == "" and data.get("code") in (None, 0)
        (url,) = data["outputs"]
        assert data["has_nsfw_contents"] == [False]
        assert isinstance(data["timings"]["inference"], int) and data["timings"]["inference"] >= 0
        download = contract_target.fetch(url)
        assert download.status_code == 200, download.text[:200]
        with av.open(io.BytesIO(download.content)) as container:
            kinds = {s.type for s in container.streams}
            first = next(container.decode(video=0))
        assert {"video", "audio"} <= kinds and first.width > 0

    def test_both_result_routes_answer_the_same(self, contract_target: ContractTarget) -> None:
        pid = self.submit_job(contract_target, contract_target.completing_job())
        contract_target.drive_to_completion(pid)
        a = self.get(contract_target, Paths.RESULT.format(id=pid))
        b = self.get(contract_target, Paths.PREDICTION.format(id=pid))
        assert a.status_code == b.status_code == 200
        assert a.json() == b.json()

    @pytest.mark.parametrize("code", [1402, 1403])
    def test_failed_job_reports_task_code_and_error(self, contract_target: ContractTarget, code: int) -> None:
        pid = self.submit_job(contract_target, contract_target.failing_job(code))
        data = contract_target.drive_to_completion(pid)
        assert (data["status"], data["code"], data["outputs"]) == ("failed", code, []), data
        assert data["error"]
        # The SDK re-runs a task whose error mentions "HTTP 5xx"/"HTTP 429": deterministic failures must not.
        assert "HTTP 5" not in data["error"] and "HTTP 429" not in data["error"]

    def test_sync_mode_answers_the_result_or_the_5004_timeout(self, contract_target: ContractTarget) -> None:
        body = {**contract_target.completing_job().body, "enable_sync_mode": True}
        response = self.submit(contract_target, body, contract_target.completing_job().headers)
        assert response.status_code == 200, response.text
        data = PredictionResponse.model_validate(response.json()).data
        if data.status == "completed":
            assert len(data.outputs) == 1
        else:
            assert (data.status, data.code) == ("processing", 5004), data
            assert data.error.startswith("Sync mode timed out")

    # -- errors -------------------------------------------------------------------------------------------------
    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"audio": None}, "audio"),
            ({"video": None}, "video"),
            ({"video": "ftp://example.com/face.mp4"}, "video"),
            ({"audio": 42}, "audio"),
            ({"guidence_scale": 2.0}, "guidence_scale"),
            ({"guidance_scale": 99}, "guidance_scale"),
            ({"inference_steps": "many"}, "inference_steps"),
        ],
        ids=[
            "no-audio",
            "no-video",
            "bad-scheme",
            "audio-not-string",
            "unknown-field",
            "out-of-range",
            "wrong-type",
        ],
    )
    def test_invalid_request_is_400_naming_the_field(
        self, contract_target: ContractTarget, change: dict[str, Any], field: str
    ) -> None:
        body = {**contract_target.media_inputs(), **change}
        body = {k: v for k, v in body.items() if v is not None}
        message = _error(self.submit(contract_target, body), 400)
        assert field in message, message

    def test_malformed_json_is_400(self, contract_target: ContractTarget) -> None:
        headers = {**self.auth(contract_target), "Content-Type": "application/json"}
        _error(contract_target.client.post(Paths.SUBMIT, content=b'{"audio": ', headers=headers), 400)

    @pytest.mark.parametrize("authorization", [None, "Bearer not-the-key", "Basic Zm9vOmJhcg=="])
    def test_missing_or_wrong_key_is_401(
        self, contract_target: ContractTarget, authorization: str | None
    ) -> None:
        headers = {"Authorization": authorization} if authorization else {}
        client = contract_target.client
        _error(client.post(Paths.SUBMIT, json=contract_target.media_inputs(), headers=headers), 401)
        _error(client.get(Paths.RESULT.format(id="0" * 32), headers=headers), 401)
        _error(client.post(Paths.UPLOAD_TICKET, json={"filename": "a.mp4", "size": 1}, headers=headers), 401)

    def test_unknown_prediction_is_404(self, contract_target: ContractTarget) -> None:
        for route in (Paths.RESULT, Paths.PREDICTION):
            response = self.get(contract_target, route.format(id="0123456789abcdef0123456789abcdef"))
            assert _error(response, 404) == "prediction not found"

    def test_unknown_route_and_method_are_enveloped(self, contract_target: ContractTarget) -> None:
        _error(self.get(contract_target, "/api/v3/no/such/route"), 404)
        _error(target_call(contract_target, "DELETE", Paths.SUBMIT, self.auth(contract_target)), 405)

    # -- uploads --------------------------------------------------------------------------------------------------
    def test_upload_ticket_put_and_use_as_input(self, contract_target: ContractTarget) -> None:
        urls = {}
        for role, media in contract_target.media_files().items():
            response = self.post(
                contract_target,
                Paths.UPLOAD_TICKET,
                json={
                    "filename": media.filename,
                    "size": len(media.content),
                    "content_type": media.content_type,
                },
            )
            assert response.status_code == 200 and response.json()["code"] == 200, response.text
            ticket = UploadTicketResponse.model_validate(response.json()).data
            assert ticket.upload.method == "PUT" and ticket.upload.url and ticket.download_url
            put = contract_target.put(ticket.upload.url, media.content, ticket.upload.headers)
            assert 200 <= put.status_code < 300, put.text
            fetched = contract_target.fetch(ticket.download_url)
            assert fetched.status_code == 200 and fetched.content == media.content
            urls[role] = ticket.download_url
        job = contract_target.completing_job()
        pid = self.submit_job(contract_target, type(job)({**job.body, **urls}, job.headers))
        assert contract_target.drive_to_completion(pid)["status"] == "completed"

    def test_legacy_binary_upload(self, contract_target: ContractTarget) -> None:
        media = contract_target.media_files()["audio"]
        response = self.post(
            contract_target,
            Paths.UPLOAD_BINARY,
            files={"file": (media.filename, media.content, media.content_type)},
        )
        assert response.status_code == 200, response.text
        data = BinaryUploadResponse.model_validate(response.json()).data
        assert (data.filename, data.size, data.type) == (media.filename, len(media.content), "audio")
        assert contract_target.fetch(data.download_url).content == media.content

    # -- history, delete, cancel, secret ----------------------------------------------------------------------------
    def test_history_lists_newest_first_and_delete_removes(self, contract_target: ContractTarget) -> None:
        first = self.submit_job(contract_target, contract_target.completing_job())
        second = self.submit_job(contract_target, contract_target.completing_job())
        # Finished first: a running job is cancelled rather than deleted (the server's documented rule).
        contract_target.drive_to_completion(first)
        page = HistoryResponse.model_validate(
            self.post(contract_target, Paths.HISTORY, json={"page": 1, "page_size": 100}).json()
        ).data
        ids = [p.id for p in page.items]
        assert first in ids and second in ids and ids.index(second) < ids.index(first)
        deleted = self.post(contract_target, Paths.DELETE, json={"ids": [first]})
        assert DeleteResponse.model_validate(deleted.json()).data.deleted_count == 1
        _error(self.get(contract_target, Paths.RESULT.format(id=first)), 404)
        after = self.post(contract_target, Paths.HISTORY, json={"page_size": 100}).json()["data"]["items"]
        assert first not in [p["id"] for p in after] and second in [p["id"] for p in after]
        message = _error(self.post(contract_target, Paths.HISTORY, json={"page_size": 1000}), 400)
        assert "page_size" in message

    def test_cancel_reports_failed_1405(self, contract_target: ContractTarget) -> None:
        pid = self.submit_job(contract_target, contract_target.running_job())
        response = self.post(contract_target, Paths.CANCEL.format(id=pid))
        assert response.status_code == 200, response.text
        data = PredictionResponse.model_validate(response.json()).data
        assert (data.status, data.code) == ("failed", 1405) and data.error
        assert contract_target.drive_to_completion(pid)["code"] == 1405
        _error(self.post(contract_target, Paths.CANCEL.format(id=pid)), 409)
        _error(self.post(contract_target, Paths.CANCEL.format(id="0" * 32)), 404)

    def test_webhook_secret(self, contract_target: ContractTarget) -> None:
        response = self.get(contract_target, Paths.WEBHOOK_SECRET)
        assert response.status_code == 200
        assert WebhookSecretResponse.model_validate(response.json()).data.secret.startswith("whsec_")

    # -- the schema ------------------------------------------------------------------------------------------------
    def test_openapi_covers_the_committed_contract(self, contract_target: ContractTarget) -> None:
        committed = json.loads(COMMITTED_OPENAPI.read_text())
        served = contract_target.openapi()

        def operations(schema: dict[str, Any]) -> dict[tuple[str, str], str]:
            return {
                (re.sub(r"\{[^}]+\}", "{}", path), method): op.get("operationId", "")
                for path, item in schema["paths"].items()
                for method, op in item.items()
                if isinstance(op, dict)
            }

        missing = {k: v for k, v in operations(committed).items() if operations(served).get(k) != v}
        assert not missing, f"{contract_target.name} lacks (or renamed) these operations: {missing}"
        for code_map in (op["responses"] for item in served["paths"].values() for op in item.values()):
            assert "422" not in code_map  # validation errors are 400 envelopes

    @pytest.mark.parametrize("mode", ["positive", "negative"])
    def test_schemathesis(self, contract_target: ContractTarget, mode: str) -> None:
        """Bounded, deterministic property tests over the app's own OpenAPI document."""
        import schemathesis
        from schemathesis import GenerationMode
        from schemathesis.checks import not_a_server_error
        from schemathesis.specs.openapi.checks import (
            content_type_conformance,
            negative_data_rejection,
            response_schema_conformance,
            status_code_conformance,
        )

        raw = contract_target.openapi()
        # Auth is tested above (401s); here every call carries the key, so drop the security requirements:
        # negative mode would otherwise "remove" the Authorization header that we then send anyway.
        raw.pop("security", None)
        for item in raw["paths"].values():
            for op in item.values():
                if isinstance(op, dict):
                    op.pop("security", None)
        schema = schemathesis.openapi.from_dict(raw)
        checks = [
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ]
        generation = GenerationMode.POSITIVE if mode == "positive" else GenerationMode.NEGATIVE
        if mode == "negative":
            checks.append(negative_data_rejection)
        auth = self.auth(contract_target)
        exercised = 0
        for result in schema.get_all_operations():
            operation = result.ok()
            body = operation.definition.raw.get("requestBody", {}).get("content", {})
            if mode == "negative" and "application/json" not in body:
                # Negative data needs a JSON body to break: a path id is any string, an operation without input
                # has nothing to make invalid, and a multipart part is bytes on the wire (a "null" file part that
                # schemathesis calls invalid arrives as a valid file; the binary upload has its own tests).
                continue
            try:
                strategy = operation.as_strategy(generation_mode=generation)
            except Exception as exc:  # e.g. no negative data is possible for an operation
                pytest.fail(f"cannot generate {mode} data for {operation.label}: {exc}")

            @settings(
                max_examples=_EXAMPLES_PER_OPERATION,
                derandomize=True,
                database=None,
                deadline=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=strategy)
            def run(case: Any) -> None:
                kwargs = case.as_transport_kwargs(base_url=str(contract_target.client.base_url), headers=auth)
                response = target_call(
                    contract_target,
                    kwargs.pop("method"),
                    kwargs.pop("url"),
                    kwargs.pop("headers", {}),
                    **kwargs,
                )
                case.validate_response(response, checks=checks, headers=auth)

            run()
            exercised += 1
        expected = 4 if mode == "negative" else 10  # operations with a JSON body / all operations
        assert exercised >= expected, f"only {exercised} operations in {contract_target.name}'s schema"


def _as_part_content(value: Any) -> str | bytes | None:
    """What ``requests`` (schemathesis' reference transport) sends for one multipart value: text and bytes
    as they are, a file's bytes, nothing for None, numbers as their text (urllib3's rule)."""
    if value is None or isinstance(value, str | bytes):
        return value
    if isinstance(value, bytearray):
        return bytes(value)
    if hasattr(value, "read"):
        data = value.read()
        return data if isinstance(data, str | bytes) else bytes(data)
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def _multipart(files: Any) -> list[tuple[str, tuple[Any, ...]]]:
    """schemathesis' requests-style ``files`` as httpx parts. httpx renders a multipart body while it
    streams it, so a value it cannot render (schemathesis generates numbers for extra form fields) would
    fail half-way through a request already on the wire; ``requests`` converts or drops such values."""
    items = files.items() if isinstance(files, dict) else files
    parts: list[tuple[str, tuple[Any, ...]]] = []
    for name, value in items:
        filename, content, *rest = value if isinstance(value, tuple | list) else (name, value)
        data = _as_part_content(content)
        if data is not None:
            parts.append((name, (filename, data, *rest)))
    return parts


def target_call(
    target: ContractTarget, method: str, url: str, headers: dict[str, str] | None = None, **kwargs: Any
) -> httpx.Response:
    """Send a requests-style call (what schemathesis serialises) through the target's httpx client.

    The body is rendered in full before anything is sent (``Request.read``): over a real socket a streamed
    body that fails to render would break the connection mid-request, and schemathesis reports the
    request's content afterwards, which httpx keeps only for a read body. Every target (in-process bridge,
    loopback socket, a deployment) therefore runs these calls the same way.
    """
    options: dict[str, Any] = {}
    for key in ("params", "json"):
        if kwargs.get(key) is not None:
            options[key] = kwargs[key]
    if kwargs.get("files") is not None:
        options["files"] = _multipart(kwargs["files"])
    if kwargs.get("cookies"):  # httpx deprecates per-request cookies; our API has none, but send them anyway
        cookie = "; ".join(f"{k}={v}" for k, v in kwargs["cookies"].items())
        headers = {**(headers or {}), "Cookie": cookie}
    data = kwargs.get("data")
    if isinstance(data, bytes | str):
        options["content"] = data
    elif data is not None:
        options["data"] = data
    request = target.client.build_request(method, url, headers=headers, **options)
    request.read()
    return target.client.send(request)
