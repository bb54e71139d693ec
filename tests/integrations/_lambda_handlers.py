"""Handlers for the Lambda runner subprocess; the DSN comes from ERRLINK_DSN, as in a function's
configuration, so `@report_errors` takes no arguments."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import errlink
from errlink.integrations.awslambda import report_errors


@report_errors
def failing(event: dict[str, Any], context: Any) -> dict[str, Any]:
    order_id = event["order_id"]
    raise ValueError(f"order {order_id} could not be charged")


@report_errors
async def async_failing(event: dict[str, Any], context: Any) -> dict[str, Any]:
    await asyncio.sleep(0)
    errlink.set_tag("stage", "async")
    raise LookupError(f"no stock for order {event['order_id']}")


@report_errors
def logs_an_error(event: dict[str, Any], context: Any) -> dict[str, Any]:
    logging.getLogger("shop").error("payment provider slow for order %s", event["order_id"])
    return {"statusCode": 200, "body": "ok"}
