"""RESULTS.md section of the cold workload: one blob no cache has, 1/8/32 clients at once."""
from collections import defaultdict

from sections.charts import chart
from sections.common import kinds, med, size_name, spread, verdict

SYSTEMS = ["direct", "pantry", "squid", "distribution"]
TARGET_RATIO, TARGET_RSS_MIB = 1.05, 40


def section(tables, meta):
    runs = defaultdict(list)  # (upstream, system, clients) -> rows
    for r in tables.get("cold", []):
        runs[(r["upstream"], r["system"], int(r["clients"]))].append(r)
    if not runs:
        return []
    mibs = {r["upstream"]: int(r["mib"]) for r in tables["cold"]}
    out = ["## Cold: a blob no cache has, 1 to 32 clients at once", "",
           f"Every measurement starts the system anew with an empty cache; N curl clients start together and "
           f"every body is hashed and compared with the digest. The upstream serves the blob unthrottled "
           f"from local disk (there the machine is the bottleneck: every client's TLS and hashing cost CPU on 2 "
           f"cores), or throttled to `limit_rate {meta.get('rate')}` per connection (there the upstream is, even "
           f"for 32 clients, so a proxy's crowd should take as long as one client). *× direct* is the "
           "wall time over direct's with 1 client on the same upstream; *× own 1 client* over the same "
           "system's 1-client time; *× direct, same clients* over direct's with as many clients (on an "
           "unthrottled upstream the clients' own bytes, not the upstream, set the pace on 2 cores); "
           "*upstream GETs* and *MiB* from nginx's access log; *slowest upstream GET* "
           "is nginx's request time of the longest one (a proxy's own fetch); peak RSS is VmHWM sampled "
           "every 0.2 s summed over the proxy's processes; CPU is the proxy's user + system time.", ""]
    for upstream in ("unthrottled", "throttled"):
        ups = sorted({k[2] for k in runs if k[0] == upstream})
        if not ups:
            continue
        reps = max(len(v) for k, v in runs.items() if k[0] == upstream)
        label = (f"{size_name(mibs[upstream])} blob, unthrottled upstream" if upstream == "unthrottled"
                 else f"{size_name(mibs[upstream])} blob, upstream throttled to {meta.get('rate')}/s per connection")
        out += [f"### {label} ({reps} repetition{'s' if reps > 1 else ''})", "",
                "| clients | system | wall s | × direct 1 client | × direct, same clients | × own 1 client | upstream GETs | upstream MiB "
                "| slowest upstream GET s | verified | peak RSS MiB | CPU s | other upstream requests |",
                "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        direct1 = runs.get((upstream, "direct", 1))
        for n in ups:
            for s in SYSTEMS:
                rows = runs.get((upstream, s, n))
                if not rows:
                    continue
                walls = [float(r["wall"]) for r in rows]
                own1 = runs.get((upstream, s, 1))
                r_own = f"{med(walls) / med([float(r['wall']) for r in own1]):.2f}" if own1 else "–"
                r_dir = f"{med(walls) / med([float(r['wall']) for r in direct1]):.2f}" if direct1 else "–"
                direct_n = runs.get((upstream, "direct", n))
                r_dir_n = f"{med(walls) / med([float(r['wall']) for r in direct_n]):.2f}" if direct_n else "–"
                ok = f"{min(int(r['verified']) for r in rows)}/{n}"
                rss = "–" if s == "direct" else spread([int(r["rss_kib"]) / 1024 for r in rows], "{:.0f}")
                cpu = "–" if s == "direct" else spread([float(r["cpu"]) for r in rows], "{:.1f}")
                out.append(
                    f"| {n} | {s} | {spread(walls, '{:.1f}')} | {r_dir} | {r_dir_n} | {r_own} "
                    f"| {spread([int(r['gets']) for r in rows], '{:.0f}')} "
                    f"| {spread([int(r['bytes']) / 1048576 for r in rows], '{:.0f}')} "
                    f"| {spread([float(r['slowest']) for r in rows], '{:.1f}')} | {ok} | {rss} | {cpu} "
                    f"| {kinds(rows, 'other')} |")
        out.append("")
        for key, label, unit, scale in (("wall", "wall time", "s", 1), ("rss_kib", "peak RSS", "MiB", 1 / 1024)):
            series = {s: [(n, med([float(r[key]) * scale for r in runs[(upstream, s, n)]]))
                          for n in ups if (upstream, s, n) in runs]
                      for s in SYSTEMS if not (s == "direct" and key == "rss_kib")}
            out += chart(f"cold-{upstream}-{key.split('_')[0]}", f"Cold {size_name(mibs[upstream])}, {upstream}: {label}",
                         "clients", unit, series)
    out += targets(runs)
    return out


def targets(runs):
    """pantry against its cold targets (see the text below)"""
    out = ["### pantry against its cold targets", "",
           f"1 client: ≤ {TARGET_RATIO:.2f}× direct with exactly 1 upstream GET. Several clients: 1 upstream GET, "
           f"peak RSS ≤ {TARGET_RSS_MIB} MiB, and, from the throttled upstream, ≤ {TARGET_RATIO:.2f}× its own "
           f"1-client time; from the unthrottled one (where every client's bytes cost CPU on this 2-core machine) "
           f"≤ {TARGET_RATIO:.2f}× direct with as many clients. Every body verified.", "",
           "| upstream | clients | upstream GETs (max) | × direct 1 client | × direct, same clients | × own 1 client "
           "| peak RSS MiB (max) | verdict |",
           "|---|---:|---:|---:|---:|---:|---:|---|"]
    for (upstream, s, n), rows in sorted(runs.items()):
        if s != "pantry":
            continue
        wall = med([float(r["wall"]) for r in rows])
        ratio = lambda ref: wall / med([float(r["wall"]) for r in ref]) if ref else None  # noqa: E731
        x_dir = ratio(runs.get((upstream, "direct", 1)))
        x_dir_n = ratio(runs.get((upstream, "direct", n)))
        x_own = ratio(runs.get((upstream, "pantry", 1)))
        gets = max(int(r["gets"]) for r in rows)
        rss = max(int(r["rss_kib"]) for r in rows) / 1024
        misses = []
        if gets != 1:
            misses.append(f"{gets} upstream GETs")
        if n == 1 and x_dir is not None and x_dir > TARGET_RATIO:
            misses.append(f"{x_dir:.2f}× direct")
        if n > 1 and upstream == "throttled" and x_own is not None and x_own > TARGET_RATIO:
            misses.append(f"{x_own:.2f}× own 1-client time")
        if n > 1 and upstream == "unthrottled" and x_dir_n is not None and x_dir_n > TARGET_RATIO:
            misses.append(f"{x_dir_n:.2f}× direct with {n} clients")
        if n > 1 and rss > TARGET_RSS_MIB:
            misses.append(f"RSS {rss:.0f} MiB")
        if any(int(r["verified"]) != n for r in rows):
            misses.append("unverified bodies")
        fmt = lambda x: "–" if x is None else f"{x:.2f}"  # noqa: E731
        out.append(f"| {upstream} | {n} | {gets} | {fmt(x_dir)} | {fmt(x_dir_n)} | {fmt(x_own)} | {rss:.0f} "
                   f"| {verdict(misses)} |")
    return out + [""]
