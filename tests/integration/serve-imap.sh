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

srv_init
srv_start_dovecot support
conf=$SRV_DIR/conf
cp -r "$TR_TOP/conf" "$conf"
db=$SRV_DIR/t.db
sed -i "s|^templates = .*|templates = $TR_TOP/templates|; s|^agent_domains = .*|agent_domains = agents.example.test|; s|^path = /var/lib/triage/triage.db|path = $db|" \
	"$conf/triage.conf"
cat >>"$conf/triage.conf" <<EOF

[serve]
sla_interval = 2s
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
quarantine = Quarantine
message_bytes = 100K
EOF
maildir=$SRV_DIR/dovecot/home/support/Maildir
q() { sqlite3 "$db" "$1"; }
tickets() { q "SELECT count(*) FROM tickets WHERE is_incident = 0" 2>/dev/null || echo 0; }

words=(invoice export login password webhook dashboard printer mobile report import sync token
       billing refund upgrade calendar backup restore contract domain certificate proxy license
       storage invite folder search filter chart tablet laptop keyboard)
# drop FIRST LAST: messages written straight into the maildir (fast).
drop() {
	local i
	for i in $(seq "$1" "$2"); do
		local w1=${words[$((i % 31))]} w2=${words[$(((i / 31) % 31))]} w3=${words[$(((i * 7) % 31))]}
		printf 'From: Customer %d <c%d@cust%d.example>\nTo: support@example.test\nSubject: %s %s question %d\nMessage-ID: <serve-%d@cust.example>\nDate: Mon, 16 Nov 2026 09:00:00 +0000\n\nHello, case %d: the %s of %s fails when %s runs (code %d).\n' \
			"$i" "$i" "$((i % 97))" "$w1" "$w2" "$i" "$i" "$i" "$w1" "$w2" "$w3" "$((i * 7919 % 10007))" \
			>"$maildir/new/$((1700000000 + i)).M${i}P$$.test"
	done
	chown -R 65534:65534 "$maildir"
}
# For wait_until, which runs its command again and again: no $(...) in its
# arguments (that would be expanded once, before the first try).
tickets_are() { [ "$(tickets)" = "$1" ]; }
untriaged_is() { [ "$(untriaged)" = "$1" ]; }
stored() { [ "$(q "SELECT count(*) FROM messages WHERE message_id = '$1'")" = 1 ]; }
untriaged() {
	local out
	out=$(srv_imap_curl support INBOX --request 'SEARCH UNKEYWORD $Triaged' 2>/dev/null | tr -d '\r') || { echo "?"; return; }
	set -- ${out#* SEARCH}
	echo $#
}

serve_pid=""
start_serve() { # [CONF]
	: >"$SRV_DIR/serve.log"
	"$BIN" serve -c "${1:-$conf/triage.conf}" --pidfile "$SRV_DIR/serve.pid" >>"$SRV_DIR/serve.log" 2>&1 &
	serve_pid=$!
}
stop_serve() { # SIGNAL
	[ -n "$serve_pid" ] || return 0
	kill "-${1:-TERM}" "$serve_pid" 2>/dev/null
	wait "$serve_pid" 2>/dev/null
	local status=$?
	serve_pid=""
	return $status
}
srv_at_exit 'stop_serve KILL'

# 1. A certificate we cannot verify: refused, nothing fetched.
sed '/^ca_file = /d' "$conf/triage.conf" >"$conf/noca.conf"
drop 1 1
start_serve "$conf/noca.conf"
wait_until 10 grep -q 'certificate not trusted' "$SRV_DIR/serve.log"
ok $? "a self-signed server certificate is refused without its CA"
stop_serve TERM
is "$(tickets)" 0 "nothing was fetched over the untrusted connection"

# 2. With the CA: the waiting message, then new mail during IDLE.
start_serve
wait_until 15 tickets_are 1
ok $? "with the CA configured, the waiting message becomes a ticket"
wait_until 10 grep -q 'imap support: connected' "$SRV_DIR/serve.log"
printf 'From: Dana <dana@idle.example>\nTo: support@example.test\nSubject: Urgent: site down\nMessage-ID: <idle-1@idle.example>\n\nOur site is down for all users.\n' >"$SRV_DIR/idle.eml"
sleep 1
t0=$(date +%s%N)
lmtp_send dana@idle.example support@example.test "$SRV_DIR/idle.eml"
wait_until 10 stored idle-1@idle.example
t1=$(date +%s%N)
ms=$(((t1 - t0) / 1000000))
diag "new mail to ticket during IDLE: $ms ms"
ok $([ "$ms" -le 2000 ] && echo 0 || echo 1) "new mail during IDLE is triaged within 2 s"
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
stop_serve TERM
status=$?
t1=$(date +%s)
is "$status" 0 "SIGTERM: clean exit"
ok $([ $((t1 - t0)) -le 10 ] && echo 0 || echo 1) "SIGTERM: stopped within the drain bound ($((t1 - t0)) s)"
ok $([ ! -e "$SRV_DIR/serve.pid" ] && echo 0 || echo 1) "the pid file is removed"

# 4. 500 messages while triage is stopped; all triaged once on start.
before=$(tickets)
drop 2 501
start_serve
wait_until 60 tickets_are "$((before + 500))"
ok $? "500 messages delivered while stopped: all triaged on start"
wait_until 20 untriaged_is 0
ok $? "and all marked"

# 5. SIGKILL at random points during a 1,000-message run.
drop 502 1501
kills=0
for round in 1 2 3 4 5 6; do
	sleep "0.$((2 + RANDOM % 7))"
	stop_serve KILL && true
	kills=$((kills + 1))
	start_serve
done
diag "killed triage serve $kills times during the run"
wait_until 90 tickets_are "$((before + 1500))"
ok $? "after the kills: exactly one ticket per message ($(tickets) tickets)"
wait_until 30 untriaged_is 0
ok $? "none left unmarked"
is "$(q "SELECT count(*) FROM outbox WHERE kind = 'ack'")" "$(q "SELECT count(DISTINCT ticket_id) FROM outbox WHERE kind = 'ack'")" \
	"no ticket with two acknowledgments"
is "$(q "SELECT count(*) FROM (SELECT message_id FROM messages WHERE direction = 'in' GROUP BY message_id HAVING count(*) > 1)")" 0 \
	"no message stored twice"

# 6. Dovecot restarted while 200 new messages are being triaged.
drop 1502 1701
sleep 0.3
srv_restart_dovecot
wait_until 60 tickets_are "$((before + 1700))"
status=$?
ok $status "Dovecot restarted mid-run: every message triaged once"
[ $status = 0 ] || diag "$(tail -20 "$SRV_DIR/serve.log" | cut -c1-200)"
wait_until 20 untriaged_is 0
ok $? "and marked after the reconnect"
like "$(cat "$SRV_DIR/serve.log")" 'imap support: .*(reconnect|retrying)' "the reconnect is logged"

# 7. A poisoned message: empty, and one over message_bytes; the rest flow.
: >"$maildir/new/1799999998.Mempty.test"
head -c 200000 /dev/zero | tr '\0' 'x' | sed 's/x\{76\}/&\n/g' >"$SRV_DIR/big.body"
{ printf 'From: big@big.example\nSubject: big\nMessage-ID: <big@big.example>\n\n'; cat "$SRV_DIR/big.body"; } \
	>"$maildir/new/1799999999.Mbig.test"
drop 1702 1711
wait_until 30 tickets_are "$((before + 1710))"
status=$?
ok $status "the messages around the poisoned ones are triaged"
[ $status = 0 ] || diag "$(tail -15 "$SRV_DIR/serve.log" | cut -c1-200; echo tickets: $(tickets))"
wait_until 15 imap_wait_count support Quarantine 2 1
ok $? "the empty and the oversized message are in Quarantine"
like "$(cat "$SRV_DIR/serve.log")" 'moved to Quarantine' "the quarantine is logged"

# 8. UIDVALIDITY reset: the folder rebuilt without our marks.
stop_serve TERM
n=$(tickets)
for f in "$maildir"/cur/*; do mv "$f" "$maildir/new/$(basename "${f%%:2,*}")"; done
rm -f "$maildir"/dovecot-uidlist "$maildir"/dovecot.index* "$maildir"/dovecot-keywords
chown -R 65534:65534 "$maildir"
start_serve
wait_until 60 untriaged_is 0
ok $? "after a UIDVALIDITY reset everything is rescanned and marked again"
like "$(cat "$SRV_DIR/serve.log")" 'UIDVALIDITY changed' "the reset is noticed and logged"
is "$(tickets)" "$n" "and no ticket is created twice"
stop_serve TERM
done_testing
