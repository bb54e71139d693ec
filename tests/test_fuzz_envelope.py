"""Fuzzing the envelope format: parse anything without crashing, round-trip what we write.

`parse_envelope` is what the collector runs on untrusted bytes: whatever it is given, it
returns an Envelope or raises EnvelopeError (which the collector answers with 400).

Run as a script for coverage-guided fuzzing with atheris (not a test dependency); an empty
corpus directory is seeded with valid envelopes first:
    python tests/test_fuzz_envelope.py CORPUS_DIR [-max_total_time=60]
"""

from __future__ import annotations

import sys
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from errlink._wire.codec import dumps
from errlink._wire.envelope import Envelope, EnvelopeError, Item, parse_envelope

_json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=20)
_json = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
_headers = st.dictionaries(st.text(min_size=1, max_size=10), _json, max_size=4)


def parse_or_refuse(data: bytes) -> Envelope | None:
    try:
        return parse_envelope(data)
    except EnvelopeError:
        return None


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_never_crash_the_parser(data: bytes) -> None:
    parse_or_refuse(data)


@st.composite
def envelopes(draw: st.DrawFn) -> Envelope:
    envelope = Envelope(draw(_headers))
    for _ in range(draw(st.integers(0, 4))):
        item_type = draw(st.sampled_from(["event", "client_report", "attachment", "x y"]))
        payload = draw(st.binary(max_size=60) | _json.map(dumps))
        headers = draw(_headers.map(lambda h: {k: v for k, v in h.items() if k != "type"}))
        headers.pop("length", None)
        envelope.items.append(Item(item_type, payload, headers))
    return envelope


@settings(max_examples=200, deadline=None)
@given(envelopes())
def test_what_errlink_writes_parses_back_the_same(envelope: Envelope) -> None:
    parsed = parse_envelope(envelope.to_bytes())
    assert parsed.headers == envelope.headers
    assert [(i.type, i.payload, i.headers) for i in parsed.items] == [
        (i.type, i.payload, i.headers) for i in envelope.items
    ]


@settings(max_examples=250, deadline=None)
@given(envelopes(), st.data())
def test_damaged_envelopes_are_parsed_or_refused(envelope: Envelope, data: Any) -> None:
    body = bytearray(envelope.to_bytes())
    for _ in range(data.draw(st.integers(1, 6))):
        if not body:
            break
        position = data.draw(st.integers(0, len(body) - 1))
        action = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip":
            body[position] = data.draw(st.integers(0, 255))
        elif action == "cut":
            del body[position:]
        else:
            body[position:position] = data.draw(st.sampled_from([b"\n", b"{", b"\x00", b"9" * 20]))
    parse_or_refuse(bytes(body))


def test_absurd_nesting_is_refused_not_a_crash() -> None:
    deep = b"[" * 100_000
    for body in (deep, b"{}\n" + b'{"type":"event","length":1}\n1\n' + b'{"a":' * 50_000):
        assert parse_or_refuse(body) is None


def _seed(directory: str) -> None:
    """Start an empty corpus with valid envelopes: random bytes rarely make valid JSON."""
    import gzip
    from pathlib import Path

    corpus = Path(directory)
    corpus.mkdir(parents=True, exist_ok=True)
    if any(corpus.iterdir()):
        return
    sample = Envelope({"event_id": "a" * 32, "dsn": "http://k@h/1"})
    sample.add_json("event", {"event_id": "a" * 32, "message": "hi", "tags": {"a": "b"}})
    sample.add_json("client_report", {"discarded_events": [{"reason": "x", "quantity": 1}]})
    sample.items.append(Item("attachment", b"raw\nbytes", {"filename": "a.txt"}))
    body = sample.to_bytes()
    for index, seed in enumerate(
        [body, body.replace(b'"length":', b'"len":'), gzip.compress(body)]
    ):
        (corpus / f"seed-{index}").write_bytes(seed)


def _atheris_main() -> None:  # pragma: no cover - a manual fuzzing session
    import atheris

    for argument in sys.argv[1:]:
        if not argument.startswith("-"):
            _seed(argument)

    from errlink.collector._decode import decode_content
    from errlink.collector._errors import Rejected

    def one_input(data: bytes) -> None:
        parse_or_refuse(data)
        status = 200
        try:
            decode_content(data, "gzip", 1 << 20)
        except Rejected as exc:
            status = exc.status
        assert status in (200, 400, 413), status

    atheris.instrument_all()  # coverage feedback from every loaded module, errlink's included
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    _atheris_main()
