"""A cheap estimate of the bytes an item holds while it waits in the hand-over queue.

Capture hands over plain data (dicts, lists, texts, numbers) already bounded by the serializer;
what it costs in memory is dominated by its texts. `marshal` measures such data in C, about a
tenth of the time capture took to build it (a walk in Python costs most of a capture), and
counts a text shared by several nodes once, as memory does. Data marshal refuses (objects a
`before_send` hook put there, nesting past its depth limit) is measured by a bounded walk.
It is not the encoded size: it only has to keep the queue's byte bound (`queue_max_bytes`)
honest.
"""

from __future__ import annotations

import marshal
from typing import Any

# While fewer items than this are held (a server that keeps up), nothing is measured: capture
# pays for the estimate only once a backlog builds, and the byte bound may be passed by at most
# these few items.
UNMEASURED_HEAD = 4
# Roughly what one node adds to its JSON (separators, quotes, a number's digits).
_NODE_BYTES = 4
# Data nested without end (a cycle built by a hook) is cut off here and counted as huge.
MAX_NODES = 1_000_000
UNBOUNDED = 1 << 62


def estimate_size(value: Any) -> int:
    """Approximate size of `value` in bytes; never raises."""
    if type(value) is bytes:
        return len(value)
    try:
        return len(marshal.dumps(value))
    except Exception:
        pass
    try:
        return _walk(value)
    except Exception:
        return UNBOUNDED


def _walk(value: Any) -> int:
    total = 0
    nodes = 0
    stack = [value]
    pop = stack.pop
    extend = stack.extend
    while stack:
        item = pop()
        kind = type(item)
        if kind is str:
            total += len(item) + _NODE_BYTES
        elif kind is dict:
            nodes += len(item)
            total += _NODE_BYTES
            for key in item:
                total += len(key) + _NODE_BYTES if type(key) is str else 2 * _NODE_BYTES
            extend(item.values())
        elif kind is list or kind is tuple:
            nodes += len(item)
            total += _NODE_BYTES
            extend(item)
        elif kind is bytes or kind is bytearray:
            total += len(item)
        else:
            total += 2 * _NODE_BYTES  # numbers, None, bools; anything else is cut when encoded
        if nodes > MAX_NODES:
            return UNBOUNDED
    return total
