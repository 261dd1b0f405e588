#!/usr/bin/env bash
# tests/integration/servers.sh — the test-server harness itself, against the
# real Dovecot, Postfix and Prosody: TLS is real (the test CA is needed),
# mail flows LMTP -> Dovecot and SMTP -> Postfix -> LMTP -> Dovecot, Postfix
# is no open relay, XMPP logins and the MUC service work, restarts keep
# data, and stopping leaves no process and no bound port behind.
set -u
TR_TOP=${TR_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$TR_TOP/tests/lib/tap.sh"
. "$TR_TOP/tests/lib/servers.sh"

srv_init
srv_start_dovecot support alice billing security oncall
# shellcheck disable=SC2119 # no milter
srv_start_postfix
srv_start_prosody triage-bot agent1 agent2 stranger
srv_startup_times
diag "SRV_DIR=$SRV_DIR IMAP=$IMAP_PORT IMAPS=$IMAPS_PORT LMTP=$LMTP_PORT SMTP=$SMTP_PORT XMPP=$XMPP_PORT"

msg=$SRV_DIR/msg.eml
make_msg() { # FROM TO SUBJECT
	printf 'From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: <%s.%s@test>\r\nDate: %s\r\n\r\nThe printer is on fire.\r\n' \
		"$1" "$2" "$3" "$RANDOM" "$$" "$(date -R)" >"$msg"
}

# --- IMAP: STARTTLS and implicit TLS, verified against the test CA ----------
out=$(curl -sS --max-time 10 --ssl-reqd --cacert "$SRV_CA" -u alice:secret \
	"imap://127.0.0.1:$IMAP_PORT/" 2>&1)
ok $? "IMAP LOGIN after STARTTLS, certificate verified"
like "$out" 'Quarantine' "the Quarantine folder exists"
like "$out" 'Triaged' "the Triaged folder exists"

out=$(curl -sS --max-time 10 --cacert "$SRV_CA" -u alice:secret "imaps://127.0.0.1:$IMAPS_PORT/" 2>&1)
ok $? "IMAP LOGIN over implicit TLS, certificate verified"

curl -sS --max-time 10 -u alice:secret "imaps://127.0.0.1:$IMAPS_PORT/" >/dev/null 2>&1
is "$?" 60 "IMAPS without the test CA: certificate refused (curl 60)"
curl -sS --max-time 10 --ssl-reqd -u alice:secret "imap://127.0.0.1:$IMAP_PORT/" >/dev/null 2>&1
is "$?" 60 "STARTTLS without the test CA: certificate refused (curl 60)"
curl -sS --max-time 10 --cacert "$SRV_CA" -u alice:wrong "imaps://127.0.0.1:$IMAPS_PORT/" >/dev/null 2>&1
is "$?" 67 "a wrong password is refused (curl 67)"

# --- LMTP straight into Dovecot -----------------------------------------------
make_msg customer@example.org alice@example.test "LMTP delivery"
out=$(lmtp_send customer@example.org alice@example.test "$msg" 2>&1)
ok $? "LMTP delivery accepted"
is "$(imap_count alice INBOX)" 1 "alice's INBOX holds the message (IMAP STATUS)"
is "$(maildir_files alice | wc -l)" 1 "one file in alice's maildir"
like "$(imap_fetch alice INBOX 1)" '^Return-Path: <customer@example.org>' "imap_fetch returns the raw message"
out=$(imap_flags alice INBOX 1) && [[ $out != *'\Seen'* ]]
ok $? "imap_fetch leaves the message unseen (flags: '$out')"
is "$(imap_count alice Quarantine)" 0 "Quarantine is empty"

# --- SMTP through Postfix, relayed to Dovecot by LMTP ---------------------------
make_msg customer@example.org support@example.test "via Postfix"
out=$(smtp_send customer@example.org support@example.test "$msg" --tls 2>&1)
ok $? "Postfix accepts mail for support@example.test (STARTTLS)"
imap_wait_count support INBOX 1 10
ok $? "the message arrives in support's INBOX"
like "$(imap_fetch support INBOX 1)" 'by mx\.example\.test \(Postfix\)' "it went through Postfix"
like "$(grep -E 'to=<support@example.test>.*status=sent' "$POSTFIX_LOG")" 'relay=127\.0\.0\.1\[127\.0\.0\.1\]:'"$LMTP_PORT" \
	"Postfix's log shows delivery to Dovecot's LMTP port"

# --- no open relay --------------------------------------------------------------
make_msg someone@outside.example victim@elsewhere.invalid "relay attempt"
out=$(smtp_send someone@outside.example victim@elsewhere.invalid "$msg" \
	--xclient-addr 192.0.2.10 --xclient-name outside.example 2>&1)
status=$?
[ $status -ne 0 ]
ok $? "an outside client cannot relay to another domain"
like "$out" '554 5\.7\.1 .*Relay access denied' "... refused with 554 Relay access denied"
make_msg someone@outside.example billing@example.test "outside to local"
smtp_send someone@outside.example billing@example.test "$msg" \
	--xclient-addr 192.0.2.10 --xclient-name outside.example >/dev/null 2>&1
ok $? "the same outside client may send to the test domain"
imap_wait_count billing INBOX 1 10
ok $? "... and it is delivered"
make_msg support@example.test customer@example.org "an acknowledgment"
smtp_send support@example.test customer@example.org "$msg" >/dev/null 2>&1
ok $? "loopback (the gateway) may send to another domain"
postfix_wait_queue 1 5
ok $? "... where the message waits in the queue (postqueue -j), not on the network"

# --- XMPP -----------------------------------------------------------------------
out=$(xmpp_stream_features)
like "$out" "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'" "Prosody answers a c2s stream and offers STARTTLS"
openssl s_client -connect "127.0.0.1:$XMPP_PORT" -starttls xmpp -xmpphost localhost \
	-CAfile "$SRV_CA" -verify_return_error -verify_hostname localhost </dev/null >/dev/null 2>&1
ok $? "XMPP STARTTLS certificate verifies against the test CA"
! openssl s_client -connect "127.0.0.1:$XMPP_PORT" -starttls xmpp -xmpphost localhost \
	-verify_return_error </dev/null >/dev/null 2>&1
ok $? "... and fails without it"
disco="<iq type='get' id='items' to='localhost'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>"
out=$(xmpp_query agent1 "$disco")
ok $? "agent1 logs in over STARTTLS"
like "$out" "<item jid='conference.localhost'" "disco#items lists the MUC service conference.localhost"
! xmpp_query stranger:wrong >/dev/null 2>&1
ok $? "a wrong XMPP password is refused"

room=oncall@conference.localhost
xmpp_listen room-listener agent1 "$room" "$SRV_DIR/room.log"
xmpp_send triage-bot "$room" "P1 ticket T-1 needs an owner"
ok $? "triage-bot posts to $room"
wait_until 5 grep -q 'triage-bot: P1 ticket T-1 needs an owner' "$SRV_DIR/room.log"
ok $? "agent1 sees the post in the room"
srv_kill room-listener

# --- restarts keep their data ---------------------------------------------------
old=$(srv_pid dovecot)
srv_restart_dovecot
new=$(srv_pid dovecot)
[ -n "$new" ] && [ "$new" != "$old" ]
ok $? "Dovecot restarted (pid $old -> $new)"
is "$(imap_count alice INBOX)" 1 "alice's mail survived the restart"
old=$(srv_pid prosody)
srv_restart_prosody
new=$(srv_pid prosody)
[ -n "$new" ] && [ "$new" != "$old" ]
ok $? "Prosody restarted (pid $old -> $new)"
like "$(xmpp_query agent2 "$disco")" "conference.localhost" "accounts survived the restart"
srv_startup_times

# --- failures are loud, cleanup is sure (nested test scripts) ------------------
nested=$SRV_DIR/nested.sh
cat >"$nested" <<EOF
set -u
. "$TR_TOP/tests/lib/tap.sh"
. "$TR_TOP/tests/lib/servers.sh"
srv_init
echo "# nested SRV_DIR=\$SRV_DIR"
case \$1 in
broken)   # a Dovecot that cannot start: its config is garbage
	_srv_dovecot_conf() { echo 'this is { not a dovecot config' >"\$DOVECOT_CONF"; }
	srv_start_dovecot alice
	ok 0 "not reached" ;;
