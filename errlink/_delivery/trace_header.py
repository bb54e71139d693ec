"""The envelope's ``trace`` header: the dynamic sampling context an event brings along.

Capture leaves the DSC in ``contexts.trace`` under `DSC_KEY` (where a synchronous
`before_send` may still change it); the pipeline moves it from there to the job, so the event
item never carries it and the envelope header always does, spilled to the outbox or not.
"""

from __future__ import annotations

from typing import Any

DSC_KEY = "dynamic_sampling_context"


def take_trace_header(event: dict[str, Any]) -> dict[str, Any] | None:
    """Remove the DSC from `event` and return it (None when the event has none)."""
    contexts = event.get("contexts")
    if type(contexts) is not dict:
        return None
    trace = contexts.get("trace")
    if type(trace) is not dict:
        return None
    dsc = trace.pop(DSC_KEY, None)
    return dsc if type(dsc) is dict and dsc.get("trace_id") else None
