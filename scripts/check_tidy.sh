#!/usr/bin/env bash
# clang-tidy with the checks of .clang-tidy (ctest tidy_check). clang parses LibTorch's headers in ~20-40 s per file,
# so by default only the sources that do not include LibTorch (through any project header) are checked; --all checks
# every library and CLI source (~15 minutes on 2 cores). The build's compile_commands.json is used without its GCC
# precompiled header, which clang cannot read: a file that uses LibTorch must include it.
#   scripts/check_tidy.sh [--all] [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
ALL=0
[ "${1:-}" = "--all" ] && ALL=1 && shift
BUILD=${1:-build}
command -v clang-tidy >/dev/null || { echo "tidy: clang-tidy is not installed (scripts/setup.sh installs it)"; exit 77; }
DB=$(mktemp -d /tmp/tern_tidy.XXXXXX)
trap 'rm -rf "$DB"' EXIT
python3 - "$BUILD/compile_commands.json" "$DB" "$(pwd)" "$ALL" > "$DB/files" <<'PY'
import json, os, re, sys
src, db, root, all_files = sys.argv[1:5]
include = re.compile(r'#include [<"]([^>"]+)[>"]')
heavy = {}
def uses_torch(path, seen=()):  # through its own includes and the project headers it includes
    if path not in heavy:
        heavy[path] = False
        for inc in include.findall(open(path).read()):
            if re.match(r"(torch|ATen|c10)/", inc):
                heavy[path] = True
            elif os.path.exists(os.path.join(root, inc)) and uses_torch(os.path.join(root, inc)):
                heavy[path] = True
    return heavy[path]
out = []
for e in json.load(open(src)):
    rel = e["file"][len(root) + 1:] if e["file"].startswith(root + "/") else ""
    if not re.match(r"(core|data|models|distributed|translation|trainer|eval|bench|cli)/[a-z_]+\.cpp$", rel):
        continue
    out.append({**e, "command": re.sub(r"-include \S+cmake_pch\.hxx|-fpch-preprocess|-Winvalid-pch", "", e["command"])})
    if all_files == "1" or not uses_torch(e["file"]):
        print(e["file"])
json.dump(out, open(f"{db}/compile_commands.json", "w"))
PY
n=$(wc -l < "$DB/files")
echo "tidy: $n files$([ $ALL = 1 ] || echo ' (those without LibTorch; --all for every file)')"
xargs -P "$(nproc)" -n 2 clang-tidy -p "$DB" --quiet < "$DB/files" > "$DB/out.txt" 2> "$DB/err.txt" || true
if grep -q 'error:\|warning:' "$DB/out.txt"; then
  grep -A3 'error:\|warning:' "$DB/out.txt" | head -300
  echo "tidy: $(grep -c 'error:\|warning:' "$DB/out.txt") finding(s)"
  exit 1
fi
echo "tidy: $n files clean"
