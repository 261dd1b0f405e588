#!/usr/bin/env bash
# tests/fuzz/smoke.sh — every fuzz target briefly (FUZZ_SMOKE_SECONDS, default 8),
# as part of the test suite.  Longer runs: make fuzz FUZZ_SECONDS=1800.
set -u
cd "$(dirname "$0")/../.." || exit 2
. tests/lib/tap.sh
seconds=${FUZZ_SMOKE_SECONDS:-8}
targets=()
for b in build/fuzz/fuzz_*; do [ -x "$b" ] && targets+=("$(basename "$b")"); done
[ ${#targets[@]} -gt 0 ] || bail "no fuzz targets built (make fuzz-build)"
plan ${#targets[@]}
for t in "${targets[@]}"; do
	out=$(tests/fuzz/run "$seconds" "$t" 2>&1)
	status=$?
	[ $status -eq 0 ] || diag "$out"
	ok $status "$t runs ${seconds}s without a crash, leak or timeout"
done
