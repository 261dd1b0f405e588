#!/usr/bin/env bash
# bench/milter.sh — what `triage milter` adds to a message's way through the
# MTA, on loopback:
#
#  1. direct: build/bench/milter_driver speaks the milter protocol to
#     `triage milter --no-store` (classification only: the mode the latency
#     goal is about) at $RATE msg/s, open loop, for $MESSAGES messages;
#     p50/p99 from each message's due time, the milter's VmRSS every
#     $MESSAGES/10 messages, then a closed loop for the highest rate;
#  2. the same with the ticket store on (SQLite, one fsync'd transaction
#     per message), $STORE_MESSAGES messages: reported separately;
#  3. Postfix on loopback relaying to smtp-sink (Dovecot is started only
#     because the test harness's Postfix wants its LMTP and SASL ports; no
#     mail goes there): the driver in --smtp mode times each SMTP
#     transaction at $SMTP_RATE msg/s, without and with smtpd_milters; the
#     added latency is the difference.  Then smtp-source, closed loop with
#     $SOURCE_SESSIONS sessions, for the highest rate through Postfix
#     without and with the milter.
#
# Every server runs in a temporary directory on loopback high ports and is
# stopped by PID (tests/lib/servers.sh); one that cannot start fails the
# script.  Needs root, Postfix, Dovecot, smtp-source/smtp-sink (./bootstrap)
# and `make all build/bench/milter_driver`.  docs/performance.md has the
# figures.
#
# Settings (environment):
#   MILTER_BENCH_MESSAGES=100000       direct, open loop
#   MILTER_BENCH_RATE=200              msg/s offered
#   MILTER_BENCH_CONNS=8               concurrent connections (MTA sessions)
#   MILTER_BENCH_MAX_MESSAGES=20000    direct, closed loop
#   MILTER_BENCH_STORE_MESSAGES=20000  with the ticket store
#   MILTER_BENCH_SMTP_MESSAGES=10000   through Postfix, each of without/with
#   MILTER_BENCH_SMTP_RATE=50          msg/s offered to Postfix (below what it
#                                      sustains here without the milter, so the
#                                      difference is the milter's, not queueing)
#   MILTER_BENCH_SOURCE_MESSAGES=10000 smtp-source, each of without/with
#   MILTER_BENCH_SOURCE_SESSIONS=16
#   MILTER_BENCH_CORPUS=…/spamassassin-easy-ham
# Last line:
#   bench: milter rate=R direct_p50_us=… direct_p99_us=… max_rate=… rss_10k_mb=… rss_100k_mb=…
#          store_p50_us=… store_p99_us=… postfix_p50_us=… postfix_milter_p50_us=… added_p50_us=… … 
# shellcheck disable=SC2154  # SRV_PID_* and the *_PORT variables are set by tests/lib/servers.sh
set -u
TR_TOP=$(cd "$(dirname "$0")/.." && pwd)
cd "$TR_TOP" || exit 2
. tests/lib/tap.sh
. tests/lib/servers.sh

MESSAGES=${MILTER_BENCH_MESSAGES:-100000}
RATE=${MILTER_BENCH_RATE:-200}
CONNS=${MILTER_BENCH_CONNS:-8}
MAX_MESSAGES=${MILTER_BENCH_MAX_MESSAGES:-20000}
STORE_MESSAGES=${MILTER_BENCH_STORE_MESSAGES:-20000}
SMTP_MESSAGES=${MILTER_BENCH_SMTP_MESSAGES:-10000}
SMTP_RATE=${MILTER_BENCH_SMTP_RATE:-50}
SOURCE_MESSAGES=${MILTER_BENCH_SOURCE_MESSAGES:-10000}
SOURCE_SESSIONS=${MILTER_BENCH_SOURCE_SESSIONS:-16}
CORPUS=${MILTER_BENCH_CORPUS:-$TR_TOP/../shared/corpus/mail/spamassassin-easy-ham}
TRIAGE=${TRIAGE_BIN:-$TR_TOP/build/triage}
DRIVER=$TR_TOP/build/bench/milter_driver

