"""What becomes of each ingestion request, told in the stats: the status it was answered, the
kind of refusal it met, and the envelope items that were counted rather than stored."""

from __future__ import annotations

import collections
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Iterator

from aiohttp import web

from ._decode import ClientDisconnected
from ._errors import Rejected
from ._refusals import client_name
from ._state import STATE, CollectorState

logger = logging.getLogger("errlink.collector")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# Item types are client-chosen strings: keep the number of counters bounded.
_MAX_IGNORED_TYPES = 50
_MAX_ITEM_TYPE_LENGTH = 64
OTHER_ITEM_TYPES = "(other types)"


def counted(handler: Handler) -> Handler:
    """Record the status of every answer, refusals and crashes included.

    A client that went away mid-body gets no answer, so none is counted: it is a refusal of
    kind "disconnected" (logged once, without a traceback), not a crash.
    """

    @functools.wraps(handler)
    async def counting_handler(request: web.Request) -> web.StreamResponse:
        state = request.app[STATE]
        statuses = state.request_statuses
        try:
            response = await handler(request)
        except ClientDisconnected:
            state.refusals.disconnected(client_name(request.headers, request.query))
            # Never sent: aiohttp drops an answer to a closed connection quietly.
            return web.Response(status=400)
        except Rejected as exc:
            statuses[exc.status] += 1
            raise
        except web.HTTPException as exc:
            statuses[exc.status] += 1
            raise
        except Exception:
            statuses[500] += 1
            raise
        statuses[response.status] += 1
        return response

    return counting_handler


@contextlib.contextmanager
def refusals_noted(request: web.Request, state: CollectorState) -> Iterator[None]:
    """Note each refusal raised within, by kind (faults injected on purpose are not refusals)."""
    try:
        yield
    except Rejected as exc:
        client = client_name(request.headers, request.query)
        state.refusals.refused_request(exc.status, exc.detail, client)
        raise


def count_ignored(state: CollectorState, ignored: collections.Counter[str]) -> None:
    counts = state.ignored_items
    for item_type, count in ignored.items():
        name = item_type
        if len(name) > _MAX_ITEM_TYPE_LENGTH or (
            name not in counts and len(counts) >= _MAX_IGNORED_TYPES
        ):
            name = OTHER_ITEM_TYPES
        if name not in counts:
            logger.info(
                "not storing %r items: they are counted (ignored_items on /api/0/stats/)", name
            )
        counts[name] += count
