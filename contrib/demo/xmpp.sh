# contrib/demo/xmpp.sh — the demo's escalation rooms (sourced by
# contrib/demo/run, at its top level, after the mail servers are up).
#
#   demo_xmpp_setup CONF   starts Prosody on loopback (tests/lib/servers.sh),
#                          points the team rooms of CONF's teams.conf at its
#                          MUC service, appends an [xmpp] group to CONF (the
#                          bot triage-bot, every team room, TLS verified
#                          against the run's CA) and puts a listener in
#                          each room (contrib/demo/room-transcript.sh as
#                          ROOM-watch), waiting until all of them are in;
#   demo_xmpp_show         stops the listeners and prints each room's
#                          transcript: the escalation posts triage made.
#
# Room posts are outbox rows like mail, so by the time the demo shows its
# results they have been sent (the bot saw the room echo them).

DEMO_ROOMS=()

demo_xmpp_setup() {
	local conf=$1 teams room jids=()
	teams=$(dirname "$conf")/teams.conf
	mapfile -t DEMO_ROOMS < <(sed -nE 's/^[[:space:]]*room[[:space:]]*=[[:space:]]*([^@[:space:]]+)@.*$/\1/p' "$teams" | sort -u)
	[ ${#DEMO_ROOMS[@]} -gt 0 ] || { echo "demo: no room in $teams" >&2; return 1; }
	# One account per listener: two logins of one account with the same
	# resource (go-sendxmpp's) would throw each other out.
	srv_start_prosody triage-bot "${DEMO_ROOMS[@]/%/-watch}"
	sed -i "s/conference\.example\.test/$SRV_MUC_DOMAIN/" "$teams"
	for room in "${DEMO_ROOMS[@]}"; do jids+=("$room@$SRV_MUC_DOMAIN"); done
	cat >>"$conf" <<EOF

[xmpp]
jid = triage-bot@$SRV_XMPP_DOMAIN
password = $SRV_PASSWORD
host = 127.0.0.1
port = $XMPP_PORT
ca_file = $SRV_CA
nick = triage
rooms = ${jids[*]}
create_rooms = yes
EOF
	for room in "${DEMO_ROOMS[@]}"; do
		rm -f "$SRV_DIR/room-$room.ready" "$SRV_DIR/room-$room.stop"
		srv_spawn "room-$room" "$SRV_DIR/room-$room.txt" "$DEMO/room-transcript.sh" -u "$room-watch" \
			-r "$SRV_DIR/room-$room.ready" -s "$SRV_DIR/room-$room.stop" "$room" 600
	done
	for room in "${DEMO_ROOMS[@]}"; do
		wait_until 30 test -e "$SRV_DIR/room-$room.ready" || {
			echo "demo: the listener did not join $room@$SRV_MUC_DOMAIN: $(head -3 "$SRV_DIR/room-$room.txt")" >&2
			return 1
		}
	done
}

_demo_room_done() { ! _srv_alive "$1"; }

demo_xmpp_show() {
	local room pid var
	sleep 0.3   # the listeners saw the posts when the bot saw their echo; a moment for the pipes
	for room in "${DEMO_ROOMS[@]}"; do : >"$SRV_DIR/room-$room.stop"; done
	for room in "${DEMO_ROOMS[@]}"; do
		var=SRV_PID_room_${room//[^A-Za-z0-9_]/_}
		pid=${!var}
		wait_until 10 _demo_room_done "$pid" || { echo "demo: the listener in $room did not stop" >&2; return 1; }
		say "$room@$SRV_MUC_DOMAIN"
		if [ -s "$SRV_DIR/room-$room.txt" ]; then
			sed 's/^/     /' "$SRV_DIR/room-$room.txt"
		else
			say "  (nothing posted)"
		fi
		echo
	done
}
