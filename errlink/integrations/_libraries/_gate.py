"""Whether a library hook records anything here: the one check every hook makes first."""

from __future__ import annotations

from .._sdk import SENDING, ClientCore, current_client

_sending = SENDING.get


def client_for(integration: str) -> ClientCore | None:
    """The client to record this context's calls through `integration` for: None, after one
    context-variable read, when no client is current; also inside errlink's own sends and for
    a client that did not enable the library."""
    core = current_client()
    # `uses_integration`, spelled out: this runs on every call of every hooked library.
    if core is None or _sending() or integration not in core.integrations:
        return None
    return core
