#!/usr/bin/env bash
# Style gate (ctest: format_check): every C++ source follows .clang-format (Google-based, 120 columns).
set -euo pipefail
cd "$(dirname "$0")/.."
files=$(git ls-files '*.cpp' '*.h' 2>/dev/null || find core data models distributed translation trainer eval cli bench tests fuzz -name '*.cpp' -o -name '*.h')
bad=0
for f in $files; do
  if ! clang-format --dry-run --Werror "$f" 2>/dev/null; then
    echo "format: $f differs from .clang-format (run clang-format -i $f)"
    bad=1
  fi
done
[ "$bad" -eq 0 ] && echo "format: $(echo "$files" | wc -w) files follow .clang-format"
exit $bad
