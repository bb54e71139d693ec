"""`AsyncClient`: the async-native client, running its pipeline on the application's own loop."""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from ._assembly import assemble_core
from ._capture.binding import ClientBinding, enter_client, leave_client
from ._delivery.pipeline import Pipeline
from ._face import ClientFace
from ._log import INTERNAL, logger
from ._mistakes import warn
from ._options import Hint, build_options
from ._task_errors import TaskErrorWatch

if TYPE_CHECKING:
    from typing_extensions import Self, Unpack

    from ._capture.core import ClientCore
    from ._options import ClientOptions
    from ._wire.dsn import Dsn


class LibraryHooks(Protocol):
    """What `AsyncClient` asks of the integrations layer about the client libraries (HTTP
    clients, databases) it instruments. That layer sits above this one, so it registers itself
    (`use_library_hooks`) when errlink is imported."""

    def chosen_libraries(self, disabled: Iterable[str] | None, where: str) -> tuple[str, ...]:
        """The libraries to enable, all but `disabled` (validated: unknown names raise)."""
        ...

    def enable_libraries(self, core: ClientCore, names: Iterable[str]) -> None:
        """Hook `names` (now if imported, else on import) for `core`'s use."""
        ...


_libraries: LibraryHooks | None = None


def use_library_hooks(hooks: LibraryHooks) -> None:
    global _libraries
    _libraries = hooks


def library_hooks() -> LibraryHooks | None:
    return _libraries


