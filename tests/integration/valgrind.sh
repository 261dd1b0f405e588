#!/usr/bin/env bash
# tests/integration/valgrind.sh — a quick, representative run of triage
# under valgrind memcheck (tests/valgrind/triage): no memory error and no
# definite leak anywhere in it.  The whole suite under valgrind is
# `make valgrind` (docs/testing.md); this is the part every `tests/run` does:
#   - `triage classify` over 50 messages: MIME torture (mime4j, flanker,
#     CPython's email tests) and SpamAssassin ham from ../shared/corpus;
#   - `triage ingest` of 50 messages (ham and contrib/demo/samples: bounce,
#     auto-reply, escalations, five languages) into a fresh store, then
#     `tickets`, `show` (text and JSON), `report` (text, JSON, HTML),
#     `sla-tick` and `check-config`;
#   - `triage serve` against Dovecot (IMAPS, IDLE) and Postfix (STARTTLS):
#     the waiting messages and new ones during IDLE become tickets, the
#     acknowledgments go out, SIGTERM drains and exits 0.
# Always the plain build/triage (TR_VALGRIND_BIN): valgrind cannot run the
# ASan build, so TRIAGE_BIN does not apply here.  Logs are kept in
# build/valgrind-suite.* when something is found.
set -u
TR_TOP=${TR_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
# Everything triage does here runs under memcheck: stretch the waits.
export TR_TIME_FACTOR=10
. "$TR_TOP/tests/lib/tap.sh"
. "$TR_TOP/tests/lib/servers.sh"
. "$TR_TOP/tests/lib/triage.sh"
command -v valgrind >/dev/null || bail "valgrind is not installed (./bootstrap)"
command -v sqlite3 >/dev/null || bail "sqlite3 is not installed (./bootstrap)"
[ -x "$TR_TOP/build/triage" ] || bail "build/triage is not built (make)"
BIN=$TR_TOP/tests/valgrind/triage
t_start=$(date +%s)

mkdir -p "$TR_TOP/build"
TR_VALGRIND_LOGS=$(mktemp -d "$TR_TOP/build/valgrind-suite.XXXXXX") || bail "mktemp failed"
export TR_VALGRIND_LOGS TR_VALGRIND_BIN=$TR_TOP/build/triage
srv_init
srv_start_dovecot support
srv_start_postfix
tr_test_conf "$SRV_DIR/t.db"
work=$SRV_DIR/work
mkdir -p "$work"
V() { "$BIN" "$@"; }
runs=0    # triage processes started; each must leave one complete log

# -- the messages ---------------------------------------------------------------
corpus=$TR_TOP/../shared/corpus
pick() { # N DIR FIND-ARGS...: the first N files, by path
	local n=$1 dir=$2
	shift 2
	find "$dir" -type f "$@" 2>/dev/null | LC_ALL=C sort | head -n "$n"
}
if [ -d "$corpus/mime" ] && [ -d "$corpus/mail/spamassassin-easy-ham" ]; then
	mapfile -t classify_set < <(
		pick 12 "$corpus/mime/mime4j" -name '*.msg'
		pick 13 "$corpus/mime/flanker" -name '*.eml'
		pick 10 "$corpus/mime/python" -name 'msg_*.txt'
		pick 15 "$corpus/mail/spamassassin-easy-ham" -name '*.eml')
	mapfile -t ingest_set < <(pick 55 "$corpus/mail/spamassassin-easy-ham" -name '*.eml' | tail -n 38
		pick 12 "$TR_TOP/contrib/demo/samples" -name '*.eml')
else
	diag "$corpus is absent: only the repository's own samples are used"
	mapfile -t classify_set < <(pick 50 "$TR_TOP/contrib/demo/samples" -name '*.eml')
	ingest_set=("${classify_set[@]}")
fi
diag "classify: ${#classify_set[@]} messages, ingest: ${#ingest_set[@]} messages"

# -- classify, ingest and the read side --------------------------------------------
V classify -c "$conf/triage.conf" --now 2026-11-16T09:00:00Z "${classify_set[@]}" >"$work/classify.out" 2>"$work/classify.err"
st=$?; runs=$((runs + 1))
is "$st" 0 "classify: ${#classify_set[@]} messages"
is "$(grep -c '^== ' "$work/classify.out")" "${#classify_set[@]}" "classify: a decision for each"

V ingest -c "$conf/triage.conf" --now 2026-11-16T09:00:00Z --no-deliver "${ingest_set[@]}" >"$work/ingest.out" 2>&1
st=$?; runs=$((runs + 1))
is "$st" 0 "ingest: ${#ingest_set[@]} messages into a fresh store" || diag "$(tail -5 "$work/ingest.out")"
tickets=$(tr_tickets)
ok $([ "$tickets" -ge 40 ] && echo 0 || echo 1) "ingest: $tickets tickets"
step() { # DESC ARGS...: one triage command that must exit 0
	local desc=$1
	shift
	V "$@" >"$work/step.out" 2>&1
	local st=$?
	runs=$((runs + 1))
	is "$st" 0 "$desc" || diag "$(tail -5 "$work/step.out")"
}
step "tickets" tickets -c "$conf/triage.conf"
step "show TKT-000001" show -c "$conf/triage.conf" TKT-000001
step "show --json TKT-000002" show -c "$conf/triage.conf" --json TKT-000002
step "sla-tick two days later" sla-tick -c "$conf/triage.conf" --now 2026-11-18T09:00:00Z
step "report" report -c "$conf/triage.conf" --now 2026-11-18T09:00:00Z
step "report --json" report -c "$conf/triage.conf" --now 2026-11-18T09:00:00Z --json
step "report --html" report -c "$conf/triage.conf" --now 2026-11-18T09:00:00Z --html "$work/report.html"
step "check-config" check-config -c "$conf/triage.conf"

# -- serve: IMAP in, SMTP out, SIGTERM ------------------------------------------------
tr_test_imap_conf
cat >>"$conf/triage.conf" <<EOF

[smtp]
host = localhost
port = $SMTP_PORT
tls = required
ca_file = $SRV_CA
EOF
# Counted by requester: the ingested tickets' queued mail goes out now too,
# and Postfix's bounces for the corpus' unknown recipients come back to the
# support mailbox as tickets of their own.
vg_tickets_are() { [ "$(sqlite3 "$db" "SELECT count(*) FROM tickets WHERE requester LIKE 'c_@cust_.example'")" = "$1" ]; }
tr_drop 1 3 vg
tr_start_serve
srv_at_exit 'tr_stop_serve KILL'
# Generous bounds: under memcheck the daemon runs many times slower, and it
# delivers the ingested tickets' queued mail (STARTTLS) at the same time.
wait_until 30 vg_tickets_are 3
ok $? "serve: the 3 waiting messages become tickets"
wait_until 5 grep -q 'imap support: connected' "$SRV_DIR/serve.log"
tr_drop 4 5 vg
wait_until 30 vg_tickets_are 5
ok $? "serve: 2 more during IDLE become tickets"
acks_sent() { [ "$(sqlite3 "$db" "SELECT count(*) FROM outbox WHERE kind = 'ack' AND state = 'sent' AND recipient LIKE 'c%@cust%.example'")" = 5 ]; }
wait_until 30 acks_sent
ok $? "serve: their 5 acknowledgments went out through Postfix"
wait_until 5 tr_untriaged_is 0
ok $? "serve: every message marked"
tr_stop_serve TERM
st=$?; runs=$((runs + 1))
is "$st" 0 "serve: SIGTERM drains and exits 0" || diag "$(tail -5 "$SRV_DIR/serve.log")"

# -- what memcheck saw ---------------------------------------------------------------
scan=$("$TR_TOP/tests/valgrind/scan" "$TR_VALGRIND_LOGS")
st=$?
summary=$(tail -n 1 <<<"$scan")
diag "$summary"
is "$st" 0 "no memory error and no definite leak in any of the $runs processes"
[ "$st" = 0 ] || { diag "$scan"; diag "logs kept in $TR_VALGRIND_LOGS"; }
like "$summary" "^valgrind: $runs processes, $runs clean" "every process left a complete memcheck log"
[ "$TAP_FAILED" -gt 0 ] || rm -rf "$TR_VALGRIND_LOGS"
diag "valgrind.sh: $(( $(date +%s) - t_start )) s"
done_testing
