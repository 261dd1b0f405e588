#!/usr/bin/env bash
# tests/integration/outbound.sh — what customers and teams actually receive.
# Real Postfix (STARTTLS, our CA) relaying to real Dovecot; `triage ingest`
# queues, `triage deliver` sends; the mailboxes are read back over IMAP.
#   - acknowledgments in five languages thread under the customer's message
#     (In-Reply-To, References), carry Auto-Submitted and friends, encode
#     non-ASCII subjects; a CR/LF injection in a subject stays harmless;
#   - no acknowledgment to an auto-reply, a bounce or list mail;
#   - per-sender limits: 7 messages from one address, 5 acknowledgments;
#   - an escalation forward carries the original as message/rfc822;
#   - relay down while 100 acks are queued: all delivered exactly once after
#     it returns;
#   - a 5xx from the relay: a permanent failure recorded.
set -u
TR_TOP=${TR_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$TR_TOP/tests/lib/tap.sh"
. "$TR_TOP/tests/lib/servers.sh"
BIN=${TRIAGE_BIN:-$TR_TOP/build/triage}
[ -x "$BIN" ] || bail "$BIN is not built"

srv_init
users=(support alice bob carol dave erin frank eve flood c rejected oncall engineering ivan jun kim
       support-team billing accounts security devrel legal product soporte-equipo hugo ana ben gina frank)
srv_start_dovecot "${users[@]}"
srv_start_postfix "" "recipient_delimiter=+" \
	"smtpd_recipient_restrictions=check_recipient_access inline:{rejected@example.test=REJECT},permit_mynetworks,reject_unauth_destination"

# A copy of the shipped configuration pointed at the test servers.
conf=$SRV_DIR/conf
cp -r "$TR_TOP/conf" "$conf"
sed -i "s|^templates = .*|templates = $TR_TOP/templates|; s|^agent_domains = .*|agent_domains = agents.example.test|" \
	"$conf/triage.conf"
cat >>"$conf/triage.conf" <<EOF

[smtp]
host = localhost
port = $SMTP_PORT
tls = required
ca_file = $SRV_CA
retry_base = 60s
EOF
db=$SRV_DIR/t.db
T() { "$BIN" "$@" -c "$conf/triage.conf" --db "$db"; }
"$BIN" check-config -c "$conf/triage.conf" >/dev/null 2>"$SRV_DIR/check.err"
ok $? "the test configuration is valid" || diag "$(cat "$SRV_DIR/check.err")"

mail=$SRV_DIR/mail
mkdir -p "$mail"
msg() { # FILE FROM SUBJECT MESSAGE-ID BODY [EXTRA-HEADERS]
	printf 'From: %s\nTo: support@example.test\nSubject: %s\nMessage-ID: <%s>\nReferences: <older-%s>\n%sDate: Mon, 16 Nov 2026 09:00:00 +0000\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n%s\n' \
		"$2" "$3" "$4" "$4" "${6:-}" "$5" >"$mail/$1"
}
msg 01-en "Alice <alice@example.test>" "My invoice is wrong" alice1@example.test \
	"Hello, the invoice I received this month shows the wrong amount, please check it."
msg 02-es "Bob <bob@example.test>" "Mi factura está mal" bob1@example.test \
	"Hola, la factura que recibí este mes tiene un importe incorrecto, por favor revísenla. Gracias."
msg 03-de "Carol <carol@example.test>" "Rechnung für März falsch" carol1@example.test \
	"Guten Tag, die Rechnung von diesem Monat hat einen falschen Betrag, bitte prüfen Sie das. Danke."
msg 04-fr "Dave <dave@example.test>" "Facture incorrecte" dave1@example.test \
	"Bonjour, la facture que j'ai reçue ce mois-ci a un montant incorrect, merci de vérifier."
msg 05-pt "Erin <erin@example.test>" "Fatura errada" erin1@example.test \
	"Olá, a fatura que recebi este mês está com o valor errado, por favor verifiquem. Obrigada."
msg 06-auto "Frank <frank@example.test>" "Automatic reply: away" frank1@example.test \
	"I am out of the office until Monday." "Auto-Submitted: auto-replied
"
msg 07-list "Frank <frank@example.test>" "[dev] weekly digest" frank2@example.test \
	"This week on the list: many things." "List-Id: <dev.lists.example.test>
Precedence: list
"
printf 'From: MAILER-DAEMON@mx.example.test\nTo: support@example.test\nSubject: Undelivered Mail Returned to Sender\nMessage-ID: <dsn1@mx.example.test>\nAuto-Submitted: auto-replied\n\nThis is the mail system. Your message could not be delivered.\n' >"$mail/08-bounce"
msg 09-inject "Eve <eve@example.test>" "=?UTF-8?Q?Hello=0D=0ABcc:_victim@example.test=0D=0AX-Evil:_1?=" eve1@example.test \
	"A normal question about my order, please."
msg 10-outage "Gina <gina@example.test>" "Production is down" gina1@example.test \
	"Our site is down for all users since 9:00, nobody can log in, errors everywhere. X-Marker-4711"

T ingest --no-deliver --now 2026-11-16T09:00:00Z "$mail" >"$SRV_DIR/ingest.out" 2>&1
ok $? "triage ingest of the first set" || diag "$(cat "$SRV_DIR/ingest.out")"
T deliver --now 2026-11-16T09:00:05Z >"$SRV_DIR/deliver.out" 2>&1
ok $? "triage deliver" || diag "$(cat "$SRV_DIR/deliver.out")"
diag "$(tail -1 "$SRV_DIR/deliver.out")"

for u in alice bob carol dave erin eve; do
	imap_wait_count "$u" INBOX 1 15
	ok $? "$u received an acknowledgment"
done
ack=$(imap_fetch alice INBOX 1 | tr -d '\r')
like "$ack" $'\nIn-Reply-To: <alice1@example.test>' "threads under the customer's message (In-Reply-To)"
like "$ack" $'\nReferences: <older-alice1@example.test> <alice1@example.test>' "References: the customer's, then their message"
like "$ack" $'\nAuto-Submitted: auto-replied' "Auto-Submitted: auto-replied"
like "$ack" $'\nX-Auto-Response-Suppress: All' "X-Auto-Response-Suppress: All"
like "$ack" $'\nPrecedence: bulk' "Precedence: bulk"
like "$ack" $'\nSubject: \\[TKT-[0-9]{6}\\] My invoice is wrong' "the subject carries the ticket tag"
like "$ack" $'\nMessage-I[dD]: <triage\\.[0-9a-f]{24}@example\\.test>' "a stable Message-ID on our domain"
like "$ack" 'thank you for writing to us' "English body"
like "$(imap_fetch bob INBOX 1 | tr -d '\r')" 'gracias por escribirnos' "Spanish body"
de=$(imap_fetch carol INBOX 1 | tr -d '\r')
like "$de" 'vielen Dank f=C3=BCr Ihre Nachricht' "German body (quoted-printable UTF-8)"
like "$de" $'\nSubject: \\[TKT-[0-9]{6}\\] =\\?[Uu][Tt][Ff]-8\\?' "non-ASCII subject RFC 2047-encoded"
like "$(imap_fetch dave INBOX 1 | tr -d '\r')" 'merci de nous avoir =C3=A9crit' "French body"
like "$(imap_fetch erin INBOX 1 | tr -d '\r')" 'obrigado por nos escrever' "Portuguese body"
evil=$(imap_fetch eve INBOX 1 | tr -d '\r')
is "$(printf '%s\n' "$evil" | grep -ciE '^(Bcc|X-Evil):')" 0 "a CR/LF injection in the subject adds no header"
is "$(imap_count frank INBOX)" 0 "no acknowledgment to an auto-reply or list mail"
is "$(sqlite3 "$db" "SELECT count(*) FROM outbox o JOIN messages m ON m.ticket_id = o.ticket_id WHERE o.kind = 'ack' AND m.sender LIKE 'mailer-daemon%'")" 0 \
	"no acknowledgment to a bounce"
imap_wait_count oncall INBOX 1 15
ok $? "the outage was forwarded to the on-call mailbox"
fwd=$(imap_fetch oncall INBOX 1 | tr -d '\r')
like "$fwd" 'Content-Type: message/rfc822' "the forward attaches the original as message/rfc822"
like "$fwd" 'Message-ID: <gina1@example.test>' "the attached original is the customer's message"
like "$fwd" 'X-Marker-4711' "with its text intact"
like "$fwd" 'Why escalated' "the handoff explains why"

# Per-sender limits: 7 messages from one address, 5 acknowledgments.
for i in 1 2 3 4 5 6 7; do
	msg "flood$i" "Flood <flood@example.test>" "Question number $i about topic $((i * 13))" "flood$i@example.test" \
		"Question $i: something entirely different each time, number $((i * 101)) and $((i * 7))."
done
T ingest --now 2026-11-16T09:10:00Z "$mail"/flood* >/dev/null 2>&1
T deliver --now 2026-11-16T09:10:05Z >/dev/null 2>&1
imap_wait_count flood INBOX 5 15
ok $? "5 acknowledgments to one sender within the hour"
sleep 1
is "$(imap_count flood INBOX)" 5 "and not more"

# A 5xx from the relay: a permanent failure, recorded.
msg rejected "R <rejected@example.test>" "Please help" rej1@example.test "I need help with my account settings."
T ingest --now 2026-11-16T09:20:00Z "$mail/rejected" >/dev/null 2>&1
T deliver --now 2026-11-16T09:20:05Z >/dev/null 2>&1
failed=$(T outbox --failed --json 2>/dev/null | jq -r 'select(.recipient == "rejected@example.test") | .state')
is "$failed" failed "a 5xx is a permanent failure"
is "$(sqlite3 "$db" "SELECT count(*) FROM events WHERE kind = 'delivery_failed'")" 1 "recorded as an event"

# Relay down while 100 acknowledgments are queued.
srv_stop_postfix
mkdir -p "$SRV_DIR/many"
for i in $(seq 1 100); do
	printf 'From: C%d <c+%d@example.test>\nTo: support@example.test\nSubject: Request %d\nMessage-ID: <many%d@example.test>\n\nRequest number %d about the export of report %d.\n' \
		"$i" "$i" "$i" "$i" "$i" "$((i * 37))" >"$SRV_DIR/many/m$i"
done
T ingest --now 2026-11-16T10:00:00Z "$SRV_DIR/many" >/dev/null 2>&1
T deliver --now 2026-11-16T10:00:05Z >"$SRV_DIR/down.out" 2>&1
like "$(cat "$SRV_DIR/down.out")" 'deliver: 0 sent, [0-9]+ retry later' "relay down: nothing sent, everything retries"
is "$(sqlite3 "$db" "SELECT count(*) FROM outbox WHERE kind = 'ack' AND recipient LIKE 'c+%' AND state = 'retry'")" 100 \
	"100 acknowledgments wait for the relay"
srv_restart_postfix
T deliver --now 2026-11-16T12:00:00Z >"$SRV_DIR/up.out" 2>&1
diag "$(tail -1 "$SRV_DIR/up.out")"
imap_wait_count c INBOX 100 30
ok $? "all 100 delivered after the relay returns"
T deliver --now 2026-11-17T12:00:00Z >/dev/null 2>&1
sleep 1
is "$(imap_count c INBOX)" 100 "exactly once: nothing delivered twice"
is "$(sqlite3 "$db" "SELECT count(*) FROM outbox WHERE kind = 'ack' AND recipient LIKE 'c+%' AND state = 'sent'")" 100 \
	"the outbox says sent for each"
done_testing
