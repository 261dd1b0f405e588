#!/usr/bin/env bash
# tests/lint/docs.sh — the documentation says what the code does:
# docs/limits.md is the output of `triage check-config --limits`; every
# command has --help; the README names every command and every page in
# docs/, and every docs/ page a document links to exists.
set -u
cd "$(dirname "$0")/../.." || exit 2
. tests/lib/tap.sh
BIN=build/triage
[ -x "$BIN" ] || bail "$BIN is not built"
want=$("$BIN" check-config --limits)
got=$(sed -n '/^| limit |/,$p' docs/limits.md)
is "$got" "$want" "docs/limits.md matches triage check-config --limits"
commands=$("$BIN" --help | sed -n 's/^  \([a-z-]*\) .*/\1/p')
for c in $commands; do
	"$BIN" "$c" --help >/dev/null 2>&1
	ok $? "triage $c --help works"
	grep -q "triage $c" README
	ok $? "README mentions triage $c"
done
for page in docs/*.md; do
	grep -q "$(basename "$page")" README
	ok $? "README names $page"
done
missing=""
for ref in $(grep -ohE '\]\([a-z0-9-]+\.md(#[a-z0-9-]*)?\)' docs/*.md README | sed -E 's/^\]\(([^#)]*).*/\1/' | sort -u) \
           $(grep -ohE 'docs/[a-z0-9-]+\.md' README conf/*.conf src/*/*.[ch] | sed 's|^docs/||' | sort -u) \
           $(grep -ohE '\b[a-z0-9-]+\.md\b' README | sort -u); do
	[ -f "docs/$ref" ] || missing="$missing $ref"
done
is "$missing" "" "every docs/ page referred to exists"
done_testing
