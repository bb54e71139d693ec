"""A Sanic app run by `python <this file>` with two worker processes, for the Sanic tests.

Configured from the environment: ERRLINK_TEST_DSN (the test's collector) and
ERRLINK_TEST_PORT. Each worker reports errors with its process id as a tag.
"""

from __future__ import annotations

import os
from typing import Any

from sanic import Request, Sanic, response

import errlink
from errlink.integrations.sanic import Errlink

app: Sanic[Any, Any] = Sanic("errlink_workers_test", configure_logging=False)
app.config.ACCESS_LOG = False
Errlink(app, dsn=os.environ["ERRLINK_TEST_DSN"])


@app.get("/boom")
async def boom(request: Request) -> response.HTTPResponse:
    errlink.set_tag("pid", os.getpid())
    raise RuntimeError("from a worker")


if __name__ == "__main__":
    app.run(
        host="127.0.0.1",
        port=int(os.environ["ERRLINK_TEST_PORT"]),
        workers=2,
        access_log=False,
        motd=False,
        single_process=False,
    )
