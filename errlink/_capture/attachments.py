"""Files and blobs sent with an event, as `attachment` items of the event's own envelope.

An `Attachment` is a reference only: bytes the caller already holds (not copied), or a path
that the sender reads later, on the pipeline's loop, never in the caller. Building one from
what a caller passed to `add_attachment` or ``attachments=[...]`` never raises: anything that
cannot be understood is logged once and ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .._delivery.attachment import Attachment
from .misuse import ignore


def attachment_from(where: str, value: object) -> Attachment | None:
    """An `Attachment` from what a caller passed (an Attachment, or a mapping of its keyword
    arguments); None, logged once for `where`, when it is neither."""
    if isinstance(value, Attachment):
        return value
    if isinstance(value, Mapping):
        try:
            return Attachment(**dict(value))
        except Exception:
            pass
    ignore(where, "an errlink.Attachment or a mapping with bytes= or path=", value)
    return None


def attachments_from(where: str, values: object) -> list[Attachment]:
    """The attachments in an ``attachments=[...]`` argument; what is not one is ignored."""
    if values is None:
        return []
    if isinstance(values, Attachment | Mapping) or not isinstance(values, Iterable):
        values = [values]
    found: list[Attachment] = []
    try:
        for value in values:
            attachment = attachment_from(where, value)
            if attachment is not None:
                found.append(attachment)
    except Exception:
        ignore(where, "a list of attachments", values)
    return found


def new_attachment(**arguments: Any) -> Attachment | None:
    """`add_attachment`'s arguments as an Attachment; None (logged once) when they are not."""
    try:
        return Attachment(**arguments)
    except Exception:
        ignore("add_attachment", "bytes= or path= (one of them) and str names", arguments)
        return None
