#!/usr/bin/env python3
"""Turns bench/run.sh's key=value results into the table, bench/results/latest.json and the last line.

usage: report.py RESULTS.txt OUT.json
"""
import json
import os
import platform
import subprocess
import sys
from datetime import datetime, timezone


def load(path):
    values = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if "=" in line:
                key, value = line.split("=", 1)
                values[key] = value
    return values


def num(values, key):
    try:
        return float(values[key])
    except (KeyError, ValueError):
        return None


def machine():
    def run(*cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
        except Exception:
            return ""
    model = ""
    for line in run("lscpu").splitlines():
        if line.startswith("Model name:"):
            model = line.split(":", 1)[1].strip()
    redis = run("redis-server", "--version")
    swift = run("swift", "--version").splitlines()
    return {
        "nproc": run("nproc"),
        "cpu": model,
        "kernel": platform.release(),
        "redis": redis.split("v=")[1].split()[0] if "v=" in redis else redis,
        "swift": swift[0] if swift else "",
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
    }


# --- Scaling tables (bench/run.sh section S: sc_* keys) -------------------------------------------------

def md_table(columns, rows):
    """A Markdown table, columns padded to their widest cell."""
    cells = [[str(c) for c in columns]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    return [line(cells[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [line(r) for r in cells[1:]]


def scaling_tables(values):
    """The scaling tables as [{name, title, command, columns, rows}] (empty when the section did not run)."""
    if "sc_scale" not in values:
        return []
    v = lambda key: num(values, key)  # noqa: E731

    def rate(x):
        return "—" if x is None else f"{x:,.0f}/s"

    def us(x):
        return "—" if x is None else f"{x:,.0f} µs" if x >= 100 else f"{x:.1f} µs"

    def f1(x, unit=""):
        return "—" if x is None else f"{x:,.1f}{unit}"

    def trials(prefix):
        t = values.get(f"{prefix}_trials", "")
        return ", ".join(f"{int(x):,}" for x in t.split("/") if x) if "/" in t else ""

    def size(b):
        b = int(b)
        return f"{b // 1024} KiB" if b >= 1024 and b % 1024 == 0 else f"{b} B"

    tables = []
    best = values.get("sc_best_config", "")

    # 1. Drain vs concurrency
    rows = []
    concs = sorted({k.split("_")[2] for k in values if k.startswith("sc_conc_c") and k.endswith("_per_s")},
                   key=lambda k: int(k[1:]))
    for ck in concs:
        key = next(k[:-len("_per_s")] for k in values if k.startswith(f"sc_conc_{ck}_p") and k.endswith("_per_s"))
        c, p = key[len("sc_conc_c"):].split("_p")
        rows.append([c + (" ← best" if best == f"{c}:{p}" else ""), p, f"{int(v(key + '_jobs') or 0):,}",
                     rate(v(key + "_per_s")), trials(key), f1(v(key + "_worker_cpu_us_per_job"), " µs"),
                     f1(v(key + "_redis_cpu_us_per_job"), " µs"), f"{v(key + '_inflight_max') or 0:,.0f}"])
    if rows:
        tables.append({"name": "drain_concurrency", "title": "Drain vs concurrency (one airlock-workerd, prefetch = 4 × concurrency, at most 1024)",
                       "command": values.get("sc_cmd_conc", ""),
                       "columns": ["concurrency", "prefetch", "jobs", "drain (best)", "trials", "worker CPU/job", "Redis CPU/job", "held ≤"],
                       "rows": rows})

    # 2. Drain vs worker processes
    rows = []
    for w in sorted({int(k.split("_")[2][1:]) for k in values if k.startswith("sc_proc_w") and k.endswith("_per_s")}):
        key = f"sc_proc_w{w}"
        rows.append([str(w), best.replace(":", " / "), f"{int(v(key + '_jobs') or 0):,}", rate(v(key + "_per_s")), trials(key),
                     f1(v(key + "_worker_cpu_us_per_job"), " µs"), f1(v(key + "_redis_cpu_us_per_job"), " µs"),
                     f"{v(key + '_inflight_max') or 0:,.0f}"])
    if rows:
        tables.append({"name": "drain_processes", "title": "Drain vs worker processes (best concurrency / prefetch of the table above, each)",
                       "command": values.get("sc_cmd_proc", ""),
                       "columns": ["processes", "concurrency / prefetch", "jobs", "drain (best)", "trials", "worker CPU/job (all)", "Redis CPU/job", "held ≤"],
                       "rows": rows})

    # 3. Enqueue vs scope size × producers
    rows = []
    cells = sorted({tuple(int(x) for x in k[len("sc_enq_s"):-len("_per_s")].split("_p"))
                    for k in values if k.startswith("sc_enq_s") and k.endswith("_per_s")})
    for s, pr in cells:
        key = f"sc_enq_s{s}_p{pr}"
        n, redis_s = v(key + "_intents"), v(key + "_redis_cpu_s")
        rows.append([str(s), str(pr), f"{int(n or 0):,}", rate(v(key + "_per_s")), us(v(key + "_flush_p50_us")), us(v(key + "_flush_p99_us")),
                     f1(v(key + "_cpu_us_per_intent"), " µs"), "—" if not n or redis_s is None else f"{redis_s * 1e6 / n:.1f} µs"])
    if rows:
        tables.append({"name": "enqueue_scope_producers", "title": "Enqueue vs scope size and producer tasks (one process, a RedisExecutor per task)",
                       "command": values.get("sc_cmd_enq", ""),
                       "columns": ["scope", "producer tasks", "intents", "enqueue", "flush p50", "flush p99", "producer CPU/intent", "Redis CPU/intent"],
                       "rows": rows})

    # 4. Envelope size
    rows = []
    for b in sorted({int(k[len("sc_env_b"):].split("_")[0]) for k in values if k.startswith("sc_env_b") and k.endswith("_enq_per_s")}):
        e, d = f"sc_env_b{b}_enq", f"sc_env_b{b}_drain"
        eb = v(e + "_envelope_bytes") or v(d + "_envelope_bytes")
        er, dr, n = v(e + "_per_s"), v(d + "_per_s"), v(e + "_intents")
        redis_s = v(e + "_redis_cpu_s")
        mbps = lambda r: "—" if r is None or not eb else f"{r * eb / 1e6:,.1f} MB/s"  # noqa: E731
        rows.append([size(b), "—" if eb is None else f"{eb:,.0f} B",
                     f"{int(n or 0):,}", rate(er), mbps(er), f1(v(e + "_cpu_us_per_intent"), " µs"),
                     "—" if not n or redis_s is None else f"{redis_s * 1e6 / n:.1f} µs",
                     f"{int(v(d + '_jobs') or 0):,}", rate(dr), mbps(dr),
                     f1(v(d + "_worker_cpu_us_per_job"), " µs"), f1(v(d + "_redis_cpu_us_per_job"), " µs")])
    if rows:
        tables.append({"name": "envelope_size", "title": f"Envelope size (kwarg `pad` of the given size; enqueue in scopes of 100 from one task, drain by one worker at {best.replace(':', ' / ')})",
                       "command": values.get("sc_cmd_env", ""),
                       "columns": ["payload", "envelope", "intents", "enqueue", "enqueue MB/s", "producer CPU/intent", "Redis CPU/intent",
                                   "jobs", "drain (best)", "drain MB/s", "worker CPU/job", "Redis CPU/job"],
                       "rows": rows})

    # 5. Latency
    rows = []
    for label, title in (("light", "light (nothing else queued)"), ("quarter", "25 % of capacity"), ("half", "50 % of capacity")):
        key = f"sc_lat_{label}"
        if v(key + "_p50_us") is None:
            continue
        if label != "light":
            behind = v(key + "_bg_behind_ticks")
            bg = (f"{rate(v(key + '_bg_per_s'))} (target {rate(v(key + '_bg_target_per_s'))}; capacity {rate(v('sc_capacity_per_s'))})"
                  + (f"; {behind:,.0f} ticks > 1,000 jobs behind" if behind else ""))
            backlog = f"{v(key + '_bg_backlog_max') or 0:,.0f}"
            jobs, wcpu = v(key + "_bg_jobs"), v(key + "_worker_cpu_s")
            cpu = "—" if not jobs or wcpu is None else f"{wcpu * 1e6 / jobs:.1f} µs"
        else:
            bg, backlog, cpu = "none", "—", "—"
        rows.append([title, f"{int(v(key + '_jobs') or 0):,}", bg, backlog, us(v(key + "_p50_us")), us(v(key + "_p99_us")),
                     us(v(key + "_p999_us")), us(v(key + "_max_us")), cpu])
    if rows:
        tables.append({"name": "latency_load", "title": "Enqueue→start latency at light load and beside a producer at 25 % and 50 % of the drain capacity measured above (same worker, same queue)",
                       "command": values.get("sc_cmd_lat", ""),
                       "columns": ["load", "stamped jobs", "background airlock.ping", "ready list ≤ (sampled)", "p50", "p99", "p99.9", "max",
                                   "worker CPU/job at load"],
                       "rows": rows})

    # 6. Promoter
    rows = []
    for label in ("empty", "full"):
        key = f"sc_promo_{label}"
        if v(key + "_worker_idle_cpu_ms") is None:
            continue
        idle = v(key + "_idle_s") or 1
        w, r = v(key + "_worker_idle_cpu_ms"), v(key + "_redis_idle_cpu_ms")
        zc = v(key + "_zcard")
        rows.append([f"{zc:,.0f} jobs due in 30 days" if zc else "empty", f"{idle:.0f} s",
                     f"{w:.1f} ms ({w / idle / 10:.2f} % of a core)", f"{r:.1f} ms ({r / idle / 10:.2f} %)",
                     f"{int(v(key + '_late_jobs') or 0):,}", f1(v(key + "_late_p50_ms"), " ms"), f1(v(key + "_late_p99_ms"), " ms"),
                     f1(v(key + "_late_max_ms"), " ms"), f1(v(key + "_late_worker_cpu_ms"), " ms")])
    if rows:
        seed = v("sc_promo_seed_per_s")
        tables.append({"name": "promoter", "title": "Promoter cost vs delayed-set size (one AirlockBench worker, concurrency 16)"
                       + ("" if seed is None else f"; the set was seeded at {seed:,.0f} jobs/s, Redis then used {v('sc_promo_redis_used_mb') or 0:,.0f} MB"),
                       "command": values.get("sc_cmd_promo", ""),
                       "columns": ["delayed set", "idle window", "worker CPU idle", "Redis CPU idle", "delayed jobs timed",
                                   "lateness p50", "lateness p99", "lateness max", "worker CPU for them"],
                       "rows": rows})

    # 7. Admin commands
    rows = []
    names = (("stats", "stats --no-rate"), ("list", "dead list"), ("list_all_json", "dead list --limit 0 --json"),
             ("retry_all", "dead retry --all"), ("purge_all", "dead purge --all (after re-seeding the dead letters)"))
    for label, cmd in names:
        key = f"sc_admin_{label}"
        if v(key + "_wall_s") is None:
            continue
        status = values.get(key + "_status", "")
        rows.append([f"airlock-workerd {cmd}", f"{v(key + '_wall_s'):.3f} s",
                     "—" if v(key + "_cli_cpu_s") is None else f"{v(key + '_cli_cpu_s'):.2f} s",
                     "—" if v(key + "_cli_rss_mb") is None else f"{v(key + '_cli_rss_mb'):.1f} MB",
                     f"{v(key + '_redis_cpu_s'):.3f} s",
                     f"{int(v(key + '_out_lines') or 0):,} lines, {(v(key + '_out_bytes') or 0) / 1e6:,.1f} MB",
                     status if status != "0" else "ok"])
    if rows:
        after = values.get("sc_admin_after_retry_ready")
        tables.append({"name": "admin", "title": f"Operator commands, {int(v('sc_admin_seed_ready_jobs') or 0):,} ready jobs (paused queue) and "
                       f"{int(v('sc_admin_seed_dead_jobs') or 0):,} dead letters ({int(v('sc_admin_seed_dead_envelope_bytes') or 0)} B each); "
                       f"{values.get('sc_admin_queues', '?')} queues known" + ("" if after is None else
                       f"; after the retry: {int(after):,} ready, {values.get('sc_admin_after_retry_dead')} dead"),
                       "command": values.get("sc_cmd_admin", ""),
                       "columns": ["command (whole process)", "wall", "its CPU", "its peak RSS", "Redis CPU", "output", "exit"],
                       "rows": rows})
    return tables


def scaling_summary(values, tables):
    """Fields appended to the bench: line (skipped when the section did not run)."""
    keys = ["scaling_capacity_per_s", "scaling_best_concurrency", "scaling_drain_c1_per_s", "scaling_drain_w4_per_s",
            "scaling_enqueue_s1000_p16_per_s", "scaling_latency_half_p50_us", "scaling_latency_half_p99_us",
            "scaling_promoter_idle_cpu_ms_empty", "scaling_promoter_idle_cpu_ms_1m", "scaling_dead_retry_all_s", "scaling_seconds"]
    if not tables:
        return " ".join(f"{k}=skipped" for k in keys)
    v = lambda key: num(values, key)  # noqa: E731

    def f(x, fmt="{:.0f}"):
        return "na" if x is None else fmt.format(x)
    best = values.get("sc_best_config", "")
    got = {
        "scaling_capacity_per_s": f(v("sc_capacity_per_s")),
        "scaling_best_concurrency": best.split(":")[0] if best else "na",
        "scaling_drain_c1_per_s": f(v("sc_conc_c1_p4_per_s")),
        "scaling_drain_w4_per_s": f(v("sc_proc_w4_per_s")),
        "scaling_enqueue_s1000_p16_per_s": f(v("sc_enq_s1000_p16_per_s")),
        "scaling_latency_half_p50_us": f(v("sc_lat_half_p50_us")),
        "scaling_latency_half_p99_us": f(v("sc_lat_half_p99_us")),
        "scaling_promoter_idle_cpu_ms_empty": f(v("sc_promo_empty_worker_idle_cpu_ms"), "{:.1f}"),
        "scaling_promoter_idle_cpu_ms_1m": f(v("sc_promo_full_worker_idle_cpu_ms"), "{:.1f}"),
        "scaling_dead_retry_all_s": f(v("sc_admin_retry_all_wall_s"), "{:.2f}"),
        "scaling_seconds": f(v("sc_seconds")),
    }
    return " ".join(f"{k}={got[k]}" for k in keys)


def main():
    values = load(sys.argv[1])
    out_path = sys.argv[2]
    quick = values.get("mode") == "quick"
    v = lambda key: num(values, key)  # noqa: E731

    def rate(x):
        return "—" if x is None else f"{x:,.0f}/s"

    def us(x):
        return "—" if x is None else f"{x:,.0f} µs" if x >= 100 else f"{x:.1f} µs"

    def ms(x):
        return "—" if x is None else f"{x:.2f} ms"

    def mb(x):
        return "—" if x is None else f"{x:.1f} MB"

    def check(ok):
        return "" if ok is None else ("met" if ok else "NOT met")

    drain_keys = sorted(
        (k[: -len("_per_s")] for k in values if k.startswith("drain_c") and k.endswith("_per_s")),
        key=lambda k: int(k.split("_c")[1].split("_p")[0]),
    )
    best_cfg = values.get("drain_best_config", "")
    best_key = "drain_c{}_p{}".format(*best_cfg.split(":")) if ":" in best_cfg else None
    drain = v(f"{best_key}_per_s") if best_key else None
    enqueue = v("enq100_per_s")
    lpush16, rpop16, lpush1 = v("redis_lpush_per_s"), v("redis_rpop_per_s"), v("redis_lpush_p1_per_s")
    celery, dramatiq, rq = v("celery_per_s"), v("dramatiq_per_s"), v("rq_per_s")
    rss_idle, rss_after = v("rss_idle_mb"), v("rss_after_mb")
    rss_jobs = int(values.get("rss_jobs", "0") or 0)

    rows = []  # (section, measurement, result, goal, status)
    add = lambda *r: rows.append(r)  # noqa: E731
    add("Redis", "LPUSH, redis-benchmark -P 16", rate(lpush16), "", "")
    add("Redis", "RPOP, redis-benchmark -P 16", rate(rpop16), "", "")
    add("Redis", "LPUSH, unpipelined (-P 1)", rate(lpush1), "", "")
    # One client, one command at a time: the floor under the latency goals on this machine.
    rt50 = v("redis_lpush_c1_p50_us")
    add("Redis", "LPUSH, one client one at a time (-c 1 -P 1): p50 / p99",
        f"{us(rt50)} / {us(v('redis_lpush_c1_p99_us'))} ({rate(v('redis_lpush_c1_per_s'))}); PING {us(v('redis_ping_c1_p50_us'))} / {us(v('redis_ping_c1_p99_us'))}",
        "", "")
    add("Redis", "PING through RedisClient, one at a time (AirlockBench roundtrip): p50 / p99",
        f"{us(v('client_rt_sequential_p50_us'))} / {us(v('client_rt_sequential_p99_us'))}; client CPU {us(v('client_rt_sequential_cpu_us'))} per call",
        "", "")
    def floors(x):
        """`x` as a multiple of Redis's own one-client LPUSH p50 measured in the same run."""
        return "" if x is None or not rt50 else f" = {x / rt50:.1f}× Redis's one-client round trip"
    add("Core", "enqueue+flush, RecordingExecutor, scopes of 100",
        f"{v('core_ns_per_intent') or 0:.0f} ns/intent = {rate(v('core_intents_per_s'))}", "", "")
    def cpu(prefix):
        """CPU µs per intent: producer (getrusage) / redis-server (/proc ticks, includes warm-up)."""
        producer, redis_s, n = v(f"{prefix}_cpu_us_per_intent"), v(f"{prefix}_redis_cpu_s"), v(f"{prefix}_intents")
        redis_us = redis_s * 1e6 / n if redis_s is not None and n else None
        if producer is None:
            return ""
        return f"; CPU/intent {producer:.1f} µs producer" + (f", {redis_us:.1f} µs Redis" if redis_us is not None else "")

    add("Enqueue", "scopes of 1, 1 producer",
        f"{rate(v('enq1_per_s'))}; flush p50 {us(v('enq1_flush_p50_us'))}{floors(v('enq1_flush_p50_us'))}, p99 {us(v('enq1_flush_p99_us'))}{cpu('enq1')}", "", "")
    add("Enqueue", "scopes of 100, 1 producer (by name)",
        f"{rate(enqueue)}; flush p50 {us(v('enq100_flush_p50_us'))}, p99 {us(v('enq100_flush_p99_us'))}{cpu('enq100')}",
        "≥ 200,000/s", check(enqueue and enqueue >= 200_000))
    add("Enqueue", "scopes of 100, 1 producer (typed AirlockTask)", f"{rate(v('enq100typed_per_s'))}{cpu('enq100typed')}", "", "")
    add("Enqueue", "scopes of 100, 4 producer tasks (own connections)",
        f"{rate(v('enq100x4_per_s'))}; flush p50 {us(v('enq100x4_flush_p50_us'))}{cpu('enq100x4')}", "", "")
    add("Enqueue", "scopes of 1, 4 producer tasks (own connections)",
        f"{rate(v('enq1x4_per_s'))}; flush p50 {us(v('enq1x4_flush_p50_us'))}, p99 {us(v('enq1x4_flush_p99_us'))}", "", "")
    def jobcpu(prefix):
        trials = values.get(f"{prefix}_trials", "")
        text = f" (trials: {', '.join(f'{int(t):,}' for t in trials.split('/'))})" if "/" in trials else ""
        w, r = v(f"{prefix}_worker_cpu_us_per_job"), v(f"{prefix}_redis_cpu_us_per_job")
        held = v(f"{prefix}_inflight_max")
        return (text + ("" if w is None else f"; CPU/job {w:.1f} µs worker, {r:.1f} µs Redis")
                + ("" if held is None else f"; ≤ {held:,.0f} held"))

    n_drain = int(float(values.get(f"{best_key}_jobs", "0") or 0)) if best_key else 0
    for key in drain_keys:
        c, p = key.split("_c")[1].split("_p")
        mark = " ← best" if key == best_key else ""
        add("Drain", f"{n_drain:,} airlock.ping, 1 worker, concurrency {c} prefetch {p}{mark}",
            rate(v(f"{key}_per_s")) + jobcpu(key), "≥ 100,000/s" if key == best_key else "",
            check(drain >= 100_000) if key == best_key and drain else "")
    add("Drain", f"{n_drain:,} airlock.ping, 2 worker processes ({best_cfg.replace(':', '/')} each)",
        rate(v("drain2_per_s")) + jobcpu("drain2"), "", "")
    if v("drain_batched_per_s") is not None:
        add("Drain", f"{n_drain:,} airlock.ping in batches of 1,000 (onComplete each), 1 worker ({best_cfg.replace(':', '/')})",
            rate(v("drain_batched_per_s")) + jobcpu("drain_batched"), "", "")
    held = v("rssdrain_inflight_max")
    add("Drain", f"{rss_jobs:,} airlock.ping, 1 worker ({best_cfg.replace(':', '/')}) — the RSS run",
        rate(v("rssdrain_per_s")) + ("" if held is None else f"; ≤ {held:,.0f} held"), "", "")
    capacity = v("rss_capacity")
    if held is not None and capacity:
        add("Drain", "jobs held in flight by one worker (max sampled) vs concurrency + prefetch",
            f"{held:,.0f} vs {capacity:,.0f}", "≤ capacity", check(held <= capacity))
    lat50, lat99, lat999 = v("lat_p50_us"), v("lat_p99_us"), v("lat_p999_us")
    add("Latency", f"enqueue→start, {values.get('lat_jobs', '?')} jobs ~1 ms apart: p50", us(lat50) + floors(lat50), "≤ 200 µs", check(lat50 is not None and lat50 <= 200))
    add("Latency", "enqueue→start: p99", us(lat99), "≤ 1 ms", check(lat99 is not None and lat99 <= 1000))
    add("Latency", "enqueue→start: p99.9 / max", f"{us(lat999)} / {us(v('lat_max_us'))}", "", "")
    late50, late99 = v("late_p50_ms"), v("late_p99_ms")
    add("Lateness", f"{values.get('late_jobs', '?')} delayed jobs: start − due p50", ms(late50), "", "")
    add("Lateness", "start − due p99 / max / min", f"{ms(late99)} / {ms(v('late_max_ms'))} / {ms(v('late_min_ms'))}",
        "p99 ≤ 10 ms", check(late99 is not None and late99 <= 10))
    add("Memory", "worker RSS idle (of which anonymous)", f"{mb(rss_idle)} ({mb(v('rss_idle_anon_mb'))})", "≤ 20 MB",
        check(rss_idle is not None and rss_idle <= 20))
    # Flat: no growth over the second half of the drain (halfway sample vs the end), within 1 MB or 5 %.
    rss_mid = v("rss_mid_mb")
    flat = None if rss_mid is None or rss_after is None else rss_after - rss_mid <= max(1.0, rss_mid * 0.05)
    # The goal is ≤ 25 MB after 10M jobs; a --quick run drains fewer and says so.
    add("Memory", f"worker RSS halfway / after {rss_jobs:,} jobs",
        f"{mb(rss_mid)} / {mb(rss_after)} (peak {mb(v('rss_peak_mb'))}; anonymous {mb(v('rss_after_anon_mb'))})",
        "≤ 25 MB, flat", check(None if flat is None else flat and rss_after <= 25)
        + ("" if rss_jobs >= 10_000_000 or rss_after is None else f" (only {rss_jobs:,} jobs, not 10M)"))
    rss_timeout = v("rss_timeout_after_mb")
    add("Memory", f"worker RSS after {int(v('rss_timeout_jobs') or 0):,} jobs with --task-timeout 600", mb(rss_timeout),
        "≤ 25 MB", check(None if rss_timeout is None else rss_timeout <= 25))
    requested = values.get("peers", "celery,dramatiq,rq").split(",") if "peers" in values else ["celery", "dramatiq", "rq"]
    requested = [p for p in requested if p]
    sidekiq, sidekiq_rel = v("sidekiq_per_s"), v("sidekiq_reliable_per_s")
    sidekiq_enq = v("sidekiq_enqueue_per_s")
    if quick:
        add("Peers", "Celery / Dramatiq / RQ / Sidekiq", "skipped (--quick)", "", "")
    elif not requested:
        add("Peers", "Celery / Dramatiq / RQ / Sidekiq", "skipped (--skip-peers)", "", "")
    python_peers = (("celery", "Celery prefork -c 2", celery), ("dramatiq", "Dramatiq -p 2 -t 4", dramatiq),
                    ("rq", "RQ SimpleWorker", rq))
    for system, title, peer in python_peers:
        if quick or system not in requested:
            continue
        if peer is None:
            add("Peers", title, "not measured (see the log above)", "", "")
        else:
            tasks = f"{int(v(f'{system}_tasks') or 0):,}"
            add("Peers", f"{title}, {tasks} no-op tasks", f"{rate(peer)} (enqueue {rate(v(f'{system}_enqueue_per_s'))})", "", "")
    if not quick and "sidekiq" in requested:
        versions = values.get("sidekiq_versions", "")
        sk_version = versions.split(",")[0].replace("sidekiq-", "Sidekiq ") if versions else "Sidekiq"
        configs = sorted(
            {k[len("sidekiq_"):-len("_per_s")] for k in values
             if k.startswith(("sidekiq_basic_c", "sidekiq_reliable_c")) and k.endswith("_per_s")
             and not k.endswith(("_wall_per_s", "_enqueue_per_s"))},
            key=lambda k: (k.split("_c")[0] != "basic", int(k.split("_c")[1])))
        if not configs:
            add("Peers", sk_version, "not measured (see the log above)", "", "")
        for cfg in configs:
            fetch, c = cfg.split("_c")
            name = "BasicFetch" if fetch == "basic" else "gitlab ReliableFetch"
            best = ((fetch == "basic" and values.get("sidekiq_best_concurrency") == c)
                    or (fetch == "reliable" and values.get("sidekiq_reliable_best_concurrency") == c))
            tasks = f"{int(v(f'sidekiq_{cfg}_tasks') or 0):,}"
            extra = v(f"sidekiq_{cfg}_extra_runs")
            add("Peers", f"{sk_version} {name} -c {c}, {tasks} no-op jobs{' ← best' if best else ''}",
                f"{rate(v(f'sidekiq_{cfg}_per_s'))} (from process start {rate(v(f'sidekiq_{cfg}_wall_per_s'))}; "
                f"push_bulk {rate(v(f'sidekiq_{cfg}_enqueue_per_s'))})"
                + (f"; {extra:,.0f} jobs ran twice" if extra else ""), "", "")
    ratio = lambda a, b: ("—" if not a or not b else f"{a / b:,.1f}×" if a / b >= 1  # noqa: E731
                          else f"{a / b:.2f}×" if a / b >= 0.1 else f"{a / b:.4f}×")
    if drain:
        for name, peer in (("Celery", celery), ("Dramatiq", dramatiq), ("RQ", rq),
                           ("Sidekiq (BasicFetch, best concurrency)", sidekiq),
                           ("Sidekiq (gitlab ReliableFetch, best concurrency)", sidekiq_rel)):
            if peer:
                add("Ratio", f"our drain vs {name}", ratio(drain, peer), "", "")
        add("Ratio", "our drain vs Redis RPOP -P 16", ratio(drain, rpop16), "", "")
    if enqueue:
        add("Ratio", "our enqueue (scopes of 100) vs Redis LPUSH -P 16", ratio(enqueue, lpush16), "", "")
        if celery:
            add("Ratio", "our enqueue vs Celery's", ratio(enqueue, v("celery_enqueue_per_s")), "", "")
        if sidekiq_enq:
            add("Ratio", "our enqueue vs Sidekiq's push_bulk (slices of 1,000)", ratio(enqueue, sidekiq_enq), "", "")
    if sidekiq or sidekiq_rel:
        add("Ratio", "Sidekiq drain (BasicFetch / ReliableFetch) vs Redis RPOP -P 16",
            f"{ratio(sidekiq, rpop16)} / {ratio(sidekiq_rel, rpop16)}", "", "")

    if values.get("mode") == "peers":  # --only-peers: Redis's ceiling and the peers, nothing of ours
        rows = [r for r in rows if r[0] in ("Redis", "Peers", "Ratio")]
    if values.get("mode") == "scaling":  # --only-scaling: Redis's ceiling, then the scaling tables
        rows = [r for r in rows if r[0] == "Redis"]
    widths = [max(len(str(r[i])) for r in rows + [("", "measurement", "result", "goal", "status")]) for i in range(5)]
    header = ("", "measurement", "result", "goal", "status")
    lines = ["| " + " | ".join(str(c).ljust(w) for c, w in zip(header, widths)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |")
    table = "\n".join(lines)

    only_peers = values.get("mode") in ("peers", "scaling")  # --only-peers / --only-scaling: no main Airlock figures

    def field(x, fmt="{:.0f}"):
        return "skipped" if x is None and (quick or only_peers) else ("na" if x is None else fmt.format(x))

    def peer_field(system, x):
        """skipped: not asked for (--quick, --skip-peers, --peers); na: asked for, not measured."""
        return "skipped" if quick or system not in requested else field(x)

    last = ("bench: drain_per_s={} enqueue_per_s={} latency_p50_us={} latency_p99_us={} lateness_p99_ms={} "
            "rss_idle_mb={} rss_after_mb={} celery_drain_per_s={} dramatiq_drain_per_s={} redis_lpush_p16_per_s={} "
            "sidekiq_drain_per_s={} sidekiq_reliable_drain_per_s={} sidekiq_enqueue_per_s={} redis_lpush_c1_p50_us={}").format(
        field(drain), field(enqueue), field(lat50, "{:.0f}"), field(lat99, "{:.0f}"), field(late99, "{:.2f}"),
        field(rss_idle, "{:.1f}"), field(rss_after, "{:.1f}"),
        peer_field("celery", celery), peer_field("dramatiq", dramatiq), field(lpush16),
        peer_field("sidekiq", sidekiq), peer_field("sidekiq", sidekiq_rel), peer_field("sidekiq", sidekiq_enq), field(rt50, "{:.0f}"))
    tables = scaling_tables(values)
    last += " " + scaling_summary(values, tables)
    # bench/observability.sh (full runs): ratios to the plain drain's medians.
    obs_missing = "skipped" if values.get("obs_skipped") else "na"
    last += " " + " ".join(
        f"observability_{k}={values.get('obs_' + k, obs_missing)}"
        for k in ("metrics_rate_vs_plain", "metrics_cpu_vs_plain", "traced_rate_vs_plain", "traced_cpu_vs_plain"))
    scaling_lines = []
    for t in tables:
        scaling_lines += ["", f"{t['title']}", f"command: {t['command']}"] + md_table(t["columns"], t["rows"])

    report = {
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "mode": values.get("mode"),
        "machine": machine(),
        "load_average_before": values.get("load_before"),
        "load_average_after": values.get("load_after"),
        "summary": last[len("bench: "):],
        "results": {k: (float(x) if x.replace(".", "", 1).replace("-", "", 1).isdigit() else x) for k, x in values.items()},
        "table": table.splitlines(),
        "scaling": None if not tables else {
            "scale": num(values, "sc_scale"),
            "seconds": num(values, "sc_seconds"),
            "section_seconds": {k[len("sc_seconds_"):]: num(values, k) for k in values if k.startswith("sc_seconds_")},
            "redis_lpush_per_s": v("redis_lpush_per_s"),
            "best_config": values.get("sc_best_config"),
            "capacity_per_s": num(values, "sc_capacity_per_s"),
            "tables": tables,
            "text": scaling_lines[1:],
        },
    }
    tmp = out_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(report, f, indent=2, ensure_ascii=False)
        f.write("\n")
    os.replace(tmp, out_path)

    print()
    print(f"Airlock bench ({values.get('mode')}), load average before/after: {values.get('load_before')} / {values.get('load_after')}")
    print(table)
    if tables:
        print()
        print(f"Scaling tables (BENCH_SCALE={values.get('sc_scale')}; the section took {values.get('sc_seconds', '?')} s; "
              f"Redis LPUSH -P 16 ceiling of this run: {rate(lpush16)}):")
        print("\n".join(scaling_lines))
    print(f"results: {out_path}")
    print(last)


if __name__ == "__main__":
    main()
