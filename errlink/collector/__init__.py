"""errlink's own Sentry-compatible ingestion server, for development and tests.

`Collector` runs on the caller's event loop; `CollectorThread` runs one in a background thread
for synchronous code. `errlink serve` runs one from the command line.
"""

from ._collector import DEFAULT_HOST, DEFAULT_PROJECT_ID, DEFAULT_PUBLIC_KEY, Collector
from ._state import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_DECOMPRESSED_BYTES
from ._store import StoreError
from ._thread import CollectorThread

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_DECOMPRESSED_BYTES",
    "DEFAULT_PROJECT_ID",
    "DEFAULT_PUBLIC_KEY",
    "Collector",
    "CollectorThread",
    "StoreError",
]
