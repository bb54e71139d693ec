"""Parsing of Sentry DSNs into the envelope endpoint and the auth header."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from .._version import __version__

SDK_NAME = "errlink"
_ALLOWED_SCHEMES = ("http", "https")
_IPV6_LITERAL = re.compile(r"\[[0-9A-Fa-f:.]+(%[\w.~-]+)?\]")


@dataclass(frozen=True)
class Dsn:
    """A parsed DSN. Its repr never shows the secret key."""

    scheme: str
    public_key: str
    secret_key: str | None
    host: str
    port: int | None
    path: str
    project_id: str

    @classmethod
    def parse(cls, value: str) -> Dsn:
        if not isinstance(value, str):
            raise TypeError(f"dsn must be a string, not {type(value).__name__}")
        text = value.strip()
        if not text:
            raise ValueError("dsn is empty")
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError:
            # Not chained: urllib's message quotes the text, secret included.
            raise ValueError(f"invalid dsn: bad port ({_redacted(text)})") from None
        if parts.scheme not in _ALLOWED_SCHEMES:
            raise ValueError(
                f"invalid dsn: scheme must be http or https, got {parts.scheme or 'none'!r} "
                f"({_redacted(text)})"
            )
        if not parts.hostname:
            raise ValueError(f"invalid dsn: missing host ({_redacted(text)})")
        if not parts.username:
            raise ValueError(f"invalid dsn: missing public key before '@' ({_redacted(text)})")
        path, _, project_id = parts.path.rstrip("/").rpartition("/")
        if not project_id:
            raise ValueError(f"invalid dsn: missing project id at the end ({_redacted(text)})")
        if not project_id.isdigit() and not project_id.isidentifier():
            raise ValueError(f"invalid dsn: project id {project_id!r} is not valid")
        if parts.query or parts.fragment:
            raise ValueError(f"invalid dsn: unexpected query or fragment ({_redacted(text)})")
        host = parts.hostname
        if ":" in host:  # IPv6 literal, keep the brackets for URL building
            host = f"[{host}]"
        return cls(
            scheme=parts.scheme,
            public_key=parts.username,
            secret_key=parts.password or None,
            host=host,
            port=port,
            path=path,
            project_id=project_id,
        )

    @property
    def netloc(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"

    @property
    def envelope_url(self) -> str:
        return f"{self.scheme}://{self.netloc}{self.path}/api/{self.project_id}/envelope/"

    @property
    def store_url(self) -> str:
        return f"{self.scheme}://{self.netloc}{self.path}/api/{self.project_id}/store/"

    def auth_header(self) -> str:
        fields = [
            "sentry_version=7",
            f"sentry_key={self.public_key}",
            f"sentry_client={SDK_NAME}/{__version__}",
        ]
        if self.secret_key:
            fields.append(f"sentry_secret={self.secret_key}")
        return "Sentry " + ", ".join(fields)

    def to_string(self, *, with_secret: bool = False) -> str:
        """The DSN as text, without the secret unless asked for (envelope headers carry none)."""
        user = self.public_key
        if with_secret and self.secret_key:
            user = f"{user}:{self.secret_key}"
        return f"{self.scheme}://{user}@{self.netloc}{self.path}/{self.project_id}"

    def __str__(self) -> str:
        return self.to_string()

    def __repr__(self) -> str:
        return f"Dsn({self.to_string()!r})"


def _redacted(text: str) -> str:
    """The DSN text for error messages, with whatever could be the secret key masked.

    Whatever follows a `:` up to the next `@` or `/` is masked unless it is a port number, so
    the secret stays hidden even in broken text (a missing `@`, a stray `/`); well-formed IPv6
    literals in brackets are kept.
    """
    scheme, sep, rest = text.partition("://")
    if not sep:
        return "<unparseable>" if ":" in text else text
    shown: list[str] = []
    index = 0
    while index < len(rest):
        char = rest[index]
        if char == ":":
            end = index + 1
            while end < len(rest) and rest[end] not in "@/":
                end += 1
            part = rest[index + 1 : end]
            shown.append(":" + (part if part.isdigit() else "***"))
            index = end
        elif char == "[" and (literal := _IPV6_LITERAL.match(rest, index)):
            shown.append(literal.group())
            index = literal.end()
        else:
            shown.append(char)
            index += 1
    return f"{scheme}://{''.join(shown)}"
