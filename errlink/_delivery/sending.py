"""`SENDING`: true inside errlink's sender tasks (and the threads they start).

Integrations that record HTTP calls read it to skip errlink's own; it lives apart from the
sender so that reading it imports nothing of the send path.
"""

from __future__ import annotations

import contextvars

SENDING: contextvars.ContextVar[bool] = contextvars.ContextVar("errlink_sending", default=False)
