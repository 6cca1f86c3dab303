#!/usr/bin/env python3
"""Import cycles between pantry's top-level modules (src/*/ and src/*.rs), and between the
submodules of each top-level module (src/cache/store.rs and src/cache/blob.rs, say).

Reads every `crate::a::…` path in src/ (use statements, grouped `use crate::{a, b::c}` and inline
paths; comments left out), builds the graph "module A uses module B", and prints each strongly
connected component of more than one module with a file that makes each of its edges. Inside a
top-level module the same is done with `super::x` and `crate::top::x` paths of its submodules'
own code (their tests left out: a test may use any sibling). Exit status 1 when there is a cycle.
(The binary's own modules, such as src/tools.rs, are read too; they are leaves.)
"""
import os, re, sys

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")

def top_of(path):
    rel = os.path.relpath(path, SRC)
    first = rel.split(os.sep)[0]
    return first[:-3] if first.endswith(".rs") else first

def main():
    edges = {}
    where = {}
    for root, _, files in os.walk(SRC):
        for f in files:
            if not f.endswith(".rs"):
                continue
            path = os.path.join(root, f)
            me = top_of(path)
            if me in ("lib", "main"):
                continue
            text = open(path, encoding="utf-8").read()
            # drop comments
            text = re.sub(r"//[^\n]*", "", text)
            for m in re.finditer(r"\bcrate::(\w+)", text):
                other = m.group(1)
                if other != me:
                    edges.setdefault(me, set()).add(other)
                    where.setdefault((me, other), os.path.relpath(path, SRC))
            # grouped imports: use crate::{a::x, b, c::{..}}
            for m in re.finditer(r"use crate::\{", text):
                depth, i, start = 1, m.end(), m.end()
                while depth and i < len(text):
                    depth += {"{": 1, "}": -1}.get(text[i], 0)
                    i += 1
                inner = text[start:i - 1]
                flat = re.sub(r"\{[^{}]*\}", "", re.sub(r"\{[^{}]*\}", "", inner))
                for part in flat.split(","):
                    name = part.strip().split("::")[0].strip()
                    if re.fullmatch(r"\w+", name or "") and name not in (me, "self"):
                        edges.setdefault(me, set()).add(name)
                        where.setdefault((me, name), os.path.relpath(path, SRC))
    cycles = report(edges, where, "")
    for top in sorted(os.listdir(SRC)):
        if os.path.isdir(os.path.join(SRC, top)):
            inner, inner_where = siblings(top)
            cycles += report(inner, inner_where, top + "::")
    modules = set(edges) | {b for bs in edges.values() for b in bs}
    print("%d modules, %d cycles" % (len(modules), cycles))
    return 1 if cycles else 0


def siblings(top):
    """Edges between the direct submodules of src/TOP/, from their non-test code."""
    edges, where, base = {}, {}, os.path.join(SRC, top)
    for root, _, files in os.walk(base):
        for f in files:
            if not f.endswith(".rs") or f == "tests.rs":
                continue
            path = os.path.join(root, f)
            rel = os.path.relpath(path, base).split(os.sep)
            me = rel[0][:-3] if rel[0].endswith(".rs") else rel[0]
            if me in ("mod", "tests"):
                continue
            text = re.sub(r"//[^\n]*", "", open(path, encoding="utf-8").read())
            text = re.sub(r"#\[cfg\(test\)\]\s*mod tests\s*\{.*", "", text, flags=re.S)
            parent = r"super" if len(rel) == 1 else r"super::super" if len(rel) == 2 else None
            heads = [r"crate::%s" % top] + ([parent] if parent else [])
            for head in heads:
                for m in re.finditer(r"\b%s::(\w+)" % head, text):
                    add(edges, where, me, m.group(1), os.path.relpath(path, SRC))
                for m in re.finditer(r"use %s::\{" % head, text):
                    for name in grouped(text, m.end()):
                        add(edges, where, me, name, os.path.relpath(path, SRC))
    return edges, where


def grouped(text, start):
    """The first names of a grouped import whose `{` ends at `start`."""
    depth, i = 1, start
    while depth and i < len(text):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        i += 1
    flat = re.sub(r"\{[^{}]*\}", "", re.sub(r"\{[^{}]*\}", "", text[start:i - 1]))
    names = (part.strip().split("::")[0].strip() for part in flat.split(","))
    return [n for n in names if re.fullmatch(r"\w+", n or "")]


def add(edges, where, me, other, path):
    if other not in (me, "self", "super"):
        edges.setdefault(me, set()).add(other)
        where.setdefault((me, other), path)


def report(edges, where, prefix):
    """Prints each cycle of `edges`; returns how many there are."""
    modules = set(edges) | {b for bs in edges.values() for b in bs}
    # Tarjan
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]
    def strong(v):
        index[v] = low[v] = n[0]; n[0] += 1; stack.append(v); on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                strong(w); low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))
    sys.setrecursionlimit(10000)
    for v in sorted(modules):
        if v not in index:
            strong(v)
    for comp in out:
        print("cycle among:", " ".join(prefix + c for c in comp))
        for a in comp:
            for b in sorted(edges.get(a, ())):
                if b in comp:
                    print("   %s%s -> %s%s  (%s)" % (prefix, a, prefix, b, where[(a, b)]))
    return len(out)

if __name__ == "__main__":
    sys.exit(main())
