# shellcheck shell=bash disable=SC2153  # *_PORT are set by srv_free_port (printf -v)
# tests/lib/servers.sh — real Dovecot, Postfix and Prosody for integration tests.
#
# Source it after tests/lib/tap.sh, from the script's top level (not inside
# $(...) or a pipeline: the start functions record state in shell variables):
#
#     . "$TR_TOP/tests/lib/tap.sh"
#     . "$TR_TOP/tests/lib/servers.sh"
#     srv_init
#     srv_start_dovecot support alice          # IMAP, IMAPS, LMTP
#     srv_start_postfix inet:127.0.0.1:$MILTER_PORT
#     srv_start_prosody
#
# Every server runs on 127.0.0.1 on ports picked by srv_free_port, with its
# configuration, data, logs and TLS certificate in one temporary directory
# ($SRV_DIR).  A server that does not come up within $SRV_START_TIMEOUT
# seconds makes the script bail out (a failing test, with the server's log
# tail), never skip.  At exit (normal, bail, INT, TERM) every server started
# here is stopped by PID, stragglers are SIGKILLed, the script fails if any
# process it started is still alive, and $SRV_DIR is removed (kept when
# SRV_KEEP=1).  See docs/testing.md for the whole list of functions.
#
# Needs root (the servers drop to their own users) and the packages from
# ./bootstrap.

if ! declare -F bail >/dev/null; then
	echo "servers.sh: source tests/lib/tap.sh first" >&2
	exit 2
fi

# --- settings (override in the environment) ---------------------------------
: "${SRV_START_TIMEOUT:=10}"   # seconds a server may take to become ready
: "${SRV_STOP_TIMEOUT:=5}"    # seconds before stragglers get SIGKILL
: "${SRV_KEEP:=0}"            # 1 = keep $SRV_DIR after exit, for debugging
: "${SRV_VERBOSE:=0}"         # 1 = diag lines for every start and stop, with timings
: "${SRV_PORT_LOCKS:=/tmp/triage-test-ports}"  # port reservations shared by concurrent runs
: "${SRV_PASSWORD:=secret}"   # default password of every test account
: "${SRV_KEY_TYPE:=ec}"       # test certificate keys: ec (P-256, instant) or rsa (2048)

SRV_DOMAIN=example.test       # mail domain Dovecot serves and Postfix relays
SRV_XMPP_DOMAIN=localhost     # XMPP virtual host
SRV_MUC_DOMAIN=conference.localhost
SRV_DEFAULT_MAIL_USERS=(support alice bob billing security oncall)
SRV_DEFAULT_XMPP_USERS=(triage-bot agent1 agent2 stranger)
SRV_DOVECOT_MAILBOXES=(Quarantine Triaged Junk)   # auto-created in every account
SRV_MAIL_UID=65534            # Dovecot mail owner (nobody)

# --- internal state -------------------------------------------------------------
declare -gA _SRV_SID=()       # server name -> session id of its process tree
declare -gA _SRV_PIDFILE=()   # server name -> pid file
declare -gA _SRV_CHILD=()     # server name -> PID of our direct child (reaped after stop)
declare -gA _SRV_LOG=()       # server name -> log file(s) shown on failure
declare -gA _SRV_STARTED_MS=() # server name -> last start-up time in ms
declare -gA _SRV_STOPPED_MS=() # server name -> last stop time in ms
declare -ga _SRV_ALL_SIDS=()  # every session ever started, checked at exit
declare -ga _SRV_AT_EXIT=()   # extra cleanup commands (srv_at_exit)
declare -gA _SRV_USER_PASS=() # account -> password (mail and XMPP)
_SRV_INITIALISED=0

# --- small utilities -------------------------------------------------------------

# Milliseconds since the epoch, without forking.
_srv_now_ms() {
	local t=${EPOCHREALTIME/[.,]/}
	echo $((t / 1000))
}

# wait_until SECONDS CMD...: run CMD until it succeeds or SECONDS (whole
# seconds, times $TR_TIME_FACTOR) pass.  Polls after 20 ms, 50 ms, then
# every 100 ms.  Returns whether CMD succeeded.
wait_until() {
	local limit_ms=$(( ${1%.*} * 1000 * ${TR_TIME_FACTOR:-1} )) delay=0.02 start
	shift
	start=$(_srv_now_ms)
	while :; do
		"$@" && return 0
		(( $(_srv_now_ms) - start >= limit_ms )) && return 1
		sleep "$delay"
		case $delay in 0.02) delay=0.05 ;; 0.05) delay=0.1 ;; esac
	done
}

# Print the last N lines of each log file as TAP comments.
srv_log_tail() { # FILE [N]
	local file=$1 lines=${2:-25}
	if [ -s "$file" ]; then
		diag "--- last $lines lines of $file"
		tail -n "$lines" -- "$file" | sed 's/^/#   /'
	else
		diag "--- $file: empty or missing"
	fi
}

# A server did not come up: show its logs and fail the script.
_srv_fail() { # NAME MESSAGE
	local name=$1 msg=$2 log
	for log in ${_SRV_LOG[$name]:-}; do srv_log_tail "$log"; done
	bail "$name: $msg"
}

