"""Fuzzing event assembly and encoding: whatever an application attaches, the event is valid.

Arbitrary values (non-string keys, NaN, huge integers, bytes, sets, lone surrogates, deep
nesting, objects whose repr raises) go everywhere an application can put data. Building never
raises; the encoded event is JSON within `max_event_bytes` that Sentry's own normalizer
(Relay) takes, and it survives the envelope round trip the collector does.
"""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from errlink._capture.event import EventBuilder
from errlink._capture.scope import Scope
from errlink._delivery.kinds import encode_event
from errlink._options import build_options
from errlink._wire.envelope import Envelope, parse_envelope
from tests._relay import _normalizer

ARMED = [False]  # hostile objects misbehave only while armed, so hypothesis can still show them


class Hostile:
    def __repr__(self) -> str:
        if ARMED[0]:
            raise RuntimeError("repr refused")
        return "Hostile()"

    def __str__(self) -> str:
        if ARMED[0]:
            raise RuntimeError("str refused")
        return "Hostile()"


_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
    | st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), max_size=3)
    | st.binary(max_size=40)
    | st.just(Hostile())
    | st.just(math.pi)
)
_tag_text = st.text(
    alphabet=st.characters(blacklist_categories=["Cc", "Cs", "Zl", "Zp"]), min_size=1, max_size=20
).filter(str.strip)
_keys = st.text(max_size=12) | st.integers(-5, 5) | st.none() | st.tuples(st.integers(0, 3))
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=6)
        | st.dictionaries(_keys, inner, max_size=6)
        | st.frozensets(st.integers(0, 50), max_size=5)
        | st.tuples(inner, inner)
    ),
    max_leaves=40,
)


@st.composite
def applications_data(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "extra": draw(st.dictionaries(st.text(max_size=10), _values, max_size=5)),
        "contexts": {"app": draw(st.dictionaries(st.text(max_size=10), _values, max_size=5))},
        # Tag keys and values Relay accepts (non-empty, one line): errlink passes tags through.
        "tags": draw(st.dictionaries(_tag_text, _scalars | _tag_text, max_size=5)),
        "user": draw(st.dictionaries(st.sampled_from(["id", "email", "name", "x"]), _values)),
        "request": draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "url": _scalars,
                    "headers": _values,
                    "cookies": _values,
                    "data": _values,
                    "query_string": _values,
                    "env": _values,
                },
            )
        ),
        "fingerprint": draw(st.lists(st.text(max_size=10), max_size=3)),
    }


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    fields=applications_data(),
    message=st.text(max_size=300),
    max_event_bytes=st.integers(min_value=16_000, max_value=60_000),
    pii=st.booleans(),
)
def test_any_application_data_becomes_a_valid_bounded_event(
    fields: dict[str, Any], message: str, max_event_bytes: int, pii: bool
) -> None:
    options = build_options(
        None, {"max_event_bytes": max_event_bytes, "send_default_pii": pii, "max_value_length": 200}
    )
    builder = EventBuilder(options, ())
    scope = Scope()
    ARMED[0] = True
    try:
        events = [builder.message_event(message, "error", scope, fields)]
        try:
            raise ValueError(message)
        except ValueError as exc:
            events.append(builder.exception_event(exc, scope, fields))
        events.append(builder.finish_custom_event({"message": message, **fields}, scope))
        payloads = [encode_event(event, max_event_bytes) for event in events]
    finally:
        ARMED[0] = False
    for event, payload in zip(events, payloads, strict=True):
        assert len(payload) <= max_event_bytes
        decoded = json.loads(payload)
        assert decoded["event_id"] == event["event_id"]
        # Sentry's own normalizer takes it (values of the wrong type for a protocol field, such
        # as a list as `user.id`, are discarded there with a note, as Sentry would).
        normalized = _normalizer.normalize_event(decoded)
        assert normalized["event_id"] == event["event_id"]
        envelope = Envelope({"event_id": event["event_id"]})
        envelope.add_json("event", decoded)
        assert parse_envelope(envelope.to_bytes()).items[0].json() == decoded
