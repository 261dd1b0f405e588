#!/usr/bin/env bash
# tests/integration/xmpp.sh — the XMPP connection (src/channels/xmpp.c)
# against a real Prosody with its MUC component.
#
# Starts Prosody (accounts triage-bot, agent1, agent2, stranger), puts
# go-sendxmpp listeners (agent2, the rooms' owner) into two rooms, leaves a
# room message before the bot joins (history) and a chat for the bot while
# it is offline, then runs the cmocka driver build/tests/test_xmpp_live
# with the TR_XMPP_TEST_* variables and an empty system trust store, and
# re-emits its TAP.  While the driver runs, this script serves its requests
# (restart, freeze, thaw, kick) from $SRV_DIR/ctl (stop, start, freeze,
# thaw, kick NICK): the driver cannot restart a server the script owns.
set -u
TR_TOP=${TR_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$TR_TOP/tests/lib/tap.sh"
. "$TR_TOP/tests/lib/servers.sh"

driver=${TR_XMPP_LIVE_BIN:-$TR_TOP/build/tests/test_xmpp_live}
[ -x "$driver" ] || bail "$driver is not built (make tests)"
command -v go-sendxmpp >/dev/null || bail "go-sendxmpp not installed (run ./bootstrap)"

t_start=$(date +%s%N)
srv_init
srv_start_prosody triage-bot agent1 agent2 stranger
srv_at_exit 'p=$(srv_pid prosody 2>/dev/null) && kill -CONT "$p" 2>/dev/null'

room=oncall@$SRV_MUC_DOMAIN
restart_room=restart@$SRV_MUC_DOMAIN
# spawn_listener NAME ROOM FILE: what xmpp_listen does, without waiting for
# the join (its occupant polling costs seconds on a busy machine).  Used for
# the restart room only: the bot there runs with create_rooms = no, so its
# JOINED event proves the listener is in the room.
spawn_listener() {
	: >"$3"
	srv_spawn "$1" "$3" env SSL_CERT_FILE="$SRV_CA" go-sendxmpp \
		--username "agent2@$SRV_XMPP_DOMAIN" --password "$SRV_PASSWORD" \
		--jserver "127.0.0.1:$XMPP_PORT" --timeout 10 --listen --chatroom --alias agent2 "$2"
}
spawn_listener restart-listener "$restart_room" "$SRV_DIR/restart-before.log"
xmpp_listen room-listener agent2 "$room" "$SRV_DIR/room.log"
xmpp_send agent1 "$room" "history-before-join" || bail "xmpp_send to $room failed"
xmpp_send stranger "triage-bot@$SRV_XMPP_DOMAIN" "offline-hello" || bail "xmpp_send to triage-bot failed"
wait_until 5 grep -q 'agent1: history-before-join' "$SRV_DIR/room.log"
ok $? "setup: listeners in $room and $restart_room, history and an offline chat waiting"
srv_startup_times

CTL=$SRV_DIR/ctl
mkdir -p "$CTL"

kick() { # NICK: agent2 owns $room (its listener created it) and kicks NICK
	local out
	out=$(xmpp_query agent2 \
		"<presence to='$room/admin-agent2'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>" \
		"<iq type='set' id='kick1' to='$room'><query xmlns='http://jabber.org/protocol/muc#admin'><item nick='$1' role='none'><reason>kick test</reason></item></query></iq>") ||
		return 1
	[[ $out =~ \<iq[^\>]*(type=.result.[^\>]*id=.kick1.|id=.kick1.[^\>]*type=.result.) ]] || {
		echo "kick refused: ${out:0:400}"
		return 1
	}
}

serve() { # one request from the driver
	local req=$1 pid
	case $req in
	freeze) pid=$(srv_pid prosody) && kill -STOP "$pid" ;;
	thaw) pid=$(srv_pid prosody) && kill -CONT "$pid" ;;
	stop) srv_stop_prosody ;;
	start)
		srv_restart_prosody   # the stop part is a no-op: it is stopped
		spawn_listener restart-listener2 "$restart_room" "$SRV_DIR/restart-after.log" ;;
	kick\ *) kick "${req#kick }" ;;
	*) echo "unknown request '$req'"; return 1 ;;
	esac
}

