"""The synchronous facade: a process-wide loop thread hosting the async pipeline."""

from .._api import capture_event, capture_exception, capture_message
from ._api import close, default_client, flush, init
from ._client import Client

__all__ = [
    "Client",
    "capture_event",
    "capture_exception",
    "capture_message",
    "close",
    "default_client",
    "flush",
    "init",
]
