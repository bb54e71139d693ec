"""Secrets inside text, found by their shape, and the placeholders written over them.

`TextRules` finds, in one string:

* card numbers (`sensitive.card_spans`);
* the body of a PEM key block (``-----BEGIN RSA PRIVATE KEY-----``, public keys too), up to its
  END line, or to the end of the text when that was cut off;
* the password of a URL with credentials (``scheme://user:password@host``): user and URL stay;
* ``Bearer <token>`` (all of it, as Relay filters it) and ``Basic <credentials>`` (the base64 of
  ``user:password``);
* US social security numbers (``123-45-6789``) and IBANs;
* ``name=value``, ``name: value``, ``'name': 'value'`` pairs whose name is sensitive, such as a
  dataclass repr (``Config(db_password='...')``), Celery's kwargs repr or a config line: the
  value only;
* when asked (without ``send_default_pii``): IPv4 and IPv6 addresses, written ``[ip]``, and
  e-mail addresses, written ``[email]``;

everything else written ``[Filtered]``. For a data value (a local, ``extra``, a header...), one
more rule may apply to the whole: a value that names a secret (``password``, ``secret``,
``auth``, ``api_key``, ``credentials``, ``private_key``, ``token=``...) is replaced whole, as
Relay's default scrubbing does with such values.

Each rule finds at least what the Relay rule it mirrors finds (word boundaries are ASCII ones,
which are looser), and the rules run again over their own output until it holds nothing more, so
that Relay's default rules find nothing left in what errlink sends. Known gaps: digits other
than ASCII ones and white space other than ASCII ones inside card numbers, IBANs and addresses;
and past the card scan's budget, long runs of short numbers are not looked at for card shapes
(see `sensitive`).

Speed: most texts hold none of this, so each rule first asks a cheap question in C (is there an
``@``, a ``::``, three digits in a row...) and only then looks closer; texts short enough are
remembered once known clean, since the same values come back with every event.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterable
from operator import itemgetter
from urllib.parse import quote_plus

from .sensitive import FILTERED, MIN_CARD_CHARS, ScanBudget, card_spans

Span = tuple[int, int]
# (start, end, placeholder) in the text being scanned; None: a placeholder already written there
_Hit = tuple[int, int, str | None]

IP = "[ip]"
EMAIL = "[email]"
# When two findings overlap, the region gets the placeholder that says least.
_STRENGTH = {None: 0, IP: 1, EMAIL: 2, FILTERED: 3}
# Placeholders as written, and as written in a URL's query (`%5BFiltered%5D`).
_PLACEHOLDERS = frozenset(
    {FILTERED, IP, EMAIL, *(quote_plus(placeholder) for placeholder in (FILTERED, IP, EMAIL))}
)

# Texts up to this long are remembered once known to hold nothing (`TextRules.clean`).
CLEAN_MAX_CHARS = 64
_CLEAN_CACHE_SIZE = 4096
# A rule's own placeholder may join what was around it into a new finding: a few passes settle.
_MAX_PASSES = 3

# Unicode White_Space, which is what Relay's `\s` means (Python's also counts \x1c-\x1f).
_WS = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_WORD_BYTES = frozenset(b"0Aa")  # word characters in `_SHAPES` classes

# Each byte of a text (anything not ASCII becomes "?") as a class: "0" digit, "A" upper-case
# letter, "a" lower-case letter or underscore; "." and "-" stay; anything else is "x".
_SHAPES = bytes(
    0x30
    if 0x30 <= byte <= 0x39
    else 0x41
    if 0x41 <= byte <= 0x5A
    else 0x61
    if 0x61 <= byte <= 0x7A or byte == 0x5F
    else byte
    if byte in b".-"
    else 0x78
    for byte in range(256)
)

# -- named secrets (data values only) -------------------------------------------------------------

# The exact question, asked of the case-folded text once cheaper ones say it may be worth it.
_SECRET_WORDS = re.compile(
    rf"passw(?:or)?d|secret|api[-_]?key|auth|credentials|mysql_pwd|private[-_]?key"
    rf"|token[^{_WS}]*[:=]"
)
_SECRET_NAMES = frozenset({"otp", "two-factor", "two_factor"})


def names_a_secret(text: str, folded: str | None = None) -> bool:
    """Whether ``text`` mentions a password, secret, API key, credentials, auth... or is a
    one-time password's name: a data value Relay's default scrubbing filters whole.
    ``folded``: ``text.casefold()``, when already made."""
    if folded is None:
        folded = text.casefold()
    if folded in _SECRET_NAMES:
        return True
    # One letter (a C memchr) before each word or two (a slower substring search).
    if ("h" in folded and "auth" in folded) or (
        "c" in folded and ("secret" in folded or "credentials" in folded)
    ):
        return True
    return (
        ("w" in folded and ("passw" in folded or "pwd" in folded))
        or ("k" in folded and ("key" in folded or "token" in folded))
    ) and _SECRET_WORDS.search(folded) is not None


# -- addresses ------------------------------------------------------------------------------------

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|0[0-9][0-9]|[0-9][0-9]?)"
_IPV4 = re.compile(rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}(?![0-9A-Za-z_])")
# In `_SHAPES` classes: the end of a first octet, and three more, roughly.
_IPV4_SHAPE = re.compile(rb"0\.0{1,3}\.0{1,3}\.0")
# Start or end of text, white space or ASCII punctuation around an IPv6 address.
_EDGE = r"\s!-/:-@\[-`{-~"
_HEX = "[0-9A-Fa-f]"
# Eight groups, or groups around a `::` (which takes in every compressed form, and a few
# strings that are not addresses, such as `::` alone, as Relay's rule does).
_IPV6 = re.compile(
    rf"(?<![^{_EDGE}])(?:{_HEX}{{1,4}}(?::{_HEX}{{1,4}}){{7}}|[0-9A-Fa-f:]{{0,40}}::[0-9A-Fa-f:]{{0,40}})"
    rf"(?![^{_EDGE}])"
)
_EMAIL_LOCAL = re.compile(r"[0-9A-Za-z.!#$%&'*+/=?^_`{|}~-]{1,64}\Z")
_EMAIL_DOMAIN = re.compile(r"[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*\.[A-Za-z]{2,}(?![0-9A-Za-z_])")

# -- credentials ----------------------------------------------------------------------------------

_URL_AUTHORITY = re.compile(r"[^/?#\s]*")
_PEM_HEADER = re.compile(r"-----BEGIN[A-Z ]+(?:PRIVATE|PUBLIC) KEY-----")
_PEM_FOOTER = re.compile(r"-----END[A-Z ]+(?:PRIVATE|PUBLIC) KEY-----")
_PEM_LEAD = re.compile(r"[\t ]*\r?\n?")
_BEARER_TOKEN = re.compile(rf"\s+[^{_WS}]+")
_BEARER = re.compile(rf"(?<![0-9A-Za-z_])bearer\s+[^{_WS}]+", re.IGNORECASE)
_BASIC_CREDENTIALS = re.compile(r"[ \t]+([A-Za-z0-9+/]{4,}={0,2})(?![A-Za-z0-9+/=])")
_BASIC = re.compile(r"(?<![0-9A-Za-z_])basic", re.IGNORECASE)

# -- numbers --------------------------------------------------------------------------------------

_SSN_SHAPE = b"000-00-0000"
_IBAN = re.compile(r"[A-Z]{2}\d{2}[A-Za-z0-9]{11,29}(?![0-9A-Za-z_])")
# Countries whose account numbers are IBANs.
_IBAN_COUNTRY_CODES = (
    "AD AE AL AO AT AZ BA BE BF BG BH BI BJ BR BY CF CG CH CI CM CR CV CY CZ DE DJ DK DO DZ EE "
    "EG ES FI FK FO FR GA GB GE GI GL GQ GR GT GW HN HR HU IE IL IQ IR IS IT JO KM KW KZ LB LC "
    "LI LT LU LV LY MA MC MD ME MG MK ML MN MR MT MU MZ NE NI NL NO OM PK PL PS PT QA RO RS RU "
    "SA SC SD SE SI SK SM SN SO ST SV TD TG TL TN TR UA VA VG XK YE"
)
_IBAN_COUNTRIES = frozenset(_IBAN_COUNTRY_CODES.split())

# -- pairs ----------------------------------------------------------------------------------------

# Pairs are found from their separator: the name before it is read in the reversed text (one
# anchored match), the value after it. Quotes may be escaped (a repr of a string holding one).
_SEPARATOR = re.compile("[:=]")
_NAME_BEFORE = re.compile(r"[ \t]*+(?P<quote>['\"]\\?)?(?P<name>[\w.\-]{1,64}+)")
# A quoted value may run to the end of the text without its closing quote: a repr cut short.
_VALUE_AFTER = re.compile(
    r"[ \t]*(?:\\?'(?P<single>[^'\n]*)(?:'|\Z)|\\?\"(?P<double>[^\"\n]*)(?:\"|\Z)"
    r"|(?P<bare>[^\s,;&'\"(){}\[\]<>]+))"
)
# Values that stand for a value (SQL and format placeholders): nothing to hide.
_PLACEHOLDER_VALUE = re.compile(r"\?|%s|%\(\w+\)s|\$\d+|:\w+|\{\w*\}")
# `name:value` without a space is a pair only for these names (Relay's): `session:42` is a
# Redis key, `user:1` an id.
_STRONG_NAME = re.compile("passw|secret|api.?key|auth|credential|pwd|private.?key|token")
# Authorization schemes: after one of these, the credentials are the next word.
_SCHEMES = frozenset({"bearer", "basic", "token", "digest", "negotiate", "apikey", "key"})
_SCHEME_CREDENTIALS = re.compile(r"[ \t]+[^\s,;'\"]+")


class TextRules:
    """One set of text rules, configured once (per client and kind of text); thread-safe.

    ``is_sensitive_key``: whether a pair's name is sensitive. ``addresses``, ``emails``: find
    IP and e-mail addresses; ``emails_in_urls``: the user of ``scheme://user@host`` counts as an
    e-mail address too (as Relay counts it in messages), rather than being kept with the URL.
    ``named_values``: a text that names a secret is filtered whole (data values).
    ``product_versions``: keep ``Chrome/120.0.0.0`` (a dotted quad right after ``name/``), which
    is no address in a User-Agent or a message."""

    __slots__ = (
        "_addresses",
        "_emails",
        "_emails_in_urls",
        "_is_sensitive_key",
        "_named_values",
        "_product_versions",
        "clean",
        "shortest",
    )

    def __init__(
        self,
        is_sensitive_key: Callable[[str], bool],
        *,
        addresses: bool,
        emails: bool,
        named_values: bool,
        product_versions: bool = False,
        emails_in_urls: bool = False,
    ) -> None:
        self._is_sensitive_key = is_sensitive_key
        self._addresses = addresses
        self._emails = emails
        self._emails_in_urls = emails_in_urls
        self._named_values = named_values
        self._product_versions = product_versions
        # ASCII texts of at most CLEAN_MAX_CHARS found to hold nothing; bounded. What is kept
        # here is what would be sent as it is anyway.
        self.clean: set[str] = set()
        # The shortest text a rule may change: `::` (an address), `otp`, `k=v`.
        self.shortest = 2 if addresses else 3

    def scrub(
        self, text: str, budget: ScanBudget | None = None, known: Iterable[Span] = ()
    ) -> tuple[str, list[Span]]:
        """``text`` with every finding replaced, and the span of each placeholder in the result.

        ``known``: spans of placeholders ``text`` already holds (a text scrubbed, then cut),
        carried over into the spans returned. ``budget``: see `sensitive.card_spans`.
        Never raises: on an unexpected error the whole text is filtered."""
        try:
            return self._scrub(text, budget, list(known))
        except Exception:
            return FILTERED, [(0, len(FILTERED))]

    def _scrub(
        self, text: str, budget: ScanBudget | None, spans: list[Span]
    ) -> tuple[str, list[Span]]:
        short = len(text) <= CLEAN_MAX_CHARS
        if short and text in self.clean:
            return text, spans
        original = text
        for again in range(_MAX_PASSES):
            shapes = text.encode("ascii", "replace").translate(_SHAPES)
            # "" without an ASCII letter: every word a rule looks for has some
            folded = text.casefold() if b"a" in shapes or b"A" in shapes else ""
            hits = self._hits(text, budget, shapes, folded, cards=not again)
            if not hits:
                break
            scrubbed, spans = _apply(text, hits, spans)
            if scrubbed == text:  # found only what was already filtered
                break
            text = scrubbed
        else:  # every pass changed the text
            folded = text.casefold()
        if self._named_values and folded and names_a_secret(text, folded):
            return FILTERED, [(0, len(FILTERED))]
        if short and not spans and original.isascii():
            clean = self.clean
            if len(clean) >= _CLEAN_CACHE_SIZE:
                clean.clear()
            clean.add(original)
        return text, spans

    def _hits(
        self, text: str, budget: ScanBudget | None, shapes: bytes, folded: str, cards: bool
    ) -> list[_Hit]:
        """What the rules find in ``text`` (``shapes``: its `_SHAPES` classes; ``folded``: it
        case-folded, or "" without an ASCII letter); ``cards``: look for card numbers too (a
        placeholder only ever splits runs of digits: a later pass finds none the first did not).

        Each rule is asked a question C answers fast (is there an ``@``...) before it looks."""
        hits: list[_Hit] = []
        size = len(text)
        if cards and size >= MIN_CARD_CHARS:
            hits.extend((start, end, FILTERED) for start, end in card_spans(text, budget))
        if "G" in text and "-----BEGIN" in text:
            _pem_bodies(text, hits)
        if "@" in text:
            users = _url_passwords(text, hits) if "//" in text else ()
            if self._emails:
                _emails(text, hits, () if self._emails_in_urls else users)
        colon = ":" in text
        if self._addresses and colon and ("::" in text or text.count(":") >= 7):
            hits.extend((m.start(), m.end(), IP) for m in _IPV6.finditer(text))
        if size >= 7:
            if self._addresses and "." in text:
                _ipv4s(text, shapes, hits, self._product_versions)
            if size >= 11 and "-" in text:
                _ssns(shapes, hits)
            if size >= 15 and b"AA0" in shapes:
                _ibans(text, shapes, hits)
            if "b" in folded and ("bearer" in folded or "basic" in folded):
                lowered = text.lower()
                if "bearer" in lowered:
                    _bearer_tokens(text, lowered, hits)
                if "basic" in lowered:
                    _basic_credentials(text, lowered, hits)
        if colon or "=" in text:
            self._pairs(text, hits)
        return hits

    def _pairs(self, text: str, hits: list[_Hit]) -> None:
        is_sensitive = self._is_sensitive_key
        backwards = text[::-1]
        size = len(text)
        for separator in _SEPARATOR.finditer(text):
            at = separator.start()
            before = _NAME_BEFORE.match(backwards, size - at)
            if before is None:
                continue
            name = before["name"][::-1]
            if not is_sensitive(name):
                continue
            after = _VALUE_AFTER.match(text, at + 1)
            if after is None:
                continue
            group = after.lastgroup or "bare"
            value = after[group]
            if not value or value in _PLACEHOLDERS:
                continue
            start, end = after.span(group)
            if group == "bare":
                if _PLACEHOLDER_VALUE.fullmatch(value) is not None:
                    continue
                if (
                    start == at + 1
                    and text[at] == ":"
                    and before["quote"] is None
                    and _STRONG_NAME.search(name.casefold()) is None
                ):
                    continue  # `session:42`
                if value.lower() in _SCHEMES:
                    credentials = _SCHEME_CREDENTIALS.match(text, end)
                    if credentials is not None:
                        end = credentials.end()
            hits.append((start, end, FILTERED))


def _apply(text: str, hits: list[_Hit], known: list[Span]) -> tuple[str, list[Span]]:
    """``text`` with ``hits`` replaced, and the spans of all placeholders in the result.

    Overlapping findings become one region; a finding that overlaps a placeholder already
    written (``known``) takes it in."""
    items = sorted([*hits, *((start, end, None) for start, end in known)], key=itemgetter(0))
    starts: list[int] = []
    ends: list[int] = []
    marks: list[str | None] = []
    for start, end, placeholder in items:
        if ends and start < ends[-1]:
            ends[-1] = max(ends[-1], end)
            if _STRENGTH[placeholder] > _STRENGTH[marks[-1]]:
                marks[-1] = placeholder
        else:
            starts.append(start)
            ends.append(end)
            marks.append(placeholder)
    pieces: list[str] = []
    spans: list[Span] = []
    written = 0
    consumed = 0
    for start, end, placeholder in zip(starts, ends, marks, strict=True):
        kept = text[consumed:start]
        new = text[start:end] if placeholder is None else placeholder
        pieces.append(kept)
        pieces.append(new)
        written += len(kept)
        spans.append((written, written + len(new)))
        written += len(new)
        consumed = end
    pieces.append(text[consumed:])
    return "".join(pieces), spans


# -- the rules ------------------------------------------------------------------------------------


def _pem_bodies(text: str, hits: list[_Hit]) -> None:
    begin = text.find("-----BEGIN")
    while begin >= 0:
        header = _PEM_HEADER.match(text, begin)
        if header is None:
            begin = text.find("-----BEGIN", begin + 1)
            continue
        start = header.end()
        footer = _PEM_FOOTER.search(text, start + 1)  # a body holds one character at least
        end = len(text) if footer is None else footer.start()  # a key cut off: to the end
        body_start = _PEM_LEAD.match(text, start, end).end()  # type: ignore[union-attr]
        body_end = end - 1 if text.endswith("\n", body_start, end) else end
        if body_end > body_start and text[body_end - 1] == "\r":
            body_end -= 1
        if body_end > body_start:
            start, end = body_start, body_end
        if end > start:
            hits.append((start, end, FILTERED))
        if footer is None:
            return
        begin = text.find("-----BEGIN", footer.end())


def _url_passwords(text: str, hits: list[_Hit]) -> list[int]:
    """Finds the passwords of URLs; returns where the user info of each URL that has one ends
    (its @)."""
    users = []
    slashes = text.find("//")
    while slashes >= 0:
        host = slashes + 2
        authority_end = _URL_AUTHORITY.match(text, host).end()  # type: ignore[union-attr]
        at = text.rfind("@", host, authority_end)  # user info ends at the last @
        if at > host:
            users.append(at)
            colon = text.find(":", host, at)
            if 0 <= colon < at - 1 and text[colon + 1 : at] != FILTERED:
                hits.append((colon + 1, at, FILTERED))
        slashes = text.find("//", max(authority_end, host))
    return users


def _emails(text: str, hits: list[_Hit], url_users: Iterable[int]) -> None:
    skip = frozenset(url_users)
    at = text.find("@")
    while at >= 0:
        domain = None if at == 0 or at in skip else _EMAIL_DOMAIN.match(text, at + 1)
        if domain is not None:
            local = _EMAIL_LOCAL.search(text, max(0, at - 64), at)
            if local is not None:
                hits.append((local.start(), domain.end(), EMAIL))
                at = text.find("@", domain.end())
                continue
        at = text.find("@", at + 1)


def _ipv4s(text: str, shapes: bytes, hits: list[_Hit], product_versions: bool) -> None:
    position = 0
    while True:
        candidate = _IPV4_SHAPE.search(shapes, position)
        if candidate is None:
            return
        dot = candidate.start() + 1
        start = dot - 1
        while start > 0 and start > dot - 3 and shapes[start - 1] == 0x30:
            start -= 1
        if (start == 0 or shapes[start - 1] not in _WORD_BYTES) and not (
            product_versions
            and start >= 2
            and text[start - 1] == "/"
            and shapes[start - 2] in _WORD_BYTES
        ):
            address = _IPV4.match(text, start)
            if address is not None:
                # Loopback addresses (127.0.0.0/8) identify no one: unlike Relay, errlink keeps
                # them, so that URLs of services on the same host stay readable.
                if not text.startswith("127.", start):
                    hits.append((start, address.end(), IP))
                position = address.end()
                continue
        position = dot


def _ssns(shapes: bytes, hits: list[_Hit]) -> None:
    start = shapes.find(_SSN_SHAPE)
    while start >= 0:
        end = start + len(_SSN_SHAPE)
        if (start == 0 or shapes[start - 1] not in _WORD_BYTES) and (
            end == len(shapes) or shapes[end] not in _WORD_BYTES
        ):
            hits.append((start, end, FILTERED))
            start = shapes.find(_SSN_SHAPE, end)
        else:
            start = shapes.find(_SSN_SHAPE, start + 1)


def _ibans(text: str, shapes: bytes, hits: list[_Hit]) -> None:
    start = shapes.find(b"AA00")
    while start >= 0:
        if start == 0 or shapes[start - 1] not in _WORD_BYTES:
            match = _IBAN.match(text, start)
            if match is not None and text[start : start + 2] in _IBAN_COUNTRIES:
                hits.append((start, match.end(), FILTERED))
                start = shapes.find(b"AA00", match.end())
                continue
        start = shapes.find(b"AA00", start + 1)


def _bearer_tokens(text: str, lowered: str, hits: list[_Hit]) -> None:
    if len(lowered) != len(text):  # lower() changed lengths: positions do not carry over
        hits.extend((m.start(), m.end(), FILTERED) for m in _BEARER.finditer(text))
        return
    found = lowered.find("bearer")
    while found >= 0:
        if found == 0 or not _is_ascii_word(text[found - 1]):
            token = _BEARER_TOKEN.match(text, found + 6)
            end = -1
            while token is not None:  # `Bearer Bearer <token>`: the token is the last word
                end = token.end()
                if lowered[token.start() : end].strip() != "bearer":
                    break
                token = _BEARER_TOKEN.match(text, end)
            if end >= 0:
                hits.append((found, end, FILTERED))
                found = lowered.find("bearer", end)
                continue
        found = lowered.find("bearer", found + 1)


def _basic_credentials(text: str, lowered: str, hits: list[_Hit]) -> None:
    if len(lowered) == len(text):
        starts = []
        found = lowered.find("basic")
        while found >= 0:
            if found == 0 or not _is_ascii_word(text[found - 1]):
                starts.append(found)
            found = lowered.find("basic", found + 5)
    else:
        starts = [m.start() for m in _BASIC.finditer(text)]
    for start in starts:
        credentials = _BASIC_CREDENTIALS.match(text, start + 5)
        if credentials is None:
            continue
        try:
            decoded = base64.b64decode(credentials[1], validate=True)
        except (binascii.Error, ValueError):
            continue
        if b":" in decoded:
            hits.append((credentials.start(1), credentials.end(1), FILTERED))


def _is_ascii_word(char: str) -> bool:
    return char.isascii() and (char.isalnum() or char == "_")
