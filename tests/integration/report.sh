#!/usr/bin/env bash
# tests/integration/report.sh — `triage report` end to end: the demo samples,
# hostile subjects and ~300 SpamAssassin ham messages (../shared/corpus; that
# part is skipped when absent) go through `triage ingest`; agents ack and
# resolve at chosen times, a customer reopens, `triage sla-tick` runs later;
# then `report --json` is checked against the numbers the test made and
# against the store itself (sqlite3), and `report --html` is rendered in
# headless Chromium (one launch: DOM and screenshot) to check the charts,
# that a "<script>" subject is shown as text, and that the page is
# self-contained.  Chromium runs with --no-sandbox: its sandbox refuses to
# run as root, and containers often lack the user namespaces it needs.
set -u
TR_TOP=${TR_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$TR_TOP" || exit 2
. tests/lib/tap.sh

bin=${TRIAGE_BIN:-build/triage}
conf=conf/triage.conf
corpus=../shared/corpus/mail/spamassassin-easy-ham
[ -x "$bin" ] || bail "$bin is not built (make)"
for tool in jq sqlite3; do
	command -v "$tool" >/dev/null || bail "$tool is not installed (./bootstrap)"
done
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
db=$tmp/triage.db
run() { "$bin" "$1" -c "$conf" --db "$db" "${@:2}"; }
sql() { sqlite3 -batch -noheader "$db" "$1"; }
unix() { date -u -d "$1" +%s; }

T0=1794816000                     # Monday 2026-11-16 09:00 Europe/Berlin
NOW=$((T0 + 3 * 86400 + 3 * 3600))  # Thursday 12:00: the report's clock

# --- the tickets -------------------------------------------------------------
run ingest --now "$T0" contrib/demo/samples >"$tmp/ingest-demo" 2>&1
ok $? "the demo samples are ingested"
demo=$(grep -c ': TKT-' "$tmp/ingest-demo")

mkdir "$tmp/mail"
hostile() { # FILE FROM SUBJECT-HEADER BODY
	printf 'From: %s\nTo: support@example.test\nSubject: %s\nMessage-ID: <%s@hostile.example>\nDate: Mon, 16 Nov 2026 09:01:00 +0100\n\n%s\n' \
		"$2" "$3" "$1" "$4" >"$tmp/mail/$1.eml"
}
hacked="Our account was hacked, someone changed the password. Please lock it."
hostile h1 "Mallory <mallory@evil.example>" '<script>alert(1)</script> account hacked' "$hacked"
hostile h2 "Trudy <trudy@evil2.example>" 'Re: <script>alert(1)</script> account hacked' "$hacked"
hostile h3 "Eve <eve@evil3.example>" "=?UTF-8?Q?=1B[31mred=1B[0m_Tom_&_Jerry's_\"quotes\"_<b>bold</b>?=" \
	"This is a legal matter: we will sue you over the data breach, our lawyer will contact you."
run ingest --now "$((T0 + 60))" "$tmp/mail" >"$tmp/ingest-hostile" 2>&1
ok $? "three messages with hostile subjects are ingested"

ham=0
if [ -d "$corpus" ]; then
	find "$corpus" -type f -name '*.eml' | LC_ALL=C sort | head -300 >"$tmp/ham"
	mapfile -t files <"$tmp/ham"
	run ingest --now "$((T0 + 3600))" "${files[@]}" >"$tmp/ingest-ham" 2>&1
	ok $? "300 SpamAssassin ham messages are ingested"
	ham=${#files[@]}
else
	diag "$corpus absent: the report covers the demo and hostile messages only"
fi

# --- agents and customers at chosen times ------------------------------------
due() { # TICKET first_response|resolution -> unix time
	unix "$(run show --json "$1" | jq -r ".sla.$2.due")"
}
fr1=$(due TKT-000001 first_response)
fr2=$(due TKT-000002 first_response)
fr3=$(due TKT-000003 first_response)
ack1=$((fr1 - 600)) ack2=$((fr2 + 600)) res3=$((T0 + 7200)) ack8=$((T0 + 3600)) res8=$((T0 + 3 * 3600))
ok $([ "$res3" -lt "$fr3" ] && [ "$ack1" -gt "$T0" ] && [ "$ack2" -lt "$NOW" ] && echo 0 || echo 1) \
	"due times allow the planned on-time and late responses"
run ack TKT-000001 --by ana --now "$ack1" >/dev/null &&
	run ack TKT-000002 --by ana --now "$ack2" >/dev/null &&
	run resolve TKT-000003 --by ben --now "$res3" >/dev/null &&
	run ack TKT-000008 --by ben --now "$ack8" >/dev/null &&
	run resolve TKT-000008 --by ben --now "$res8" >/dev/null
ok $? "ack TKT-000001 on time, TKT-000002 late; resolve TKT-000003; ack and resolve TKT-000008"

requester=$(run show --json TKT-000008 | jq -r .requester)
printf 'From: %s\nTo: support@example.test\nSubject: Re: [TKT-000008] dark mode\nMessage-ID: <reopen@customer.example>\n\nThanks, but the editor is still bright for me.\n' \
	"$requester" >"$tmp/reopen.eml"
run ingest --now "$((T0 + 4 * 3600))" "$tmp/reopen.eml" >"$tmp/ingest-reopen" 2>&1
like "$(cat "$tmp/ingest-reopen")" 'TKT-000008 reply .*reopened' "a customer reply reopens TKT-000008"

run sla-tick --now "$NOW" >"$tmp/tick" 2>&1
ok $? "sla-tick at report time"
like "$(cat "$tmp/tick")" '[1-9][0-9]* breaches' "the ladder records breaches"

# --- report --json -------------------------------------------------------------
run report --now "$NOW" --since 30d --top 1000 --json >"$tmp/report.json" 2>"$tmp/report.err"
ok $? "report --json"
jq -e . "$tmp/report.json" >/dev/null
ok $? "report --json is one valid JSON object"
J() { jq -r "$1" "$tmp/report.json"; }
window="is_incident = 0 AND created_at BETWEEN $((NOW - 30 * 86400)) AND $NOW"

total=$(sql "SELECT count(*) FROM tickets WHERE $window")
is "$(J .tickets.total)" "$total" "tickets.total matches the store ($total)"
[ "$ham" -gt 0 ] || is "$total" "$((demo + 3))" "every demo and hostile message made a ticket"
is "$(J .window.now_unix)" "$NOW" "window.now_unix"
is "$(J .window.since_unix)" "$((NOW - 30 * 86400))" "window.since_unix: --since 30d"
is "$(J .by_channel.file)" "$total" "by_channel: every ticket came from a file"
is "$(J '.by_category | to_entries | map("\(.key) \(.value)") | .[]' | LC_ALL=C sort)" \
	"$(sql "SELECT category || ' ' || count(*) FROM tickets WHERE $window GROUP BY category" | LC_ALL=C sort)" \
	"by_category matches the store"
is "$(J '.by_priority | to_entries | map("\(.key) \(.value)") | .[]')" \
	"$(for p in 1 2 3 4; do echo "P$p $(sql "SELECT count(*) FROM tickets WHERE $window AND priority = $p")"; done)" \
	"by_priority matches the store"
is "$(J '.by_team | to_entries | map("\(.key) \(.value)") | .[]' | LC_ALL=C sort)" \
	"$(sql "SELECT team || ' ' || count(*) FROM tickets WHERE $window GROUP BY team" | LC_ALL=C sort)" \
	"by_team matches the store"

# SLA: only the four tickets the agents handled have a stopped first-response clock.
is "$(J '.sla.all.first_response | "\(.met_on_time) \(.met_late)"')" "3 1" \
	"first response: 3 met on time (TKT-000001, -000003 by resolution, -000008), 1 late (TKT-000002)"
is "$(J '.sla.all.first_response | .open_within + .open_breached + .no_target')" "$((total - 4))" \
	"first response: every other ticket is still open"
is "$(J '.sla.all.resolution | "\(.met_on_time) \(.met_late)"')" "1 0" \
	"resolution: TKT-000003 on time (TKT-000008 was reopened)"
is "$(J '[.sla.P1, .sla.P2, .sla.P3, .sla.P4] | map(.tickets) | add')" "$total" "the priorities' SLA rows add up"
is "$(J '[.sla[] | .tickets as $n | (.first_response, .resolution) |
	(.met_on_time + .met_late + .open_within + .open_breached + .no_target) == $n] | all')" "true" \
	"every ticket is in exactly one SLA state per clock"
ladder=$(sql "SELECT count(DISTINCT ticket_id) FROM sla_ladder WHERE clock = 'first_response' AND step = 100")
ok $([ "$(J .sla.all.first_response.open_breached)" -ge "$ladder" ] && [ "$ladder" -gt 0 ] && echo 0 || echo 1) \
	"open breached first responses include the $ladder the ladder breached"
p1=$(run show --json TKT-000001 | jq -r .priority)
ok $([ "$(J ".sla.$p1.first_response.met_on_time")" -ge 1 ] && echo 0 || echo 1) \
	"TKT-000001 counts as on time under $p1"

fr=$(printf '%s\n' $((ack1 - T0)) $((ack2 - T0)) $((res3 - T0)) $((ack8 - T0)) | sort -n | tr '\n' ' ')
read -r f1 f2 f3 f4 <<<"$fr"
is "$(J '.first_response_seconds | "\(.count) \(.median) \(.p90)"')" "4 $f2 $f4" \
	"first response time: median and p90 by nearest rank of the four"
is "$(J '.resolution_seconds | "\(.count) \(.median)"')" "1 7200" "resolution time: TKT-000003 after 2 hours"
is "$(J '.reopens | "\(.reopened) \(.resolved_ever) \(.rate_percent == 50) \(.reopen_count)"')" "1 2 true 1" \
	"reopens: 1 of 2 resolved tickets (50.0 %)"

is "$(J .escalations.escalated)" "$(sql "SELECT count(*) FROM tickets WHERE $window AND escalated = 1")" \
	"escalations.escalated matches the store"
open_esc=$(sql "SELECT count(*) FROM tickets WHERE escalated = 1 AND status != 'resolved' AND created_at <= $NOW")
is "$(J .escalations.open)" "$open_esc" "escalations.open matches the store ($open_esc)"
is "$(J '.open_escalations | length')" "$open_esc" "every open escalation is listed"
is "$(J '.open_escalations[] | select(.ticket == "TKT-000001") | "\(.acknowledged) \(.age_seconds)"')" \
	"true $((NOW - T0))" "TKT-000001: acknowledged, open for NOW - T0 seconds"
is "$(J '[.open_escalations[].priority] | . == sort')" "true" "open escalations: most urgent first"
is "$(J '[.escalations.reasons | keys[] | select(test(">="))] | length')" "0" "reasons: rule scores folded"
is "$(J '.top_issues[] | select(.key == "script alert 1 script account hacked") | .tickets')" "2" \
	"the two '<script>' subjects are one repeated issue"
is "$(J '.incidents | length')" "$(sql "SELECT count(*) FROM tickets WHERE is_incident = 1 AND created_at BETWEEN $((NOW - 30 * 86400)) AND $NOW")" \
	"incidents match the store"

# --- text ------------------------------------------------------------------------
run report --now "$NOW" >"$tmp/report.txt" 2>&1
ok $? "report (text)"
like "$(head -1 "$tmp/report.txt")" '^Support report: tickets created 2026-10-20 11:00 UTC \.\. 2026-11-19 11:00 UTC \(30 days\)' \
	"the text names the window"
ok $(grep -q $'\x1b' "$tmp/report.txt" && echo 1 || echo 0) "no terminal escape from a subject reaches the terminal"
run report --json --html "$tmp/x.html" >/dev/null 2>&1
is "$?" 2 "--json with --html is a usage error"
run report --since yesterday >/dev/null 2>&1
is "$?" 2 "a bad --since is a usage error"

# The same three renderings under ASan+UBSan (a leak or overflow fails).
if [ -x build/asan/triage ]; then
	for mode in "" --json "--html $tmp/asan.html"; do
		# shellcheck disable=SC2086 # mode is one or two words
		build/asan/triage report -c "$conf" --db "$db" --now "$NOW" $mode >/dev/null 2>"$tmp/asan.err"
		label=${mode%% *}
		ok $? "ASan+UBSan build: report ${label:-(text)}"
		[ -s "$tmp/asan.err" ] && ! grep -q 'page written' "$tmp/asan.err" && diag "$(tail -20 "$tmp/asan.err")"
	done
fi

# --- report --html in a browser ---------------------------------------------------
html=$tmp/report.html
run report --now "$NOW" --html "$html" 2>"$tmp/html.err"
ok $? "report --html FILE"
is "$(grep -ci '<script' "$html")" 0 "the page has no script element"
is "$(grep -oE '(src|href)=|url\(|@import|https?://[^"]*' "$html" | grep -v '^http://www.w3.org/2000/svg$' | sort -u)" "" \
	"the page is self-contained: no links, no external assets"

