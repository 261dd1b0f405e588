# tests/lib/tap.sh — TAP output for shell tests (source it).
#
#   plan N            print the plan (or call done_testing at the end)
#   ok COND_STATUS DESC   ok $? "desc" — pass when the status is 0
#   is GOT WANT DESC  pass when the strings are equal, else show both
#   like GOT REGEX DESC
#   skip_all REASON   the whole script is skipped (prints 1..0 # SKIP)
#   bail REASON       abort the script: counts as a failure
#   diag MSG          comment line(s): every line of MSG gets "# ", so text
#                     shown from a failed check cannot pass for a TAP line
#   done_testing      print the plan from the count, exit non-zero on failure
#   tr_scaled N       N (seconds, milliseconds…) times $TR_TIME_FACTOR
#
# TR_TIME_FACTOR (whole number, default 1) stretches every wait and every
# latency bound: `make valgrind` and `make asan-integration` set it, since
# an instrumented triage runs many times slower.  wait_until applies it by
# itself; a script that asserts a latency uses tr_scaled and says so.
: "${TR_TIME_FACTOR:=1}"
[[ $TR_TIME_FACTOR =~ ^[1-9][0-9]*$ ]] || { echo "Bail out! TR_TIME_FACTOR='$TR_TIME_FACTOR' is not a whole number >= 1"; exit 1; }
tr_scaled() { echo $(( $1 * TR_TIME_FACTOR )); }
TAP_N=0
TAP_FAILED=0

plan() { echo "1..$1"; TAP_PLANNED=$1; }
diag() {
	local line
	while IFS= read -r line; do printf '# %s\n' "$line"; done <<<"$*"
}
_tap_result() { # status desc
	TAP_N=$((TAP_N + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $TAP_N - $2"
	else
		echo "not ok $TAP_N - $2"
		TAP_FAILED=$((TAP_FAILED + 1))
	fi
}
ok() { _tap_result "$1" "$2"; }
is() {
	if [ "$1" = "$2" ]; then _tap_result 0 "$3"; else
		_tap_result 1 "$3"
		diag "   got: '$1'"
		diag "  want: '$2'"
	fi
}
like() {
	if printf '%s' "$1" | grep -qE -- "$2"; then _tap_result 0 "$3"; else
		_tap_result 1 "$3"
		diag "   got: '$(printf '%s' "$1" | head -c 400)'"
		diag "  want match: '$2'"
	fi
}
skip_all() { echo "1..0 # SKIP $*"; exit 0; }
bail() { echo "Bail out! $*"; echo "not ok $((TAP_N + 1)) - bail out: $*"; exit 1; }
done_testing() {
	[ -n "${TAP_PLANNED:-}" ] || echo "1..$TAP_N"
	[ "$TAP_FAILED" -eq 0 ]
	exit $?
}
