"""Real ASGI servers on 127.0.0.1 for the ASGI integration tests: uvicorn and hypercorn, on the
test's own loop, with the lifespan on, so startup and shutdown run as in production."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from _async_web_helpers import EVENT_TIMEOUT, free_socket


@asynccontextmanager
async def uvicorn_serving(app: Any, **config: Any) -> AsyncIterator[str]:
    """uvicorn serving `app`; yields its base URL. Leaving shuts it down (lifespan included)."""
    import uvicorn

    sock = free_socket()
    port = sock.getsockname()[1]
    # No proxy headers: uvicorn would otherwise take the client's address from X-Forwarded-For
    # (the tests send one) for connections from 127.0.0.1.
    config = {
        "lifespan": "on",
        "log_level": "warning",
        "access_log": False,
        "proxy_headers": False,
        **config,
    }
    settings = uvicorn.Config(app, **config)
    server = uvicorn.Server(settings)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("uvicorn stopped before it started")
            await asyncio.sleep(0.005)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, EVENT_TIMEOUT)
        sock.close()


@asynccontextmanager
async def hypercorn_serving(app: Any) -> AsyncIterator[str]:
    """hypercorn serving `app`; yields its base URL. Leaving shuts it down (lifespan included)."""
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()  # hypercorn binds by address; the port was free a moment ago
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.errorlog = None
    stop = asyncio.Event()
    task = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
    try:
        await _wait_for_port(port, task)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop.set()
        await asyncio.wait_for(task, EVENT_TIMEOUT)


async def _wait_for_port(port: int, task: asyncio.Task[Any]) -> None:
    deadline = asyncio.get_running_loop().time() + EVENT_TIMEOUT
    while True:
        if task.done():
            task.result()
            raise RuntimeError("the server stopped before it started")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.01)
            continue
        writer.close()
        await writer.wait_closed()
        return
