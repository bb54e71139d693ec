"""What counts as sensitive: key names that hold secrets, and card numbers inside text."""

from __future__ import annotations

import re
from collections.abc import Iterable
from itertools import accumulate

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
# Card numbers: 13 to 19 digits, Luhn-valid, written without separators or in groups joined by
# single spaces or dashes. The first digit is restricted to the ranges card networks use (2-6),
# which keeps millisecond timestamps and zero-padded ids (which start with 1 or 0) from being
# taken for cards one time in ten. A card is not the tail of a number or of a decimal.
#
# The scan is linear, and nearly all of it runs in C (bytes.translate, find and count), so that
# text full of digits costs about what text full of letters does:
# 1. a pre-filter: every card holds four digits in a row; most texts have none;
# 2. "stretches": runs of digits and single or double separators, cut at anything else; only
#    stretches of 13 digits or more are looked at;
# 3. "chunks": a stretch cut at two separators in a row. In a chunk, a number written without
#    separators (one group of 13-19 digits) is checked; a card written in groups
#    (`4111 1111 1111 1111`, `3782 822463 10005`) is checked only in a chunk of at most
#    `_MAX_GROUPED_CHUNK` digits: a longer run of short numbers is data (ids, amounts, a row of a
#    table), and checking every window of it would cost a Luhn check per group. A stretch that is
#    one such long chunk with no 13 digits in a row is known clean after a few C calls.
#
# Text dense with card-shaped numbers (many groups of 13 to 19 digits) still needs a look from
# Python at each. A `ScanBudget` bounds that work for one value tree (a frame's locals,
# `extra`...): once it is spent, a stretch that would need the look is filtered whole instead,
# so the cost stays near that of plain text and nothing unchecked leaves.
MIN_CARD_CHARS = 13
_MIN_DIGITS = 13
_MAX_DIGITS = 19
_MAX_GROUPED_CHUNK = 40
# A chunk (no two separators in a row) longer than this has more than `_MAX_GROUPED_CHUNK` digits.
_LONG_CHUNK = 2 * _MAX_GROUPED_CHUNK + 1
# Characters of stretches one value tree may scan in detail: room for ~100 card-shaped numbers.
DETAILED_SCAN_CHARS = 2048
# A card written in groups starts with a group of 4 digits (4-4-4-4, 4-6-5, 4-6-4, 4-4-4-4-3),
# and its inner groups have at least 3: this bounds the windows tried at each group.
_FIRST_GROUP = 4
_MIN_INNER_GROUP = 3

_DIGITS = b"0123456789"
_OTHER = bytes(range(256)).translate(None, _DIGITS + b" -")
# Every byte becomes one class letter: "0" digit, "s" separator, "x" anything else.
_CLASSES = bytes.maketrans(_DIGITS + b" -" + _OTHER, b"0" * 10 + b"ss" + b"x" * len(_OTHER))
# Digits and separators alike become "0": finds the stretches that can hold a card.
_STRETCHES = bytes.maketrans(_DIGITS + b" -" + _OTHER, b"0" * 12 + b"x" * len(_OTHER))
_THIRTEEN = b"0" * _MIN_DIGITS
_FOUR = b"0" * _FIRST_GROUP
_DIGIT_CLASS = ord("0")
_SPACES = bytes.maketrans(b"-", b" ")
_CARD_FIRST = frozenset(b"23456")
_DOT = ord(".")
_LUHN_PLAIN = bytes.maketrans(_DIGITS, bytes(range(10)))
_LUHN_DOUBLED = bytes.maketrans(_DIGITS, bytes((0, 2, 4, 6, 8, 1, 3, 5, 7, 9)))


def _luhn_valid(digits: bytes) -> bool:
    """``digits``: ASCII digits only."""
    plain = sum(digits[-1::-2].translate(_LUHN_PLAIN))
    doubled = sum(digits[-2::-2].translate(_LUHN_DOUBLED))
    return (plain + doubled) % 10 == 0


def normalize_key(key: str) -> str:
    return key.lower().translate(_SEPARATORS)


class ScanBudget:
    """Characters of digit chunks that one value tree may still scan in detail."""

    __slots__ = ("left",)

    def __init__(self, left: int = DETAILED_SCAN_CHARS) -> None:
        self.left = left


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


def filter_card_numbers(
    text: str, budget: ScanBudget | None = None
) -> tuple[str, list[tuple[int, int]]]:
    """``text`` with every Luhn-valid card number replaced by ``[Filtered]``, and the
    ``(start, end)`` of each ``[Filtered]`` written, as positions in the returned text.

    ``budget``: shared by the values of one tree and spent here; once it is spent, a stretch of
    digits that would need a closer look is filtered whole. Without one, every stretch is
    looked at."""
    if type(text) is not str or len(text) < MIN_CARD_CHARS:
        return text, []
    # One byte per character (anything not ASCII becomes "?"), so positions carry over.
    raw = text.encode("ascii", "replace")
    classes = raw.translate(_CLASSES)
    if _FOUR not in classes:
        return text, []
    cards: list[tuple[int, int]] = []
    if b"x" in classes:
        _cards_in_text(raw, classes, cards, budget)
    elif b"s" in classes:  # numbers only (a row of ids, amounts): one stretch
        _cards_in_stretch(raw, classes, 0, len(raw), cards, budget)
    elif _is_card(raw, 0, len(raw)):  # one number
        cards.append((0, len(raw)))
    if not cards:
        return text, []
    pieces: list[str] = []
    spans: list[tuple[int, int]] = []
    written = 0
    consumed = 0
    for start, end in cards:
        kept = text[consumed:start]
        pieces.append(kept)
        written += len(kept)
        pieces.append(FILTERED)
        spans.append((written, written + len(FILTERED)))
        written += len(FILTERED)
        consumed = end
    pieces.append(text[consumed:])
    return "".join(pieces), spans


