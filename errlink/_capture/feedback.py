"""User feedback: what a person says about an error, as the protocol's `feedback` item.

The item is an event payload with ``type: "feedback"`` and a ``contexts.feedback`` object
(``message``, and ``name``, ``contact_email``, ``associated_event_id`` when given), carrying the
scope's tags, user, contexts and trace like any event. The name and e-mail are personal data,
sent because the person typed them for this purpose: they are not scrubbed, and
`before_send_feedback` may change or drop them. The older `user_report` item (``event_id``,
``name``, ``email``, ``comments``) is what servers before the feedback item took; errlink
sends the newer one only.
"""

from __future__ import annotations

from typing import Any

from .._options import Event
from .event import EventBuilder
from .misuse import ignore
from .scope import Scope

MAX_MESSAGE_CHARS = 4096
_MAX_FIELD_CHARS = 256


def feedback_event(
    builder: EventBuilder,
    scope: Scope,
    message: object,
    name: object,
    email: object,
    associated_event_id: object,
) -> Event | None:
    """The feedback event; None (logged once) when `message` is empty or not text."""
    if not isinstance(message, str) or not message.strip():
        ignore("capture_feedback", "a non-empty message str", message, "feedback not sent")
        return None
    feedback: dict[str, Any] = {"message": message[:MAX_MESSAGE_CHARS]}
    for key, value in (("name", name), ("contact_email", email)):
        text = _optional_text(key, value)
        if text:
            feedback[key] = text[:_MAX_FIELD_CHARS]
    linked = _event_id(associated_event_id)
    if linked:
        feedback["associated_event_id"] = linked
    event = builder.finish_custom_event({"level": "info"}, scope)
    event["type"] = "feedback"
    contexts = event.get("contexts")
    if not isinstance(contexts, dict):
        contexts = event["contexts"] = {}
    # After the scrubbing of the rest: the person typed these to be read.
    contexts["feedback"] = feedback
    return event


def _optional_text(key: str, value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    ignore(f"capture_feedback.{key}", "a str or None", value)
    return None


def _event_id(value: object) -> str | None:
    """The associated event id as 32 lowercase hex characters, or None (logged once)."""
    if value is None:
        return None
    if isinstance(value, str):
        hex_id = value.strip().lower().removeprefix("urn:").removeprefix("uuid:")
        hex_id = hex_id.strip("{}").replace("-", "")
        if len(hex_id) == 32 and all(char in "0123456789abcdef" for char in hex_id):
            return hex_id
    ignore("capture_feedback", "associated_event_id as an event id", value)
    return None
