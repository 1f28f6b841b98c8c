"""schemathesis hooks of the conformance run (``SCHEMATHESIS_HOOKS=tests.contract.st_hooks``).

``filter_failure`` drops exactly two kinds of report, each a limit of what JSON Schema (or the wire) can say:

- One rule spans a query parameter and a body field: a submit with ``?webhook=`` and
  ``enable_base64_output: true`` is refused (400, WaveSpeed's own message). The parameter's description says
  so; the "valid data rejected" report for that combination is dropped.
- A multipart file part is bytes on the wire: when schemathesis makes the ``file`` part "an integer" it still
  sends a part with a filename whose content is digits, which is a valid file. The "invalid data accepted"
  report is dropped only when the part really was a file (a plain form value is refused with 400 and is
  checked).
"""

from __future__ import annotations

from typing import Any

import schemathesis

WEBHOOK_AND_BASE64 = "webhook callback does not support base64 output"


FILE_PART = b'name="file"; filename='


def _webhook_with_base64(case: Any, response: Any) -> bool:
    body = case.body if isinstance(case.body, dict) else {}
    return (
        response.status_code == 400
        and (case.query or {}).get("webhook") is not None
        and body.get("enable_base64_output") is True
        and WEBHOOK_AND_BASE64 in response.text
    )


def _file_part_was_a_file(case: Any, response: Any) -> bool:
    sent = response.request.body or b""
    sent = sent.encode() if isinstance(sent, str) else sent
    return case.operation.label == "POST /api/v3/media/upload/binary" and FILE_PART in sent


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    if _webhook_with_base64(case, response):
        return False
    return not (response.status_code == 200 and _file_part_was_a_file(case, response))