def _cards_in_text(
    raw: bytes, classes: bytes, cards: list[tuple[int, int]], budget: ScanBudget | None
) -> None:
    """Appends the ``(start, end)`` of every card in ``raw`` to ``cards``, in order."""
    size = len(raw)
    stretches = raw.translate(_STRETCHES)
    position = 0
    while True:
        # Searching from the start or from an "x" finds the first character of a stretch.
        start = stretches.find(_THIRTEEN, position)
        if start < 0:
            return
        end = stretches.find(b"x", start)
        if end < 0:
            end = size
        if classes.find(b"s", start, end) < 0:  # one number, no separators: the common case
            if _is_card(raw, start, end):
                cards.append((start, end))
        else:
            _cards_in_stretch(raw, classes, start, end, cards, budget)
        position = end


def _is_card(raw: bytes, start: int, end: int) -> bool:
    """Whether the digits ``raw[start:end]`` (13 or more, no separators) are a card number."""
    return (
        end - start <= _MAX_DIGITS
        and raw[start] in _CARD_FIRST
        and (start == 0 or raw[start - 1] != _DOT)
        and _luhn_valid(raw[start:end])
    )


def _cards_in_stretch(
    raw: bytes,
    classes: bytes,
    start: int,
    end: int,
    cards: list[tuple[int, int]],
    budget: ScanBudget | None,
) -> None:
    """Cards in the stretch ``raw[start:end]`` of digits and separators."""
    if classes.find(_THIRTEEN, start, end) < 0:  # then only cards written in groups
        if end - start > _LONG_CHUNK and classes.find(b"ss", start, end) < 0:
            return  # one chunk of short numbers, too long to be a card written in groups
        if end - start - classes.count(b"s", start, end) < _MIN_DIGITS:
            return
    if budget is not None:
        if budget.left <= 0:
            cards.append((classes.find(b"0", start, end), classes.rfind(b"0", start, end) + 1))
            return
        budget.left -= end - start
    low = classes.find(b"0", start, end)
    while low >= 0:
        cut = classes.find(b"ss", low, end)
        high = end if cut < 0 else cut
        if classes[high - 1] != _DIGIT_CLASS:  # a single separator ends the stretch
            high -= 1
        chunk_digits = high - low - classes.count(b"s", low, high)
        if chunk_digits >= _MIN_DIGITS:
            if chunk_digits <= _MAX_GROUPED_CHUNK:
                _cards_in_groups(raw, low, high, cards)
            else:
                _cards_without_separators(raw, classes, low, high, cards)
        if cut < 0:
            return
        low = classes.find(b"0", cut, end)


def _cards_without_separators(
    raw: bytes, classes: bytes, low: int, high: int, cards: list[tuple[int, int]]
) -> None:
    """Cards written as one group of digits in the long chunk ``raw[low:high]``."""
    position = low
    while True:
        # Searching from the chunk's start or from a separator finds the start of a group.
        start = classes.find(_THIRTEEN, position, high)
        if start < 0:
            return
        end = classes.find(b"s", start, high)
        if end < 0:
            end = high
        if _is_card(raw, start, end):
            cards.append((start, end))
        position = end


def _cards_in_groups(raw: bytes, low: int, high: int, cards: list[tuple[int, int]]) -> None:
    """Cards in the short chunk ``raw[low:high]``, written in groups or without separators.

    From each group that can start a card, the longest run of groups of 13 to 19 digits that
    passes the Luhn check is a card; the search goes on after it.
    """
    groups = raw[low:high].translate(_SPACES).split(b" ")
    sizes = [len(group) for group in groups]
    # offsets[k]: where group k starts; offsets[k + 1] - 1: where it ends.
    offsets = list(accumulate([size + 1 for size in sizes], initial=low))
    count = len(groups)
    resume = 0  # groups before this one are part of a card already found
    for index, group in enumerate(groups):
        size = sizes[index]
        if (
            index < resume
            or group[0] not in _CARD_FIRST
            or not (size == _FIRST_GROUP or _MIN_DIGITS <= size <= _MAX_DIGITS)
        ):
            continue
        start = offsets[index]
        if start and raw[start - 1] == _DOT:
            continue
        windows = []  # for each window of 13 to 19 digits from here: the index after its end
        if size >= _MIN_DIGITS:
            windows.append(index + 1)
        else:  # a card in groups: its inner groups have 3 digits or more
            digits = size
            after = index + 1
            while after < count:
                size = sizes[after]
                digits += size
                after += 1
                if digits > _MAX_DIGITS:
                    break
                if digits >= _MIN_DIGITS:
                    windows.append(after)
                if size < _MIN_INNER_GROUP:
                    break
        for after in reversed(windows):
            end = offsets[after] - 1
            if _luhn_valid(raw[start:end].translate(None, b" -")):
                cards.append((start, end))
                resume = after
                break
