#!/usr/bin/env bash
# template_smoke.sh — replay the template seed corpus through the libFuzzer
# binary (ASan+UBSan and the target's own invariants), one TAP line per seed.
# Skips when `make fuzz-build` has not been run.
set -u
cd "$(dirname "$0")/../.." || exit 2
bin=build/fuzz/fuzz_template
seeds=(tests/fuzz/corpus/template/*)
echo "1..${#seeds[@]}"
n=0
for seed in "${seeds[@]}"; do
	n=$((n + 1))
	if [ ! -x "$bin" ]; then
		echo "ok $n - $seed # SKIP $bin not built (make fuzz-build)"
	elif "$bin" -runs=1 "$seed" >/dev/null 2>&1; then
		echo "ok $n - $seed"
	else
		echo "not ok $n - $seed"
	fi
done
