#!/usr/bin/env bash
# contrib/demo/room-transcript.sh — print what is said in an XMPP room for
# a while: the demo's window on an escalation room.
#
#   room-transcript.sh [-u USER] [-r READY_FILE] [-m REGEX] [-s STOP_FILE] ROOM SECONDS
#
# Joins ROOM (a room JID, or a bare name: NAME@$SRV_MUC_DOMAIN) as USER
# with go-sendxmpp, listens for SECONDS (or until a line matches REGEX, or
# until STOP_FILE exists),
# leaves, and prints the transcript on stdout, one message a block:
#
#     12:51:45 triage: P1 TKT-000004 technical → engineering (on call: ivan)
#       priya.raman@bigcorp.example · enterprise · VIP · first response due …
#     12:51:47 ana: !ack TKT-000004
#     12:51:47 triage: ana: TKT-000004 acknowledged by Ana Lima: …
#
# With -r, READY_FILE is created once USER is in the room, so a caller that
# runs this in the background can wait for it before making things happen:
#
#     rm -f "$dir/ready"
#     contrib/demo/room-transcript.sh -r "$dir/ready" ops 20 >"$dir/ops.txt" &
#     while [ ! -e "$dir/ready" ]; do sleep 0.1; done
#     ...; wait
#
# The Prosody of tests/lib/servers.sh (srv_start_prosody): XMPP_PORT,
# SRV_CA and SRV_DIR from its environment, SRV_PASSWORD (default secret),
# the host "localhost" with its MUC at conference.localhost.  USER defaults
# to agent2, one of the accounts srv_start_prosody creates by default.
# Exit status 0 when it listened (even if nobody spoke), 2 on bad usage or
# when it could not join.
set -u
usage() { echo "usage: $0 [-u USER] [-r READY_FILE] [-m REGEX] [-s STOP_FILE] ROOM SECONDS" >&2; exit 2; }
user=${TRANSCRIPT_USER:-agent2} ready="" until_re="" stop=""
while getopts u:r:m:s:h opt; do
	case $opt in
	u) user=$OPTARG ;;
	r) ready=$OPTARG ;;
	m) until_re=$OPTARG ;;
	s) stop=$OPTARG ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[ $# = 2 ] || usage
room=$1 seconds=$2
[[ $seconds =~ ^[0-9]+$ ]] && [ "$seconds" -gt 0 ] || usage
for v in XMPP_PORT SRV_CA SRV_DIR; do
	[ -n "${!v:-}" ] || { echo "$0: \$$v is not set: start Prosody with tests/lib/servers.sh first" >&2; exit 2; }
done
command -v go-sendxmpp >/dev/null || { echo "$0: go-sendxmpp is not installed (./bootstrap)" >&2; exit 2; }
top=$(cd "$(dirname "$0")/../.." && pwd)
# servers.sh for its XMPP helpers only (no servers are started here).
bail() { echo "room-transcript: $*" >&2; exit 2; }
diag() { printf '# %s\n' "$*" >&2; }
# shellcheck source=../../tests/lib/servers.sh
. "$top/tests/lib/servers.sh"
: "${SRV_PASSWORD:=secret}"
[[ $room == *@* ]] || room=$room@$SRV_MUC_DOMAIN

raw=$(mktemp "${TMPDIR:-/tmp}/room-transcript.XXXXXX") || exit 2
listener=""
cleanup() {
	[ -n "$listener" ] && kill "$listener" 2>/dev/null && wait "$listener" 2>/dev/null
	rm -f "$raw"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

before=$(xmpp_room_occupants "$room" "$user" 2>/dev/null) || before=0
SSL_CERT_FILE=$SRV_CA go-sendxmpp --username "$user@$SRV_XMPP_DOMAIN" --password "$(_srv_pass "$user")" \
	--jserver "127.0.0.1:$XMPP_PORT" --timeout 10 --listen --chatroom --alias "$user" "$room" \
	</dev/null >"$raw" 2>&1 &
listener=$!

# In the room when the occupant count went up (at most 20 s).
joined=0
join_end=$((SECONDS + 20))
while [ "$SECONDS" -lt "$join_end" ]; do
	kill -0 "$listener" 2>/dev/null || break
	now=$(xmpp_room_occupants "$room" "$user" 2>/dev/null) || now=0
	if [ "$now" -gt "$before" ]; then joined=1; break; fi
	sleep 0.2
done
if [ "$joined" != 1 ]; then
	echo "$0: $user could not join $room" >&2
	sed 's/^/  /' "$raw" | head -5 >&2
	exit 2
fi
[ -n "$ready" ] && : >"$ready"

end=$((SECONDS + seconds))
while [ "$SECONDS" -lt "$end" ] && kill -0 "$listener" 2>/dev/null; do
	[ -n "$until_re" ] && grep -qE -- "$until_re" "$raw" && break
	[ -n "$stop" ] && [ -e "$stop" ] && break
	sleep 0.2
done
kill "$listener" 2>/dev/null
wait "$listener" 2>/dev/null
listener=""

# "2026-11-22T12:51:45Z ops@conference.localhost/triage: text" -> "12:51:45 triage: text";
# continuation lines of a message are indented; go-sendxmpp's own noise
# (EOF after a server stop, connection errors) is left out.
awk -v room="$room/" '
	/^[0-9][0-9][0-9][0-9]\/[0-9][0-9]\/[0-9][0-9] / { next }          # go-sendxmpp log lines
	/^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9:]+Z / {
		time = substr($1, 12, 8); rest = substr($0, length($1) + 2)
		if (index(rest, room) == 1) rest = substr(rest, length(room) + 1)
		print time " " rest; next
	}
	NF > 0 { print "  " $0 }
' "$raw"
exit 0
