#!/usr/bin/env python3
"""Turns bench/run.sh's raw results into bench/RESULTS.md (printed to stdout).

    report.py META RESULTS_TSV [NOTES_MD]

META: key=value lines (machine, versions, mode). RESULTS_TSV: one line per measurement:
system MiB clients rep wall_s upstream_gets upstream_bytes verified rss_kib nproc other_requests
loadavg (1-minute load average when the measurement started) cpu_s (the proxy's CPU seconds)
slowest_get_s (nginx's request_time of the longest blob GET)
"""
import statistics
import sys
from collections import defaultdict

SYSTEMS = ["direct", "pantry", "squid", "distribution"]
TARGET_GETS, TARGET_RATIO, TARGET_RSS_MIB = 1, 1.05, 40


def load(meta_path, tsv_path):
    meta = {}
    for line in open(meta_path):
        if "=" in line:
            k, v = line.rstrip("\n").split("=", 1)
            meta[k] = v
    runs = defaultdict(list)  # (system, mib, clients) -> [row]
    for line in open(tsv_path):
        f = line.rstrip("\n").split("\t")
        if len(f) < 14:
            continue
        runs[(f[0], int(f[1]), int(f[2]))].append({
            "rep": int(f[3]), "wall": float(f[4]), "gets": int(f[5]), "bytes": int(f[6]),
            "ok": int(f[7]), "rss": int(f[8]) / 1024, "nproc": int(f[9]), "other": f[10],
            "load": float(f[11]), "cpu": float(f[12]), "slowest": float(f[13])})
    return meta, runs


def med(xs):
    return statistics.median(xs)


def spread(xs, fmt):
    """median, and (min–max) when the repetitions differ"""
    m = fmt.format(med(xs))
    lo, hi = fmt.format(min(xs)), fmt.format(max(xs))
    return m if len(xs) == 1 or lo == hi else f"{m} ({lo}–{hi})"


def other_requests(rows):
    """'HEAD-blob-200 16, GET-/v2/-200 39 (38–46)': each kind's count, median and spread over rows"""
    counts = [dict(kv.split("=") for kv in r["other"].split(",")) if r["other"] != "-" else {} for r in rows]
    kinds = sorted({k for c in counts for k in c}, key=lambda k: (not k.startswith("HEAD"), k))
    if not kinds:
        return "none"
    return ", ".join(f"{k} {spread([int(c.get(k, 0)) for c in counts], '{:.0f}')}" for k in kinds)


def size_name(mib):
    return f"{mib // 1024} GiB" if mib % 1024 == 0 else f"{mib} MiB"


