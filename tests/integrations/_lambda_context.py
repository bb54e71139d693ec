"""A context object like the one the AWS Lambda Python runtime passes to a handler.

Same attribute names and types as the runtime's `LambdaContext` (awslambdaric): strings from the
function's environment (the memory size too), a request id, the invoked ARN, and
`get_remaining_time_in_millis()` counting down to a wall-clock deadline in epoch milliseconds.
"""

from __future__ import annotations

import time
import uuid


class LambdaContext:
    def __init__(
        self,
        *,
        timeout_ms: int = 30_000,
        function_name: str = "checkout",
        function_version: str = "$LATEST",
        memory_limit_in_mb: str = "256",
        region: str = "eu-west-1",
    ) -> None:
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = f"2026/01/01/[{function_version}]{uuid.uuid4().hex}"
        self.function_name = function_name
        self.memory_limit_in_mb = memory_limit_in_mb
        self.function_version = function_version
        self.invoked_function_arn = f"arn:aws:lambda:{region}:123456789012:function:{function_name}"
        self.client_context = None
        self.identity = None
        self._epoch_deadline_time_in_ms = int(time.time() * 1000) + timeout_ms

    def get_remaining_time_in_millis(self) -> int:
        delta_ms = self._epoch_deadline_time_in_ms - int(time.time() * 1000)
        return delta_ms if delta_ms > 0 else 0
