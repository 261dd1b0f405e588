#!/usr/bin/env bash
# tests/lint/layering.sh — the module rules of DESIGN.md, checked:
# src/core includes nothing from store, channels or daemon; channels never
# include each other; only daemon and cli wire modules together; every .c
# in src has its .h (cli excepted).
set -u
cd "$(dirname "$0")/../.." || exit 2
. tests/lib/tap.sh

bad=$(grep -nE '#include "(store|channels|daemon|cli)/' src/core/*.c src/core/*.h 2>/dev/null)
is "$bad" "" "src/core includes nothing from store, channels, daemon or cli"

bad=$(grep -nE '#include "(channels|daemon|cli)/' src/store/*.[ch] 2>/dev/null)
is "$bad" "" "src/store includes nothing from channels, daemon or cli"

bad=""
for f in src/channels/*.[ch]; do
	[ -e "$f" ] || continue
	self=$(basename "$f"); self=${self%.*}
	for inc in $(grep -oE '#include "channels/[a-z_]+\.h"' "$f" | sed -E 's/.*channels\/([a-z_]+)\.h"/\1/'); do
		# one protocol may have several modules (imap, imap_watch)
		[ "${self%%_*}" = "${inc%%_*}" ] || bad="$bad $f:$inc"
	done
	grep -qE '#include "(daemon|cli)/' "$f" && bad="$bad $f:daemon/cli"
done
is "$bad" "" "channels include no other channel, daemon or cli"

missing=""
for c in src/core/*.c src/store/*.c src/channels/*.c src/daemon/*.c; do
	[ -e "$c" ] || continue
	[ -e "${c%.c}.h" ] || missing="$missing $c"
done
is "$missing" "" "every module .c has its header"

done_testing