driver_running() {
	local state
	state=$(awk '{print $3}' "/proc/$SRV_PID_xmpp_driver/stat" 2>/dev/null) && [ "$state" != Z ]
}
request_or_exit() { [ -e "$CTL/request" ] || ! driver_running; }

export TR_XMPP_TEST_PORT=$XMPP_PORT TR_XMPP_TEST_CA=$SRV_CA TR_XMPP_TEST_PASSWORD=$SRV_PASSWORD
export TR_XMPP_TEST_ROOM=$room TR_XMPP_TEST_LISTEN_LOG=$SRV_DIR/room.log
export TR_XMPP_TEST_RESTART_ROOM=$restart_room TR_XMPP_TEST_RESTART_LOG=$SRV_DIR/restart-before.log
export TR_XMPP_TEST_RESTART_LOG2=$SRV_DIR/restart-after.log TR_XMPP_TEST_CTL=$CTL
export CMOCKA_MESSAGE_OUTPUT=tap

# The driver's system trust store is empty (SSL_CERT_FILE, SSL_CERT_DIR):
# it trusts the test CA through ca_file only, whatever the host trusts, and
# a connection does not load the host's CA bundle, which libstrophe 0.12
# does for every connection (2 s and more under ASan with
# fast_unwind_on_malloc=0; the exit of a process whose connection thread
# is still in there is test_xmpp's test_exit_with_a_connection_thread_let_go).
mkdir -p "$SRV_DIR/no-system-cas"
t_driver=$(date +%s%N)
srv_spawn xmpp_driver "$SRV_DIR/driver.out" \
	env SSL_CERT_FILE=/dev/null SSL_CERT_DIR="$SRV_DIR/no-system-cas" "$driver"
while driver_running; do
	wait_until 120 request_or_exit || break
	[ -e "$CTL/request" ] || continue
	req=$(cat "$CTL/request")
	rm -f "$CTL/request"
	t_req=$(date +%s%N)
	if serve "$req" >"$CTL/serve.log" 2>&1; then
		echo ok >"$CTL/reply.tmp"
	else
		{ echo "error:"; tail -n 5 "$CTL/serve.log"; } >"$CTL/reply.tmp"
	fi
	mv "$CTL/reply.tmp" "$CTL/reply"
	diag "served '$req' in $(( ($(date +%s%N) - t_req) / 1000000 )) ms"
	[ -s "$CTL/serve.log" ] && diag "$(cat "$CTL/serve.log")"
done
wait "$SRV_PID_xmpp_driver"
status=$?
t_end=$(date +%s%N)

# The driver's TAP, renumbered into ours.
results=0 plan=""
while IFS= read -r line; do
	if [[ $line =~ ^1\.\.([0-9]+) ]]; then
		plan=${BASH_REMATCH[1]}
	elif [[ $line =~ ^(not\ )?ok\ [0-9]+\ *(.*)$ ]]; then
		results=$((results + 1))
		desc=${BASH_REMATCH[2]#- }
		if [[ $desc == *"# SKIP"* ]]; then
			TAP_N=$((TAP_N + 1))
			echo "ok $TAP_N # SKIP xmpp_live: ${desc#*# SKIP }"
		else
			_tap_result "$([ -z "${BASH_REMATCH[1]}" ] && echo 0 || echo 1)" "xmpp_live: $desc"
		fi
	elif [[ $line == \#* ]]; then
		printf '%s\n' "$line"
	elif [ -n "$line" ]; then
		diag "$line"
	fi
done <"$SRV_DIR/driver.out"
is "$status" 0 "the driver exited with status 0"
[ -n "$plan" ] && [ "$results" = "$plan" ]
ok $? "the driver reported all of its ${plan:-?} tests"
diag "driver: $(( (t_end - t_driver) / 1000000 )) ms; whole script so far: $(( (t_end - t_start) / 1000000 )) ms"
done_testing