def table(mib, runs, systems, clients):
    reps = max(len(v) for k, v in runs.items() if k[1] == mib)
    out = [f"## {size_name(mib)} blob, cold ({reps} repetition{'s' if reps > 1 else ''})", "",
           "| clients | system | wall s | × own 1 client | × direct 1 client | upstream GETs "
           "| upstream MiB | slowest upstream GET s | verified | peak RSS MiB | CPU s "
           "| other upstream requests |",
           "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    direct1 = runs.get(("direct", mib, 1))
    for n in clients:
        for s in systems:
            rows = runs.get((s, mib, n))
            if not rows:
                continue
            walls = [r["wall"] for r in rows]
            own1 = runs.get((s, mib, 1))
            r_own = f"{med(walls) / med([r['wall'] for r in own1]):.2f}" if own1 else "–"
            r_dir = f"{med(walls) / med([r['wall'] for r in direct1]):.2f}" if direct1 else "–"
            ok = f"{min(r['ok'] for r in rows)}/{n}" + ("" if len(rows) == 1 else f" (worst of {len(rows)})")
            rss = "–" if s == "direct" else spread([r["rss"] for r in rows], "{:.0f}")
            cpu = "–" if s == "direct" else spread([r["cpu"] for r in rows], "{:.1f}")
            slow = spread([r["slowest"] for r in rows], "{:.1f}")
            other = other_requests(rows)
            out.append(f"| {n} | {s} | {spread(walls, '{:.1f}')} | {r_own} | {r_dir} "
                       f"| {spread([r['gets'] for r in rows], '{:.0f}')} "
                       f"| {spread([r['bytes'] / 1048576 for r in rows], '{:.0f}')} | {slow} | {ok} | {rss} | {cpu} "
                       f"| {other} |")
    return out


def targets(sizes, runs, clients):
    out = ["## pantry against its targets", "",
           f"Targets: {TARGET_GETS} upstream GET, wall time ≤ {TARGET_RATIO:.2f}× its own 1-client time, "
           f"peak RSS ≤ {TARGET_RSS_MIB} MiB; every body verified.", "",
           "| blob | clients | upstream GETs (max) | × own 1 client | peak RSS MiB (max) | verified | verdict |",
           "|---|---:|---:|---:|---:|---:|---|"]
    for mib in sizes:
        own1 = runs.get(("pantry", mib, 1))
        for n in clients:
            rows = runs.get(("pantry", mib, n))
            if not rows:
                continue
            gets = max(r["gets"] for r in rows)
            ratio = med([r["wall"] for r in rows]) / med([r["wall"] for r in own1]) if own1 else None
            rss = max(r["rss"] for r in rows)
            ok = all(r["ok"] == n for r in rows)
            misses = []
            if gets > TARGET_GETS:
                misses.append(f"{gets} upstream GETs")
            if ratio is not None and ratio > TARGET_RATIO:
                misses.append(f"{ratio:.2f}× own 1-client time")
            if rss > TARGET_RSS_MIB:
                misses.append(f"RSS {rss:.0f} MiB")
            if not ok:
                misses.append("unverified bodies")
            verdict = "meets all" if not misses else "misses: " + ", ".join(misses)
            out.append(f"| {size_name(mib)} | {n} | {gets} | {'–' if ratio is None else f'{ratio:.2f}'} "
                       f"| {rss:.0f} | {'all' if ok else 'NO'} | {verdict} |")
    return out


def main():
    meta, runs = load(sys.argv[1], sys.argv[2])
    systems = [s for s in SYSTEMS if any(k[0] == s for k in runs)]
    sizes = sorted({k[1] for k in runs})
    clients = sorted({k[2] for k in runs})
    g = meta.get
    loads = [r["load"] for rows in runs.values() for r in rows]
    build = (f"release build of the work tree at commit `{g('git')}`"
             + (" with uncommitted changes under src/" if g("git_dirty") else ""))
    if g("pantry_bin_given"):
        build = (f"the binary given with --pantry-bin, `{g('pantry_bin_given')}`; the repository's HEAD "
                 f"was `{g('git')}` during the run")
    lines = [
        "# Benchmark: concurrent cold pulls of one blob", "",
        f"Written by `bench/run.sh {g('args', '')}` ({g('mode')} mode) on {g('date')}, "
        f"in {g('elapsed', '?')}. Every number below comes from that run; "
        "raw rows and logs were in `bench/work/` (not committed). How the benchmark works: "
        "[README.md](README.md).", "",
        f"**Machine**: {g('nproc')} CPUs ({g('cpu')}), {g('mem')} RAM, {g('kernel')}, {g('os')}. "
        f"Noisy and shared: the 1-minute load average when a measurement started ranged from "
        f"{min(loads):.1f} to {max(loads):.1f} (median {med(loads):.1f}); read ratios and medians, "
        "not single timings.", "",
        f"**Versions**: pantry {g('version_pantry', '?').replace('pantry ', '')} ({build}); nginx {g('version_direct', '?').replace('nginx/', '')}; "
        f"squid {g('version_squid', '?').replace('Version ', '')} (squid-openssl); distribution "
        f"{g('version_distribution', '?').split()[-1]} (Debian docker-registry); clients {g('curl')}.", "",
        f"**Workload**: one random blob per size, served by nginx over TLS at "
        f"`/v2/bench/blobs/sha256:…` with `limit_rate {g('rate')}` per connection; N curl clients start "
        f"together, each body is hashed and compared with the digest. Every measurement starts the "
        f"system anew with an empty cache. Workloads (MiB:clients:repetitions): "
        f"{g('workloads', '?').replace(' ', ', ')}; the systems' order rotates per repetition.", "",
        "**Columns**: *wall s* from the start until the last client finished — median, (min–max) when "
        "repetitions differ; *× own 1 client* = median over that system's median with 1 client; "
        "*× direct 1 client* = median over the direct 1-client median (the reference); *upstream GETs* = "
        "blob GETs in nginx's access log; *upstream MiB* = body bytes nginx sent; *slowest upstream GET s* "
        "= nginx's request_time of the longest blob GET (a proxy's own fetch); *verified* = "
        "clients whose body hashed to the digest (worst repetition); *peak RSS* = VmHWM sampled every "
        "0.2 s, summed over the proxy's processes; *CPU s* = user + system CPU time of the proxy's processes; "
        "*other upstream requests* = METHOD-path-status=count.", "",
    ]
    for mib in sizes:
        lines += table(mib, runs, systems, clients) + [""]
    if "pantry" in systems:
        lines += targets(sizes, runs, clients) + [""]
    lines += [
        "## Configurations", "",
        "- **direct**: `curl --cacert testca.pem --resolve registry.test:PORT:127.0.0.1 https://registry.test:PORT/v2/bench/blobs/sha256:…`.",
        "- **pantry**: `pantry --listen 127.0.0.1:PORT --cache-dir <fresh> --certs-dir <kept> --upstream-ca "
        "testca.pem --intercept registry.test:PORT --resolve registry.test:PORT:127.0.0.1` (defaults "
        "otherwise; PANTRY_LOG=info); clients `curl -x http://127.0.0.1:PORT --cacert pantry-ca.pem`.",
        f"- **squid**: `squid -N -f conf` after `squid -z`, one worker, `http_port … ssl-bump "
        "generate-host-certificates=on` with its own CA, `ssl_bump peek step1` + `bump all`, "
        "`sslcrtd_program security_file_certgen -M 4MB` (db made with `-c`), "
        "`tls_outgoing_options cafile=testca.pem`, `hosts_file` mapping registry.test, "
        f"`collapsed_forwarding on`, `cache_mem {g('squid_cache_mem')}`, `maximum_object_size_in_memory "
        f"{g('squid_mem_obj')}`, `maximum_object_size 4 GB`, `cache_dir {g('squid_cache_dir')} … 8192 16 256`, "
        f"`read_ahead_gap {g('squid_read_ahead')}`, a `refresh_pattern` keeping blob URLs fresh for a "
        "year, `pinger_enable off` (aufs over ufs and rock: see README.md); clients `curl -x http://127.0.0.1:PORT --cacert squid-ca.pem`.",
        "- **distribution**: `docker-registry serve` with `proxy: remoteurl: https://127.0.0.1:PORT` "
        "(nginx answers `GET /v2/` with 200 `{}` and HEAD/GET on the blob path, which is all it asks for; "
        "127.0.0.1 because distribution resolves names with the system resolver and the benchmark may not "
        "edit /etc/hosts), TLS with the test leaf, filesystem storage (fresh), in-memory blob "
        "descriptor cache, `SSL_CERT_FILE=testca.pem`; clients fetch "
        "`https://127.0.0.1:MIRRORPORT/v2/bench/blobs/sha256:…` directly (a mirror, not a proxy).",
        "",
    ]
    if g("note") or len(sys.argv) > 3:
        lines += ["## Notes", ""]
        if g("note"):
            lines += [g("note"), ""]
        if len(sys.argv) > 3:
            lines += [open(sys.argv[3]).read().strip(), ""]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
