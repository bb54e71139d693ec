"""What the two client faces (AsyncClient and the sync Client) show alike."""

from __future__ import annotations

from ._capture.core import ClientCore
from ._delivery.stats import StatsSnapshot
from ._options import Options


class ClientFace:
    _core: ClientCore
    _closed: bool

    @property
    def options(self) -> Options:
        return self._core.options

    @property
    def enabled(self) -> bool:
        return self._core.enabled and not self._closed

    @property
    def stats(self) -> StatsSnapshot:
        """Counters: captured, queued, sent, pending and dropped by reason."""
        return self._core.snapshot()

    @property
    def core(self) -> ClientCore:
        """The shared capture core (what integrations and scope binding use)."""
        return self._core
