"""RESULTS.md section of the ageing workload: by-tag hits after many revalidations vs a fresh store."""
from sections.common import med, spread, verdict

TARGET = 1.1


def section(tables, meta):
    rows = tables.get("ageing", [])
    if not rows:
        return []
    by = {p: [r for r in rows if r["phase"] == p] for p in ("fresh", "aged")}
    n = max((int(r["revalidations"]) for r in by["aged"]), default=0)
    out = ["## Ageing: a tag's hit path after many revalidations", "",
           f"The small workload's manifest by tag through pantry with `tag_ttl = \"0\"`: {n:,} requests "
           "(8 connections), each a revalidation that rewrites the tag's record. Then pantry restarts on that "
           "store with the default TTL and oha asks for the tag at 1 connection: every answer is a hit. "
           "*fresh* is the same on a store that saw one GET. *records* is what pantry's mutable records "
           "take on disk afterwards.", "",
           "| store | hits/s | p50 ms | p99 ms | × fresh (p50) | × fresh (p99) | records (files, bytes) |",
           "|---|---:|---:|---:|---:|---:|---|"]
    ref = {k: med([float(r[k]) for r in by["fresh"]]) if by["fresh"] else None for k in ("p50_ms", "p99_ms")}
    ratios = {}
    for phase in ("fresh", "aged"):
        rs = by[phase]
        if not rs:
            continue
        p50, p99 = [float(r["p50_ms"]) for r in rs], [float(r["p99_ms"]) for r in rs]
        x50 = med(p50) / ref["p50_ms"] if ref["p50_ms"] else None
        x99 = med(p99) / ref["p99_ms"] if ref["p99_ms"] else None
        ratios[phase] = (x50, x99)
        files = "/".join(sorted({r["record_files"] for r in rs}))
        size = "/".join(sorted({r["record_bytes"] for r in rs}))
        fmt = lambda x: "–" if x is None else f"{x:.2f}"  # noqa: E731
        out.append(f"| {phase} | {spread([float(r['rps']) for r in rs], '{:.0f}')} | {spread(p50, '{:.3f}')} "
                   f"| {spread(p99, '{:.3f}')} | {fmt(x50)} | {fmt(x99)} | {files} files, {size} bytes |")
    if "aged" in ratios and all(x is not None for x in ratios["aged"]):
        x50, x99 = ratios["aged"]
        misses = [f"p50 {x50:.2f}×"] if x50 > TARGET else []
        misses += [f"p99 {x99:.2f}×"] if x99 > TARGET else []
        out += ["", f"Target: aged ≤ {TARGET:.1f}× fresh: {verdict(misses)} (p50 {x50:.2f}×, p99 {x99:.2f}×)"]
    return out + [""]