[ -x "$TRIAGE" ] || bail "milter bench: $TRIAGE missing (make)"
[ -x "$DRIVER" ] || bail "milter bench: $DRIVER missing (make build/bench/milter_driver)"
[ -d "$CORPUS" ] || bail "milter bench: no corpus at $CORPUS"
for prog in smtp-source smtp-sink; do
	command -v "$prog" >/dev/null || bail "milter bench: $prog not installed (postfix package)"
done

say() { printf 'bench: %s\n' "$*"; }
# field LINE NAME: the value of NAME=… in a driver's result line.
field() { sed -n "s/.* $2=\\([^ ]*\\).*/\\1/p" <<<"$1"; }
# The driver's result line (its last), its other lines shown as they are.
drive() { # LABEL ARGS...
	local label=$1 out status
	shift
	out=$("$DRIVER" -L "$label" -d "$CORPUS" "$@")
	status=$?
	grep -v "^bench: $label " <<<"$out" >&2
	[ $status = 0 ] || bail "milter bench: $label: the driver failed (status $status)"
	grep "^bench: $label " <<<"$out" | tail -n 1
}
triaged_count() { grep -c ' priority=' "$1" 2>/dev/null || true; }

srv_init
say "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%M:%SZ)"

conf=$SRV_DIR/conf
cp -R conf "$conf"
sed -i "s|^templates = .*|templates = $TR_TOP/templates|" "$conf/triage.conf"
cat >>"$conf/triage.conf" <<EOF

[milter]
recipients = support@example.test
tag_priority = P1
EOF

srv_free_port MILTER_PORT STORE_PORT SINK_PORT
start_milter() { # NAME PORT ARGS...
	local name=$1 port=$2
	shift 2
	srv_spawn "$name" "$SRV_DIR/$name.log" "$TRIAGE" milter -c "$conf/triage.conf" \
		--listen "inet:$port@127.0.0.1" "$@"
	wait_until 10 srv_port_listening "$port" ||
		{ srv_log_tail "$SRV_DIR/$name.log"; bail "milter bench: triage milter ($name) did not start on $port"; }
}

# --- 1. direct, classification only ---------------------------------------------------
start_milter milter "$MILTER_PORT" --no-store
say "direct: $MESSAGES messages at $RATE msg/s over $CONNS connections, then $MAX_MESSAGES closed loop"
direct=$(drive milter_direct -r "$RATE" -n "$MESSAGES" -m "$MAX_MESSAGES" -c "$CONNS" \
	-p "$SRV_PID_milter" -i $((MESSAGES >= 10 ? MESSAGES / 10 : 1)) "inet:127.0.0.1:$MILTER_PORT")
echo "$direct"

# --- 2. direct, with the ticket store --------------------------------------------------
start_milter milter-store "$STORE_PORT" --db "$SRV_DIR/triage.db"
say "direct with the ticket store: $STORE_MESSAGES messages at $RATE msg/s"
store=$(drive milter_direct_store -r "$RATE" -n "$STORE_MESSAGES" -c "$CONNS" -p "$SRV_PID_milter_store" \
	"inet:127.0.0.1:$STORE_PORT")
echo "$store"
tickets=$(sqlite3 "$SRV_DIR/triage.db" 'SELECT count(*) FROM tickets' 2>/dev/null || echo '?')
say "store: $tickets tickets in $SRV_DIR/triage.db ($(du -k "$SRV_DIR/triage.db" | cut -f1) KB)"
srv_kill milter-store

# --- 3. Postfix -> smtp-sink, without and with the milter ------------------------------
srv_start_dovecot support
srv_spawn sink "$SRV_DIR/sink.log" smtp-sink -u nobody "127.0.0.1:$SINK_PORT" 512
wait_until 10 srv_port_listening "$SINK_PORT" || bail "milter bench: smtp-sink did not start"
postfix_settings=(
	"transport_maps=inline:{ $SRV_DOMAIN=smtp:[127.0.0.1]:$SINK_PORT }"
	"defer_transports="
	"smtpd_sasl_auth_enable=no"
)
# One message file for smtp-source (no mbox From line).
MSG=$SRV_DIR/source.eml
first=$(find "$CORPUS" -name '*.eml' | sort | head -n 1)
sed '1{/^From /d}' "$first" >"$MSG"

