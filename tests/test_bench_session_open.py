"""``bench/session_open.py``: it runs, and the warning it counts is the one zenoh really prints.

No speed is asserted: the smoke run checks that every figure was measured, and the second test
makes zenoh's ``open`` wait out its scouting delay on purpose (a configured peer that nobody
listens on), so that a zenoh release that words its warning differently fails here instead of
making the report count none.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from _common import free_port  # noqa: E402
from session_open import SLOW_MS, WARNING, summarise  # noqa: E402

pytestmark = pytest.mark.timeout(120)


def test_a_short_run_measures_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "session_open.json"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "session_open.py"), "--processes", "3", "--heros", "5",
                           "--impl", "ours", "--out", str(out)], capture_output=True, text=True, timeout=100, cwd=str(ROOT))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "| ours | zenoh.open |" in proc.stdout and "| ours | HEROObserver sees all |" in proc.stdout
    ours = json.loads(out.read_text())["ours"]
    assert ours["processes"] == 3 and ours["observer_misses"] >= 0
    assert ours["heros_imported"] == [str(ROOT / "heros" / "__init__.py")]  # the heros of this tree, in every probe
    for step in ("open", "discovery"):
        figures = ours[step]
        assert 0 < figures["median"] <= figures["p90"] <= figures["max"], figures
        assert 0 <= figures["warnings"] <= 3 and 0 <= figures["slow"] <= 3, figures


def test_zenoh_words_its_warning_as_the_report_counts_it() -> None:
    config = {"mode": "peer", "scouting": {"multicast": {"enabled": False}, "gossip": {"enabled": True}, "delay": 200},
              "listen": {"endpoints": ["tcp/127.0.0.1:0"]}, "connect": {"endpoints": [f"tcp/127.0.0.1:{free_port()}"]}}
    script = ("import time, zenoh\n"
              "zenoh.init_log_from_env_or('zenoh::net::runtime::orchestrator=warn')\n"
              f"t = time.perf_counter(); s = zenoh.open(zenoh.Config.from_json5({json.dumps(json.dumps(config))}))\n"
              "print('OPENED', time.perf_counter() - t, flush=True); s.close()\n")
    env = {k: v for k, v in os.environ.items() if k != "RUST_LOG"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    waited = float(proc.stdout.split("OPENED")[1].split()[0])
    assert waited >= 0.19, (waited, proc.stdout[-2000:])  # nobody to connect to: open waited the whole delay
    assert WARNING in proc.stdout, proc.stdout[-2000:]


def test_the_summary_counts_slow_probes_and_their_warnings() -> None:
    def probes(values: list[float], warned: int) -> list[dict]:
        return [{"ms": v, "misses": 1 if i == 0 else 0, "heros": "h", "warnings": int(i < warned)} for i, v in enumerate(values)]

    summary = summarise({"open": probes([3.7, 3.9], 0), "discovery": probes([*range(1, 150), SLOW_MS + 260], 1)})
    assert summary["open"]["median"] == pytest.approx(3.8) and summary["open"]["p90"] == 3.9  # nearest rank, never below the median
    assert summary["discovery"]["p90"] == 135 and summary["discovery"]["max"] == SLOW_MS + 260
    assert summary["discovery"]["slow"] == 1 and summary["discovery"]["slow_values"] == [SLOW_MS + 260]
    assert summary["discovery"]["warnings"] == 1 and summary["observer_misses"] == 1 and summary["processes"] == 2
