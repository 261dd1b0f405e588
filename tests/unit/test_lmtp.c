/* test_lmtp.c — the LMTP/SMTP protocol state machine, table-driven.
 *
 * Every case runs three times — the whole input at once, one byte at a
 * time, and in 7-byte pieces — and must give the same replies each time.
 * A fake delivery hook records what it got and answers per recipient
 * from a letter string: D delivered, T temporary, F disk full, R reject. */
#include "testutil.h"

#include <string.h>

#include "channels/lmtp.h"

typedef struct {
	const char *results;   /* per recipient; NULL: all delivered */
	int code;              /* a code to report (tests the class check) */
	const char *text;
	unsigned calls;
	GString *data;
	char *mail_from;
	GPtrArray *rcpts;
	bool lmtp, body_8bit;
} fake_hook;

static void fake_deliver(void *context, const tr_lmtp_envelope *env, tr_lmtp_rcpt_status *status)
{
	fake_hook *f = context;
	f->calls++;
	g_string_assign(f->data, "");
	g_string_append_len(f->data, env->data, (gssize)env->len);
	g_free(f->mail_from);
	f->mail_from = g_strdup(env->mail_from);
	g_ptr_array_set_size(f->rcpts, 0);
	f->lmtp = env->lmtp;
	f->body_8bit = env->body_8bit;
	for (size_t i = 0; i < env->rcpts_count; i++) {
		g_ptr_array_add(f->rcpts, g_strdup(env->rcpts[i]));
		char r = f->results != NULL && i < strlen(f->results) ? f->results[i] : 'D';
		status[i].result = r == 'T' ? TR_LMTP_DEFER : r == 'F' ? TR_LMTP_DEFER_FULL
		                 : r == 'R' ? TR_LMTP_REJECT : r == 'N' ? status[i].result : TR_LMTP_DELIVERED;
		status[i].code = f->code;
		if (f->text != NULL)
			g_strlcpy(status[i].text, f->text, sizeof(status[i].text));
	}
}

typedef struct {
	const char *name;
	const char *input;
	size_t input_len;        /* 0: strlen(input) */
	const char *codes;       /* the final reply line codes, space separated */
	const char *results;     /* fake hook answers */
	const char *want_data;   /* what the hook must have got (NULL: not checked) */
	const char *want_text;   /* a substring of the replies (NULL: not checked) */
	int64_t recipients, errors, message_bytes, command_bytes;
	int hook_code;
	const char *hook_text;
	bool no_hook;
	int calls;               /* expected hook calls; -1: not checked */
} lmtp_case;

#define LHLO "LHLO client.test\r\n"
#define EHLO "EHLO client.test\r\n"
#define MAIL "MAIL FROM:<alice@example.org>\r\n"
#define RCPT1 "RCPT TO:<support@example.test>\r\n"
#define RCPT2 "RCPT TO:<billing@example.test>\r\n"
#define A64 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define MSG "Subject: hi\r\n\r\nbody\r\n.\r\n"

