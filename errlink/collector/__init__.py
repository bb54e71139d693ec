"""errlink's own Sentry-compatible ingestion server and error inbox, for development and tests.

`Collector` runs on the caller's event loop; `CollectorThread` runs one in a background thread
for synchronous code. `errlink serve` runs one from the command line. Both serve a web UI of
the stored events grouped into issues, and can misbehave on purpose (`Faults`) so a client's
retries and rate limiting can be watched. For production, send to Sentry, GlitchTip or Relay.
"""

from ._collector import DEFAULT_HOST, DEFAULT_PROJECT_ID, Collector
from ._faults import Faults
from ._state import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_DECOMPRESSED_BYTES
from ._store import StoreError
from ._thread import CollectorThread

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_DECOMPRESSED_BYTES",
    "DEFAULT_PROJECT_ID",
    "Collector",
    "CollectorThread",
    "Faults",
    "StoreError",
]
