"""RESULTS.md section of the store-size workload: what start, memory, hits, eviction and the cache
tools cost as the number of stored entries grows."""
from sections.charts import chart
from sections.common import med, spread, verdict

TARGETS = "start ≤ 2 s, hit p50 ≤ 1.2× the 1k store's, idle RSS ≤ 64 MiB, hits during an eviction pass p99 ≤ 2× idle, `cache stats` ≤ 5 s"


def section(tables, meta):
    rows = tables.get("store-size", [])
    if not rows:
        return []
    sizes = sorted({int(r["entries"]) for r in rows})
    by = {n: [r for r in rows if int(r["entries"]) == n] for n in sizes}
    col = lambda n, k: [float(r[k]) for r in by[n] if r.get(k) not in (None, "")]  # noqa: E731
    dash = lambda xs, f: spread(xs, f) if xs else "–"  # noqa: E731
    out = ["## Store size: cost by the number of stored entries", "",
           "Distinct 1 KiB blobs put in through the proxy (each a miss pantry fetched, verified and committed), "
           "then pantry measured on that store: start until the first hit, resident memory once it has counted "
           "the store, oha at 1 connection over random entries (all hits, no upstream request), one eviction pass "
           "(restarted with a cap the store just fits, then one more blob written through it) and the hits "
           "served while it ran (on the newer half of the entries, which the pass keeps), and the cache "
           "tools on the stopped store.", "",
           "| entries | fill entries/s | disk KiB/entry | start → first hit s | counted ms | idle RSS MiB "
           "| hit p50 ms | hit p99 ms | × smallest (p50) | eviction pass ms | hits during | p99 during ms "
           "| × idle (p99) | `cache stats` s | `cache ls` s |",
           "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    ref_p50 = med(col(sizes[0], "p50_ms")) if col(sizes[0], "p50_ms") else None
    last = {}
    for n in sizes:
        fill = [n / x for x in col(n, "fill_s") if x > 0]
        disk = [x / n for x in col(n, "disk_kib")]
        rss = [x / 1024 for x in col(n, "rss_kib")]
        p50, p99, during = col(n, "p50_ms"), col(n, "p99_ms"), col(n, "during_p99_ms")
        x50 = med(p50) / ref_p50 if ref_p50 and p50 else None
        x_during = med(during) / med(p99) if during and p99 and med(p99) else None
        last = {"n": n, "start": med(col(n, "start_s")) if col(n, "start_s") else None, "x50": x50,
                "rss": med(rss) if rss else None, "x_during": x_during,
                "stats": med(col(n, "stats_s")) if col(n, "stats_s") else None}
        fmt = lambda x: "–" if x is None else f"{x:.2f}"  # noqa: E731
        out.append(
            f"| {n:,} | {dash(fill, '{:.0f}')} | {dash(disk, '{:.1f}')} | {dash(col(n, 'start_s'), '{:.2f}')} "
            f"| {dash(col(n, 'count_ms'), '{:.0f}')} | {dash(rss, '{:.1f}')} "
            f"| {dash(p50, '{:.3f}')} | {dash(p99, '{:.3f}')} | {fmt(x50)} "
            f"| {dash(col(n, 'pass_ms'), '{:.0f}')} | {dash(col(n, 'during_n'), '{:.0f}')} | {dash(during, '{:.3f}')} "
            f"| {fmt(x_during)} | {dash(col(n, 'stats_s'), '{:.2f}')} | {dash(col(n, 'ls_s'), '{:.2f}')} |")
    lat = {label: [(n, med(col(n, key))) for n in sizes if col(n, key)]
           for label, key in (("p50", "p50_ms"), ("p99", "p99_ms"), ("p99 during eviction", "during_p99_ms"))}
    out += [""] + chart("store-size-hits", "pantry's hits by store size: latency", "stored entries", "ms", lat,
                        log_x=True)
    out += chart("store-size-start", "pantry's start to first hit by store size", "stored entries", "s",
                 {"pantry": [(n, med(col(n, "start_s"))) for n in sizes if col(n, "start_s")]}, log_x=True)
    out += chart("store-size-rss", "pantry's idle RSS by store size", "stored entries", "MiB",
                 {"pantry": [(n, med(col(n, "rss_kib")) / 1024) for n in sizes if col(n, "rss_kib")]}, log_x=True)
    misses = []
    checks = [("start", lambda v: v > 2, lambda v: f"start {v:.2f} s"),
              ("x50", lambda v: v > 1.2, lambda v: f"hit p50 {v:.2f}×"),
              ("rss", lambda v: v > 64, lambda v: f"idle RSS {v:.1f} MiB"),
              ("x_during", lambda v: v > 2, lambda v: f"p99 during the pass {v:.2f}×"),
              ("stats", lambda v: v > 5, lambda v: f"`cache stats` {v:.2f} s")]
    for key, missed, say in checks:
        value = last.get(key)
        if value is None:
            misses.append(f"{key.replace('x_during', 'hits during the pass').replace('x50', 'hit p50')} not measured")
        elif missed(value):
            misses.append(say(value))
    scope = "" if last["n"] >= 1_000_000 else f" (measured at {last['n']:,} entries; the targets are for 1M)"
    out += ["", f"Targets at 1M entries: {TARGETS}: {verdict(misses)}{scope}. A pass shorter than the hits' "
            "spacing has few or no hits during it; *hits during* says how many the p99 is of."]
    return out + [""]
