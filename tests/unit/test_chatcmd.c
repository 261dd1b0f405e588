/* test_chatcmd.c — the chat-ops command parser, table-driven */
#include "testutil.h"
#include "channels/chatcmd.h"

#include <string.h>

typedef struct {
	const char *input;
	tr_chatcmd_kind kind;
	int64_t ticket;          /* expected ticket (0: none) */
	const char *extra;       /* name, team, "P<n>" or topic name; error substring for INVALID */
} row;

static const row rows[] = {
	/* not commands: conversation */
	{ "", TR_CHATCMD_NONE, 0, NULL },
	{ "   ", TR_CHATCMD_NONE, 0, NULL },
	{ "ack TKT-1", TR_CHATCMD_NONE, 0, NULL },
	{ "hello !ack TKT-1", TR_CHATCMD_NONE, 0, NULL },
	{ "¡ack TKT-1", TR_CHATCMD_NONE, 0, NULL },

	/* the commands */
	{ "!ack TKT-000123", TR_CHATCMD_ACK, 123, NULL },
	{ "!ACK tkt-123", TR_CHATCMD_ACK, 123, NULL },
	{ "  !Ack \t  TKT-123   ", TR_CHATCMD_ACK, 123, NULL },
	{ "!ack TKT-123\r\n", TR_CHATCMD_ACK, 123, NULL },
	{ "\n!ack TKT-123", TR_CHATCMD_ACK, 123, NULL },
	{ "!ack\u00a0TKT-123", TR_CHATCMD_ACK, 123, NULL },          /* no-break space */
	{ "!ack #123", TR_CHATCMD_ACK, 123, NULL },
	{ "!ack 123", TR_CHATCMD_ACK, 123, NULL },
	{ "!ack TKT-999999999999", TR_CHATCMD_ACK, 999999999999, NULL },
	{ "!claim TKT-7", TR_CHATCMD_CLAIM, 7, NULL },
	{ "!assign TKT-42 alice", TR_CHATCMD_ASSIGN, 42, "alice" },
	{ "!assign  tkt-42   bob.smith@example.org ", TR_CHATCMD_ASSIGN, 42, "bob.smith@example.org" },
	{ "!assign TKT-42 José", TR_CHATCMD_ASSIGN, 42, "José" },
	{ "!assign TKT-42 l2-oncall_team+1", TR_CHATCMD_ASSIGN, 42, "l2-oncall_team+1" },
	{ "!resolve TKT-5", TR_CHATCMD_RESOLVE, 5, NULL },
	{ "!pause TKT-5", TR_CHATCMD_PAUSE, 5, NULL },
	{ "!resume TKT-5", TR_CHATCMD_RESUME, 5, NULL },
	{ "!show TKT-5", TR_CHATCMD_SHOW, 5, NULL },
	{ "!open", TR_CHATCMD_OPEN, 0, "" },
	{ "!open P1", TR_CHATCMD_OPEN, 0, "P1" },
	{ "!open p4", TR_CHATCMD_OPEN, 0, "P4" },
	{ "!open Billing", TR_CHATCMD_OPEN, 0, "billing" },
	{ "!open l2-network_ops", TR_CHATCMD_OPEN, 0, "l2-network_ops" },
	{ "!help", TR_CHATCMD_HELP, 0, "none" },
	{ "!HELP assign", TR_CHATCMD_HELP, 0, "assign" },
	{ "!help !ack", TR_CHATCMD_HELP, 0, "ack" },

	/* strict about arguments */
	{ "!ack", TR_CHATCMD_INVALID, 0, "usage: !ack TKT-123" },
	{ "!ack TKT-1 TKT-2", TR_CHATCMD_INVALID, 0, "usage: !ack TKT-123" },
	{ "!ack TKT-1 a b c d e f", TR_CHATCMD_INVALID, 0, "usage: !ack TKT-123" },
	{ "!ack TKT-0", TR_CHATCMD_INVALID, 0, "not a ticket number" },
	{ "!ack TKT-", TR_CHATCMD_INVALID, 0, "not a ticket number" },
	{ "!ack TKT-12a", TR_CHATCMD_INVALID, 0, "not a ticket number" },
	{ "!ack ABC-123", TR_CHATCMD_INVALID, 0, "not a ticket number" },
	{ "!ack TKT-1234567890123", TR_CHATCMD_INVALID, 0, "not a ticket number" },
	{ "!ack -5", TR_CHATCMD_INVALID, 0, "not a ticket number" },
	{ "!ack #", TR_CHATCMD_INVALID, 0, "not a ticket number" },
	{ "!ack TKT-１２３", TR_CHATCMD_INVALID, 0, "not a ticket number" },      /* fullwidth digits */
	{ "!assign TKT-42", TR_CHATCMD_INVALID, 0, "usage: !assign TKT-123 NAME" },
	{ "!assign alice TKT-42", TR_CHATCMD_INVALID, 0, "usage: !assign TKT-123 NAME" },
	{ "!assign TKT-42 alice bob", TR_CHATCMD_INVALID, 0, "usage: !assign TKT-123 NAME" },
	{ "!assign TKT-42 .alice", TR_CHATCMD_INVALID, 0, "NAME: letters" },
	{ "!assign TKT-42 a;DROP", TR_CHATCMD_INVALID, 0, "NAME: letters" },
	{ "!assign TKT-42 $(reboot)", TR_CHATCMD_INVALID, 0, "NAME: letters" },
	{ "!assign TKT-42 <b>x</b>", TR_CHATCMD_INVALID, 0, "NAME: letters" },
	{ "!assign TKT-42 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	  TR_CHATCMD_INVALID, 0, "NAME: letters" },                             /* 65 bytes */
	{ "!open P5", TR_CHATCMD_INVALID, 0, "usage: !open" },
	{ "!open P1 billing", TR_CHATCMD_INVALID, 0, "usage: !open" },
	{ "!open bill'ing", TR_CHATCMD_INVALID, 0, "usage: !open" },
	{ "!help frobnicate", TR_CHATCMD_INVALID, 0, "usage: !help" },
	{ "!help ack claim", TR_CHATCMD_INVALID, 0, "usage: !help" },

	/* unknown, empty, hostile */
	{ "!", TR_CHATCMD_INVALID, 0, "needs a command" },
	{ "! ack TKT-1", TR_CHATCMD_INVALID, 0, "needs a command" },
	{ "!frobnicate", TR_CHATCMD_INVALID, 0, "unknown command !frobnicate" },
	{ "!DROP TKT-1", TR_CHATCMD_INVALID, 0, "unknown command !drop" },
	{ "!ack;rm -rf /", TR_CHATCMD_INVALID, 0, "unknown command; try !help" },
	{ "!<script>", TR_CHATCMD_INVALID, 0, "unknown command; try !help" },
	{ "!acknowledgeeeeeeeeeeeeeeeeeeeeee", TR_CHATCMD_INVALID, 0, "unknown command; try !help" },
	{ "!ack TKT-1\n!resolve TKT-1", TR_CHATCMD_INVALID, 0, "line breaks" },
	{ "!ack TKT-1\rX", TR_CHATCMD_INVALID, 0, "line breaks" },
	{ "!ack TKT-1\u2028", TR_CHATCMD_INVALID, 0, "control or invisible" },
	{ "!ack TKT-1\x1b[2J", TR_CHATCMD_INVALID, 0, "control or invisible" },
	{ "!ack TKT-1\x7f", TR_CHATCMD_INVALID, 0, "control or invisible" },
	{ "!ack TKT-1\xc2\x85", TR_CHATCMD_INVALID, 0, "control or invisible" },
	{ "!ack TKT-\u202e321", TR_CHATCMD_INVALID, 0, "control or invisible" },    /* RLO */
	{ "!ack\u200bTKT-1", TR_CHATCMD_INVALID, 0, "control or invisible" },      /* zero width */
	{ "!ack TKT-1\xff", TR_CHATCMD_INVALID, 0, "not valid UTF-8" },
	{ "!ack TKT-1 \xc3", TR_CHATCMD_INVALID, 0, "not valid UTF-8" },
};

static void check_row(const row *r, const char *prefix)
{
	tr_chatcmd cmd;
	tr_chatcmd_kind kind = tr_chatcmd_parse(r->input, strlen(r->input), prefix, &cmd);
	if (kind != r->kind)
		fail_msg("'%s': got %s (%s), want %s", r->input, tr_chatcmd_name(kind), cmd.error,
		         tr_chatcmd_name(r->kind));
	assert_int_equal(cmd.kind, kind);
	assert_int_equal(cmd.ticket, r->ticket);
	if (kind == TR_CHATCMD_INVALID) {
		assert_non_null(strstr(cmd.error, r->extra));
		for (const char *p = cmd.error; *p != '\0'; p++)
			assert_true(*p >= 0x20 && *p < 0x7f);
	} else {
		assert_string_equal(cmd.error, "");
	}
	if (kind == TR_CHATCMD_ASSIGN)
		assert_string_equal(cmd.name, r->extra);
	if (kind == TR_CHATCMD_OPEN) {
		if (r->extra[0] == 'P') {
			assert_int_equal(cmd.priority, r->extra[1] - '0');
			assert_string_equal(cmd.team, "");
		} else {
			assert_int_equal(cmd.priority, 0);
			assert_string_equal(cmd.team, r->extra);
		}
	}
	if (kind == TR_CHATCMD_HELP)
		assert_string_equal(tr_chatcmd_name(cmd.topic), r->extra);
	if (r->ticket > 0) {
		char want[64];
		g_snprintf(want, sizeof(want), "TKT-%06" G_GINT64_FORMAT, (gint64)r->ticket);
		assert_string_equal(cmd.ticket_text, want);
	}
}

static void test_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < G_N_ELEMENTS(rows); i++)
		check_row(&rows[i], "TKT");
	/* NULL or unusable prefixes fall back to TKT */
	for (size_t i = 0; i < G_N_ELEMENTS(rows); i++) {
		check_row(&rows[i], NULL);
		check_row(&rows[i], "T-K");
	}
}

