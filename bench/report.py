"""Turns raw benchmark results into comparisons (ratios, targets) and a Markdown table."""

from __future__ import annotations

from typing import Any

__all__ = ["ROWS", "compare", "render_markdown", "shm_rows"]

MIB1, MIB64 = 2**20, 64 * 2**20


def _get(results: dict[str, Any], impl: str, scenario: str, field: str, paired: bool | str = False) -> float | None:
    entry = results.get(impl, {}).get(scenario, {})
    if paired:
        entry = entry.get("floor" if paired is True else paired, {}) if isinstance(entry, dict) else {}
    value = entry.get(field) if isinstance(entry, dict) else None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


# Each row: key, label, unit, scale (display), which way is better, where ours/upstream's figure is
# (scenario, field), where the floor is (scenario, field: the floor measured by the same client in
# alternating blocks; a scenario of the standalone floor run as fallback), and the target on ours/floor.
ROWS: list[tuple[str, str, str, float, str, tuple[str, str], tuple[str, ...] | None, tuple[str, float] | None]] = [
    ("call_median", "method call, median", "µs", 1, "lower", ("call", "median_us"), ("call", "median_us", "rtt_recv"), ("max_floor", 1.15)),
    ("call_p99", "method call, p99", "µs", 1, "lower", ("call", "p99_us"), ("call", "p99_us", "rtt_recv"), None),
    ("attr_get_median", "attribute get, median", "µs", 1, "lower", ("attr_get", "median_us"), ("attr_get", "median_us", "rtt_recv"), ("max_floor", 1.15)),
    ("attr_get_p99", "attribute get, p99", "µs", 1, "lower", ("attr_get", "p99_us"), ("attr_get", "p99_us", "rtt_recv"), None),
    ("attr_set_median", "attribute set, median", "µs", 1, "lower", ("attr_set", "median_us"), ("attr_set", "median_us", "rtt_recv"), ("max_floor", 1.15)),
    ("attr_set_p99", "attribute set, p99", "µs", 1, "lower", ("attr_set", "p99_us"), ("attr_set", "p99_us", "rtt_recv"), None),
    ("array_get_1mib", "ndarray 1 MiB returned", "MiB/s", 1, "higher", (f"array_get_{MIB1}", "mib_s"), (f"array_get_{MIB1}", "mib_s", f"array_get_{MIB1}"), ("min_floor", 0.8)),
    ("array_get_64mib", "ndarray 64 MiB returned", "MiB/s", 1, "higher", (f"array_get_{MIB64}", "mib_s"), (f"array_get_{MIB64}", "mib_s", f"array_get_{MIB64}"), ("min_floor", 0.8)),
    ("array_put_1mib", "ndarray 1 MiB as argument", "MiB/s", 1, "higher", (f"array_put_{MIB1}", "mib_s"), (f"array_put_{MIB1}", "mib_s", f"array_put_{MIB1}"), ("min_floor", 0.8)),
    ("array_put_64mib", "ndarray 64 MiB as argument", "MiB/s", 1, "higher", (f"array_put_{MIB64}", "mib_s"), (f"array_put_{MIB64}", "mib_s", f"array_put_{MIB64}"), ("min_floor", 0.8)),
    ("events_best_rate", "events best effort, received", "1/s", 1, "higher", ("events_best", "rate_per_s"), ("events_best", "rate_per_s", "events_best"), ("min_floor", 0.8)),
    ("events_best_coded", "events best effort, received (floor: coded with msgpack both ways)", "1/s", 1, "higher", ("events_best", "rate_per_s"), ("events_best", "rate_per_s", "events_best_coded", "floor_coded"), None),
    ("events_best_shaped", "events best effort, received (floor: coded, drained by a Python thread from a channel)", "1/s", 1, "higher", ("events_best", "rate_per_s"), ("events_best", "rate_per_s", "events_best_shaped", "floor_shaped"), None),
    ("events_best_loss", "events best effort, lost", "%", 100, "lower", ("events_best", "loss"), ("events_best", "loss", "events_best"), None),
    ("events_reliable_rate", "events reliable, received (floor: reliable)", "1/s", 1, "higher", ("events_reliable", "rate_per_s"), ("events_reliable", "rate_per_s", "events_reliable"), ("min_floor", 0.8)),
    ("events_reliable_coded", "events reliable, received (floor: reliable, coded with msgpack both ways)", "1/s", 1, "higher", ("events_reliable", "rate_per_s"), ("events_reliable", "rate_per_s", "events_reliable_coded", "floor_coded"), None),
    ("events_reliable_shaped", "events reliable, received (floor: reliable, coded, drained by a Python thread from a channel)", "1/s", 1, "higher", ("events_reliable", "rate_per_s"), ("events_reliable", "rate_per_s", "events_reliable_shaped", "floor_shaped"), None),
    ("events_reliable_loss", "events reliable, lost", "%", 100, "lower", ("events_reliable", "loss"), ("events_reliable", "loss", "events_reliable"), ("zero", 0)),
    ("connect_cold", "connect, new process (session open incl.)", "ms", 1000, "lower", ("connect_cold", "median_s"), None, None),
    ("connect_warm", "connect, session open (floor: one round trip)", "µs", 1, "lower", ("connect_warm", "median_us"), ("connect_warm", "median_us", "rtt_recv"), None),
    ("connect_observed", "connect, observer has seen the HERO (floor: one round trip)", "µs", 1, "lower", ("connect_observed", "median_us"), ("connect_observed", "median_us", "rtt_recv"), ("max_floor", 2.0)),
    ("discovery_cold", "discovery of 50 HEROs, new process", "ms", 1000, "lower", ("discovery_cold", "median_s"), None, None),
    ("discovery_warm", "discovery of 50 HEROs, session open", "ms", 1000, "lower", ("discovery_warm", "median_s"), None, None),
    ("memory_per_100", "memory per 100 served HEROs (RSS)", "MiB", 1, "lower", ("memory", "delta_per_100_mib"), None, None),
    ("memory_heap_per_100", "memory per 100 served HEROs (Python heap, traced)", "MiB", 1, "lower", ("memory", "heap_per_100_mib"), None, None),
]


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def _floor(results: dict[str, Any], impl: str, floor: tuple[str, ...], standalone: str) -> float | None:
    scenario, field, fallback, *which = floor
    value = _get(results, impl, scenario, field, paired=which[0] if which else True)
    return value if value is not None else _get(results, standalone, fallback, field)


