"""Request, user and transaction name from a Django request, read when an event needs them.

Nothing here may cost the application a database query or consume input the view still needs:
the user is reported only if the request already loaded it, and the body is read only when it is
small enough (then cached on the request, so Django can still parse it afterwards).
"""

from __future__ import annotations

from typing import Any

from django.utils.functional import LazyObject, empty  # type: ignore[import-untyped]

from .._request import body_data, form_data, request_interface, to_text
from .._wsgi import (
    content_length,
    environ_env,
    environ_headers,
    environ_url,
    over_limit,
    parse_cookies,
    wsgi_text,
)
from ._config import IntegrationSettings


def request_context(request: Any, max_bytes: int | None) -> dict[str, Any]:
    meta = request.META
    # Under WSGI, META is the environ and holds WSGI strings; ASGI's query string is real text.
    from_wsgi = "wsgi.input" in meta
    query = meta.get("QUERY_STRING") or ""
    cookie_header = meta.get("HTTP_COOKIE")
    return request_interface(
        url=environ_url(meta, scheme=_scheme(request), path=to_text(request.path)),
        method=to_text(request.method or "GET"),
        query_string=wsgi_text(query) if from_wsgi else to_text(query),
        headers=environ_headers(meta),
        cookies=parse_cookies(cookie_header) if cookie_header else None,
        data=_body(request, max_bytes),
        env=environ_env(meta),
    )


def _scheme(request: Any) -> str | None:
    try:
        return to_text(request.scheme)
    except Exception:  # a misconfigured SECURE_PROXY_SSL_HEADER raises here
        return None


def _body(request: Any, max_bytes: int | None) -> Any:
    if max_bytes == 0:
        return None
    meta = request.META
    length = content_length(meta.get("CONTENT_LENGTH"))
    content_type = to_text(meta.get("CONTENT_TYPE") or "")
    if over_limit(length, max_bytes):
        return body_data(b"", content_type=content_type, content_length=length, max_bytes=max_bytes)
    state = request.__dict__
    post = state.get("_post")
    if post:  # parsed already; for a multipart body it is all that is left to read
        return form_data(
            post, content_type=content_type, content_length=length, max_bytes=max_bytes
        )
    raw = state.get("_body")
    if raw is None:
        if not length or state.get("_read_started", True):
            return None
        try:
            raw = request.body  # cached by Django: the view can still read it
        except Exception:  # over DATA_UPLOAD_MAX_MEMORY_SIZE, or a stream already read
            return None
    return body_data(raw, content_type=content_type, content_length=length, max_bytes=max_bytes)


def loaded_user(request: Any) -> Any:
    """`request.user` if something already loaded it, else None (loading means a query)."""
    state = request.__dict__
    for cached in ("_cached_user", "_acached_user"):  # set by get_user() / auser()
        user = state.get(cached)
        if user is not None:
            return user
    user = state.get("user")
    if isinstance(user, LazyObject):
        wrapped = user._wrapped
        return None if wrapped is empty else wrapped
    return user


def user_context(request: Any) -> dict[str, Any]:
    user = loaded_user(request)
    if user is None or getattr(user, "is_authenticated", False) is not True:
        return {}
    info: dict[str, Any] = {}
    pk = getattr(user, "pk", None)
    if pk is not None:
        info["id"] = to_text(pk)
    get_username = getattr(user, "get_username", None)
    if callable(get_username):
        info["username"] = to_text(get_username())
    email_field = getattr(user, "get_email_field_name", None)
    email = getattr(user, email_field() if callable(email_field) else "email", None)
    if isinstance(email, str) and email:
        info["email"] = email
    return info


def transaction_name(settings: IntegrationSettings, request: Any, view: Any) -> str | None:
    match = getattr(request, "resolver_match", None)
    if settings.transaction_style == "function" or match is None:
        target = getattr(view, "view_class", view)
        module = getattr(target, "__module__", None)
        qualname = getattr(target, "__qualname__", None)
        return f"{module}.{qualname}" if module and qualname else None
    if settings.transaction_style == "route":
        return to_text(match.route) if match.route else None
    return to_text(match.view_name) if match.view_name else None
