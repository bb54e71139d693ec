"""Building HTML where every value is escaped unless it is already `Markup`.

Pages are made of `html(template, **values)` calls: the template is our own text, every value
is escaped on the way in, and the result is `Markup`, so nesting never escapes twice and user
data never reaches the page unescaped.
"""

from __future__ import annotations

import html as _stdlib_html
import json
import urllib.parse
from collections.abc import Iterable, Mapping


class Markup(str):
    """Text that is already safe to put in an HTML page."""

    __slots__ = ()


def escape(value: object) -> Markup:
    if isinstance(value, Markup):
        return value
    return Markup(_stdlib_html.escape(str(value), quote=True))


def html(template: str, /, **values: object) -> Markup:
    """`template` with `{name}` fields filled by the escaped values."""
    return Markup(template.format(**{name: escape(value) for name, value in values.items()}))


def join(parts: Iterable[Markup], separator: str = "") -> Markup:
    return Markup(escape(separator).join(escape(part) for part in parts))


def url(path: str, query: Mapping[str, object] | None = None) -> str:
    """A link to one of our own pages; the query values are percent-encoded."""
    if not query:
        return path
    pairs = [(name, str(value)) for name, value in query.items() if value not in (None, "")]
    return f"{path}?{urllib.parse.urlencode(pairs)}" if pairs else path


def json_text(value: object, *, indent: int | None = None) -> str:
    """Any JSON value as readable text (to be escaped like any other text)."""
    try:
        return json.dumps(value, indent=indent, ensure_ascii=False, sort_keys=False, default=str)
    except (ValueError, RecursionError):
        return repr(value)


def value_text(value: object) -> str:
    """Strings as they are (objects arrive as their repr), everything else as JSON."""
    return value if isinstance(value, str) else json_text(value)
