"""How a stored job is shown: the WaveSpeed ``Prediction`` with signed output links (or base64 outputs)."""

from __future__ import annotations

import base64
import math
from datetime import UTC, datetime

from contracts import FaceReport, Prediction, PredictionUrls, Timings, result_url, utc_now_iso
from lipsync.server.interfaces import Clock, JobRecord, Storage
from lipsync.server.signing import UrlSigner

__all__ = ["Links", "iso_time", "parse_iso_time", "to_prediction"]

#: Expiry times are rounded up to this grain so repeated polls get identical, cacheable URLs.
_EXPIRY_GRAIN_S = 3600


def iso_time(epoch: float) -> str:
    return utc_now_iso(datetime.fromtimestamp(epoch, UTC))


def parse_iso_time(text: str) -> float:
    """Epoch seconds of an ISO-8601 time (``Z`` or an offset; naive times are UTC); ValueError if invalid."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


class Links:
    """Builds the URLs a client receives for stored objects."""

    def __init__(self, signer: UrlSigner, storage: Storage, clock: Clock, *, url_ttl_s: int) -> None:
        self.signer = signer
        self.storage = storage
        self.clock = clock
        self.url_ttl_s = url_ttl_s

    def download(self, base_url: str, key: str) -> str:
        direct = self.storage.presigned_url(key, expires_s=self.url_ttl_s)
        if direct is not None:
            return direct
        expires = math.ceil((self.clock.now() + self.url_ttl_s) / _EXPIRY_GRAIN_S) * _EXPIRY_GRAIN_S
        return self.signer.download_url(base_url, key, expires=expires)


async def to_prediction(
    job: JobRecord, links: Links, *, base_url: str | None = None, inline_base64: bool | None = None
) -> Prediction:
    """The public view of *job*. *base_url* defaults to the one the job was submitted through."""
    base = base_url or job.base_url
    outputs: list[str] = []
    if job.status == "completed":
        as_base64 = job.base64_output if inline_base64 is None else inline_base64
        for key in job.outputs:
            if as_base64:
                chunks = [c async for c in links.storage.iter_bytes(key)]
                outputs.append(base64.b64encode(b"".join(chunks)).decode())
            else:
                outputs.append(links.download(base, key))
    timings = Timings(
        inference=job.timings.get("inference", 0),
        queue=job.timings.get("queue"),
        download=job.timings.get("download"),
        preprocess=job.timings.get("preprocess"),
        total=job.timings.get("total"),
    )
    return Prediction(
        id=job.id,
        outputs=outputs,
        urls=PredictionUrls(get=result_url(base, job.id)),
        has_nsfw_contents=[False] * len(outputs),
        status=job.public_status,
        created_at=iso_time(job.created_at),
        error=job.error,
        timings=timings,
        code=job.code if job.status == "failed" else None,
        progress=job.progress if job.status == "processing" else None,
        face=FaceReport.model_validate(job.face)
        if job.face is not None and job.status == "completed"
        else None,
    )
