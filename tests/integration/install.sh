#!/usr/bin/env bash
# tests/integration/install.sh — `make install` gives a working installation:
# the installed triage.conf passes `triage check-config` as it is (its
# templates, lexicons and language fingerprints found where they were
# installed), the installed binary classifies with it, a DESTDIR install
# names the final paths (not the staging directory), and a second install
# keeps the operator's edits.
set -u
TR_TOP=${TR_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$TR_TOP" || exit 2
. tests/lib/tap.sh
[ -x build/triage ] || bail "build/triage is not built (make)"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# A make of our own: not the jobserver of the `make check` that runs us.
mk() { env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make --no-print-directory -s "$@"; }

prefix=$tmp/usr
mk install PREFIX="$prefix" >"$tmp/install.log" 2>&1
ok $? "make install PREFIX=$prefix" || diag "$(tail -20 "$tmp/install.log")"
etc=$prefix/etc/triage
for f in triage.conf policy.conf teams.conf customers.conf calendars.conf articles.conf; do
	[ -f "$etc/$f" ]; ok $? "installed $f"
done
[ "$(ls "$etc/rules.d"/*.conf | wc -l)" = "$(ls conf/rules.d/*.conf | wc -l)" ]
ok $? "installed every rule file"
"$prefix/bin/triage" check-config -c "$etc/triage.conf" >"$tmp/check.out" 2>&1
ok $? "triage check-config passes on the installed configuration" || diag "$(cat "$tmp/check.out")"
like "$(grep -E '^(templates|sentiment_lexicon|language_fingerprints) =' "$etc/triage.conf")" \
	"templates = $prefix/share/triage/templates" "the installed triage.conf names the installed templates"
"$prefix/bin/triage" classify -c "$etc/triage.conf" --json contrib/demo/samples/03-legal-de.eml >"$tmp/classify.json" 2>"$tmp/classify.err"
ok $? "the installed binary classifies with the installed configuration" || diag "$(cat "$tmp/classify.err")"
like "$(cat "$tmp/classify.json")" '"language":"de".*"category":"legal"' "with its language fingerprints and rules"

# A second install keeps what the operator changed.
printf '\n# edited by the operator\n' >>"$etc/policy.conf"
cp "$etc/triage.conf" "$tmp/triage.conf.before"
mk install PREFIX="$prefix" >"$tmp/install2.log" 2>&1
ok $? "make install again"
like "$(tail -1 "$etc/policy.conf")" 'edited by the operator' "an edited file is not overwritten"
cmp -s "$etc/triage.conf" "$tmp/triage.conf.before"
ok $? "triage.conf is not rewritten"

# DESTDIR: staged files, final paths inside them.
mk install PREFIX=/usr/local DESTDIR="$tmp/stage" >"$tmp/install3.log" 2>&1
ok $? "make install DESTDIR=… PREFIX=/usr/local"
staged=$tmp/stage/usr/local/etc/triage/triage.conf
is "$(grep -c "$tmp" "$staged")" 0 "the staged triage.conf does not name the staging directory"
like "$(cat "$staged")" $'\ntemplates = /usr/local/share/triage/templates' "it names the final template directory"
[ -f "$tmp/stage/usr/local/share/triage/lang/fpdb.conf" ]
ok $? "the language fingerprints are installed"
done_testing
