#!/usr/bin/env bash
# tests/integration/faults.sh — faults under the store and the outbox, each
# with its outcome checked: nothing lost, nothing stored twice.
#   - disk full under the store (a small tmpfs): `triage ingest` refuses
#     what does not fit with an error naming the database, the database
#     stays intact, and after space returns everything is stored once;
#   - disk full under `triage serve`: new IMAP mail stays unmarked in the
#     mailbox (a temporary failure), serve keeps running, and the mail is
#     triaged once space returns;
#   - SQLite busy (another process holds the write lock longer than
#     busy_timeout): ingest fails cleanly, serve waits; nothing lost;
#   - `triage deliver` killed with SIGKILL at random points while it sends
#     150 acknowledgments through Postfix to Dovecot: every one arrives; a
#     message in flight at the kill is resent once under the same
#     Message-ID (the only copy that can be doubled), never more.
set -u
TR_TOP=${TR_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$TR_TOP/tests/lib/tap.sh"
. "$TR_TOP/tests/lib/servers.sh"
. "$TR_TOP/tests/lib/triage.sh"
BIN=${TRIAGE_BIN:-$TR_TOP/build/triage}
[ -x "$BIN" ] || bail "$BIN is not built"

srv_init
srv_start_dovecot support c
full=$SRV_DIR/full
mkdir -p "$full"
mount -t tmpfs -o size=1M,mode=0755 triage-test "$full" || bail "cannot mount a tmpfs on $full (needs root)"
srv_at_exit "umount -l '$full'"
tr_test_conf "$full/t.db"
tr_test_imap_conf
T() { "$BIN" "$@" -c "$conf/triage.conf"; }
q() { sqlite3 "$db" "$1"; }

# -- 1. disk full under `triage ingest` ----------------------------------------------
mail=$SRV_DIR/mail
mkdir -p "$mail"
for i in $(seq 1 400); do
	printf 'From: C%d <c%d@cust%d.example>\nTo: support@example.test\nSubject: question %d about my account\nMessage-ID: <full-%d@cust.example>\n\nHello, case %d: %s\n' \
		"$i" "$i" "$i" "$i" "$i" "$i" "$(printf 'the export of report %d fails. ' $(seq "$i" $((i + 15))))" \
		>"$mail/m$(printf %03d "$i").eml"
done
T ingest --no-deliver "$mail" >"$SRV_DIR/full.out" 2>"$SRV_DIR/full.err"
status=$?
is "$status" 1 "disk full: ingest exits 1 (some messages not stored)"
like "$(head -1 "$SRV_DIR/full.err")" "not stored: .*(disk is full|disk I/O).*\\($full/t.db\\)" \
	"the error names the cause and the database"
stored=$(grep -c ': TKT-' "$SRV_DIR/full.out")
diag "stored before the disk filled: $stored of 400"
ok $([ "$stored" -gt 0 ] && [ "$stored" -lt 400 ] && echo 0 || echo 1) "the disk filled part-way"
is "$(q "PRAGMA integrity_check")" ok "the database is intact"
is "$(q "SELECT count(*) FROM tickets WHERE is_incident = 0")" "$stored" "exactly what was reported stored is in the store"
mount -o remount,size=64M "$full" || bail "cannot grow the tmpfs"
T ingest --no-deliver "$mail" >/dev/null 2>"$SRV_DIR/full2.err"
ok $? "with space back, the same run stores the rest" || diag "$(head -3 "$SRV_DIR/full2.err")"
is "$(q "SELECT count(*) FROM tickets WHERE is_incident = 0")" 400 "400 tickets, each once"
is "$(q "SELECT count(*) FROM outbox WHERE kind = 'ack'")" 400 "400 acknowledgments, each once"

# -- 2. disk full under `triage serve` ------------------------------------------------
tr_start_serve
srv_at_exit 'tr_stop_serve KILL'
tr_drop 1 5 disk
wait_until 20 tr_tickets_are 405
ok $? "serve triages new mail"
wait_until 10 tr_untriaged_is 0
avail=$(df --output=avail -B1 "$full" | tail -1)
head -c "$avail" /dev/zero >"$full/filler" 2>/dev/null
tr_drop 6 25 disk
wait_until 20 grep -qE 'store: .*(disk is full|disk I/O)|commit of [0-9]+ messages failed' "$SRV_DIR/serve.log"
ok $? "disk full: serve logs the store failure"
sleep 2
is "$(tr_untriaged)" 20 "the 20 new messages stay unmarked in the mailbox"
kill -0 "$serve_pid" 2>/dev/null
ok $? "serve keeps running"
rm -f "$full/filler"
wait_until 60 tr_tickets_are 425
ok $? "space back: the 20 messages are triaged ($(tr_tickets) tickets)"
wait_until 20 tr_untriaged_is 0
ok $? "and marked"
is "$(q "SELECT count(*) FROM (SELECT message_id FROM messages GROUP BY message_id HAVING count(*) > 1)")" 0 \
	"no message stored twice"

# -- 3. SQLite busy --------------------------------------------------------------------
sed -i 's/^busy_timeout = .*/busy_timeout = 1s/' "$conf/triage.conf"
tr_stop_serve TERM
tr_start_serve
wait_until 10 grep -q 'imap support: connected' "$SRV_DIR/serve.log"
hold() { # SECONDS: hold the write lock from another process
	{ echo "BEGIN IMMEDIATE;"; sleep "$1"; echo "COMMIT;"; } | sqlite3 "$db" &
	holder=$!
	sleep 0.3
}
hold "$(tr_scaled 4)"   # an instrumented triage starts slower: hold longer
printf 'From: Busy <busy@busy.example>\nTo: support@example.test\nSubject: busy\nMessage-ID: <busy-1@busy.example>\n\nThe store is locked.\n' \
	>"$SRV_DIR/busy.eml"
T ingest --no-deliver "$SRV_DIR/busy.eml" >/dev/null 2>"$SRV_DIR/busy.err"
status=$?
is "$status" 1 "SQLite busy past busy_timeout: ingest exits 1"
like "$(cat "$SRV_DIR/busy.err")" "locked|busy" "... saying the database is locked"
tr_drop 26 35 busy
wait "$holder"
wait_until 30 tr_tickets_are 435
ok $? "serve waited out the lock: the 10 messages that came meanwhile are triaged" ||
	diag "$(tr_tickets) tickets; $(tail -8 "$SRV_DIR/serve.log" | cut -c1-200)"
T ingest --no-deliver "$SRV_DIR/busy.eml" >/dev/null 2>&1
ok $? "after the lock is gone, ingest stores the message"
is "$(q "SELECT count(*) FROM messages WHERE message_id = 'busy-1@busy.example'")" 1 "once"
tr_stop_serve TERM

# -- 4. `triage deliver` killed at random points -------------------------------------------
srv_start_postfix "" "recipient_delimiter=+"
cat >>"$conf/triage.conf" <<EOF

[smtp]
host = localhost
port = $SMTP_PORT
tls = required
ca_file = $SRV_CA
ambiguous_delay = 60s
ambiguous_retries = 1
EOF
ddb=$SRV_DIR/deliver.db
for i in $(seq 1 150); do
	printf 'From: Cust %d <c+%d@example.test>\nTo: support@example.test\nSubject: order %d\nMessage-ID: <kill-%d@example.test>\n\nWhere is my order %d?\n' \
		"$i" "$i" "$i" "$i" "$i" >"$SRV_DIR/k$i.eml"
done
"$BIN" ingest -c "$conf/triage.conf" --db "$ddb" --no-deliver --now 2026-11-16T09:00:00Z "$SRV_DIR"/k*.eml >/dev/null 2>&1
is "$(sqlite3 "$ddb" "SELECT count(*) FROM outbox WHERE kind = 'ack'")" 150 "150 acknowledgments queued"
kills=0
for round in 1 2 3 4 5 6; do
	"$BIN" deliver -c "$conf/triage.conf" --db "$ddb" --now 2026-11-16T09:01:00Z >/dev/null 2>&1 &
	pid=$!
	sleep "0.$((1 + RANDOM % 6))"
	kill -9 "$pid" 2>/dev/null && kills=$((kills + 1))
	wait "$pid" 2>/dev/null
done
diag "killed triage deliver $kills times"
inflight=$(sqlite3 "$ddb" "SELECT count(*) FROM outbox WHERE state = 'sending'")
diag "rows in flight at the last kill: $inflight"
"$BIN" deliver -c "$conf/triage.conf" --db "$ddb" --now 2026-11-16T09:01:00Z >"$SRV_DIR/d1.out" 2>&1
"$BIN" deliver -c "$conf/triage.conf" --db "$ddb" --now 2026-11-16T11:00:00Z >"$SRV_DIR/d2.out" 2>&1
ok $? "a final run to the end succeeds" || diag "$(tail -3 "$SRV_DIR/d2.out")"
is "$(sqlite3 "$ddb" "SELECT count(*) FROM outbox WHERE state != 'sent'")" 0 "every row is sent"
ambiguous=$(sqlite3 "$ddb" "SELECT count(*) FROM outbox WHERE last_error LIKE 'ambiguous%' OR attempts > 1")
maildir=$SRV_DIR/dovecot/home/c/Maildir
wait_until 30 imap_wait_count c INBOX 150 1
files=$(find "$maildir/new" "$maildir/cur" -type f | wc -l)
distinct=$(find "$maildir/new" "$maildir/cur" -type f -exec grep -hi -m1 '^Message-ID:' {} + | sort -u | wc -l)
diag "mailbox: $files messages, $distinct distinct Message-IDs; rows resent after a kill: $ambiguous"
is "$distinct" 150 "nothing lost: every acknowledgment arrived"
ok $([ $((files - distinct)) -le "$kills" ] && echo 0 || echo 1) \
	"a copy is doubled only when it was in flight at a kill ($((files - distinct)) doubled, $kills kills)"
done_testing
