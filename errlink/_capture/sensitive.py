"""What counts as sensitive: key names that hold secrets, and card numbers inside text."""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable
from itertools import accumulate

FILTERED = "[Filtered]"

# Key names are compared after case folding and dropping these separators, so that
# `X-Api-Key`, `x_api_key`, `API KEY` and `api.key` are all the same name: `xapikey`/`apikey`.
_SEPARATORS = str.maketrans("", "", "-_ .")

# Words that mean "secret" wherever they appear in a name (`db_password`, `refresh_token`).
# Every name Relay's default scrubbing filters by its key holds one of them (it looks for
# password, secret, passwd, api_key, auth, credentials, mysql_pwd, private_key and token
# anywhere in the name), so that what errlink sends leaves Relay nothing to filter: `author`
# is filtered too.
_SENSITIVE_PARTS = frozenset(
    {
        "password",
        "passwd",
        "passphrase",
        "pwd",
        "secret",
        "token",
        "auth",
        "apikey",
        "accesskey",
        "privatekey",
        "credential",
        "csrf",
        "xsrf",
        "session",
        "creditcard",
        "cardnumber",
    }
)
# Short or ambiguous words, sensitive only as the whole name (`pin` yes, `spinner` no).
_SENSITIVE_NAMES = frozenset(
    {
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
        # one-time passwords (Relay filters these two as whole names)
        "otp",
        "twofactor",
        # session cookies of common frameworks, which Relay filters under any `cookies` key
        "sentrysid",
        "su",
        "sudo",
        "symfony",
        "phpsessid",
        "verceljwt",
    }
)
DEFAULT_DENYLIST: frozenset[str] = _SENSITIVE_PARTS | _SENSITIVE_NAMES

_KEY_CACHE_SIZE = 4096
_MAX_CACHED_KEY_LEN = 256
# Card numbers, two kinds:
# - Luhn-valid numbers of 13 to 19 digits, written without separators or in groups joined by
#   single separators (a space, a dash or another ASCII white space). The first digit is
#   restricted to the ranges card networks use (2-6), which keeps millisecond timestamps and
#   zero-padded ids (which start with 1 or 0) from being taken for cards one time in ten. Such a
#   card is not the tail of a number or of a decimal.
# - "network-shaped" numbers, Luhn-valid or not: 16 digits starting with 4, 51-55, 65 or 6011,
#   or 15 starting with 34 or 37, the first four (three) digits in a row, then any digit after a
#   single separator or none; not glued to a letter, digit or underscore on either side (`0.`
#   before one is no exception). Relay's default scrubbing filters these shapes, so an order id
#   of that shape is filtered too.
#
# The scan is linear, and nearly all of it runs in C (bytes.translate, find and count), so that
# text full of digits costs about what text full of letters does:
# 1. a pre-filter: every card holds three digits in a row; most texts have none;
# 2. "stretches": runs of digits and single or double separators, cut at anything else; only
#    stretches of 13 digits or more are looked at;
# 3. "chunks": a stretch cut at two separators in a row. In a chunk, a number written without
#    separators (one group of 13-19 digits) is checked; a Luhn-valid card written in groups
#    (`4111 1111 1111 1111`, `3782 822463 10005`) is looked for only in a chunk of at most
#    `_MAX_GROUPED_CHUNK` digits: a longer run of short numbers is data (ids, amounts, a row of a
#    table), and checking every window of it would cost a Luhn check per group. Network shapes
#    need no Luhn check: they are looked for in every chunk, group by group.
#
# Text dense with card-shaped numbers (many groups of 13 to 19 digits) still needs a look from
# Python at each. A `ScanBudget` bounds that work for one value tree (a frame's locals,
# `extra`...): once it is spent, a stretch that would need the look is filtered whole instead,
# so the cost stays near that of plain text and nothing unchecked leaves. A chunk of short
# numbers too long to hold a Luhn-valid card in groups is looked at for network shapes only
# while the budget lasts; past it, it is sent as it is.
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
# The shortest first group of a network-shaped number (American Express: 34x, 37x).
_MIN_SHAPED_GROUP = 3

