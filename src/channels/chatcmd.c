/* chatcmd.c — chat-ops command parser; see chatcmd.h */
#include "channels/chatcmd.h"

#include <stdio.h>
#include <string.h>

#include <glib.h>

typedef enum {
	ARGS_TICKET,         /* TKT-123 */
	ARGS_TICKET_NAME,    /* TKT-123 NAME */
	ARGS_FILTER,         /* [P1..P4|TEAM] */
	ARGS_TOPIC,          /* [COMMAND] */
} arg_spec;

typedef struct {
	tr_chatcmd_kind kind;
	const char *name;
	arg_spec args;
	const char *doc;
} command_def;

/* One row per command: the parser, the usage lines and !help use it. */
static const command_def commands[] = {
	{ TR_CHATCMD_ACK, "ack", ARGS_TICKET, "acknowledge the escalation" },
	{ TR_CHATCMD_CLAIM, "claim", ARGS_TICKET, "take the ticket yourself" },
	{ TR_CHATCMD_ASSIGN, "assign", ARGS_TICKET_NAME, "give the ticket to NAME" },
	{ TR_CHATCMD_RESOLVE, "resolve", ARGS_TICKET, "mark the ticket resolved" },
	{ TR_CHATCMD_PAUSE, "pause", ARGS_TICKET, "stop the ticket's SLA clocks" },
	{ TR_CHATCMD_RESUME, "resume", ARGS_TICKET, "start the ticket's SLA clocks again" },
	{ TR_CHATCMD_SHOW, "show", ARGS_TICKET, "show the ticket" },
	{ TR_CHATCMD_OPEN, "open", ARGS_FILTER, "list open tickets, optionally of one priority or team" },
	{ TR_CHATCMD_HELP, "help", ARGS_TOPIC, "list the commands, or explain one" },
};

#define MAX_WORDS 4

typedef struct {
	const char *start;
	size_t len;
} word;

static const command_def *find_command(tr_chatcmd_kind kind)
{
	for (size_t i = 0; i < G_N_ELEMENTS(commands); i++) {
		if (commands[i].kind == kind)
			return &commands[i];
	}
	return NULL;
}

static const command_def *lookup(const char *name, size_t len)
{
	for (size_t i = 0; i < G_N_ELEMENTS(commands); i++) {
		if (strlen(commands[i].name) == len && g_ascii_strncasecmp(commands[i].name, name, len) == 0)
			return &commands[i];
	}
	return NULL;
}

static bool prefix_valid(const char *prefix)
{
	if (prefix == NULL)
		return false;
	size_t len = strlen(prefix);
	if (len == 0 || len > TR_CHATCMD_PREFIX_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!g_ascii_isalnum(prefix[i]))
			return false;
	}
	return true;
}

static void pick_prefix(const char *given, char out[TR_CHATCMD_PREFIX_MAX + 1])
{
	const char *p = prefix_valid(given) ? given : "TKT";
	size_t i = 0;
	for (; p[i] != '\0'; i++)
		out[i] = g_ascii_toupper(p[i]);
	out[i] = '\0';
}

const char *tr_chatcmd_name(tr_chatcmd_kind kind)
{
	const command_def *c = find_command(kind);
	if (c != NULL)
		return c->name;
	return kind == TR_CHATCMD_INVALID ? "invalid" : "none";
}

static const char *usage_of(const command_def *c, const char *prefix, char *buf, size_t size)
{
	switch (c->args) {
	case ARGS_TICKET:
		g_snprintf(buf, size, "!%s %s-123", c->name, prefix);
		break;
	case ARGS_TICKET_NAME:
		g_snprintf(buf, size, "!%s %s-123 NAME", c->name, prefix);
		break;
	case ARGS_FILTER:
		g_snprintf(buf, size, "!%s [P1|P2|P3|P4|TEAM]", c->name);
		break;
	case ARGS_TOPIC:
		g_snprintf(buf, size, "!%s [COMMAND]", c->name);
		break;
	}
	return buf;
}

const char *tr_chatcmd_usage(tr_chatcmd_kind kind, const char *ticket_prefix, char *buf, size_t size)
{
	char prefix[TR_CHATCMD_PREFIX_MAX + 1];
	pick_prefix(ticket_prefix, prefix);
	const command_def *c = find_command(kind);
	if (c == NULL) {
		g_snprintf(buf, size, "!help");
		return buf;
	}
	return usage_of(c, prefix, buf, size);
}

