#!/usr/bin/env bash
# bench/imap.sh — IMAP path throughput: messages per second from a real
# Dovecot mailbox into tickets.
#
# N messages (default 1000; BENCH_IMAP_N) are written straight into the
# support maildir of a Dovecot started with tests/lib/servers.sh; then
# `triage serve` starts with one [imap support] folder (IMAPS, CA-verified,
# mark = keyword) and no [smtp] relay, so the figure is the IMAP channel and
# the store: catch-up search, fetch, normalize, classify, decide, commit,
# mark.  The clock runs from the start of triage serve until the store holds
# N tickets; the time until the last message carries $Triaged is shown too.
# Run once with [store] synchronous = full (the default) and once with
# normal.  For comparison, the same messages straight from the maildir
# files with `triage ingest --batch 32` (no IMAP): what the channel costs.
#
#     bench: imap_ingest=N msg/s
#
# Needs root (Dovecot switches users) and the packages of ./bootstrap; as
# another user it says so and exits 0 (make bench goes on).
set -u
TR_TOP=${TR_TOP:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$TR_TOP" || exit 2
N=${BENCH_IMAP_N:-1000}
BIN=$TR_TOP/build/triage
[ -x "$BIN" ] || { echo "bench: imap: $BIN is not built" >&2; exit 1; }
if [ "$(id -u)" != 0 ]; then
	echo "bench: imap_ingest skipped: needs root (Dovecot switches users)"
	exit 0
fi
. "$TR_TOP/tests/lib/tap.sh"
bail() { echo "bench: imap FAILED: $*" >&2; exit 1; }
. "$TR_TOP/tests/lib/servers.sh"

srv_init
srv_start_dovecot support
maildir=$SRV_DIR/dovecot/home/support/Maildir

# Varied, support-like messages (as tests/integration/serve-imap.sh makes
# them): different senders, subjects and words, a few lines each.
words=(invoice export login password webhook dashboard printer mobile report import sync token
       billing refund upgrade calendar backup restore contract domain certificate proxy license
       storage invite folder search filter chart tablet laptop keyboard)
drop() { # FIRST LAST
	local i w1 w2 w3
	for ((i = $1; i <= $2; i++)); do
		w1=${words[$((i % 31))]} w2=${words[$(((i / 31) % 31))]} w3=${words[$(((i * 7) % 31))]}
		printf 'From: Customer %d <c%d@cust%d.example>\nTo: support@example.test\nSubject: %s %s question %d\nMessage-ID: <bench-%d@cust.example>\nDate: Mon, 16 Nov 2026 09:00:00 +0000\nContent-Type: text/plain; charset=utf-8\n\nHello,\n\ncase %d: the %s of our %s fails when %s runs (code %d).\nIt started this morning and affects %d of our users.\nCould you have a look?\n\nThanks,\nCustomer %d\n' \
			"$i" "$i" "$((i % 97))" "$w1" "$w2" "$i" "$i" "$i" "$w1" "$w2" "$w3" "$((i * 7919 % 10007))" "$((i % 50 + 1))" "$i" \
			>"$maildir/new/$((1700000000 + i)).M${i}P$$.bench"
	done
	chown -R 65534:65534 "$maildir"
}

conf=$SRV_DIR/conf
cp -r "$TR_TOP/conf" "$conf"
sed -i "s|^templates = .*|templates = $TR_TOP/templates|; s|^agent_domains = .*|agent_domains = agents.example.test|" \
	"$conf/triage.conf"
cat >>"$conf/triage.conf" <<EOF

[serve]
drain_timeout = 10s

[imap support]
host = localhost
port = $IMAPS_PORT
security = imaps
ca_file = $SRV_CA
user = support
password = $SRV_PASSWORD
folder = INBOX
mark = keyword
EOF

untriaged() {
	local out
	out=$(srv_imap_curl support INBOX --request 'SEARCH UNKEYWORD $Triaged' 2>/dev/null | tr -d '\r') || { echo "?"; return; }
	set -- ${out#* SEARCH}
	echo $#
}
none_untriaged() { [ "$(untriaged)" = 0 ]; }

# run SYNC: a fresh store, the mailbox reset to untriaged, one timed run.
run() {
	local sync=$1 db=$SRV_DIR/bench-$1.db pid t0 t_tickets t_marked
	sed -i "s|^synchronous = .*|synchronous = $sync|" "$conf/triage.conf"
	tickets_are() { [ "$(sqlite3 "$db" 'SELECT count(*) FROM tickets WHERE is_incident = 0' 2>/dev/null || echo 0)" -ge "$N" ]; }
	t0=$(_srv_now_ms)
	"$BIN" serve -c "$conf/triage.conf" --db "$db" >"$SRV_DIR/serve-$sync.log" 2>&1 </dev/null &
	pid=$!
	if ! wait_until 600 tickets_are; then
		kill -KILL "$pid" 2>/dev/null
		tail -n 5 "$SRV_DIR/serve-$sync.log" >&2
		bail "not $N tickets within 600 s (synchronous = $sync)"
	fi
	t_tickets=$(_srv_now_ms)
	wait_until 120 none_untriaged || bail "messages left without \$Triaged (synchronous = $sync)"
	t_marked=$(_srv_now_ms)
	kill -TERM "$pid"
	wait "$pid" || bail "triage serve exited with status $? (synchronous = $sync)"
	RATE=$(( N * 1000 / (t_tickets - t0) ))
	DETAIL="$N messages, $(( t_tickets - t0 )) ms from the start of triage serve to the last ticket, all marked after $(( t_marked - t0 )) ms"
}

drop 1 "$N"
run full
echo "bench: imap_ingest=$RATE msg/s"
echo "  ($DETAIL; [store] synchronous = full; $(nproc) cores)"
# The same messages again, untriaged, into a fresh store.
srv_stop_dovecot
find "$maildir/cur" "$maildir/new" -type f -delete
rm -f "$maildir"/dovecot-uidlist "$maildir"/dovecot.index* "$maildir"/dovecot-keywords
drop 1 "$N"
srv_restart_dovecot
run normal
echo "bench: imap_ingest_sync_normal=$RATE msg/s"
echo "  ($DETAIL; [store] synchronous = normal)"

# The same pipeline without IMAP: the files themselves, batches of 32 as the
# IMAP channel commits them.
sed -i "s|^synchronous = .*|synchronous = full|" "$conf/triage.conf"
t0=$(_srv_now_ms)
"$BIN" ingest -c "$conf/triage.conf" --db "$SRV_DIR/bench-files.db" --batch 32 "$maildir/new" "$maildir/cur" \
	>"$SRV_DIR/ingest.log" 2>&1 || bail "triage ingest of the maildir failed: $(tail -n 2 "$SRV_DIR/ingest.log")"
t1=$(_srv_now_ms)
echo "bench: file_ingest=$(( N * 1000 / (t1 - t0) )) msg/s"
echo "  (the same $N messages from the maildir files with triage ingest --batch 32, no IMAP: $(( t1 - t0 )) ms; synchronous = full)"
