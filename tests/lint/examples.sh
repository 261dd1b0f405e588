#!/usr/bin/env bash
# tests/lint/examples.sh — the shipped examples say what the code does:
#   - contrib/examples/shared-inbox.conf, installed the way its header says
#     (as triage.conf over `make install`), passes `triage check-config`,
#     and `triage serve` starts with it and stops cleanly on SIGTERM (the
#     daemon checks [serve] itself);
#   - contrib/systemd/triage.service runs what `make install` installs, with
#     the store directory of the example writable, and passes
#     `systemd-analyze verify` (when systemd-analyze is there).
# Nothing leaves the machine: the example's IMAP host becomes a closed
# loopback port before the daemon starts.
set -u
TR_TOP=${TR_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$TR_TOP" || exit 2
. tests/lib/tap.sh
[ -x build/triage ] || bail "build/triage is not built (make)"
example=contrib/examples/shared-inbox.conf
unit=contrib/systemd/triage.service
tmp=$(mktemp -d)
serve_pid=""
cleanup() { [ -n "$serve_pid" ] && kill -KILL "$serve_pid" 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf "$tmp"; }
trap cleanup EXIT

prefix=$tmp/usr/local
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make --no-print-directory -s install PREFIX="$prefix" >"$tmp/install.log" 2>&1
ok $? "make install PREFIX=$prefix" || diag "$(tail -20 "$tmp/install.log")"
etc=$prefix/etc/triage
# Installed as its header says; /usr/local is $prefix here.
sed "s|/usr/local/|$prefix/|g" "$example" >"$etc/triage.conf"
mkdir -p "$etc/secrets"
echo 'not-the-real-password' >"$etc/secrets/support.password"
chmod 640 "$etc/secrets/support.password"
"$prefix/bin/triage" check-config -c "$etc/triage.conf" >"$tmp/check.out" 2>&1
ok $? "triage check-config passes on $example" || diag "$(cat "$tmp/check.out")"
like "$(cat "$tmp/check.out")" 'ok \(0 warnings\)' "without a warning" || diag "$(cat "$tmp/check.out")"

# triage serve takes it too ([serve] is checked by the daemon): started,
# then a clean stop.  The IMAP host: a loopback port nobody listens on.
port=1
sed -i -e "s|^host = imap.example.com|host = 127.0.0.1|" -e "s|^#port = 993|port = $port|" "$etc/triage.conf"
"$prefix/bin/triage" serve -c "$etc/triage.conf" --db "$tmp/triage.db" --pidfile "$tmp/serve.pid" \
	>"$tmp/serve.log" 2>&1 </dev/null &
serve_pid=$!
for _ in $(seq 100); do
	grep -q 'triage serve: started' "$tmp/serve.log" && break
	kill -0 "$serve_pid" 2>/dev/null || break
	sleep 0.1
done
like "$(cat "$tmp/serve.log")" 'triage serve: started \(1 IMAP folder, localhost:25' "triage serve starts with it" ||
	diag "$(cat "$tmp/serve.log")"
kill -TERM "$serve_pid" 2>/dev/null
wait "$serve_pid"
status=$?
is "$status" 0 "and stops on SIGTERM with status 0"
[ "$status" = 0 ] || diag "$(tail -n 15 "$tmp/serve.log")"
serve_pid=""
is "$(grep -c 'error:\|warning:' "$tmp/serve.log")" 0 "no configuration error or warning from the daemon" ||
	diag "$(grep 'error:\|warning:' "$tmp/serve.log")"

# The unit runs what make install installed (default PREFIX) and may write
# where the example keeps its store.
like "$(grep '^ExecStart=' "$unit")" '^ExecStart=/usr/local/bin/triage serve -c /usr/local/etc/triage/triage.conf' \
	"the unit starts the installed binary with the installed configuration"
store_dir=$(dirname "$(sed -n 's/^path = //p' "$example")")
like "$(grep '^ReadWritePaths=' "$unit")" "^ReadWritePaths=$store_dir\$" "the unit may write the example's store directory ($store_dir)"
like "$(grep '^StateDirectory=' "$unit")" "^StateDirectory=${store_dir#/var/lib/}\$" "and creates it for its user"
for key in ProtectSystem=strict NoNewPrivileges=yes PrivateTmp=yes ProtectHome=yes SystemCallFilter=@system-service \
	'ExecReload=/bin/kill -HUP $MAINPID' User=triage; do
	grep -qxF "$key" "$unit"
	ok $? "the unit has $key"
done
like "$(grep '^RestrictAddressFamilies=' "$unit")" 'AF_INET AF_INET6' "the unit allows IPv4 and IPv6 sockets"
if command -v systemd-analyze >/dev/null; then
	sed "s|/usr/local/bin/triage|$prefix/bin/triage|g" "$unit" >"$tmp/triage.service"
	systemd-analyze verify "$tmp/triage.service" >"$tmp/verify.out" 2>&1
	ok $? "systemd-analyze verify $unit" || diag "$(cat "$tmp/verify.out")"
	score=$(systemd-analyze security --offline=true "$tmp/triage.service" 2>/dev/null | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
	[ -n "$score" ] && diag "systemd-analyze security: exposure $score (0 = locked down, 10 = exposed)"
else
	diag "systemd-analyze not installed: the unit is not verified by systemd"
fi
done_testing
