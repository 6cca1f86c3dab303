"""Helpers every section of RESULTS.md uses: medians, spreads and names."""
import statistics


def med(xs):
    return statistics.median(xs)


def spread(xs, fmt):
    """median, and (min–max) when the repetitions differ"""
    m = fmt.format(med(xs))
    lo, hi = fmt.format(min(xs)), fmt.format(max(xs))
    return m if len(xs) == 1 or lo == hi else f"{m} ({lo}–{hi})"


def size_name(mib):
    return f"{mib // 1024} GiB" if mib % 1024 == 0 else f"{mib} MiB"


def kinds(rows, field):
    """'HEAD-blob-200 16, GET-/v2/-200 39 (38–46)': each kind's count, median and spread over rows"""
    counts = [dict(kv.split("=") for kv in r[field].split(",")) if r[field] not in ("-", "") else {}
              for r in rows]
    names = sorted({k for c in counts for k in c}, key=lambda k: (not k.startswith("HEAD"), k))
    if not names:
        return "none"
    return ", ".join(f"{k} {spread([int(c.get(k, 0)) for c in counts], '{:.0f}')}" for k in names)


def verdict(misses):
    return "**met**" if not misses else "**missed**: " + ", ".join(misses)
