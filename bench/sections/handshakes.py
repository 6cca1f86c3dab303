"""RESULTS.md section of the handshakes workload: new host names per second (CONNECT + TLS + GET)."""
from collections import defaultdict

from sections.common import med, spread

SYSTEMS = ["limit", "pantry", "squid", "mitmproxy", "distribution"]
WHAT = {
    "limit": "curl → nginx: new TCP + TLS per name",
    "pantry": "CONNECT, leaf minted, TLS, upstream TLS",
    "squid": "CONNECT, ssl-bump leaf, TLS, upstream TLS",
    "mitmproxy": "CONNECT, leaf, TLS, upstream TLS",
    "distribution": "one server and certificate, new connections: TLS per request (mirror asked directly)",
}
TARGET_RATIO = 0.6


def _floats(rows, key):
    return [float(r[key]) for r in rows if r.get(key) not in (None, "")]


def _ms(rows, key):
    """median milliseconds of CPU per name answered, None when not measured"""
    xs = [float(r[key]) * 1000 / max(int(r["ok"]), 1) for r in rows if r.get(key) not in (None, "")]
    return med(xs) if xs else None


def _cpu_per_name(rows):
    """milliseconds of CPU per name of the system, curl and nginx together (what the cores must do)"""
    parts = [_ms(rows, k) for k in ("cpu", "curl_cpu", "nginx_cpu")]
    return sum(p for p in parts if p is not None)


def section(tables, meta):
    runs = defaultdict(list)
    for r in tables.get("handshakes", []):
        runs[r["system"]].append(r)
    if not runs:
        return []
    first = tables["handshakes"][0]
    names, parallel = first["names"], first.get("parallel", "?")
    reps = max(len(v) for v in runs.values())
    limit = med(_floats(runs["limit"], "per_s")) if runs.get("limit") else None
    limit_cpu = _cpu_per_name(runs["limit"]) if runs.get("limit") else None
    out = [
        "## New host names: CONNECT + TLS + GET per second", "",
        "One curl process per measurement is the load generator for every system: it fetches `GET /v2/` "
        f"(200, `{{}}`) from {names} distinct host names `rN-hI.hs.test` (nginx's certificate covers "
        f"`*.hs.test`), at most {parallel} transfers at once (`--parallel --parallel-max {parallel} "
        "--parallel-immediate --no-sessionid`: no TLS session is resumed). Every name is new to the system: "
        "each measurement starts it anew and each repetition has names of its own, so through a proxy every "
        "URL is a new CONNECT, a new leaf certificate, a TLS handshake with curl and a new upstream TLS "
        "connection to nginx; one request to another name warms the system up first. *limit* is curl "
        "straight to nginx (`--connect-to ::127.0.0.1:`), a new TCP + TLS connection per name: curl's and "
        "nginx's own cost, which is a large part of every system's (curl, nginx and the system share the "
        "machine's cores), so each rate is given as a multiple of the limit's. distribution is a mirror, not "
        "a proxy: it is asked directly (the same names, but it has one certificate: new TLS connections, no "
        "leaves, no upstream requests), so its row is not comparable with the proxies'.", "",
        "*names/s*: 200s over the batch's wall time. *CPU s*: the system's user + system time during the "
        "batch; *CPU ms per name* for the system, for curl and for nginx (master and workers); *× limit by "
        "CPU* is the limit's curl + nginx CPU per name over the system's + curl's + nginx's: the rate ratio "
        "a machine saturated by these processes alone would show, less sensitive to other load than the "
        "wall-clock ratio (it ignores waiting and contention). *at nginx*: "
        "requests and distinct connections for the measured names in nginx's access log (one upstream "
        "connection per name shows the same number twice). *fresh key*: whether two more new names got "
        "leaves with different public keys (`openssl s_client -proxy`). *idle*: the machine's idle CPU "
        "share during the batch (other load on the machine shows as less idle time).", "",
        f"| system | what one name costs | names/s ({reps} rep{'s' if reps > 1 else ''}) | × limit "
        "| × limit by CPU | peak RSS MiB | CPU s | CPU ms per name: system / curl / nginx | failures | HTTP "
        "| at nginx: requests / connections | fresh key per leaf | idle % |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---|---:|"]
    for s in SYSTEMS + sorted(set(runs) - set(SYSTEMS)):
        rows = runs.get(s)
        if not rows:
            continue
        rates = _floats(rows, "per_s")
        ratio = f"{med(rates) / limit:.2f}" if limit else "–"
        cpu = _floats(rows, "cpu")
        per_name = " / ".join("–" if (x := _ms(rows, k)) is None else f"{x:.2f}"
                              for k in ("cpu", "curl_cpu", "nginx_cpu"))
        by_cpu = f"{limit_cpu / _cpu_per_name(rows):.2f}" if limit_cpu and _cpu_per_name(rows) else "–"
        rss = "–" if s == "limit" else spread([int(r["rss_kib"]) / 1024 for r in rows], "{:.0f}")
        failed = sum(int(r["failed"]) for r in rows)
        total = sum(int(r["names"]) for r in rows)
        fresh = {r.get("fresh_key", "") for r in rows} - {""}
        fresh_text = ("–" if not fresh else "yes" if fresh == {"1"} else "no" if fresh == {"0"}
                      else "/".join(sorted(fresh)))
        http = "/".join(sorted({r.get("http", "") for r in rows} - {""})) or "–"
        reqs, conns = _floats(rows, "up_requests"), _floats(rows, "up_conns")
        upstream = f"{spread(reqs, '{:.0f}')} / {spread(conns, '{:.0f}')}" if reqs and conns else "–"
        idle = _floats(rows, "idle")
        out.append(
            f"| {s} | {WHAT.get(s, '')} | {spread(rates, '{:.0f}')} | {ratio} | {by_cpu} | {rss} "
            f"| {spread(cpu, '{:.2f}') if cpu else '–'} | {per_name} | {failed}/{total} | {http} "
            f"| {upstream} | {fresh_text} | {spread(idle, '{:.0f}') if idle else '–'} |")
    out.append("")
    out += target(runs, limit, limit_cpu)
    return out


def target(runs, limit, limit_cpu):
    rows = runs.get("pantry")
    if not rows:
        return []
    rate = med(_floats(rows, "per_s"))
    if limit is None:
        return [f"**pantry's target** (≥ {TARGET_RATIO}× the limit with a fresh key per leaf): not judged, "
                f"no limit measured; pantry reached {rate:.0f} names/s.", ""]
    ratio = rate / limit
    misses = []
    if ratio < TARGET_RATIO:
        misses.append(f"{ratio:.2f}× the limit")
    if {r.get("fresh_key", "") for r in rows} != {"1"}:
        misses.append("not every leaf was seen with a key of its own")
    failed = sum(int(r["failed"]) for r in rows)
    if failed:
        misses.append(f"{failed} failed requests")
    verdict = "**met**" if not misses else "**missed**: " + ", ".join(misses)
    by_cpu = (f" (by CPU per name: {limit_cpu / _cpu_per_name(rows):.2f}×)"
              if limit_cpu and _cpu_per_name(rows) else "")
    minted = _floats(rows, "minted")
    mint = (f"; it minted {spread(minted, '{:.0f}')} leaves per batch of "
            f"{spread([int(r['names']) for r in rows], '{:.0f}')} names" if minted else "")
    return [f"**pantry's target**: ≥ {TARGET_RATIO}× the limit with a fresh key per leaf. pantry: "
            f"{rate:.0f} names/s against the limit's {limit:.0f}/s = **{ratio:.2f}×**{by_cpu}{mint}: {verdict}.", ""]