static const lmtp_case cases[] = {
	{ "lmtp: one reply per recipient", LHLO MAIL RCPT1 RCPT2 "DATA\r\n" MSG "QUIT\r\n", 0,
	  "220 250 250 250 250 354 250 250 221", NULL, "Subject: hi\r\n\r\nbody\r\n", NULL, .calls = 1 },
	{ "smtp: one reply per transaction", EHLO MAIL RCPT1 RCPT2 "DATA\r\n" MSG "QUIT\r\n", 0,
	  "220 250 250 250 250 354 250 221", NULL, NULL, NULL, .calls = 1 },
	{ "helo: plain SMTP, no parameters", "HELO c\r\nMAIL FROM:<a@b.test> SIZE=10\r\n" MAIL "QUIT\r\n", 0,
	  "220 250 555 250 221", NULL, NULL, "555 5.5.4", .calls = 0 },
	{ "ehlo advertises the extensions", EHLO, 0, "220 250", NULL, NULL,
	  "250-PIPELINING\r\n250-SIZE 1000000\r\n250-ENHANCEDSTATUSCODES\r\n250 8BITMIME\r\n",
	  .message_bytes = 1000000, .calls = 0 },
	{ "two messages in one connection", LHLO MAIL RCPT1 "DATA\r\n" MSG MAIL RCPT2 "DATA\r\n" MSG "QUIT\r\n", 0,
	  "220 250 250 250 354 250 250 250 354 250 221", NULL, NULL, NULL, .calls = 2 },
	{ "dot-stuffing is undone", LHLO MAIL RCPT1 "DATA\r\n..leading\r\n. x\r\n...\r\nend\r\n.\r\n", 0,
	  "220 250 250 250 354 250", NULL, ".leading\r\n x\r\n..\r\nend\r\n", NULL, .calls = 1 },
	{ "bare LF line ends become CRLF", "LHLO c\nMAIL FROM:<a@b.test>\nRCPT TO:<c@d.test>\nDATA\nA: b\n\nx\n.\n", 0,
	  "220 250 250 250 354 250", NULL, "A: b\r\n\r\nx\r\n", NULL, .calls = 1 },
	{ "a bare CR inside a line is text", LHLO MAIL RCPT1 "DATA\r\na\rb\r\r\n.\r\n", 0,
	  "220 250 250 250 354 250", NULL, "a\rb\r\r\n", NULL, .calls = 1 },
	{ "'.' then CR then text: stuffing dot removed", LHLO MAIL RCPT1 "DATA\r\n.\rx\r\n.\r\n", 0,
	  "220 250 250 250 354 250", NULL, "\rx\r\n", NULL, .calls = 1 },
	{ "an empty message", LHLO MAIL RCPT1 "DATA\r\n.\r\n", 0, "220 250 250 250 354 250", NULL, "", NULL, .calls = 1 },
	{ "NUL bytes in the text are kept", LHLO MAIL RCPT1 "DATA\r\na\0b\r\n.\r\n", sizeof(LHLO MAIL RCPT1 "DATA\r\na\0b\r\n.\r\n") - 1,
	  "220 250 250 250 354 250", NULL, NULL, NULL, .calls = 1 },
	{ "NUL in a command: 500", LHLO "NO\0OP\r\nNOOP\r\n", sizeof(LHLO "NO\0OP\r\nNOOP\r\n") - 1,
	  "220 250 500 250", NULL, NULL, "500 5.5.2 Error: NUL", .calls = 0 },
	{ "pipelined with lower-case verbs", "lhlo c\r\nmail from:<a@b.test>\r\nrcpt to:<c@d.test>\r\ndata\r\nx\r\n.\r\nquit\r\n", 0,
	  "220 250 250 250 354 250 221", NULL, "x\r\n", NULL, .calls = 1 },
	{ "MAIL SIZE= over the limit: 552 5.3.4", LHLO "MAIL FROM:<a@b.test> SIZE=2000\r\n" MAIL, 0,
	  "220 250 552 250", NULL, NULL, "552 5.3.4", .message_bytes = 1024, .calls = 0 },
	{ "MAIL SIZE= under the limit, BODY=8BITMIME", LHLO "MAIL FROM:<a@b.test> SIZE=100 BODY=8BITMIME\r\n" RCPT1 "DATA\r\nx\r\n.\r\n", 0,
	  "220 250 250 250 354 250", NULL, NULL, NULL, .message_bytes = 1024, .calls = 1 },
	{ "a bad SIZE= value: 501", LHLO "MAIL FROM:<a@b.test> SIZE=12x\r\n", 0, "220 250 501", NULL, NULL, "501 5.5.4", .calls = 0 },
	{ "a huge SIZE= value: 552", LHLO "MAIL FROM:<a@b.test> SIZE=99999999999999999999999\r\n", 0,
	  "220 250 552", NULL, NULL, NULL, .calls = 0 },
	{ "too big while receiving: 552 per recipient, nothing delivered",
	  LHLO MAIL RCPT1 RCPT2 "DATA\r\n"
	  "0123456789012345678901234567890123456789\r\n0123456789012345678901234567890123456789\r\n.\r\n" "NOOP\r\n", 0,
	  "220 250 250 250 250 354 552 552 250", NULL, NULL, "552 5.3.4", .message_bytes = 50, .calls = 0 },
	{ "too big in SMTP mode: one 552", EHLO MAIL RCPT1 RCPT2 "DATA\r\n"
	  "0123456789012345678901234567890123456789\r\n0123456789012345678901234567890123456789\r\n.\r\n", 0,
	  "220 250 250 250 250 354 552", NULL, NULL, NULL, .message_bytes = 50, .calls = 0 },
	{ "after a too-big message the next one works", LHLO MAIL RCPT1 "DATA\r\n"
	  "0123456789012345678901234567890123456789012345678901234567890123456789\r\n.\r\n" MAIL RCPT1 "DATA\r\nsmall\r\n.\r\n", 0,
	  "220 250 250 250 354 552 250 250 354 250", NULL, "small\r\n", NULL, .message_bytes = 50, .calls = 1 },
	{ "unknown unknown command: 500", LHLO "FOO bar\r\n", 0, "220 250 500", NULL, NULL, "500 5.5.2", .calls = 0 },
	{ "an empty line: 500", LHLO "\r\n", 0, "220 250 500", NULL, NULL, NULL, .calls = 0 },
	{ "not implemented: 502", LHLO "EXPN staff\r\nSTARTTLS\r\nBDAT 10 LAST\r\n", 0, "220 250 502 502 502", NULL, NULL,
	  "502 5.5.1", .calls = 0 },
	{ "VRFY: 252, without argument 501", LHLO "VRFY bob\r\nVRFY\r\n", 0, "220 250 252 501", NULL, NULL, "252 2.5.2", .calls = 0 },
	{ "NOOP, HELP, RSET", "NOOP\r\nHELP\r\nRSET\r\nRSET x\r\n", 0, "220 250 214 250 501", NULL, NULL, NULL, .calls = 0 },
	{ "a command line over the limit: 500 5.5.2, then normal",
	  LHLO "NOOP 0123456789012345678901234567890123456789012345678901234567890123456789"
	  "0123456789012345678901234567890123456789012345678901234567890123456789"
	  "0123456789012345678901234567890123456789012345678901234567890123456789"
	  "0123456789012345678901234567890123456789012345678901234567890123456789"
	  "0123456789012345678901234567890123456789012345678901234567890123456789"
	  "0123456789012345678901234567890123456789012345678901234567890123456789"
	  "0123456789012345678901234567890123456789012345678901234567890123456789"
	  "0123456789012345678901234567890123456789012345678901234567890123456789\r\nNOOP\r\n", 0,
	  "220 250 500 250", NULL, NULL, "500 5.5.2 Error: line too long", .command_bytes = 512, .calls = 0 },
	{ "MAIL before LHLO: 503", MAIL LHLO, 0, "220 503 250", NULL, NULL, "503 5.5.1", .calls = 0 },
	{ "RCPT before MAIL: 503", LHLO RCPT1, 0, "220 250 503", NULL, NULL, "503 5.5.1", .calls = 0 },
	{ "nested MAIL: 503", LHLO MAIL MAIL, 0, "220 250 250 503", NULL, NULL, NULL, .calls = 0 },
	{ "DATA without recipients (LMTP): 503", LHLO MAIL "DATA\r\n", 0, "220 250 250 503", NULL, NULL, NULL, .calls = 0 },
	{ "DATA without recipients (SMTP): 554", EHLO MAIL "DATA\r\n", 0, "220 250 250 554", NULL, NULL, "554 5.5.1", .calls = 0 },
	{ "DATA without MAIL: 503", LHLO "DATA\r\n", 0, "220 250 503", NULL, NULL, NULL, .calls = 0 },
	{ "DATA with an argument: 501", LHLO MAIL RCPT1 "DATA x\r\n", 0, "220 250 250 250 501", NULL, NULL, NULL, .calls = 0 },
	{ "pipelined group after a failed MAIL: every step fails in order",
	  LHLO "MAIL FROM:<bad>\r\n" RCPT1 "DATA\r\n" "NOOP\r\n", 0, "220 250 501 503 503 250", NULL, NULL, "501 5.1.7", .calls = 0 },
	{ "too many recipients: 452 4.5.3", LHLO MAIL RCPT1 RCPT2 "RCPT TO:<third@example.test>\r\nDATA\r\nx\r\n.\r\n", 0,
	  "220 250 250 250 250 452 354 250 250", NULL, NULL, "452 4.5.3", .recipients = 2, .calls = 1 },
	{ "MAIL without brackets: 501 5.5.4", LHLO "MAIL FROM:alice@example.org\r\n", 0, "220 250 501", NULL, NULL, "501 5.5.4", .calls = 0 },
	{ "MAIL without a domain: 501 5.1.7", LHLO "MAIL FROM:<alice>\r\n", 0, "220 250 501", NULL, NULL, "501 5.1.7", .calls = 0 },
	{ "MAIL with junk after '>': 501", LHLO "MAIL FROM:<a@b.test>x\r\n", 0, "220 250 501", NULL, NULL, NULL, .calls = 0 },
	{ "MAIL FROM:<> (null sender) and a space after the colon", LHLO "MAIL FROM: <>\r\n" RCPT1 "DATA\r\nx\r\n.\r\n", 0,
	  "220 250 250 250 354 250", NULL, NULL, NULL, .calls = 1 },
	{ "MAIL with an unknown parameter: 555", LHLO "MAIL FROM:<a@b.test> RET=FULL\r\n", 0, "220 250 555", NULL, NULL, "555 5.5.4", .calls = 0 },
	{ "RCPT TO:<> : 501 5.1.3", LHLO MAIL "RCPT TO:<>\r\n", 0, "220 250 250 501", NULL, NULL, "501 5.1.3", .calls = 0 },
	{ "RCPT with a space in the address: 501", LHLO MAIL "RCPT TO:<a b@example.test>\r\n", 0, "220 250 250 501", NULL, NULL, NULL, .calls = 0 },
	{ "RCPT with a bad domain: 501", LHLO MAIL "RCPT TO:<a@bad..example>\r\nRCPT TO:<a@.x>\r\nRCPT TO:<a@>\r\n", 0,
	  "220 250 250 501 501 501", NULL, NULL, NULL, .calls = 0 },
	{ "RCPT with 8-bit bytes (no SMTPUTF8): 501", LHLO MAIL "RCPT TO:<j\xc3\xbcrgen@example.test>\r\n", 0,
	  "220 250 250 501", NULL, NULL, NULL, .calls = 0 },
	{ "RCPT with a parameter: 555", LHLO MAIL "RCPT TO:<a@b.test> NOTIFY=NEVER\r\n", 0, "220 250 250 555", NULL, NULL, NULL, .calls = 0 },
	{ "RCPT forms that are valid: postmaster, quoted, literal, source route",
	  LHLO MAIL "RCPT TO:<Postmaster>\r\nRCPT TO:<\"john doe\"@example.test>\r\nRCPT TO:<a@[192.0.2.1]>\r\n"
	  "RCPT TO:<@relay.test,@other.test:bob@example.test>\r\nDATA\r\nx\r\n.\r\n", 0,
	  "220 250 250 250 250 250 250 354 250 250 250 250", NULL, NULL, NULL, .calls = 1 },
	{ "an address over address_bytes: 501", LHLO "MAIL FROM:<" A64 A64 A64 A64 "@example.test>\r\n", 0,
	  "220 250 501", NULL, NULL, NULL, .calls = 0 },
	{ "RSET ends the transaction", LHLO MAIL RCPT1 "RSET\r\nDATA\r\n" MAIL "QUIT\r\n", 0,
	  "220 250 250 250 250 503 250 221", NULL, NULL, NULL, .calls = 0 },
	{ "input after QUIT is ignored", LHLO "QUIT\r\nNOOP\r\nFOO\r\n", 0, "220 250 221", NULL, NULL, NULL, .calls = 0 },
	{ "too many errors: 421 and closed", LHLO "A\r\nB\r\nC\r\nNOOP\r\n", 0, "220 250 500 500 500 421", NULL, NULL,
	  "421 4.7.0", .errors = 3, .calls = 0 },
	{ "LMTP: a status per recipient from the hook", LHLO MAIL RCPT1 RCPT2 "RCPT TO:<c@example.test>\r\nRCPT TO:<d@example.test>\r\nDATA\r\nx\r\n.\r\n", 0,
	  "220 250 250 250 250 250 250 354 250 451 452 550", "DTFR", NULL, "452 4.3.1", .calls = 1 },
	{ "SMTP: mixed outcomes are retried: 451", EHLO MAIL RCPT1 RCPT2 "DATA\r\nx\r\n.\r\n", 0,
	  "220 250 250 250 250 354 451", "DR", NULL, "451 4.3.0", .calls = 1 },
	{ "SMTP: all rejected: 550", EHLO MAIL RCPT1 RCPT2 "DATA\r\nx\r\n.\r\n", 0, "220 250 250 250 250 354 550", "RR", NULL, NULL, .calls = 1 },
	{ "SMTP: all full: 452", EHLO MAIL RCPT1 "DATA\r\nx\r\n.\r\n", 0, "220 250 250 250 354 452", "F", NULL, "452 4.3.1", .calls = 1 },
	{ "no hook: 451, never 250", LHLO MAIL RCPT1 "DATA\r\nx\r\n.\r\n", 0, "220 250 250 250 354 451", NULL, NULL, "451 4.3.0",
	  .no_hook = true, .calls = 0 },
	{ "a hook that leaves the status alone: 451", LHLO MAIL RCPT1 "DATA\r\nx\r\n.\r\n", 0, "220 250 250 250 354 451", "N", NULL, NULL, .calls = 1 },
	{ "a hook's code of the wrong class is not used", LHLO MAIL RCPT1 "DATA\r\nx\r\n.\r\n", 0, "220 250 250 250 354 451", "T", NULL,
	  "451 4.3.0 5.1.1 gone", .hook_code = 550, .hook_text = "5.1.1 gone", .calls = 1 },
	{ "a hook's text with CR/LF cannot inject a reply", LHLO MAIL RCPT1 "DATA\r\nx\r\n.\r\n", 0, "220 250 250 250 354 250", "D", NULL,
	  "250 2.0.0 ok  250 fake", .hook_text = "2.0.0 ok\r\n250 fake", .calls = 1 },
};

