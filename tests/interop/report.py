#!/usr/bin/python3
"""The interop suite's table, failure lists and counts, with expected failures applied.

report.py check EXPECTED CELLS
    Validate the expected-failures file; print one error a line and exit 1 if it has any.
report.py table RESULTS EXPECTED CLIENTS CHECKS CELLS COUNTS
    Print the table (client x check), the failures and the expected failures; write
    "PASSED FAILED XFAILED" to the file COUNTS.

EXPECTED: lines `ROW:CHECK  reason` (ROW and CHECK are fnmatch globs, reason required);
lines whose first non-blank character is # are comments. A missing file has no entries.
RESULTS: lines `client TAB check TAB PASS|FAIL|SKIP TAB detail` (lib/common.sh `result`).
CLIENTS, CHECKS: the table's rows and columns, space separated. CELLS: every cell the suite
can produce, as space-separated ROW:CHECK (an entry that matches none of them is a typo).
"""
import fnmatch
import os
import sys

MARKS = {"PASS": "ok", "FAIL": "FAIL", "SKIP": "-", "XFAIL": "xfail", "XPASS": "XPASS"}


class Entry:
    def __init__(self, lineno, pattern, reason):
        self.lineno, self.pattern, self.reason = lineno, pattern, reason
        self.row, _, self.check = pattern.partition(":")

    def matches(self, row, check):
        return fnmatch.fnmatchcase(row, self.row) and fnmatch.fnmatchcase(check, self.check)


def parse(path, cells):
    """(entries, errors) of the expected-failures file; a malformed line is an error, not an entry."""
    entries, errors = [], []
    if not os.path.exists(path):
        return entries, errors
    name = os.path.basename(path)
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            pattern, reason = (text.split(None, 1) + [""])[:2]
            reason = reason.strip()
            row, colon, check = pattern.partition(":")
            where = "%s line %d (%s)" % (name, lineno, pattern)
            if not colon or not row or not check or ":" in check:
                errors.append("%s: the entry must start with ROW:CHECK" % where)
            elif not reason:
                errors.append("%s: the reason is missing (ROW:CHECK  reason)" % where)
            else:
                entry = Entry(lineno, pattern, reason)
                if not any(entry.matches(*c.split(":", 1)) for c in cells):
                    rows = " ".join(dict.fromkeys(c.split(":", 1)[0] for c in cells))
                    checks = " ".join(dict.fromkeys(c.split(":", 1)[1] for c in cells))
                    errors.append("%s: matches no cell of the suite (rows: %s; checks: %s; mirror has"
                                  " only pull)" % (where, rows, checks))
                else:
                    entries.append(entry)
    return entries, errors


def classify(rows, entries):
    """Each result as (client, check, status, detail, entry): FAIL/PASS become XFAIL/XPASS when listed."""
    out = []
    for c, k, s, d in rows:
        entry = next((e for e in entries if e.matches(c, k)), None)
        if entry and s == "FAIL":
            s = "XFAIL"
        elif entry and s == "PASS":
            s = "XPASS"
            d = ("passed, but `%s` in expected-failures.txt says it fails (%s): remove it from "
                 "expected-failures.txt (or narrow that entry)" % (entry.pattern, entry.reason))
        out.append((c, k, s, d, entry))
    return out


def grouped(items):
    """{key: [cells]} keeping the first-seen order; items are (key, cell)."""
    groups = {}
    for key, cell in items:
        groups.setdefault(key, []).append(cell)
    return groups


def table(results, expected, clients, checks, cells, counts):
    rows = []
    with open(results, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                c, k, s, d = (line.rstrip("\n").split("\t") + ["", "", "", ""])[:4]
                rows.append((c, k, s, d))
    entries, errors = parse(expected, cells.split())
    results = classify(rows, entries)
    status = {(c, k): s for c, k, s, _, _ in results}
    clients, checks = clients.split(), checks.split()
    # a cell of a row that ran but recorded nothing (or only SKIP) is a failure, not a blank
    for cell in cells.split():
        c, k = cell.split(":", 1)
        if c in clients and status.get((c, k), "SKIP") == "SKIP":
            results.append((c, k, "FAIL", "no result recorded: the row ended without checking it", None))
            status[(c, k)] = "FAIL"

    w = max(len(c) for c in clients + ["client"])
    widths = [max(len(k), 5) for k in checks]
    print()
    print("client".ljust(w), *[k.center(n) for k, n in zip(checks, widths)], sep=" | ")
    print("-" * (w + sum(n + 3 for n in widths)))
    for c in clients:
        marks = [MARKS.get(status.get((c, k), "SKIP"), "?").center(n) for k, n in zip(checks, widths)]
        print(c.ljust(w), *marks, sep=" | ")
    print()

    failures = grouped((d, "%s/%s" % (c, k)) for c, k, s, d, _ in results if s in ("FAIL", "XPASS"))
    if failures or errors:
        print("failures:")
        for d, where in failures.items():
            print("  %s: %s" % (", ".join(where), d))
        for e in errors:
            print("  %s (entry ignored)" % e)
        print()
    xfails = [(e, c, k, d) for c, k, s, d, e in results if s == "XFAIL"]
    if xfails:
        print("expected failures (%s):" % os.path.basename(expected))
        for e in sorted({e for e, _, _, _ in xfails}, key=lambda e: e.lineno):
            print("  %s  %s" % (e.pattern, e.reason))
            for d, where in grouped((d, "%s/%s" % (c, k)) for x, c, k, d in xfails if x is e).items():
                print("      %s: %s" % (", ".join(where), d))
        print()

    n_pass = sum(s == "PASS" for _, _, s, _, _ in results)
    n_fail = sum(s in ("FAIL", "XPASS") for _, _, s, _, _ in results) + len(errors)
    with open(counts, "w", encoding="utf-8") as f:
        f.write("%d %d %d\n" % (n_pass, n_fail, len(xfails)))


def main(argv):
    if len(argv) == 4 and argv[1] == "check":
        _, errors = parse(argv[2], argv[3].split())
        for e in errors:
            print(e)
        return 1 if errors else 0
    if len(argv) == 8 and argv[1] == "table":
        table(*argv[2:])
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
