#!/usr/bin/env bash
# tests/corpus/classify-json.sh — `triage classify --json` over every corpus file
# (../shared/corpus/mime and mail, ~3,100 files): exactly one JSON line per
# file, in input order, with "file"; "error" only for unreadable (empty)
# input; no crash.  Runs the normal and the ASan+UBSan binary (which also
# fails on a leak).
set -u
cd "$(dirname "$0")/../.." || exit 2
. tests/lib/tap.sh
corpus=../shared/corpus
[ -d "$corpus/mime" ] && [ -d "$corpus/mail" ] || skip_all "$corpus absent"
mapfile -t files < <(find "$corpus/mime" "$corpus/mail" -type f | LC_ALL=C sort)
n=${#files[@]}
empty=$(find "$corpus/mime" "$corpus/mail" -type f -empty | wc -l)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
printf '%s\n' "${files[@]}" > "$tmp/want-files"

for bin in build/triage build/asan/triage; do
	[ -x "$bin" ] || { ok 1 "$bin is built"; continue; }
	start=$(date +%s)
	timeout 600 "$bin" classify --json -c conf/triage.conf "${files[@]}" >"$tmp/out" 2>"$tmp/err"
	status=$?
	end=$(date +%s)
	diag "$bin: $n files in $((end - start))s, exit $status"
	[ "$status" -le 1 ] || diag "$(tail -20 "$tmp/err")"
	ok $([ "$status" -le 1 ] && echo 0 || echo 1) "$bin exits 0 or 1 (no crash, no leak, no timeout)"
	is "$(wc -l < "$tmp/out")" "$n" "$bin prints one line per file ($n)"
	jq -r '.file' < "$tmp/out" > "$tmp/got-files" 2>"$tmp/jq-err"
	ok $? "$bin: every line is valid JSON"
	cmp -s "$tmp/want-files" "$tmp/got-files"
	ok $? "$bin: lines are in input order and name their file"
	is "$(jq -r 'select(.error) | .file' < "$tmp/out" | wc -l)" "$empty" \
		"$bin: errors only for the $empty empty files"
	is "$(jq -r 'select(.error == null) | select(.subject == null or .text.new == null or (.content_hash|length) != 64) | .file' < "$tmp/out" | head -3)" "" \
		"$bin: every message has subject, new text and a content hash"
done
done_testing
