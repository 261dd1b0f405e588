/*
 * bench_template.c — template compile and render cost.
 *
 *     make build/bench/bench_template && build/bench/bench_template [tests/unit/data/ack-sample.tmpl]
 *
 * Prints µs per operation for the shipped acknowledgment (a 42-line
 * template file: three header templates and the body), rendered the way
 * the outbox does it: every header in header mode, the body in text mode.
 */
#include "core/template.h"

#include <gmime/gmime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char CONTEXT_JSON[] =
	"{"
	"\"ticket\": {\"id\": \"TKT-000042\", \"priority\": \"P2\"},"
	"\"subject\": \"%s\","
	"\"customer\": {\"name\": \"Ana Souza\", \"tier\": \"enterprise\"},"
	"\"team\": {\"name\": \"Billing Support\", \"signature\": \"billing@example.test · +49 30 1234567\"},"
	"\"sla\": {\"first_response_minutes\": 240, \"first_response_due\": 1740988800},"
	"\"business_hours\": false,"
	"\"articles\": [{\"title\": \"Why was I charged twice?\", \"url\": \"https://help.example.test/a/12\"},"
	"               {\"title\": \"Refunds: how long they take, and how to follow them up with your bank\","
	"                \"url\": \"https://help.example.test/a/31\"}],"
	"\"message\": {\"excerpt\": \"Hello,\\n\\nour card was charged twice for invoice 2025-0042.\\n"
	"Please refund one of the payments.\\n\\nThanks\\nAna\\n-- \\nsent from my phone\\n\"},"
	"\"tz\": \"Europe/Berlin\""
	"}";

/* CPU time of this process: other work on a shared machine matters less
 * than it does to wall-clock time. */
static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static size_t render_all(const tr_tmpl_file *f, JsonNode *ctx)
{
	size_t bytes = 0;
	for (guint h = 0; h < tr_tmpl_file_n_headers(f); h++) {
		char *v = tr_tmpl_render(tr_tmpl_file_header(f, h), ctx, "en", TR_TMPL_HEADER, 998, NULL);
		if (v == NULL)
			abort();
		bytes += strlen(v);
		g_free(v);
	}
	char *body = tr_tmpl_render(tr_tmpl_file_body(f), ctx, "en", TR_TMPL_TEXT, 0, NULL);
	if (body == NULL)
		abort();
	bytes += strlen(body);
	g_free(body);
	return bytes;
}

static void bench_render(const tr_tmpl_file *f, const char *label, const char *subject)
{
	char *json = g_strdup_printf(CONTEXT_JSON, subject);
	JsonNode *ctx = json_from_string(json, NULL);
	if (ctx == NULL)
		abort();
	const int warm = 2000, runs = 20000, batches = 5;
	size_t bytes = 0;
	double best = 1e99;
	for (int i = 0; i < warm; i++)
		bytes = render_all(f, ctx);
	for (int b = 0; b < batches; b++) {
		double t0 = now_us();
		for (int i = 0; i < runs; i++)
			render_all(f, ctx);
		best = MIN(best, (now_us() - t0) / runs);
	}
	printf("render ack.en (%s subject): %.2f µs CPU per message, best of %d × %d "
	       "(%zu bytes out, %.0f/s per core)\n", label, best, batches, runs, bytes, 1e6 / best);
	json_node_unref(ctx);
	g_free(json);
}

int main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : "tests/unit/data/ack-sample.tmpl";
	GError *error = NULL;
	g_mime_init();

	char *src = NULL;
	gsize len = 0;
	if (!g_file_get_contents(path, &src, &len, &error)) {
		fprintf(stderr, "%s\n", error->message);
		return 1;
	}
	const int compiles = 20000;
	double t0 = now_us();
	for (int i = 0; i < compiles; i++) {
		tr_tmpl_file *f = tr_tmpl_file_parse(path, src, len, &error);
		if (f == NULL) {
			fprintf(stderr, "%s\n", error->message);
			return 1;
		}
		tr_tmpl_file_free(&f);
	}
	int lines = 0;
	for (gsize i = 0; i < len; i++)
		lines += src[i] == '\n';
	printf("compile ack.en (%zu bytes, %d lines): %.2f µs CPU\n", (size_t)len, lines, (now_us() - t0) / compiles);

	tr_tmpl_file *f = tr_tmpl_file_parse(path, src, len, &error);
	bench_render(f, "ASCII", "Invoice 2025-0042 was charged twice, please refund the duplicate");
	bench_render(f, "non-ASCII", "Réclamation : facture 2025-0042 débitée deux fois — remboursement");
	bench_render(f, "injection", "Hi\\r\\nBcc: victim@example.com =?utf-8?q?x?=");

	/* the worst a template can do: run into the work limit */
	JsonNode *big = json_from_string("{\"l\": [0,1,2,3,4,5,6,7,8,9,0,1,2,3,4,5,6,7,8,9,0,1,2,3,4,5,6,7,8,9,"
	                                 "0,1,2,3,4,5,6,7,8,9,0,1,2,3,4,5,6,7,8,9,0,1,2,3,4,5,6,7,8,9]}", NULL);
	const char *loops = "{% for a in l %}{% for b in l %}{% for c in l %}{% for d in l %}{% if a == b %}"
	                    "{% endif %}{% endfor %}{% endfor %}{% endfor %}{% endfor %}";
	tr_tmpl *t = tr_tmpl_compile("worst", loops, strlen(loops), &error);
	t0 = now_us();
	char *out = tr_tmpl_render(t, big, "en", TR_TMPL_TEXT, 0, &error);
	printf("worst case (work limit reached): %.1f ms CPU, %s\n", (now_us() - t0) / 1000,
	       out == NULL ? error->message : "no error?");
	g_clear_error(&error);
	g_free(out);
	tr_tmpl_free(&t);
	json_node_unref(big);
	tr_tmpl_file_free(&f);
	g_free(src);
	return 0;
}
