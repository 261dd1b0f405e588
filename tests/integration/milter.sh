#!/usr/bin/env bash
# tests/integration/milter.sh — `triage milter` under miltertest (OpenDKIM's
# milter driver: the scripts in tests/integration/milter/*.lua) and under a
# real Postfix (smtpd_milters) delivering to Dovecot.
#
# miltertest: headers added, forged X-Triage-* removed, subject tag, added
# recipient, quarantine, several messages and an abort on one connection,
# a body over the limit, a non-selected recipient untouched, an agent reply,
# and a forced classification failure (TRIAGE_TEST_FAULT=classify,
# test-only) giving the on_error action.  The ticket store is the real one
# (SQLite in $SRV_DIR): tickets, duplicates, the first response.  Postfix: the delivered message
# carries the X-Triage-* headers and the client's forged one is gone; the
# escalation mailbox gets its copy; with on_error = tempfail the client
# gets a 4xx and the message is not lost.
set -u
TR_TOP=${TR_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$TR_TOP/tests/lib/tap.sh"
. "$TR_TOP/tests/lib/servers.sh"

TRIAGE=${TRIAGE_BIN:-$TR_TOP/build/triage}   # TRIAGE_BIN=build/asan/triage: the sanitizer build
LUA_DIR=$TR_TOP/tests/integration/milter
export LUA_DIR
[ -x "$TRIAGE" ] || bail "build/triage missing (make)"
command -v miltertest >/dev/null || bail "miltertest not installed (run ./bootstrap)"

srv_init
srv_start_dovecot support alice oncall billing
srv_free_port MILTER_PORT FAULT_PORT TEMPFAIL_PORT NOSTORE_PORT

make_conf() { # DIR ON_ERROR
	cp -R "$TR_TOP/conf" "$1"
	sed -i "s|^templates = .*|templates = $TR_TOP/templates|" "$1/triage.conf"
	cat >>"$1/triage.conf" <<-EOF

	[milter]
	recipients = support@example.test, @support.example.test
	agent_domains = example.test
	tag_priority = P1
	tag_ticket = yes
	escalation_recipient = yes
	quarantine_triggers = security
	body_bytes = 8K
	on_error = $2
	EOF
}
make_conf "$SRV_DIR/conf" accept
make_conf "$SRV_DIR/conf-tempfail" tempfail
DB=$SRV_DIR/triage.db

spawn_milter() { # NAME PORT CONF [ENV...] [-- DB]
	local name=$1 port=$2 conf=$3 db=$DB envs=()
	shift 3
	while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done
	[ "${1:-}" = -- ] && db=$2
	srv_spawn "$name" "$SRV_DIR/$name.log" env "${envs[@]}" "$TRIAGE" milter -c "$conf/triage.conf" \
		--db "$db" --listen "inet:$port@127.0.0.1"
}
show() { "$TRIAGE" show -c "$SRV_DIR/conf/triage.conf" --db "$DB" "$1" --json 2>/dev/null | tr -d '\n '; }
spawn_milter milter "$MILTER_PORT" "$SRV_DIR/conf"
spawn_milter milter-fault "$FAULT_PORT" "$SRV_DIR/conf" TRIAGE_TEST_FAULT=classify
spawn_milter milter-tempfail "$TEMPFAIL_PORT" "$SRV_DIR/conf-tempfail" TRIAGE_TEST_FAULT=classify
spawn_milter milter-nostore "$NOSTORE_PORT" "$SRV_DIR/conf" -- /dev/null/triage.db
for p in "$MILTER_PORT" "$FAULT_PORT" "$TEMPFAIL_PORT" "$NOSTORE_PORT"; do
	wait_until 10 srv_port_listening "$p" || { srv_log_tail "$SRV_DIR/milter.log"; bail "triage milter did not start on $p"; }
done
# libmilter notices a stop request only every 5 s: stop all three at once.
srv_at_exit kill -TERM "$SRV_PID_milter" "$SRV_PID_milter_fault" "$SRV_PID_milter_tempfail" "$SRV_PID_milter_nostore"

# run_lua SCRIPT [PORT]: every "PASS what" line of the script is one test;
# a script that fails is one failed test with its output.
run_lua() {
	local script=$1 port=${2:-$MILTER_PORT} out status line
	out=$(MILTER_PORT=$port timeout 60 miltertest -s "$LUA_DIR/$script.lua" 2>&1)
	status=$?
	while IFS= read -r line; do
		[[ $line == PASS\ * ]] && ok 0 "$script: ${line#PASS }"
	done <<<"$out"
	if [ $status -ne 0 ]; then
		ok 1 "$script.lua ran to the end"
		diag "$out"
		srv_log_tail "$SRV_DIR/milter.log" 10
	fi
}

# --- miltertest --------------------------------------------------------------------
run_lua headers
run_lua multi
run_lua untouched
run_lua body_limit
like "$(grep 'milter QB1:' "$SRV_DIR/milter.log")" 'size=[0-9]{7}' "the 2 MB body was read to the end (counted, not kept)"
run_lua quarantine
run_lua agent
like "$(cat "$SRV_DIR/milter.log")" 'TKT-000123 answered by ana@example\.test: no such ticket, nothing recorded' \
	"an agent's reply to an unknown ticket reaches the store hook and records nothing"
run_lua fault_accept "$FAULT_PORT"
like "$(cat "$SRV_DIR/milter-fault.log")" 'internal error \(test fault: classify\); accepted without triage' "the failure is logged"
run_lua fault_accept "$NOSTORE_PORT"
like "$(cat "$SRV_DIR/milter-nostore.log")" 'not committed: .*accepted without triage \(on_error = accept\)' \
	"the store cannot be opened: the same fail-safe path (on_error = accept), logged"
run_lua fault_tempfail "$TEMPFAIL_PORT"
like "$(cat "$SRV_DIR/milter-tempfail.log")" 'temporary failure \(on_error = tempfail\)' "the tempfail is logged"

# --- Postfix: smtpd_milters, delivery to Dovecot ---------------------------------------
srv_start_postfix "inet:127.0.0.1:$MILTER_PORT"
MSG=$SRV_DIR/outage.eml
printf 'From: Dana Whitfield <dana@bigcorp.example>\r\nTo: support@example.test\r\nSubject: URGENT: production API down for everyone\r\nMessage-ID: <postfix-1@bigcorp.example>\r\nDate: %s\r\nX-Triage-Priority: P4\r\n\r\nOur production API is down, all users get 500 errors.\r\nPlease escalate immediately.\r\n' \
	"$(date -R)" >"$MSG"
smtp_send dana@bigcorp.example support@example.test "$MSG" --xclient-addr 192.0.2.10 --xclient-name outside.example >/dev/null 2>&1
ok $? "Postfix accepts the message through the milter"
imap_wait_count support INBOX 1 15
ok $? "it is delivered to support's INBOX"
got=$(imap_fetch support INBOX 1 | tr -d '\r')
like "$got" '^X-Triage-Priority: P1$' "the delivered message carries X-Triage-Priority: P1"
is "$(grep -c '^X-Triage-Priority:' <<<"$got")" 1 "the client's forged X-Triage-Priority: P4 is gone"
like "$got" '^X-Triage-Category: [a-z]' "X-Triage-Category"
like "$got" '^X-Triage-Tier: L3$' "X-Triage-Tier"
like "$got" '^X-Triage-Team: engineering$' "X-Triage-Team"
like "$got" '^X-Triage-Sentiment: negative; compound=-' "X-Triage-Sentiment"
like "$got" '^X-Triage-Ticket: TKT-[0-9]{6}$' "X-Triage-Ticket"
like "$(sed -n '/^X-Triage-Rules:/,/^[^\t]/p' <<<"$got" | tr -d '\n\t')" '^X-Triage-Rules: .*trigger\.outage' \
	"X-Triage-Rules names the rules that fired"
like "$(sed -n '/^X-Triage-Rules:/,/^[^\t]/p' <<<"$got" | sed -n 2p)" $'^\t[a-z]' "X-Triage-Rules is folded into a continuation line"
ticket=$(sed -n 's/^X-Triage-Ticket: //p' <<<"$got")
like "$got" "^Subject: \\[P1\\] \\[$ticket\\] URGENT: production API down for everyone\$" "the subject is tagged"
imap_wait_count oncall INBOX 1 15
ok $? "the escalation mailbox (team engineering: oncall@) got its copy"

ALICE=$SRV_DIR/alice.eml
printf 'From: Dana <dana@bigcorp.example>\r\nTo: alice@example.test\r\nSubject: URGENT lunch\r\nMessage-ID: <postfix-2@bigcorp.example>\r\nX-Triage-Priority: P4\r\n\r\nHi Alice.\r\n' >"$ALICE"
smtp_send dana@bigcorp.example alice@example.test "$ALICE" --xclient-addr 192.0.2.10 --xclient-name outside.example >/dev/null 2>&1
imap_wait_count alice INBOX 1 15
ok $? "mail for a non-selected recipient is delivered"
got=$(imap_fetch alice INBOX 1 | tr -d '\r')
like "$got" '^X-Triage-Priority: P4$' "... untouched (the milter does not look at it)"
is "$(grep -c '^X-Triage-' <<<"$got")" 1 "... no header added"

REPLY=$SRV_DIR/reply.eml
printf 'From: Ana <ana@example.test>\r\nTo: dana@bigcorp.example\r\nSubject: Re: [%s] URGENT: production API down\r\nMessage-ID: <agent-2@example.test>\r\n\r\nWe are on it.\r\n' "$ticket" >"$REPLY"
smtp_send ana@example.test dana@bigcorp.example "$REPLY" >/dev/null 2>&1
ok $? "an agent's reply to the customer goes out through Postfix"
wait_until 10 grep -q "ticket=$ticket answered by ana@example.test (first response recorded)" "$SRV_DIR/milter.log"
ok $? "... and is recorded as the first response to $ticket"
like "$(show "$ticket")" '"first_response":\{[^}]*"met_at":"20' "triage show: the first response of $ticket is met"
like "$(show "$ticket")" '"channel":"milter"' "... a ticket of the milter channel"
srv_stop_postfix

# --- Postfix with the milter failing, on_error = tempfail: 4xx, nothing lost ------------
srv_start_postfix "inet:127.0.0.1:$TEMPFAIL_PORT"
queued=$(postfix_queue_count)   # the agent's reply to bigcorp.example waits there (no DNS)
out=$(smtp_send dana@bigcorp.example support@example.test "$MSG" --xclient-addr 192.0.2.10 --xclient-name outside.example 2>&1)
[ $? -ne 0 ]
ok $? "milter failing with on_error = tempfail: Postfix does not accept the message"
like "$out" '<\*\* 451 4\.7\.1' "... the client gets 451 4.7.1 and keeps it (no 5xx)"
is "$(postfix_queue_count)" "$queued" "... and Postfix did not queue it either"
srv_stop_postfix

srv_startup_times
done_testing
