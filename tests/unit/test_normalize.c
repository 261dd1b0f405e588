/* test_normalize.c — the MIME normalizer on the project's own fixtures */
#include "testutil.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "core/lang.h"
#include "core/normalize.h"

static tr_norm *norm_default;
static tr_lang *lang;

static int setup(void **state)
{
	(void)state;
	tr_norm_global_init();
	lang = tr_lang_new(NULL, NULL, NULL);
	norm_default = tr_norm_new(NULL, lang, NULL);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tr_norm_free(&norm_default);
	tr_lang_free(&lang);
	return 0;
}

static tr_msg *parse_with(const tr_norm *norm, const char *raw)
{
	GError *error = NULL;
	tr_msg *msg = tr_norm_parse(norm, TR_CHANNEL_FILE, raw, strlen(raw), &error);
	if (msg == NULL)
		fail_msg("parse failed: %s", error->message);
	assert_true(g_utf8_validate(msg->text, -1, NULL));
	assert_true(g_utf8_validate(msg->subject, -1, NULL));
	return msg;
}

static tr_msg *parse(const char *raw)
{
	return parse_with(norm_default, raw);
}

static tr_norm *norm_with(const char *key, int64_t value)
{
	tr_norm_limits limits;
	tr_conftab_defaults(tr_norm_limits_table, &limits);
	for (const tr_conftab *row = tr_norm_limits_table; row->name != NULL; row++) {
		if (strcmp(row->name, key) == 0)
			*(int64_t *)((char *)&limits + row->offset) = value;
	}
	return tr_norm_new(&limits, NULL, NULL);
}

static void test_headers_decoded(void **state)
{
	(void)state;
	tr_msg *msg = parse(
		"From: =?UTF-8?B?w4FsdmFybyBHw7NtZXo=?= <Alvaro@Example.COM>\n"
		"To: Support <support@example.test>, \"Ops, Team\" <ops@example.test>\n"
		"Cc: undisclosed-recipients:;\n"
		"Reply-To: billing-reply@example.com\n"
		"Subject: =?ISO-8859-1?Q?Probl=E8me_de_facturation?= =?UTF-8?Q?_=E2=80=93_urgent?=\n"
		"Date: Tue, 03 Nov 2026 14:05:00 +0100\n"
		"Message-ID: <abc.123@mail.example.com>\n"
		"In-Reply-To: <out-1@triage.example.test>\n"
		"References: <first@x> <second@y>\n"
		"  <out-1@triage.example.test>\n"
		"\n"
		"Hello,\nmy invoice is wrong.\n");
	assert_string_equal(msg->from.name, "Álvaro Gómez");
	assert_string_equal(msg->from.address, "alvaro@example.com");
	assert_int_equal(msg->to.count, 2);
	assert_string_equal(msg->to.items[1].name, "Ops, Team");
	assert_string_equal(msg->to.items[1].address, "ops@example.test");
	assert_int_equal(msg->cc.count, 0);
	assert_string_equal(msg->reply_to.items[0].address, "billing-reply@example.com");
	assert_string_equal(msg->subject, "Problème de facturation – urgent");
	assert_int_equal(msg->date, 1793711100);
	assert_int_equal(msg->date_tz_minutes, 60);
	assert_string_equal(msg->message_id, "abc.123@mail.example.com");
	assert_string_equal(msg->in_reply_to, "out-1@triage.example.test");
	assert_int_equal(msg->references_count, 3);
	assert_string_equal(msg->references[0], "first@x");
	assert_string_equal(msg->references[2], "out-1@triage.example.test");
	assert_string_equal(msg->text, "Hello,\nmy invoice is wrong.");
	assert_string_equal(msg->text_source, "text/plain");
	assert_false(tr_msg_is_auto(msg));
	assert_string_equal(tr_msg_header(msg, "message-id"), "<abc.123@mail.example.com>");
	tr_msg_free(&msg);
	assert_null(msg);
}

