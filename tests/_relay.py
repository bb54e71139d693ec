"""Sentry's own event normalizer (the `sentry-relay` package), used to prove events are valid."""

from __future__ import annotations

import json
from typing import Any

from sentry_relay.processing import StoreNormalizer

from errlink._wire.codec import dumps

_normalizer = StoreNormalizer()


def meta_errors(node: Any, path: str = "") -> list[str]:
    if not isinstance(node, dict):
        return []
    here = node.get("")
    found = [f"{path}: {here['err']}"] if isinstance(here, dict) and here.get("err") else []
    for key, child in node.items():
        if key != "":
            found += meta_errors(child, f"{path}.{key}")
    return found


def normalize_as_relay(event: dict[str, Any]) -> dict[str, Any]:
    """Encode the event as the transport does, then let Relay normalize it; fail on any error."""
    wire = json.loads(dumps(event))
    result: dict[str, Any] = _normalizer.normalize_event(wire)
    assert "errors" not in result, result["errors"]
    assert meta_errors(result.get("_meta")) == []
    return result
