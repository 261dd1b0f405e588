#!/usr/bin/env bash
# tests/integration/hostile.sh — what an attacker or a broken peer can send,
# through `triage classify` and `triage ingest` (no servers needed):
#   - a 50 MB message, 10,000 MIME parts, a 1 MB header line, message/rfc822
#     nested 100 deep: bounded time and memory, the limits are flagged, and
#     the message is still classified and stored;
#   - invalid UTF-8 and NUL bytes in every header and the body: valid UTF-8
#     JSON out, no NUL, and no acknowledgment to a mangled address;
#   - CR/LF injection into every header our templates fill (acknowledgment,
#     escalation forward, on-call page): no header is added;
#   - a subject crafted to hijack another customer's ticket;
#   - forged X-Triage-* headers change nothing;
#   - an auto-reply storm with a responder that marks nothing as automatic:
#     it stops at the per-sender acknowledgment limit;
#   - one sender flooding 10,000 messages: every message stored, the
#     sender's tickets, acknowledgments and escalations stay bounded, and
#     everyone else's mail is acknowledged as usual.
set -u
TR_TOP=${TR_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$TR_TOP" || exit 2
. tests/lib/tap.sh
BIN=${TRIAGE_BIN:-$TR_TOP/build/triage}
[ -x "$BIN" ] || bail "$BIN is not built"
command -v jq >/dev/null || bail "jq is missing (./bootstrap installs it)"
command -v sqlite3 >/dev/null || bail "sqlite3 is missing (./bootstrap installs it)"
[ -x /usr/bin/time ] || bail "/usr/bin/time is missing (./bootstrap installs package time)"
tmp=$(mktemp -d /tmp/triage-hostile.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
conf=conf/triage.conf
NOW=2026-11-16T09:05:00Z

# Generators (perl-base is part of every Debian system).
perl -e '
	my $d = shift;
	open F, ">", "$d/big.eml" or die;
	print F "From: Big <big\@big.example>\nTo: support\@example.test\nSubject: huge attachment\n",
		"Message-ID: <big\@big.example>\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n",
		"--b\nContent-Type: text/plain\n\nThe service is down for everyone, log attached.\n",
		"--b\nContent-Type: application/octet-stream; name=log.bin\nContent-Transfer-Encoding: base64\n\n";
	my $line = ("QUJD" x 19) . "\n";
	print F $line x int(50 * 1024 * 1024 / length $line);
	print F "--b--\n";
	close F;
	open F, ">", "$d/parts.eml" or die;
	print F "From: p\@parts.example\nSubject: many parts\nMessage-ID: <parts\@parts.example>\n",
		"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n";
	print F "--b\nContent-Type: text/plain\n\npart $_: please refund my invoice\n" for 1 .. 10000;
	print F "--b--\n";
	close F;
	open F, ">", "$d/header.eml" or die;
	print F "From: h\@header.example\nX-Long: ", "a" x 1048576, "\nSubject: login fails\n",
		"Message-ID: <header\@header.example>\n\nI cannot log in since this morning.\n";
	close F;
	open F, ">", "$d/nested.eml" or die;
	print F "From: n\@nested.example\nSubject: nested\nMessage-ID: <nested\@nested.example>\n",
		"MIME-Version: 1.0\nContent-Type: message/rfc822\n\n";
	print F "From: n$_\@nested.example\nSubject: level $_\nMIME-Version: 1.0\nContent-Type: message/rfc822\n\n"
		for 1 .. 99;
	print F "From: deep\@nested.example\nSubject: bottom\n\nthe bottom text\n";
	close F;
	open F, ">", "$d/binary.eml" or die;
	print F "From: \"Ev\x00il \xff\xfe\" <bin\@exa\x00mple.test>\nTo: sup\x00port\@example.test, \xc3\x28\@x.example\n",
		"Subject: inv\xc3\x28alid \x00 nul \xed\xa0\x80 =?utf-8?b?", "AGHDKMA=", "?= end\n",
		"Message-ID: <bin\x00\@x>\nReferences: <r\xff\@x>\n",
		"Content-Type: multipart/mixed; boundary=\"b\x00\"\n\n--b\x00\nContent-Type: text/plain; charset=utf-8\n\n",
		"body \x00 with \xff\xfe nul, \xc0\xaf overlong, \xf4\x90\x80\x80 too big \x00\x00\n",
		"--b\x00\nContent-Type: application/pdf; name=\"in\x00vo\xffice.pdf\"\n\nJVBERi0=\n--b\x00--\n";
	close F;
' "$tmp"

# -- oversized and deep shapes --------------------------------------------
for f in big parts header nested binary; do
	/usr/bin/time -f '%e %M' -o "$tmp/$f.time" "$BIN" classify -c "$conf" --now "$NOW" --json "$tmp/$f.eml" \
		>"$tmp/$f.json" 2>"$tmp/$f.err"
	st=$?
	read -r secs kb <"$tmp/$f.time"
	diag "$f.eml: $(stat -c %s "$tmp/$f.eml") bytes, ${secs} s, $((kb / 1024)) MB peak RSS"
	is "$st" 0 "$f.eml: classified (exit 0)"
	jq -e . "$tmp/$f.json" >/dev/null 2>&1
	ok $? "$f.eml: one valid JSON object"
	iconv -f UTF-8 -t UTF-8 "$tmp/$f.json" >/dev/null 2>&1
	ok $? "$f.eml: the output is valid UTF-8"
	st=0; grep -q '\\u0000' "$tmp/$f.json" && st=1
	ok $st "$f.eml: no NUL in any field"
	st=0; awk -v s="$secs" -v max="$(tr_scaled 15)" 'BEGIN { exit !(s < max) }' || st=1
	ok $st "$f.eml: done in under $(tr_scaled 15) s ($secs s; 15 s x TR_TIME_FACTOR $TR_TIME_FACTOR)"
	st=0; [ "$kb" -lt $((400 * 1024)) ] || st=1
	ok $st "$f.eml: peak memory under 400 MB ($((kb / 1024)) MB)"
done
j() { jq -r "$2" "$tmp/$1.json"; }
like "$(j big '.flags | join(",")')" truncated_size "50 MB: flagged truncated at message_bytes"
is "$(j big .category)" technical "50 MB: the text before the attachment is still classified"
is "$(j parts .parts)" 500 "10,000 parts: only mime_parts (500) are examined"
like "$(j parts '.flags | join(",")')" truncated_parts "10,000 parts: flagged"
like "$(j header '.flags | join(",")')" truncated_headers "1 MB header line: flagged"
is "$(j header .from.address)" h@header.example "1 MB header line: the From before it is kept"
is "$(j nested .mime_depth)" 20 "nested 100 deep: walked to mime_depth (20) only"
like "$(j binary '.flags | join(",")')" nul_bytes "NUL bytes: flagged"
is "$(j binary .ack)" false "a sender address mangled by NUL bytes gets no acknowledgment"
like "$(j binary .text.new)" "^body with .* nul, .* overlong" "invalid UTF-8 body: the text survives, repaired"

# Everything is stored too, and reads back as valid UTF-8.
db=$tmp/hostile.db
"$BIN" ingest -c "$conf" --db "$db" --now "$NOW" --no-deliver \
	"$tmp"/{big,parts,header,nested,binary}.eml >"$tmp/ingest.out" 2>&1
ok $? "every hostile message is stored" || diag "$(cat "$tmp/ingest.out")"
is "$(sqlite3 "$db" "SELECT count(*) FROM tickets")" 5 "five tickets"
st=0
shown=0
for t in $("$BIN" tickets -c "$conf" --db "$db" --json | jq -r .ticket); do
	shown=$((shown + 1))
	"$BIN" show -c "$conf" --db "$db" --json "$t" >"$tmp/show.json" 2>&1 &&
		jq -e . "$tmp/show.json" >/dev/null 2>&1 &&
		iconv -f UTF-8 -t UTF-8 "$tmp/show.json" >/dev/null 2>&1 || { st=1; diag "$t: bad output"; }
done
[ "$shown" = 5 ] || st=1
ok $st "every stored ticket shows as valid UTF-8 JSON ($shown shown)"

# -- CR/LF injection into every templated header ---------------------------
printf '%s\n' 'From: =?UTF-8?Q?Eve=0D=0ABcc:_victim@example.test=0D=0A?= <eve@evil.example>' \
	'To: support@example.test' \
	'Subject: =?UTF-8?Q?URGENT_outage_production_down=0D=0ABcc:_victim@example.test=0AX-Evil:_1?=' \
	'Message-ID: <inj-1@evil.example>' 'References: <a@b>' ' <c@d>' \
	'Date: Mon, 16 Nov 2026 09:00:00 +0000' 'Content-Type: text/plain; charset=utf-8' '' \
	'Our production site is down for everyone, nobody can log in. This is urgent.' >"$tmp/inject.eml"
idb=$tmp/inject.db
"$BIN" ingest -c "$conf" --db "$idb" --now "$NOW" --no-deliver "$tmp/inject.eml" >/dev/null 2>&1
kinds=$(sqlite3 "$idb" "SELECT group_concat(kind, ',') FROM (SELECT kind FROM outbox ORDER BY id)")
like "$kinds" "ack.*forward" "an escalating injection attempt queues an acknowledgment and a forward ($kinds)"
st=0
for id in $(sqlite3 "$idb" "SELECT id FROM outbox"); do
	"$BIN" outbox -c "$conf" --db "$idb" show "$id" | tr -d '\r' | sed '/^$/q' >"$tmp/head.$id"
	bad=$(grep -ciE '^(bcc|x-evil):' "$tmp/head.$id")
	odd=$(grep -cvE '^([A-Za-z0-9-]+: |[ 	]|$)' "$tmp/head.$id")
	if [ "$bad" != 0 ] || [ "$odd" != 0 ]; then st=1; diag "outbox $id:" "$(cat "$tmp/head.$id")"; fi
done
ok $st "no header added by CR/LF in a name or subject, in any queued message"

# -- hijack and forged headers ------------------------------------------------
hdb=$tmp/hijack.db
mk() { # FILE FROM SUBJECT ID [EXTRA]
	printf 'From: %s\nTo: support@example.test\nSubject: %s\nMessage-ID: <%s>\n%sDate: Mon, 16 Nov 2026 09:00:00 +0000\n\n%s\n' \
		"$2" "$3" "$4" "${5:-}" "Hello, about my order: ${3}." >"$1"
}
mk "$tmp/victim.eml" "Vic <vic@victim.example>" "My refund" victim-1@victim.example
"$BIN" ingest -c "$conf" --db "$hdb" --now "$NOW" --no-deliver "$tmp/victim.eml" >/dev/null 2>&1
mk "$tmp/hijack.eml" "Mal <mal@attacker.example>" "Re: [TKT-000001] My refund" mal-1@attacker.example \
	"In-Reply-To: <victim-1@victim.example>\nReferences: <victim-1@victim.example>\n"
out=$("$BIN" ingest -c "$conf" --db "$hdb" --now "$NOW" --no-deliver --json "$tmp/hijack.eml" 2>&1)
is "$(jq -r .result <<<"$out")" new "a stranger's reply to someone else's ticket opens a new ticket"
is "$(jq -r .reference_refused <<<"$out")" TKT-000001 "... and records the refused reference"
is "$(sqlite3 "$hdb" "SELECT count(*) FROM messages WHERE ticket_id = 1")" 1 "the victim's ticket is untouched"
ackid=$(sqlite3 "$hdb" "SELECT id FROM outbox WHERE kind = 'ack' AND ticket_id = 2")
is "$("$BIN" outbox -c "$conf" --db "$hdb" show "$ackid" | tr -d '\r' | grep -m1 '^Subject:')" \
	"Subject: [TKT-000002] Re: My refund" "its acknowledgment carries only its own ticket tag"
mk "$tmp/forged.eml" "Fay <fay@forge.example>" "Question about export" forged-1@forge.example \
	"X-Triage-Ticket: TKT-000001\nX-Triage-Priority: P1\nX-Triage-Team: security\nX-Triage-Category: security\n"
out=$("$BIN" ingest -c "$conf" --db "$hdb" --now "$NOW" --no-deliver --json "$tmp/forged.eml" 2>&1)
is "$(jq -r .result <<<"$out")" new "forged X-Triage-Ticket: a new ticket, not someone else's"
like "$(jq -r '.priority + " " + .team' <<<"$out")" "^P[234] " "forged X-Triage-Priority/Team are ignored ($(jq -r '.priority + " " + .team' <<<"$out"))"

# -- an auto-reply storm -------------------------------------------------------
# The responder answers every acknowledgment with a new message, marking
# nothing as automatic (the worst kind).  Our side must stop on its own.
sdb=$tmp/storm.db
acks() { sqlite3 "$sdb" "SELECT count(*) FROM outbox WHERE kind = 'ack' AND recipient = '$1'"; }
"$BIN" ingest -c "$conf" --db "$sdb" --now "$NOW" --no-deliver "$tmp/victim.eml" >/dev/null 2>&1
rounds=0
prev=0
start=$(date -d "$NOW" +%s)
while [ $rounds -lt 50 ]; do
	rounds=$((rounds + 1))
	mk "$tmp/bot.eml" "Bot <bot@responder.example>" "Thank you for your message ($rounds)" "bot-$rounds@responder.example"
	"$BIN" ingest -c "$conf" --db "$sdb" --now $((start + rounds * 30)) --no-deliver "$tmp/bot.eml" >/dev/null 2>&1
	n=$(acks bot@responder.example)
	[ "$n" -gt "$prev" ] || break
	prev=$n
done
is "$(acks bot@responder.example)" 5 "the storm ends at the per-sender limit: 5 acknowledgments"
ok $([ $rounds -le 6 ] && echo 0 || echo 1) "... after $rounds rounds"
is "$(acks vic@victim.example)" 1 "the other customer's acknowledgment is unaffected"

# -- one sender floods 10,000 messages -------------------------------------------
fdb=$tmp/flood.db
perl -e 'for my $i (1 .. 10000) {
	print "From flood\@flood.example Mon Nov 16 09:00:00 2026\nFrom: Flood <flood\@flood.example>\n",
		"To: support\@example.test\nSubject: order problem $i\nMessage-ID: <flood-$i\@flood.example>\n",
		"Date: Mon, 16 Nov 2026 09:00:00 +0000\n\nHello, message $i about my invoice ", $i * 7919 % 10007, ".\n\n" }' \
	>"$tmp/flood.mbox"
for i in $(seq 1 20); do
	mk "$tmp/other-$i.eml" "Customer $i <c$i@customer$i.example>" "Question $i about billing" "other-$i@customer$i.example"
done
t0=$(date +%s.%N)
"$BIN" ingest -c "$conf" --db "$fdb" --now "$NOW" --no-deliver "$tmp/flood.mbox" >/dev/null 2>"$tmp/flood.err"
ok $? "10,000 messages from one sender are ingested" || diag "$(tail -3 "$tmp/flood.err")"
"$BIN" ingest -c "$conf" --db "$fdb" --now "$NOW" --no-deliver "$tmp"/other-*.eml >/dev/null 2>&1
ok $? "... then 20 other customers' messages"
t1=$(date +%s.%N)
diag "ingest of 10,020 messages: $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s"
q() { sqlite3 "$fdb" "$1"; }
is "$(q "SELECT count(*) FROM messages m JOIN tickets t ON t.id = m.ticket_id WHERE t.requester = 'flood@flood.example'")" \
	10000 "nothing lost: all 10,000 flood messages are stored"
is "$(q "SELECT count(*) FROM tickets WHERE requester = 'flood@flood.example' AND is_incident = 0")" 20 \
	"the flood opens new_per_sender_hour (20) tickets, no more"
is "$(q "SELECT count(*) FROM outbox WHERE kind = 'ack' AND recipient = 'flood@flood.example'")" 5 \
	"the flood gets 5 acknowledgments"
st=0; [ "$(q "SELECT count(*) FROM outbox WHERE kind != 'ack'")" -le 3 ] || st=1
ok $st "the flood escalates once, not per message ($(q "SELECT count(*) FROM outbox WHERE kind != 'ack'") forward/page rows)"
is "$(q "SELECT count(DISTINCT recipient) FROM outbox WHERE kind = 'ack' AND recipient LIKE 'c%@customer%.example'")" 20 \
	"every other customer is acknowledged"
is "$(q "SELECT count(*) FROM tickets WHERE requester LIKE 'c%@customer%.example'")" 20 \
	"every other customer has their own ticket"
done_testing
