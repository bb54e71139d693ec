"""The benchmark suite runs end to end in --quick mode, so its scripts cannot rot.

Only that each benchmark produced numbers is checked: timings are never asserted in tests.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NUMBER = re.compile(r"\d+(\.\d+)?")


def test_quick_suite_produces_a_row_of_numbers_for_every_benchmark(tmp_path: Path) -> None:
    output = tmp_path / "RESULTS.md"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = output.read_text()
    assert "Machine: " in table
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line][1:]
    by_scenario: dict[str, list[str]] = {}
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        by_scenario.setdefault(cells[0].split(",")[0].split(" (")[0], []).append(row)
        assert NUMBER.search(cells[2]), row
    assert set(by_scenario) == {
        "capture_exception",
        "burst of 500",
        "burst of 300",
        "event-loop lag",
        "server down",
        "import + init",
        "the floor",
        "per-request overhead",
        "hostile server",
        "100 KB of text in locals",
        "1 MiB attachments",
        "log line",
    }
    sdks = {row.split("|")[2].strip().split(" (")[0] for row in rows}
    assert {"errlink", "errlink-async", "sentry-sdk", "raven"} <= sdks
    _check_per_request_rows(by_scenario["per-request overhead"])
    for row in by_scenario["burst of 300"]:  # nothing dropped: every event reached the sink
        assert "delivered 300," in row, row
        if "| errlink" in row:
            assert "x raw POST floor (4 in flight" in row, row


def _check_per_request_rows(rows: list[str]) -> None:
    """Every framework of the issue, each as bare app, with errlink and with sentry-sdk: a rate,
    and for the SDKs a ratio to the bare app, the µs added, and a live check that passed."""
    seen = set()
    for row in rows:
        scenario, variant, rate, ratio, added = (cell.strip() for cell in row.strip("|").split("|"))
        framework = scenario.split(", ")[1].split()[0]
        variant = variant.split(" (")[0]
        seen.add((framework, variant))
        assert rate.endswith("req/s (best round)"), row
        if variant == "bare":
            assert ratio == "baseline", row
        else:
            assert re.fullmatch(r"\d+\.\d{3}x bare \(medians \d+\.\d{3}x\)", ratio), row
            assert re.search(r"[+-]\d+\.\d µs/req server CPU", added), row
            assert "live check ok" in added, row
    assert seen == {
        (framework, variant)
        for framework in ("sanic", "tornado", "fastapi", "flask", "django")
        for variant in ("bare", "errlink", "sentry-sdk")
    }
