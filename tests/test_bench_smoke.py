"""Smoke test of the benchmark suite: ``bench/run.py --quick`` with tiny counts produces every scenario.

No speed is asserted here (numbers on a shared machine are noise at these counts); the test checks
that every scenario ran and reported sane positive figures, and that the table was written.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

OURS_AND_UPSTREAM = [
    "call", "attr_get", "attr_set", "connect_warm", "connect_observed", "connect_cold",
    f"array_get_{2**20}", f"array_get_{64 * 2**20}", f"array_put_{2**20}", f"array_put_{64 * 2**20}",
    "events_best", "events_reliable", "discovery_cold", "discovery_warm", "memory",
]
FLOOR = ["rtt_recv", "rtt_iter", f"array_get_{2**20}", f"array_put_{2**20}", "events_best", "events_reliable"]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("bench") / "quick.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--iterations", "50", "--events", "500",
         "--transfers", "2,1", "--out", str(out)],
        capture_output=True, text=True, timeout=240, cwd=str(ROOT),
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert out.with_suffix(".md").read_text().startswith("# Benchmark results")
    return json.loads(out.read_text())


def _positive(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def test_no_group_failed(quick_run: dict) -> None:
    assert quick_run["errors"] == {}


@pytest.mark.parametrize("impl", ["ours", "upstream"])
def test_every_hero_scenario_reports_positive_numbers(quick_run: dict, impl: str) -> None:
    results = quick_run["results"][impl]
    assert sorted(set(OURS_AND_UPSTREAM) - set(results)) == []
    for name in ("call", "attr_get", "attr_set", "connect_warm", "connect_observed"):
        r = results[name]
        assert _positive(r["median_us"]) and r["p99_us"] >= r["median_us"] > 0, (name, r)
        assert _positive(r["floor"]["median_us"]), (name, r)  # the paired raw zenoh floor
    for name in OURS_AND_UPSTREAM:
        if name.startswith("array_"):
            assert _positive(results[name]["mib_s"]) and _positive(results[name]["floor"]["mib_s"]), name
    for name in ("events_best", "events_reliable"):
        r = results[name]
        assert r["sent"] > 0 and 0 <= r["received"] <= r["sent"] and _positive(r["rate_per_s"]), (name, r)
        assert 0 <= r["loss"] <= 1
    assert results["events_reliable"]["lost"] == 0
    for name in ("events_best", "events_reliable") if impl == "ours" else ():  # beside the floors coded as an event must be
        for floor in ("floor_coded", "floor_shaped"):  # (msgpack, which upstream's virtualenv lacks)
            assert _positive(results[name][floor]["rate_per_s"]) and results[name][floor]["lost"] >= 0, (name, floor)
    assert _positive(results["connect_cold"]["median_s"])
    assert _positive(results["discovery_cold"]["median_s"]) and results["discovery_cold"]["heros"] == 50
    assert _positive(results["discovery_warm"]["median_s"])
    assert results["memory"]["heros"] == 100 and results["memory"]["rss_after_mib"] > 0
    assert 0.5 < results["memory"]["heap_per_100_mib"] < 20  # (100 of its HEROs take about 2.7 MiB of Python heap)


def test_the_implementations_are_the_ones_named(quick_run: dict) -> None:
    ours = quick_run["results"]["ours"]["_info"]["heros_file"]
    upstream = quick_run["results"]["upstream"]["_info"]
    assert Path(ours).resolve() == (ROOT / "heros").resolve()
    assert upstream["heros_version"] == "2026.2.2" and Path(upstream["heros_file"]).resolve() != (ROOT / "heros").resolve()


def test_floor_and_rpc_scenarios(quick_run: dict) -> None:
    floor = quick_run["results"]["floor"]
    for name in FLOOR:
        assert name in floor, name
    assert _positive(floor["rtt_recv"]["median_us"]) and _positive(floor[f"array_get_{2**20}"]["mib_s"])
    for impl in ("pyro5", "rpyc"):
        assert _positive(quick_run["results"][impl]["call"]["median_us"]), impl


def test_panel_is_measured_or_said_not_to_be(quick_run: dict) -> None:
    panel = quick_run["results"]["panel"]
    if "panel_1khz" in panel:
        p = panel["panel_1khz"]
        assert _positive(p["messages_per_s"]) and p["kernel_cpu_percent"] >= 0
    else:
        assert panel["status"] == "not measured" and panel["reason"]


def test_comparisons_carry_ratios(quick_run: dict) -> None:
    rows = {r["key"]: r for r in quick_run["comparisons"]}
    for key in ("call_median", "attr_get_median", "array_get_1mib", "array_get_64mib", "events_best_rate"):
        assert _positive(rows[key]["ours_over_floor"]) and _positive(rows[key]["ours_over_upstream"]), key
    assert "call_vs_pyro5" in rows and "call_vs_rpyc" in rows


def test_the_call_profile_reports_cpu_per_call_for_every_server() -> None:
    import socket

    with socket.socket() as s:  # a free port for the profile's own hub
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "profile_call.py"), "--calls", "50", "--port", str(port)],
                          capture_output=True, text=True, timeout=120, cwd=str(ROOT))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert sorted(report) == ["floor", "floor-shaped", "floor-thread", "heros", "heros-raw"]
    for name, r in report.items():
        assert _positive(r["median_us"]) and _positive(r["client_process_cpu_us"]), (name, r)
        assert r["server_process_cpu_us"] == sum(r["server_threads_cpu_us"].values()), (name, r)


def test_the_event_profile_reports_the_cost_per_event_on_both_sides() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "profile_events.py"), "--events", "2000"],
                          capture_output=True, text=True, timeout=120, cwd=str(ROOT))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert sorted(report["emitter_ns"]) == ["emit", "encode + put", "put"]
    assert sorted(report["subscriber_ns"]) == ["bare", "subscription"]
    for side in report.values():
        assert all(_positive(v) for v in side.values()), report


def test_the_event_cpu_measure_reports_cpu_per_event_of_both_processes(tmp_path: Path) -> None:
    out = tmp_path / "event_cpu.json"
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "event_cpu.py"), "--rounds", "1", "--events", "50000",
                           "--out", str(out)], capture_output=True, text=True, timeout=120, cwd=str(ROOT))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "| ours |" in proc.stdout and "| shaped |" in proc.stdout
    report = json.loads(out.read_text())
    for side in ("ours", "shaped"):
        (run,) = report["runs"][side]
        assert run["lost"] == 0 and _positive(run["rate_per_s"]), (side, run)
        assert _positive(run["subscriber_us"]) and _positive(run["emitter_us"]), (side, run)
        assert run["emitter_threads_us"] and all(v > 0 for v in run["emitter_threads_us"].values()), (side, run)
        assert _positive(report["median"][side]["cores"])