const char *tr_chatcmd_help(tr_chatcmd_kind topic, const char *ticket_prefix, char *buf, size_t size)
{
	char prefix[TR_CHATCMD_PREFIX_MAX + 1];
	pick_prefix(ticket_prefix, prefix);
	GString *out = g_string_new(NULL);
	char usage[96];
	const command_def *only = find_command(topic);
	for (size_t i = 0; i < G_N_ELEMENTS(commands); i++) {
		if (only != NULL && &commands[i] != only)
			continue;
		if (out->len > 0)
			g_string_append_c(out, '\n');
		g_string_append_printf(out, "%s — %s", usage_of(&commands[i], prefix, usage, sizeof(usage)),
		                       commands[i].doc);
	}
	g_strlcpy(buf, out->str, size);
	g_string_free(out, TRUE);
	return buf;
}

static tr_chatcmd_kind invalid(tr_chatcmd *cmd, const char *text)
{
	memset(cmd, 0, sizeof(*cmd));
	cmd->kind = TR_CHATCMD_INVALID;
	g_strlcpy(cmd->error, text, sizeof(cmd->error));
	return cmd->kind;
}

static tr_chatcmd_kind usage_error(tr_chatcmd *cmd, const command_def *c, const char *prefix, const char *extra)
{
	char usage[96], text[192];
	usage_of(c, prefix, usage, sizeof(usage));
	g_snprintf(text, sizeof(text), "usage: %s%s", usage, extra != NULL ? extra : "");
	return invalid(cmd, text);
}

static bool is_blank(gunichar c)
{
	return c == ' ' || c == '\t' || g_unichar_type(c) == G_UNICODE_SPACE_SEPARATOR;
}

static bool is_forbidden(gunichar c)
{
	return (c < 0x20 && c != '\t') || c == 0x7f || (c >= 0x80 && c <= 0x9f) ||
	       g_unichar_type(c) == G_UNICODE_FORMAT || g_unichar_type(c) == G_UNICODE_LINE_SEPARATOR ||
	       g_unichar_type(c) == G_UNICODE_PARAGRAPH_SEPARATOR;
}

/* PREFIX-123, #123 or 123 (1..12 digits, not zero). */
static bool parse_ticket(const word *w, const char *prefix, tr_chatcmd *cmd)
{
	const char *p = w->start;
	size_t n = w->len;
	size_t plen = strlen(prefix);
	if (n > plen && p[plen] == '-' && g_ascii_strncasecmp(p, prefix, plen) == 0) {
		p += plen + 1;
		n -= plen + 1;
	} else if (n > 1 && p[0] == '#') {
		p++;
		n--;
	}
	if (n == 0 || n > TR_CHATCMD_TICKET_DIGITS)
		return false;
	int64_t value = 0;
	for (size_t i = 0; i < n; i++) {
		if (!g_ascii_isdigit(p[i]))
			return false;
		value = value * 10 + (p[i] - '0');
	}
	if (value <= 0)
		return false;
	cmd->ticket = value;
	g_snprintf(cmd->ticket_text, sizeof(cmd->ticket_text), "%s-%06" G_GINT64_FORMAT, prefix, (gint64)value);
	return true;
}

/* Letters and digits (any script), then also . _ - @ + */
static bool parse_name(const word *w, tr_chatcmd *cmd)
{
	if (w->len == 0 || w->len > TR_CHATCMD_NAME_MAX)
		return false;
	const char *end = w->start + w->len;
	for (const char *p = w->start; p < end; p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char(p);
		bool punct = c == '.' || c == '_' || c == '-' || c == '@' || c == '+';
		bool ok = g_unichar_isalnum(c) || (p != w->start && punct);
		if (!ok)
			return false;
	}
	memcpy(cmd->name, w->start, w->len);
	cmd->name[w->len] = '\0';
	return true;
}

static bool parse_filter(const word *w, tr_chatcmd *cmd)
{
	if (w->len >= 2 && (w->start[0] == 'p' || w->start[0] == 'P') && g_ascii_isdigit(w->start[1])) {
		/* P<digits> is a priority, never a team: only P1..P4 exist */
		if (w->len != 2 || w->start[1] < '1' || w->start[1] > '4')
			return false;
		cmd->priority = w->start[1] - '0';
		return true;
	}
	if (w->len == 0 || w->len > TR_CHATCMD_TEAM_MAX || !g_ascii_isalnum(w->start[0]))
		return false;
	for (size_t i = 0; i < w->len; i++) {
		char c = w->start[i];
		if (!g_ascii_isalnum(c) && c != '-' && c != '_')
			return false;
		cmd->team[i] = g_ascii_tolower(c);
	}
	cmd->team[w->len] = '\0';
	return true;
}

