#!/usr/bin/env python3
"""Top-level module dependencies of src/ (from `crate::<module>` paths in
code, comments excluded) and any cycles among them."""
import os, re, sys
root = sys.argv[1] if len(sys.argv) > 1 else 'src'
mods = {}
for name in os.listdir(root):
    path = os.path.join(root, name)
    if name in ('lib.rs', 'main.rs'):
        continue
    mod = name[:-3] if name.endswith('.rs') else name
    files = []
    if os.path.isdir(path):
        for d, _, fs in os.walk(path):
            files += [os.path.join(d, f) for f in fs if f.endswith('.rs')]
    elif name.endswith('.rs'):
        files = [path]
    else:
        continue
    deps = set()
    for f in files:
        for line in open(f):
            code = line.split('//')[0]
            for m in re.finditer(r'crate::(\{[^}]*\}|[a-z_]+)', code):
                g = m.group(1)
                names = re.findall(r'([a-z_]+)', g) if g.startswith('{') else [g]
                deps.update(n for n in names)
    mods.setdefault(mod, set()).update(deps)
for m in mods:
    mods[m] = sorted(d for d in mods[m] if d in mods and d != m)
for m in sorted(mods):
    print(f"{m:11} -> {' '.join(mods[m])}")
# cycles: strongly connected components (Tarjan)
index, low, stack, on, sccs = {}, {}, [], set(), []
def visit(v, i=[0]):
    index[v] = low[v] = i[0]; i[0] += 1; stack.append(v); on.add(v)
    for w in mods[v]:
        if w not in index:
            visit(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        c = []
        while True:
            w = stack.pop(); on.discard(w); c.append(w)
            if w == v: break
        if len(c) > 1: sccs.append(sorted(c))
for v in sorted(mods):
    if v not in index: visit(v)
print('cycles:', sccs if sccs else 'none')
sys.exit(1 if sccs else 0)
