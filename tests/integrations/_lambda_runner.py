"""Invoke a handler of _lambda_handlers.py once, the way the Lambda runtime does, then wait.

Usage: python _lambda_runner.py HANDLER_NAME EVENT_JSON. Prints one line, ``returned <json>``
or ``raised <type>: <message>``, right after the handler returns, then blocks like the runtime
waiting for its next invocation (the test freezes the process with SIGSTOP at that point).
"""

from __future__ import annotations

import json
import sys
import time

import _lambda_handlers
from _lambda_context import LambdaContext


def main() -> None:
    handler = getattr(_lambda_handlers, sys.argv[1])
    event = json.loads(sys.argv[2])
    try:
        result = handler(event, LambdaContext(timeout_ms=30_000))
    except Exception as exc:
        line = f"raised {type(exc).__name__}: {exc}"
    else:
        line = f"returned {json.dumps(result)}"
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
    time.sleep(600)


if __name__ == "__main__":
    main()
