#!/usr/bin/env python3
"""Fails on an #include that goes up a layer or sideways between peers (docs/ARCHITECTURE.md).

Each folder of src/ has a layer; a file may include its own folder and the folders of lower
layers, nothing else. The order, bottom up, is LAYERS below. A folder of src/ that is not
listed is an error too, so a new folder has to be placed deliberately.

  scripts/check-layers.py [SRC_DIR]   check (default: src/ beside this script)
  scripts/check-layers.py --self-test check that a planted violation is caught
"""
import os
import re
import sys
import tempfile

LAYERS = [
    "util",       # the doors: exec, files, dlopen, state files, clock, strings, sysfs layout
    "bindings",   # our own declarations of the vendor libraries' APIs
    "model",      # plain data: GpuSpec, observations; pure classification
    "sources",    # one parser or probe per tool; the Source interface
    "detect",     # runs sources under a deadline, merges, classifies
    "telemetry",  # samples per GPU and per process; facts only
    "plan",       # the pure planner
    "enforce",    # actions, journal, the one applier, device control
    "fleet",      # node labels for Kubernetes (NFD feature file); GPUs and plan in, file out
    "daemon",     # the loop, governor, window, artifacts, metrics, status
    "report",     # renders artifacts
    "cli",        # argument handling and commands
]
RANK = {name: i for i, name in enumerate(LAYERS)}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"/]+)/[^"]+"', re.M)


def violations(src):
    found = []
    for folder in sorted(os.listdir(src)):
        path = os.path.join(src, folder)
        if not os.path.isdir(path):
            continue
        if folder not in RANK:
            found.append(f"src/{folder}/: folder has no layer (add it to scripts/check-layers.py)")
            continue
        for root, _, files in os.walk(path):
            for f in sorted(files):
                if not f.endswith((".h", ".cc")):
                    continue
                full = os.path.join(root, f)
                rel = os.path.relpath(full, os.path.dirname(src))
                with open(full, encoding="utf-8", errors="replace") as fh:
                    text = fh.read()
                for m in INCLUDE.finditer(text):
                    target = m.group(1)
                    line = text.count("\n", 0, m.start()) + 1
                    if target == folder:
                        continue
                    if target not in RANK:
                        found.append(f"{rel}:{line}: includes {target}/, which has no layer")
                    elif RANK[target] >= RANK[folder]:
                        way = "sideways" if RANK[target] == RANK[folder] else "up"
                        found.append(f"{rel}:{line}: {folder}/ includes {target}/ ({way}: "
                                     f"{folder} is layer {RANK[folder]}, {target} is layer "
                                     f"{RANK[target]})")
    return found


def self_test():
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "src")
        for folder, text in [("util", '#include "util/a.h"\n'),
                             ("sources", '#include "util/a.h"\n#include "detect/d.h"\n'),
                             ("detect", '#include "sources/s.h"\n')]:
            os.makedirs(os.path.join(src, folder))
            with open(os.path.join(src, folder, "x.cc"), "w") as fh:
                fh.write(text)
        v = violations(src)
        if len(v) != 1 or "sources/ includes detect/ (up" not in v[0]:
            print("self-test: the planted upward include was not the one violation found:", v)
            return 1
        os.makedirs(os.path.join(src, "stray"))
        if not any("no layer" in x for x in violations(src)):
            print("self-test: a folder without a layer was not reported")
            return 1
    print("check-layers self-test: ok")
    return 0


def main(argv):
    if len(argv) > 1 and argv[1] == "--self-test":
        return self_test()
    src = argv[1] if len(argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "src")
    v = violations(os.path.normpath(src))
    for line in v:
        print(line)
    if v:
        print(f"check-layers: {len(v)} include(s) against the layer order "
              f"({' < '.join(LAYERS)})")
        return 1
    print(f"check-layers: ok ({' < '.join(LAYERS)})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