static void test_alternative_prefers_plain(void **state)
{
	(void)state;
	tr_msg *msg = parse(
		"From: a@example.com\nSubject: alt\nMIME-Version: 1.0\n"
		"Content-Type: multipart/alternative; boundary=\"b1\"\n\n"
		"--b1\nContent-Type: text/plain; charset=utf-8\n\nPlain words here.\n"
		"--b1\nContent-Type: text/html; charset=utf-8\n\n<p>HTML <b>words</b></p>\n"
		"--b1--\n");
	assert_string_equal(msg->text, "Plain words here.");
	assert_string_equal(msg->text_source, "text/plain");
	assert_int_equal(msg->attachments_count, 0);
	tr_msg_free(&msg);
}

static void test_html_only(void **state)
{
	(void)state;
	tr_msg *msg = parse(
		"From: a@example.com\nSubject: html\nMIME-Version: 1.0\n"
		"Content-Type: multipart/alternative; boundary=\"b1\"\n\n"
		"--b1\nContent-Type: text/plain; charset=utf-8\n\n   \n"
		"--b1\nContent-Type: text/html; charset=utf-8\n\n"
		"<html><head><style>p{color:red}</style></head><body><p>Our checkout page is down</p></body></html>\n"
		"--b1--\n");
	assert_string_equal(msg->text_source, "text/html");
	assert_true(msg->flags & TR_MSG_HTML_CONVERTED);
	assert_non_null(strstr(msg->text, "Our checkout page is down"));
	assert_null(strstr(msg->text, "color:red"));
	tr_msg_free(&msg);
}

static void test_charsets(void **state)
{
	(void)state;
	/* Declared Latin-1, quoted-printable. */
	tr_msg *msg = parse("From: a@example.com\nSubject: x\nMIME-Version: 1.0\n"
	                    "Content-Type: text/plain; charset=iso-8859-1\n"
	                    "Content-Transfer-Encoding: quoted-printable\n\n"
	                    "Gr=FC=DFe aus M=FCnchen\n");
	assert_string_equal(msg->text, "Grüße aus München");
	assert_false(msg->flags & TR_MSG_CHARSET_REPAIRED);
	tr_msg_free(&msg);

	/* Declared Latin-1, 8-bit: every byte as iconv reads it. */
	char body[256 + 1];
	size_t n = 0;
	for (int b = 0x21; b <= 0xFF; b++)
		body[n++] = (char)b;
	body[n] = '\0';
	char *raw = g_strdup_printf("From: a@example.com\nSubject: x\nContent-Type: text/plain; charset=ISO-8859-1\n"
	                            "Content-Transfer-Encoding: 8bit\n\n%s\n", body);
	msg = parse(raw);
	gsize converted_len = 0;
	char *converted = g_convert(body, (gssize)n, "UTF-8", "ISO-8859-1", NULL, &converted_len, NULL);
	assert_non_null(converted);
	tr_pool *pool = tr_pool_new(0);
	assert_string_equal(msg->text, tr_norm_whitespace(pool, converted, converted_len, NULL));
	assert_false(msg->flags & TR_MSG_CHARSET_REPAIRED);
	tr_pool_free(&pool);
	g_free(converted);
	g_free(raw);
	tr_msg_free(&msg);

	/* Undeclared 8-bit Windows-1252 (0x80 = euro sign). */
	msg = parse("From: a@example.com\nSubject: x\n\nPrice: 10 \x80, caf\xe9\n");
	assert_string_equal(msg->text, "Price: 10 €, café");
	tr_msg_free(&msg);

	/* An unknown charset name: the bytes are still read. */
	msg = parse("From: a@example.com\nSubject: x\nContent-Type: text/plain; charset=x-user-defined\n\n"
	            "na\xefve r\xe9sum\xe9\n");
	assert_string_equal(msg->text, "naïve résumé");
	assert_true(msg->flags & TR_MSG_CHARSET_REPAIRED);
	tr_msg_free(&msg);

	/* Declared UTF-8, actually Latin-1. */
	msg = parse("From: a@example.com\nSubject: x\nContent-Type: text/plain; charset=utf-8\n\n"
	            "se\xf1or\n");
	assert_string_equal(msg->text, "señor");
	assert_true(msg->flags & TR_MSG_CHARSET_REPAIRED);
	tr_msg_free(&msg);

	/* Raw 8-bit in the subject header. */
	msg = parse("From: a@example.com\nSubject: Caf\xe9 ferm\xe9\n\nbody\n");
	assert_string_equal(msg->subject, "Café fermé");
	tr_msg_free(&msg);
}

