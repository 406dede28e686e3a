#!/usr/bin/env python3
"""Layering gate (ctest: layering_check): each library folder includes only its own headers and those of the layers
below it, so dependencies flow one way (docs/architecture.md):
    core  <-  data, models, distributed  <-  translation  <-  trainer  <-  eval  <-  bench  <-  cli
An include of a folder above (or beside) is an error naming the file, the line and the include."""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
ALLOWED = {
    "core": {"core"},
    "data": {"core", "data"},
    "models": {"core", "models"},
    "distributed": {"core", "distributed"},
    "translation": {"core", "data", "models", "translation"},
    "trainer": {"core", "data", "models", "distributed", "translation", "trainer"},
    "eval": {"core", "data", "models", "distributed", "translation", "trainer", "eval"},
    "bench": {"core", "data", "models", "distributed", "translation", "trainer", "eval", "bench"},
    "cli": set(),  # the main may include any library
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/[^"]+"')
bad = 0
files = 0
for folder, allowed in ALLOWED.items():
    for name in sorted(os.listdir(os.path.join(ROOT, folder))):
        if not name.endswith((".h", ".cpp")):
            continue
        files += 1
        path = os.path.join(folder, name)
        with open(os.path.join(ROOT, path), encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                m = INCLUDE.match(line)
                if m and folder != "cli" and m.group(1) in ALLOWED and m.group(1) not in allowed:
                    print(f"layers: {path}:{n}: includes {m.group(1)}/ but {folder}/ may only use "
                          f"{', '.join(sorted(allowed))}: {line.strip()}")
                    bad += 1
if bad:
    sys.exit(1)
print(f"layers: {files} files in {len(ALLOWED)} libraries, dependencies flow one way")