static bool parse_topic(const word *w, tr_chatcmd *cmd)
{
	const char *p = w->start;
	size_t n = w->len;
	if (n > 0 && p[0] == '!') {
		p++;
		n--;
	}
	const command_def *c = lookup(p, n);
	if (c == NULL)
		return false;
	cmd->topic = c->kind;
	return true;
}

static bool safe_name(const char *p, size_t n)
{
	if (n == 0 || n > 16)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!g_ascii_isalnum(p[i]))
			return false;
	}
	return true;
}

tr_chatcmd_kind tr_chatcmd_parse(const char *text, size_t len, const char *ticket_prefix, tr_chatcmd *cmd)
{
	memset(cmd, 0, sizeof(*cmd));
	cmd->kind = TR_CHATCMD_NONE;
	if (text == NULL)
		return cmd->kind;
	char prefix[TR_CHATCMD_PREFIX_MAX + 1];
	pick_prefix(ticket_prefix, prefix);

	const char *start = text, *end = text + len;
	while (start < end && (*start == ' ' || *start == '\t' || *start == '\r' || *start == '\n'))
		start++;
	if (start == end || *start != '!')
		return cmd->kind; /* conversation, not a command */
	if (len > TR_CHATCMD_INPUT_MAX)
		return invalid(cmd, "command too long");
	while (end > start && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n'))
		end--;
	if (!g_utf8_validate_len(start, (gsize)(end - start), NULL))
		return invalid(cmd, "not valid UTF-8");

	word words[MAX_WORDS];
	size_t n_words = 0, extra_words = 0;
	const char *w = NULL;
	for (const char *p = start; p <= end; ) {
		gunichar c = p < end ? g_utf8_get_char(p) : ' ';
		if (c == '\n' || c == '\r')
			return invalid(cmd, "one command per message, without line breaks");
		if (p < end && is_forbidden(c))
			return invalid(cmd, "control or invisible formatting characters are not allowed");
		if (is_blank(c)) {
			if (w != NULL) {
				if (n_words < MAX_WORDS)
					words[n_words++] = (word){ w, (size_t)(p - w) };
				else
					extra_words++;
				w = NULL;
			}
		} else if (w == NULL) {
			w = p;
		}
		if (p == end)
			break;
		p = g_utf8_next_char(p);
	}

	const word *name = &words[0];
	if (name->len == 1)
		return invalid(cmd, "'!' needs a command; try !help");
	const command_def *c = lookup(name->start + 1, name->len - 1);
	if (c == NULL) {
		char msg[96];
		if (safe_name(name->start + 1, name->len - 1)) {
			char lower[17];
			for (size_t i = 0; i < name->len - 1; i++)
				lower[i] = g_ascii_tolower(name->start[1 + i]);
			lower[name->len - 1] = '\0';
			g_snprintf(msg, sizeof(msg), "unknown command !%s; try !help", lower);
		} else {
			g_snprintf(msg, sizeof(msg), "unknown command; try !help");
		}
		return invalid(cmd, msg);
	}
	size_t n_args = n_words - 1 + extra_words;
	const word *args = &words[1];
	switch (c->args) {
	case ARGS_TICKET:
		if (n_args != 1)
			return usage_error(cmd, c, prefix, NULL);
		if (!parse_ticket(&args[0], prefix, cmd))
			return usage_error(cmd, c, prefix, " (not a ticket number)");
		break;
	case ARGS_TICKET_NAME:
		if (n_args != 2)
			return usage_error(cmd, c, prefix, NULL);
		if (!parse_ticket(&args[0], prefix, cmd))
			return usage_error(cmd, c, prefix, " (not a ticket number)");
		if (!parse_name(&args[1], cmd))
			return usage_error(cmd, c, prefix, " (NAME: letters, digits, . _ - @ +)");
		break;
	case ARGS_FILTER:
		if (n_args > 1)
			return usage_error(cmd, c, prefix, NULL);
		if (n_args == 1 && !parse_filter(&args[0], cmd))
			return usage_error(cmd, c, prefix, " (P1..P4, or TEAM: letters, digits, - _)");
		break;
	case ARGS_TOPIC:
		if (n_args > 1)
			return usage_error(cmd, c, prefix, NULL);
		if (n_args == 1 && !parse_topic(&args[0], cmd))
			return usage_error(cmd, c, prefix, " (unknown command)");
		break;
	}
	cmd->kind = c->kind;
	return cmd->kind;
}