static void test_attachments(void **state)
{
	(void)state;
	tr_msg *msg = parse(
		"From: a@example.com\nSubject: logs\nMIME-Version: 1.0\n"
		"Content-Type: multipart/mixed; boundary=\"m\"\n\n"
		"--m\nContent-Type: text/plain\n\nSee the attached log.\n"
		"--m\nContent-Type: application/pdf; name=\"report.pdf\"\n"
		"Content-Disposition: attachment; filename=\"report.pdf\"\n"
		"Content-Transfer-Encoding: base64\n\n"
		"JVBERi0xLjQKJcfsj6IKNSAwIG9iago=\n"
		"--m\nContent-Type: text/plain; name=\"error.txt\"\nContent-Disposition: attachment\n\n"
		"stack trace\n"
		"--m--\n");
	assert_string_equal(msg->text, "See the attached log.");
	assert_int_equal(msg->attachments_count, 2);
	assert_string_equal(msg->attachments[0].filename, "report.pdf");
	assert_string_equal(msg->attachments[0].content_type, "application/pdf");
	assert_int_equal(msg->attachments[0].size, 23);
	assert_string_equal(msg->attachments[1].filename, "error.txt");
	assert_int_equal(msg->part_count, 3);
	tr_msg_free(&msg);
}

static void expect_auto(const char *raw, unsigned flag)
{
	tr_msg *msg = parse(raw);
	if (!(msg->auto_flags & flag))
		fail_msg("expected auto flag %#x, got %#x for:\n%s", flag, msg->auto_flags, raw);
	assert_true(tr_msg_is_auto(msg));
	tr_msg_free(&msg);
}