_DIGITS = b"0123456789"
_SEPARATOR_BYTES = b" -\t\n\r\x0b\x0c"
_OTHER = bytes(range(256)).translate(None, _DIGITS + _SEPARATOR_BYTES)
# Every byte becomes one class letter: "0" digit, "s" separator, "x" anything else.
_CLASSES = bytes.maketrans(
    _DIGITS + _SEPARATOR_BYTES + _OTHER,
    b"0" * 10 + b"s" * len(_SEPARATOR_BYTES) + b"x" * len(_OTHER),
)
# Digits and separators alike become "0": finds the stretches that can hold a card.
_STRETCHES = bytes.maketrans(
    _DIGITS + _SEPARATOR_BYTES + _OTHER,
    b"0" * (10 + len(_SEPARATOR_BYTES)) + b"x" * len(_OTHER),
)
_THIRTEEN = b"0" * _MIN_DIGITS
_THREE = b"0" * _MIN_SHAPED_GROUP
_DIGIT_CLASS = ord("0")
_SPACES = bytes.maketrans(_SEPARATOR_BYTES, b" " * len(_SEPARATOR_BYTES))
_CARD_FIRST = frozenset(b"23456")
_SHAPED_FIRST = frozenset(b"3456")
# ASCII letters, digits and underscore: a network-shaped number must not touch one.
_WORD = frozenset(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_DOT = ord(".")
_LUHN_PLAIN = bytes.maketrans(_DIGITS, bytes(range(10)))
_LUHN_DOUBLED = bytes.maketrans(_DIGITS, bytes((0, 2, 4, 6, 8, 1, 3, 5, 7, 9)))


def _luhn_valid(digits: bytes) -> bool:
    """``digits``: ASCII digits only."""
    plain = sum(digits[-1::-2].translate(_LUHN_PLAIN))
    doubled = sum(digits[-2::-2].translate(_LUHN_DOUBLED))
    return (plain + doubled) % 10 == 0


def normalize_key(key: str) -> str:
    # casefold, not lower: with a long s (U+017F) for its s, `secret` is still `secret` to a
    # case-insensitive match, as it is to Relay's.
    return key.casefold().translate(_SEPARATORS)


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


def card_spans(text: str, budget: ScanBudget | None = None) -> list[tuple[int, int]]:
    """The ``(start, end)`` of every card number in ``text``, in order and not overlapping.

    ``budget``: shared by the values of one tree and spent here; once it is spent, a stretch of
    digits that would need a closer look is taken whole. Without one, every stretch is looked
    at."""
    if type(text) is not str or len(text) < MIN_CARD_CHARS:
        return []
    # One byte per character (anything not ASCII becomes "?"), so positions carry over.
    raw = text.encode("ascii", "replace")
    classes = raw.translate(_CLASSES)
    if _THREE not in classes:
        return []
    cards: list[tuple[int, int]] = []
    if b"x" in classes:
        _cards_in_text(raw, classes, cards, budget)
    elif b"s" in classes:  # numbers only (a row of ids, amounts): one stretch
        _cards_in_stretch(raw, classes, 0, len(raw), cards, budget)
    elif _is_card(raw, 0, len(raw)):  # one number
        cards.append((0, len(raw)))
    if len(cards) < 2:
        return cards
    # Luhn-valid and network-shaped windows may overlap: one span for each region.
    cards.sort()
    merged = [cards[0]]
    for start, end in cards[1:]:
        last_start, last_end = merged[-1]
        if start < last_end:
            merged[-1] = (last_start, max(last_end, end))
        else:
            merged.append((start, end))
    return merged


def filter_card_numbers(
    text: str, budget: ScanBudget | None = None
) -> tuple[str, list[tuple[int, int]]]:
    """``text`` with every card number replaced by ``[Filtered]``, and the ``(start, end)`` of
    each ``[Filtered]`` written, as positions in the returned text. ``budget``: see
    `card_spans`."""
    cards = card_spans(text, budget)
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
    """Appends the ``(start, end)`` of every card in ``raw`` to ``cards``."""
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
    size = end - start
    if (
        size <= _MAX_DIGITS
        and raw[start] in _CARD_FIRST
        and (start == 0 or raw[start - 1] != _DOT)
        and _luhn_valid(raw[start:end])
    ):
        return True
    return (
        size == _shaped_length(raw[start : start + _FIRST_GROUP])
        and (start == 0 or raw[start - 1] not in _WORD)
        and (end == len(raw) or raw[end] not in _WORD)
    )


def _shaped_length(head: bytes) -> int:
    """How many digits a network-shaped number starting with the digits ``head`` (its first
    group, up to four digits) has: 16, 15, or 0 when no such number starts so."""
    if len(head) < _MIN_SHAPED_GROUP or head[0] not in _SHAPED_FIRST:
        return 0
    first, second = head[0], head[1]
    if first == 0x33:  # 3
        return 15 if second in b"47" else 0
    if len(head) < _FIRST_GROUP:
        return 0
    if first == 0x34:  # 4
        return 16
    if first == 0x35:  # 5
        return 16 if second in b"12345" else 0
    return 16 if second == 0x35 or head == b"6011" else 0  # 6


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
            # One chunk of short numbers, too long to hold a Luhn-valid card in groups.
            if budget is None or budget.left > 0:
                if budget is not None:
                    budget.left -= end - start
                low = classes.find(b"0", start, end)
                _shaped_in_groups(raw, low, classes.rfind(b"0", start, end) + 1, cards)
            return
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
            _shaped_in_groups(raw, low, high, cards)
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
    """Luhn-valid cards in the short chunk ``raw[low:high]``, written in groups or without
    separators.

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
            if _luhn_valid(raw[start:end].translate(None, _SEPARATOR_BYTES)):
                cards.append((start, end))
                resume = after
                break


def _shaped_in_groups(raw: bytes, low: int, high: int, cards: list[tuple[int, int]]) -> None:
    """Network-shaped numbers in the chunk ``raw[low:high]`` (digits in groups joined by single
    separators): from a group that can start one, the groups that end exactly at its length."""
    groups = raw[low:high].translate(_SPACES).split(b" ")
    starts = [
        index
        for index, group in enumerate(groups)
        if len(group) >= _MIN_SHAPED_GROUP and group[0] in _SHAPED_FIRST
    ]
    if not starts:
        return
    sizes = [len(group) for group in groups]
    digits_to = list(accumulate(sizes))  # digits in groups 0..k
    offsets = list(accumulate([size + 1 for size in sizes], initial=low))
    last = len(groups) - 1
    for index in starts:
        length = _shaped_length(groups[index][:_FIRST_GROUP])
        if not length:
            continue
        wanted = length + (digits_to[index - 1] if index else 0)
        after = bisect_left(digits_to, wanted, index)
        if after > last or digits_to[after] != wanted:
            continue  # the number would end inside a group, or the chunk is too short
        start = offsets[index]
        end = offsets[after + 1] - 1
        if index == 0 and start and raw[start - 1] in _WORD:
            continue
        if after == last and end < len(raw) and raw[end] in _WORD:
            continue
        cards.append((start, end))