def compare(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One comparison per row: values, ratios over floor and upstream, and whether targets are met."""
    rows = []
    for key, label, unit, scale, better, (scenario, field), floor, target in ROWS:
        ours = _get(results, "ours", scenario, field)
        upstream = _get(results, "upstream", scenario, field)
        floor_value = _floor(results, "ours", floor, "floor") if floor else None
        up_floor = _floor(results, "upstream", floor, "floor_upstream_zenoh") if floor else None
        row: dict[str, Any] = {
            "key": key, "label": label, "unit": unit, "better": better,
            "floor": _scaled(floor_value, scale), "ours": _scaled(ours, scale), "upstream": _scaled(upstream, scale),
            "upstream_floor": _scaled(up_floor, scale),
            "ours_over_floor": _ratio(ours, floor_value), "ours_over_upstream": _ratio(ours, upstream),
            "upstream_over_floor": _ratio(upstream, up_floor),
        }
        if ours is not None and upstream is not None:
            row["ahead_of_upstream"] = ours < upstream if better == "lower" else ours > upstream
            if better == "lower" and ours == upstream == 0:
                row["ahead_of_upstream"] = True
        if target and ours is not None:
            kind, bound = target
            ratio = row["ours_over_floor"]
            if kind == "zero":
                row["target"], row["target_met"] = "none lost", ours == 0
            elif ratio is not None:
                row["target"] = f"≤ {bound:g}× floor" if kind == "max_floor" else f"≥ {bound:g}× floor"
                row["target_met"] = ratio <= bound if kind == "max_floor" else ratio >= bound
        rows.append(row)
    call = _get(results, "ours", "call", "median_us")
    for impl in ("pyro5", "rpyc"):
        other = _get(results, impl, "call", "median_us")
        if other is not None:
            rows.append({"key": f"call_vs_{impl}", "label": f"method call vs {impl}, median", "unit": "µs", "better": "lower",
                         "other": other, "ours": call, "ours_over_other": _ratio(call, other),
                         "target": f"ahead of {impl}", "target_met": call is not None and call < other})
    panel = results.get("panel", {})
    if "messages_per_s" in panel.get("panel_1khz", {}):
        p = panel["panel_1khz"]
        rows.append({"key": "panel", "label": "panel under a 1 kHz event stream", "unit": "msg/s",
                     "ours": p["messages_per_s"], "kernel_cpu_percent": p.get("kernel_cpu_percent")})
    return rows


def _scaled(value: float | None, scale: float) -> float | None:
    return None if value is None else value * scale


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "**NO**"
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{digits}g}"
    return str(value)


#: The mixed-lab table: (label, unit, scale, scenario, field).
MIXED_ROWS = [
    ("method call, median", "µs", 1, "call", "median_us"),
    ("attribute get, median", "µs", 1, "attr_get", "median_us"),
    ("ndarray 1 MiB returned", "MiB/s", 1, f"array_get_{MIB1}", "mib_s"),
    ("ndarray 1 MiB as argument", "MiB/s", 1, f"array_put_{MIB1}", "mib_s"),
    ("events best effort, received", "1/s", 1, "events_best", "rate_per_s"),
]


def _mixed_table(results: dict[str, Any]) -> list[str]:
    """Ours and upstream's pure figures next to the mixed ones (each over the floor its client measured)."""
    mixed = results.get("mixed")
    if not mixed:
        return []
    columns = [("ours → our HERO", results.get("ours", {})), ("upstream → upstream HERO", results.get("upstream", {})),
               ("ours → upstream HERO", mixed.get("ours_to_upstream", {})), ("upstream → our HERO", mixed.get("upstream_to_ours", {}))]
    lines = ["", "Mixed labs (CBOR between the implementations; each figure over the raw floor its own client measured):", "",
             "| metric | unit | " + " | ".join(name for name, _ in columns) + " |", "|---|---|" + "---:|" * len(columns)]
    for label, unit, scale, scenario, field in MIXED_ROWS:
        cells = []
        for _, source in columns:
            entry = source.get(scenario, {}) if isinstance(source, dict) else {}
            value, floor = entry.get(field), (entry.get("floor") or {}).get(field)
            if not isinstance(value, (int, float)):
                cells.append("–")
                continue
            ratio = f" ({value / floor:.2f}× floor)" if isinstance(floor, (int, float)) and floor else ""
            cells.append(f"{_fmt(value * scale)}{ratio}")
        lines.append(f"| {label} | {unit} | " + " | ".join(cells) + " |")
    return lines


#: Same-host targets on ours over the TCP floor (issue 15): size -> least ratio.
SHM_TARGETS = {MIB1: 1.5, MIB64: 3.0}


def shm_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Large payloads on one host: ours (shared memory) over the TCP floor, and ours with shared
    memory off (as across hosts) over the same floor; the floor with zenoh's defaults beside."""
    shm = results.get("shm", {})
    off = shm.get("shm_off", {})
    rows = []
    for kind, label in (("array_get", "returned"), ("array_put", "as argument")):
        for size in (MIB1, MIB64):
            scenario = f"{kind}_{size}"
            tcp = (off.get(scenario, {}).get("floor") or {}).get("mib_s")
            ours = results.get("ours", {}).get(scenario, {})
            row = {"label": f"ndarray {size >> 20} MiB {label}", "tcp_floor": tcp,
                   "default_floor": (ours.get("floor") or {}).get("mib_s"), "ours": ours.get("mib_s"),
                   "ours_shm_off": off.get(scenario, {}).get("mib_s"), "upstream": results.get("upstream", {}).get(scenario, {}).get("mib_s"),
                   "target": SHM_TARGETS[size]}
            row["ours_over_tcp"] = _ratio(row["ours"], tcp)
            row["shm_off_over_tcp"] = _ratio(row["ours_shm_off"], tcp)
            row["met"] = None if row["ours_over_tcp"] is None else row["ours_over_tcp"] >= row["target"]
            rows.append(row)
    return rows


def _shm_table(results: dict[str, Any]) -> list[str]:
    if not results.get("shm", {}).get("shm_off"):
        return []
    lines = ["", "Large payloads on one host (MiB/s, median transfer). TCP floor: raw zenoh with shared memory off in "
             "both processes, measured in the process of the column 'ours, shm off' through a zenoh session of "
             "zenoh's own settings (a HEROS session queues more batches per link, which is ours, not the floor's); zenoh "
             "defaults: the floor our shared-memory client measured that way (zenoh's own shared memory pool of 16 MiB "
             "takes messages up to that size):", "",
             "| payload | TCP floor | zenoh defaults | ours | ours/TCP floor | target | met | ours, shm off (as across hosts) | "
             "shm off/TCP floor | upstream |",
             "|---|---:|---:|---:|---:|---|---|---:|---:|---:|"]
    for r in shm_rows(results):
        lines.append(f"| {r['label']} | {_fmt(r['tcp_floor'])} | {_fmt(r['default_floor'])} | {_fmt(r['ours'])} | "
                     f"{_fmt(r['ours_over_tcp'])} | ≥ {r['target']:g}× TCP floor | {_fmt(r['met']) if r['met'] is not None else '–'} | "
                     f"{_fmt(r['ours_shm_off'])} | {_fmt(r['shm_off_over_tcp'])} | {_fmt(r['upstream'])} |")
    churn = results["shm"].get("churn")
    if churn:
        def mem(before: dict[str, float], after: dict[str, float]) -> str:
            return ", ".join(f"{what} {_fmt(before.get(key))} → {_fmt(after.get(key))}" for key, what in
                             (("rss", "RSS"), ("anon", "own"), ("shmem", "shared memory mapped")))

        lines += ["", f"{churn['transfers']} transfers of 64 MiB (gets and puts in turn, {_fmt(churn['mib_s'])} MiB/s), "
                  f"resident memory in MiB: client {mem(churn['client_rss_before_mib'], churn['client_rss_after_mib'])}; "
                  f"server {mem(churn['server_rss_before_mib'], churn['server_rss_after_mib'])}; /dev/shm in use on the "
                  f"machine {_fmt(churn['dev_shm_before_mib'])} → {_fmt(churn['dev_shm_after_mib'])} MiB. "
                  f"The client's shared memory: {churn.get('client_shared_memory')}."]
    return lines


def render_markdown(data: dict[str, Any]) -> str:
    """The readable report: machine, the main table, RPC comparison, panel, errors."""
    m = data.get("machine", {})
    prof = data.get("profile", {})
    lines = [
        "# Benchmark results",
        "",
        f"{m.get('date', '?')} · {m.get('cpu', '?')} · {m.get('cores', '?')} cores · {m.get('memory', '?')} · "
        f"Linux {m.get('kernel', '?')} · Python {m.get('python', '?')} · commit {m.get('commit', '?')}",
        "",
        f"Profile `{prof.get('name', '?')}`: {prof.get('n', '?')} timed calls per latency scenario, "
        f"{prof.get('events', '?')} events per event scenario, transfers per size {prof.get('transfers', '?')}, "
        f"loopback zenoh (a hub on 127.0.0.1, multicast off), every server in its own process. "
        f"zenoh {m.get('zenoh_ours', '?')} (ours, floor); upstream heros 2026.2.2 on its own pinned zenoh.",
        "",
        "Ratios are ours divided by the other figure (latency: lower is better; rates: higher is better). "
        "Each client measures the raw zenoh floor through its own session in blocks alternating with its HERO "
        "calls (so both see the same machine load); the floor column is the one our client measured, "
        "upstream/floor uses the floor upstream's client measured on upstream's zenoh.",
        "",
        "| metric | unit | floor | ours | upstream | ours/floor | ours/upstream | upstream/floor | target | met |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    comparisons = data.get("comparisons", [])
    for r in comparisons:
        if "floor" not in r:
            continue
        ahead = r.get("ahead_of_upstream")
        target = r.get("target", "")
        met = r.get("target_met")
        if ahead is not None:
            target = f"{target}; ahead of upstream" if target else "ahead of upstream"
            met = ahead if met is None else (met and ahead)
        lines.append(
            f"| {r['label']} | {r['unit']} | {_fmt(r['floor'])} | {_fmt(r['ours'])} | {_fmt(r['upstream'])} | "
            f"{_fmt(r['ours_over_floor'])} | {_fmt(r['ours_over_upstream'])} | {_fmt(r['upstream_over_floor'])} | {target} | "
            f"{_fmt(met) if met is not None else '–'} |"
        )
    rpc = [r for r in comparisons if r["key"].startswith("call_vs_")]
    if rpc:
        lines += ["", "| method call, median | µs | ours/other | met |", "|---|---:|---:|---|"]
        call = next((r["ours"] for r in comparisons if r["key"] == "call_median"), None)
        lines.append(f"| ours (HEROS over zenoh) | {_fmt(call)} | | |")
        for r in rpc:
            lines.append(f"| {r['key'][8:]} | {_fmt(r['other'])} | {_fmt(r['ours_over_other'])} | {_fmt(r['target_met'])} |")
    results = data.get("results", {})
    floor = results.get("floor", {})
    if floor:
        lines += ["", "Floor details: raw query round trip with `get(...).recv()` "
                  f"{_fmt(floor.get('rtt_recv', {}).get('median_us'))} µs, with full iteration of the reply channel "
                  f"{_fmt(floor.get('rtt_iter', {}).get('median_us'))} µs (median)."]
        fu = results.get("floor_upstream_zenoh", {})
        if fu:
            lines[-1] += (f" The same floor on upstream's zenoh: {_fmt(fu.get('rtt_recv', {}).get('median_us'))} µs / "
                          f"{_fmt(fu.get('rtt_iter', {}).get('median_us'))} µs.")
    lines += _mixed_table(results)
    lines += _shm_table(results)
    panel = results.get("panel")
    if panel is not None:
        p = panel.get("panel_1khz")
        if p:
            lines += ["", f"Jupyter panel under a 1 kHz event stream: {_fmt(p.get('messages_per_s'))} messages/s to the frontend, "
                      f"kernel CPU {_fmt(p.get('kernel_cpu_percent'))} %, {_fmt(p.get('events_per_s'))} events/s received."]
        else:
            lines += ["", f"Jupyter panel under a 1 kHz event stream: **{panel.get('status', 'not measured')}** "
                      f"({panel.get('reason', '')})."]
    for impl in ("ours", "upstream"):
        misses = sum(int(v.get("observer_misses", 0)) for v in results.get(impl, {}).values() if isinstance(v, dict))
        if misses:
            lines += ["", f"{impl}: {misses} HEROObserver(s) missed running HEROs in their initial snapshot and were "
                      "replaced (the cold discovery from a new process counts their wait, as its user would wait; the "
                      "other figures leave them out)."]
    for impl in ("ours", "upstream"):
        failed = results.get(impl, {}).get("connect_cold", {}).get("failed_first_attempts")
        if failed:
            lines += ["", f"{impl}: in {failed} of {results[impl]['connect_cold']['n']} new processes the first "
                      "RemoteHERO() raised NameError (the session did not know its peers yet); the connect time "
                      "counts from the first attempt to the one that succeeded."]
    for name, err in data.get("errors", {}).items():
        lines += ["", f"**{name} failed**: {err[:500]}"]
    return "\n".join(lines) + "\n"
