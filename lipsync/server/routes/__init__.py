"""The server's side of the WaveSpeed API: one handler per operation, one concern per module.

The routes themselves (paths, models, docs) are declared once in ``lipsync.web.wavespeed_router``, shared with
the mock; ``handlers()`` plugs these in. ``files``, ``health`` and the upload PUT target are server-only
routers (not part of the WaveSpeed API).
"""

from __future__ import annotations

from lipsync.server.routes import account, history, predictions, uploads
from lipsync.server.state import ApiContext, authenticate
from lipsync.web import WavespeedHandlers

__all__ = ["handlers"]


def handlers() -> WavespeedHandlers[ApiContext]:
    """The server's handler set (each reads its backends from ``ctx.state``)."""
    return WavespeedHandlers(
        authenticate=authenticate,
        submit_lipsync=predictions.submit_lipsync,
        get_result=predictions.get_result,
        get_prediction=predictions.get_prediction,
        cancel_prediction=predictions.cancel_prediction,
        list_predictions=history.list_predictions,
        delete_predictions=history.delete_predictions,
        create_upload=uploads.create_upload,
        upload_binary=uploads.upload_binary,
        get_webhook_secret=account.get_webhook_secret,
        get_balance=account.get_balance,
    )
