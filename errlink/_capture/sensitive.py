"""What counts as sensitive: key names that hold secrets, and card numbers inside text."""

from __future__ import annotations

import re
from collections.abc import Iterable

FILTERED = "[Filtered]"

# Key names are compared after lower-casing and dropping these separators, so that
# `X-Api-Key`, `x_api_key`, `API KEY` and `api.key` are all the same name: `xapikey`/`apikey`.
_SEPARATORS = str.maketrans("", "", "-_ .")

# Words that mean "secret" wherever they appear in a name (`db_password`, `refresh_token`).
_SENSITIVE_PARTS = frozenset(
    {
        "password",
        "passwd",
        "passphrase",
        "secret",
        "token",
        "apikey",
        "accesskey",
        "privatekey",
        "credential",
        "authorization",
        "csrf",
        "xsrf",
        "session",
        "creditcard",
        "cardnumber",
    }
)
# Short or ambiguous words, sensitive only as the whole name (`auth` yes, `author` no).
_SENSITIVE_NAMES = frozenset(
    {
        "auth",
        "authkey",
        "pwd",
        "pass",
        "pin",
        "jwt",
        "bearer",
        "cookie",
        "setcookie",
        "httpcookie",
        "cvv",
        "cvc",
        "ssn",
    }
)
DEFAULT_DENYLIST: frozenset[str] = _SENSITIVE_PARTS | _SENSITIVE_NAMES

_KEY_CACHE_SIZE = 4096
_MAX_CACHED_KEY_LEN = 256
# Card numbers: 13 to 19 digits, single spaces or dashes allowed between them. The first digit is
# restricted to the ranges card networks use (2-6), which keeps millisecond timestamps and
# zero-padded ids (which start with 1 or 0) from being taken for cards one time in ten.
MIN_CARD_CHARS = 13
_CARD_CANDIDATE = re.compile(r"[2-6](?:[ -]?[0-9]){12,18}(?![0-9])")
# A necessary condition for a candidate, cheap to search for because it starts with a plain
# character set (a lookbehind, or the optional separator, makes the regex engine much slower).
_CARD_HINT = re.compile(r"[2-6][0-9 -]{12}")
_NOT_BEFORE_CARD = frozenset("0123456789.")  # a card is not the tail of a number or a decimal


def _luhn_valid(digits: str) -> bool:
    total = 0
    double = False
    for char in reversed(digits):
        digit = ord(char) - 48
        if double:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
        double = not double
    return total % 10 == 0


def normalize_key(key: str) -> str:
    return key.lower().translate(_SEPARATORS)


class KeyVerdicts(dict[str, bool]):
    """Key name -> sensitive or not, computed on first sight and then looked up at C speed."""

    __slots__ = ("_names", "_parts")

    def __init__(self, extra_keys: Iterable[str] = ()) -> None:
        super().__init__()
        # Keys a user adds must match the whole (normalized) name: predictable, no surprises.
        self._names = _SENSITIVE_NAMES | {normalize_key(str(key)) for key in extra_keys}
        self._parts = re.compile("|".join(sorted(_SENSITIVE_PARTS)))

    def __missing__(self, key: str) -> bool:
        normalized = normalize_key(key)
        sensitive = normalized in self._names or self._parts.search(normalized) is not None
        if len(key) <= _MAX_CACHED_KEY_LEN:
            if len(self) >= _KEY_CACHE_SIZE:
                self.clear()  # bounded: odd workloads with endless distinct keys
            self[key] = sensitive
        return sensitive


def filter_card_numbers(text: str) -> tuple[str, list[tuple[int, int]]]:
    """``text`` with every Luhn-valid card number replaced by ``[Filtered]``, and the
    ``(start, end)`` of each ``[Filtered]`` written, as positions in the returned text."""
    if type(text) is not str or len(text) < MIN_CARD_CHARS:
        return text, []
    hint = _CARD_HINT.search(text)
    if hint is None:
        return text, []
    match = _CARD_CANDIDATE.search(text, hint.start())
    if match is None:
        return text, []
    pieces: list[str] = []
    spans: list[tuple[int, int]] = []
    written = 0
    consumed = 0
    while match is not None:
        start, end = match.span()
        digits = match.group().replace(" ", "").replace("-", "")
        if (start == 0 or text[start - 1] not in _NOT_BEFORE_CARD) and _luhn_valid(digits):
            kept = text[consumed:start]
            pieces.append(kept)
            written += len(kept)
            pieces.append(FILTERED)
            spans.append((written, written + len(FILTERED)))
            written += len(FILTERED)
            consumed = end
        match = _CARD_CANDIDATE.search(text, end)
    if not spans:
        return text, []
    pieces.append(text[consumed:])
    return "".join(pieces), spans
