#!/usr/bin/env bash
# tests/integration/serve-config.sh — how `triage serve` reads [serve]:
# every documented key (pidfile, user, log, log_level, sla_interval,
# outbox_interval, drain_timeout) is accepted without a word, an unknown key
# is warned about once, at warning level, and a malformed value refuses the
# start (exit 2) at error level.  No channel is configured: nothing to start
# but the SLA clock.
set -u
TR_TOP=${TR_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$TR_TOP" || exit 2
. tests/lib/tap.sh
bin=${TRIAGE_BIN:-build/triage}
[ -x "$bin" ] || bail "$bin is not built (make)"
tmp=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
cp -r conf "$tmp/conf"
sed -i "s|^templates = .*|templates = $TR_TOP/templates|" "$tmp/conf/triage.conf"
base=$tmp/conf/triage.conf
conf_with() { # NAME LINES...: base + [serve] with LINES
	local out=$tmp/conf/$1.conf
	shift
	{ cat "$base"; printf '\n[serve]\n'; printf '%s\n' "$@"; } >"$out"
	echo "$out"
}
good=$(conf_with good "pidfile = $tmp/serve.pid" "log = stderr" "log_level = info" "sla_interval = 1s" \
	"outbox_interval = 1s" "drain_timeout = 5s" "bogus_key = 1")
"$bin" serve -c "$good" --db "$tmp/t.db" >"$tmp/serve.log" 2>&1 </dev/null &
pid=$!
for _ in $(seq 100); do
	grep -q 'triage serve: started' "$tmp/serve.log" && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
log=$(cat "$tmp/serve.log")
like "$log" 'triage serve: started' "triage serve starts with every [serve] key set" || diag "$log"
[ -s "$tmp/serve.pid" ]; ok $? "the pid file of [serve] pidfile is written"
is "$(grep -c "unknown key" <<<"$log")" 1 "one warning: the unknown key, once"
like "$log" "triage\\[warning\\]: .*\\[serve\\] unknown key 'bogus_key'" "logged as a warning, not an error"
kill -TERM "$pid"
wait "$pid"
is "$?" 0 "SIGTERM: exit status 0"
pid=""

bad=$(conf_with bad "sla_interval = soon")
"$bin" serve -c "$bad" --db "$tmp/t.db" >"$tmp/bad.log" 2>&1 </dev/null
is "$?" 2 "a malformed [serve] value refuses the start (exit 2)"
like "$(cat "$tmp/bad.log")" "triage\\[error\\]: .*\\[serve\\] sla_interval: 'soon' is not a valid number" "at error level, with file and line"
done_testing
