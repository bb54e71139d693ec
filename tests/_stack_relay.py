"""Run produced exception values through Sentry's own normalizer and insist it found no fault."""

from __future__ import annotations

from typing import Any

from sentry_relay.processing import StoreNormalizer

_normalizer = StoreNormalizer()


def _meta_errors(node: Any, path: str = "") -> list[str]:
    if not isinstance(node, dict):
        return []
    found = (
        [f"{path}: {node['']['err']}"]
        if isinstance(node.get(""), dict) and node[""].get("err")
        else []
    )
    for key, child in node.items():
        if key != "":
            found += _meta_errors(child, f"{path}.{key}")
    return found


def assert_relay_accepts(
    values: list[dict[str, Any]], values_meta: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Normalize an event holding `values` (and our `_meta` for them); return Relay's output."""
    event: dict[str, Any] = {
        "event_id": "a" * 32,
        "platform": "python",
        "exception": {"values": values},
    }
    if values_meta:
        event["_meta"] = {"exception": {"values": values_meta}}
    out: dict[str, Any] = _normalizer.normalize_event(event)
    assert "errors" not in out, out["errors"]
    assert _meta_errors(out.get("_meta")) == []
    assert len(out["exception"]["values"]) == len(values)
    return out
