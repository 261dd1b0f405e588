#!/usr/bin/env bash
# tests/integration/demo.sh — `make demo` (contrib/demo/run) works end to
# end: real Dovecot and Postfix, triage serve over IMAPS, every sample a
# ticket, acknowledgments and escalations read back from the mailboxes, the
# escalations in the team rooms (Prosody), the report; exit status 0; and nothing of it is left running afterwards.
set -u
TR_TOP=${TR_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$TR_TOP" || exit 2
. tests/lib/tap.sh
[ -x build/triage ] || bail "build/triage is not built (make)"
[ "$(id -u)" = 0 ] || bail "the demo needs root (it starts Dovecot and Postfix)"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

start=$(date +%s)
contrib/demo/run >"$tmp/out" 2>&1
status=$?
end=$(date +%s)
out=$(cat "$tmp/out")
is "$status" 0 "contrib/demo/run exits 0"
[ "$status" = 0 ] || diag "$(tail -n 30 "$tmp/out")"
diag "the demo took $((end - start)) s"
ok $([ $((end - start)) -lt 90 ] && echo 0 || echo 1) "done in under 90 s (about 30 s on an idle 2-core machine)"
samples=$(ls contrib/demo/samples/*.eml | wc -l)
like "$out" "demo: OK — $samples customer messages, 1 reply, 1 agent answer: $samples tickets" "the closing line: every sample is a ticket"
like "$out" 'log: imap support: connected to localhost:[0-9]+, folder INBOX' "triage serve connected to the support mailbox over IMAPS"
like "$out" 'ticket=TKT-000001 new P1 technical -> engineering ack=queued escalated' "the outage is TKT-000001, P1, escalated to engineering"
like "$out" 'ticket=TKT-000005 new P4 general -> support$' "the auto-reply is not acknowledged"
like "$out" '-> threaded onto TKT-000001: ticket=TKT-000001 reply' "Dana's reply threads onto her ticket"
like "$out" '-> first response after [0-9]+ s; the escalation is acknowledged' "the agent's answer is the first response"
like "$out" 'TKT-000001  P1  open      technical    engineering        [a-z]+ +met ' "triage tickets lists it, first response met"
like "$out" 'First response   median [0-9]+s' "and the report counts it"
like "$out" 'requester dana.whitfield@example.test, account bigcorp \(enterprise\)' "triage show: the customer's account is recognised"
like "$out" 'dana.whitfield@example.test — \[TKT-000001\] URGENT: production API down' "an acknowledgment is shown, from Dana's mailbox"
like "$out" '\| thank you for writing to us. We have opened ticket TKT-000001' "with its first lines"
like "$out" '\| vielen Dank für Ihre Nachricht' "the German customer got a German acknowledgment"
like "$out" 'oncall@example.test — \[TKT-000001\] P1 technical: URGENT' "an escalation in the on-call mailbox is shown"
like "$out" '\| - trigger outage' "with why it was escalated"
like "$out" 'legal@example.test — \[TKT-000003\] P2 legal' "the GDPR complaint reached the legal team"
like "$out" 'Support report: tickets created' "the report is shown"
like "$out" ', 6 escalations, 6 room posts, in ' "every escalation was also posted to its team's XMPP room"
ops_room=$(sed -n '/ops@conference\.localhost$/,/^$/p' <<<"$out")
like "$ops_room" '^ +[0-9:]{8} triage: P1 TKT-000001 technical → engineering \(on call: ivan\)' "the room transcript shows the outage in the ops room"
like "$out" 'Act: !ack TKT-000001 · !claim TKT-000001' "... with the chat-ops commands to act on it"
html=$(sed -n 's/^ *HTML report: //p' <<<"$out")
[ -n "$html" ] && grep -q '<html' "$html" 2>/dev/null
ok $? "the HTML report is written (${html:-no path})"
srvdir=$(grep -oE '/tmp/triage-srv\.[A-Za-z0-9]+' <<<"$out" | head -1)
[ -n "$srvdir" ] && [ ! -e "$srvdir" ]
ok $? "the temporary directory is gone"
left=$(pgrep -f "${srvdir:-/nonexistent}" 2>/dev/null)
is "$left" "" "no process of the demo is left"

# Not root: a clear refusal, no half-started servers.
if command -v setpriv >/dev/null; then
	setpriv --reuid=nobody --regid=nogroup --clear-groups contrib/demo/run >"$tmp/nonroot" 2>&1
	is "$?" 2 "as another user than root: exit status 2"
	like "$(cat "$tmp/nonroot")" 'demo: needs root' "with the reason"
fi
done_testing
