"""errlink's own logger, and the mark every record it writes carries.

errlink never reports on itself: a logging integration skips records whose
``errlink_internal`` attribute is true, which ``extra=INTERNAL`` sets.
"""

from __future__ import annotations

import logging

logger = logging.getLogger("errlink")
INTERNAL = {"errlink_internal": True}

_debug_handler: logging.Handler | None = None


def enable_debug_logging() -> None:
    """`debug=True`: show errlink's own log (what it sends, drops and retries) on stderr."""
    global _debug_handler
    if _debug_handler is None:
        _debug_handler = logging.StreamHandler()
        _debug_handler.setFormatter(logging.Formatter("[errlink] %(levelname)s %(message)s"))
        logger.addHandler(_debug_handler)
    logger.setLevel(logging.DEBUG)
