"""An issue's tags at a glance: the most frequent values of its release, environment, server
name and of each tag, counted over its newest stored events (at most `MAX_EVENTS`, so a page
costs the same for an issue of a million events)."""

from __future__ import annotations

import collections
from collections.abc import Sequence
from dataclasses import dataclass

from ._html import Markup, html, join, value_text
from ._queries import TagSource
from ._templates import plural

MAX_EVENTS = 1000
TOP_VALUES = 5
MAX_KEYS = 50
# Fields every event has a place for, shown first, before the tags in the order of how often
# they are set. A tag of the same name is left out: the field says it.
_FIELDS = ("release", "environment", "server_name")


@dataclass(frozen=True)
class TagCount:
    key: str
    events: int  # the events that set it
    top: list[tuple[str, int]]  # its most frequent values, most frequent first
    distinct: int


@dataclass(frozen=True)
class Breakdown:
    scanned: int
    capped: bool  # more events are stored than were counted
    keys: list[TagCount]
    keys_left_out: int


def count_tags(sources: Sequence[TagSource], *, capped: bool) -> Breakdown:
    counters: dict[str, collections.Counter[str]] = {}
    for source in sources:
        for key, value in _event_tags(source).items():
            counters.setdefault(key, collections.Counter())[value] += 1
    fields = [key for key in _FIELDS if key in counters]
    tags = sorted(
        (key for key in counters if key not in _FIELDS),
        key=lambda key: (-counters[key].total(), key),
    )
    keys = [*fields, *tags]
    counted = [
        TagCount(
            key=key,
            events=counters[key].total(),
            top=counters[key].most_common(TOP_VALUES),
            distinct=len(counters[key]),
        )
        for key in keys[:MAX_KEYS]
    ]
    return Breakdown(len(sources), capped, counted, max(0, len(keys) - MAX_KEYS))


def _event_tags(source: TagSource) -> dict[str, str]:
    found: dict[str, str] = {}
    tags = source.tags
    if isinstance(tags, dict):
        pairs: list[tuple[object, object]] = list(tags.items())
    elif isinstance(tags, list):
        pairs = [(t[0], t[1]) for t in tags if isinstance(t, list) and len(t) == 2]
    else:
        pairs = []
    for key, value in pairs:
        if value is not None:
            found[value_text(key)] = value_text(value)
    for key, value in (
        ("release", source.release),
        ("environment", source.environment),
        ("server_name", source.server_name),
    ):
        found.pop(key, None)
        if value not in (None, ""):
            found[key] = value_text(value)
    return found


def render(breakdown: Breakdown, received: int) -> Markup:
    """The breakdown as cards, one per key; `received` is the issue's event count."""
    if breakdown.capped:
        scope = (
            f"Counted over the newest {breakdown.scanned:,} stored events of this issue "
            f"(of {received:,} received)."
        )
    else:
        scope = f"Counted over the issue's {plural(breakdown.scanned, 'stored event')}"
        pruned = received - breakdown.scanned
        scope += f" ({pruned:,} older ones were pruned)." if pruned > 0 else "."
    cards = [_card(tag, breakdown.scanned) for tag in breakdown.keys]
    left_out = Markup("")
    if breakdown.keys_left_out:
        left_out = html(
            '<p class="muted small">{n} more tags are not shown.</p>',
            n=f"{breakdown.keys_left_out:,}",
        )
    return html(
        '<h2 id="tag-breakdown">Tags</h2><p class="muted small">{scope}</p>'
        '<div class="breakdown">{cards}</div>{left_out}',
        scope=scope,
        cards=join(cards) if cards else html('<p class="muted">No tags.</p>'),
        left_out=left_out,
    )


def _card(tag: TagCount, scanned: int) -> Markup:
    rows = [
        html(
            '<tr><td class="tag-value">{value}</td><td class="num">{count}</td>'
            '<td class="num">{share}</td>'
            '<td class="share"><meter min="0" max="{scanned}" value="{count_raw}"></meter></td>'
            "</tr>",
            value=value,
            count=f"{count:,}",
            count_raw=count,
            share=percent(count, scanned),
            scanned=scanned,
        )
        for value, count in tag.top
    ]
    others = tag.events - sum(count for _, count in tag.top)
    notes = []
    if others:
        notes.append(
            f"{plural(tag.distinct - len(tag.top), 'other value')}: "
            f"{plural(others, 'event')} ({percent(others, scanned)})"
        )
    if tag.events < scanned:
        unset = scanned - tag.events
        notes.append(f"not set: {plural(unset, 'event')} ({percent(unset, scanned)})")
    return html(
        '<section class="tag-card"><h3>{key}</h3><table class="tag-values">{rows}</table>'
        "{notes}</section>",
        key=tag.key,
        rows=join(rows),
        notes=join(html('<p class="muted small">{n}</p>', n=note) for note in notes),
    )


def percent(part: int, whole: int) -> str:
    if whole <= 0 or part <= 0:
        return "0%"
    share = 100 * part / whole
    if share < 1:
        return "<1%"
    # Never round a part up to the whole.
    return f"{min(round(share), 99) if part < whole else 100}%"
