"""Which HTTP errors the web integrations report: the `capture_status_codes` option.

Frameworks raise exceptions that carry an HTTP status (Flask's and werkzeug's `HTTPException`,
Sanic's `SanicException`, Tornado's `HTTPError`, aiohttp's `HTTPException`) to answer a request:
`abort(404)`, a redirect, a 503 while a dependency is down. Such an exception is reported when its
status is in `capture_status_codes` (default 500-599); any other exception is an error and always
reported (subject to the client's `ignore_errors`). Flask, Sanic, Tornado and aiohttp.web share
the option, its default and its validation.
"""

from __future__ import annotations

from collections.abc import Iterable

DEFAULT_CAPTURE_STATUS_CODES: frozenset[int] = frozenset(range(500, 600))


def capture_status_codes_option(
    value: object, where: str = "option 'capture_status_codes'"
) -> frozenset[int]:
    """`value` as a set of HTTP status codes (100-599); errors name the option as `where`."""
    if isinstance(value, str | bytes | int) or not isinstance(value, Iterable):
        raise TypeError(
            f"{where} must be a collection of HTTP status codes such as range(500, 600) or "
            f"{{404, 500}}, not {value!r}"
        )
    codes = list(value)
    for code in codes:
        if isinstance(code, bool) or not isinstance(code, int) or not 100 <= code <= 599:
            raise ValueError(f"{where} holds {code!r}: use HTTP status codes (100-599)")
    return frozenset(codes)


def is_reported(status: int | None, codes: frozenset[int]) -> bool:
    """Report an HTTP exception (one carrying `status`) only for `codes`; anything else always."""
    return status is None or status in codes