class AsyncClient(ClientFace):
    """An error-reporting client for asyncio applications.

    The pipeline (bounded queue and background sender) starts on the running loop at the first
    capture. Capturing returns as soon as the event is queued; `flush()` waits for delivery.
    A client with no DSN (argument, ``ERRLINK_DSN`` or ``SENTRY_DSN``) is disabled: every call is
    a cheap no-op. Options are validated here and fail with `ValueError`/`TypeError`.

    The HTTP clients and databases the application uses (aiohttp, httpx, requests, SQLAlchemy,
    ...) leave breadcrumbs in this client's events; `disabled_integrations` names those to
    leave alone.
    """

    def __init__(
        self,
        dsn: str | Dsn | None = None,
        *,
        disabled_integrations: Iterable[str] | None = None,
        **options: Unpack[ClientOptions],
    ) -> None:
        libraries = _libraries
        chosen = (
            ()
            if libraries is None
            else libraries.chosen_libraries(disabled_integrations, "errlink.AsyncClient()")
        )
        # Created on a running loop, the client belongs to it: a capture from one of its worker
        # threads (a sync endpoint) starts the pipeline there, not nowhere.
        home = _running_loop()
        self._core = assemble_core(
            build_options(dsn, options), start=functools.partial(_start_pipeline, home)
        )
        if libraries is not None and chosen and self._core.enabled:
            libraries.enable_libraries(self._core, chosen)
        if self._core.pipeline is not None:
            # The send path is imported here rather than in the middle of the loop's first
            # capture (a sync client imports it on its loop thread instead).
            self._core.pipeline.prepare()
        if self._core.options.handle_sigterm:
            warn(
                "errlink: handle_sigterm=True has no effect on an AsyncClient: its application "
                "owns the loop and its shutdown (close the client in the loop's own SIGTERM "
                "handling); errlink.init() clients take this option"
            )
        self._closed = False
        self._wrong_loop_logged = False
        self._token: ClientBinding | None = None
        self._task_watch: TaskErrorWatch | None = None
        self._watch_tasks()

    # -- public surface ---------------------------------------------------------------------------

    async def capture_exception(
        self, exc: BaseException | None = None, **event_fields: Any
    ) -> str | None:
        """Report `exc` (default: the exception being handled). Returns the event id or None."""
        if not self._ready():
            return None
        if exc is None:
            exc = sys.exc_info()[1]
        event_id = self._core.capture_exception(exc, **event_fields)
        await self._pace()
        return event_id

    def capture_exception_now(
        self, exc: BaseException | None = None, **event_fields: Any
    ) -> str | None:
        """`capture_exception` for synchronous code running on the client's loop.

        For a framework's synchronous error hook: same checks and result, no await.
        """
        if not self._ready():
            return None
        if exc is None:
            exc = sys.exc_info()[1]
        return self._core.capture_exception(exc, **event_fields)

    async def capture_message(
        self, message: str, level: str = "info", **event_fields: Any
    ) -> str | None:
        """Report a message at `level` (fatal, error, warning, info, debug, or a logging level
        name or number)."""
        if not self._ready():
            if self._core.pipeline is None:
                # Disabled: nothing is sent, but a misused `level` is still logged (once).
                self._core.capture_message(message, level)
            return None
        event_id = self._core.capture_message(
            message,
            level,
            stack_from=sys._getframe(1) if self.options.attach_stacktrace else None,
            **event_fields,
        )
        await self._pace()
        return event_id

    async def capture_event(self, event: Mapping[str, Any], hint: Hint | None = None) -> str | None:
        """Report a hand-made event dict (completed with ids, scope and defaults)."""
        if not self._ready():
            return None
        event_id = self._core.capture_event(event, hint)
        await self._pace()
        return event_id

    async def capture_feedback(
        self,
        message: str,
        name: str | None = None,
        email: str | None = None,
        associated_event_id: str | None = None,
    ) -> str | None:
        """Send what a person said (about the event `associated_event_id`, when given) as a
        `feedback` item. Returns its id, or None when it was not queued."""
        if not self._ready():
            return None
        return self._core.capture_feedback(message, name, email, associated_event_id)

    async def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything captured before this call is delivered or dropped.

        Returns False when `timeout` (seconds; None waits as long as it takes) ran out first.
        """
        pipeline = self._core.pipeline
        if pipeline is None or pipeline.loop is None:
            return True
        if not self._on_pipeline_loop():
            return False
        return await pipeline.flush(timeout)

    async def aclose(self, timeout: float | None = None) -> bool:
        """Flush within `timeout` (default: `shutdown_timeout`), then stop and release the session.

        Returns True when nothing was left undelivered. Idempotent.
        """
        if self._closed:
            return True
        self._closed = True
        if self._task_watch is not None:
            self._task_watch.uninstall()
        pipeline = self._core.pipeline
        if pipeline is None:
            return True
        if pipeline.loop is None:
            pipeline.start()
        elif not self._on_pipeline_loop():
            return False
        return await pipeline.aclose(self.options.shutdown_timeout if timeout is None else timeout)

    async def __aenter__(self) -> Self:
        # Module-level functions (errlink.capture_exception, ...) reach this client in this context.
        self._token = enter_client(self._core)
        pipeline = self._core.pipeline
        if pipeline is not None and pipeline.loop is None and self.options.outbox is not None:
            pipeline.start()  # drain what an earlier run left in the outbox right away
        self._watch_tasks()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._token is not None:
            leave_client(self._token)  # nothing to undo if exited in another context
            self._token = None
        await self.aclose()

    # -- internals ------------------------------------------------------------------------------

    def _ready(self) -> bool:
        pipeline = self._core.pipeline
        if pipeline is None or self._closed:
            return False
        if pipeline.loop is None:
            pipeline.start()
            self._watch_tasks()
            return True
        if self._on_pipeline_loop():
            return True
        # Counted as captured and dropped, so the books still balance.
        self._core.stats.record_captured()
        self._core.stats.record_drop("internal_sdk_error")
        return False

    async def _pace(self) -> None:
        # Lets the senders run when a capture storm that never suspends fills the queue.
        pipeline = self._core.pipeline
        if pipeline is not None:
            await pipeline.pace()

    def _watch_tasks(self) -> None:
        """Report failures of tasks nobody awaited on the running loop, the pipeline's
        (`_task_errors`)."""
        pipeline = self._core.pipeline
        if (
            self._task_watch is not None
            or self._closed
            or pipeline is None
            or not self.options.capture_task_errors
        ):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # installed at the first use on a loop
        if pipeline.loop is not None and loop is not pipeline.loop:
            return
        self._task_watch = TaskErrorWatch(loop, self._report_task_error, self._core)
        self._task_watch.install()

    def _report_task_error(self, exc: BaseException) -> None:
        self.capture_exception_now(exc, handled=False, mechanism="asyncio")

    def _on_pipeline_loop(self) -> bool:
        pipeline = self._core.pipeline
        assert pipeline is not None
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is pipeline.loop:
            return True
        if not self._wrong_loop_logged:
            self._wrong_loop_logged = True
            logger.error(
                "errlink.AsyncClient is bound to the event loop it first ran on and was used "
                "from another one; create one AsyncClient per event loop. Events from the other "
                "loop are dropped.",
                extra=INTERNAL,
            )
        return False


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _start_pipeline(home: asyncio.AbstractEventLoop | None, pipeline: Pipeline) -> None:
    """On the client's home loop if it has one, else on the loop running in this thread, if
    any; else stay buffered until then."""
    loop = home if home is not None and not home.is_closed() else _running_loop()
    if loop is not None:
        pipeline.start(loop)
