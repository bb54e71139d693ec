"""Django without the app in INSTALLED_APPS: its `got_request_exception` signal.

The receiver is the Django integration's own: without its middleware it reads the request,
the user (with ``send_default_pii``) and the transaction from the signal's request. With the
app installed both receivers run; the client's dedupe drops the second report.
"""

from __future__ import annotations

from django.core.signals import got_request_exception  # type: ignore[import-untyped]

from ..django._middleware import on_request_exception
from . import Undo

_UID = "errlink.init.request_exception"


def hook() -> Undo:
    got_request_exception.connect(on_request_exception, dispatch_uid=_UID)
    return lambda: got_request_exception.disconnect(dispatch_uid=_UID)
