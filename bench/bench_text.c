/* bench_text.c — speed of tr_html_to_text() and tr_quote_split()
 *
 * usage: build/bench/bench_text [MAILDIR [ROUNDS]]
 *   MAILDIR defaults to ../shared/corpus/mail/spamassassin-easy-ham
 *
 * Every message is parsed with GMime once; its text/html parts are
 * converted, and its text/plain parts plus the converted HTML are split,
 * ROUNDS times (default 20).  Prints microseconds per KB of input for
 * each module, one line each.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gmime/gmime.h>

#include "core/html.h"
#include "core/pool.h"
#include "core/quote.h"

struct parts {
	GPtrArray *html;
	GPtrArray *plain;
};

static void collect(GMimeObject *parent, GMimeObject *part, gpointer user_data)
{
	struct parts *p = user_data;
	(void)parent;
	if (!GMIME_IS_TEXT_PART(part))
		return;
	char *text = g_mime_text_part_get_text(GMIME_TEXT_PART(part));
	if (text == NULL)
		return;
	if (!g_utf8_validate(text, -1, NULL)) {
		char *valid = g_utf8_make_valid(text, -1);
		g_free(text);
		text = valid;
	}
	GMimeContentType *type = g_mime_object_get_content_type(part);
	if (g_mime_content_type_is_type(type, "text", "html"))
		g_ptr_array_add(p->html, text);
	else if (g_mime_content_type_is_type(type, "text", "plain"))
		g_ptr_array_add(p->plain, text);
	else
		g_free(text);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Lengths measured once, outside the timed loops. */
static size_t *lengths(GPtrArray *a, size_t *total_r)
{
	size_t *len = g_new(size_t, a->len + 1);
	*total_r = 0;
	for (guint i = 0; i < a->len; i++) {
		len[i] = strlen(a->pdata[i]);
		*total_r += len[i];
	}
	return len;
}

int main(int argc, char **argv)
{
	const char *dir_name = argc > 1 ? argv[1] : "../shared/corpus/mail/spamassassin-easy-ham";
	int rounds = argc > 2 ? atoi(argv[2]) : 20;
	if (rounds < 1)
		rounds = 1;
	g_mime_init();
	tr_html_init();

	struct parts p = { g_ptr_array_new_with_free_func(g_free), g_ptr_array_new_with_free_func(g_free) };
	GDir *dir = g_dir_open(dir_name, 0, NULL);
	if (dir == NULL) {
		fprintf(stderr, "bench_text: cannot open %s\n", dir_name);
		return 1;
	}
	const char *name;
	unsigned messages = 0;
	while ((name = g_dir_read_name(dir)) != NULL) {
		char *path = g_build_filename(dir_name, name, NULL);
		GMimeStream *stream = g_mime_stream_fs_open(path, O_RDONLY, 0, NULL);
		g_free(path);
		if (stream == NULL)
			continue;
		GMimeParser *parser = g_mime_parser_new_with_stream(stream);
		GMimeMessage *message = g_mime_parser_construct_message(parser, NULL);
		if (message != NULL) {
			g_mime_message_foreach(message, collect, &p);
			g_object_unref(message);
			messages++;
		}
		g_object_unref(parser);
		g_object_unref(stream);
	}
	g_dir_close(dir);

	tr_pool *pool = tr_pool_new(64 * 1024);
	GPtrArray *converted = g_ptr_array_new_with_free_func(g_free);
	for (guint i = 0; i < p.html->len; i++) {
		const char *html = p.html->pdata[i];
		char *text = tr_html_to_text(pool, html, strlen(html), 1 << 20, NULL);
		g_ptr_array_add(converted, g_strdup(text));
		tr_pool_clear(pool);
	}

	size_t html_bytes;
	size_t *html_len = lengths(p.html, &html_bytes);
	double t0 = now();
	for (int r = 0; r < rounds; r++) {
		for (guint i = 0; i < p.html->len; i++) {
			tr_html_to_text(pool, p.html->pdata[i], html_len[i], 1 << 20, NULL);
			tr_pool_clear(pool);
		}
	}
	double html_s = now() - t0;

	GPtrArray *texts = g_ptr_array_new();
	for (guint i = 0; i < p.plain->len; i++)
		g_ptr_array_add(texts, p.plain->pdata[i]);
	for (guint i = 0; i < converted->len; i++)
		g_ptr_array_add(texts, converted->pdata[i]);
	size_t text_bytes;
	size_t *text_len = lengths(texts, &text_bytes);
	unsigned quoted = 0, signed_ = 0;
	t0 = now();
	for (int r = 0; r < rounds; r++) {
		for (guint i = 0; i < texts->len; i++) {
			tr_quote_parts q;
			tr_quote_split(pool, texts->pdata[i], text_len[i], &q);
			if (r == 0) {
				quoted += q.quoted_len > 0;
				signed_ += q.signature_len > 0;
			}
			tr_pool_clear(pool);
		}
	}
	double quote_s = now() - t0;

	printf("messages %u, rounds %d\n", messages, rounds);
	if (html_bytes > 0)
		printf("tr_html_to_text: %u parts, %.1f KB, %.2f us/KB, %.1f us/part\n", p.html->len,
		       html_bytes / 1024.0, html_s * 1e6 / rounds / (html_bytes / 1024.0),
		       html_s * 1e6 / rounds / p.html->len);
	if (text_bytes > 0)
		printf("tr_quote_split:  %u texts, %.1f KB, %.2f us/KB, %.1f us/text "
		       "(%u with quoted history, %u with signature)\n",
		       texts->len, text_bytes / 1024.0, quote_s * 1e6 / rounds / (text_bytes / 1024.0),
		       quote_s * 1e6 / rounds / texts->len, quoted, signed_);

	g_free(html_len);
	g_free(text_len);
	g_ptr_array_free(texts, TRUE);
	g_ptr_array_free(converted, TRUE);
	g_ptr_array_free(p.html, TRUE);
	g_ptr_array_free(p.plain, TRUE);
	tr_pool_free(&pool);
	return 0;
}