static void test_configurable_prefix(void **state)
{
	(void)state;
	tr_chatcmd cmd;
	const char *t = "!ack sup-000042";
	assert_int_equal(tr_chatcmd_parse(t, strlen(t), "sup", &cmd), TR_CHATCMD_ACK);
	assert_int_equal(cmd.ticket, 42);
	assert_string_equal(cmd.ticket_text, "SUP-000042");
	t = "!ack TKT-42";
	assert_int_equal(tr_chatcmd_parse(t, strlen(t), "SUP", &cmd), TR_CHATCMD_INVALID);
	assert_string_equal(cmd.error, "usage: !ack SUP-123 (not a ticket number)");
	t = "!assign 7";
	assert_int_equal(tr_chatcmd_parse(t, strlen(t), "Case", &cmd), TR_CHATCMD_INVALID);
	assert_string_equal(cmd.error, "usage: !assign CASE-123 NAME");
}

static void test_length_and_buffers(void **state)
{
	(void)state;
	tr_chatcmd cmd;
	/* exactly at the limit is fine, one byte more is refused */
	char buf[TR_CHATCMD_INPUT_MAX + 2];
	memset(buf, ' ', sizeof(buf));
	memcpy(buf, "!ack TKT-1", 10);
	assert_int_equal(tr_chatcmd_parse(buf, TR_CHATCMD_INPUT_MAX, "TKT", &cmd), TR_CHATCMD_ACK);
	assert_int_equal(tr_chatcmd_parse(buf, TR_CHATCMD_INPUT_MAX + 1, "TKT", &cmd), TR_CHATCMD_INVALID);
	assert_string_equal(cmd.error, "command too long");
	/* a long ordinary message is conversation, not an error */
	char chat[2000];
	memset(chat, 'a', sizeof(chat));
	assert_int_equal(tr_chatcmd_parse(chat, sizeof(chat), "TKT", &cmd), TR_CHATCMD_NONE);
	/* not NUL-terminated: only len bytes count */
	const char noterm[] = { '!', 'a', 'c', 'k', ' ', '9', 'X', 'Y' };
	assert_int_equal(tr_chatcmd_parse(noterm, 6, "TKT", &cmd), TR_CHATCMD_ACK);
	assert_int_equal(cmd.ticket, 9);
	/* an embedded NUL is a control character */
	const char nul[] = "!ack TKT-1\0rest";
	assert_int_equal(tr_chatcmd_parse(nul, sizeof(nul) - 1, "TKT", &cmd), TR_CHATCMD_INVALID);
	assert_int_equal(tr_chatcmd_parse(NULL, 5, "TKT", &cmd), TR_CHATCMD_NONE);
	/* a 64-byte name fits */
	char assign[128];
	g_snprintf(assign, sizeof(assign), "!assign TKT-1 %064d", 7);
	assert_int_equal(tr_chatcmd_parse(assign, strlen(assign), "TKT", &cmd), TR_CHATCMD_ASSIGN);
	assert_int_equal(strlen(cmd.name), 64);
}