static void test_auto_generated(void **state)
{
	(void)state;
	expect_auto("From: a@example.com\nAuto-Submitted: auto-replied\nSubject: x\n\nbody\n", TR_AUTO_SUBMITTED);
	expect_auto("From: a@example.com\nPrecedence: bulk\nSubject: x\n\nbody\n", TR_AUTO_PRECEDENCE);
	expect_auto("From: a@example.com\nPrecedence: junk\nSubject: x\n\nbody\n", TR_AUTO_PRECEDENCE);
	expect_auto("From: a@example.com\nList-Id: <dev.lists.example.com>\nSubject: x\n\nbody\n", TR_AUTO_LIST);
	expect_auto("From: a@example.com\nList-Unsubscribe: <mailto:u@x>\nSubject: x\n\nbody\n", TR_AUTO_LIST);
	expect_auto("From: a@example.com\nX-Auto-Response-Suppress: All\nSubject: x\n\nbody\n", TR_AUTO_SUPPRESS);
	expect_auto("From: MAILER-DAEMON@mx.example.com\nSubject: x\n\nbody\n", TR_AUTO_SYSTEM_SENDER);
	expect_auto("From: postmaster@example.com\nSubject: x\n\nbody\n", TR_AUTO_SYSTEM_SENDER);
	expect_auto("From: Shop <no-reply@shop.example>\nSubject: x\n\nbody\n", TR_AUTO_NOREPLY_SENDER);
	expect_auto("From: donotreply@bank.example\nSubject: x\n\nbody\n", TR_AUTO_NOREPLY_SENDER);
	expect_auto("Return-Path: <>\nFrom: a@example.com\nSubject: x\n\nbody\n", TR_AUTO_NULL_SENDER);
	expect_auto("From: a@example.com\nSubject: Automatic reply: your ticket\n\nI am away\n",
	            TR_AUTO_AUTOREPLY_SUBJECT);
	expect_auto("From: a@example.com\nSubject: Abwesenheitsnotiz: Ihre Anfrage\n\nIch bin weg\n",
	            TR_AUTO_AUTOREPLY_SUBJECT);
	expect_auto("From: a@example.com\nX-Autoreply: yes\nSubject: x\n\nbody\n", TR_AUTO_AUTOREPLY_HEADER);
	expect_auto("From: MAILER-DAEMON@mx.example.com\nSubject: Undelivered Mail Returned to Sender\n"
	            "MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"r\"\n\n"
	            "--r\nContent-Type: text/plain\n\nThis is the mail system.\n"
	            "--r\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.com\n\n"
	            "Final-Recipient: rfc822; x@example.org\nAction: failed\nStatus: 5.1.1\n"
	            "--r--\n", TR_AUTO_REPORT | TR_AUTO_BOUNCE);

	/* An empty delivery-status part (found by the fuzzer): still a bounce. */
	expect_auto("From: postmaster@mx.example\nSubject: x\nMIME-Version: 1.0\n"
	            "Content-Type: multipart/report; boundary=\"r\"\n\n"
	            "--r\nContent-Type: message/delivery-status\n\n--r--\n", TR_AUTO_BOUNCE);

	/* Auto-Submitted: no and plain customers are not automatic. */
	tr_msg *msg = parse("From: a@example.com\nAuto-Submitted: no\nSubject: help\n\nbody\n");
	assert_false(tr_msg_is_auto(msg));
	tr_msg_free(&msg);
	msg = parse("From: norbert@example.com\nSubject: Reply needed about my order\n\nbody\n");
	assert_false(tr_msg_is_auto(msg));
	tr_msg_free(&msg);
}

static void test_authentication_results(void **state)
{
	(void)state;
	const char *raw =
		"Authentication-Results: mx.example.test; spf=pass smtp.mailfrom=example.com;\n"
		" dkim=fail header.d=other.example; dkim=pass (good) header.d=example.com; dmarc=PASS\n"
		"Authentication-Results: evil.example; spf=fail; dkim=fail; dmarc=fail\n"
		"From: a@example.com\nSubject: x\n\nbody\n";
	tr_msg *msg = parse(raw);
	assert_string_equal(msg->auth.spf, "pass");
	assert_string_equal(msg->auth.dkim, "pass");
	assert_string_equal(msg->auth.dmarc, "pass");
	tr_msg_free(&msg);

	tr_norm *trusted = tr_norm_new(NULL, NULL, "evil.example");
	msg = parse_with(trusted, raw);
	assert_string_equal(msg->auth.spf, "fail");
	tr_msg_free(&msg);
	tr_norm_free(&trusted);

	trusted = tr_norm_new(NULL, NULL, "other.example");
	msg = parse_with(trusted, raw);
	assert_null(msg->auth.spf);
	assert_null(msg->auth.dkim);
	tr_msg_free(&msg);
	tr_norm_free(&trusted);
}

static void test_no_headers_and_nul(void **state)
{
	(void)state;
	tr_msg *msg = parse("this is not an email, just words\nsecond line\n");
	assert_true(msg->flags & TR_MSG_NO_HEADERS);
	assert_string_equal(msg->text, "this is not an email, just words\nsecond line");
	tr_msg_free(&msg);

	const char raw[] = "From: a@example.com\nSubject: nul\x00here\n\nbody\x00with nul\n";
	GError *error = NULL;
	msg = tr_norm_parse(norm_default, TR_CHANNEL_FILE, raw, sizeof(raw) - 1, &error);
	assert_non_null(msg);
	assert_true(msg->flags & TR_MSG_NUL_BYTES);
	assert_string_equal(msg->text, "body with nul");
	assert_string_equal(msg->subject, "nul here");
	tr_msg_free(&msg);

	assert_null(tr_norm_parse(norm_default, TR_CHANNEL_FILE, "", 0, &error));
	assert_non_null(error);
	g_clear_error(&error);
}

