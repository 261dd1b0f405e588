#!/usr/bin/env bash
# tests/integration/imap.sh — the IMAP session layer (src/channels/imap.c)
# against a real Dovecot: TLS verification (implicit and STARTTLS, refused
# without the CA or for the wrong name, before LOGIN), login errors,
# BODY.PEEK[] fetch, keyword/\Seen/MOVE marking, quarantine into a new
# folder, the MOVE fallback, the size limit, IDLE wake-up, interrupts,
# polling, a Dovecot restart mid-session, and a UIDVALIDITY change.
#
# The checks themselves are the cmocka program build/tests/test_imap_live;
# this script starts Dovecot, runs it, serves its requests for things only
# the harness can do (LMTP delivery, imap_flags/imap_count through curl,
# restarting Dovecot, reading Dovecot's log, doveadm), and re-emits its
# TAP output.  Requests arrive one line at a time on the FIFO ctl/req; the
# answer ("ok"/"fail", then the output) goes back through ctl/resp.
set -u
TR_TOP=${TR_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$TR_TOP/tests/lib/tap.sh"
. "$TR_TOP/tests/lib/servers.sh"

# TR_IMAP_LIVE_PROG: another build of it, e.g. build/asan/tests/test_imap_live
prog=${TR_IMAP_LIVE_PROG:-$TR_TOP/build/tests/test_imap_live}
[ -x "$prog" ] || bail "$prog not built (make tests)"

srv_init
# one account per test area, so the tests do not see each other's mail
srv_start_dovecot support alice bob carol dave erin frank grace tlsprobe
srv_startup_times

ctl=$SRV_DIR/imap-ctl
mkdir -p "$ctl" "$SRV_DIR/imap-msgs"
chmod 755 "$SRV_DIR/imap-msgs"
mkfifo "$ctl/req" "$ctl/resp"
# Read-write open of the FIFO: never blocks, and never sees EOF while we
# hold it, so the loop below can poll it with read -t.
exec {reqfd}<>"$ctl/req"

export TR_IMAP_TEST_HOST=127.0.0.1 TR_IMAP_TEST_PORT=$IMAP_PORT TR_IMAP_TEST_IMAPS_PORT=$IMAPS_PORT
export TR_IMAP_TEST_CA=$SRV_CA TR_IMAP_TEST_PASSWORD=$SRV_PASSWORD
export TR_IMAP_TEST_DIR=$SRV_DIR/imap-msgs TR_IMAP_TEST_CTL=$ctl
export CMOCKA_MESSAGE_OUTPUT=tap

# Is PID alive (a zombie counts as dead)?
alive() {
	local stat=""
	{ read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
	stat=${stat##*) }
	[ "${stat%% *}" != Z ]
}

# One request of the test program; runs in this shell (a restart changes
# the harness's state).
handle() { # WORDS...
	case $1 in
	deliver) lmtp_send customer@example.org "$2@example.test" "$3" ;;
	flags) imap_flags "$2" "$3" "$4" ;;
	count) imap_count "$2" "$3" ;;
	restart) srv_restart_dovecot ;;
	authlog) grep -c -- "$2" "$DOVECOT_LOG" || [ $? = 1 ] ;;
	uidvalidity) doveadm -c "$DOVECOT_CONF" mailbox update -u "$2" --uid-validity "$4" "$3" ;;
	*) echo "unknown request: $*"; return 1 ;;
	esac
}

start=$(date +%s%N)
srv_spawn imaplive "$SRV_DIR/imaplive.log" "$prog"
pid=$SRV_PID_imaplive
requests=0 partial=""
while alive "$pid"; do
	chunk=""
	if ! IFS= read -r -t 0.2 -u "$reqfd" chunk; then
		partial+=$chunk     # a timeout can split a line: keep what came
		continue
	fi
	line=$partial$chunk partial=""
	[ -n "$line" ] || continue
	requests=$((requests + 1))
	read -r -a words <<<"$line"
	if handle "${words[@]}" >"$ctl/out" 2>&1; then status=ok; else status=fail; fi
	{ echo "$status"; cat "$ctl/out"; } >"$ctl/resp"
done
wait "$pid"
status=$?
elapsed=$(( ($(date +%s%N) - start) / 1000000 ))

# Re-emit the program's TAP, renumbered, with our own checks after it.
planned="" ran=0 skipped=0
while IFS= read -r line; do
	case $line in
	1..*) planned=${line#1..} ;;
	"ok "*"# SKIP"* | "not ok "*"# SKIP"*)
		ran=$((ran + 1)) skipped=$((skipped + 1))
		ok 1 "${line#*# SKIP } (skipped: the live test must run here)" ;;
	"ok "*)
		ran=$((ran + 1))
		ok 0 "$(sed -E 's/^ok [0-9]+ - //' <<<"$line")" ;;
	"not ok "*)
		ran=$((ran + 1))
		ok 1 "$(sed -E 's/^not ok [0-9]+ - //' <<<"$line")" ;;
	"#"*) echo "$line" ;;
	*) diag "$line" ;;
	esac
done <"$SRV_DIR/imaplive.log"
is "$ran" "${planned:-?}" "test_imap_live ran all of its planned tests"
is "$status" 0 "test_imap_live exited with status 0"
is "$skipped" 0 "no live test skipped"
diag "test_imap_live: ${elapsed} ms, $requests harness requests"
if [ "$TAP_FAILED" -gt 0 ]; then
	srv_log_tail "$DOVECOT_LOG" 30
fi
done_testing
