#!/usr/bin/env python3
"""Turns bench/run.sh's raw results into bench/RESULTS.md (printed to stdout).

    report.py WORK_DIR [NOTES_MD]

WORK_DIR/meta: key=value lines (machine, versions, mode, elapsed time per workload).
WORK_DIR/results/*.tsv: one file per table a workload wrote, a header line naming the columns,
then one row per measurement. Each workload's section is sections/WORKLOAD.py's
section(tables, meta), tables mapping each TSV's stem to its rows (dicts of strings).
"""
import csv
import importlib
import os
import sys

from sections.common import med

ORDER = ["warm", "cold", "image", "small", "ageing", "store-size", "handshakes", "fleet"]


def load(work):
    meta = {}
    for line in open(os.path.join(work, "meta")):
        if "=" in line:
            k, v = line.rstrip("\n").split("=", 1)
            meta[k] = v
    tables = {}
    results = os.path.join(work, "results")
    for name in sorted(os.listdir(results)):
        if name.endswith(".tsv"):
            with open(os.path.join(results, name), newline="") as f:
                tables[name[:-4]] = list(csv.DictReader(f, delimiter="\t"))
    return meta, tables


def header(meta, tables):
    g = meta.get
    loads = [float(r["load"]) for rows in tables.values() for r in rows if r.get("load")]
    build = (f"release build of commit `{g('git')}`"
             + (" with uncommitted changes" if g("git_dirty") else ""))
    if g("pantry_bin_given"):
        build = f"the binary given with --pantry-bin, built from commit `{g('git')}`"
    versions = [f"pantry {g('version_pantry', '?').replace('pantry ', '')} ({build})"]
    for key, name in (("direct", "nginx"), ("squid", "squid"), ("distribution", "distribution"),
                      ("mitmproxy", "mitmproxy")):
        if g(f"version_{key}"):
            versions.append(f"{name} {g(f'version_{key}').replace('nginx/', '').replace('Version ', '')}")
    elapsed = ", ".join(f"{w} {int(g(f'elapsed_{w}')) // 60} min" for w in ORDER if g(f"elapsed_{w}"))
    noise = (f" The 1-minute load average when a measurement started ranged from {min(loads):.1f} to "
             f"{max(loads):.1f} (median {med(loads):.1f})." if loads else "")
    return [
        "# Benchmarks: pantry side by side with its peers", "",
        f"Written by `bench/run.sh {g('args', '')}` ({g('mode')} mode, {g('reps')} repetition(s)) on "
        f"{g('date')}, in {g('elapsed', '?')} ({elapsed}). Every number below comes from that one run, all "
        "systems side by side on the same machine; raw rows and logs were in `bench/work/` (not "
        "committed). How the benchmark works: [README.md](README.md).", "",
        f"**Machine**: {g('nproc')} CPUs ({g('cpu')}), {g('mem')} RAM, {g('kernel')}, {g('os')}. Noisy "
        f"and shared: read ratios and medians, not single timings.{noise}", "",
        f"**Versions**: {'; '.join(versions)}; clients {g('curl')}"
        + (f", {g('version_oha')}" if g("version_oha") else "") + ".", "",
    ]


def main():
    work = sys.argv[1]
    meta, tables = load(work)
    lines = header(meta, tables)
    failures = os.path.join(work, "results", "failures.txt")
    if os.path.exists(failures):
        lines += ["## Failed measurements", "", "These went wrong; the tables below count them as they were:", ""]
        lines += [f"- **{w}**: {what}" for w, what in (line.rstrip("\n").split("\t", 1) for line in open(failures))]
        lines.append("")
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    for w in ORDER:
        if w in meta.get("workloads", "").split(","):
            lines += importlib.import_module(f"sections.{w.replace('-', '_')}").section(tables, meta)
    lines += configurations(meta)
    if meta.get("note") or len(sys.argv) > 2:
        lines += ["## Notes", ""]
        if meta.get("note"):
            lines += [meta["note"], ""]
        if len(sys.argv) > 2:
            lines += [open(sys.argv[2]).read().strip(), ""]
    print("\n".join(lines))


def configurations(meta):
    g = meta.get
    return [
        "## Configurations", "",
        "- **direct / limit**: curl (or the workload's client) straight to nginx, `--resolve registry.test:PORT:127.0.0.1`, "
        "trusting the upstream test CA.",
        "- **pantry**: `pantry --listen 127.0.0.1:PORT --cache-dir <fresh> --certs-dir <kept> --upstream-ca "
        "testca.pem --intercept registry.test:PORT --resolve registry.test:PORT:127.0.0.1` (defaults "
        "otherwise; PANTRY_LOG=info); clients use it as their proxy and trust its CA.",
        "- **squid**: `squid -N -f conf` after `squid -z`, one worker, `http_port … ssl-bump "
        "generate-host-certificates=on` with its own CA, `ssl_bump peek step1` + `bump all`, "
        "`sslcrtd_program security_file_certgen -M 4MB`, `tls_outgoing_options cafile=testca.pem`, "
        f"`hosts_file` for the test names, `collapsed_forwarding on`, `cache_mem {g('squid_cache_mem')}`, "
        f"`maximum_object_size_in_memory {g('squid_mem_obj')}`, `maximum_object_size 4 GB`, "
        f"`cache_dir {g('squid_cache_dir')} … 8192 16 256`, `read_ahead_gap {g('squid_read_ahead')}`, "
        "`refresh_pattern . 1440 100% 10080 override-expire ignore-no-store ignore-private` (blob URLs: a "
        "year), fixtures back-dated 3 days, `pinger_enable off`, `shutdown_lifetime 1 seconds`.",
        "- **distribution**: `docker-registry serve` with `proxy: remoteurl: https://registry.test:PORT`, "
        "TLS with the test leaf, filesystem storage (fresh), in-memory blob descriptor cache, "
        "`SSL_CERT_FILE=testca.pem`, in a mount namespace whose /etc/hosts names registry.test; clients "
        "ask it directly (a mirror, not a proxy).",
        "- **mitmproxy**: `mitmdump -q --set ssl_verify_upstream_trusted_ca=testca.pem "
        "--set connection_strategy=lazy` (handshake workload only; it does not cache).",
        "",
    ]


if __name__ == "__main__":
    main()