WARMUP=200   # the driver's default warm-up, sent before it measures
# postfix_run LABEL MILTER_SPEC ("" = none): sets run_line, source_rate, triaged.
postfix_run() {
	local label=$1 spec=$2 before t0 t1
	srv_start_postfix "$spec" "${postfix_settings[@]}"
	before=$(triaged_count "$SRV_DIR/milter.log")
	run_line=$(drive "$label" --smtp -r "$SMTP_RATE" -n "$SMTP_MESSAGES" -w "$WARMUP" -c "$CONNS" \
		-p "$SRV_PID_milter" "inet:127.0.0.1:$SMTP_PORT")
	echo "$run_line"
	t0=$(date +%s%N)
	smtp-source -s "$SOURCE_SESSIONS" -m "$SOURCE_MESSAGES" -F "$MSG" -f customer@bench.example \
		-t support@example.test "127.0.0.1:$SMTP_PORT" >"$SRV_DIR/source-$label.log" 2>&1 ||
		{ srv_log_tail "$SRV_DIR/source-$label.log"; bail "milter bench: smtp-source failed ($label)"; }
	t1=$(date +%s%N)
	source_rate=$(awk -v n="$SOURCE_MESSAGES" -v ns=$((t1 - t0)) 'BEGIN { printf "%.0f", n / (ns / 1e9) }')
	say "$label: smtp-source, $SOURCE_SESSIONS sessions: $SOURCE_MESSAGES messages in $(((t1 - t0) / 1000000)) ms = $source_rate msg/s"
	triaged=$(($(triaged_count "$SRV_DIR/milter.log") - before))
	say "$label: the milter triaged $triaged of them"
	srv_stop_postfix
}

say "Postfix: $SMTP_MESSAGES SMTP transactions at $SMTP_RATE msg/s over $CONNS sessions, without and with smtpd_milters"
postfix_run postfix_plain ""
plain=$run_line plain_source=$source_rate
[ "$triaged" = 0 ] || bail "milter bench: Postfix without smtpd_milters, yet the milter saw $triaged messages"
postfix_run postfix_milter "inet:127.0.0.1:$MILTER_PORT"
with=$run_line with_source=$source_rate
want=$((WARMUP + SMTP_MESSAGES + SOURCE_MESSAGES))
# milter_default_action = accept would hide a milter that failed: every
# message must have been triaged.
[ "$triaged" = "$want" ] ||
	bail "milter bench: Postfix with the milter: $triaged of $want messages triaged (milter_default_action hid failures?)"

# --- summary ------------------------------------------------------------------------------
added() { echo $(($(field "$with" "$1") - $(field "$plain" "$1"))); }
say "Postfix at $SMTP_RATE msg/s, latency of an SMTP transaction (connect to the reply to the message text):"
say "  without the milter p50 $(field "$plain" p50_us) µs  p99 $(field "$plain" p99_us) µs  max $(field "$plain" max_us) µs"
say "  with the milter    p50 $(field "$with" p50_us) µs  p99 $(field "$with" p99_us) µs  max $(field "$with" max_us) µs"
say "  added             p50 $(added p50_us) µs  p99 $(added p99_us) µs"
say "Postfix, highest rate (smtp-source, $SOURCE_SESSIONS sessions): $plain_source msg/s without, $with_source msg/s with the milter"
rss=$(grep -o 'rss_[0-9k]*_mb=[0-9.]*' <<<"$direct" | tr '\n' ' ')
echo "bench: milter rate=$RATE direct_p50_us=$(field "$direct" p50_us) direct_p99_us=$(field "$direct" p99_us)" \
	"direct_max_us=$(field "$direct" max_us) max_rate=$(field "$direct" max_rate) ${rss}cpu_us=$(field "$direct" cpu_us)" \
	"store_p50_us=$(field "$store" p50_us) store_p99_us=$(field "$store" p99_us)" \
	"postfix_rate=$SMTP_RATE postfix_p50_us=$(field "$plain" p50_us) postfix_p99_us=$(field "$plain" p99_us)" \
	"postfix_milter_p50_us=$(field "$with" p50_us) postfix_milter_p99_us=$(field "$with" p99_us)" \
	"added_p50_us=$(added p50_us) added_p99_us=$(added p99_us)" \
	"postfix_max_rate=$plain_source postfix_milter_max_rate=$with_source"
