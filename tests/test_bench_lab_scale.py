"""Smoke test of ``bench/lab_scale.py --quick``: tiny counts, ours and upstream, every scenario.

No speed is asserted (numbers on a shared machine are noise at these counts): every scenario ran
and reported positive figures, no reply reached the wrong caller, and the processes imported the
implementations they were meant to.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(60)]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("bench") / "lab_scale.json"
    try:
        proc = subprocess.run([sys.executable, str(ROOT / "bench" / "lab_scale.py"), "--quick", "--runs", "1", "--seconds", "1",
                               "--out", str(out)], capture_output=True, text=True, timeout=55, cwd=str(ROOT))
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"bench/lab_scale.py --quick took more than 55 s: {str(exc.stdout)[-3000:]}")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert out.with_suffix(".md").read_text().startswith("20")  # the table, under the machine's line
    return json.loads(out.read_text())


def _positive(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def test_every_scenario_ran(quick_run: dict) -> None:
    assert quick_run["errors"] == {}
    assert sorted(quick_run["results"]["discovery"]) == ["ours", "upstream"]
    assert sorted(quick_run["results"]["calls"]) == ["ours", "upstream"]
    assert sorted(quick_run["results"]["kernel"]) == ["ours"]


@pytest.mark.parametrize("impl", ["ours", "upstream"])
def test_discovery_reports_positive_numbers(quick_run: dict, impl: str) -> None:
    d = quick_run["results"]["discovery"][impl]
    assert d["processes"] * d["heros_per_process"] == 40
    assert sorted(d["threads_idle"], key=int) == ["0", "1", "10"]
    assert all(_positive(n) for n in d["threads_idle"].values()), d["threads_idle"]
    assert all(_positive(n) for n in d["server_threads_before"] + d["server_threads_after"])
    assert _positive(d["ctor_s"]["median"]) and _positive(d["observer_rss_mib"]["after"]) and _positive(d["observer_threads"])
    assert d["memory_run"]["found"] > 0 and _positive(d["traced_per_hero_kib"])
    if impl == "ours":  # upstream's observer never lists a HERO its first discovery missed: it may come back incomplete
        assert d["incomplete_runs"] == 0 and _positive(d["discovery_s"]["median"])


@pytest.mark.parametrize("impl", ["ours", "upstream"])
def test_calls_report_positive_numbers_and_no_mismatch(quick_run: dict, impl: str) -> None:
    c = quick_run["results"]["calls"][impl]
    assert c["mismatches"] == 0, c["mismatch_examples"]
    assert c["errors"] == {}
    assert c["calls"] > 0 and _positive(c["calls_per_s"]["median"])
    assert c["p99_us"]["median"] >= c["p50_us"]["median"] > 0
    assert c["calls_per_client"]["min"] > 0  # every client called
    assert all(_positive(n) for n in c["server_threads_before"]) and _positive(c["server_threads_during_max"])


def test_kernel_reports_positive_numbers(quick_run: dict) -> None:
    k = quick_run["results"]["kernel"]["ours"]
    assert k["panels"] == 3 and len(k["windows"]) == 3
    for label, w in k["windows"].items():
        assert _positive(w["threads"]), label
        if label == "no events":  # an idle kernel may spend no clock tick (10 ms) in a 3 s window
            assert w["cpu_percent"]["median"] >= 0, label
        else:
            assert _positive(w["cpu_percent"]["median"]), label
            assert _positive(w["events_emitted_per_s"]["median"]) and _positive(w["comm_msg_per_s"]["median"]), label
    assert 0 < k["events_counted_by_panels"] <= k["events_emitted"]


def test_targets_are_judged(quick_run: dict) -> None:
    rows = quick_run["targets"]
    assert len(rows) == 2
    threads, wrong_caller = rows
    assert "O(1)" in threads["target"] and isinstance(threads["ours"]["met"], bool) and isinstance(threads["upstream"]["met"], bool)
    assert wrong_caller["ours"]["met"] and wrong_caller["upstream"]["met"]


def test_the_implementations_are_the_ones_named(quick_run: dict) -> None:
    ours = quick_run["results"]["discovery"]["ours"]["runs"][0]["heros_file"]
    upstream = quick_run["results"]["discovery"]["upstream"]["runs"][0]["heros_file"]
    assert Path(ours).resolve() == (ROOT / "heros" / "__init__.py").resolve()
    assert Path(quick_run["results"]["kernel"]["ours"]["heros_file"]).resolve() == (ROOT / "heros" / "__init__.py").resolve()
    assert "upstream-heros" in upstream and not Path(upstream).resolve().is_relative_to(ROOT / "heros")
