#!/usr/bin/env bash
# tests/integration/smtp.sh — outbound SMTP (src/channels/smtp.c) against a
# real Postfix relaying to a real Dovecot.
#
# The C side is build/tests/test_smtp_live (tests/unit/test_smtp_live.c):
# it sends and checks what tr_smtp_send() reports.  This script starts the
# servers, runs it once per Postfix configuration, re-emits its TAP, and
# then checks on the server side that the reports are true:
#   - what was SENT is in the right mailbox, byte for byte where recorded;
#   - what was refused (bad certificate, no STARTTLS, bad password…) never
#     reached Postfix (its Message-ID is not in Postfix's log);
#   - what was AMBIGUOUS (Postfix answered after we stopped waiting) was in
#     fact delivered — the reason an ambiguous delivery is not resent blindly.
# The ASan build of the driver runs the main phase too when it exists.
set -u
TR_TOP=${TR_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$TR_TOP/tests/lib/tap.sh"
. "$TR_TOP/tests/lib/servers.sh"

driver=$TR_TOP/build/tests/test_smtp_live
asan_driver=$TR_TOP/build/asan/tests/test_smtp_live
[ -x "$driver" ] || bail "$driver not built (make tests)"

srv_init
srv_start_dovecot support alice bob
srv_free_port DOWN_PORT          # reserved, never listened on
out=$SRV_DIR/smtp-out
mkdir -p "$out"
: >"$out/delivered"
: >"$out/absent"

export TR_SMTP_TEST_CA=$SRV_CA TR_SMTP_TEST_OUT=$out TR_SMTP_TEST_DOWN_PORT=$DOWN_PORT
export TR_SMTP_TEST_PASSWORD=$SRV_PASSWORD
# A second name for 127.0.0.1 that the certificate does not cover, if the
# machine has one (the host name often is): tests the host-name check.
other=$(hostname 2>/dev/null)
if [ -n "$other" ] && [ "$other" != localhost ] &&
	[ "$(getent ahostsv4 "$other" 2>/dev/null | awk '{print $1; exit}')" = 127.0.0.1 ]; then
	export TR_SMTP_TEST_OTHER_NAME=$other
fi

# run_driver NAME PHASE [BINARY]: run one phase, re-emit its TAP results as
# ours (prefixed NAME), its comments as diag; a crash or a short run fails.
run_driver() {
	local name=$1 phase=$2 bin=${3:-$driver} log line status plan=0 seen=0
	log=$SRV_DIR/driver-$name.log
	TR_SMTP_TEST_PHASE=$phase TR_SMTP_TEST_PORT=$SMTP_PORT CMOCKA_MESSAGE_OUTPUT=tap \
		"$bin" >"$log" 2>&1
	status=$?
	while IFS= read -r line; do
		case $line in
		1..*) plan=${line#1..} ;;
		"not ok "*"# SKIP"*|"ok "*"# SKIP"*)
			seen=$((seen + 1)); TAP_N=$((TAP_N + 1))
			echo "ok $TAP_N - $name: ${line##*# SKIP } # SKIP" ;;
		"ok "*) seen=$((seen + 1)); ok 0 "$name: ${line#ok * - }" ;;
		"not ok "*) seen=$((seen + 1)); ok 1 "$name: ${line#not ok * - }" ;;
		"#"*) diag "${line#\# }" ;;
		*) diag "$line" ;;
		esac
	done <"$log"
	[ "$status" -eq 0 ] && [ "$plan" -gt 0 ] && [ "$seen" -eq "$plan" ]
	ok $? "$name: the driver finished (exit $status, $seen of $plan tests)"
}

# Messages recorded as delivered for USER.
delivered_count() { awk -v u="$1" '$1 == u' "$out/delivered" | wc -l; }

# Before Postfix is stopped: wait until everything reported SENT so far
# (plus EXTRA for support) is in the mailboxes, so no queued message is
# caught by the stop.  One check per phase.
extra_support=0
wait_delivered() { # PHASE
	local user want missing=""
	for user in support alice bob; do
		want=$(delivered_count "$user")
		[ "$user" = support ] && want=$((want + extra_support))
		imap_wait_count "$user" INBOX "$want" 15 || missing+=" $user: $(imap_count "$user" INBOX) of $want;"
	done
	is "$missing" "" "$1: every message reported SENT so far is in its mailbox"
	[ -z "$missing" ] || diag "Postfix queue: $(postfix_queue -p 2>&1 | tail -n 5)"
}