static void collect_codes(const GString *out, GString *codes, const char *name)
{
	const char *p = out->str, *end = out->str + out->len;
	while (p < end) {
		const char *crlf = g_strstr_len(p, end - p, "\r\n");
		if (crlf == NULL)
			fail_msg("%s: reply without CRLF: '%s'", name, p);
		if (crlf - p < 3 || !g_ascii_isdigit(p[0]) || !g_ascii_isdigit(p[1]) || !g_ascii_isdigit(p[2]) ||
		    (crlf - p > 3 && p[3] != ' ' && p[3] != '-'))
			fail_msg("%s: malformed reply line '%.*s'", name, (int)(crlf - p), p);
		if (crlf - p == 3 || p[3] == ' ') {
			if (codes->len > 0)
				g_string_append_c(codes, ' ');
			g_string_append_len(codes, p, 3);
		}
		p = crlf + 2;
	}
}

static void settings_for(const lmtp_case *c, tr_lmtp_settings *settings)
{
	tr_lmtp_settings_default(settings);
	g_free(settings->hostname);
	settings->hostname = g_strdup("lmtp.test");
	if (c->recipients)
		settings->limits.recipients = c->recipients;
	if (c->errors)
		settings->limits.errors = c->errors;
	if (c->message_bytes)
		settings->limits.message_bytes = c->message_bytes;
	if (c->command_bytes)
		settings->limits.command_bytes = c->command_bytes;
}