static void test_usage_and_help(void **state)
{
	(void)state;
	char buf[1024];
	assert_string_equal(tr_chatcmd_usage(TR_CHATCMD_ASSIGN, "tkt", buf, sizeof(buf)), "!assign TKT-123 NAME");
	assert_string_equal(tr_chatcmd_usage(TR_CHATCMD_OPEN, "TKT", buf, sizeof(buf)), "!open [P1|P2|P3|P4|TEAM]");
	assert_string_equal(tr_chatcmd_usage(TR_CHATCMD_NONE, "TKT", buf, sizeof(buf)), "!help");
	tr_chatcmd_help(TR_CHATCMD_NONE, "SUP", buf, sizeof(buf));
	assert_non_null(strstr(buf, "!ack SUP-123 — acknowledge"));
	assert_non_null(strstr(buf, "!help [COMMAND]"));
	int lines = 1;
	for (const char *p = buf; *p != '\0'; p++)
		lines += *p == '\n';
	assert_int_equal(lines, 9);
	tr_chatcmd_help(TR_CHATCMD_PAUSE, "TKT", buf, sizeof(buf));
	assert_string_equal(buf, "!pause TKT-123 — stop the ticket's SLA clocks");
	/* a small buffer is cut, never overrun */
	char small[8];
	tr_chatcmd_help(TR_CHATCMD_NONE, "TKT", small, sizeof(small));
	assert_int_equal(strlen(small), 7);
	assert_string_equal(tr_chatcmd_name(TR_CHATCMD_INVALID), "invalid");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_configurable_prefix),
		cmocka_unit_test(test_length_and_buffers),
		cmocka_unit_test(test_usage_and_help),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
