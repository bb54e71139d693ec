"""Fuzzing the DSN parser: any text either parses or fails with ValueError, never leaking a secret.

Strings are assembled from DSN-shaped parts (so most examples get deep into the parser) with
arbitrary text mixed in; a unique secret marks the secret position and must never appear in an
error message, `str()` or `repr()`.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from typing import TypeVar

from hypothesis import given, settings
from hypothesis import strategies as st

from errlink import AsyncClient, Dsn

SECRET = "Zq7SECRETxY"
T = TypeVar("T")

_any_text = st.text(max_size=30)
_word = st.text(alphabet=string.ascii_letters + string.digits + "-._~", max_size=12)
_schemes = st.sampled_from(["http", "https", "ftp", "HTTP", "", "http:", "h ttp"]) | _any_text
_hosts = st.sampled_from(["example.com", "127.0.0.1", "[::1]", "[fe80::1%eth0]", "", "ex ample"])
_ports = st.sampled_from(["", ":80", ":0", ":65535", ":65536", ":-1", ":x", ":"]) | st.builds(
    lambda n: f":{n}", st.integers(-10, 100_000)
)
_paths = st.sampled_from(["", "/", "/sub", "/a/b/", "//", "/%2F"]) | _any_text
_projects = st.sampled_from(["1", "42", "proj_1", "", "1?x=1", "1#f", "1 2", "é"]) | _word


@st.composite
def dsn_like(draw: st.DrawFn) -> str:
    scheme = draw(_schemes)
    key = draw(_word | _any_text)
    secret = draw(st.sampled_from(["", f":{SECRET}", f":{SECRET}@x", ":"]))
    at = draw(st.sampled_from(["@", "", "@@"]))
    return (
        f"{scheme}://{key}{secret}{at}{draw(_hosts)}{draw(_ports)}{draw(_paths)}/{draw(_projects)}"
    )


def _made_or_refused(make: Callable[[str], T], text: str) -> T | None:
    """`make(text)`, or None if it refused with a ValueError that does not show the secret."""
    try:
        return make(text)
    except ValueError as exc:
        refusal = str(exc)
    assert SECRET not in refusal
    return None


def _check(text: str) -> None:
    dsn = _made_or_refused(Dsn.parse, text)
    if dsn is None:
        return
    assert dsn.scheme in ("http", "https")
    assert dsn.project_id
    for shown in (str(dsn), repr(dsn), dsn.envelope_url, dsn.to_string()):
        assert SECRET not in shown
    again = Dsn.parse(dsn.to_string(with_secret=True))
    assert again == dsn


@settings(max_examples=400, deadline=None)
@given(dsn_like())
def test_dsn_shaped_text_parses_or_is_refused_cleanly(text: str) -> None:
    _check(text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_parses_or_is_refused_cleanly(text: str) -> None:
    _check(text)


@settings(max_examples=100, deadline=None)
@given(dsn_like())
def test_a_client_either_starts_or_refuses_with_value_error(text: str) -> None:
    client = _made_or_refused(AsyncClient, text)
    if client is None:
        return
    assert SECRET not in repr(client.options)
