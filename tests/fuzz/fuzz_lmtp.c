/* fuzz_lmtp.c — libFuzzer target: any bytes through the LMTP/SMTP state machine
 *
 * The first input byte picks the fake hook's answers and how the rest is
 * cut.  The rest is fed twice — at once, and in pieces — and both runs
 * must give the same replies and the same messages to the hook.
 * Checked: every reply line is "ddd" + ' ' or '-' + text + CRLF with a
 * known code; a message reaches the hook only within message_bytes, with
 * CRLF line ends; 250 after DATA only when the hook said delivered, and
 * the hook's text cannot inject a line; nothing after a 221/421.
 */
#include <glib.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "channels/lmtp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
	uint8_t mode;
	unsigned calls;
	GString *log;      /* every message the hook got, with its envelope */
	unsigned delivered;
} fake;

static void fake_deliver(void *context, const tr_lmtp_envelope *env, tr_lmtp_rcpt_status *status)
{
	fake *f = context;
	if (env->len > 4096 || env->rcpts_count == 0 || env->rcpts_count > 8 || env->mail_from == NULL)
		abort();
	/* CRLF everywhere: no bare LF reaches the hook. */
	for (size_t i = 0; i < env->len; i++)
		if (env->data[i] == '\n' && (i == 0 || env->data[i - 1] != '\r'))
			abort();
	f->calls++;
	g_string_append_printf(f->log, "%s|%s|%zu|", env->lmtp ? "L" : "S", env->mail_from, env->rcpts_count);
	g_string_append_len(f->log, env->data, (gssize)env->len);
	for (size_t i = 0; i < env->rcpts_count; i++) {
		unsigned r = (f->mode + f->calls + i) % 5;
		status[i].result = r == 0 ? TR_LMTP_DEFER : r == 1 ? TR_LMTP_DEFER_FULL
		                 : r == 2 ? TR_LMTP_REJECT : TR_LMTP_DELIVERED;
		if (r == 3)
			g_strlcpy(status[i].text, "2.0.0 hook-ok", sizeof(status[i].text));
		if (r == 4)
			g_strlcpy(status[i].text, "2.0.0 hook-ok\r\n250 injected", sizeof(status[i].text));
		f->delivered += status[i].result == TR_LMTP_DELIVERED;
	}
}

static bool known_code(int code)
{
	static const int codes[] = { 214, 220, 221, 250, 252, 354, 421, 451, 452, 500, 501, 502, 503, 550, 552, 554, 555 };
	for (size_t i = 0; i < G_N_ELEMENTS(codes); i++)
		if (codes[i] == code)
			return true;
	return false;
}

static void check_replies(const GString *out)
{
	const char *p = out->str, *end = out->str + out->len;
	bool closed = false;
	while (p < end) {
		const char *crlf = g_strstr_len(p, end - p, "\r\n");
		if (crlf == NULL || closed)
			abort();
		size_t len = (size_t)(crlf - p);
		if (len < 4 || !g_ascii_isdigit(p[0]) || !g_ascii_isdigit(p[1]) || !g_ascii_isdigit(p[2]) ||
		    (p[3] != ' ' && p[3] != '-'))
			abort();
		for (size_t i = 0; i < len; i++)
			if ((unsigned char)p[i] < 0x20 || (unsigned char)p[i] >= 0x7f)
				abort();
		int code = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
		if (!known_code(code))
			abort();
		if ((code == 221 || code == 421) && p[3] == ' ')
			closed = true;
		p = crlf + 2;
	}
}

static char *run(const tr_lmtp_settings *settings, uint8_t mode, const uint8_t *data, size_t size,
                 size_t piece, fake *f)
{
	tr_lmtp_hook hook = { fake_deliver, f };
	tr_lmtp_session *s = tr_lmtp_session_new(settings, &hook, "fuzz", "F1");
	GString *out = g_string_new(NULL);
	tr_lmtp_session_greet(s, out);
	if (piece == 0)
		piece = size > 0 ? size : 1;
	for (size_t off = 0; off < size; off += piece)
		tr_lmtp_session_feed(s, data + off, MIN(piece, size - off), out);
	if (mode & 0x80)
		tr_lmtp_session_timeout(s, out);
	else
		tr_lmtp_session_eof(s);
	check_replies(out);
	tr_lmtp_session_free(&s);
	return g_string_free(out, FALSE);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t mode = data[0];
	data++;
	size--;
	tr_lmtp_settings settings;
	tr_lmtp_settings_default(&settings);
	g_free(settings.hostname);
	settings.hostname = g_strdup("fuzz.test");
	settings.limits.message_bytes = 4096;
	settings.limits.command_bytes = 512;
	settings.limits.recipients = 8;
	settings.limits.errors = 50;

	fake whole = { .mode = mode, .log = g_string_new(NULL) };
	fake pieces = { .mode = mode, .log = g_string_new(NULL) };
	char *a = run(&settings, mode, data, size, 0, &whole);
	char *b = run(&settings, mode, data, size, 1 + ((mode >> 2) & 7), &pieces);
	if (strcmp(a, b) != 0 || whole.calls != pieces.calls || !g_string_equal(whole.log, pieces.log))
		abort();
	/* No more 250s after DATA than the hook granted, and the hook's text
	 * cannot start a reply line of its own. */
	unsigned granted = 0;
	for (const char *p = a; (p = strstr(p, "\r\n250 2.0.0 hook-ok")) != NULL; p++)
		granted++;
	if (granted > whole.delivered || strstr(a, "\r\n250 injected") != NULL)
		abort();
	g_free(a);
	g_free(b);
	g_string_free(whole.log, TRUE);
	g_string_free(pieces.log, TRUE);
	tr_lmtp_settings_clear(&settings);
	return 0;
}
