#!/usr/bin/env bash
# tests/integration/store-crash.sh — nothing lost, nothing twice.
# 1,000 distinct messages are ingested by a `triage ingest` that is killed
# with SIGKILL at random points once it commits (0..300 ms after its
# first commit), again and again; then everything is
# ingested once more to the end.  Exactly one ticket per distinct message
# and exactly one acknowledgment per ticket must result.  Then two
# processes ingest the same messages at the same time into a fresh store.
set -u
TR_TOP=${TR_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$TR_TOP" || exit 2
. tests/lib/tap.sh
. tests/lib/servers.sh   # wait_until
BIN=${TRIAGE_BIN:-build/triage}
[ -x "$BIN" ] || bail "$BIN is not built"
tmp=$(mktemp -d /tmp/triage-crash.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/mail"
words=(invoice export login password webhook dashboard printer mobile report import sync token
       billing refund upgrade calendar backup restore contract domain certificate proxy)
for i in $(seq 1 1000); do
	w1=${words[$((i % 22))]}; w2=${words[$(((i / 22) % 22))]}; w3=${words[$(((i * 7) % 22))]}
	{
		printf 'From: Customer %d <c%d@crash%d.example>\nTo: support@example.test\n' "$i" "$i" "$((i % 50))"
		printf 'Subject: %s %s question %d\n' "$w1" "$w2" "$i"
		# every third message has no Message-ID: the content hash must dedup it
		[ $((i % 3)) -eq 0 ] || printf 'Message-ID: <crash-%d@crash.example>\n' "$i"
		printf 'Date: Mon, 16 Nov 2026 09:%02d:00 +0000\n\n' "$((i % 60))"
		printf 'Hello,\nticket %d: the %s of %s fails when %s runs (code %d).\nThanks\n' \
			"$i" "$w1" "$w2" "$w3" "$((i * 7919 % 10007))"
	} > "$tmp/mail/m$(printf %04d "$i").eml"
done
db="$tmp/crash.db"
ingest() { "$BIN" ingest -c conf/triage.conf --db "$1" --now 2026-11-16T10:00:00Z --batch "${2:-16}" "$tmp/mail" >/dev/null 2>"$tmp/err.$RANDOM"; }

stored() { sqlite3 "$db" "SELECT count(*) FROM messages" 2>/dev/null || echo 0; }
# committing: this run has stored something new (or everything is stored,
# or it ended)
committing() { local n; n=$(stored); [ "${n:-0}" -gt "$1" ] || [ "${n:-0}" -ge 1000 ] || ! kill -0 "$pid" 2>/dev/null; }
kills=0 at_kill=()
for round in $(seq 1 12); do
	before=$(stored)
	# triage itself in the background ($! is its PID; a function in the
	# background would be a subshell, and SIGKILL would hit that instead)
	"$BIN" ingest -c conf/triage.conf --db "$db" --now 2026-11-16T10:00:00Z --batch 8 "$tmp/mail" \
		>/dev/null 2>>"$tmp/err.killed" &
	pid=$!
	# a random point once it commits: 0..300 ms after its first commit
	wait_until 30 committing "${before:-0}"
	sleep "0.$(printf %03d $((RANDOM % 300)))"
	if kill -9 "$pid" 2>/dev/null; then kills=$((kills + 1)); at_kill+=("$(stored)"); fi
	wait "$pid" 2>/dev/null
done
diag "killed $kills of 12 runs with SIGKILL; messages stored at each kill: ${at_kill[*]}"
partial=0
for n in "${at_kill[@]}"; do [ "$n" -gt 0 ] && [ "$n" -lt 1000 ] && partial=$((partial + 1)); done
ok $([ "$partial" -ge 2 ] && echo 0 || echo 1) "at least 2 runs were killed between commits ($partial with 1..999 stored)"
ok $([ "$kills" -ge 3 ] && echo 0 || echo 1) "at least 3 runs were killed mid-ingest"
ingest "$db" 16
ok $? "a final run to the end succeeds"
q() { sqlite3 "$1" "$2"; }
is "$(q "$db" "SELECT count(*) FROM tickets WHERE is_incident = 0")" 1000 "exactly one ticket per distinct message"
is "$(q "$db" "SELECT count(*) FROM messages WHERE direction = 'in'")" 1000 "exactly one stored message each"
is "$(q "$db" "SELECT count(*) FROM outbox WHERE kind = 'ack'")" 1000 "one acknowledgment per ticket"
is "$(q "$db" "SELECT count(*) FROM (SELECT ticket_id FROM outbox WHERE kind = 'ack' GROUP BY ticket_id HAVING count(*) > 1)")" 0 \
	"no ticket with two acknowledgments"
is "$(q "$db" "PRAGMA integrity_check")" ok "the database is intact"
ingest "$db" 16
is "$(q "$db" "SELECT count(*) FROM tickets WHERE is_incident = 0")" 1000 "ingesting everything again creates nothing"

# Two processes at once on a fresh store.
db2="$tmp/two.db"
ingest "$db2" 8 & p1=$!
ingest "$db2" 8 & p2=$!
wait "$p1"; s1=$?
wait "$p2"; s2=$?
is "$s1 $s2" "0 0" "two concurrent ingest processes both succeed"
is "$(q "$db2" "SELECT count(*) FROM tickets WHERE is_incident = 0")" 1000 "two processes: one ticket per message"
is "$(q "$db2" "SELECT count(*) FROM outbox WHERE kind = 'ack'")" 1000 "two processes: one acknowledgment per ticket"
done_testing
