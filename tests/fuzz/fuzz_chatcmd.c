/* fuzz_chatcmd.c — libFuzzer target for tr_chatcmd_parse
 *
 * Checked: the kind is one of the enum's values; the strings in the
 * result are NUL-terminated inside their arrays; an error text is one line
 * of printable ASCII and present exactly for INVALID; commands with a
 * ticket have a positive number and "PREFIX-%06d" text; names and teams
 * hold only their allowed characters; the result does not depend on
 * bytes beyond len; the same input parses the same way twice.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "channels/chatcmd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_string(const char *s, size_t array_size)
{
	if (memchr(s, '\0', array_size) == NULL)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* the first byte picks the prefix, so odd prefixes are fuzzed too */
	static const char *const prefixes[] = { "TKT", "sup", "", "T-K", NULL, "ABCDEFGHIJKLMNOPQ", "X1" };
	const char *prefix = size > 0 ? prefixes[data[0] % G_N_ELEMENTS(prefixes)] : "TKT";
	const char *text = size > 0 ? (const char *)data + 1 : (const char *)data;
	size_t len = size > 0 ? size - 1 : 0;

	/* a copy with garbage after len: must not change the result */
	char *copy = malloc(len + 8);
	if (copy == NULL)
		return 0;
	memcpy(copy, text, len);
	memcpy(copy + len, " TKT-9\n", 8);

	tr_chatcmd a, b;
	tr_chatcmd_kind kind = tr_chatcmd_parse(text, len, prefix, &a);
	tr_chatcmd_parse(copy, len, prefix, &b);
	free(copy);
	if (kind != a.kind || memcmp(&a, &b, sizeof(a)) != 0)
		abort();
	if (kind < TR_CHATCMD_NONE || kind > TR_CHATCMD_HELP)
		abort();
	check_string(a.error, sizeof(a.error));
	check_string(a.name, sizeof(a.name));
	check_string(a.team, sizeof(a.team));
	check_string(a.ticket_text, sizeof(a.ticket_text));
	if ((kind == TR_CHATCMD_INVALID) != (a.error[0] != '\0'))
		abort();
	for (const char *p = a.error; *p != '\0'; p++) {
		if (*p < 0x20 || *p > 0x7e)
			abort();
	}
	bool has_ticket = kind >= TR_CHATCMD_ACK && kind <= TR_CHATCMD_SHOW;
	if (has_ticket != (a.ticket > 0) || a.ticket > G_GINT64_CONSTANT(999999999999))
		abort();
	if (has_ticket && strchr(a.ticket_text, '-') == NULL)
		abort();
	if ((kind == TR_CHATCMD_ASSIGN) != (a.name[0] != '\0'))
		abort();
	if (!g_utf8_validate(a.name, -1, NULL))
		abort();
	for (const char *p = a.name; *p != '\0'; p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char(p);
		if (!g_unichar_isalnum(c) && c != '.' && c != '_' && c != '-' && c != '@' && c != '+')
			abort();
	}
	for (const char *p = a.team; *p != '\0'; p++) {
		if (!g_ascii_islower(*p) && !g_ascii_isdigit(*p) && *p != '-' && *p != '_')
			abort();
	}
	if (a.priority < 0 || a.priority > 4 || (a.priority != 0 && kind != TR_CHATCMD_OPEN))
		abort();
	if (a.topic != TR_CHATCMD_NONE && (kind != TR_CHATCMD_HELP || a.topic < TR_CHATCMD_ACK))
		abort();
	if (len > TR_CHATCMD_INPUT_MAX && kind != TR_CHATCMD_NONE && kind != TR_CHATCMD_INVALID)
		abort();
	return 0;
}
