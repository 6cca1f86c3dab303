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
    ref_p50 = med(col(sizes[0], "p50_ms"))
    last = {}
    for n in sizes:
        fill = [n / float(r["fill_s"]) for r in by[n] if float(r["fill_s"]) > 0]
        disk = [float(r["disk_kib"]) / n for r in by[n]]
        rss = [float(r["rss_kib"]) / 1024 for r in by[n]]
        p50, p99, during = col(n, "p50_ms"), col(n, "p99_ms"), col(n, "during_p99_ms")
        x50 = med(p50) / ref_p50 if ref_p50 else None
        x_during = med(during) / med(p99) if during and med(p99) else None
        last = {"n": n, "start": med(col(n, "start_s")), "x50": x50, "rss": med(rss), "x_during": x_during,
                "stats": med(col(n, "stats_s"))}
        fmt = lambda x: "–" if x is None else f"{x:.2f}"  # noqa: E731
        out.append(
            f"| {n:,} | {spread(fill, '{:.0f}')} | {spread(disk, '{:.1f}')} | {spread(col(n, 'start_s'), '{:.2f}')} "
            f"| {spread(col(n, 'count_ms'), '{:.0f}') if col(n, 'count_ms') else '–'} | {spread(rss, '{:.1f}')} "
            f"| {spread(p50, '{:.3f}')} | {spread(p99, '{:.3f}')} | {fmt(x50)} "
            f"| {spread(col(n, 'pass_ms'), '{:.0f}') if col(n, 'pass_ms') else '–'} "
            f"| {spread(col(n, 'during_n'), '{:.0f}')} | {spread(during, '{:.3f}') if during else '–'} "
            f"| {fmt(x_during)} | {spread(col(n, 'stats_s'), '{:.2f}')} | {spread(col(n, 'ls_s'), '{:.2f}')} |")
    lat = {label: [(n, med(col(n, key))) for n in sizes if col(n, key)]
           for label, key in (("p50", "p50_ms"), ("p99", "p99_ms"), ("p99 during eviction", "during_p99_ms"))}
    out += [""] + chart("store-size-hits", "pantry's hits by store size: latency", "stored entries", "ms", lat,
                        log_x=True)
    out += chart("store-size-start", "pantry's start to first hit by store size", "stored entries", "s",
                 {"pantry": [(n, med(col(n, "start_s"))) for n in sizes]}, log_x=True)
    out += chart("store-size-rss", "pantry's idle RSS by store size", "stored entries", "MiB",
                 {"pantry": [(n, med([float(r["rss_kib"]) / 1024 for r in by[n]])) for n in sizes]}, log_x=True)
    misses = []
    if last["start"] > 2:
        misses.append(f"start {last['start']:.2f} s")
    if last["x50"] is not None and last["x50"] > 1.2:
        misses.append(f"hit p50 {last['x50']:.2f}×")
    if last["rss"] > 64:
        misses.append(f"idle RSS {last['rss']:.1f} MiB")
    if last["x_during"] is not None and last["x_during"] > 2:
        misses.append(f"p99 during the pass {last['x_during']:.2f}×")
    if last["stats"] > 5:
        misses.append(f"`cache stats` {last['stats']:.2f} s")
    scope = "" if last["n"] >= 1_000_000 else f" (measured at {last['n']:,} entries; the targets are for 1M)"
    out += ["", f"Targets at 1M entries: {TARGETS}: {verdict(misses)}{scope}. A pass shorter than the hits' "
            "spacing has few or no hits during it; *hits during* says how many the p99 is of."]
    return out + [""]
