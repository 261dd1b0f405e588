#!/usr/bin/env bash
# tests/integration/lmtp.sh — `triage lmtp` as a real listener: driven by
# swaks in LMTP and SMTP mode (pipelining, size limit, malformed commands),
# passing mail on to the real Dovecot LMTP with X-Triage-* headers, a
# failing ticket store (451/452) and a next hop that is down, Postfix
# delivering to it as a transport (and retrying after a 451), unix
# sockets, and a clean shutdown.  The ticket store is the real one (SQLite
# in $SRV_DIR); a store that cannot be opened (--db /dev/null/…) is the
# failure case.
set -u
TR_TOP=${TR_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$TR_TOP/tests/lib/tap.sh"
. "$TR_TOP/tests/lib/servers.sh"

TRIAGE=${TRIAGE_BIN:-$TR_TOP/build/triage}   # TRIAGE_BIN=build/asan/triage: the sanitizer build
[ -x "$TRIAGE" ] || bail "build/triage missing (make)"

srv_init
srv_start_dovecot support alice billing oncall
srv_free_port TRIAGE_PORT

CONF_DIR=$SRV_DIR/triage-conf
cp -R "$TR_TOP/conf" "$CONF_DIR"
sed -i "s|^templates = .*|templates = $TR_TOP/templates|" "$CONF_DIR/triage.conf"
cat >>"$CONF_DIR/triage.conf" <<EOF

[lmtp]
hostname = triage.example.test
next_hop = lmtp:inet:127.0.0.1:$LMTP_PORT
message_bytes = 64K
errors = 5
EOF
DB=$SRV_DIR/triage.db
BAD_DB=/dev/null/triage.db   # cannot be created: the store is down

# start_lmtp NAME [ENV=VALUE...] [-- TRIAGE_ARGS...]: triage lmtp in the
# background (default arguments: our port and the good store).
start_lmtp() {
	local name=$1 envs=() args=()
	shift
	while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done
	[ "${1:-}" = -- ] && shift
	args=("$@")
	[ ${#args[@]} -gt 0 ] || args=(--db "$DB" --listen "inet:127.0.0.1:$TRIAGE_PORT")
	srv_spawn "$name" "$SRV_DIR/$name.log" env "${envs[@]}" \
		"$TRIAGE" lmtp -c "$CONF_DIR/triage.conf" "${args[@]}"
	if [[ ${args[*]} == *unix:* ]]; then
		wait_until 10 test -S "${args[-1]#unix:}" || { srv_log_tail "$SRV_DIR/$name.log"; bail "triage lmtp ($name) did not start"; }
	else
		wait_until 10 srv_port_listening "$TRIAGE_PORT" || { srv_log_tail "$SRV_DIR/$name.log"; bail "triage lmtp ($name) did not start"; }
	fi
}

# tickets: how many tickets the store holds.
tickets() { "$TRIAGE" tickets -c "$CONF_DIR/triage.conf" --db "$DB" --json 2>/dev/null | grep -c '"ticket"'; }

# to_triage PROTOCOL FROM TO FILE [SWAKS_ARGS...]: swaks transcript.
to_triage() {
	local proto=$1 from=$2 to=$3 file=$4
	shift 4
	swaks --protocol "$proto" --server "127.0.0.1:$TRIAGE_PORT" --helo client.example.test \
		--from "$from" --to "$to" --data "@$file" --timeout 15 "$@" 2>&1
}

# raw PORT SCRIPT: send SCRIPT (printf %b escapes) at once, print every reply
# until the server closes the connection.
raw() {
	local fd out
	exec {fd}<>"/dev/tcp/127.0.0.1/$1" || return 1
	printf '%b' "$2" >&"$fd"
	out=$(timeout 10 cat <&"$fd")
	exec {fd}>&-
	printf '%s' "$out" | tr -d '\r'
}

codes() { grep -oE '^[0-9]{3} ' | tr -d ' ' | paste -sd' '; }

make_msg() { # FILE SUBJECT BODY [MESSAGE-ID]
	printf 'From: Dana Whitfield <dana@bigcorp.example>\r\nTo: support@example.test\r\nSubject: %s\r\nMessage-ID: <%s>\r\nDate: %s\r\nX-Triage-Priority: P4\r\nX-Triage-Ticket: TKT-999999\r\n\r\n%s\r\n' \
		"$2" "${4:-$RANDOM.$RANDOM@bigcorp.example}" "$(date -R)" "$3" >"$1"
}

OUTAGE=$SRV_DIR/outage.eml
make_msg "$OUTAGE" "URGENT: production API down for everyone" \
	"Our production API is down, all users get 500 errors. Please escalate immediately." "outage-1@bigcorp.example"

start_lmtp lmtp

# --- LMTP mode, through to Dovecot ---------------------------------------------
out=$(to_triage LMTP dana@bigcorp.example support@example.test "$OUTAGE")
ok $? "swaks LMTP: the message is accepted"
like "$out" '<-  220 2\.0\.0 triage\.example\.test LMTP/ESMTP' "greeting names the configured host"
like "$out" '<-  250-PIPELINING' "LHLO advertises PIPELINING"
like "$out" '<-  250-SIZE 65536' "LHLO advertises SIZE from [lmtp] message_bytes"
like "$out" '<-  250-ENHANCEDSTATUSCODES' "LHLO advertises ENHANCEDSTATUSCODES"
like "$out" '<-  250 8BITMIME' "LHLO advertises 8BITMIME"
like "$out" '<-  250 2\.0\.0 <support@example\.test>' "250 for the recipient, with Dovecot's own answer"
imap_wait_count support INBOX 1 10
ok $? "the message reached support's INBOX through Dovecot LMTP"
delivered=$(imap_fetch support INBOX 1 | tr -d '\r')
like "$delivered" '^X-Triage-Priority: P1$' "it carries X-Triage-Priority: P1"
like "$delivered" '^X-Triage-Ticket: TKT-000001$' "... and the ticket the store made"
like "$delivered" '^X-Triage-Category: [a-z]' "... X-Triage-Category"
like "$delivered" '^X-Triage-Team: engineering$' "... X-Triage-Team"
like "$(sed -n '/^X-Triage-Rules:/,/^[^\t]/p' <<<"$delivered" | tr -d '\n\t')" '^X-Triage-Rules: .*trigger\.outage' \
	"... X-Triage-Rules names the rules that fired"
like "$delivered" 'by triage\.example\.test \(triage\) with LMTP' "... and our Received: line"
is "$(grep -c '^X-Triage-Priority:' <<<"$delivered")" 1 "the forged X-Triage-Priority: P4 is gone (one header left)"
is "$(grep -c 'TKT-999999' <<<"$delivered")" 0 "the forged X-Triage-Ticket is gone"
is "$(tickets)" 1 "the store holds one ticket"
like "$("$TRIAGE" show -c "$CONF_DIR/triage.conf" --db "$DB" TKT-000001 --json)" '"channel" *: *"lmtp"' "... TKT-000001, from the LMTP channel"

# The same message again (an MTA retry): the store says duplicate, still 250.
out=$(to_triage LMTP dana@bigcorp.example support@example.test "$OUTAGE")
ok $? "a redelivered message is accepted again"
like "$(grep 'outage-1\|from=<dana@bigcorp.example>' "$SRV_DIR/lmtp.log" | tail -n1)" 'ticket=TKT-000001 store=duplicate' "... recognised as a duplicate of TKT-000001"
is "$(tickets)" 1 "... and no second ticket"

# --- two recipients, one unknown to Dovecot: per-recipient replies -------------
MSG2=$SRV_DIR/billing.eml
make_msg "$MSG2" "Invoice question" "Hello, I was charged twice on my invoice this month. Can you refund one?"
out=$(to_triage LMTP dana@bigcorp.example "billing@example.test,nosuchuser@example.test" "$MSG2")
like "$out" '<-  250 2\.0\.0 <billing@example\.test>' "LMTP: 250 for the known recipient"
like "$out" '<\*\* 550 5\.1\.1 <nosuchuser@example\.test>' "LMTP: Dovecot's 550 5.1.1 for the unknown one, passed on"
imap_wait_count billing INBOX 1 10
ok $? "billing got its copy"

# --- SMTP mode, pipelined --------------------------------------------------------
MSG3=$SRV_DIR/smtp.eml
make_msg "$MSG3" "Question about an export" "How do I export my data to CSV?"
out=$(to_triage ESMTP dana@bigcorp.example alice@example.test "$MSG3" --pipeline)
ok $? "swaks ESMTP with --pipeline: accepted"
like "$out" '<-  250-PIPELINING' "EHLO advertises PIPELINING"
like "$out" '<-  250 2\.0\.0' "one 250 for the transaction"
imap_wait_count alice INBOX 1 10
ok $? "alice got the SMTP-mode message"
out=$(to_triage SMTP dana@bigcorp.example alice@example.test "$MSG3")
ok $? "plain SMTP (HELO) works too"

# --- limits and malformed commands ---------------------------------------------------
BIG=$SRV_DIR/big.eml
{ printf 'From: a@b.example\r\nSubject: big\r\n\r\n'; for _ in $(seq 2000); do printf '%s\r\n' "0123456789012345678901234567890123456789012345678901234567890123456789"; done; } >"$BIG"
out=$(to_triage LMTP dana@bigcorp.example support@example.test "$BIG")
[ $? -ne 0 ]
ok $? "a message over [lmtp] message_bytes is refused"
like "$out" '<\*\* 552 5\.3\.4' "... with 552 5.3.4 after the data"
out=$(raw "$TRIAGE_PORT" 'LHLO c\r\nMAIL FROM:<a@b.example> SIZE=999999\r\nQUIT\r\n')
is "$(codes <<<"$out")" "220 250 552 221" "MAIL FROM ... SIZE= over the limit: 552 at once"
out=$(raw "$TRIAGE_PORT" 'LHLO c\r\nMAIL FROM:alice\r\nMAIL FROM:<alice>\r\nRCPT TO:<x@example.test>\r\nVRFY bob\r\nEXPN staff\r\nQUIT\r\n')
is "$(codes <<<"$out")" "220 250 501 501 503 252 502 221" "malformed MAIL 501, bad sequence 503, VRFY 252, EXPN 502"
out=$(raw "$TRIAGE_PORT" 'LHLO c\r\nFOO bar\r\nRCPT TO:<a b@example.test>\r\nQUIT\r\n')
is "$(codes <<<"$out")" "220 250 500 503 221" "an unknown command: 500"
out=$(raw "$TRIAGE_PORT" "LHLO c\r\nNOOP $(printf 'x%.0s' $(seq 3000))\r\nNOOP\r\nQUIT\r\n")
is "$(codes <<<"$out")" "220 250 500 250 221" "an overlong command line: 500 5.5.2, the session goes on"
out=$(raw "$TRIAGE_PORT" 'A\r\nB\r\nC\r\nD\r\nE\r\nF\r\nG\r\n')
is "$(codes <<<"$out")" "220 500 500 500 500 500 421" "five errors ([lmtp] errors = 5): 421 and the connection is closed"
out=$(raw "$TRIAGE_PORT" 'LHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<support@example.test>\r\nDATA\r\nSubject: nul\r\n\r\na\0b\r\n.\r\nQUIT\r\n')
like "$out" '250 2\.0\.0 <support@example\.test>' "a NUL byte in the text does not break delivery"
out=$(raw "$TRIAGE_PORT" 'LHLO c\nMAIL FROM:<a@b.example>\nRCPT TO:<support@example.test>\nDATA\nSubject: lf\n\n..dot-stuffed line\n.\nQUIT\n')
like "$out" '250 2\.0\.0 <support@example\.test>' "bare LF line ends are accepted"
last=$(imap_fetch support INBOX "$(imap_count support INBOX)" | tr -d '\r')
like "$last" '^\.dot-stuffed line$' "dot-stuffing undone on the way in, redone on the way to Dovecot"
srv_kill lmtp

# --- a store that cannot be opened: 451, nothing passed on ----------------------------------
before=$(imap_count support INBOX)
start_lmtp lmtp-nostore -- --db "$BAD_DB" --listen "inet:127.0.0.1:$TRIAGE_PORT"
like "$(cat "$SRV_DIR/lmtp-nostore.log")" 'ticket store cannot be opened' "a store that cannot be opened is logged at start (the listener runs on)"
out=$(to_triage LMTP dana@bigcorp.example support@example.test "$MSG2")
[ $? -ne 0 ]
ok $? "store down: the message is not accepted"
like "$out" '<\*\* 451 4\.3\.0 Temporary failure in the ticket store' "... 451 4.3.0"
is "$(imap_count support INBOX)" "$before" "... and nothing was passed on"
out=$(to_triage ESMTP dana@bigcorp.example support@example.test "$MSG2")
like "$out" '<\*\* 451 4\.3\.0' "SMTP mode: 451 4.3.0 too"
srv_kill lmtp-nostore

# --- Postfix delivers to triage as a transport; a 451 is retried -------------------------
start_lmtp lmtp-nostore2 -- --db "$BAD_DB" --listen "inet:127.0.0.1:$TRIAGE_PORT"
srv_start_postfix "" "transport_maps=inline:{ example.test=lmtp:inet:127.0.0.1:$TRIAGE_PORT }"
MSG4=$SRV_DIR/via-postfix.eml
make_msg "$MSG4" "Login broken" "I cannot log in since this morning, password reset does not work." "via-postfix-1@bigcorp.example"
before=$(imap_count support INBOX)
smtp_send dana@bigcorp.example support@example.test "$MSG4" --xclient-addr 192.0.2.10 --xclient-name outside.example >/dev/null 2>&1
ok $? "Postfix accepts the message for support@example.test"
wait_until 15 grep -q 'to=<support@example.test>.*status=deferred.*451 4\.3\.0' "$POSTFIX_LOG"
ok $? "Postfix's delivery to triage was deferred with 451 4.3.0 (store down)"
is "$(postfix_queue_count)" 1 "... and the message waits in Postfix's queue"
srv_kill lmtp-nostore2
start_lmtp lmtp-2
postfix_flush
postfix_wait_queue 0 20
ok $? "after the store is back and the queue is flushed, Postfix delivers it"
like "$(grep 'to=<support@example.test>.*status=sent' "$POSTFIX_LOG")" "relay=127\.0\.0\.1\[127\.0\.0\.1\]:$TRIAGE_PORT.*250 2\.0\.0" \
	"Postfix's log: status=sent through triage's port"
imap_wait_count support INBOX $((before + 1)) 10
ok $? "the message is in support's INBOX"
n=$(imap_count support INBOX)
viapf=$(imap_fetch support INBOX "$n" | tr -d '\r')
like "$viapf" '^Subject: Login broken$' "it is the retried message"
like "$viapf" '^X-Triage-Ticket: TKT-' "... with a ticket"
like "$viapf" 'by mx\.example\.test \(Postfix\)' "... that went through Postfix first"

# --- the next hop is down: 451, never lost --------------------------------------------------
srv_stop_dovecot
out=$(to_triage LMTP dana@bigcorp.example support@example.test "$MSG3")
[ $? -ne 0 ]
ok $? "next hop (Dovecot) down: not accepted"
like "$out" '<\*\* 451 4\.4\.2 next hop' "... 451 4.4.2"
srv_restart_dovecot

# --- internal error: on_error = accept passes the message on untouched -------------------
srv_kill lmtp-2
start_lmtp lmtp-fault TRIAGE_TEST_FAULT=classify
before=$(imap_count alice INBOX)
out=$(to_triage LMTP dana@bigcorp.example alice@example.test "$OUTAGE")
ok $? "classification failing (test fault): the message is still accepted (on_error = accept)"
imap_wait_count alice INBOX $((before + 1)) 10
untouched=$(imap_fetch alice INBOX $((before + 1)) | tr -d '\r')
like "$untouched" '^X-Triage-Priority: P4$' "... untouched: no triage headers added"
like "$(cat "$SRV_DIR/lmtp-fault.log")" 'classification failed: internal error' "... and the failure is logged"
srv_kill lmtp-fault

# --- a unix socket ------------------------------------------------------------------------
SOCK=$SRV_DIR/lmtp.sock
start_lmtp lmtp-unix -- --db "$DB" --listen "unix:$SOCK"
out=$(swaks --protocol LMTP --socket "$SOCK" --from dana@bigcorp.example --to support@example.test \
	--data "@$MSG3" --timeout 15 2>&1)
ok $? "LMTP over a unix socket"
srv_kill lmtp-unix
[ ! -e "$SOCK" ]
ok $? "the socket is removed at shutdown"

# --- clean shutdown: an idle client is told 421 ----------------------------------------------
start_lmtp lmtp-stop
exec {fd}<>"/dev/tcp/127.0.0.1/$TRIAGE_PORT"
read -r -t 5 greeting <&"$fd"
printf 'LHLO c\r\n' >&"$fd"
start=$(date +%s%N)
kill -TERM "$SRV_PID_lmtp_stop"
bye=$(timeout 5 cat <&"$fd" | tr -d '\r')
exec {fd}>&-
like "$bye" '421 4\.3\.2 .*shutting down' "SIGTERM: an idle connection gets 421 4.3.2"
wait_until 5 _srv_dead "$SRV_PID_lmtp_stop"
ok $? "... and the listener exits ($(( ($(date +%s%N) - start) / 1000000 )) ms)"
like "$(cat "$SRV_DIR/lmtp-stop.log")" 'lmtp: stopped' "... cleanly"
srv_kill lmtp-stop

srv_startup_times
done_testing