static void test_mbox_from_line(void **state)
{
	(void)state;
	tr_msg *msg = parse("From someone@example.com  Thu Aug 22 12:36:23 2002\n"
	                    "From: someone@example.com\nSubject: mbox\n\nbody\n");
	assert_string_equal(msg->subject, "mbox");
	assert_false(msg->flags & TR_MSG_NO_HEADERS);
	tr_msg_free(&msg);
}

static void test_whitespace(void **state)
{
	(void)state;
	tr_pool *pool = tr_pool_new(0);
	const char *in = "\r\n\r\n  Hello\xc2\xa0\xc2\xa0world  \t\r\n\r\n\r\n\r\nzero\xe2\x80\x8bwidth\x01 end  \r\n\n";
	size_t len;
	char *out = tr_norm_whitespace(pool, in, strlen(in), &len);
	assert_string_equal(out, "Hello world\n\nzerowidth end");
	assert_int_equal(len, strlen(out));
	out = tr_norm_whitespace(pool, "", 0, &len);
	assert_string_equal(out, "");
	out = tr_norm_whitespace(pool, "a\xe2\x80\xa8" "b", 5, &len);
	assert_string_equal(out, "a\nb");
	tr_pool_free(&pool);
}

static void test_limit_message_bytes(void **state)
{
	(void)state;
	tr_norm *small = norm_with("message_bytes", 2048);
	GString *raw = g_string_new("From: a@example.com\nSubject: big\n\n");
	while (raw->len < 100000)
		g_string_append(raw, "line of body text that goes on\n");
	tr_msg *msg = parse_with(small, raw->str);
	assert_true(msg->flags & TR_MSG_TRUNCATED_SIZE);
	assert_string_equal(msg->subject, "big");
	assert_true(strlen(msg->text) < 2048);
	assert_int_equal(msg->size, raw->len);
	tr_msg_free(&msg);
	tr_norm_free(&small);
	g_string_free(raw, TRUE);
}

static void test_limit_header_bytes(void **state)
{
	(void)state;
	/* A 1 MB header line before Subject: dropped, the rest still read. */
	GString *raw = g_string_new("From: a@example.com\nX-Junk: ");
	for (int i = 0; i < 1024 * 1024; i++)
		g_string_append_c(raw, 'x');
	g_string_append(raw, "\nSubject: still here\n\nbody text\n");
	tr_msg *msg = parse(raw->str);
	assert_true(msg->flags & TR_MSG_TRUNCATED_HEADERS);
	assert_string_equal(msg->subject, "still here");
	assert_string_equal(msg->text, "body text");
	assert_null(tr_msg_header(msg, "X-Junk"));
	tr_msg_free(&msg);
	g_string_free(raw, TRUE);
}

static GString *nested_multipart(int depth)
{
	GString *raw = g_string_new("From: a@example.com\nSubject: deep\nMIME-Version: 1.0\n");
	for (int i = 0; i < depth; i++)
		g_string_append_printf(raw, "Content-Type: multipart/mixed; boundary=\"d%d\"\n\n--d%d\n", i, i);
	g_string_append(raw, "Content-Type: text/plain\n\ninnermost text\n");
	for (int i = depth - 1; i >= 0; i--)
		g_string_append_printf(raw, "--d%d--\n", i);
	return raw;
}

static void test_limit_depth(void **state)
{
	(void)state;
	GString *raw = nested_multipart(10);
	tr_msg *msg = parse(raw->str);
	assert_string_equal(msg->text, "innermost text");
	assert_false(msg->flags & TR_MSG_TRUNCATED_DEPTH);
	tr_msg_free(&msg);
	tr_norm *shallow = norm_with("mime_depth", 5);
	msg = parse_with(shallow, raw->str);
	assert_true(msg->flags & TR_MSG_TRUNCATED_DEPTH);
	assert_true(msg->flags & TR_MSG_NO_TEXT);
	tr_msg_free(&msg);
	tr_norm_free(&shallow);
	g_string_free(raw, TRUE);
}

