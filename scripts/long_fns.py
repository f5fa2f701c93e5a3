#!/usr/bin/env python3
"""Functions of src/ longer than a limit (default 80 lines), outside
`#[cfg(test)]` modules: from the `fn` line to its closing brace, counted
by brace depth (braces in strings and comments are skipped roughly)."""
import os, re, sys
limit = int(sys.argv[1]) if len(sys.argv) > 1 else 80
root = sys.argv[2] if len(sys.argv) > 2 else 'src'
found = 0
for d, _, files in os.walk(root):
    for f in sorted(files):
        if not f.endswith('.rs'):
            continue
        path = os.path.join(d, f)
        lines = open(path).read().split('\n')
        i = 0
        while i < len(lines):
            line = lines[i]
            if line.strip().startswith('#[cfg(test)]'):
                break  # test modules sit at the end of a file
            m = re.match(r'\s*(pub(\([^)]*\))?\s+)?(async\s+)?(const\s+)?(unsafe\s+)?fn\s+(\w+)', line)
            if not m:
                i += 1
                continue
            name, start, depth, opened = m.group(6), i, 0, False
            while i < len(lines):
                code = re.sub(r'"([^"\\]|\\.)*"', '""', lines[i].split('//')[0])
                code = re.sub(r"'.'", "''", code)
                depth += code.count('{') - code.count('}')
                opened = opened or '{' in code
                if opened and depth <= 0:
                    break
                if not opened and code.rstrip().endswith(';'):
                    break
                i += 1
            length = i - start + 1
            if length > limit:
                found += 1
                print(f"{path}:{start + 1}: fn {name}: {length} lines")
            i += 1
print(f"{found} function(s) over {limit} lines")