/* Run one case with the input cut into pieces of `piece` bytes (0: whole). */
static char *run_case(const lmtp_case *c, size_t piece, fake_hook *fake)
{
	tr_lmtp_settings settings;
	settings_for(c, &settings);
	tr_lmtp_hook hook = { fake_deliver, fake };
	tr_lmtp_session *s = tr_lmtp_session_new(&settings, c->no_hook ? NULL : &hook, NULL, NULL);
	GString *out = g_string_new(NULL);
	tr_lmtp_session_greet(s, out);
	size_t len = c->input_len != 0 ? c->input_len : strlen(c->input);
	if (piece == 0)
		piece = len;
	for (size_t off = 0; off < len; off += piece)
		tr_lmtp_session_feed(s, c->input + off, MIN(piece, len - off), out);
	tr_lmtp_session_free(&s);
	tr_lmtp_settings_clear(&settings);
	return g_string_free(out, FALSE);
}

/* One case of the table (cmocka prestate), three ways of cutting the input. */
static void test_case(void **state)
{
	const lmtp_case *c = *state;
	char *first = NULL;
	static const size_t pieces[] = { 0, 1, 7 };
	for (size_t k = 0; k < G_N_ELEMENTS(pieces); k++) {
		fake_hook fake = { .results = c->results, .code = c->hook_code, .text = c->hook_text,
		                   .data = g_string_new(NULL), .rcpts = g_ptr_array_new_with_free_func(g_free) };
		char *out = run_case(c, pieces[k], &fake);
		GString *out_s = g_string_new(out);
		GString *codes = g_string_new(NULL);
		collect_codes(out_s, codes, c->name);
		if (strcmp(codes->str, c->codes) != 0)
			fail_msg("%s (pieces of %zu): replies '%s', want '%s'\n%s", c->name, pieces[k], codes->str,
			         c->codes, out);
		if (c->want_text != NULL && strstr(out, c->want_text) == NULL)
			fail_msg("%s: '%s' not in the replies:\n%s", c->name, c->want_text, out);
		if (c->calls >= 0 && fake.calls != (unsigned)c->calls)
			fail_msg("%s: hook called %u times, want %d", c->name, fake.calls, c->calls);
		if (c->want_data != NULL && (fake.data->len != strlen(c->want_data) ||
		                             memcmp(fake.data->str, c->want_data, fake.data->len) != 0))
			fail_msg("%s: the hook got '%s', want '%s'", c->name, g_strescape(fake.data->str, NULL),
			         g_strescape(c->want_data, NULL));
		if (first == NULL)
			first = g_strdup(out);
		else if (strcmp(first, out) != 0)
			fail_msg("%s: pieces of %zu give other replies:\n%s\nthan at once:\n%s", c->name, pieces[k],
			         out, first);
		g_string_free(codes, TRUE);
		g_string_free(out_s, TRUE);
		g_free(out);
		g_string_free(fake.data, TRUE);
		g_ptr_array_free(fake.rcpts, TRUE);
		g_free(fake.mail_from);
	}
	g_free(first);
}

