#!/usr/bin/env bash
# tests/integration/check-config.sh — `triage check-config` also checks the
# groups only `triage serve` reads ([imap NAME], [smtp], [xmpp]), with the
# daemon's own loaders: every error with file and line, exit status 1; a
# correct daemon configuration passes.  The ASan build, when there is one,
# runs the same without a leak.
set -u
TR_TOP=${TR_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$TR_TOP" || exit 2
. tests/lib/tap.sh
bin=${TRIAGE_BIN:-build/triage}
[ -x "$bin" ] || bail "$bin is not built (make)"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cp -r conf "$tmp/conf"
sed -i "s|^templates = .*|templates = $TR_TOP/templates|" "$tmp/conf/triage.conf"
cp "$tmp/conf/triage.conf" "$tmp/conf/base.conf"
mkdir -p "$tmp/conf/secrets"
echo secret >"$tmp/conf/secrets/pw"
chmod 600 "$tmp/conf/secrets/pw"

cat "$tmp/conf/base.conf" - >"$tmp/conf/good.conf" <<'CONF'

[imap support]
host = imap.example.net
user = support
password_file = secrets/pw
mark = keyword, move:Triaged

[smtp]
host = smtp.example.net
port = 587
auth_user = triage@example.net
auth_password_file = secrets/pw
CONF
"$bin" check-config -c "$tmp/conf/good.conf" >"$tmp/good.out" 2>&1
ok $? "a correct [imap support] and [smtp] pass" || diag "$(cat "$tmp/good.out")"

cat "$tmp/conf/base.conf" - >"$tmp/conf/bad.conf" <<'CONF'

[imap support]
hots = imap.example.net
security = imapz
user = support
password_file = secrets/missing

[smtp]
tls = maybe

[xmpp]
jid = not-a-jid
CONF
base_lines=$(wc -l <"$tmp/conf/base.conf")
"$bin" check-config -c "$tmp/conf/bad.conf" >"$tmp/bad.out" 2>&1
is "$?" 1 "mistakes in the daemon's groups fail check-config"
out=$(cat "$tmp/bad.out")
like "$out" "bad.conf:$((base_lines + 3)): warning: \\[imap support\\] unknown key 'hots'" "a misspelt IMAP key, with its line"
like "$out" "bad.conf:[0-9]+: error: \\[imap support\\]: host is required" "the missing IMAP host"
like "$out" "bad.conf:$((base_lines + 4)): error: \\[imap support\\] security: 'imapz'" "a wrong IMAP security mode, with its line"
like "$out" "error: \\[imap support\\] password_file" "a password file that is not there"
like "$out" "bad.conf:$((base_lines + 9)): error: \\[smtp\\] tls: 'maybe'" "a wrong SMTP TLS mode, with its line"
like "$out" "error: \\[xmpp\\] jid: 'not-a-jid'" "an XMPP address that is not one"
asan=build/asan/triage
if [ -x "$asan" ]; then
	ASAN_OPTIONS=detect_leaks=1 "$asan" check-config -c "$tmp/conf/bad.conf" >"$tmp/asan.out" 2>&1
	is "$?" 1 "the ASan build: the same verdict"
	is "$(grep -c 'Sanitizer' "$tmp/asan.out")" 0 "and no leak or error report" || diag "$(grep -A5 Sanitizer "$tmp/asan.out" | head -20)"
fi
done_testing
