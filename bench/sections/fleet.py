"""RESULTS.md section of the fleet workload: three caches, eight clients each, cold on one blob."""
from collections import defaultdict

from sections.charts import chart
from sections.common import med, size_name, spread, verdict

ARRANGEMENTS = ["alone", "fleet", "islands", "distribution"]
LABELS = {
    "alone": "one pantry, one client",
    "fleet": "pantry fleet (3 nodes, shared store)",
    "islands": "3 independent pantries",
    "distribution": "3 distribution mirrors, one S3 bucket",
}
TARGET_GETS, TARGET_RATIO = 1, 1.10


def per_node(row, key, cast=float):
    return [cast(x) for x in row[key].split(",") if x]


def section(tables, meta):
    runs = defaultdict(list)
    for r in tables.get("fleet", []):
        runs[r["arrangement"]].append(r)
    if not runs:
        return []
    mib = int(next(iter(runs.values()))[0]["mib"])
    reps = max(len(v) for v in runs.values())
    out = ["## Fleet: three caches, eight clients each, cold on one blob", "",
           f"A {size_name(mib)} blob from the upstream throttled to {meta.get('rate')}/s per connection; every "
           "measurement starts anew (empty caches, a fresh bucket prefix) and all clients start together, each "
           "through its own node, every body hashed and compared with the digest. *origin GETs* are nginx's; "
           "*slowest client per node* is curl's total time of each node's slowest client, and *× alone* the "
           "worst of them over one client through one pantry on its own; peak RSS is each node's VmHWM. The "
           f"shared store is SeaweedFS (S3 API) on loopback. {reps} repetition{'s' if reps > 1 else ''}.", "",
           "| arrangement | nodes × clients | origin GETs | origin MiB | verified | wall s | slowest client per node s "
           "| × alone | peak RSS per node MiB |",
           "|---|---|---:|---:|---:|---:|---|---:|---|"]
    alone = med([float(r["wall"]) for r in runs.get("alone", [])]) if runs.get("alone") else None
    worst = {}
    for how in ARRANGEMENTS:
        rows = runs.get(how)
        if not rows:
            continue
        slow = [max(per_node(r, "slowest_per_node")) for r in rows]
        worst[how] = med(slow) / alone if alone else None
        per = [spread([per_node(r, "slowest_per_node")[i] for r in rows], "{:.1f}")
               for i in range(int(rows[0]["nodes"]))]
        rss = [spread([per_node(r, "rss_kib_per_node", int)[i] / 1024 for r in rows], "{:.0f}")
               for i in range(int(rows[0]["nodes"]))]
        ratio = "–" if worst[how] is None or how == "alone" else f"{worst[how]:.2f}"
        total = int(rows[0]["nodes"]) * int(rows[0]["clients"])
        out.append(f"| {LABELS[how]} | {rows[0]['nodes']} × {rows[0]['clients']} "
                   f"| {spread([int(r['gets']) for r in rows], '{:.0f}')} "
                   f"| {spread([int(r['bytes']) / 1048576 for r in rows], '{:.0f}')} "
                   f"| {min(int(r['verified']) for r in rows)}/{total} | {spread([float(r['wall']) for r in rows], '{:.1f}')} "
                   f"| {' / '.join(per)} | {ratio} | {' / '.join(rss)} |")
    out.append("")
    series = {LABELS[h]: [(i + 1, med([per_node(r, "slowest_per_node")[i] for r in runs[h]]))
                          for i in range(int(runs[h][0]["nodes"]))]
              for h in ARRANGEMENTS if h in runs and h != "alone"}
    out += chart("fleet-slowest", f"Fleet, {size_name(mib)} cold: slowest client per node", "node", "s", series)
    if "fleet" in runs:
        gets = max(int(r["gets"]) for r in runs["fleet"])
        misses = [f"{gets} origin GETs"] if gets > TARGET_GETS else []
        if worst.get("fleet") is not None and worst["fleet"] > TARGET_RATIO:
            misses.append(f"slowest client {worst['fleet']:.2f}× alone")
        ok = all(int(r["verified"]) == int(r["nodes"]) * int(r["clients"]) for r in runs["fleet"])
        misses += [] if ok else ["a body not verified"]
        out += [f"Target: the fleet makes {TARGET_GETS} origin GET, every body verified, each node's slowest client "
                f"≤ {TARGET_RATIO:.2f}× one client alone: {verdict(misses)}", ""]
    return out