/* The envelope reaches the hook as sent, without brackets or routes. */
static void test_envelope(void **state)
{
	(void)state;
	fake_hook fake = { .data = g_string_new(NULL), .rcpts = g_ptr_array_new_with_free_func(g_free) };
	const lmtp_case c = { "envelope", LHLO "MAIL FROM:<a@b.test> BODY=8BITMIME\r\n"
	                      "RCPT TO:<@r.test:x@y.test>\r\nRCPT TO:<z@y.test>\r\nDATA\r\nq\r\n.\r\n",
	                      0, NULL, NULL, NULL, NULL, .calls = 1 };
	char *out = run_case(&c, 0, &fake);
	assert_int_equal(fake.calls, 1);
	assert_string_equal(fake.mail_from, "a@b.test");
	assert_int_equal(fake.rcpts->len, 2);
	assert_string_equal(g_ptr_array_index(fake.rcpts, 0), "x@y.test");
	assert_string_equal(g_ptr_array_index(fake.rcpts, 1), "z@y.test");
	assert_true(fake.lmtp);
	assert_true(fake.body_8bit);
	g_free(out);
	g_string_free(fake.data, TRUE);
	g_ptr_array_free(fake.rcpts, TRUE);
	g_free(fake.mail_from);
}

/* Timeout, shutdown, EOF and the busy/in-data states the server relies on. */
static void test_session_states(void **state)
{
	(void)state;
	tr_lmtp_settings settings;
	tr_lmtp_settings_default(&settings);
	fake_hook fake = { .data = g_string_new(NULL), .rcpts = g_ptr_array_new_with_free_func(g_free) };
	tr_lmtp_hook hook = { fake_deliver, &fake };
	GString *out = g_string_new(NULL);

	tr_lmtp_session *s = tr_lmtp_session_new(&settings, &hook, "192.0.2.1", "id1");
	tr_lmtp_session_greet(s, out);
	assert_false(tr_lmtp_session_busy(s));
	const char *start = LHLO MAIL;
	tr_lmtp_session_feed(s, start, strlen(start), out);
	assert_true(tr_lmtp_session_busy(s));
	assert_false(tr_lmtp_session_in_data(s));
	tr_lmtp_session_feed(s, RCPT1 "DATA\r\npart", strlen(RCPT1 "DATA\r\npart"), out);
	assert_true(tr_lmtp_session_in_data(s));
	g_string_truncate(out, 0);
	tr_lmtp_session_timeout(s, out);
	assert_true(g_str_has_prefix(out->str, "421 4.4.2 "));
	assert_true(tr_lmtp_session_closed(s));
	assert_int_equal(fake.calls, 0);   /* an unfinished message is never delivered */
	g_string_truncate(out, 0);
	tr_lmtp_session_feed(s, "NOOP\r\n", 6, out);
	assert_int_equal(out->len, 0);
	tr_lmtp_session_free(&s);

	s = tr_lmtp_session_new(&settings, &hook, NULL, NULL);
	tr_lmtp_session_feed(s, LHLO, strlen(LHLO), out);
	g_string_truncate(out, 0);
	tr_lmtp_session_shutdown(s, out);
	assert_true(g_str_has_prefix(out->str, "421 4.3.2 "));
	assert_true(tr_lmtp_session_closed(s));
	tr_lmtp_session_free(&s);

	s = tr_lmtp_session_new(&settings, &hook, NULL, NULL);
	tr_lmtp_session_feed(s, LHLO MAIL RCPT1 "DATA\r\nx\r\n", strlen(LHLO MAIL RCPT1 "DATA\r\nx\r\n"), out);
	tr_lmtp_session_eof(s);
	assert_true(tr_lmtp_session_closed(s));
	assert_int_equal(fake.calls, 0);
	tr_lmtp_session_free(&s);
	tr_lmtp_session_free(&s);   /* NULL-safe */

	g_string_free(out, TRUE);
	g_string_free(fake.data, TRUE);
	g_ptr_array_free(fake.rcpts, TRUE);
	g_free(fake.mail_from);
	tr_lmtp_settings_clear(&settings);
}

