"""Serving a stored attachment as a download, never as a page.

What a client attached is anyone's bytes: an HTML file, an SVG with a script. It is served with
its own content type (so a saved file opens with the right program) but always as
``Content-Disposition: attachment``, with ``X-Content-Type-Options: nosniff`` and a sandboxing
Content-Security-Policy, so a browser saves it instead of rendering it, and could run nothing
of it even if it did. The file name is given in both the plain and the RFC 6266/5987 form.
"""

from __future__ import annotations

import urllib.parse

from aiohttp import web

from ._attachments import StoredAttachment

DOWNLOAD_SECURITY_POLICY = "sandbox; default-src 'none'"
# Quoted-string safe and unambiguous in every browser; everything else becomes "_".
_PLAIN = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 !#$&'()*+,-.;=@[]^_`{}~"
)


def download_response(attachment: StoredAttachment, data: bytes) -> web.Response:
    return web.Response(
        body=data,
        headers={
            "Content-Type": attachment.content_type,
            "Content-Disposition": content_disposition(attachment.filename),
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": DOWNLOAD_SECURITY_POLICY,
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
        },
    )


def content_disposition(filename: str) -> str:
    """``attachment; filename="..."; filename*=UTF-8''...``: an ASCII stand-in for old
    clients, and the exact name, percent-encoded, for the others."""
    plain = "".join(char if char in _PLAIN else "_" for char in filename) or "attachment"
    encoded = urllib.parse.quote(filename, safe="")
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{encoded}"