chromium=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$chromium" ]; then
	ok 1 "chromium is installed (apt-get install chromium)"
else
	start=$(date +%s)
	timeout 90 "$chromium" --headless=new --no-sandbox --disable-gpu --no-first-run --hide-scrollbars \
		--user-data-dir="$tmp/chromium" --window-size=1280,2400 --screenshot="$tmp/report.png" \
		--dump-dom "file://$html" >"$tmp/dom.html" 2>"$tmp/chromium.err"
	status=$?
	diag "chromium: $(($(date +%s) - start))s"
	ok $status "headless Chromium renders the page"
	[ "$status" -eq 0 ] || diag "$(grep -v dbus "$tmp/chromium.err" | tail -5)"
	dom=$(cat "$tmp/dom.html")
	svgs=$(grep -o '<svg' <<<"$dom" | wc -l)
	ok $([ "$svgs" -ge 8 ] && echo 0 || echo 1) "the DOM has the charts ($svgs svg elements)"
	for title in "Tickets by category" "Tickets by priority" "Tickets by channel" "Tickets by team" \
		"First response SLA compliance by priority" "Resolution SLA compliance by priority" "Escalation reasons"; do
		like "$dom" "<title id=\"chart[0-9]+-title\">$title</title>" "chart: $title (titled)"
	done
	bars=$(grep -o '<g class="bar">' <<<"$dom" | wc -l)
	want=$(( $(J '.by_category | length') + 4 + $(J '.by_channel | length') + $(J '.by_team | length') ))
	ok $([ "$bars" -ge "$want" ] && echo 0 || echo 1) "bars for every category, priority, channel and team ($bars >= $want)"
	segs=$(grep -o '<rect class="seg"' <<<"$dom" | wc -l)
	ok $([ "$segs" -ge 10 ] && echo 0 || echo 1) "stacked SLA segments ($segs)"
	like "$dom" 'aria-labelledby="chart1-title chart1-desc"' "charts are labelled for screen readers"
	is "$(grep -ci '<script' <<<"$dom")" 0 "no script element in the rendered DOM"
	like "$dom" '&lt;script&gt;alert\(1\)&lt;/script&gt; account hacked' "the '<script>' subject is shown as text"
	like "$dom" 'Tom &amp; Jerry.s "quotes" &lt;b&gt;bold&lt;/b&gt;' "markup in a subject is shown as text"
	is "$(grep -c '<b>bold' <<<"$dom")" 0 "no element from a subject"
	like "$dom" 'Open escalations: [0-9]+' "the open escalations table"
	like "$dom" 'Top repeated issues' "the top issues table"
	[ -s "$tmp/report.png" ] && [ "$(head -c 8 "$tmp/report.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ]
	ok $? "a PNG screenshot is produced ($(stat -c %s "$tmp/report.png" 2>/dev/null || echo 0) bytes)"
	[ -n "${TR_KEEP_REPORT:-}" ] && cp "$html" "$tmp/report.png" "$TR_KEEP_REPORT"/
fi
done_testing
