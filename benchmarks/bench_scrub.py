"""CPU cost of building (and so scrubbing) the benchmark event: µs per event, minimum of rounds.

Run: python -m benchmarks.bench_scrub [--quick]

The benchmark event is `_workload.raise_deep`: an exception raised 10 frames deep with 5 locals
in each frame, built by errlink's `EventBuilder` (frames, context lines, locals, scope), which is
where every string of the event meets the scrubber's rules. Three figures per event:

- build: the whole event, as the host application pays for it on each error;
- build, no scrubbing: the same with a serializer that has no scrubber (the rest of the work);
- scrubbing: the difference, the scrubber's own cost.

A second event holds secrets of every kind in its locals (cards, keys, URL credentials, tokens,
addresses), the scrubber's slow path. CPU time of this thread (`time.process_time`) is measured
and the minimum over rounds kept, since the machine is shared: noise only ever adds time.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

from benchmarks._workload import raise_deep
from errlink._capture.event import EventBuilder
from errlink._capture.scope import current_scope
from errlink._capture.serialize import Serializer
from errlink._options import build_options

# Not in any source line a frame shows, since the event carries context lines.
_SECRETS = {
    "card": "4111 " + "1111 " * 2 + "1111",
    "url": "postgres://app:" + "hunter2" + "@db.internal:5432/shop",
    "auth": "Bearer " + "abc.def.ghi",
    "ssn": "ssn " + "123-45-" + "6789",
    "client": "connected from " + "203.0.113." + "9",
    "mail": "sent to " + "ann@" + "example.com",
}


def _raise_with_secrets() -> BaseException:
    found = dict(_SECRETS)  # (a local named `secrets` would be filtered whole, by its name)
    try:
        raise ValueError(f"failed with {len(found)} texts around")
    except ValueError as exc:
        return exc


def _min_us(fn: Callable[[], Any], rounds: int, per_round: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(per_round):
            fn()
        best = min(best, (time.process_time() - start) / per_round * 1e6)
    return best


def _unscrubbed(builder: EventBuilder) -> EventBuilder:
    """`builder` with serializers that have no scrubber: frames, locals and scope alone."""
    plain = Serializer(max_value_length=builder.options.max_value_length)
    builder.serializer = plain
    builder.frames._vars_normalizers = plain.mapping_normalizer  # type: ignore[assignment]
    builder.scrubber.scrub_text = lambda text: text  # type: ignore[method-assign]
    return builder


def bench(rounds: int, per_round: int) -> dict[str, float]:
    options = build_options(None, {})
    builder = EventBuilder(options)
    bare = _unscrubbed(EventBuilder(options))
    scope = current_scope()
    results: dict[str, float] = {}
    for name, exc in (("benchmark event", raise_deep(10)), ("secrets", _raise_with_secrets())):
        full = _min_us(lambda e=exc: builder.exception_event(e, scope, {}), rounds, per_round)
        plain = _min_us(lambda e=exc: bare.exception_event(e, scope, {}), rounds, per_round)
        results[f"{name}: build"] = full
        results[f"{name}: build, no scrubbing"] = plain
        results[f"{name}: scrubbing"] = full - plain
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few rounds only (smoke test)")
    args = parser.parse_args(argv)
    rounds, per_round = (3, 50) if args.quick else (30, 300)
    results = bench(rounds, per_round)
    print(f"Python {sys.version.split()[0]}; CPU µs per event, minimum of {rounds} rounds")
    print(f"of {per_round} events\n")
    print("| measurement | µs per event |")
    print("|---|---:|")
    for name, value in results.items():
        print(f"| {name} | {value:.1f} |")


if __name__ == "__main__":
    main()
