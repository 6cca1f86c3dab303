"""RESULTS.md section of the warm workload: one big blob from a warm cache, MB/s."""
from sections.common import kinds, med, size_name, spread, verdict

SYSTEMS = ["limit", "pantry", "pantry_verify", "squid", "distribution"]
TARGET = 0.90


def section(tables, meta):
    pulls, per_system = tables.get("warm", []), {r["system"]: r for r in tables.get("warm-system", [])}
    if not pulls:
        return []
    mib = int(pulls[0]["mib"])
    mbps = {s: [float(r["mbps"]) for r in pulls if r["system"] == s] for s in SYSTEMS}
    limit = med(mbps["limit"]) if mbps["limit"] else None
    squid = med(mbps["squid"]) if mbps["squid"] else None
    out = [f"## Warm: one {size_name(mib)} blob from a warm cache", "",
           "Each system starts anew; one verified pull fills its cache, then each timed pull is a fresh "
           "curl writing to /dev/null (the size is checked; hashing would cap the rate on 2 cores). *limit* is "
           "nginx serving the file from local disk over TLS: no proxy can beat it. *upstream requests* are "
           "those the timed pulls caused.", "",
           "| system | MB/s | × limit | × squid | pulls of the right size | upstream requests | peak RSS MiB | CPU s |",
           "|---|---:|---:|---:|---:|---|---:|---:|"]
    for s in SYSTEMS:
        xs = mbps[s]
        if not xs:
            continue
        sysrow = per_system.get(s, {})
        ok = sum(int(r["ok"]) for r in pulls if r["system"] == s)
        ratio = lambda ref: "–" if not ref else f"{med(xs) / ref:.2f}"  # noqa: E731
        ups = f"{sysrow.get('upstream_requests', '?')}" + (
            f" ({kinds([sysrow], 'upstream_kinds')})" if sysrow.get("upstream_requests", "0") != "0" else "")
        rss = "–" if s == "limit" else f"{int(sysrow.get('rss_kib', 0)) / 1024:.0f}"
        cpu = "–" if s == "limit" else sysrow.get("cpu", "?")
        primed = "" if sysrow.get("primed", "1") == "1" else " (priming pull FAILED)"
        name = "pantry, verify_reads" if s == "pantry_verify" else s
        out.append(f"| {name} | {spread(xs, '{:.0f}')} | {ratio(limit)} | {ratio(squid)} | {ok}/{len(xs)}{primed} "
                   f"| {ups} | {rss} | {cpu} |")
    if mbps["pantry"] and limit:
        r = med(mbps["pantry"]) / limit
        misses = [] if r >= TARGET else [f"{r:.2f}× limit"]
        if any(r["ok"] != "1" for r in pulls if r["system"] == "pantry"):
            misses.append("a pull of the wrong size")
        if per_system.get("pantry", {}).get("upstream_requests", "0") != "0":
            misses.append("upstream requests while warm")
        out += ["", f"Target: pantry ≥ {TARGET:.2f}× limit: {verdict(misses)} ({r:.2f}×"
                + (f", {med(mbps['pantry']) / squid:.1f}× squid)" if squid else ")")]
    return out + [""]