killed)   # a server is running when the script gets SIGTERM
	srv_start_prosody agent1
	srv_spawn sleeper /dev/null sleep 30    # a helper process, stopped too
	echo "# nested sid=\${_SRV_SID[prosody]} \$SRV_PID_sleeper"
	wait "\$SRV_PID_sleeper" ;;
esac
EOF
SRV_KEEP=0 bash "$nested" broken >"$SRV_DIR/broken.out" 2>&1
status=$?
[ $status -ne 0 ]
ok $? "a server that cannot start fails its script (exit $status)"
grep -q '^Bail out! dovecot: ' "$SRV_DIR/broken.out"
ok $? "... with a Bail out! line"
grep -q '^not ok 1 - bail out: dovecot' "$SRV_DIR/broken.out"
ok $? "... and a failing test"
grep -q '^#   doveconf: Fatal: Error in configuration file' "$SRV_DIR/broken.out"
ok $? "... showing the server's own error"
dir=$(sed -n 's/^# nested SRV_DIR=//p' "$SRV_DIR/broken.out")
[ -n "$dir" ] && [ ! -e "$dir" ]
ok $? "... and removing its temporary directory"

SRV_KEEP=0 bash "$nested" killed >"$SRV_DIR/killed.out" 2>&1 &
nested_pid=$!
wait_until 10 grep -q '^# nested sid=' "$SRV_DIR/killed.out"
ok $? "a nested script started Prosody and a helper process"
sids=$(sed -n 's/^# nested sid=//p' "$SRV_DIR/killed.out")
dir=$(sed -n 's/^# nested SRV_DIR=//p' "$SRV_DIR/killed.out")
kill -TERM "$nested_pid"
wait "$nested_pid"
is "$?" 143 "SIGTERM ends it with status 143"
# shellcheck disable=SC2086 # two session ids
[ -n "$sids" ] && [ -z "$(srv_session_pids $sids)" ]
ok $? "... after stopping both"
[ -n "$dir" ] && [ ! -e "$dir" ]
ok $? "... and removing its temporary directory"

# --- stop: no process, no port left ---------------------------------------------
ports="$IMAP_PORT $IMAPS_PORT $LMTP_PORT $DOVECOT_AUTH_PORT $SMTP_PORT $XMPP_PORT"
srv_stop_all
is "$(srv_leftover_pids | tr '\n' ' ')" "" "no process of any server is left"
busy=""
for port in $ports; do srv_port_free "$port" || busy+=" $port"; done
is "$busy" "" "every server port is free again"

done_testing
