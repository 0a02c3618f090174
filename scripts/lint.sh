#!/usr/bin/env bash
# clang-format (every C++ file) and clang-tidy (the product code in src/, with the checks in
# .clang-tidy, warnings as errors). Needs a configured build/ for compile_commands.json.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
mapfile -t files < <(git ls-files '*.cc' '*.h')
clang-format --dry-run --Werror "${files[@]}"
echo "lint: clang-format clean (${#files[@]} files)"
[ -f build/compile_commands.json ] || cmake -S . -B build -G Ninja >/dev/null
mapfile -t sources < <(git ls-files 'src/*.cc')
printf '%s\n' "${sources[@]}" | xargs -P "$(nproc)" -n 2 clang-tidy -p build --quiet \
  --extra-arg=-Wno-unknown-warning-option 2>/dev/null  # GCC-only flags in compile_commands
echo "lint: clang-tidy clean (${#sources[@]} files)"
