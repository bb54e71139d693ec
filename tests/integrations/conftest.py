"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from _async_web_helpers import EVENT_TIMEOUT


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client for the async web servers under test."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=EVENT_TIMEOUT)) as s:
        yield s
