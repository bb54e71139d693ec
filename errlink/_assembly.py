"""How a client face (AsyncClient, sync Client) puts its capture core and pipeline together."""

from __future__ import annotations

from ._capture.core import ClientCore, StartPipeline
from ._capture.event import EventBuilder
from ._delivery.build import build_pipeline
from ._delivery.stats import Stats
from ._log import enable_debug_logging
from ._options import Options


def assemble_core(options: Options, *, start: StartPipeline) -> ClientCore:
    """A capture core for `options`, feeding a pipeline when the client is enabled.

    `start` gives the pipeline a loop the first time an event is submitted.
    """
    if options.debug:
        enable_debug_logging()
    builder = EventBuilder(options)
    stats = Stats()
    pipeline = (
        build_pipeline(options, stats=stats, sdk_info=builder.sdk) if options.enabled else None
    )
    return ClientCore(options, builder=builder, stats=stats, pipeline=pipeline, start=start)


def reset_core_after_fork(core: ClientCore) -> None:
    """In a forked child: new counters and a new pipeline, nothing inherited from the parent."""
    stats = Stats()
    options = core.options
    pipeline = (
        build_pipeline(options, stats=stats, sdk_info=core.builder.sdk) if options.enabled else None
    )
    core.reset_after_fork(stats, pipeline)
