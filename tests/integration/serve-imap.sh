#!/usr/bin/env bash
# tests/integration/serve-imap.sh — `triage serve` watching a real Dovecot
# support mailbox over IMAPS:
#   - a self-signed server certificate is refused unless its CA is configured;
#   - new mail during IDLE becomes a ticket within 2 s;
#   - 500 messages delivered while triage is stopped are all triaged once on start;
#   - SIGKILL at random points during a 1,000-message run, restart: every message
#     exactly one ticket and one acknowledgment, none left unmarked;
#   - UIDVALIDITY reset (the folder rebuilt, marks lost): a rescan, no duplicates;
#   - Dovecot restarted mid-run: the gateway reconnects, nothing lost;
#   - a poisoned message (empty, oversized) is quarantined and the rest flow;
#   - SIGHUP reloads; a broken configuration is refused and the old one kept;
#     SIGTERM stops within the drain bound.
set -u
TR_TOP=${TR_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$TR_TOP/tests/lib/tap.sh"
. "$TR_TOP/tests/lib/servers.sh"
BIN=${TRIAGE_BIN:-$TR_TOP/build/triage}
[ -x "$BIN" ] || bail "$BIN is not built"

. "$TR_TOP/tests/lib/triage.sh"
srv_init
srv_start_dovecot support
tr_test_conf "$SRV_DIR/t.db"
tr_test_imap_conf
maildir=$SRV_DIR/dovecot/home/support/Maildir
q() { sqlite3 "$db" "$1"; }
stored() { [ "$(q "SELECT count(*) FROM messages WHERE message_id = '$1'")" = 1 ]; }
srv_at_exit 'tr_stop_serve KILL'

# 1. A certificate we cannot verify: refused, nothing fetched.
sed '/^ca_file = /d' "$conf/triage.conf" >"$conf/noca.conf"
tr_drop 1 1
tr_start_serve "$conf/noca.conf"
wait_until 10 grep -q 'certificate not trusted' "$SRV_DIR/serve.log"
ok $? "a self-signed server certificate is refused without its CA"
tr_stop_serve TERM
is "$(tr_tickets)" 0 "nothing was fetched over the untrusted connection"

# 2. With the CA: the waiting message, then new mail during IDLE.
tr_start_serve
wait_until 15 tr_tickets_are 1
ok $? "with the CA configured, the waiting message becomes a ticket"
wait_until 10 grep -q 'imap support: connected' "$SRV_DIR/serve.log"
printf 'From: Dana <dana@idle.example>\nTo: support@example.test\nSubject: Urgent: site down\nMessage-ID: <idle-1@idle.example>\n\nOur site is down for all users.\n' >"$SRV_DIR/idle.eml"
sleep 1
t0=$(date +%s%N)
lmtp_send dana@idle.example support@example.test "$SRV_DIR/idle.eml"
wait_until 10 stored idle-1@idle.example
t1=$(date +%s%N)
ms=$(((t1 - t0) / 1000000))
bound=$(tr_scaled 2000)
diag "new mail to ticket during IDLE: $ms ms (bound 2 s x TR_TIME_FACTOR $TR_TIME_FACTOR = $((bound / 1000)) s)"
ok $([ "$ms" -le "$bound" ] && echo 0 || echo 1) "new mail during IDLE is triaged within $((bound / 1000)) s"
like "$(cat "$SRV_DIR/serve.log")" 'ticket=TKT-[0-9]{6} new P[1-4] ' "one log line per decision with the ticket id"
unlike_body=$(grep -c 'Our site is down' "$SRV_DIR/serve.log")
is "$unlike_body" 0 "no message body in the log at info level"

# 3. SIGHUP: a broken configuration is refused, a good one reloads.
cp "$conf/triage.conf" "$conf/triage.conf.good"
printf '\n[rule broken\n' >>"$conf/triage.conf"
kill -HUP "$serve_pid"
wait_until 5 grep -q 'reload refused' "$SRV_DIR/serve.log"
ok $? "SIGHUP with a broken configuration: refused, the old one stays"
cp "$conf/triage.conf.good" "$conf/triage.conf"
kill -HUP "$serve_pid"
wait_until 5 grep -q 'reloaded (generation 1)' "$SRV_DIR/serve.log"
ok $? "SIGHUP with a good configuration: reloaded"
t0=$(date +%s)
tr_stop_serve TERM
status=$?
t1=$(date +%s)
is "$status" 0 "SIGTERM: clean exit"
ok $([ $((t1 - t0)) -le "$(tr_scaled 10)" ] && echo 0 || echo 1) \
	"SIGTERM: stopped within the drain bound ($((t1 - t0)) s of 10 s x TR_TIME_FACTOR $TR_TIME_FACTOR)"
ok $([ ! -e "$SRV_DIR/serve.pid" ] && echo 0 || echo 1) "the pid file is removed"

# 4. 500 messages while triage is stopped; all triaged once on start.
before=$(tr_tickets)
tr_drop 2 501
tr_start_serve
wait_until 60 tr_tickets_are "$((before + 500))"
ok $? "500 messages delivered while stopped: all triaged on start"
wait_until 20 tr_untriaged_is 0
ok $? "and all marked"

# 5. SIGKILL at random points during a 1,000-message run.
tr_drop 502 1501
kills=0
for round in 1 2 3 4 5 6; do
	sleep "0.$((2 + RANDOM % 7))"
	tr_stop_serve KILL && true
	kills=$((kills + 1))
	tr_start_serve
done
diag "killed triage serve $kills times during the run"
wait_until 90 tr_tickets_are "$((before + 1500))"
ok $? "after the kills: exactly one ticket per message ($(tr_tickets) tickets)"
wait_until 30 tr_untriaged_is 0
ok $? "none left unmarked"
is "$(q "SELECT count(*) FROM outbox WHERE kind = 'ack'")" "$(q "SELECT count(DISTINCT ticket_id) FROM outbox WHERE kind = 'ack'")" \
	"no ticket with two acknowledgments"
is "$(q "SELECT count(*) FROM (SELECT message_id FROM messages WHERE direction = 'in' GROUP BY message_id HAVING count(*) > 1)")" 0 \
	"no message stored twice"

# 6. Dovecot restarted while 200 new messages are being triaged.
tr_drop 1502 1701
sleep 0.3
srv_restart_dovecot
wait_until 60 tr_tickets_are "$((before + 1700))"
status=$?
ok $status "Dovecot restarted mid-run: every message triaged once"
[ $status = 0 ] || diag "$(tail -20 "$SRV_DIR/serve.log" | cut -c1-200)"
wait_until 20 tr_untriaged_is 0
ok $? "and marked after the reconnect"
like "$(cat "$SRV_DIR/serve.log")" 'imap support: .*(reconnect|retrying)' "the reconnect is logged"

# 7. A poisoned message: empty, and one over message_bytes; the rest flow.
: >"$maildir/new/1799999998.Mempty.test"
head -c 200000 /dev/zero | tr '\0' 'x' | sed 's/x\{76\}/&\n/g' >"$SRV_DIR/big.body"
{ printf 'From: big@big.example\nSubject: big\nMessage-ID: <big@big.example>\n\n'; cat "$SRV_DIR/big.body"; } \
	>"$maildir/new/1799999999.Mbig.test"
tr_drop 1702 1711
wait_until 30 tr_tickets_are "$((before + 1710))"
status=$?
ok $status "the messages around the poisoned ones are triaged"
[ $status = 0 ] || diag "$(tail -15 "$SRV_DIR/serve.log" | cut -c1-200; echo tickets: $(tr_tickets))"
wait_until 15 imap_wait_count support Quarantine 2 1
ok $? "the empty and the oversized message are in Quarantine"
like "$(cat "$SRV_DIR/serve.log")" 'moved to Quarantine' "the quarantine is logged"

# 8. UIDVALIDITY reset: the folder rebuilt without our marks.
tr_stop_serve TERM
n=$(tr_tickets)
for f in "$maildir"/cur/*; do mv "$f" "$maildir/new/$(basename "${f%%:2,*}")"; done
rm -f "$maildir"/dovecot-uidlist "$maildir"/dovecot.index* "$maildir"/dovecot-keywords
chown -R 65534:65534 "$maildir"
tr_start_serve
wait_until 60 tr_untriaged_is 0
ok $? "after a UIDVALIDITY reset everything is rescanned and marked again"
like "$(cat "$SRV_DIR/serve.log")" 'UIDVALIDITY changed' "the reset is noticed and logged"
is "$(tr_tickets)" "$n" "and no ticket is created twice"
tr_stop_serve TERM
done_testing
