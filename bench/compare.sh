#!/usr/bin/env bash
# bench/compare.sh — triage side by side with GMime parse-only and rspamd,
# on the same messages, on the same core, in one run.
#
#   bench/compare.sh [CORPUS_DIR]     (make compare)
#
# CORPUS_DIR defaults to ../shared/corpus/mail/spamassassin-easy-ham.
# What is measured, in CPU time per message (not wall time: this is a
# shared machine, and CPU time does not count the time another process
# held the core):
#   triage   normalize + classify with conf/triage.conf: bench_pipeline
#            -m pipeline, the process's CPU time over the timed passes
#   gmime    GMime parse-only (parse, decode every text part): bench_pipeline
#            -m gmime, likewise
#   rspamd   Debian's rspamd (3.4) with its stock rules, local checks only:
#            one normal worker, DNS pointed at a dead local port, rbl, spf,
#            dkim, dmarc, arc, fuzzy_check and asn disabled; fed by rspamc;
#            the worker's utime + stime from /proc/PID/stat
# triage and GMime: best of COMPARE_RUNS runs (default 3).  rspamd: one
# warm-up (Hyperscan compiles its databases first, ~20 s or more), then
# COMPARE_RSPAMD_PASSES passes over the corpus (default 2), best one.
# rspamd runs many more checks than triage's classifier (hundreds of
# regexp, header, MIME, URL and Lua rules): the ratio compares cost per
# message, not work per message.
#
# Last line:
#   bench: compare triage=N msg/cpu-s rspamd=M msg/cpu-s gmime_parse=P msg/cpu-s vs_rspamd=X vs_gmime=Y
# A peer that cannot be started is a failure (exit 1), never a skip.
set -u
cd "$(dirname "$0")/.." || exit 2
corpus=${1:-../shared/corpus/mail/spamassassin-easy-ham}
runs=${COMPARE_RUNS:-3}
rspamd_passes=${COMPARE_RSPAMD_PASSES:-2}
bench=build/bench/bench_pipeline

fail() {
	echo "bench: compare FAILED: $*" >&2
	echo "bench: compare FAILED: $*"
	exit 1
}