/* A big message one byte at a time costs no more than its size, and
 * stuffed dots at every line start are all undone. */
static void test_large_message(void **state)
{
	(void)state;
	tr_lmtp_settings settings;
	tr_lmtp_settings_default(&settings);
	fake_hook fake = { .data = g_string_new(NULL), .rcpts = g_ptr_array_new_with_free_func(g_free) };
	tr_lmtp_hook hook = { fake_deliver, &fake };
	GString *in = g_string_new(LHLO MAIL RCPT1 "DATA\r\n");
	GString *want = g_string_new(NULL);
	for (int i = 0; i < 20000; i++) {
		g_string_append_printf(in, "..line %d\r\n", i);
		g_string_append_printf(want, ".line %d\r\n", i);
	}
	g_string_append(in, ".\r\n");
	GString *out = g_string_new(NULL);
	tr_lmtp_session *s = tr_lmtp_session_new(&settings, &hook, NULL, NULL);
	for (size_t i = 0; i < in->len; i++)
		tr_lmtp_session_feed(s, in->str + i, 1, out);
	assert_int_equal(fake.calls, 1);
	assert_int_equal(fake.data->len, want->len);
	assert_memory_equal(fake.data->str, want->str, want->len);
	assert_non_null(strstr(out->str, "354 "));
	tr_lmtp_session_free(&s);
	g_string_free(in, TRUE);
	g_string_free(want, TRUE);
	g_string_free(out, TRUE);
	g_string_free(fake.data, TRUE);
	g_ptr_array_free(fake.rcpts, TRUE);
	g_free(fake.mail_from);
	tr_lmtp_settings_clear(&settings);
}

