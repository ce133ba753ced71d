#!/usr/bin/env python3
"""Rough count of function bodies longer than N lines (issue 10's measure).

  scripts/long-functions.py [SRC_DIR] [N]    (defaults: src, 100)

Counts the lines strictly between a function's opening and closing brace. Strips comments and
strings, matches braces; a block is a function when its header (the text since the previous
; { or }) ends in ')' (plus const/noexcept/override/trailing return/initializer list), is not a
control statement or a lambda, and sits at file, namespace or class scope."""
import os, re, sys
root = sys.argv[1] if len(sys.argv) > 1 else "src"
N = int(sys.argv[2]) if len(sys.argv) > 2 else 100
TOK = re.compile(r'//[^\n]*|/\*.*?\*/|R"(\w*)\(.*?\)\1"|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'', re.S)
CTRL = re.compile(r'^(if|for|while|switch|else|do|try|catch)\b|\b(else|do|try)$')
def blank(m): return re.sub(r'[^\n]', ' ', m.group(0))
res = []
for d, _, fs in os.walk(root):
    for f in sorted(fs):
        if not f.endswith((".cc", ".h")): continue
        p = os.path.join(d, f)
        t = TOK.sub(blank, open(p, encoding="utf-8", errors="replace").read())
        t = re.sub(r'^\s*#.*$', lambda m: ' ' * len(m.group(0)), t, flags=re.M)
        stack = []  # (kind, start_line)
        last = 0
        for i, ch in enumerate(t):
            if ch in ';{}':
                if ch == '{':
                    h = " ".join(t[last:i].split())
                    parent_ok = all(k in ('ns', 'cls') for k, _, _ in stack)
                    if re.search(r'\b(namespace)\b', h) and '(' not in h: kind = 'ns'
                    elif re.search(r'\b(struct|class|union|enum)\b', h) and '(' not in h: kind = 'cls'
                    elif parent_ok and '(' in h and not CTRL.search(h) and '[' not in h.split('(')[0] \
                         and not h.split('(')[0].rstrip().endswith('=') and \
                         re.search(r'\)\s*(const|noexcept|override|final|->\s*[\w:<>,\s*&]+|:.*)?\s*$', h):
                        kind = 'fn'
                    else: kind = 'blk'
                    name = ''
                    if kind == 'fn':
                        m = re.search(r'([~\w:]+(?:operator\S+)?)\s*\(', h); name = m.group(1) if m else h[:50]
                    stack.append((kind, t.count('\n', 0, i) + 1, name))
                elif ch == '}' and stack:
                    kind, start, name = stack.pop()
                    if kind == 'fn':
                        end = t.count('\n', 0, i) + 1
                        res.append((end - start - 1, p, start, name))
                last = i + 1
big = sorted([r for r in res if r[0] > N], reverse=True)
for n, p, ln, name in big: print(f"{n:5d} {p}:{ln} {name}")
print(f"functions over {N} lines: {len(big)} (of {len(res)} function bodies counted)")
