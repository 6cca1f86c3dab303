"""RESULTS.md section of the image workload: a 25-layer image pulled with skopeo, cold then warm."""
from collections import defaultdict

from sections.common import kinds, med, spread, verdict

SYSTEMS = ["direct", "pantry", "squid", "distribution"]


def section(tables, meta):
    rows = tables.get("image", [])
    if not rows:
        return []
    by = defaultdict(list)
    for r in rows:
        by[(r["system"], r["pull"])].append(r)
    mem = defaultdict(list)
    for r in tables.get("image-system", []):
        mem[r["system"]].append(r)
    mib = int(rows[0]["image_bytes"]) / 1048576
    reps = max(len(v) for v in by.values())
    out = ["## A realistic image with skopeo, cold then warm", "",
           f"`skopeo copy docker://…/image:v1 dir:…` of a two-platform index whose amd64 manifest has 25 layers "
           f"from 2 KiB to 200 MiB ({mib:.0f} MiB of blobs in the repository, one platform pulled), unthrottled "
           f"upstream, {reps} repetition(s). Each system starts anew with an empty cache; the second pull "
           "follows at once (within every cache's freshness lifetime). *× direct* is the time over direct's "
           "for the same pull; *upstream requests* are all requests nginx logged during the pull.", "",
           "| pull | system | time s | × direct | pulled | upstream requests | upstream MiB | what was asked upstream "
           "| peak RSS MiB (both pulls) | CPU s (both pulls) |",
           "|---|---|---:|---:|---:|---:|---:|---|---:|---:|"]
    for pull in ("cold", "warm"):
        direct = by.get(("direct", pull))
        for s in SYSTEMS:
            rs = by.get((s, pull))
            if not rs:
                continue
            secs = [float(r["secs"]) for r in rs]
            x = f"{med(secs) / med([float(r['secs']) for r in direct]):.2f}" if direct else "–"
            ok = f"{sum(int(r['ok']) for r in rs)}/{len(rs)}"
            rss = "–" if s == "direct" else spread([int(r["rss_kib"]) / 1024 for r in mem[s]], "{:.0f}")
            cpu = "–" if s == "direct" else spread([float(r["cpu"]) for r in mem[s]], "{:.1f}")
            out.append(f"| {pull} | {s} | {spread(secs, '{:.1f}')} | {x} | {ok} "
                       f"| {spread([int(r['upstream_requests']) for r in rs], '{:.0f}')} "
                       f"| {spread([int(r['upstream_bytes']) / 1048576 for r in rs], '{:.0f}')} "
                       f"| {kinds(rs, 'upstream_kinds')} | {rss} | {cpu} |")
    warm = by.get(("pantry", "warm"), [])
    if warm:
        n = max(int(r["upstream_requests"]) for r in warm)
        misses = ([] if n == 0 else [f"{n} upstream requests"]) + (
            [] if all(r["ok"] == "1" for r in by[("pantry", "cold")] + warm) else ["a pull failed"])
        out += ["", f"Target: pantry's second pull makes 0 upstream requests within the tag TTL: {verdict(misses)}."]
    return out + [""]