static tr_conf *conf_text(const char *text, tr_diag *diag)
{
	tr_conf *conf = tr_conf_load_data("test.conf", text, strlen(text), diag);
	assert_non_null(conf);
	return conf;
}

static void test_lmtp_settings(void **state)
{
	(void)state;
	tr_diag *diag = tr_diag_new();
	tr_conf *conf = conf_text("[lmtp]\nlisten = unix:/run/t/lmtp\nnext_hop = lmtp:inet:127.0.0.1:24\n"
	                          "next_hop_required = no\nsoft_bounce = yes\nsocket_mode = 0600\non_error = tempfail\n"
	                          "message_bytes = 10M\nrecipients = 5\ntimeout = 2m\nhostname = mx.example.test\n", diag);
	tr_lmtp_settings s;
	tr_lmtp_settings_load(&s, conf, NULL, diag);
	assert_int_equal(tr_diag_error_count(diag), 0);
	assert_int_equal(tr_diag_warning_count(diag), 0);
	assert_string_equal(s.listen, "unix:/run/t/lmtp");
	assert_string_equal(s.next_hop, "lmtp:inet:127.0.0.1:24");
	assert_false(s.next_hop_required);
	assert_true(s.soft_bounce);
	assert_int_equal(s.socket_mode, 0600);
	assert_int_equal(s.on_error, TR_LMTP_ON_ERROR_TEMPFAIL);
	assert_int_equal(s.limits.message_bytes, 10 * 1024 * 1024);
	assert_int_equal(s.limits.recipients, 5);
	assert_int_equal(s.limits.timeout, 120);
	assert_string_equal(s.hostname, "mx.example.test");
	tr_lmtp_settings_clear(&s);
	/* --listen wins. */
	tr_lmtp_settings_load(&s, conf, "inet:127.0.0.1:2424", diag);
	assert_string_equal(s.listen, "inet:127.0.0.1:2424");
	tr_lmtp_settings_clear(&s);
	tr_conf_free(&conf);
	tr_diag_free(&diag);

	static const char *const bad[] = {
		"[lmtp]\nlisten = nowhere\n",
		"[lmtp]\nnext_hop = lmtp:inet:host\n",
		"[lmtp]\nsocket_mode = 999\n",
		"[lmtp]\non_error = reject\n",
		"[lmtp]\nmessage_bytes = 12\n",
		"[lmtp]\nhostname = bad host\n",
		"[lmtp]\nnext_hop_required = perhaps\n",
	};
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		diag = tr_diag_new();
		conf = conf_text(bad[i], diag);
		tr_lmtp_settings_load(&s, conf, NULL, diag);
		if (tr_diag_error_count(diag) == 0)
			fail_msg("no error for:\n%s", bad[i]);
		tr_lmtp_settings_clear(&s);
		tr_conf_free(&conf);
		tr_diag_free(&diag);
	}
	/* An unknown key is a warning with its line. */
	diag = tr_diag_new();
	conf = conf_text("[lmtp]\n\nlisten_on = x\n", diag);
	tr_lmtp_settings_load(&s, conf, NULL, diag);
	assert_int_equal(tr_diag_warning_count(diag), 1);
	char *text = tr_diag_join(diag);
	assert_non_null(strstr(text, "test.conf:3"));
	assert_non_null(strstr(text, "listen_on"));
	g_free(text);
	tr_lmtp_settings_clear(&s);
	tr_conf_free(&conf);
	tr_diag_free(&diag);
}

int main(void)
{
	static const struct CMUnitTest fixed[] = {
		cmocka_unit_test(test_envelope),
		cmocka_unit_test(test_session_states),
		cmocka_unit_test(test_large_message),
		cmocka_unit_test(test_lmtp_settings),
	};
	size_t n = G_N_ELEMENTS(cases) + G_N_ELEMENTS(fixed);
	struct CMUnitTest *tests = g_new0(struct CMUnitTest, n);
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		tests[i].name = cases[i].name;
		tests[i].test_func = test_case;
		tests[i].initial_state = (void *)&cases[i];
	}
	memcpy(tests + G_N_ELEMENTS(cases), fixed, sizeof(fixed));
	int failed = _cmocka_run_group_tests("test_lmtp", tests, n, NULL, NULL);
	g_free(tests);
	return failed;
}
