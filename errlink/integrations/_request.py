"""The protocol's `request` interface, built the same way for every web framework.

Integrations hand over what the framework already parsed; this module applies the body size
limit (`max_request_body_size`) and turns awkward input (binary bodies, invalid UTF-8, headers
that are not text) into something an event can carry. Scrubbing of secrets and personal data
(cookies, Authorization, client IP) happens later, in the event builder, for every source alike.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl

_TEXT_TYPES = ("application/json", "application/x-www-form-urlencoded", "text/")


def to_text(value: object) -> str:
    """Bytes or anything else as text; invalid UTF-8 becomes replacement characters."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    try:
        return str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"


def header_dict(headers: Mapping[Any, Any] | Iterable[tuple[Any, Any]]) -> dict[str, str]:
    """Headers as a text dict; repeated headers are joined with ', ' as HTTP allows."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    out: dict[str, str] = {}
    for name, value in items:
        key = to_text(name).title() if isinstance(name, bytes) else to_text(name)
        text = to_text(value)
        out[key] = f"{out[key]}, {text}" if key in out else text
    return out


def form_data(
    form: Any, *, content_type: str, content_length: int | None, max_bytes: int | None
) -> Any:
    """`body_data` for a body the framework parsed into a multidict form already."""
    fields = {key: values[0] if len(values) == 1 else values for key, values in form.lists()}
    return body_data(
        None,
        content_type=content_type,
        content_length=content_length,
        max_bytes=max_bytes,
        parsed=fields,
    )


def body_data(
    body: bytes | str | None,
    *,
    content_type: str | None,
    content_length: int | None,
    max_bytes: int | None,
    parsed: Any = None,
) -> Any:
    """What the event shows of a request body, or None to leave `data` out.

    `parsed` is the framework's own parse of the body (a form or JSON), preferred when given.
    Bodies over `max_bytes` (None: no limit; 0: never) are described, not included.
    """
    size = content_length if content_length is not None else (len(body) if body else 0)
    if max_bytes == 0 or (body is None and parsed is None) or size == 0:
        return None
    if max_bytes is not None and size > max_bytes:
        return f"[request body of {size} bytes left out: over max_request_body_size]"
    if parsed is not None:
        return parsed
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else bytes(body or b"")
    if media_type == "application/json" or media_type.endswith("+json"):
        try:
            return json.loads(raw)
        except ValueError:
            return to_text(raw)
    if media_type == "application/x-www-form-urlencoded":
        return dict(parse_qsl(to_text(raw), keep_blank_values=True))
    if media_type.startswith("multipart/"):
        return f"[multipart body of {size} bytes left out]"
    if not media_type.startswith(_TEXT_TYPES) and _looks_binary(raw):
        return f"[binary body of {size} bytes left out]"
    return to_text(raw)


def request_interface(
    *,
    url: str,
    method: str,
    query_string: str | bytes | None = None,
    headers: Mapping[Any, Any] | Iterable[tuple[Any, Any]] = (),
    cookies: Mapping[str, Any] | str | None = None,
    data: Any = None,
    remote_addr: str | None = None,
    env: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The `request` dict; cookies and `env.REMOTE_ADDR` are dropped later unless PII is on."""
    request: dict[str, Any] = {"url": to_text(url), "method": to_text(method).upper()}
    if query_string:
        request["query_string"] = to_text(query_string)
    header_map = header_dict(headers)
    if header_map:
        request["headers"] = header_map
    if cookies:
        request["cookies"] = (
            to_text(cookies)
            if isinstance(cookies, str | bytes)
            else {to_text(k): to_text(v) for k, v in cookies.items()}
        )
    if data is not None:
        request["data"] = data
    environment = dict(env or {})
    if remote_addr:
        environment["REMOTE_ADDR"] = to_text(remote_addr)
    if environment:
        request["env"] = environment
    return request


def _looks_binary(raw: bytes) -> bool:
    sample = raw[:512]
    if b"\x00" in sample:
        return True
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start < len(sample) - 4  # a cut multi-byte character at the end is fine
    return False