[ -x "$bench" ] || fail "$bench missing (make bench-build)"
[ -d "$corpus" ] || fail "no corpus at $corpus"
command -v rspamd >/dev/null || fail "rspamd not installed (./bootstrap --bench)"
command -v rspamc >/dev/null || fail "rspamc not installed (./bootstrap --bench)"
mapfile -t files < <(find "$corpus" -maxdepth 1 -name '*.eml' | sort)
n=${#files[@]}
[ "$n" -gt 0 ] || fail "no *.eml in $corpus"

# One core for everything measured (the last, as bench/run uses), another
# one, when there is one, for rspamc.
cores=$(nproc)
core=$((cores - 1))
client_core=$((cores > 1 ? 0 : core))
pin=()
client_pin=()
if command -v taskset >/dev/null; then
	pin=(taskset -c "$core")
	client_pin=(taskset -c "$client_core")
else
	echo "bench: taskset not found: nothing pinned"
fi
clk_tck=$(getconf CLK_TCK)

echo "bench: $n messages from $corpus; measured on core $core of $cores; $(date -u +%Y-%m-%dT%H:%M:%SZ)"

# ---------------------------------------------------------------- triage, GMime

# Smallest cpu_us_per_msg of $runs runs of bench_pipeline -m MODE.
best_cpu_us() {
	local mode=$1 best="" line us
	for ((r = 0; r < runs; r++)); do
		line=$("${pin[@]}" "$bench" -m "$mode" -p 3 "$corpus" | tail -n 1)
		us=$(sed -n 's/.*cpu_us_per_msg=\([0-9.]*\).*/\1/p' <<<"$line")
		[ -n "$us" ] || fail "bench_pipeline -m $mode printed: $line"
		echo "bench:   $line" >&2
		if [ -z "$best" ] || awk -v a="$us" -v b="$best" 'BEGIN { exit !(a < b) }'; then
			best=$us
		fi
	done
	echo "$best"
}

triage_us=$(best_cpu_us pipeline) || exit 1
gmime_us=$(best_cpu_us gmime) || exit 1

# ---------------------------------------------------------------- rspamd

free_port() { # tcp|udp: a loopback port nothing listens on
	local proto=$1 port flag=-Htln
	[ "$proto" = udp ] && flag=-Huln
	for _ in $(seq 50); do
		port=$((20000 + RANDOM % 40000))
		if ! command -v ss >/dev/null || [ -z "$(ss $flag "sport = :$port" 2>/dev/null)" ]; then
			echo "$port"
			return 0
		fi
	done
	return 1
}

dir=$(mktemp -d "${TMPDIR:-/tmp}/triage-compare.XXXXXX") || fail "mktemp"
[ -n "$dir" ] && [ -d "$dir" ] || fail "mktemp"
main_pid=""
worker=""
stop_rspamd() {
	[ -n "$main_pid" ] || return 0
	local children
	children=$(pgrep -P "$main_pid" 2>/dev/null)
	kill -TERM "$main_pid" 2>/dev/null
	for _ in $(seq 100); do
		kill -0 "$main_pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$main_pid" 2>/dev/null && kill -KILL "$main_pid" 2>/dev/null
	for child in $children; do
		kill -0 "$child" 2>/dev/null && kill -KILL "$child" 2>/dev/null
	done
	wait "$main_pid" 2>/dev/null
	main_pid=""
}
cleanup() {
	stop_rspamd
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

rspamd_fail() {
	echo "bench: rspamd log (last 20 lines):"
	tail -n 20 "$dir/log/rspamd.log" 2>/dev/null | cut -c1-300
	tail -n 5 "$dir/stdout" 2>/dev/null
	fail "$*"
}

port=$(free_port tcp) || fail "no free TCP port"
dns_port=$(free_port udp) || fail "no free UDP port"
mkdir -p "$dir/local.d" "$dir/override.d" "$dir/db" "$dir/run" "$dir/log" || fail "mkdir in $dir"
# Nothing answers on dns_port: every DNS-based check fails, offline.
printf 'dns { nameserver = ["127.0.0.1:%s"]; timeout = 0.2s; retransmits = 0; }\n' "$dns_port" \
	>"$dir/local.d/options.inc"
printf 'bind_socket = "127.0.0.1:%s";\ncount = 1;\n' "$port" >"$dir/override.d/worker-normal.inc"
echo 'enabled = false;' >"$dir/override.d/worker-controller.inc"
echo 'enabled = false;' >"$dir/override.d/worker-proxy.inc"
for module in rbl spf dkim dmarc arc fuzzy_check asn; do
	echo 'enabled = false;' >"$dir/local.d/$module.conf"
done
user_args=()
[ "$(id -u)" = 0 ] && user_args=(-u root -g root)
rspamd_version=$(rspamd --version 2>/dev/null | head -n 1)
(cd "$dir" && exec "${pin[@]}" rspamd -f "${user_args[@]}" -i \
	--var LOCAL_CONFDIR="$dir" --var DBDIR="$dir/db" --var RUNDIR="$dir/run" \
	--var LOGDIR="$dir/log" >"$dir/stdout" 2>&1) &
main_pid=$!
echo "bench: $rspamd_version on 127.0.0.1:$port (pid $main_pid): waiting for its Hyperscan databases"

# Ready: the normal worker says it loaded the compiled Hyperscan databases.
ready() {
	[ -n "$worker" ] && grep -q "#$worker(normal).*hyperscan database of .* has been loaded" \
		"$dir/log/rspamd.log" 2>/dev/null
}
start=$SECONDS
while ! ready; do
	kill -0 "$main_pid" 2>/dev/null || rspamd_fail "rspamd exited during start-up"
	[ $((SECONDS - start)) -lt 600 ] || rspamd_fail "rspamd not ready after 10 minutes"
	if [ -z "$worker" ]; then
		for child in $(pgrep -P "$main_pid" 2>/dev/null); do
			grep -q 'normal process' "/proc/$child/cmdline" 2>/dev/null && worker=$child
		done
	fi
	sleep 0.5
done
echo "bench: rspamd ready after $((SECONDS - start)) s (normal worker pid $worker)"

worker_ticks() { awk '{ print $14 + $15 }' "/proc/$worker/stat" 2>/dev/null; }

# Scan files with rspamc; every one must come back with a verdict.
scan() {
	local out=$dir/rspamc.out got
	"${client_pin[@]}" rspamc -h "127.0.0.1:$port" -n 32 -t 60 "$@" >"$out" 2>&1
	got=$(grep -c '^Action:' "$out")
	if [ "$got" -ne $# ]; then
		grep -m 5 -i 'error\|fail\|cannot' "$out"
		rspamd_fail "rspamc got $got verdicts for $# messages"
	fi
}

warmup=$((n < 300 ? n : 300))
scan "${files[@]:0:$warmup}"
rspamd_ticks=""
for ((p = 0; p < rspamd_passes; p++)); do
	before=$(worker_ticks)
	wall=$SECONDS
	scan "${files[@]}"
	after=$(worker_ticks)
	[ -n "$before" ] && [ -n "$after" ] || rspamd_fail "cannot read /proc/$worker/stat"
	ticks=$((after - before))
	awk -v n="$n" -v t="$ticks" -v hz="$clk_tck" -v w=$((SECONDS - wall)) 'BEGIN {
		printf "bench:   rspamd pass: %d messages, worker CPU %.2f s (%.0f us/msg), wall %d s\n", n, t / hz, 1e6 * t / hz / n, w }'
	if [ -z "$rspamd_ticks" ] || [ "$ticks" -lt "$rspamd_ticks" ]; then
		rspamd_ticks=$ticks
	fi
done
stop_rspamd
[ "$rspamd_ticks" -gt 0 ] || fail "rspamd used no CPU time: nothing was measured"

# ---------------------------------------------------------------- results

awk -v n="$n" -v tu="$triage_us" -v gu="$gmime_us" -v rt="$rspamd_ticks" -v hz="$clk_tck" 'BEGIN {
	triage = 1e6 / tu; gmime = 1e6 / gu; rspamd = n / (rt / hz)
	printf "bench: CPU per message: triage normalize+classify %.1f us, GMime parse-only %.1f us, rspamd %.0f us\n", tu, gu, 1e6 / rspamd
	printf "bench: goals: 25x rspamd %s, half of GMime parse-only %s\n", (triage / rspamd >= 25) ? "met" : "NOT met", (triage / gmime >= 0.5) ? "met" : "NOT met"
	printf "bench: compare triage=%.0f msg/cpu-s rspamd=%.0f msg/cpu-s gmime_parse=%.0f msg/cpu-s vs_rspamd=%.1f vs_gmime=%.2f\n", triage, rspamd, gmime, triage / rspamd, triage / gmime
}'
