"""AWS Lambda: report a handler's exceptions and deliver them before the runtime freezes.

`report_errors` wraps a handler (a plain function or an ``async def``). Each invocation runs in
a fresh scope carrying ``contexts.aws_lambda`` and the incoming event (API Gateway and function
URL events as a ``request``). An exception is captured and re-raised unchanged. Before the
invocation returns, the client is flushed, for no longer than the invocation has left: once
the handler returns, the runtime may freeze the process, and an event still queued would only
leave with the next invocation, if there is one. Optionally a warning is reported when an
invocation is about to time out, with the handler's stack at that moment.

The parts: `_decorator` (``report_errors``: the client at cold start, the sync and async
wrappers), `_invocation` (one invocation's scope, report and final flush), `_context` (what the
scope carries, from the runtime's context object and the incoming event), `_timeout` (the
deadline and the timeout warning) and `_loop` (the event loop ``async def`` handlers run on).
"""

from ._decorator import Handler, report_errors
from ._invocation import INTEGRATION

__all__ = ["INTEGRATION", "Handler", "report_errors"]
