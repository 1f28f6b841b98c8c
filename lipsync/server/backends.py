"""Building the embedded backends from settings (shared by ``create_default_app`` and worker processes)."""

from __future__ import annotations

from lipsync.server.fetch import HttpFetcher
from lipsync.server.interfaces import Clock, Storage
from lipsync.server.job_store import BackendJobStore
from lipsync.server.local_storage import LocalStorage
from lipsync.server.settings import ServerSettings, load_or_create_secret
from lipsync.server.signing import UrlSigner
from lipsync.server.views import Links
from lipsync.server.webhooks import HttpWebhookSender
from lipsync.web.netguard import AddressPolicy

__all__ = [
    "build_fetcher",
    "build_links",
    "build_policy",
    "build_signer",
    "build_storage",
    "build_store",
    "build_webhooks",
]


def build_policy(settings: ServerSettings) -> AddressPolicy:
    return AddressPolicy(settings.fetch_allow)


def build_store(settings: ServerSettings) -> BackendJobStore:
    """The job store ``LIPSYNC_STORE_URL`` names (the API process and every worker build theirs here)."""
    url = settings.job_store_url
    if url.startswith("sqlite:///"):
        from lipsync.server.sqlite_store import SQLiteJobStore

        return SQLiteJobStore(url.removeprefix("sqlite:///"))
    if url.startswith(("postgresql://", "postgres://")):
        from lipsync.server.postgres_store import PostgresJobStore

        return PostgresJobStore(url)
    raise ValueError(f"unsupported store URL {url.split(':', 1)[0]}:// (sqlite:///PATH or postgresql://...)")


def build_storage(settings: ServerSettings) -> Storage:
    if settings.s3_bucket:
        from lipsync.server.s3_storage import S3Storage

        return S3Storage(settings.s3_bucket, prefix=settings.s3_prefix, endpoint_url=settings.s3_endpoint_url)
    return LocalStorage(settings.media_dir)


def build_signer(settings: ServerSettings) -> UrlSigner:
    return UrlSigner(load_or_create_secret(settings))


def build_links(settings: ServerSettings, storage: Storage, clock: Clock) -> Links:
    return Links(build_signer(settings), storage, clock, url_ttl_s=settings.url_ttl_s)


def build_fetcher(settings: ServerSettings) -> HttpFetcher:
    return HttpFetcher(
        build_policy(settings),
        max_bytes=settings.max_input_bytes,
        timeout_s=settings.fetch_timeout_s,
        max_redirects=settings.max_redirects,
    )


def build_webhooks(settings: ServerSettings) -> HttpWebhookSender:
    return HttpWebhookSender(
        build_policy(settings),
        attempts=settings.webhook_attempts,
        backoff_s=settings.webhook_backoff_s,
        timeout_s=settings.webhook_timeout_s,
    )