# Is PID a live process?  Zombies count as dead.  (Builtins only: this is
# polled while waiting for a server to stop.)
_srv_alive() { # PID
	local stat=""
	[ -n "${1:-}" ] && { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
	stat=${stat##*) }
	[ "${stat%% *}" != Z ]
}
_srv_dead() { ! _srv_alive "$1"; }

# Session id of a process (field 6 of /proc/PID/stat; comm may hold spaces).
_srv_sid_of() { # PID
	local stat="" fields
	{ read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
	read -r -a fields <<<"${stat##*) }"
	echo "${fields[3]}"
}

# srv_session_pids SID...: live processes of the given sessions, one PID a
# line (zombies excluded).
srv_session_pids() {
	local sids pid
	sids=$(IFS=,; echo "$*")
	[ -n "$sids" ] || return 0
	for pid in $(pgrep -s "$sids" 2>/dev/null); do
		_srv_alive "$pid" && echo "$pid"
	done
}
_srv_session_empty() { [ -z "$(srv_session_pids "$@")" ]; }

# srv_pid NAME: main PID of a running server (dovecot, postfix, prosody) or
# spawned process; fails when it is not running.
srv_pid() {
	local pid
	[ -n "${_SRV_SID[$1]:-}" ] || return 1
	pid=$(_srv_read_pidfile "${_SRV_PIDFILE[$1]}") && _srv_alive "$pid" && echo "$pid"
}

_srv_read_pidfile() { # FILE  -> pid on stdout (Postfix pads it with spaces)
	local pid
	[ -r "$1" ] || return 1
	read -r pid <"$1" || [ -n "$pid" ] || return 1
	pid=${pid//[[:space:]]/}
	[[ $pid =~ ^[0-9]+$ ]] && echo "$pid"
}

# Record a started server: its session, for stop and for the exit check.
_srv_track() { # NAME PID
	local sid
	sid=$(_srv_sid_of "$2") || return 1
	_SRV_SID[$1]=$sid
	_SRV_ALL_SIDS+=("$sid")
}

# Stop a server by PID: SIGTERM to its main process and wait for it, then
# SIGTERM to whatever it left in its session (Dovecot's auth, anvil and log
# outlive the master while a client such as Postfix's smtpd still holds an
# auth connection), and SIGKILL for what is still there after
# $SRV_STOP_TIMEOUT seconds.  Only processes of sessions this file created
# are ever signalled.
_srv_stop() { # NAME
	local name=$1 pid sid=${_SRV_SID[$1]:-} p start
	[ -n "$sid" ] || return 0
	start=$(_srv_now_ms)
	pid=$(_srv_read_pidfile "${_SRV_PIDFILE[$name]}") || pid=$sid
	if _srv_alive "$pid"; then
		kill -TERM "$pid" 2>/dev/null
		wait_until "$SRV_STOP_TIMEOUT" _srv_dead "$pid"
	fi
	if ! _srv_session_empty "$sid"; then
		for p in $(srv_session_pids "$sid"); do kill -TERM "$p" 2>/dev/null; done
	fi
	if ! wait_until "$SRV_STOP_TIMEOUT" _srv_session_empty "$sid"; then
		diag "$name: processes still running after SIGTERM, sending SIGKILL:"
		ps -o pid=,user=,args= -p "$(srv_session_pids "$sid" | paste -sd,)" 2>/dev/null | sed 's/^/#   /'
		for p in $(srv_session_pids "$sid"); do kill -KILL "$p" 2>/dev/null; done
		wait_until 2 _srv_session_empty "$sid" ||
			diag "$name: could not kill: $(srv_session_pids "$sid" | tr '\n' ' ')"
	fi
	unset "_SRV_SID[$name]"
	rm -f -- "${_SRV_PIDFILE[$name]}"
	# Reap our own child so no zombie lingers (returns at once: it is dead).
	[ -n "${_SRV_CHILD[$name]:-}" ] && wait "${_SRV_CHILD[$name]}" 2>/dev/null
	unset "_SRV_CHILD[$name]"
	_SRV_STOPPED_MS[$name]=$(( $(_srv_now_ms) - start ))
	[ "$SRV_VERBOSE" = 1 ] && diag "$name stopped in ${_SRV_STOPPED_MS[$name]} ms"
	return 0
}

# srv_stop_all: stop every server and spawned process, newest kinds first.
srv_stop_all() {
	local name
	for name in "${!_SRV_SID[@]}"; do
		case $name in dovecot|postfix|prosody) ;; *) _srv_stop "$name" ;; esac
	done
	for name in prosody postfix dovecot; do _srv_stop "$name"; done
}

# srv_leftover_pids: processes still alive in any session this harness ever
# started (empty when everything stopped cleanly).
srv_leftover_pids() { srv_session_pids "${_SRV_ALL_SIDS[@]}"; }

# Start a command in a new session (so the whole process tree can be found
# and stopped), stdin from /dev/null, output appended to LOG; its PID goes
# to variable VAR.  Runs in the calling shell, never in $(...): the process
# stays our child, so we reap it and no zombie is left to init.  Without job
# control a background job is no process group leader, so setsid(1) calls
# setsid() and execs in place: the PID is also the session id.
_srv_launch() { # VAR LOG CMD...
	local _var=$1 _log=$2
	shift 2
	setsid "$@" </dev/null >>"$_log" 2>&1 &
	printf -v "$_var" %s "$!"
}

# Record (and with SRV_VERBOSE=1 show) how long a start took.
_srv_started() { # NAME START_MS
	_SRV_STARTED_MS[$1]=$(( $(_srv_now_ms) - $2 ))
	[ "$SRV_VERBOSE" = 1 ] && diag "$1 up after ${_SRV_STARTED_MS[$1]} ms"
	return 0
}

# Wait for a freshly launched server: pid file written, then PROBE passes.
_srv_wait_ready() { # NAME LAUNCH_PID PROBE...
	local name=$1 launch_pid=$2 pid
	shift 2
	local pidfile=${_SRV_PIDFILE[$name]}
	# Track the session at once (setsid: session id = launch PID), so even a
	# server that hangs or half-starts is stopped at exit.
	_SRV_CHILD[$name]=$launch_pid
	_SRV_SID[$name]=$launch_pid
	_SRV_ALL_SIDS+=("$launch_pid")
	if ! wait_until "$SRV_START_TIMEOUT" _srv_pidfile_or_exit "$pidfile" "$launch_pid"; then
		_srv_fail "$name" "no pid file $pidfile after ${SRV_START_TIMEOUT}s"
	fi
	if ! pid=$(_srv_read_pidfile "$pidfile") || ! _srv_alive "$pid"; then
		_srv_fail "$name" "exited during start-up"
	fi
	_srv_track "$name" "$pid" || _srv_fail "$name" "exited during start-up"
	if ! wait_until "$SRV_START_TIMEOUT" "$@"; then
		_srv_fail "$name" "not ready after ${SRV_START_TIMEOUT}s (probe: $*)"
	fi
}
_srv_pidfile_or_exit() { # PIDFILE LAUNCH_PID — stop waiting when either happens
	_srv_read_pidfile "$1" >/dev/null && _srv_alive "$(_srv_read_pidfile "$1")" && return 0
	_srv_dead "$2"
}

# Read from FD until the text read so far matches REGEX (bash ERE) or
# SECONDS pass.  The text accumulates in _SRV_READ.  DELIM (default '>')
# ends each read: '>' lets XML make progress without newlines, $'\n' suits
# line protocols.
_srv_read_until() { # FD REGEX SECONDS [DELIM]
	local fd=$1 regex=$2 delim=${4:->} deadline chunk status
	deadline=$(( $(_srv_now_ms) + $3 * 1000 ))
	while ! [[ $_SRV_READ =~ $regex ]]; do
		(( $(_srv_now_ms) < deadline )) || return 1
		chunk=""
		IFS= read -r -t 1 -d "$delim" -u "$fd" chunk
		status=$?
		if [ $status = 0 ]; then
			_SRV_READ+="$chunk$delim"
		else
			_SRV_READ+="$chunk"          # partial data before a timeout or EOF
			if (( status <= 128 )); then  # EOF: nothing more will come
				[[ $_SRV_READ =~ $regex ]]
				return
			fi
		fi
	done
}

# Open a TCP connection to 127.0.0.1:PORT on a new fd (stored in variable VAR).
_srv_connect() { # VAR PORT
	local _fd
	{ exec {_fd}<>"/dev/tcp/127.0.0.1/$2"; } 2>/dev/null || return 1
	printf -v "$1" %s "$_fd"
}

# Read a greeting line matching REGEX from PORT, optionally say QUIT_CMD.
srv_probe_banner() { # PORT REGEX [QUIT_CMD]
	local fd rc=1
	_srv_connect fd "$1" || return 1
	_SRV_READ=""
	if _srv_read_until "$fd" $'\n' 3 $'\n' && [[ $_SRV_READ =~ $2 ]]; then
		rc=0
	fi
	[ -n "${3:-}" ] && printf '%s\r\n' "$3" 1>&"$fd" 2>/dev/null
	exec {fd}>&-
	return $rc
}

# --- ports -----------------------------------------------------------------------

# Does any local TCP socket use PORT (any address, any state, TIME-WAIT
# included)?  Used when picking a port: only untouched ports are chosen.
srv_port_in_use() { # PORT
	if command -v ss >/dev/null; then
		[ -n "$(ss -Htan "sport = :$1" 2>/dev/null)" ]
	else
		srv_port_listening "$1"
	fi
}

# Is something listening on PORT?  srv_port_free is the opposite: nothing
# listens (TIME-WAIT leftovers of closed connections do not count; the
# servers bind with SO_REUSEADDR).
srv_port_listening() { # PORT
	if command -v ss >/dev/null; then
		[ -n "$(ss -Htln "sport = :$1" 2>/dev/null)" ]
	else
		local fd
		_srv_connect fd "$1" || return 1
		exec {fd}>&-
	fi
}
srv_port_free() { ! srv_port_listening "$1"; }

# Reservations: one file per port under $SRV_PORT_LOCKS holding the PID of
# the script that took it.  A global flock makes check-and-take atomic
# between concurrent runs; reservations of dead owners are taken over.
# Called with the lock held.  Builtins only on the usual path (speed).
_srv_claim_port() { # PORT
	local file=$SRV_PORT_LOCKS/$1 owner=""
	if [ -e "$file" ]; then
		read -r owner <"$file" 2>/dev/null
		if [ -n "$owner" ] && [ "$owner" != $$ ] && kill -0 "$owner" 2>/dev/null; then
			return 1
		fi
	fi
	echo $$ >"$file"
}

# Drop every port reservation this script made, and those of scripts that
# died without cleaning up (SIGKILL).
_srv_release_ports() {
	local file owner drop=() lockfd
	[ -d "$SRV_PORT_LOCKS" ] || return 0
	exec {lockfd}>>"$SRV_PORT_LOCKS/.lock"
	flock -w 10 "$lockfd"
	for file in "$SRV_PORT_LOCKS"/[0-9]*; do
		[ -f "$file" ] || continue
		owner=""
		read -r owner <"$file" 2>/dev/null
		if [ "$owner" = $$ ] || ! kill -0 "$owner" 2>/dev/null; then
			drop+=("$file")
		fi
	done
	[ ${#drop[@]} -eq 0 ] || rm -f -- "${drop[@]}"
	exec {lockfd}>&-
	return 0
}

# srv_free_port [VAR...]: free loopback TCP ports, reserved for this script
# until it exits, so concurrent test scripts never pick the same one.
# Picked at random from 20000 up to the start of the kernel's ephemeral
# range (outgoing connections cannot take them either), skipping every port
# any socket uses (one ss call).  Each VAR is assigned and exported; bails
# when no port can be found.  Without VAR one port is printed.
srv_free_port() {
	local low=20000 high port var lockfd tries local_addr have_ss=0
	local -A used=()
	read -r high _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || high=32768
	(( high > low + 1000 )) || high=$((low + 10000))
	if [ ! -d "$SRV_PORT_LOCKS" ]; then
		mkdir -p "$SRV_PORT_LOCKS" && chmod 1777 "$SRV_PORT_LOCKS"
	fi
	if command -v ss >/dev/null; then
		have_ss=1
		while read -r _ _ _ local_addr _; do
			used[${local_addr##*:}]=1
		done < <(ss -Htan 2>/dev/null)
	fi
	exec {lockfd}>>"$SRV_PORT_LOCKS/.lock"
	flock -w 10 "$lockfd" || { exec {lockfd}>&-; bail "srv_free_port: cannot lock $SRV_PORT_LOCKS/.lock"; }
	[ $# -gt 0 ] || set -- ""
	for var in "$@"; do
		port=""
		for ((tries = 0; tries < 500; tries++)); do
			port=$(( low + (RANDOM * 32768 + RANDOM) % (high - low) ))
			[ -z "${used[$port]:-}" ] && { [ "$have_ss" = 1 ] || srv_port_free "$port"; } &&
				_srv_claim_port "$port" && break
			port=""
		done
		if [ -z "$port" ]; then
			exec {lockfd}>&-
			bail "srv_free_port: no free port found${var:+ for $var}"
		fi
		used[$port]=1
		if [ -n "$var" ]; then
			printf -v "$var" %s "$port"
			export "${var?}"
		else
			echo "$port"
		fi
	done
	exec {lockfd}>&-    # closing the descriptor releases the lock
}

# --- set-up and tear-down ---------------------------------------------------------

# srv_init: temporary directory, exit trap, TLS material.  Idempotent.
srv_init() {
	[ "$_SRV_INITIALISED" = 1 ] && return 0
	[ "$(id -u)" = 0 ] || bail "servers.sh: the integration tests need root (servers switch users)"
	local prog
	for prog in dovecot doveadm postconf /usr/lib/postfix/sbin/master postqueue prosody \
		prosodyctl openssl curl swaks setsid pgrep flock; do
		command -v "$prog" >/dev/null || bail "servers.sh: $prog not installed (run ./bootstrap)"
	done
	SRV_DIR=$(mktemp -d /tmp/triage-srv.XXXXXX) || bail "servers.sh: mktemp failed"
	chmod 755 "$SRV_DIR"      # the servers' own users must traverse it
	export SRV_DIR
	_SRV_INITIALISED=1
	trap '_srv_exit' EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	trap 'exit 129' HUP
	_srv_make_tls
}

# Register a command to run at exit, before the servers are stopped
# (e.g. to stop a triage daemon the test started).
srv_at_exit() { _SRV_AT_EXIT+=("$*"); }

# A private CA and a server certificate for localhost / 127.0.0.1 signed by
# it, made once per run (or reused from $SRV_TLS_DIR when it holds them, so
# a suite can share one).  Clients trust $SRV_CA; servers use
# $SRV_CERT / $SRV_KEY.  ECDSA P-256 by default: generated in milliseconds
# and accepted by every server and client here; SRV_KEY_TYPE=rsa for RSA.
_srv_make_tls() {
	if [ -n "${SRV_TLS_DIR:-}" ] && [ -s "$SRV_TLS_DIR/ca.pem" ] &&
		[ -s "$SRV_TLS_DIR/cert.pem" ] && [ -s "$SRV_TLS_DIR/key.pem" ]; then
		:
	else
		SRV_TLS_DIR=$SRV_DIR/tls
		mkdir -p "$SRV_TLS_DIR"
		cat >"$SRV_TLS_DIR/openssl.cnf" <<-'EOF'
		[req]
		distinguished_name = dn
		prompt = no
		[dn]
		CN = localhost
		[ca_ext]
		basicConstraints = critical,CA:TRUE
		keyUsage = critical,keyCertSign,cRLSign
		subjectKeyIdentifier = hash
		[leaf_ext]
		basicConstraints = critical,CA:FALSE
		keyUsage = critical,digitalSignature,keyEncipherment
		extendedKeyUsage = serverAuth
		subjectAltName = DNS:localhost,IP:127.0.0.1
		subjectKeyIdentifier = hash
		authorityKeyIdentifier = keyid
		EOF
		local newkey=(-newkey ec -pkeyopt ec_paramgen_curve:P-256)
		[ "$SRV_KEY_TYPE" = rsa ] && newkey=(-newkey rsa:2048)
		(
			cd "$SRV_TLS_DIR" &&
			openssl req -x509 -config openssl.cnf -extensions ca_ext "${newkey[@]}" \
				-nodes -keyout ca.key -out ca.pem -days 2 -subj "/CN=triage test CA" &&
			openssl req -x509 -config openssl.cnf -extensions leaf_ext "${newkey[@]}" \
				-nodes -keyout key.pem -out cert.pem -days 2 -subj "/CN=localhost" \
				-CA ca.pem -CAkey ca.key
		) >"$SRV_DIR/openssl.log" 2>&1 || {
			srv_log_tail "$SRV_DIR/openssl.log"
			bail "servers.sh: could not make the test certificate"
		}
		chmod 600 "$SRV_TLS_DIR/key.pem" "$SRV_TLS_DIR/ca.key"
	fi
	SRV_CA=$SRV_TLS_DIR/ca.pem
	SRV_CERT=$SRV_TLS_DIR/cert.pem
	SRV_KEY=$SRV_TLS_DIR/key.pem
	export SRV_TLS_DIR SRV_CA SRV_CERT SRV_KEY
}

# The EXIT trap: user cleanups, stop servers, verify, release, remove.
_srv_exit() {
	local status=$? cmd left name
	# Finish the cleanup even if another INT/TERM arrives meanwhile (it is
	# bounded: stragglers get SIGKILL); an interrupted cleanup would leave
	# servers running.
	trap - EXIT
	trap '' INT TERM HUP
	for cmd in "${_SRV_AT_EXIT[@]}"; do eval "$cmd" || true; done
	srv_stop_all
	# Nothing this harness started may outlive the script.
	left=$(srv_leftover_pids)
	if [ -n "$left" ]; then
		echo "not ok $((TAP_N + 1)) - harness: processes left behind at exit"
		ps -o pid,sid,user,args -p "$(paste -sd, <<<"$left")" 2>/dev/null | sed 's/^/#   /'
		for cmd in $left; do kill -KILL "$cmd" 2>/dev/null; done
		status=1
	fi
	_srv_release_ports
	if [ "$SRV_KEEP" = 1 ]; then
		echo "# SRV_KEEP=1: kept $SRV_DIR" >&2
	else
		rm -rf -- "$SRV_DIR"
	fi
	exit "$status"
}

# Generic background process (a triage daemon, a milter, an XMPP listener)
# in its own session, stopped like the servers: srv_spawn NAME LOG CMD...
# Sets SRV_PID_<NAME>.  Stop it early with srv_kill NAME.
srv_spawn() {
	local name=$1 log=$2 pid
	shift 2
	_srv_launch pid "$log" "$@"
	_SRV_PIDFILE[$name]=$SRV_DIR/$name.spawn.pid
	echo "$pid" >"${_SRV_PIDFILE[$name]}"
	_SRV_LOG[$name]=$log
	# setsid(1) execs in place here (a background job is no group leader),
	# so the PID is also the session id.
	_SRV_SID[$name]=$pid
	_SRV_CHILD[$name]=$pid
	_SRV_ALL_SIDS+=("$pid")
	printf -v "SRV_PID_${name//[^A-Za-z0-9_]/_}" %s "$pid"
}
srv_kill() { _srv_stop "$1"; }

# --- Dovecot: IMAP (STARTTLS + implicit TLS) and LMTP --------------------------

# The maildir of USER with the standard folders, as directory paths.
_srv_maildir_dirs() { # USER
	local maildir=$SRV_DIR/dovecot/home/$1/Maildir box sub
	for sub in cur new tmp; do
		echo "$maildir/$sub"
		for box in "${SRV_DOVECOT_MAILBOXES[@]}"; do echo "$maildir/.$box/$sub"; done
	done
}

# passwd-file line of an account: USER:{PLAIN}PASS:UID:GID::HOME
_srv_dovecot_user_line() { # USER PASSWORD
	printf '%s:{PLAIN}%s:%s:%s::%s\n' "$1" "$2" "$SRV_MAIL_UID" "$SRV_MAIL_UID" \
		"$SRV_DIR/dovecot/home/$1"
}

# srv_dovecot_add_user USER [PASSWORD]: add (or change) a mail account while
# Dovecot runs; it rereads the passwd-file by itself.  The maildir and the
# standard folders are created on disk at once, so tests can look at them
# before the first login.
srv_dovecot_add_user() {
	[ -n "${DOVECOT_CONF:-}" ] || bail "srv_dovecot_add_user: call srv_start_dovecot first"
	local user=$1 pass=${2:-$SRV_PASSWORD} users=$SRV_DIR/dovecot/users
	_SRV_USER_PASS[$user]=$pass
	{
		grep -v "^$user:" "$users" 2>/dev/null
		_srv_dovecot_user_line "$user" "$pass"
	} >"$users.new"
	mv -f "$users.new" "$users"
	local dirs=()
	mapfile -t dirs < <(_srv_maildir_dirs "$user")
	mkdir -p "${dirs[@]}"
	chown -R "$SRV_MAIL_UID:$SRV_MAIL_UID" "$SRV_DIR/dovecot/home/$user"
}

_srv_dovecot_conf() {
	local d=$SRV_DIR/dovecot box
	{
		cat <<-EOF
		# generated by tests/lib/servers.sh
		base_dir = $d/run
		state_dir = $d/state
		log_path = $d/dovecot.log
		instance_name = triage-test-$$
		protocols = imap lmtp
		listen = 127.0.0.1
		ssl = yes
		ssl_cert = <$SRV_CERT
		ssl_key = <$SRV_KEY
		ssl_dh = </usr/share/dovecot/dh.pem
		disable_plaintext_auth = no
		auth_mechanisms = plain login
		auth_verbose = yes
		# Tests try wrong passwords on purpose: no 2 s pause after a failure
		# (auth_failure_delay), and no penalty of 2-15 s on the next logins
		# from 127.0.0.1 (Dovecot's documented switch: make the anvil penalty
		# socket unusable; auth may log a "Permission denied" error for it).
		auth_failure_delay = 0
		mail_fsync = never
		passdb {
		  driver = passwd-file
		  args = scheme=PLAIN username_format=%n $d/users
		}
		userdb {
		  driver = passwd-file
		  args = username_format=%n $d/users
		}
		mail_location = maildir:~/Maildir
		namespace inbox {
		  inbox = yes
		  separator = /
		EOF
		for box in "${SRV_DOVECOT_MAILBOXES[@]}"; do
			printf '  mailbox %s {\n    auto = subscribe\n' "$box"
			[ "$box" = Junk ] && printf '    special_use = \\Junk\n'
			printf '  }\n'
		done
		cat <<-EOF
		}
		service imap-login {
		  inet_listener imap {
		    address = 127.0.0.1
		    port = $IMAP_PORT
		  }
		  inet_listener imaps {
		    address = 127.0.0.1
		    port = $IMAPS_PORT
		    ssl = yes
		  }
		}
		service lmtp {
		  inet_listener lmtp {
		    address = 127.0.0.1
		    port = $LMTP_PORT
		  }
		}
		protocol lmtp {
		  auth_username_format = %n
		}
		service anvil {
		  unix_listener anvil-auth-penalty {
		    mode = 0
		  }
		}
		# SASL for Postfix (smtpd_sasl_type = dovecot)
		service auth {
		  inet_listener auth-inet {
		    address = 127.0.0.1
		    port = $DOVECOT_AUTH_PORT
		  }
		}
		EOF
	} >"$d/dovecot.conf"
}

# srv_start_dovecot [USER[:PASSWORD]...]: accounts default to
# ${SRV_DEFAULT_MAIL_USERS[*]}, password $SRV_PASSWORD.
# Exports IMAP_PORT (STARTTLS), IMAPS_PORT, LMTP_PORT, DOVECOT_AUTH_PORT,
# DOVECOT_CONF, DOVECOT_LOG.
srv_start_dovecot() {
	srv_init
	[ -z "${_SRV_SID[dovecot]:-}" ] || bail "srv_start_dovecot: already running"
	local start
	start=$(_srv_now_ms)
	local d=$SRV_DIR/dovecot spec user pass dirs=() userdirs=() lines=""
	[ $# -gt 0 ] || set -- "${SRV_DEFAULT_MAIL_USERS[@]}"
	# All accounts in one go (few forks: this runs in every mail test).
	for spec in "$@"; do
		user=${spec%%:*} pass=$SRV_PASSWORD
		[[ $spec == *:* ]] && pass=${spec#*:}
		_SRV_USER_PASS[$user]=$pass
		lines+=$(_srv_dovecot_user_line "$user" "$pass")$'\n'
		mapfile -t userdirs < <(_srv_maildir_dirs "$user")
		dirs+=("${userdirs[@]}")
	done
	mkdir -p "$d/run" "$d/state" "$d/home" "${dirs[@]}"
	chown -R "$SRV_MAIL_UID:$SRV_MAIL_UID" "$d/home"
	printf '%s' "$lines" >"$d/users"
	srv_free_port IMAP_PORT IMAPS_PORT LMTP_PORT DOVECOT_AUTH_PORT
	DOVECOT_CONF=$d/dovecot.conf
	DOVECOT_LOG=$d/dovecot.log
	export DOVECOT_CONF DOVECOT_LOG
	_SRV_PIDFILE[dovecot]=$d/run/master.pid
	_SRV_LOG[dovecot]="$d/dovecot.log $d/stdout.log"
	_srv_dovecot_conf
	_srv_dovecot_launch
	_srv_started dovecot "$start"
}

_srv_dovecot_ready() {
	srv_probe_banner "$IMAP_PORT" '^\* OK .*' 'a LOGOUT' &&
	srv_probe_banner "$LMTP_PORT" '^220 ' 'QUIT'
}

_srv_dovecot_launch() {
	local start launch first_user
	start=$(_srv_now_ms)
	rm -f "${_SRV_PIDFILE[dovecot]}"
	_srv_launch launch "$SRV_DIR/dovecot/stdout.log" dovecot -F -c "$DOVECOT_CONF"
	_srv_wait_ready dovecot "$launch" _srv_dovecot_ready
	# One real login over implicit TLS proves certificate, auth and storage.
	first_user=$(head -n1 "$SRV_DIR/dovecot/users" | cut -d: -f1)
	if [ -n "$first_user" ] && ! wait_until "$SRV_START_TIMEOUT" imap_count "$first_user" INBOX >/dev/null; then
		_srv_fail dovecot "IMAPS login as $first_user failed"
	fi
	_srv_started dovecot "$start"
}

srv_stop_dovecot() { _srv_stop dovecot; }
srv_restart_dovecot() {
	[ -n "${DOVECOT_CONF:-}" ] || bail "srv_restart_dovecot: never started"
	_srv_stop dovecot
	_srv_dovecot_launch
}

# --- IMAP / LMTP / maildir helpers ------------------------------------------------

_srv_pass() { echo "${_SRV_USER_PASS[$1]:-$SRV_PASSWORD}"; }

# IMAP over implicit TLS with curl, trusting only the test CA.  Extra curl
# arguments go before the URL.  PATH is the URL path (mailbox[;...]) or "".
srv_imap_curl() { # USER PATH CURL_ARGS...
	local user=$1 path=$2
	shift 2
	curl --silent --show-error --max-time 10 --cacert "$SRV_CA" \
		--user "$user:$(_srv_pass "$user")" "$@" "imaps://127.0.0.1:$IMAPS_PORT/$path"
}

# Quote a mailbox name for an IMAP command (quoted string).
_srv_imap_quote() { local s=${1//\\/\\\\}; printf '"%s"' "${s//\"/\\\"}"; }

# imap_count USER MAILBOX: number of messages (IMAP STATUS), nothing + failure on error.
imap_count() {
	local out
	out=$(srv_imap_curl "$1" "" --request "STATUS $(_srv_imap_quote "$2") (MESSAGES)") || return 1
	[[ $out =~ MESSAGES\ ([0-9]+) ]] || return 1
	echo "${BASH_REMATCH[1]}"
}

# imap_wait_count USER MAILBOX N [SECONDS]: wait until MAILBOX holds N messages.
imap_wait_count() {
	wait_until "${4:-10}" _srv_imap_count_is "$1" "$2" "$3"
}
_srv_imap_count_is() { [ "$(imap_count "$1" "$2")" = "$3" ]; }

# imap_fetch USER MAILBOX N: the raw message with sequence number N, byte for
# byte as an IMAP client gets it (CRLF line ends).  Spoken over implicit TLS
# with EXAMINE (read-only) and BODY.PEEK[], so no flag changes.  curl cannot
# do this: it prints only the first line of a custom FETCH, and its own fetch
# sets \Seen.
imap_fetch() {
	local user=$1 mailbox=$2 seq=$3 fd_in fd_out pid line rc=1
	coproc _SRV_IMAP {
		exec openssl s_client -quiet -connect "127.0.0.1:$IMAPS_PORT" -CAfile "$SRV_CA" \
			-verify_return_error -verify_hostname localhost 2>/dev/null
	}
	fd_out=${_SRV_IMAP[0]} fd_in=${_SRV_IMAP[1]} pid=$_SRV_IMAP_PID
	printf 'f1 LOGIN %s %s\r\nf2 EXAMINE %s\r\nf3 FETCH %s BODY.PEEK[]\r\n' \
		"$(_srv_imap_quote "$user")" "$(_srv_imap_quote "$(_srv_pass "$user")")" \
		"$(_srv_imap_quote "$mailbox")" "$seq" 1>&"$fd_in" 2>/dev/null
	# bash reads a pipe one byte at a time, so head -c gets the literal
	# exactly where the FETCH line ends.
	while IFS= read -r -t 10 -u "$fd_out" line; do
		if [[ $line =~ ^\*\ $seq\ FETCH\ .*\{([0-9]+)\}$'\r'$ ]]; then
			head -c "${BASH_REMATCH[1]}" <&"$fd_out" && rc=0
			break
		fi
		[[ $line =~ ^f[123]\ (NO|BAD) ]] && break
	done
	printf 'f4 LOGOUT\r\n' 1>&"$fd_in" 2>/dev/null
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return $rc
}

# imap_flags USER MAILBOX N: the flags of message N, e.g. "\Seen $Triaged".
imap_flags() {
	local out
	out=$(srv_imap_curl "$1" "$(_srv_urlencode "$2")" --request "FETCH $3 (FLAGS)") || return 1
	[[ $out =~ FLAGS\ \(([^\)]*)\) ]] || return 1
	echo "${BASH_REMATCH[1]}"
}

_srv_urlencode() {
	local s=$1 out="" c i
	for ((i = 0; i < ${#s}; i++)); do
		c=${s:i:1}
		case $c in
		[A-Za-z0-9._~/-]) out+=$c ;;
		*) out+=$(printf '%%%02X' "'$c") ;;
		esac
	done
	echo "$out"
}

# maildir_files USER [FOLDER]: the message files of a folder (default INBOX),
# one path a line, new/ then cur/.  FOLDER uses "/" as Dovecot does.
maildir_files() {
	local dir=$SRV_DIR/dovecot/home/$1/Maildir folder=${2:-INBOX} sub f
	if [ "$folder" != INBOX ]; then dir=$dir/.${folder//\//.}; fi
	for sub in new cur; do
		for f in "$dir/$sub"/*; do
			[ -f "$f" ] && echo "$f"
		done
	done
	return 0
}

# lmtp_send FROM TO FILE [SWAKS_ARGS...]: deliver FILE to Dovecot by LMTP.
# TO may be a comma-separated list.  swaks' transcript goes to stdout.
lmtp_send() {
	local from=$1 to=$2 file=$3
	shift 3
	swaks --silent 1 --protocol LMTP --server "127.0.0.1:$LMTP_PORT" --helo localhost \
		--from "$from" --to "$to" --data "@$file" --timeout 10 "$@"
}

# --- Postfix: SMTP in, relay of the test domain to Dovecot LMTP ---------------------

# srv_start_postfix [MILTER] [NAME=VALUE...]: smtpd on 127.0.0.1:$SMTP_PORT.
# MILTER (e.g. inet:127.0.0.1:$MILTER_PORT) becomes smtpd_milters and
# non_smtpd_milters; NAME=VALUE pairs are appended to main.cf and override
# the defaults (e.g. milter_default_action=tempfail).  Needs Dovecot started
# first: mail for @example.test goes to its LMTP port.  Mail for any other
# domain is held in the queue (defer_transports), never sent anywhere.
# Exports SMTP_PORT, POSTFIX_CONF (the config directory), POSTFIX_LOG.
srv_start_postfix() {
	srv_init
	[ -z "${_SRV_SID[postfix]:-}" ] || bail "srv_start_postfix: already running"
	[ -n "${LMTP_PORT:-}" ] || bail "srv_start_postfix: start Dovecot first (it is Postfix's LMTP target)"
	local milter="" d=$SRV_DIR/postfix kv start
	start=$(_srv_now_ms)
	if [ $# -gt 0 ] && [[ $1 != *=* ]]; then milter=$1; shift; fi   # "" = none
	srv_free_port SMTP_PORT
	POSTFIX_CONF=$d/conf
	POSTFIX_LOG=$d/maillog
	export POSTFIX_CONF POSTFIX_LOG
	# What "postfix check" would create (it is slow), in four commands.
	mkdir -p "$d/conf" "$d/spool/pid"
	install -d -o postfix -g root -m 700 "$d/data" \
		"$d/spool/"{active,bounce,corrupt,defer,deferred,flush,hold,incoming,private,saved,trace}
	install -d -o postfix -g postdrop -m 730 "$d/spool/maildrop"
	install -d -o postfix -g postdrop -m 710 "$d/spool/public"
	{
		cat <<-EOF
		# generated by tests/lib/servers.sh
		compatibility_level = 3.6
		queue_directory = $d/spool
		data_directory = $d/data
		meta_directory = /etc/postfix
		command_directory = /usr/sbin
		daemon_directory = /usr/lib/postfix/sbin
		shlib_directory = /usr/lib/postfix
		mail_owner = postfix
		setgid_group = postdrop
		maillog_file = $POSTFIX_LOG
		maillog_file_prefixes = $SRV_DIR
		syslog_name = postfix-triage-test
		myhostname = mx.$SRV_DOMAIN
		mydomain = $SRV_DOMAIN
		myorigin = \$myhostname
		mydestination =
		local_recipient_maps =
		alias_maps =
		alias_database =
		biff = no
		smtputf8_enable = no
		inet_interfaces = 127.0.0.1
		inet_protocols = ipv4
		smtpd_banner = \$myhostname ESMTP triage-test
		# Only loopback may relay; everyone may send to the test domain.
		# XCLIENT lets a test act as an outside client (swaks --xclient-addr).
		mynetworks = 127.0.0.0/8
		smtpd_authorized_xclient_hosts = 127.0.0.0/8
		smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination
		smtpd_recipient_restrictions =
		smtpd_peername_lookup = no
		smtpd_error_sleep_time = 0
		relay_domains = $SRV_DOMAIN
		transport_maps = inline:{ $SRV_DOMAIN=lmtp:inet:127.0.0.1:$LMTP_PORT }
		# Everything else stays queued: no DNS, no network, inspect with postqueue.
		defer_transports = smtp
		smtp_dns_support_level = disabled
		queue_run_delay = 10s
		minimal_backoff_time = 10s
		maximal_backoff_time = 60s
		smtpd_tls_cert_file = $SRV_CERT
		smtpd_tls_key_file = $SRV_KEY
		smtpd_tls_security_level = may
		smtpd_sasl_type = dovecot
		smtpd_sasl_path = inet:127.0.0.1:$DOVECOT_AUTH_PORT
		smtpd_sasl_auth_enable = yes
		milter_protocol = 6
		milter_default_action = accept
		EOF
		if [ -n "$milter" ]; then
			echo "smtpd_milters = $milter"
			echo "non_smtpd_milters = \$smtpd_milters"
		fi
		for kv in "$@"; do
			[[ $kv == *=* ]] || bail "srv_start_postfix: '$kv' is not NAME=VALUE"
			echo "${kv%%=*} = ${kv#*=}"
		done
	} >"$d/conf/main.cf"
	sed "s/^127\.0\.0\.1:10025 /127.0.0.1:$SMTP_PORT /" <<-'EOF' >"$d/conf/master.cf"
	127.0.0.1:10025 inet n - n - - smtpd
	pickup    unix  n       -       n       60      1       pickup
	cleanup   unix  n       -       n       -       0       cleanup
	qmgr      unix  n       -       n       300     1       qmgr
	tlsmgr    unix  -       -       n       1000?   1       tlsmgr
	rewrite   unix  -       -       n       -       -       trivial-rewrite
	bounce    unix  -       -       n       -       0       bounce
	defer     unix  -       -       n       -       0       bounce
	trace     unix  -       -       n       -       0       bounce
	verify    unix  -       -       n       -       1       verify
	flush     unix  n       -       n       1000?   0       flush
	proxymap  unix  -       -       n       -       -       proxymap
	smtp      unix  -       -       n       -       -       smtp
	relay     unix  -       -       n       -       -       smtp
	showq     unix  n       -       n       -       -       showq
	error     unix  -       -       n       -       -       error
	retry     unix  -       -       n       -       -       error
	discard   unix  -       -       n       -       -       discard
	lmtp      unix  -       -       n       -       -       lmtp
	anvil     unix  -       -       n       -       1       anvil
	scache    unix  -       -       n       -       1       scache
	postlog   unix-dgram n  -       n       -       1       postlogd
	EOF
	# Postfix re-reads a config file until its mtime is over a second old
	# (an editor may still be writing it): backdate ours.
	touch -d '-10 seconds' "$d/conf/main.cf" "$d/conf/master.cf"
	_SRV_PIDFILE[postfix]=$d/spool/pid/master.pid
	_SRV_LOG[postfix]="$POSTFIX_LOG $d/stdout.log"
	_srv_postfix_launch
	_srv_started postfix "$start"
}

_srv_postfix_launch() {
	local start launch
	start=$(_srv_now_ms)
	rm -f "${_SRV_PIDFILE[postfix]}"
	# The master itself in the foreground ("postfix start-fg" minus the slow
	# integrity checks); it makes itself a session leader.
	_srv_launch launch "$SRV_DIR/postfix/stdout.log" \
		/usr/lib/postfix/sbin/master -c "$POSTFIX_CONF" -s
	_srv_wait_ready postfix "$launch" srv_probe_banner "$SMTP_PORT" '^220 ' QUIT
	_srv_started postfix "$start"
}

srv_stop_postfix() { _srv_stop postfix; }
srv_restart_postfix() {
	[ -n "${POSTFIX_CONF:-}" ] || bail "srv_restart_postfix: never started"
	_srv_stop postfix
	_srv_postfix_launch
}

# postqueue against the test instance: postfix_queue -p | -j | -f | -s SITE ...
postfix_queue() { postqueue -c "$POSTFIX_CONF" "$@"; }
# Deliver everything queued now (deferred mail included).
postfix_flush() { postqueue -c "$POSTFIX_CONF" -f; }
# Number of messages in the queue.
postfix_queue_count() { postqueue -c "$POSTFIX_CONF" -j | grep -c '"queue_id"'; }
# Wait until the queue holds N messages (default 0).
postfix_wait_queue() { # [N] [SECONDS]
	wait_until "${2:-10}" _srv_queue_count_is "${1:-0}"
}
_srv_queue_count_is() { [ "$(postfix_queue_count)" = "$1" ]; }

# smtp_send FROM TO FILE [SWAKS_ARGS...]: submit FILE to Postfix by SMTP.
# TO may be a comma-separated list.  Extra arguments go to swaks
# (e.g. --tls, --xclient-addr 192.0.2.1, --auth-user u --auth-password p).
smtp_send() {
	local from=$1 to=$2 file=$3
	shift 3
	swaks --silent 1 --server "127.0.0.1:$SMTP_PORT" --helo client.localhost \
		--from "$from" --to "$to" --data "@$file" --timeout 10 "$@"
}

# --- Prosody: XMPP c2s with a MUC component -----------------------------------------

# srv_prosody_add_user USER [PASSWORD]: register an account (prosodyctl),
# before or while Prosody runs.
srv_prosody_add_user() {
	local user=$1 pass=${2:-$SRV_PASSWORD}
	[ -n "${PROSODY_CONF:-}" ] || bail "srv_prosody_add_user: call srv_start_prosody first"
	_SRV_USER_PASS[$user]=$pass
	_srv_prosodyctl_register "$user" "$pass" ||
		_srv_fail prosody "prosodyctl register $user failed"
}
_srv_prosodyctl_register() { # USER PASSWORD (prosodyctl switches to the prosody user)
	prosodyctl --config "$PROSODY_CONF" register "$1" "$SRV_XMPP_DOMAIN" "$2" \
		>>"$SRV_DIR/prosody/prosodyctl.log" 2>&1
}

# srv_start_prosody [USER[:PASSWORD]...]: c2s on 127.0.0.1:$XMPP_PORT for the
# host "localhost" (STARTTLS offered with the test certificate, plaintext
# allowed on loopback), MUC at conference.localhost.  Accounts default to
# ${SRV_DEFAULT_XMPP_USERS[*]}.  Exports XMPP_PORT, PROSODY_CONF, PROSODY_LOG.
srv_start_prosody() {
	srv_init
	[ -z "${_SRV_SID[prosody]:-}" ] || bail "srv_start_prosody: already running"
	local d=$SRV_DIR/prosody spec user pass pid regs=() start
	start=$(_srv_now_ms)
	# The accounts directory exists up front: parallel prosodyctl runs
	# must not race to create it.
	mkdir -p "$d/data/$SRV_XMPP_DOMAIN/accounts" "$d/certs"
	cp "$SRV_CERT" "$d/certs/localhost.crt"
	cp "$SRV_KEY" "$d/certs/localhost.key"
	chown -R prosody:prosody "$d"
	chmod 600 "$d/certs/localhost.key"
	srv_free_port XMPP_PORT
	PROSODY_CONF=$d/prosody.cfg.lua
	PROSODY_LOG=$d/prosody.log
	export PROSODY_CONF PROSODY_LOG
	cat >"$PROSODY_CONF" <<-EOF
	-- generated by tests/lib/servers.sh (Prosody 0.12)
	pidfile = "$d/prosody.pid"
	data_path = "$d/data"
	log = { { levels = { min = "info" }, to = "file", filename = "$PROSODY_LOG" } }
	interfaces = { "127.0.0.1" }
	c2s_ports = { $XMPP_PORT }
	c2s_interfaces = { "127.0.0.1" }
	c2s_direct_tls_ports = { }
	s2s_ports = { }
	component_ports = { }
	http_ports = { }
	https_ports = { }
	admin_socket = "$d/data/prosody.sock"
	authentication = "internal_hashed"
	storage = "internal"
	allow_registration = false
	c2s_require_encryption = false   -- plaintext allowed on loopback for tests
	certificates = "$d/certs"
	modules_enabled = { "roster"; "saslauth"; "tls"; "disco"; "ping"; "posix"; "admin_shell" }
	modules_disabled = { "s2s" }
	VirtualHost "$SRV_XMPP_DOMAIN"
	    ssl = { certificate = "$d/certs/localhost.crt"; key = "$d/certs/localhost.key" }
	Component "$SRV_MUC_DOMAIN" "muc"
	    restrict_room_creation = false
	    muc_room_default_persistent = false
	    muc_room_locking = false   -- scripted clients create rooms without configuring them
	EOF
	chmod 644 "$PROSODY_CONF"
	_SRV_PIDFILE[prosody]=$d/prosody.pid
	_SRV_LOG[prosody]="$PROSODY_LOG $d/stdout.log $d/prosodyctl.log"
	[ $# -gt 0 ] || set -- "${SRV_DEFAULT_XMPP_USERS[@]}"
	# Register the accounts in parallel while Prosody starts (each prosodyctl
	# loads all of Prosody: one after the other they cost ~0.1 s each).
	for spec in "$@"; do
		user=${spec%%:*} pass=$SRV_PASSWORD
		[[ $spec == *:* ]] && pass=${spec#*:}
		_SRV_USER_PASS[$user]=$pass
		_srv_prosodyctl_register "$user" "$pass" &
		regs+=($!)
	done
	_srv_prosody_launch
	for pid in "${regs[@]}"; do
		wait "$pid" || _srv_fail prosody "prosodyctl register failed"
	done
	_srv_started prosody "$start"
}

_srv_prosody_launch() {
	local start launch
	start=$(_srv_now_ms)
	rm -f "${_SRV_PIDFILE[prosody]}"
	# Prosody refuses to run as root: drop to its user with setpriv, which
	# execs in place (runuser would fork and hold a PAM session).
	_srv_launch launch "$SRV_DIR/prosody/stdout.log" \
		setpriv --reuid=prosody --regid=prosody --init-groups \
		prosody -F --config "$PROSODY_CONF"
	_srv_wait_ready prosody "$launch" _srv_prosody_ready
	_srv_started prosody "$start"
}

_srv_prosody_ready() { xmpp_stream_features >/dev/null; }

srv_stop_prosody() { _srv_stop prosody; }
srv_restart_prosody() {
	[ -n "${PROSODY_CONF:-}" ] || bail "srv_restart_prosody: never started"
	_srv_stop prosody
	_srv_prosody_launch
}

# --- XMPP helpers --------------------------------------------------------------------

_SRV_XMPP_STREAM="<?xml version='1.0'?><stream:stream to='$SRV_XMPP_DOMAIN' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"

# xmpp_stream_features: open a c2s stream in plaintext and print the
# server's <stream:features> (used as Prosody's ready check).
xmpp_stream_features() {
	local fd rc=1
	_srv_connect fd "$XMPP_PORT" || return 1
	_SRV_READ=""
	printf '%s' "$_SRV_XMPP_STREAM" 1>&"$fd" 2>/dev/null &&
		_srv_read_until "$fd" '</stream:features>' 3 && rc=0
	printf '</stream:stream>' 1>&"$fd" 2>/dev/null
	exec {fd}>&-
	[ $rc = 0 ] && printf '%s\n' "$_SRV_READ"
	return $rc
}

# xmpp_query USER[:PASSWORD] STANZA...: log in as USER over STARTTLS
# (certificate checked against $SRV_CA), bind, send each STANZA, and print
# everything the server sent after the bind.  A final ping works as a
# barrier: Prosody answers in order, so when its reply arrives every earlier
# answer is in.  Fails when TLS, login or bind fail.
xmpp_query() {
	local user=${1%%:*} pass auth fd_in fd_out pid rc=0 stanza
	pass=$(_srv_pass "$user")
	[[ $1 == *:* ]] && pass=${1#*:}
	shift
	auth=$(printf '\0%s\0%s' "$user" "$pass" | base64 -w0)
	coproc _SRV_XMPP {
		exec openssl s_client -quiet -connect "127.0.0.1:$XMPP_PORT" -starttls xmpp \
			-xmpphost "$SRV_XMPP_DOMAIN" -CAfile "$SRV_CA" -verify_return_error \
			-verify_hostname "$SRV_XMPP_DOMAIN" 2>>"$SRV_DIR/xmpp-client.log"
	}
	fd_out=${_SRV_XMPP[0]} fd_in=${_SRV_XMPP[1]} pid=$_SRV_XMPP_PID
	_SRV_READ=""
	{
		printf '%s' "$_SRV_XMPP_STREAM" 1>&"$fd_in" &&
		_srv_read_until "$fd_out" '</stream:features>' 5 &&
		printf "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>" "$auth" 1>&"$fd_in" &&
		_srv_read_until "$fd_out" '<success|</failure>' 5 && [[ $_SRV_READ == *"<success"* ]] &&
		_SRV_READ="" && printf '%s' "$_SRV_XMPP_STREAM" 1>&"$fd_in" &&
		_srv_read_until "$fd_out" '</stream:features>' 5 &&
		_SRV_READ="" &&
		printf "<iq type='set' id='xq-bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>test</resource></bind></iq>" 1>&"$fd_in" &&
		_srv_read_until "$fd_out" "id=.xq-bind.[^>]*>.*</iq>" 5
	} 2>/dev/null || rc=1
	if [ $rc = 0 ]; then
		_SRV_READ=""
		for stanza in "$@"; do printf '%s' "$stanza" 1>&"$fd_in"; done
		printf "<iq type='get' id='xq-end' to='%s'><ping xmlns='urn:xmpp:ping'/></iq>" "$SRV_XMPP_DOMAIN" 1>&"$fd_in"
		_srv_read_until "$fd_out" "id=.xq-end." 10 || rc=1
		printf '</stream:stream>' 1>&"$fd_in" 2>/dev/null
	fi
	[ $rc = 0 ] || { diag "xmpp_query as $user failed; got: ${_SRV_READ:0:300}"; tail -n 5 "$SRV_DIR/xmpp-client.log" 2>/dev/null | sed 's/^/#   /'; }
	printf '%s\n' "$_SRV_READ"
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return $rc
}

# go-sendxmpp (Debian package go-sendxmpp) as a scripted client.  It trusts
# the test CA through SSL_CERT_FILE, so TLS is verified, not skipped.
_srv_sendxmpp() { # USER ARGS...
	local user=$1
	shift
	SSL_CERT_FILE=$SRV_CA go-sendxmpp --username "$user@$SRV_XMPP_DOMAIN" \
		--password "$(_srv_pass "$user")" --jserver "127.0.0.1:$XMPP_PORT" \
		--timeout 10 "$@"
}

# xmpp_send USER TO MESSAGE: a chat message to a JID, or a groupchat
# message when TO is a room (…@conference.localhost; joins it first).
xmpp_send() {
	local user=$1 to=$2 msg=$3
	command -v go-sendxmpp >/dev/null || bail "xmpp_send: go-sendxmpp not installed (run ./bootstrap)"
	if [[ $to == *@"$SRV_MUC_DOMAIN" ]]; then
		printf '%s\n' "$msg" | _srv_sendxmpp "$user" --chatroom --alias "$user" "$to"
	else
		printf '%s\n' "$msg" | _srv_sendxmpp "$user" "$to"
	fi
}

# xmpp_listen NAME USER ROOM FILE: USER joins ROOM (a full room JID) and
# writes every message it sees to FILE, in the background until srv_kill
# NAME or the end of the script.  Waits until the listener is in the room.
xmpp_listen() {
	local name=$1 user=$2 room=$3 file=$4 nick=$2 before
	command -v go-sendxmpp >/dev/null || bail "xmpp_listen: go-sendxmpp not installed (run ./bootstrap)"
	before=$(xmpp_room_occupants "$room" "$user") || _srv_fail prosody "disco#info on $room failed"
	: >"$file"
	srv_spawn "$name" "$file" env SSL_CERT_FILE="$SRV_CA" go-sendxmpp \
		--username "$user@$SRV_XMPP_DOMAIN" --password "$(_srv_pass "$user")" \
		--jserver "127.0.0.1:$XMPP_PORT" --timeout 10 --listen --chatroom --alias "$nick" "$room"
	wait_until 10 _srv_room_has_more "$room" "$before" "$user" ||
		_srv_fail "$name" "listener $user did not join $room"
}
_srv_room_has_more() { # ROOM COUNT USER
	local now
	now=$(xmpp_room_occupants "$1" "$3") && (( now > $2 ))
}

# xmpp_room_occupants ROOM [AS_USER]: number of occupants of ROOM (0 when
# it does not exist), from the room's disco#info (muc#roominfo_occupants).
xmpp_room_occupants() {
	local out
	out=$(xmpp_query "${2:-${SRV_DEFAULT_XMPP_USERS[0]}}" \
		"<iq type='get' id='xq-occ' to='$1'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>") ||
		return 1
	if [[ $out =~ roominfo_occupants[^\>]*\>\<value\>([0-9]+) ]]; then
		echo "${BASH_REMATCH[1]}"
	else
		echo 0
	fi
}

# --- reporting ---------------------------------------------------------------------

# srv_startup_times: one diag line with each server's last start-up time
# (and stop time, once stopped).
srv_startup_times() {
	local name line="" stops=""
	for name in "${!_SRV_STARTED_MS[@]}"; do line+=" $name=${_SRV_STARTED_MS[$name]}ms"; done
	for name in "${!_SRV_STOPPED_MS[@]}"; do stops+=" $name=${_SRV_STOPPED_MS[$name]}ms"; done
	diag "start-up times:${line:- none}${stops:+; stop times:$stops}"
}