static void test_limit_parts(void **state)
{
	(void)state;
	GString *raw = g_string_new("From: a@example.com\nSubject: many\nMIME-Version: 1.0\n"
	                            "Content-Type: multipart/mixed; boundary=\"p\"\n\n"
	                            "--p\nContent-Type: text/plain\n\nfirst part text\n");
	for (int i = 0; i < 10000; i++)
		g_string_append_printf(raw, "--p\nContent-Type: application/octet-stream; name=\"f%d\"\n\nx\n", i);
	g_string_append(raw, "--p--\n");
	tr_msg *msg = parse(raw->str);
	assert_true(msg->flags & TR_MSG_TRUNCATED_PARTS);
	assert_int_equal(msg->part_count, 500);
	assert_int_equal(msg->attachments_count, 499);
	assert_string_equal(msg->text, "first part text");
	tr_msg_free(&msg);
	g_string_free(raw, TRUE);
}

static void test_limit_text_chars(void **state)
{
	(void)state;
	tr_norm *small = norm_with("text_chars", 300);
	GString *raw = g_string_new("From: a@example.com\nSubject: long\nContent-Type: text/plain; charset=utf-8\n\n");
	for (int i = 0; i < 500; i++)
		g_string_append(raw, "é");
	tr_msg *msg = parse_with(small, raw->str);
	assert_true(msg->flags & TR_MSG_TRUNCATED_TEXT);
	assert_int_equal(g_utf8_strlen(msg->text, -1), 300);
	tr_msg_free(&msg);
	tr_norm_free(&small);
	g_string_free(raw, TRUE);
}

static void on_alarm(int sig)
{
	(void)sig;
	static const char text[] = "normalizer hung (GMime boundary loop?)\n";
	ssize_t n = write(2, text, sizeof(text) - 1);
	(void)n;
	_exit(3);
}

/* GMime 3.2.13 loops forever in g_mime_multipart_get_boundary() on a long
 * parameter name with a non-ASCII value: we must never get there. */
static void test_gmime_boundary_hang(void **state)
{
	(void)state;
	GString *raw = g_string_new("From: a@example.com\nSubject: hang\nMIME-Version: 1.0\n"
	                            "Content-Type: multipart/mixed; ");
	for (int i = 0; i < 72; i++)
		g_string_append_c(raw, 'p');
	g_string_append(raw, "=\"v\xc3\xa4lue \xe2\x82\xac\"; boundary=\"zz\"\n\n"
	                     "--zz\nContent-Type: text/plain\n\nstill parsed\n--zz--\n");
	signal(SIGALRM, on_alarm);
	alarm(10);
	tr_msg *msg = parse(raw->str);
	alarm(0);
	assert_string_equal(msg->text, "still parsed");
	tr_msg_free(&msg);
	g_string_free(raw, TRUE);
}

static void test_content_hash_stable(void **state)
{
	(void)state;
	tr_msg *a = parse("Received: from a by b\nFrom: a@example.com\nSubject: same\n"
	                  "Date: Tue, 03 Nov 2026 14:05:00 +0100\n\nbody text\n");
	tr_msg *b = parse("Received: from c by d\r\nReceived: from e by f\r\nFrom: A <A@Example.com>\r\n"
	                  "Subject: same\r\nDate: Tue, 03 Nov 2026 13:05:00 +0000\r\n"
	                  "Content-Transfer-Encoding: quoted-printable\r\n\r\nbody =\r\ntext\r\n");
	tr_msg *c = parse("From: a@example.com\nSubject: same\n"
	                  "Date: Tue, 03 Nov 2026 14:05:00 +0100\n\nother text\n");
	assert_int_equal(strlen(a->content_hash), 64);
	assert_string_equal(a->content_hash, b->content_hash);
	assert_string_not_equal(a->content_hash, c->content_hash);
	tr_msg_free(&a);
	tr_msg_free(&b);
	tr_msg_free(&c);
}

