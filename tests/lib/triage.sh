# tests/lib/triage.sh — triage itself in integration tests (source it after
# tests/lib/servers.sh and srv_start_dovecot).
#
#   tr_test_conf DB           copy conf/ into $SRV_DIR/conf, pointed at DB, the
#                             repository's templates and agents.example.test;
#                             sets $conf (the directory) and $db
#   tr_test_imap_conf         append [serve] and [imap support] for Dovecot
#   tr_drop FIRST LAST [TAG]  messages straight into support's maildir
#   tr_untriaged              INBOX messages without the $Triaged keyword
#   tr_tickets                tickets in $db (not incidents), 0 if none yet
#   tr_start_serve [CONF]     `triage serve` in the background ($serve_pid);
#                             its log is $SRV_DIR/serve.log
#   tr_stop_serve [SIGNAL]    stop it and return its exit status
#
# For wait_until, which runs its command again and again, use the
# predicates (tr_tickets_are N, tr_untriaged_is N), never "$(...)" in its
# arguments: that would be expanded once, before the first try.

tr_test_conf() {
	conf=$SRV_DIR/conf
	db=$1
	cp -r "$TR_TOP/conf" "$conf"
	sed -i "s|^templates = .*|templates = $TR_TOP/templates|; s|^agent_domains = .*|agent_domains = agents.example.test|; s|^path = /var/lib/triage/triage.db|path = $db|" \
		"$conf/triage.conf"
}

tr_test_imap_conf() {
	# An instrumented triage (TR_TIME_FACTOR) drains slower: its watchdog waits longer.
	local drain=$(( 10 * ${TR_TIME_FACTOR:-1} ))
	[ "$drain" -le 600 ] || drain=600
	cat >>"$conf/triage.conf" <<EOF

[serve]
sla_interval = 2s
drain_timeout = ${drain}s

[imap support]
host = localhost
port = $IMAPS_PORT
security = imaps
ca_file = $SRV_CA
user = support
password = $SRV_PASSWORD
folder = INBOX
mark = keyword
quarantine = Quarantine
message_bytes = 100K
EOF
}

_tr_words=(invoice export login password webhook dashboard printer mobile report import sync token
	billing refund upgrade calendar backup restore contract domain certificate proxy license
	storage invite folder search filter chart tablet laptop keyboard)
tr_drop() {
	local i tag=${3:-serve} maildir=$SRV_DIR/dovecot/home/support/Maildir
	for i in $(seq "$1" "$2"); do
		local w1=${_tr_words[$((i % 31))]} w2=${_tr_words[$(((i / 31) % 31))]} w3=${_tr_words[$(((i * 7) % 31))]}
		printf 'From: Customer %d <c%d@cust%d.example>\nTo: support@example.test\nSubject: %s %s question %d\nMessage-ID: <%s-%d@cust.example>\nDate: Mon, 16 Nov 2026 09:00:00 +0000\n\nHello, case %d: the %s of %s fails when %s runs (code %d).\n' \
			"$i" "$i" "$((i % 97))" "$w1" "$w2" "$i" "$tag" "$i" "$i" "$w1" "$w2" "$w3" "$((i * 7919 % 10007))" \
			>"$maildir/new/$((1700000000 + i)).M${i}P$$$tag.test"
	done
	chown -R 65534:65534 "$maildir"
}

tr_untriaged() {
	local out
	out=$(srv_imap_curl support INBOX --request 'SEARCH UNKEYWORD $Triaged' 2>/dev/null | tr -d '\r') || { echo "?"; return; }
	set -- ${out#* SEARCH}
	echo $#
}
tr_untriaged_is() { [ "$(tr_untriaged)" = "$1" ]; }
tr_tickets() { sqlite3 "$db" "SELECT count(*) FROM tickets WHERE is_incident = 0" 2>/dev/null || echo 0; }
tr_tickets_are() { [ "$(tr_tickets)" = "$1" ]; }

serve_pid=""
tr_start_serve() { # [CONF]
	: >"$SRV_DIR/serve.log"
	"$BIN" serve -c "${1:-$conf/triage.conf}" --pidfile "$SRV_DIR/serve.pid" >>"$SRV_DIR/serve.log" 2>&1 &
	serve_pid=$!
}
tr_stop_serve() { # [SIGNAL]
	[ -n "$serve_pid" ] || return 0
	kill "-${1:-TERM}" "$serve_pid" 2>/dev/null
	wait "$serve_pid" 2>/dev/null
	local status=$?
	serve_pid=""
	return $status
}
