"""Load and soak: many conversations at once against the real ``docbot serve`` on 127.0.0.1.

The load comes from ``python -m bench.load`` (run from the repository root, as ``make bench`` runs the benchmarks).
Default (CI) size: 12 conversations for 10 s, then a 30 s soak after a 5 s warm-up. ``DOCBOT_FULL_RELIABILITY=1``:
50 conversations for 60 s, then a 5-minute soak after a 30 s warm-up. The figures go to test-artifacts/.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from live import ARTIFACTS, ROOT, LiveServer, live_server

pytestmark = [pytest.mark.load, pytest.mark.slow]

FULL = os.environ.get("DOCBOT_FULL_RELIABILITY") == "1"
CONVERSATIONS, LOAD_S, WARMUP_S, SOAK_S = (50, 60, 30, 300) if FULL else (12, 10, 5, 30)
MAX_GROWTH = 0.10


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Every conversation comes from 127.0.0.1: the per-caller rate limit is lifted (test_api tests it), and every
    conversation may be answered at once (the cap on concurrent answers: test_edge). A slot is given back once the
    whole response has been sent, a moment after the client has read it: twice the conversations leaves room."""
    env = {"DOCBOT_RATE_LIMIT_PER_MINUTE": "1000000", "DOCBOT_MAX_CONCURRENT_ANSWERS": str(2 * CONVERSATIONS)}
    with live_server(tmp_path_factory.mktemp("load"), env=env) as live:
        yield live


def bench_load(name: str, *args: str) -> dict[str, Any]:
    """Run ``python -m bench.load`` and return its figures (also kept in test-artifacts/)."""
    ARTIFACTS.mkdir(exist_ok=True)
    out = ARTIFACTS / f"reliability-{name}{'-full' if FULL else ''}.json"
    run = subprocess.run(
        [sys.executable, "-m", "bench.load", "--conversations", str(CONVERSATIONS), "--json", str(out), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=LOAD_S + WARMUP_S + SOAK_S + 600,
    )
    print(run.stdout)
    assert run.returncode == 0, run.stderr
    return dict(json.loads(out.read_text()))


def assert_held(load: dict[str, Any]) -> None:
    """Every turn answered: no 5xx, no dropped stream, no timeout, nothing refused."""
    assert load["server_errors"] == 0, load["errors"]
    assert load["dropped_streams"] == 0, load["errors"]
    assert load["transport_errors"] == 0 and load["other_errors"] == 0, load["errors"]
    # Every request answered; how many fit in the time is a figure to report, not to assert (machine load).
    assert load["answered"] == load["requests"] > 0
    assert all(load["by_route"].values()), load["by_route"]


def test_concurrent_conversations_on_ask_and_stream(server: LiveServer) -> None:
    figures = bench_load("load", "--url", server.url, "--seconds", str(LOAD_S))
    assert_held(figures["load"])


def test_memory_holds_over_a_soak(server: LiveServer) -> None:
    pid = str(server.process.pid)
    figures = bench_load(
        "soak", "--url", server.url, "--seconds", "0", "--pid", pid, "--warmup-seconds", str(WARMUP_S),
        "--soak-seconds", str(SOAK_S),
    )  # fmt: skip
    soak = figures["soak"]
    assert_held(soak["warmup"])
    assert_held(soak["load"])
    assert soak["growth"] <= MAX_GROWTH, soak["rss_samples"]
    assert server.process.poll() is None