static void test_embedded_message(void **state)
{
	(void)state;
	tr_msg *msg = parse(
		"From: a@example.com\nSubject: Fwd: problem\nMIME-Version: 1.0\n"
		"Content-Type: multipart/mixed; boundary=\"f\"\n\n"
		"--f\nContent-Type: message/rfc822\n\n"
		"From: b@example.com\nSubject: inner problem\n\nThe inner text.\n"
		"--f--\n");
	assert_int_equal(msg->attachments_count, 1);
	assert_string_equal(msg->attachments[0].content_type, "message/rfc822");
	assert_string_equal(msg->attachments[0].filename, "inner problem");
	assert_string_equal(msg->text, "The inner text.");
	assert_string_equal(msg->text_source, "message/rfc822");
	tr_msg_free(&msg);
}

static void test_plain_text_input(void **state)
{
	(void)state;
	const char *chat = "hi, our dashboard is down!!\r\nplease help";
	tr_msg *msg = tr_norm_text(norm_default, TR_CHANNEL_XMPP, "Alice@Chat.Example", chat, strlen(chat));
	assert_int_equal(msg->channel, TR_CHANNEL_XMPP);
	assert_string_equal(msg->from.address, "alice@chat.example");
	assert_string_equal(msg->text, "hi, our dashboard is down!!\nplease help");
	assert_int_equal(strlen(msg->content_hash), 64);
	tr_msg_free(&msg);
}

static void test_language(void **state)
{
	(void)state;
	static const struct { const char *text, *lang; } cases[] = {
		{ "Hello, we cannot log in since this morning and the whole team is blocked. Please help.", "en" },
		{ "Hola, no puedo acceder a mi cuenta desde ayer y necesito las facturas. Gracias por la ayuda.", "es" },
		{ "Guten Tag, seit heute Morgen funktioniert die Anmeldung nicht mehr. Bitte helfen Sie uns.", "de" },
		{ "Bonjour, je n'arrive plus à me connecter à mon compte depuis ce matin. Merci de votre aide.", "fr" },
		{ "Olá, não consigo acessar minha conta desde ontem. Preciso de ajuda, obrigado.", "pt" },
	};
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		char *raw = g_strdup_printf("From: a@example.com\nSubject: x\n"
		                            "Content-Type: text/plain; charset=utf-8\n\n%s\n", cases[i].text);
		tr_msg *msg = parse(raw);
		if (msg->language == NULL || strcmp(msg->language, cases[i].lang) != 0)
			fail_msg("'%s': got %s, want %s", cases[i].text, msg->language ? msg->language : "NULL",
			         cases[i].lang);
		tr_msg_free(&msg);
		g_free(raw);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_headers_decoded),
		cmocka_unit_test(test_alternative_prefers_plain),
		cmocka_unit_test(test_html_only),
		cmocka_unit_test(test_charsets),
		cmocka_unit_test(test_attachments),
		cmocka_unit_test(test_auto_generated),
		cmocka_unit_test(test_authentication_results),
		cmocka_unit_test(test_no_headers_and_nul),
		cmocka_unit_test(test_mbox_from_line),
		cmocka_unit_test(test_whitespace),
		cmocka_unit_test(test_limit_message_bytes),
		cmocka_unit_test(test_limit_header_bytes),
		cmocka_unit_test(test_limit_depth),
		cmocka_unit_test(test_limit_parts),
		cmocka_unit_test(test_limit_text_chars),
		cmocka_unit_test(test_gmime_boundary_hang),
		cmocka_unit_test(test_content_hash_stable),
		cmocka_unit_test(test_embedded_message),
		cmocka_unit_test(test_plain_text_input),
		cmocka_unit_test(test_language),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
