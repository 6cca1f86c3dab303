#!/usr/bin/env python3
"""Import cycles between pantry's top-level modules (src/*/ and src/*.rs).

Reads every `crate::a::…` path in src/ (use statements, grouped `use crate::{a, b::c}` and inline
paths; comments left out), builds the graph "module A uses module B", and prints each strongly
connected component of more than one module with a file that makes each of its edges. Exit
status 1 when there is a cycle. (The binary's own modules, such as src/tools.rs, are read too;
they are leaves.)
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
        print("cycle among:", " ".join(comp))
        for a in comp:
            for b in sorted(edges.get(a, ())):
                if b in comp:
                    print("   %s -> %s  (%s)" % (a, b, where[(a, b)]))
    print("%d modules, %d cycles" % (len(modules), len(out)))
    return 1 if out else 0

if __name__ == "__main__":
    sys.exit(main())
