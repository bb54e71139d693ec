"""One adapter per SDK, so every scenario drives errlink, sentry-sdk and raven the same way.

Each adapter is created in a fresh benchmark process, pointed at the sink, and offers:
`capture(exc)` (the caller-side call), `flush(timeout)`, `close()`, `dropped()` (what the SDK
itself says it dropped, where it says). Peers are imported only when their adapter is used; a
peer that is not installed is reported as missing rather than failing the run.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

SDK_NAMES = ("errlink", "errlink-async", "sentry-sdk", "raven")


class Adapter:
    name = ""

    def capture(self, exc: BaseException) -> None:
        raise NotImplementedError

    async def capture_async(self, exc: BaseException) -> None:
        self.capture(exc)

    def flush(self, timeout: float) -> bool:
        raise NotImplementedError

    async def flush_async(self, timeout: float) -> bool:
        return self.flush(timeout)

    def close(self) -> None:
        pass

    def dropped(self) -> dict[str, int]:
        return {}


def init_sentry_sdk_without_transport(**options: Any) -> Any:
    """`sentry_sdk`, initialised with a transport that drops every envelope (None when it is
    not installed): what its capture costs, without its delivery."""
    try:
        import sentry_sdk
        from sentry_sdk.transport import Transport
    except ImportError:
        return None

    class Sink(Transport):  # type: ignore[misc]
        def capture_envelope(self, envelope: Any) -> None:
            pass

    sentry_sdk.init(
        dsn="http://k@127.0.0.1:1/1", transport=Sink, default_integrations=False, **options
    )
    return sentry_sdk


def _errlink_options(
    include_locals: bool, queue_size: int | None, queue_max_bytes: int | None
) -> dict[str, Any]:
    options: dict[str, Any] = {"include_locals": include_locals, "shutdown_timeout": 2.0}
    if queue_size is not None:
        options["queue_size"] = queue_size
    if queue_max_bytes is not None:
        options["queue_max_bytes"] = queue_max_bytes
    return options


class ErrlinkSync(Adapter):
    name = "errlink"

    def __init__(
        self,
        dsn: str,
        *,
        include_locals: bool,
        queue_size: int | None,
        queue_max_bytes: int | None = None,
    ) -> None:
        import errlink

        options = _errlink_options(include_locals, queue_size, queue_max_bytes)
        self.client = errlink.init(
            dsn, logging_event_level=None, logging_breadcrumb_level=None, **options
        )

    def capture(self, exc: BaseException) -> None:
        self.client.capture_exception(exc)

    def flush(self, timeout: float) -> bool:
        return self.client.flush(timeout)

    def close(self) -> None:
        self.client.close()

    def dropped(self) -> dict[str, int]:
        return dict(self.client.stats.dropped)


class ErrlinkAsync(Adapter):
    """`AsyncClient`, created lazily on the loop the scenario runs."""

    name = "errlink-async"

    def __init__(
        self,
        dsn: str,
        *,
        include_locals: bool,
        queue_size: int | None,
        queue_max_bytes: int | None = None,
    ) -> None:
        from errlink import AsyncClient

        options = _errlink_options(include_locals, queue_size, queue_max_bytes)
        self.client = AsyncClient(dsn, **options)

    def capture(self, exc: BaseException) -> None:
        asyncio.run(self.capture_async(exc))

    async def capture_async(self, exc: BaseException) -> None:
        await self.client.capture_exception(exc)

    def flush(self, timeout: float) -> bool:
        raise RuntimeError("errlink-async flushes on its loop: use flush_async")

    async def flush_async(self, timeout: float) -> bool:
        return await self.client.flush(timeout)

    async def close_async(self) -> None:
        await self.client.aclose(2.0)

    def dropped(self) -> dict[str, int]:
        return dict(self.client.stats.dropped)


class SentrySdk(Adapter):
    name = "sentry-sdk"

    def __init__(self, dsn: str, *, include_locals: bool, queue_size: int | None) -> None:
        import sentry_sdk

        options: dict[str, Any] = {
            "include_local_variables": include_locals,
            "default_integrations": False,
            "shutdown_timeout": 2,
        }
        if queue_size is not None:
            options["transport_queue_size"] = queue_size
        sentry_sdk.init(dsn, **options)
        self.sdk = sentry_sdk

    def capture(self, exc: BaseException) -> None:
        self.sdk.capture_exception(exc)

    def flush(self, timeout: float) -> bool:
        self.sdk.flush(timeout)
        return True

    def close(self) -> None:
        self.sdk.get_client().close(timeout=2)


class Raven(Adapter):
    name = "raven"

    def __init__(self, dsn: str, *, include_locals: bool, queue_size: int | None) -> None:
        import raven

        logging.getLogger("raven").setLevel(logging.CRITICAL)
        self.client = raven.Client(
            dsn, capture_locals=include_locals, install_sys_hook=False, install_logging_hook=False
        )

    def capture(self, exc: BaseException) -> None:
        self.client.captureException(exc_info=(type(exc), exc, exc.__traceback__))

    def flush(self, timeout: float) -> bool:
        # raven's threaded transport has no flush: wait on its worker queue, bounded by timeout.
        import threading

        worker = self.client.remote.get_transport().get_worker()
        done = threading.Event()
        threading.Thread(target=lambda: (worker._queue.join(), done.set()), daemon=True).start()
        return done.wait(timeout)


class RawPost(Adapter):
    """No SDK: one plain aiohttp POST of a ready-made gzipped envelope per capture.

    A floor for the event-loop lag scenario: the lag that sending one request per error costs
    an asyncio application with no event building, queue or retries at all.
    """

    name = "raw-post"

    def __init__(self, dsn: str, *, include_locals: bool, queue_size: int | None) -> None:
        import gzip

        netloc = dsn.split("@", 1)[1].rsplit("/", 1)[0]
        self.url = f"http://{netloc}/api/1/envelope/"
        envelope = b'{}\n{"type":"event"}\n' + b'{"message":"raw"}' * 200 + b"\n"
        self.body = gzip.compress(envelope, 1)
        self.session: Any = None
        self.tasks: set[asyncio.Task[None]] = set()

    async def capture_async(self, exc: BaseException) -> None:
        import aiohttp

        if self.session is None:
            self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=4))
        task = asyncio.create_task(self._post())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _post(self) -> None:
        headers = {"Content-Encoding": "gzip"}
        async with self.session.post(self.url, data=self.body, headers=headers) as response:
            await response.read()

    def flush(self, timeout: float) -> bool:
        raise RuntimeError("raw-post flushes on its loop: use flush_async")

    async def flush_async(self, timeout: float) -> bool:
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=timeout)
        if self.session is not None:
            await self.session.close()
            self.session = None
        return not self.tasks


def make(
    name: str,
    dsn: str,
    *,
    include_locals: bool = True,
    queue_size: int | None = None,
    queue_max_bytes: int | None = None,
) -> Adapter:
    classes: dict[str, type[Adapter]] = {
        "errlink": ErrlinkSync,
        "errlink-async": ErrlinkAsync,
        "sentry-sdk": SentrySdk,
        "raven": Raven,
        "raw-post": RawPost,
    }
    options: dict[str, Any] = {"include_locals": include_locals, "queue_size": queue_size}
    if queue_max_bytes is not None:  # errlink's alone
        options["queue_max_bytes"] = queue_max_bytes
    return classes[name](dsn, **options)


def version_of(name: str) -> str:
    import importlib.metadata

    distribution = {"errlink-async": "errlink"}.get(name, name)
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"
