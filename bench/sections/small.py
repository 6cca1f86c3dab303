"""RESULTS.md section of the small workload: a cached manifest asked for many times (oha)."""
from collections import defaultdict

from sections.charts import chart
from sections.common import kinds, med, spread, verdict

SYSTEMS = ["direct", "pantry", "squid", "distribution"]
WHATS = [("digest", "by digest (`/v2/small/manifests/sha256:…`)"), ("tag", "by tag (`/v2/small/manifests/v1`)")]
TARGET_P50_MS = 1.0


def section(tables, meta):
    runs = defaultdict(list)  # (what, system, clients) -> rows
    for r in tables.get("small", []):
        runs[(r["what"], r["system"], int(r["clients"]))].append(r)
    if not runs:
        return []
    rows0 = tables["small"]
    secs = rows0[0].get("secs", "?")
    conns = sorted({k[2] for k in runs})
    reps = max(len(v) for v in runs.values())
    oha = meta.get("version_oha") or "oha"
    http = "/".join(sorted({r.get("http", "1.1") for r in rows0}))
    http = "HTTP/1.1 with keep-alive" if http == "1.1" else f"HTTP/{http}"
    out = ["## Many small requests: a cached manifest", "",
           "One OCI image manifest (a few hundred bytes) served by nginx, asked for by digest and by tag. Each "
           "system starts anew, one curl GET of each URL puts the manifest in its cache, then "
           f"`{oha}` asks for one URL for {secs} s (`-z {secs}s`) with {' and '.join(map(str, conns))} "
           f"connection(s) (`-c`), {http}, through the proxy (`-x`: one CONNECT and TLS "
           "handshake per connection, then requests inside the tunnel; distribution is asked directly, "
           "as a mirror), verifying the proxy's certificate (`--cacert`). "
           f"{reps} repetition{'s' if reps > 1 else ''}: medians, with min–max when they differ. "
           "*req/s* counts 2xx responses; *p50/p99* are oha's latency percentiles; *over direct* is the "
           "p50 minus direct's at the same connections; *upstream requests* are those nginx logged during "
           "the oha run (a cache that serves the manifest itself causes none); peak RSS is VmHWM of the "
           "proxy's processes since it started; CPU is the proxy's user + system time during the run. "
           "With 1 connection the latency is what one client waits; with more the 2-core machine is "
           "saturated (load generator, proxy and nginx share it) and latency is mostly queueing.", ""]
    for what, label in WHATS:
        keys = [k for k in runs if k[0] == what]
        if not keys:
            continue
        out += [f"### Manifest {label}", "",
                "| connections | system | req/s | × direct | p50 ms | p99 ms | p50 over direct ms | failed "
                "| upstream requests | peak RSS MiB | CPU s |",
                "|---:|---|---:|---:|---:|---:|---:|---:|---|---:|---:|"]
        for n in conns:
            direct = runs.get((what, "direct", n))
            d_rps = med([float(r["rps"]) for r in direct]) if direct else None
            d_p50 = med([float(r["p50_ms"]) for r in direct]) if direct else None
            for s in SYSTEMS:
                rows = runs.get((what, s, n))
                if not rows:
                    continue
                rps = [float(r["rps"]) for r in rows]
                p50 = [float(r["p50_ms"]) for r in rows]
                p99 = [float(r["p99_ms"]) for r in rows]
                ratio = f"{med(rps) / d_rps:.2f}" if d_rps else "–"
                over = "–" if d_p50 is None or s == "direct" else f"{med(p50) - d_p50:+.3f}"
                failed = sum(int(r["errors"]) for r in rows)
                total = failed + sum(int(r["ok"]) for r in rows)
                failed_s = "0" if not failed else f"{failed} of {total} ({error_kinds(rows)})"
                ups = spread([int(r["upstream_requests"]) for r in rows], "{:.0f}")
                if any(r["upstream_requests"] != "0" for r in rows):
                    ups += f" ({kinds(rows, 'upstream_kinds')})"
                rss = "–" if s == "direct" else spread([int(r["rss_kib"]) / 1024 for r in rows], "{:.0f}")
                cpu = "–" if s == "direct" else spread([float(r["cpu"]) for r in rows], "{:.1f}")
                out.append(f"| {n} | {s} | {spread(rps, '{:.0f}')} | {ratio} | {spread(p50, '{:.3f}')} "
                           f"| {spread(p99, '{:.2f}')} | {over} | {failed_s} | {ups} | {rss} | {cpu} |")
        out.append("")
        series = {s: [(n, med([float(r["rps"]) for r in runs[(what, s, n)]])) for n in conns if (what, s, n) in runs]
                  for s in SYSTEMS}
        out += chart(f"small-{what}-rps", f"Cached manifest {what.replace('digest', 'by digest').replace('tag', 'by tag')}: "
                     "requests/s", "connections", "req/s", series)
    out += target(runs, conns)
    return out


def error_kinds(rows):
    """'connection closed before message completed 35, operation was canceled 2', summed over rows"""
    total = {}
    for r in rows:
        for kv in r["error_kinds"].split(","):
            if "=" in kv:
                k, v = kv.rsplit("=", 1)
                total[k.replace("_", " ")] = total.get(k.replace("_", " "), 0) + int(v)
    return ", ".join(f"{k} {v}" for k, v in sorted(total.items(), key=lambda kv: -kv[1])) or "?"


def target(runs, conns):
    """pantry's p50 over direct's ≤ 1 ms for the cached manifest, at the fewest connections measured"""
    n = conns[0]
    parts, misses = [], []
    for what, _ in WHATS:
        pantry, direct = runs.get((what, "pantry", n)), runs.get((what, "direct", n))
        if not pantry or not direct:
            continue
        over = med([float(r["p50_ms"]) for r in pantry]) - med([float(r["p50_ms"]) for r in direct])
        parts.append(f"by {what} {over:+.3f} ms")
        if over > TARGET_P50_MS:
            misses.append(f"{over:.2f} ms by {what}")
    failed = [r for (what, s, _), rows in runs.items() if s == "pantry" for r in rows if r["errors"] != "0"]
    if failed:  # a latency bought with failed requests is no latency met
        misses.append(f"{sum(int(r['errors']) for r in failed)} failed requests ({error_kinds(failed)})")
    if not parts:
        return []
    return [f"Target: pantry's p50 for a cached manifest ≤ {TARGET_P50_MS:g} ms over direct's "
            f"({n} connection{'s' if n > 1 else ''}): {verdict(misses)}. pantry's p50 over direct's: "
            f"{', '.join(parts)}.", ""]
