"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
from _async_web_helpers import EVENT_TIMEOUT

import errlink


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client for the async web servers under test."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=EVENT_TIMEOUT)) as s:
        yield s


@pytest.fixture
def no_default_client() -> Iterator[None]:
    """No default client before the test or after it (Flask and Django make one)."""
    errlink.close(timeout=1)
    yield
    errlink.close(timeout=1)
    # What the framework logged outside a request's scope (Django's 404 warning, the server's
    # access log) became breadcrumbs of this thread's context: keep them from later tests.
    errlink.clear_breadcrumbs()


@pytest.fixture
def sink(collector_thread: Any) -> Iterator[Any]:
    """The collector; the default client is closed before it stops, so no connection dangles."""
    yield collector_thread
    errlink.close(timeout=5)
