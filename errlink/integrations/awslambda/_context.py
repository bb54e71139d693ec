"""What an invocation's scope carries: ``contexts.aws_lambda`` from the runtime's context
object, and the incoming event (an HTTP event as the ``request``, any other as an extra)."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from .._request import body_data, header_dict, request_interface, to_text
from .._sdk import ClientCore, IncomingTrace, set_extra, set_request

_CONTEXT_FIELDS = (
    "function_name",
    "function_version",
    "invoked_function_arn",
    "aws_request_id",
    "log_group_name",
    "log_stream_name",
)


def lambda_context(
    context: Any, remaining_seconds: float | None, duration_seconds: float
) -> dict[str, Any]:
    """``contexts.aws_lambda``: the runtime's context object, the time left and the time spent."""
    info: dict[str, Any] = {}
    for name in _CONTEXT_FIELDS:
        value = getattr(context, name, None)
        if value is not None:
            info[name] = to_text(value)
    memory = getattr(context, "memory_limit_in_mb", None)
    if memory is not None:
        info["memory_limit_in_mb"] = int(memory) if str(memory).isdigit() else to_text(memory)
    if remaining_seconds is not None:
        info["remaining_time_in_millis"] = int(remaining_seconds * 1000)
    info["execution_duration_in_millis"] = int(duration_seconds * 1000)
    return info


def attach_event(event: Any, core: ClientCore) -> None:
    request = http_request(event, core.options.max_request_body_bytes) if is_http(event) else None
    if request is not None:
        set_request(request)
    elif event is not None:
        set_extra("aws_lambda_event", event)  # a reference: scrubbed and bounded if sent


def invocation_trace(event: Any) -> IncomingTrace:
    """The invocation's trace: continued from an HTTP event's headers (any case), else new."""
    # An ALB with multi-value headers sends only `multiValueHeaders` (lists of values).
    headers = (event.get("headers") or event.get("multiValueHeaders")) if is_http(event) else None
    if not isinstance(headers, Mapping) or not headers:
        return IncomingTrace(_no_header)
    return IncomingTrace(lambda name: _header(headers, name))


def _no_header(name: str) -> None:
    return None


def _header(headers: Mapping[Any, Any], name: str) -> Any:
    value = headers.get(name)
    if value is None:
        for key, found in headers.items():
            if isinstance(key, str) and key.lower() == name:
                value = found
                break
    return value[0] if isinstance(value, list) and value else value


def is_http(event: Any) -> bool:
    if not isinstance(event, Mapping):
        return False
    http = event.get("requestContext", {})
    http = http.get("http") if isinstance(http, Mapping) else None
    return isinstance(event.get("httpMethod"), str) or isinstance(http, Mapping)


def http_request(event: Mapping[str, Any], max_body_bytes: int | None) -> dict[str, Any]:
    """The `request` of an API Gateway (REST or HTTP API), function URL or ALB event."""
    request_context = event.get("requestContext") or {}
    http = request_context.get("http") or {}  # HTTP API (payload 2.0) and function URLs
    headers = header_dict(event.get("headers") or {})
    lower = {name.lower(): value for name, value in headers.items()}
    method = http.get("method") or event.get("httpMethod") or "GET"
    path = event.get("rawPath") or event.get("path") or http.get("path") or "/"
    host = lower.get("host") or request_context.get("domainName") or "localhost"
    scheme = lower.get("x-forwarded-proto", "https").split(",")[0].strip() or "https"
    if "rawQueryString" in event:
        query = event.get("rawQueryString") or ""
    else:
        multi = event.get("multiValueQueryStringParameters")
        single = event.get("queryStringParameters")
        pairs = (
            [(key, value) for key, values in multi.items() for value in values or ()]
            if isinstance(multi, Mapping)
            else list(single.items())
            if isinstance(single, Mapping)
            else []
        )
        query = urlencode(pairs)
    cookies = event.get("cookies")
    identity = request_context.get("identity") or {}
    body = event.get("body")
    raw: bytes | str | None = body if isinstance(body, str) else None
    if raw is not None and event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(raw)
        except ValueError:
            pass  # keep the text as sent
    content_length = len(raw.encode("utf-8") if isinstance(raw, str) else raw) if raw else None
    return request_interface(
        url=f"{scheme}://{host}{path}",
        method=method,
        query_string=query,
        headers=headers,
        cookies="; ".join(map(str, cookies)) if isinstance(cookies, list) else lower.get("cookie"),
        data=body_data(
            raw,
            content_type=lower.get("content-type"),
            content_length=content_length,
            max_bytes=max_body_bytes,
        ),
        remote_addr=http.get("sourceIp") or identity.get("sourceIp"),
    )
