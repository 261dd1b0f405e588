#!/usr/bin/env bash
# tests/integration/serve-xmpp.sh — `triage serve` with its XMPP channel
# against a real Prosody (MUC component), the store fed by `triage ingest`:
#   - an escalation appears in the team's room within 2 s of the ticket;
#   - `!ack TKT` from a [person] JID acknowledges it (an event with the
#     actor) and stops the ladder: a later `triage sla-tick --now` queues
#     nothing for it, while an unacknowledged twin climbs the ladder;
#   - a stranger (even one using an operator's nick) gets "not allowed" and
#     nothing changes; [xmpp] operators, invalid and hostile commands;
#   - a 1:1 chat becomes a ticket, acknowledged in the chat with the ticket
#     number and the expected response time; a follow-up threads onto it;
#     an operator's chat is no ticket;
#   - Prosody restarted with posts queued: reconnect, rejoin, each post
#     delivered exactly once (counted at a listener in the room);
#   - the daemon SIGKILLed with posts in flight: at the next start each is
#     resent once, marked, and delivered once; a chat sent meanwhile is
#     taken from the server's offline storage; SIGTERM is bounded.
set -u
TR_TOP=${TR_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$TR_TOP/tests/lib/tap.sh"
. "$TR_TOP/tests/lib/servers.sh"
BIN=${TRIAGE_BIN:-$TR_TOP/build/triage}
[ -x "$BIN" ] || bail "$BIN is not built"
command -v go-sendxmpp >/dev/null || bail "go-sendxmpp not installed (run ./bootstrap)"

t_start=$(date +%s%N)
srv_init
srv_start_prosody triage-bot ana agent1 agent2 stranger customer demo
room=ops@$SRV_MUC_DOMAIN
bot=triage-bot@$SRV_XMPP_DOMAIN

conf=$SRV_DIR/conf
cp -r "$TR_TOP/conf" "$conf"
db=$SRV_DIR/t.db
sed -i "s|^templates = .*|templates = $TR_TOP/templates|; s|^path = /var/lib/triage/triage.db|path = $db|" \
	"$conf/triage.conf"
sed -i "s/conference\.example\.test/$SRV_MUC_DOMAIN/" "$conf/teams.conf"
cat >>"$conf/triage.conf" <<EOF

[serve]
outbox_interval = 1s
drain_timeout = 10s

[xmpp]
jid = $bot
password = $SRV_PASSWORD
host = 127.0.0.1
port = $XMPP_PORT
ca_file = $SRV_CA
nick = triage
rooms = $room
create_rooms = no
operators = agent1@$SRV_XMPP_DOMAIN
reconnect_backoff = 1s
reconnect_backoff_max = 2s
outbox_retry = 1s
ambiguous_delay = 2s
chat_thread_window = 2h
EOF

q() { sqlite3 "$db" "$1" 2>/dev/null; }
tid() { printf 'TKT-%06d' "$1"; }

# A P1 outage from an enterprise customer (engineering, room ops), each
# worded differently so that no two look like one incident.
# Sets $mail (not in $(...): the counter must survive).
n_mail=0
outage() {
	n_mail=$((n_mail + 1))
	local f=$SRV_DIR/outage-$n_mail.eml words
	words=$(head -c 300 /dev/urandom | base64 | tr -dc a-z | fold -w7 | head -12 | tr '\n' ' ')
	printf 'From: Priya Raman <priya.raman@bigcorp.example>\nTo: support@example.test\nSubject: Outage: service%d down for all customers\nMessage-ID: <outage-%d-%d@bigcorp.example>\n\nSince this morning service%d is down for all customers, nobody can work. Reference %s\n' \
		"$n_mail" "$n_mail" "$$" "$n_mail" "$words" >"$f"
	mail=$f
}
ingest() { "$BIN" ingest -c "$conf/triage.conf" "$@" >>"$SRV_DIR/ingest.log" 2>&1; }
last_ticket() { q "SELECT max(id) FROM tickets WHERE is_incident = 0"; }

serve_pid=""
serve_log=$SRV_DIR/serve.log
start_serve() {
	"$BIN" serve -c "$conf/triage.conf" --pidfile "$SRV_DIR/serve.pid" >>"$serve_log" 2>&1 &
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
joins() { grep -c "xmpp: joined $room" "$serve_log"; }
joins_above() { [ "$(joins)" -gt "$1" ]; }

# listener NAME FILE: agent2 in the room, printing what it sees; it owns
# the room (it creates it) and opens it to real JIDs, so the bot (a plain
# participant, create_rooms = no) sees who types a command.
listener() {
	xmpp_listen "$1" agent2 "$room" "$2"
	local out
	out=$(xmpp_query agent2 "<iq type='set' id='cfg1' to='$room'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field><field var='muc#roomconfig_whois'><value>anyone</value></field></x></query></iq>")
	[[ $out =~ id=.cfg1.[^\>]*type=.result.|type=.result.[^\>]*id=.cfg1. ]] || bail "cannot configure $room: ${out:0:300}"
}
# quick_listener NAME FILE: agent2 creates the room again after a Prosody
# restart, without waiting: the bot (create_rooms = no) cannot rejoin
# before it, so the bot's "joined" says the listener is in.
quick_listener() {
	: >"$2"
	srv_spawn "$1" "$2" env SSL_CERT_FILE="$SRV_CA" go-sendxmpp --username "agent2@$SRV_XMPP_DOMAIN" \
		--password "$SRV_PASSWORD" --jserver "127.0.0.1:$XMPP_PORT" --timeout 10 --listen --chatroom \
		--alias agent2 "$room"
}
seen() { grep -c -- "$2" "$1"; }       # FILE TEXT: lines at the listener
seen_is() { [ "$(seen "$1" "$2")" = "$3" ]; }
said() { grep -q -- "$2" "$1"; }       # FILE TEXT

# --- set-up ------------------------------------------------------------------
listener room1 "$SRV_DIR/room.log"
: >"$SRV_DIR/customer.log"
srv_spawn customer-listener "$SRV_DIR/customer.log" env SSL_CERT_FILE="$SRV_CA" go-sendxmpp \
	--username "customer@$SRV_XMPP_DOMAIN" --password "$SRV_PASSWORD" --jserver "127.0.0.1:$XMPP_PORT" \
	--timeout 10 --listen

# The demo's window on the room (contrib/demo/room-transcript.sh) watches
# the chat-ops part below; it joins meanwhile.
"$TR_TOP/contrib/demo/room-transcript.sh" -u demo -r "$SRV_DIR/ready" -m "agent1: TKT-[0-9]+ P1" ops 60 \
	>"$SRV_DIR/transcript.txt" 2>&1 &
transcript_pid=$!
srv_at_exit 'kill "$transcript_pid" 2>/dev/null; wait "$transcript_pid" 2>/dev/null'

"$BIN" check-config -v -c "$conf/triage.conf" >"$SRV_DIR/check.out" 2>&1
ok $? "check-config accepts the [xmpp] group"
like "$(cat "$SRV_DIR/check.out")" "operators = agent1@localhost" "check-config -v prints [xmpp] with its operators"
is "$(grep -c "password = $SRV_PASSWORD" "$SRV_DIR/check.out")" 0 "check-config -v hides the password"

start_serve
wait_until 15 joins_above 0
ok $? "triage serve connects over STARTTLS and joins $room"

# --- 1. an escalation in the room within 2 s -------------------------------------
outage
t_ingest=$(date +%s%N)
ingest "$mail"
t0=$(date +%s%N)   # the ticket is committed: the clock starts
t1=$(last_ticket)
wait_until 10 said "$SRV_DIR/room.log" "P1 $(tid "$t1") technical"
status=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
diag "triage ingest: $(( (t0 - t_ingest) / 1000000 )) ms; ticket committed to post seen in the room: $ms ms"
ok $([ $status = 0 ] && [ "$ms" -le 2000 ] && echo 0 || echo 1) "the escalation of $(tid "$t1") is in $room within 2 s"
like "$(cat "$SRV_DIR/room.log")" "!ack $(tid "$t1")" "the post says how to act on it"
wait_until 5 eval '[ "$(q "SELECT state FROM outbox WHERE ticket_id = '"$t1"' AND kind = '"'room_post'"'")" = sent ]'
ok $? "the outbox row is marked sent (the room echoed it)"

# --- 2. chat-ops: strangers are refused, people and operators act ---------------------
wait_until 30 test -e "$SRV_DIR/ready"
ok $? "room-transcript.sh is in the room"
events_before=$(q "SELECT count(*) FROM events WHERE ticket_id = $t1")
xmpp_send stranger "$room" "!ack $(tid "$t1")"
wait_until 5 said "$SRV_DIR/room.log" "stranger: not allowed"
ok $? "!ack from a stranger: 'not allowed'"
# An operator's nick proves nothing: the room shows the bot the real JID.
printf '!resolve %s\n' "$(tid "$t1")" | _srv_sendxmpp stranger --chatroom --alias ana "$room"
wait_until 5 said "$SRV_DIR/room.log" "ana: not allowed"
ok $? "a stranger using the nick of a [person] is refused too"
is "$(q "SELECT coalesce(first_response_at, 0) || ' ' || status || ' ' || (escalation_acked_at IS NULL) FROM tickets WHERE id = $t1")" \
	"0 open 1" "... and the ticket is unchanged"
is "$(q "SELECT count(*) FROM events WHERE ticket_id = $t1")" "$events_before" "... no event was added"

xmpp_send ana "$room" "!ack $(tid "$t1")"
wait_until 5 said "$SRV_DIR/room.log" "ana: $(tid "$t1") acknowledged by"
ok $? "!ack from a [person] JID: acknowledged, answered in the room"
is "$(q "SELECT actor FROM events WHERE ticket_id = $t1 AND kind = 'acked'")" "ana" "the ack is an event with the actor"
is "$(q "SELECT actor || ' ' || detail FROM events WHERE ticket_id = $t1 AND kind = 'chat_command'")" \
	"ana !ack via $room" "... and the command too, with where it came from"
ok $([ "$(q "SELECT first_response_at > 0 AND escalation_acked_at > 0 FROM tickets WHERE id = $t1")" = 1 ] && echo 0 || echo 1) \
	"first response and escalation acknowledgment recorded"

xmpp_send agent1 "$room" "!show $(tid "$t1")"
wait_until 5 said "$SRV_DIR/room.log" "agent1: $(tid "$t1") P1 open"
ok $? "an [xmpp] operators JID runs !show: a compact summary"
wait "$transcript_pid"
ok $? "room-transcript.sh ends when its pattern is seen"
like "$(cat "$SRV_DIR/transcript.txt")" "^[0-9:]{8} triage: ana: $(tid "$t1") acknowledged by Ana Lima" \
	"... and prints the room's transcript (time, nick, text)"
xmpp_send ana "$room" "!resolve $(tid "$t1") "$'\u202e'
wait_until 5 said "$SRV_DIR/room.log" "ana: control or invisible formatting characters are not allowed"
ok $? "a command with a bidi override is refused by the parser"
is "$(q "SELECT status FROM tickets WHERE id = $t1")" "open" "... and changes nothing"

# The ladder: the acknowledged ticket climbs no further; an unacknowledged twin does.
outage
ingest "$mail"
t2=$(last_ticket)
wait_until 5 said "$SRV_DIR/room.log" "P1 $(tid "$t2") technical"
later=$(( $(date +%s) + 40 * 60 ))
"$BIN" sla-tick -c "$conf/triage.conf" --now "$later" >>"$SRV_DIR/ingest.log" 2>&1
is "$(q "SELECT count(*) FROM sla_ladder WHERE ticket_id = $t1")" 0 \
	"40 min later the acknowledged $(tid "$t1") has no ladder step"
ok $([ "$(q "SELECT count(*) FROM sla_ladder WHERE ticket_id = $t2")" -ge 4 ] && echo 0 || echo 1) \
	"... while the unacknowledged $(tid "$t2") climbed ($(q "SELECT group_concat(clock || ':' || step, ' ') FROM sla_ladder WHERE ticket_id = $t2"))"
# (Queued for the --now time: the daemon posts them when that time comes.)
ok $([ "$(q "SELECT count(*) FROM outbox WHERE ticket_id = $t2 AND kind = 'room_post' AND template != 'escalation'")" -ge 4 ] && echo 0 || echo 1) \
	"... and each of its steps is queued as a post to $room"

# --- 3. chat intake ------------------------------------------------------------
before=$(last_ticket)
xmpp_send customer "$bot" "Hello, I cannot log in to my account since this morning, the page shows error 500."
wait_until 10 eval '[ "$(last_ticket)" -gt '"$before"' ]'
ok $? "a 1:1 chat to the bot becomes a ticket"
t3=$(last_ticket)
is "$(q "SELECT channel || ' ' || requester FROM tickets WHERE id = $t3")" "xmpp customer@localhost" \
	"... of channel xmpp, the requester its bare JID"
wait_until 10 said "$SRV_DIR/customer.log" "Your ticket is $(tid "$t3")"
ok $? "the acknowledgment arrives in the chat with the ticket number"
like "$(cat "$SRV_DIR/customer.log")" "will answer (within|by) [^.]+[0-9]" "... and the expected response time"
xmpp_send customer "$bot" "It also fails in the mobile app."
wait_until 10 eval '[ "$(q "SELECT count(*) FROM messages WHERE ticket_id = '"$t3"'")" = 2 ]'
ok $? "a follow-up chat threads onto the same ticket"
is "$(last_ticket)" "$t3" "... no new ticket"
sleep 0.5
is "$(seen "$SRV_DIR/customer.log" "Your ticket is")" 1 "... and no second acknowledgment"
xmpp_send ana "$bot" "hello, quick question"
wait_until 5 grep -q "xmpp: a chat from ana@localhost is not a ticket" "$serve_log"
ok $? "a chat from a [person] JID is answered as the team's own"
is "$(last_ticket)" "$t3" "a chat from a [person] JID is not intake"

# --- 4. Prosody restarted with posts queued: exactly once --------------------------
# (go-sendxmpp listeners do not survive a server stop: they spin on EOF.)
srv_kill room1
srv_kill customer-listener
srv_stop_prosody
wait_until 10 grep -q "xmpp: disconnected" "$serve_log"
ok $? "the gateway notices Prosody is gone"
files=()
for i in 1 2 3; do
	outage
	files+=("$mail")
done
ingest "${files[@]}"
mapfile -t queued < <(q "SELECT id FROM tickets WHERE is_incident = 0 ORDER BY id DESC LIMIT 3")
j=$(joins)
srv_restart_prosody
quick_listener room2 "$SRV_DIR/room2.log"
wait_until 15 joins_above "$j"
ok $? "after the restart the gateway reconnects and rejoins $room"
all_once() {
	local t
	for t in "${queued[@]}"; do seen_is "$SRV_DIR/room2.log" "P1 $(tid "$t") technical" 1 || return 1; done
}
wait_until 15 all_once
ok $? "the 3 posts queued while Prosody was down arrive, once each"
sleep 0.5
all_once
ok $? "... and still once each a moment later"
is "$(q "SELECT count(*) FROM outbox WHERE kind = 'room_post' AND ticket_id IN ($(IFS=,; echo "${queued[*]}")) AND state = 'sent'")" 3 \
	"... and their rows are sent"

# --- 5. the daemon killed with posts in flight -----------------------------------------
srv_kill room2
srv_stop_prosody
files=()
for i in 1 2; do
	outage
	files+=("$mail")
done
ingest "${files[@]}"
mapfile -t inflight < <(q "SELECT id FROM tickets WHERE is_incident = 0 ORDER BY id DESC LIMIT 2")
claimed() { [ "$(q "SELECT count(*) FROM outbox WHERE kind = 'room_post' AND state = 'sending'")" = 2 ]; }
wait_until 5 claimed
ok $? "2 posts handed to the connection (rows 'sending') while Prosody is down"
stop_serve KILL
srv_restart_prosody
quick_listener room3 "$SRV_DIR/room3.log"
# A chat while the daemon is down waits on the server (offline storage).
xmpp_send customer "$bot" "Still broken here, any update?"
serve_log=$SRV_DIR/serve2.log
start_serve
wait_until 15 joins_above 0
wait_until 10 eval '[ "$(q "SELECT count(*) FROM messages WHERE ticket_id = '"$t3"'")" = 3 ]'
ok $? "a chat sent while the daemon was down is taken at its start (threaded onto $(tid "$t3"))"
like "$(cat "$serve_log")" "2 posts or chats were interrupted" "at start the interrupted rows are recovered"
all_once_marked() {
	local t
	for t in "${inflight[@]}"; do
		seen_is "$SRV_DIR/room3.log" "P1 $(tid "$t") technical" 1 || return 1
	done
	[ "$(seen "$SRV_DIR/room3.log" "(resent: an earlier copy may have arrived)")" = 2 ]
}
wait_until 15 all_once_marked
ok $? "each is resent once, marked as a possible duplicate"

# --- 6. SIGTERM --------------------------------------------------------------------
t0=$(date +%s%N)
stop_serve TERM
status=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
is "$status" 0 "SIGTERM: clean exit"
ok $([ "$ms" -le 10000 ] && echo 0 || echo 1) "SIGTERM: stopped within the drain bound ($ms ms)"
is "$(q "SELECT count(*) FROM outbox WHERE channel = 'xmpp' AND state IN ('sending', 'ambiguous', 'failed')")" 0 \
	"no xmpp row left sending, ambiguous or failed"
diag "whole script: $(( ($(date +%s%N) - t_start) / 1000000 )) ms"
done_testing
