"""Logging refusals of the collector's guards once per kind, however often they happen.

A flood of refused connections or requests must not become a flood of log lines: the first
refusal of each kind is logged as a warning, later ones are only counted.
"""

from __future__ import annotations

import collections
import logging

logger = logging.getLogger("errlink.collector")


class RefusalLog:
    """Counts refusals by kind; logs the first of each kind (on the collector's event loop)."""

    def __init__(self) -> None:
        self.counts: collections.Counter[str] = collections.Counter()

    def refused(self, kind: str, message: str, *args: object) -> None:
        self.counts[kind] += 1
        if self.counts[kind] == 1:
            logger.warning(message + " (logged once; later ones are only counted)", *args)