# --- main: STARTTLS, SASL, a rejected and a deferred recipient ---------------
restrictions="check_recipient_access inline:{reject@example.test=REJECT, defer@example.test=DEFER_IF_PERMIT}"
srv_start_postfix "" "smtpd_recipient_restrictions=$restrictions, permit_mynetworks, reject_unauth_destination"
diag "Postfix on $SMTP_PORT, Dovecot LMTP on $LMTP_PORT${TR_SMTP_TEST_OTHER_NAME:+, second name $TR_SMTP_TEST_OTHER_NAME}"
TR_SMTP_TEST_BENCH=1 run_driver main main
if [ -x "$asan_driver" ]; then
	ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} run_driver main-asan main "$asan_driver"
fi

wait_delivered main

# Byte for byte: each recorded message is the tail of one of alice's
# messages (Postfix and Dovecot only prepend Return-Path, Delivered-To and
# Received).
for i in $(seq 1 "$(imap_count alice INBOX)"); do
	imap_fetch alice INBOX "$i" >"$SRV_DIR/alice-$i.eml"
done
for eml in "$out"/intact-*.eml; do
	found=""
	size=$(stat -c %s "$eml")
	for got in "$SRV_DIR"/alice-*.eml; do
		if tail -c "$size" "$got" | cmp -s - "$eml"; then found=$got; break; fi
	done
	[ -n "$found" ]
	ok $? "$(basename "$eml" .eml) arrived byte for byte (headers, body, leading dots, UTF-8)"
	[ -n "$found" ] && like "$(head -c 3000 "$found")" 'by mx\.example\.test \(Postfix\) with ESMTPS ' \
		"... through Postfix, over TLS (Received: ... with ESMTPS)"
done

# --- notls: a relay without STARTTLS -----------------------------------------
srv_stop_postfix
srv_start_postfix "" "smtpd_tls_security_level=none"
run_driver notls notls
wait_delivered notls

# --- slow: Postfix answers the end of the data after 2 s, we wait 1 s; it -----
# relays to other domains only after AUTH (loopback is no longer trusted);
# no CHUNKING, so libESMTP uses DATA here (BDAT in the other phases).
srv_stop_postfix
srv_start_postfix "" "smtpd_end_of_data_restrictions=sleep 2" "mynetworks=127.0.0.2/32" \
	"smtpd_discard_ehlo_keywords=chunking"
before=$(imap_count support INBOX)
run_driver slow slow
like "$(cat "$out/ambiguous" 2>/dev/null)" 'ambiguous failure for support@example.test' "the slow delivery was reported AMBIGUOUS"
imap_wait_count support INBOX $((before + 1)) 15
ok $? "... and Postfix delivered it anyway: an ambiguous delivery must not be repeated blindly"
extra_support=1
wait_delivered slow
grep -q 'Relay access denied' "$POSTFIX_LOG"
ok $? "... with a wrong password the relay said 'Relay access denied', reported TEMPORARY, not a bounce"

# --- down: the relay stopped -----------------------------------------------------
srv_stop_postfix
run_driver down down

# --- what Postfix saw ------------------------------------------------------------
is "$(imap_count bob INBOX)" "$(delivered_count bob)" "bob got exactly the $(delivered_count bob) messages sent to him from two threads"
# Message-IDs Postfix's cleanup logged, against what the driver recorded.
grep -o 'message-id=<[^>]*>' "$POSTFIX_LOG" | sed 's/^message-id=<//; s/>$//' | sort -u >"$SRV_DIR/seen-ids"
awk '{print $2}' "$out/delivered" | sort -u >"$SRV_DIR/sent-ids"
sort -u "$out/absent" >"$SRV_DIR/absent-ids"
is "$(comm -23 "$SRV_DIR/sent-ids" "$SRV_DIR/seen-ids" | tr '\n' ' ')" "" \
	"every message reported SENT went through Postfix ($(wc -l <"$SRV_DIR/sent-ids"))"
is "$(comm -12 "$SRV_DIR/absent-ids" "$SRV_DIR/seen-ids" | tr '\n' ' ')" "" \
	"no message reported refused (bad certificate, no STARTTLS, bad password, 4xx/5xx) reached Postfix ($(wc -l <"$SRV_DIR/absent-ids"))"
is "$(grep -c 'SASL LOGIN authentication failed' "$POSTFIX_LOG")" 0 "a wrong password is tried once per delivery (PLAIN), not again with LOGIN"
is "$(grep 'disconnect from' "$POSTFIX_LOG" | grep ' auth=' | grep -vc ' starttls=1')" 0 \
	"AUTH never happened without STARTTLS"

srv_startup_times
done_testing
