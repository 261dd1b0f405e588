#!/usr/bin/env bash
# tests/integration/show-text.sh — `triage show` (text) prints each message's
# excerpt as at most six lines behind the "|" gutter: nothing of the excerpt
# spills out unprefixed, long lines are cut at 100 characters (never inside a
# UTF-8 sequence), and "…" says that there is more.
set -u
TR_TOP=${TR_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$TR_TOP" || exit 2
. tests/lib/tap.sh
bin=${TRIAGE_BIN:-build/triage}
[ -x "$bin" ] || bail "$bin is not built (make)"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
conf=$tmp/conf
cp -r conf "$conf"
sed -i "s|^templates = .*|templates = $TR_TOP/templates|" "$conf/triage.conf"
run() { "$bin" "$1" -c "$conf/triage.conf" --db "$tmp/t.db" "${@:2}"; }

long=$(printf 'x%.0s' $(seq 1 99))
{
	printf 'From: Ada <ada@example.org>\nTo: support@example.test\nSubject: Ten lines\n'
	printf 'Message-ID: <ten-lines@example.org>\nDate: Mon, 16 Nov 2026 09:00:00 +0000\n'
	printf 'Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n'
	printf '%s\n' "${long}äöü and more after the hundredth character"
	for i in 2 3 4 5 6 7 8 9 10; do printf 'line %d of the message\n' "$i"; done
} >"$tmp/ten.eml"
run ingest --now 2026-11-16T09:00:00Z "$tmp/ten.eml" >/dev/null 2>&1
ok $? "a ten-line message is ingested"
out=$(run show TKT-000001 2>&1)
ok $? "triage show prints it"
block=$(sed -n '/^messages:/,/^events:/p' <<<"$out" | sed '1d;$d' | sed '/^$/d')
is "$(grep -cvE '^(  [0-9]{4}-[0-9]{2}-[0-9]{2}T|      \| )' <<<"$block")" 0 \
	"every line of the excerpt is behind the gutter" || diag "$block"
is "$(grep -c '^      | ' <<<"$block")" 7 "six lines of text and one '…'"
like "$block" $'\n      \\| …$' "the last gutter line says there is more"
like "$block" "      \\| ${long}ä…" "a long line is cut after 100 characters, not inside a UTF-8 sequence"
iconv -f UTF-8 -t UTF-8 <<<"$out" >/dev/null 2>&1
ok $? "the output is valid UTF-8"
is "$(grep -c 'line 7 of the message' <<<"$block")" 0 "the seventh line is not shown"
done_testing
