/*
 * fuzz_template.c — libFuzzer target for the template language.
 *
 * The input is compiled as a template, checked against a known list and
 * rendered against a fixed context in text and header mode (and parsed
 * as a template file).  Beyond the sanitizers it asserts the module's
 * promises: errors carry "name:LINE:COL: ", text output respects
 * max_bytes and is valid UTF-8, header output is one line of printable
 * ASCII whose words fit RFC 2047's 75 characters.
 *
 *     make fuzz-build && build/fuzz/fuzz_template -dict=tests/fuzz/fuzz_template.dict \
 *         -max_total_time=60 tests/fuzz/corpus/template
 */
#include "core/template.h"

#include <gmime/gmime.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static JsonNode *context;

static const char *const known[] = {
	"ticket.id", "ticket.priority", "subject", "customer.name", "customer.tier", "list[]",
	"articles[].title", "articles[].tags[]", "due", "mins", "body", "tz", "zone", "n", NULL,
};

static const char CONTEXT_JSON[] =
	"{\"ticket\": {\"id\": \"TKT-1\", \"priority\": \"P1\"},"
	" \"subject\": \"Hi\\r\\nBcc: v@example.com =?utf-8?q?x?= \\u00e9\\u65e5\\u672c\","
	" \"customer\": {\"name\": \"Ana\", \"tier\": \"\"},"
	" \"list\": [\"a\", 2, 3.5, true, null, [1], {\"k\": 1}],"
	" \"articles\": [{\"title\": \"One\", \"tags\": [\"x\", \"y\"]}, {\"title\": \"Two\", \"tags\": []}],"
	" \"due\": 1740988800, \"mins\": 150, \"n\": -7, \"tz\": \"Europe/Berlin\", \"zone\": \"../../etc/passwd\","
	" \"body\": \"line\\r\\nline2\\n\\n\\u0007\\u001b\\u2028x\"}";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	g_mime_init();
	context = json_from_string(CONTEXT_JSON, NULL);
	if (context == NULL)
		abort();
	return 0;
}

static void expect_position(const GError *error, const char *name)
{
	/* "name:LINE:COL: message" */
	size_t n = strlen(name);
	if (strncmp(error->message, name, n) != 0 || error->message[n] != ':' ||
	    !g_ascii_isdigit(error->message[n + 1]))
		abort();
}

static void check_header(const char *v, size_t max)
{
	size_t word = 0;
	if (strlen(v) > max)
		abort();
	for (const char *c = v; *c != '\0'; c++) {
		if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
			abort();
		word = *c == ' ' ? 0 : word + 1;
		if (word > 76)
			abort();
	}
}

static void exercise(const tr_tmpl *t, const char *lang, size_t max)
{
	GError *error = NULL;
	char *out = tr_tmpl_render(t, context, lang, TR_TMPL_TEXT, max, &error);
	if (out == NULL) {
		expect_position(error, tr_tmpl_name(t));
		g_clear_error(&error);
	} else if (strlen(out) > max || !g_utf8_validate(out, -1, NULL)) {
		abort();
	}
	g_free(out);
	out = tr_tmpl_render(t, context, lang, TR_TMPL_HEADER, max, &error);
	if (out == NULL) {
		expect_position(error, tr_tmpl_name(t));
		g_clear_error(&error);
	} else {
		check_header(out, max);
	}
	g_free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const langs[] = { "en", "es", "de", "fr", "pt", NULL };
	const char *lang = langs[size % G_N_ELEMENTS(langs)];
	GError *error = NULL;

	tr_tmpl *t = tr_tmpl_compile("fuzz", (const char *)data, size, &error);
	if (t == NULL) {
		expect_position(error, "fuzz");
		g_clear_error(&error);
	} else {
		if (!tr_tmpl_check(t, known, &error)) {
			expect_position(error, "fuzz");
			g_clear_error(&error);
		}
		exercise(t, lang, 4096);
		tr_tmpl_free(&t);
	}

	tr_tmpl_file *f = tr_tmpl_file_parse("fuzz.tmpl", (const char *)data, size, &error);
	if (f == NULL) {
		expect_position(error, "fuzz.tmpl");
		g_clear_error(&error);
	} else {
		if (!tr_tmpl_file_check(f, known, &error))
			g_clear_error(&error);
		for (guint i = 0; i < tr_tmpl_file_n_headers(f); i++)
			exercise(tr_tmpl_file_header(f, i), lang, 998);
		exercise(tr_tmpl_file_body(f), lang, 4096);
		tr_tmpl_file_free(&f);
	}
	return 0;
}
