/* test_template.c — the template language (tr_tmpl_*) */
#include "testutil.h"
#include "core/template.h"

#include <gmime/gmime.h>
#include <string.h>
#include <unistd.h>

/* 2025-03-03 08:00:00 UTC: a Monday, 09:00 CET in Berlin */
#define MONDAY_0800_UTC "1740988800"
/* 2025-07-06 16:30:00 UTC: a Sunday, 18:30 CEST in Berlin */
#define SUNDAY_1630_UTC "1751819400"

static const char *const CONTEXT_JSON =
	"{"
	"\"ticket\": {\"id\": \"TKT-000042\", \"priority\": \"P1\", \"number\": 42, \"score\": 0.5},"
	"\"customer\": {\"name\": \"Ana\", \"tier\": \"enterprise\"},"
	"\"empty\": \"\", \"zero\": 0, \"one\": 1, \"fzero\": 0.0, \"yes\": true, \"no\": false,"
	"\"none\": null, \"list0\": [], \"list\": [\"a\", \"b\", \"c\"], \"obj0\": {}, \"obj\": {\"k\": 1},"
	"\"nums\": [1, 2.5, true, null, [9], \"x\"],"
	"\"articles\": [{\"title\": \"Reset your password\", \"tags\": [\"a\", \"b\"]},"
	"               {\"title\": \"Billing FAQ\", \"tags\": []}],"
	"\"due\": " MONDAY_0800_UTC ", \"sunday\": " SUNDAY_1630_UTC ","
	"\"tz\": \"Europe/Berlin\", \"other_tz\": \"America/New_York\", \"bad_tz\": \"/etc/passwd\","
	"\"mins\": 150, \"mins_str\": \"90\", \"text\": \"hello\","
	"\"body\": \"line one\\nline two\\r\\nline three\\n\\nline five\\n\","
	"\"evil\": \"Hi\\r\\nBcc: victim@example.com\""
	"}";

static JsonNode *context(const char *json)
{
	GError *error = NULL;
	JsonNode *n = json_from_string(json, &error);
	if (n == NULL)
		fail_msg("bad test JSON: %s", error->message);
	return n;
}

static tr_tmpl *compile_ok(const char *src)
{
	GError *error = NULL;
	tr_tmpl *t = tr_tmpl_compile("t", src, strlen(src), &error);
	if (t == NULL)
		fail_msg("compile failed for «%s»: %s", src, error->message);
	return t;
}

/* Render src against json; the result (or "ERROR: message") to g_free. */
static char *render_full(const char *src, const char *json, const char *lang, tr_tmpl_mode mode,
                         size_t max_bytes)
{
	GError *error = NULL;
	tr_tmpl *t = compile_ok(src);
	JsonNode *ctx = context(json);
	char *out = tr_tmpl_render(t, ctx, lang, mode, max_bytes, &error);
	if (out == NULL) {
		assert_non_null(error);
		out = g_strdup_printf("ERROR: %s", error->message);
		g_error_free(error);
	} else {
		assert_null(error);
	}
	json_node_unref(ctx);
	tr_tmpl_free(&t);
	assert_null(t);
	return out;
}

#define assert_render_lang(src, lang, expected) do { \
		char *out_ = render_full((src), CONTEXT_JSON, (lang), TR_TMPL_TEXT, 0); \
		if (strcmp(out_, (expected)) != 0) \
			fail_msg("%s [%s]\n  got      «%s»\n  expected «%s»", (src), (lang) ? (lang) : "-", \
			         out_, (expected)); \
		g_free(out_); \
	} while (0)
#define assert_render(src, expected) assert_render_lang((src), "en", (expected))

/* Compile must fail with exactly this message and code. */
static void assert_compile_error(const char *src, int code, const char *message)
{
	GError *error = NULL;
	tr_tmpl *t = tr_tmpl_compile("t", src, strlen(src), &error);
	if (t != NULL)
		fail_msg("compiled but should not: «%s»", src);
	assert_non_null(error);
	if (!g_error_matches(error, TR_TMPL_ERROR, code) || strcmp(error->message, message) != 0)
		fail_msg("«%s»\n  got      %d «%s»\n  expected %d «%s»", src, error->code, error->message,
		         code, message);
	g_error_free(error);
}

/* ------------------------------------------------------------------ */

static void test_variables(void **state)
{
	(void)state;
	assert_render("plain text, no tags", "plain text, no tags");
	assert_render("", "");
	assert_render("[{{ ticket.id }}] {{customer.name}}", "[TKT-000042] Ana");
	assert_render("{{ ticket.number }} {{ ticket.score }} {{ yes }} {{ no }}", "42 0.5 true false");
	assert_render("<{{ none }}><{{ missing }}><{{ ticket.missing.deeper }}><{{ obj }}>", "<><><><>");
	assert_render("{{ list }}|{{ nums }}", "a, b, c|1, 2.5, true, x");
	assert_render("{{ articles.1.title }}|{{ list.0 }}{{ list.2 }}|{{ list.3 }}|{{ text.0 }}",
	              "Billing FAQ|ac||");
	assert_render("{{ \"{{\" }} literal {{ '}}' }} {{ 7 }} {{ -3 }} {{ true }}", "{{ literal }} 7 -3 true");
	assert_render("{{ \"tab\\there\\nquote\\\" \\\\ \\'\" }}", "tab\there\nquote\" \\ '");
	assert_render("{ not a tag } {x} %} }}", "{ not a tag } {x} %} }}");
	assert_render("{{ ticket . id }}", "TKT-000042");
	/* a NULL or non-object context is empty, not an error */
	tr_tmpl *t = compile_ok("<{{ a.b }}>");
	JsonNode *arr = context("[1,2]");
	char *out = tr_tmpl_render(t, NULL, NULL, TR_TMPL_TEXT, 0, NULL);
	assert_string_equal(out, "<>");
	g_free(out);
	out = tr_tmpl_render(t, arr, NULL, TR_TMPL_TEXT, 0, NULL);
	assert_string_equal(out, "<>");
	g_free(out);
	json_node_unref(arr);
	assert_string_equal(tr_tmpl_name(t), "t");
	tr_tmpl_free(&t);
	tr_tmpl_free(&t);
}

static void test_if(void **state)
{
	(void)state;
	static const struct {
		const char *path;
		gboolean truthy;
	} cases[] = {
		{ "empty", FALSE }, { "text", TRUE }, { "zero", FALSE }, { "one", TRUE },
		{ "fzero", FALSE }, { "ticket.score", TRUE }, { "yes", TRUE }, { "no", FALSE },
		{ "none", FALSE }, { "missing", FALSE }, { "list0", FALSE }, { "list", TRUE },
		{ "obj0", FALSE }, { "obj", TRUE },
	};
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		char *src = g_strdup_printf("{%% if %s %%}T{%% else %%}F{%% endif %%}", cases[i].path);
		assert_render(src, cases[i].truthy ? "T" : "F");
		g_free(src);
		src = g_strdup_printf("{%% if not %s %%}T{%% endif %%}", cases[i].path);
		assert_render(src, cases[i].truthy ? "" : "T");
		g_free(src);
	}
	const char *chain = "{% if ticket.priority == \"P3\" %}three{% elif ticket.priority == \"P1\" %}one"
	                    "{% elif yes %}yes{% else %}else{% endif %}";
	assert_render(chain, "one");
	assert_render("{% if no %}a{% elif none %}b{% else %}c{% endif %}", "c");
	assert_render("{% if no %}a{% elif none %}b{% endif %}", "");
	assert_render("{% if ticket.priority != \"P1\" %}x{% else %}y{% endif %}", "y");
	assert_render("{% if ticket.number == 42 %}n{% endif %}{% if ticket.number == \"42\" %}s{% endif %}", "ns");
	assert_render("{% if missing == \"\" %}empty{% endif %}", "empty");
	/* and binds tighter than or; not binds tighter than and */
	assert_render("{% if yes or no and no %}T{% else %}F{% endif %}", "T");
	assert_render("{% if (yes or no) and no %}T{% else %}F{% endif %}", "F");
	assert_render("{% if not no and yes %}T{% else %}F{% endif %}", "T");
	assert_render("{% if not not yes %}T{% endif %}", "T");
	assert_render("{% if customer.name | upper == \"ANA\" %}up{% endif %}", "up");
	assert_render("{{ yes and one }} {{ no or zero }} {{ text == \"hello\" }}", "true false true");
	assert_render("{% if true %}{% if false %}x{% else %}nested{% endif %}{% endif %}", "nested");
}

static void test_for(void **state)
{
	(void)state;
	assert_render("{% for x in list %}{{ loop.index }}:{{ x }}{% if loop.first %}(first){% endif %}"
	              "{% if loop.last %}(last){% else %},{% endif %}{% endfor %}",
	              "1:a(first),2:b,3:c(last)");
	assert_render("{% for x in list %}{{ loop.index0 }}/{{ loop.length }} {% endfor %}", "0/3 1/3 2/3 ");
	assert_render("{% for a in articles %}[{{ a.title }}:{% for t in a.tags %}{{ t }}{{ loop.index }}"
	              "{{ a.title | truncate:3 }}{% else %}none{% endfor %}]{% endfor %}",
	              "[Reset your password:a1Re…b2Re…][Billing FAQ:none]");
	/* the inner loop's `loop` is the inner loop */
	assert_render("{% for a in list %}{% for b in list %}{% if loop.last %}{{ a }}{{ b }}{{ loop.index }}"
	              "{% endif %}{% endfor %}{% endfor %}", "ac3bc3cc3");
	/* a loop variable shadows a context member of the same name */
	assert_render("{% for text in list %}{{ text }}{% endfor %}{{ text }}", "abchello");
	assert_render("{% for x in list0 %}x{% else %}empty{% endfor %}", "empty");
	assert_render("{% for x in missing %}x{% else %}missing{% endfor %}", "missing");
	assert_render("{% for x in text %}x{% else %}not a list{% endfor %}", "not a list");
	assert_render("{% for x in obj %}x{% endfor %}", "");
	assert_render("{% for n in nums %}<{{ n }}>{% endfor %}", "<1><2.5><true><><9><x>");
}

static void test_comments_and_trimming(void **state)
{
	(void)state;
	assert_render("a{# a comment {{ x }} {% if %} #}b", "ab");
	assert_render("a {#- trims before #} b", "a b");
	assert_render("a {# trims after -#} b", "a b");
	assert_render("a {#- both -#} b", "ab");
	assert_render("a\n\t {{- text -}} \n b", "ahellob");
	assert_render("<ul>\n  {%- for x in list %}\n  <li>{{ x }}</li>\n  {%- endfor %}\n</ul>",
	              "<ul>\n  <li>a</li>\n  <li>b</li>\n  <li>c</li>\n</ul>");
	assert_render("A\n{% if yes -%}\n   B\n{%- endif %}\nC", "A\nB\nC");
	assert_render("A\n{% if yes %}\nB\n{% endif %}\nC", "A\n\nB\n\nC");
	/* trimming only touches literal text, never substituted values */
	assert_render("[{{- \"  padded  \" -}}]", "[  padded  ]");
	assert_render("x{{- text }}{{ text -}}  y", "xhellohelloy");
}

static void test_filter_upper_lower(void **state)
{
	(void)state;
	assert_render("{{ customer.name | upper }} {{ customer.name | lower }}", "ANA ana");
	assert_render("{{ \"straße élan ñ\" | upper }}", "STRASSE ÉLAN Ñ");
	assert_render("{{ \"ÉCOLE Ωmega\" | lower }}", "école ωmega");
	assert_render("{{ ticket.number | upper }}|{{ missing | upper }}", "42|");
	assert_render("{{ customer.name | upper | lower | upper }}", "ANA");
}

static void test_filter_default(void **state)
{
	(void)state;
	assert_render("{{ missing | default:\"there\" }}", "there");
	assert_render("{{ empty | default:\"e\" }}|{{ none | default:'n' }}|{{ list0 | default:\"l\" }}", "e|n|l");
	assert_render("{{ customer.name | default:\"there\" }}", "Ana");
	assert_render("{{ zero | default:\"z\" }}|{{ no | default:\"f\" }}", "0|false");
	assert_render("{{ missing | default:customer.name }}|{{ missing | default:7 }}", "Ana|7");
	assert_render("{{ missing | default:other | default:\"last\" }}", "last");
	assert_render("{{ missing | default:\"x\" | upper }}", "X");
}

static void test_filter_truncate(void **state)
{
	(void)state;
	assert_render("{{ \"abcdefghij\" | truncate:10 }}", "abcdefghij");
	assert_render("{{ \"abcdefghij\" | truncate:9 }}", "abcdefgh…");
	assert_render("{{ \"abcdefghij\" | truncate:1 }}", "…");
	assert_render("{{ \"hello world\" | truncate:7 }}", "hello…");
	/* characters, not bytes */
	assert_render("{{ \"ñandú ñandú\" | truncate:5 }}", "ñand…");
	assert_render("{{ \"日本語のテキスト\" | truncate:4 }}", "日本語…");
	assert_render("{{ \"日本語\" | truncate:3 }}", "日本語");
	/* a base letter is not separated from its combining accent */
	assert_render("{{ \"abe\xCC\x81" "cd\" | truncate:4 }}", "ab…");
	assert_render("{{ ticket.number | truncate:1 }}", "…");
	assert_render("{{ missing | truncate:3 }}", "");
}

static void test_filter_lines(void **state)
{
	(void)state;
	assert_render("{{ body | quote }}", "> line one\n> line two\n> line three\n>\n> line five\n");
	assert_render("{{ \"single\" | quote }}", "> single");
	assert_render("{{ body | indent:2 }}", "  line one\n  line two\n  line three\n\n  line five\n");
	assert_render("{{ \"x\" | indent:0 }}", "x");
	assert_render("{{ body | first_lines:1 }}", "line one");
	assert_render("{{ body | first_lines:2 }}", "line one\nline two");
	assert_render("{{ body | first_lines:3 | quote }}", "> line one\n> line two\n> line three");
	assert_render("{{ body | first_lines:50 }}", "line one\nline two\nline three\n\nline five\n");
	assert_render("{{ \"a\\nb\" | first_lines:5 }}", "a\nb");
	assert_render("{{ list | join }}|{{ list | join:\" / \" }}|{{ list0 | join:\"-\" }}", "a, b, c|a / b / c|");
	assert_render("{{ text | join:\"-\" }}|{{ nums | join:\"+\" }}", "hello|1+2.5+true+x");
}

static void test_filter_duration_all_languages(void **state)
{
	(void)state;
	static const struct {
		const char *minutes;
		const char *en, *es, *de, *fr, *pt;
	} cases[] = {
		{ "0", "0 minutes", "0 minutos", "0 Minuten", "0 minute", "0 minutos" },
		{ "1", "1 minute", "1 minuto", "1 Minute", "1 minute", "1 minuto" },
		{ "15", "15 minutes", "15 minutos", "15 Minuten", "15 minutes", "15 minutos" },
		{ "30", "30 minutes", "30 minutos", "30 Minuten", "30 minutes", "30 minutos" },
		{ "60", "1 hour", "1 hora", "1 Stunde", "1 heure", "1 hora" },
		{ "120", "2 hours", "2 horas", "2 Stunden", "2 heures", "2 horas" },
		{ "150", "2 hours 30 minutes", "2 horas 30 minutos", "2 Stunden 30 Minuten",
		  "2 heures 30 minutes", "2 horas 30 minutos" },
		{ "61", "1 hour 1 minute", "1 hora 1 minuto", "1 Stunde 1 Minute", "1 heure 1 minute",
		  "1 hora 1 minuto" },
		{ "1440", "1 day", "1 día", "1 Tag", "1 jour", "1 dia" },
		{ "2880", "2 days", "2 días", "2 Tage", "2 jours", "2 dias" },
		{ "1501", "1 day 1 hour 1 minute", "1 día 1 hora 1 minuto", "1 Tag 1 Stunde 1 Minute",
		  "1 jour 1 heure 1 minute", "1 dia 1 hora 1 minuto" },
		{ "-90", "-1 hour 30 minutes", "-1 hora 30 minutos", "-1 Stunde 30 Minuten",
		  "-1 heure 30 minutes", "-1 hora 30 minutos" },
		{ "\"90\"", "1 hour 30 minutes", "1 hora 30 minutos", "1 Stunde 30 Minuten",
		  "1 heure 30 minutes", "1 hora 30 minutos" },
		{ "44.6", "45 minutes", "45 minutos", "45 Minuten", "45 minutes", "45 minutos" },
		{ "\"soon\"", "soon", "soon", "soon", "soon", "soon" },
		{ "null", "", "", "", "", "" },
	};
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		char *json = g_strdup_printf("{\"m\": %s}", cases[i].minutes);
		const char *langs[] = { "en", "es", "de", "fr", "pt" };
		const char *want[] = { cases[i].en, cases[i].es, cases[i].de, cases[i].fr, cases[i].pt };
		for (int l = 0; l < 5; l++) {
			char *out = render_full("{{ m | duration }}", json, langs[l], TR_TMPL_TEXT, 0);
			if (strcmp(out, want[l]) != 0)
				fail_msg("duration %s [%s]: got «%s», expected «%s»", cases[i].minutes, langs[l], out,
				         want[l]);
			g_free(out);
		}
		g_free(json);
	}
	assert_render("{{ mins | duration | default:\"x\" }} / {{ mins_str | duration }}",
	              "2 hours 30 minutes / 1 hour 30 minutes");
	assert_render("{{ missing | duration | default:\"no deadline\" }}", "no deadline");
}

static void test_filter_date_all_languages(void **state)
{
	(void)state;
	static const struct {
		const char *lang;
		const char *monday, *sunday, *full;
	} cases[] = {
		{ "en", "Monday 09:00 CET", "Sunday 18:30 CEST", "Mon 03 Mar 2025 / March 3, 25 08:00:00 +0000" },
		{ "es", "lunes 09:00 CET", "domingo 18:30 CEST", "lun 03 mar 2025 / marzo 3, 25 08:00:00 +0000" },
		{ "de", "Montag 09:00 CET", "Sonntag 18:30 CEST", "Mo 03 Mär 2025 / März 3, 25 08:00:00 +0000" },
		{ "fr", "lundi 09:00 CET", "dimanche 18:30 CEST",
		  "lun. 03 mars 2025 / mars 3, 25 08:00:00 +0000" },
		{ "pt", "segunda-feira 09:00 CET", "domingo 18:30 CEST",
		  "seg 03 mar 2025 / março 3, 25 08:00:00 +0000" },
	};
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		assert_render_lang("{{ due | date }}", cases[i].lang, cases[i].monday);
		assert_render_lang("{{ sunday | date }}", cases[i].lang, cases[i].sunday);
		assert_render_lang("{{ due | date:\"%a %d %b %Y / %B %e, %y %H:%M:%S %z\",\"UTC\" }}", cases[i].lang,
		                   cases[i].full);
	}
	/* every month and weekday name in every language is reachable */
	assert_render_lang("{{ 1767225600 | date:\"%A %B\",\"UTC\" }}", "de", "Donnerstag Januar");
	assert_render_lang("{{ 1764547200 | date:\"%A %d %B\",\"UTC\" }}", "fr", "lundi 01 décembre");
	assert_render_lang("{{ 1754006400 | date:\"%a %b\",\"UTC\" }}", "es", "vie ago");
	assert_render_lang("{{ 1740787200 | date:\"%a %b\",\"UTC\" }}", "pt", "sáb mar");

	/* the zone: a literal argument, a variable argument, the context's tz, UTC */
	assert_render("{{ due | date:\"%H:%M %Z\",\"America/New_York\" }}", "03:00 EST");
	assert_render("{{ due | date:\"%H:%M %Z\",other_tz }}", "03:00 EST");
	assert_render("{{ due | date:\"%H:%M %Z %z\" }}", "09:00 CET +0100");
	char *out = render_full("{{ t | date:\"%H:%M %Z\" }}", "{\"t\": " MONDAY_0800_UTC "}", "en",
	                        TR_TMPL_TEXT, 0);
	assert_string_equal(out, "08:00 UTC");
	g_free(out);
	/* a hostile or unknown zone name is never opened as a file: UTC */
	assert_render("{{ due | date:\"%H:%M %Z\",bad_tz }}", "08:00 UTC");
	out = render_full("{{ t | date:\"%H:%M %Z\" }}", "{\"t\": " MONDAY_0800_UTC ", \"tz\": \"Mars/Olympus\"}",
	                  "en", TR_TMPL_TEXT, 0);
	assert_string_equal(out, "08:00 UTC");
	g_free(out);
	out = render_full("{{ t | date:\"%Y-%m-%d %H:%M\" }}", "{\"t\": \"1740988800\", \"tz\": \"Asia/Kolkata\"}",
	                  "en", TR_TMPL_TEXT, 0);
	assert_string_equal(out, "2025-03-03 13:30");
	g_free(out);
	/* not a time: left as it is */
	assert_render("{{ text | date }}|{{ missing | date | default:\"n/a\" }}|{{ 99999999999999 | date }}",
	              "hello|n/a|99999999999999");
	assert_render("{{ due | date:\"100%% sure\" }}", "100% sure");
}

static void test_languages(void **state)
{
	(void)state;
	assert_render_lang("{{ mins | duration }}", NULL, "2 hours 30 minutes");
	assert_render_lang("{{ mins | duration }}", "pt-BR", "2 horas 30 minutos");
	assert_render_lang("{{ mins | duration }}", "DE_at", "2 Stunden 30 Minuten");
	assert_render_lang("{{ mins | duration }}", "xx", "2 hours 30 minutes");
	assert_render_lang("{{ mins | duration }}", "esperanto", "2 hours 30 minutes");
	assert_render_lang("{{ mins | duration }}", "", "2 hours 30 minutes");
	assert_render_lang("{{ mins | duration }}", "e", "2 hours 30 minutes");
}

/* Only duration and date speak a language: every other filter renders the
 * same in all five. */
static void test_filters_language_neutral(void **state)
{
	(void)state;
	const char *src = "{{ customer.name | upper }}|{{ customer.name | lower }}|{{ missing | default:\"d\" }}|"
	                  "{{ articles.0.title | truncate:8 }}|{{ body | first_lines:2 | quote }}|"
	                  "{{ body | first_lines:1 | indent:2 }}|{{ list | join:\"/\" }}|{{ list | join }}";
	const char *want = "ANA|ana|d|Reset y…|> line one\n> line two|  line one|a/b/c|a, b, c";
	const char *langs[] = { "en", "es", "de", "fr", "pt" };
	for (int l = 0; l < 5; l++)
		assert_render_lang(src, langs[l], want);
}

static void test_syntax_errors(void **state)
{
	(void)state;
	const int S = TR_TMPL_ERROR_SYNTAX;
	assert_compile_error("Hello {{ name", S, "t:1:7: '{{' is not closed");
	assert_compile_error("Hello {% if x", S, "t:1:7: '{%' is not closed");
	assert_compile_error("a\nb {# open", S, "t:2:3: '{#' is not closed");
	assert_compile_error("{{ }}", S, "t:1:1: empty '{{ }}'");
	assert_compile_error("{% %}", S, "t:1:4: expected a tag name (if, elif, else, endif, for, endfor)");
	assert_compile_error("line 1\nline 2 {% iff x %}", S,
	                     "t:2:11: unknown tag 'iff' (use if, elif, else, endif, for, endfor)");
	assert_compile_error("{% if x %}\n  yes\n", S, "t:1:1: 'if' is not closed (missing '{% endif %}')");
	assert_compile_error("ab\n{% for x in y %}", S, "t:2:1: 'for' is not closed (missing '{% endfor %}')");
	assert_compile_error("x {% endif %}", S, "t:1:3: 'endif' without 'if'");
	assert_compile_error("x {% elif a %}", S, "t:1:3: 'elif' without 'if'");
	assert_compile_error("x {% else %}", S, "t:1:3: 'else' outside 'if' or 'for'");
	assert_compile_error("x {% endfor %}", S, "t:1:3: 'endfor' without 'for'");
	assert_compile_error("{% for a in b %}\n {% if c %}\n{% endfor %}", S,
	                     "t:3:1: unexpected 'endfor': the 'if' at 2:2 is still open");
	assert_compile_error("{% if a %}{% else %}{% elif b %}{% endif %}", S,
	                     "t:1:21: unexpected 'elif': the 'if' at 1:1 is still open");
	assert_compile_error("{{ a b }}", S, "t:1:6: expected '}}', found 'b'");
	assert_compile_error("{{ a. }}", S, "t:1:7: expected a name or an index after '.', found '}}'");
	assert_compile_error("{{ a | }}", S, "t:1:8: expected a filter name after '|', found '}}'");
	assert_compile_error("{{ a | default: }}", S, "t:1:17: expected a filter argument, found '}}'");
	assert_compile_error("{{ \"abc }}", S, "t:1:4: unterminated string");
	assert_compile_error("{{ \"a\\qb\" }}", S, "t:1:6: unknown escape in string (use \\n \\t \\\\ \\\" \\')");
	assert_compile_error("{{ a & b }}", S, "t:1:6: unexpected character '&'");
	assert_compile_error("{{ a = b }}", S, "t:1:6: unexpected character '='");
	assert_compile_error("{{ a == b == c }}", S, "t:1:11: comparisons cannot be chained; use 'and'");
	assert_compile_error("{% if (a %}", S, "t:1:10: expected ')', found '%}'");
	assert_compile_error("{% if and %}", S, "t:1:7: expected a value, found 'and'");
	assert_compile_error("{% if a and %}", S, "t:1:13: expected a value, found '%}'");
	assert_compile_error("{{ 12ab }}", S, "t:1:4: a number cannot run into a name");
	assert_compile_error("{{ 99999999999999999999 }}", S, "t:1:4: number too large");
	assert_compile_error("{% for in x %}{% endfor %}", S, "t:1:8: expected a loop variable name, found 'in'");
	assert_compile_error("{% for loop in x %}{% endfor %}", S,
	                     "t:1:8: expected a loop variable name, found 'loop'");
	assert_compile_error("{% for a of x %}{% endfor %}", S, "t:1:10: expected 'in', found 'of'");
	assert_compile_error("{% for a in \"x\" %}{% endfor %}", S, "t:1:13: expected a list variable, found a string");
	assert_compile_error("{% for a in x %}{% for b in loop.index %}{% endfor %}{% endfor %}", S,
	                     "t:1:29: cannot loop over loop.*");
	assert_compile_error("{{ loop.index }}", S, "t:1:4: 'loop' is only defined inside a for loop");
	assert_compile_error("{% for a in x %}{{ loop.idx }}{% endfor %}", S,
	                     "t:1:20: use loop.index, loop.index0, loop.first, loop.last or loop.length");
	assert_compile_error("{% endif %}", S, "t:1:1: 'endif' without 'if'");
	/* columns count characters, not bytes */
	assert_compile_error("héllo wörld {{ ä ", S, "t:1:16: unexpected character U+00E4");
	assert_compile_error("ok\n\xC3\x28", S, "t:2:1: not valid UTF-8 (or a NUL byte)");
	/* tags may span lines; positions follow */
	assert_compile_error("{% if\n   a ==\n   %}{% endif %}", S, "t:3:4: expected a value, found '%}'");
}

static void test_nul_byte_position(void **state)
{
	(void)state;
	GError *error = NULL;
	tr_tmpl *t = tr_tmpl_compile("t", "nul\0byte", 8, &error);
	assert_null(t);
	assert_string_equal(error->message, "t:1:4: not valid UTF-8 (or a NUL byte)");
	g_error_free(error);
	/* len is honoured: no NUL terminator needed */
	t = tr_tmpl_compile("t", "{{ text }}TRAILING", 10, &error);
	assert_non_null(t);
	tr_tmpl_free(&t);
}

static void test_filter_errors(void **state)
{
	(void)state;
	const int S = TR_TMPL_ERROR_SYNTAX, F = TR_TMPL_ERROR_UNKNOWN_FILTER;
	assert_compile_error("{{ a | uper }}", F, "t:1:8: unknown filter 'uper'");
	assert_compile_error("line\n{% if a | escape == \"x\" %}{% endif %}", F, "t:2:11: unknown filter 'escape'");
	assert_compile_error("{{ a | upper:1 }}", S, "t:1:8: filter 'upper' takes no argument");
	assert_compile_error("{{ a | truncate }}", S, "t:1:8: filter 'truncate' takes 1 argument");
	assert_compile_error("{{ a | truncate:\"5\" }}", S, "t:1:17: filter 'truncate' needs a whole number from 1 to 100000");
	assert_compile_error("{{ a | truncate:0 }}", S, "t:1:17: filter 'truncate' needs a whole number from 1 to 100000");
	assert_compile_error("{{ a | truncate:n }}", S, "t:1:17: filter 'truncate' needs a whole number from 1 to 100000");
	assert_compile_error("{{ a | indent:65 }}", S, "t:1:15: filter 'indent' needs a whole number from 0 to 64");
	assert_compile_error("{{ a | first_lines:-1 }}", S,
	                     "t:1:20: filter 'first_lines' needs a whole number from 1 to 10000");
	assert_compile_error("{{ a | default }}", S, "t:1:8: filter 'default' takes 1 argument");
	assert_compile_error("{{ a | default:1,2 }}", S, "t:1:8: filter 'default' takes 1 argument");
	assert_compile_error("{{ a | join:1 }}", S, "t:1:13: filter 'join' needs a string separator");
	assert_compile_error("{{ a | date:\"%Q\" }}", S,
	                     "t:1:13: date format: unknown conversion (use %a %A %b %B %d %e %m %Y %y %H %M %S %Z %z %%)");
	assert_compile_error("{{ a | date:\"50%\" }}", S,
	                     "t:1:13: date format: unknown conversion (use %a %A %b %B %d %e %m %Y %y %H %M %S %Z %z %%)");
	assert_compile_error("{{ a | date:5 }}", S, "t:1:13: filter 'date' needs a format string");
	assert_compile_error("{{ a | date:\"%H\",\"Mars/Olympus\" }}", S, "t:1:18: unknown time zone \"Mars/Olympus\"");
	assert_compile_error("{{ a | date:\"%H\",\"/etc/localtime\" }}", S,
	                     "t:1:18: unknown time zone \"/etc/localtime\"");
	assert_compile_error("{{ a | date:\"%H\",\"../../etc/passwd\" }}", S,
	                     "t:1:18: unknown time zone \"../../etc/passwd\"");
	assert_compile_error("{{ a | date:\"%H\",5 }}", S, "t:1:18: filter 'date' needs a time zone name or variable");
	assert_compile_error("{{ a | date:\"%H\",\"UTC\",x }}", S, "t:1:24: too many arguments for filter 'date'");
}

static void test_check(void **state)
{
	(void)state;
	static const char *const known[] = {
		"ticket.id", "ticket.priority", "customer.name", "articles[].title", "articles[].tags[]",
		"sla.due", "zone", NULL,
	};
	GError *error = NULL;
	tr_tmpl *t = compile_ok("{{ ticket.id }} {{ customer.name | default:ticket.priority }}"
	                        "{% if customer %}{% endif %}{% if articles %}{% endif %}"
	                        "{% for a in articles %}{{ loop.index }}{{ a.title }}{% for g in a.tags %}{{ g }}"
	                        "{% endfor %}{% endfor %}{{ articles.0.title }}{{ sla.due | date:\"%H\",zone }}");
	assert_true(tr_tmpl_check(t, known, &error));
	assert_null(error);
	tr_tmpl_free(&t);

	t = compile_ok("Hi {{ customer.nmae }}\n{% for a in articles %}{{ a.url }}{% endfor %}"
	               "{{ due | date:\"%H\",customer.tz }}\n{% if ticket %}{{ ticket.id.x }}{% endif %}");
	assert_false(tr_tmpl_check(t, known, &error));
	assert_true(g_error_matches(error, TR_TMPL_ERROR, TR_TMPL_ERROR_UNKNOWN_VARIABLE));
	assert_string_equal(error->message,
	                    "t:1:7: unknown variable 'customer.nmae'\n"
	                    "t:2:27: unknown variable 'articles[].url'\n"
	                    "t:2:50: unknown variable 'due'\n"
	                    "t:2:66: unknown variable 'customer.tz'\n"
	                    "t:3:19: unknown variable 'ticket.id.x'");
	g_clear_error(&error);
	/* no list: everything is unknown; no variables: always fine */
	assert_false(tr_tmpl_check(t, NULL, &error));
	g_clear_error(&error);
	tr_tmpl_free(&t);
	t = compile_ok("{% for a in articles %}{{ loop.index }}{% endfor %}");
	assert_false(tr_tmpl_check(t, NULL, &error));
	g_clear_error(&error);
	tr_tmpl_free(&t);
	t = compile_ok("static text {{ \"literal\" }} {{ 5 | duration }}");
	assert_true(tr_tmpl_check(t, NULL, NULL));
	tr_tmpl_free(&t);

	/* many unknowns: the first 20 and a count */
	GString *src = g_string_new(NULL);
	for (int i = 0; i < 25; i++)
		g_string_append_printf(src, "{{ v%d }}", i);
	t = compile_ok(src->str);
	assert_false(tr_tmpl_check(t, known, &error));
	assert_non_null(strstr(error->message, "t:1:4: unknown variable 'v0'\n"));
	assert_non_null(strstr(error->message, "unknown variable 'v19'\n… and 5 more unknown variables"));
	assert_null(strstr(error->message, "'v20'"));
	g_clear_error(&error);
	tr_tmpl_free(&t);
	g_string_free(src, TRUE);
}

/* Parse "Subject: VALUE" as GMime would receive it in a mail and return
 * the decoded subject; fail if the value produced any other header. */
static char *parse_subject(const char *value)
{
	char *raw = g_strdup_printf("From: a@example.test\r\nSubject: %s\r\n\r\nbody\r\n", value);
	GMimeStream *stream = g_mime_stream_mem_new_with_buffer(raw, strlen(raw));
	GMimeParser *parser = g_mime_parser_new_with_stream(stream);
	GMimeMessage *msg = g_mime_parser_construct_message(parser, NULL);
	assert_non_null(msg);
	GMimeHeaderList *headers = g_mime_object_get_header_list(GMIME_OBJECT(msg));
	int count = g_mime_header_list_get_count(headers);
	if (count != 2)
		fail_msg("value «%s» produced %d headers", value, count);
	assert_null(g_mime_object_get_header(GMIME_OBJECT(msg), "Bcc"));
	char *subject = g_strdup(g_mime_message_get_subject(msg));
	g_object_unref(msg);
	g_object_unref(parser);
	g_object_unref(stream);
	g_free(raw);
	return subject;
}

static void assert_header_safe(const char *value)
{
	for (const char *c = value; *c != '\0'; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
			fail_msg("header value has byte 0x%02x: «%s»", (unsigned char)*c, value);
	/* every whitespace-free run fits a folded line (RFC 2047: 75) */
	size_t run = 0;
	for (const char *c = value; *c != '\0'; c++) {
		run = *c == ' ' ? 0 : run + 1;
		if (run > 76)
			fail_msg("unfoldable word in «%s»", value);
	}
}

static char *render_header(const char *src, const char *json)
{
	char *out = render_full(src, json, "en", TR_TMPL_HEADER, 0);
	assert_true(strncmp(out, "ERROR", 5) != 0);
	assert_header_safe(out);
	return out;
}

static void test_header_injection(void **state)
{
	(void)state;
	static const char *const attacks[] = {
		"Hi\\r\\nBcc: victim@example.com",
		"Hi\\nBcc: victim@example.com",
		"Hi\\rBcc: victim@example.com",
		"Hi\\r\\n\\r\\n<html>body injection",
		"Hi\\r\\n Bcc: folded@example.com",
		"tab\\there\\u000bvt\\u000cff\\u0007bel\\u001bansi\\u007fdel",
		"c1\\u0085nel\\u008dri\\u009bcsi",
		"ls\\u2028ps\\u2029end",
		"=?utf-8?q?Hi=0D=0ABcc:_victim@example.com?=",
		"=?utf-8?b?SGkNCkJjYzogdmljdGltQGV4YW1wbGUuY29t?= trailing",
		"mixed é =?iso-8859-1?q?=0D=0A?= ñ",
	};
	static const char *const decoded[] = {
		"[TKT-1] Hi Bcc: victim@example.com",
		"[TKT-1] Hi Bcc: victim@example.com",
		"[TKT-1] Hi Bcc: victim@example.com",
		"[TKT-1] Hi <html>body injection",
		"[TKT-1] Hi Bcc: folded@example.com",
		"[TKT-1] tab here vt ff bel ansi del",
		"[TKT-1] c1 nel ri csi",
		"[TKT-1] ls ps end",
		"[TKT-1] =?utf-8?q?Hi=0D=0ABcc:_victim@example.com?=",
		"[TKT-1] =?utf-8?b?SGkNCkJjYzogdmljdGltQGV4YW1wbGUuY29t?= trailing",
		"[TKT-1] mixed é =?iso-8859-1?q?=0D=0A?= ñ",
	};
	for (size_t i = 0; i < G_N_ELEMENTS(attacks); i++) {
		char *json = g_strdup_printf("{\"id\": \"TKT-1\", \"subject\": \"%s\"}", attacks[i]);
		char *value = render_header("[{{ id }}] {{ subject }}", json);
		char *subject = parse_subject(value);
		if (strcmp(subject, decoded[i]) != 0)
			fail_msg("attack %zu: value «%s» decodes to «%s», expected «%s»", i, value, subject, decoded[i]);
		g_free(subject);
		g_free(value);
		g_free(json);
	}
	/* the literal text of a header template is cleaned too */
	char *value = render_header("  a\r\n\tb  {% if x %}\n{% endif %} c  ", "{}");
	assert_string_equal(value, "a b c");
	g_free(value);
	/* filters that make lines cannot make header lines */
	value = render_header("{{ body | quote }}", "{\"body\": \"a\\nFrom: x\"}");
	assert_string_equal(value, "> a > From: x");
	g_free(value);
}

static void test_header_rfc2047(void **state)
{
	(void)state;
	static const char *const subjects[] = {
		"Réclamation: facture impayée",
		"Frage zu Rechnung Nr. 42 – dringend!",
		"日本語の件名です。よろしくお願いします。日本語の件名です。よろしくお願いします。",
		"Ολα καλά? ✓ 😀 emoji",
		"ASCII only subject",
	};
	for (size_t i = 0; i < G_N_ELEMENTS(subjects); i++) {
		char *json = g_strdup_printf("{\"subject\": \"%s\"}", subjects[i]);
		char *value = render_header("Re: {{ subject }}", json);
		gboolean ascii = strcmp(subjects[i], "ASCII only subject") == 0;
		if (ascii)
			assert_string_equal(value, "Re: ASCII only subject");
		else
			assert_non_null(strstr(value, "=?"));
		char *want = g_strdup_printf("Re: %s", subjects[i]);
		char *back = g_mime_utils_header_decode_text(NULL, value);
		if (strcmp(back, want) != 0)
			fail_msg("«%s» encoded as «%s» decodes to «%s»", want, value, back);
		char *subject = parse_subject(value);
		assert_string_equal(subject, want);
		g_free(subject);
		g_free(back);
		g_free(want);
		g_free(value);
		g_free(json);
	}
	/* a long word without spaces is still foldable */
	GString *longword = g_string_new("{\"s\": \"");
	for (int i = 0; i < 300; i++)
		g_string_append_c(longword, (char)('a' + i % 26));
	g_string_append(longword, "\"}");
	char *value = render_header("{{ s }}", longword->str);
	char *back = g_mime_utils_header_decode_text(NULL, value);
	assert_int_equal(strlen(back), 300);
	g_free(back);
	g_free(value);
	g_string_free(longword, TRUE);
	/* truncation happens on characters before encoding */
	value = render_header("{{ s | truncate:5 }}", "{\"s\": \"éééééééé\"}");
	back = g_mime_utils_header_decode_text(NULL, value);
	assert_string_equal(back, "éééé…");
	g_free(back);
	g_free(value);
}

static void test_text_mode_controls(void **state)
{
	(void)state;
	char *out = render_full("[{{ v }}]", "{\"v\": \"a\\r\\nb\\rc\\td\\u0000e\"}", "en", TR_TMPL_TEXT, 0);
	/* json-glib stops a string at \u0000 */
	assert_string_equal(out, "[a\nb\nc\td]");
	g_free(out);
	out = render_full("[{{ v }}]", "{\"v\": \"esc\\u001b[31mred\\u007f\\u0085x\"}", "en", TR_TMPL_TEXT, 0);
	assert_string_equal(out, "[esc [31mred  x]");
	g_free(out);
	/* literal template text is the author's and is left alone */
	out = render_full("a\r\nb", "{}", "en", TR_TMPL_TEXT, 0);
	assert_string_equal(out, "a\r\nb");
	g_free(out);
	/* invalid UTF-8 from a JSON builder is repaired, not passed on */
	JsonNode *ctx = json_node_new(JSON_NODE_OBJECT);
	JsonObject *o = json_object_new();
	json_object_set_string_member(o, "v", "bad\xff\xfe" "end");
	json_node_take_object(ctx, o);
	tr_tmpl *t = compile_ok("{{ v | upper }}");
	out = tr_tmpl_render(t, ctx, "en", TR_TMPL_TEXT, 0, NULL);
	assert_true(g_utf8_validate(out, -1, NULL));
	assert_string_equal(out, "BAD\xEF\xBF\xBD\xEF\xBF\xBD" "END");
	g_free(out);
	out = tr_tmpl_render(t, ctx, "en", TR_TMPL_HEADER, 0, NULL);
	assert_header_safe(out);
	g_free(out);
	tr_tmpl_free(&t);
	json_node_unref(ctx);
}

static void test_output_limit(void **state)
{
	(void)state;
	GString *json = g_string_new("{\"big\": [");
	for (int i = 0; i < 100000; i++)
		g_string_append_printf(json, "%s\"item %d\"", i > 0 ? "," : "", i);
	g_string_append(json, "]}");
	char *out = render_full("head\n{% for x in big %}{{ x }}\n{% endfor %}", json->str, "en", TR_TMPL_TEXT, 100);
	assert_string_equal(out, "ERROR: t:2:19: output exceeds 100 bytes");
	g_free(out);
	/* the default limit (64 KiB) applies when max_bytes is 0 */
	out = render_full("{% for x in big %}{{ x }}{% endfor %}", json->str, "en", TR_TMPL_TEXT, 0);
	assert_string_equal(out, "ERROR: t:1:19: output exceeds 65536 bytes");
	g_free(out);
	/* exactly at the limit is fine; one byte over is not */
	out = render_full("12345{{ \"67890\" }}", "{}", "en", TR_TMPL_TEXT, 10);
	assert_string_equal(out, "1234567890");
	g_free(out);
	out = render_full("12345{{ \"678901\" }}", "{}", "en", TR_TMPL_TEXT, 10);
	assert_string_equal(out, "ERROR: t:1:6: output exceeds 10 bytes");
	g_free(out);
	out = render_full("1234567890x", "{}", "en", TR_TMPL_TEXT, 10);
	assert_string_equal(out, "ERROR: t:1:1: output exceeds 10 bytes");
	g_free(out);
	/* header mode: the encoded value is bounded too */
	out = render_full("{{ s }}", "{\"s\": \"ééééééééééé\"}", "en", TR_TMPL_HEADER, 30);
	assert_string_equal(out, "ERROR: t:1:1: encoded header value exceeds 30 bytes");
	g_free(out);

	/* loops that print nothing are bounded by the work budget */
	out = render_full("{% for a in big %}{% for b in big %}{% endfor %}{% endfor %}", json->str, "en",
	                  TR_TMPL_TEXT, 0);
	assert_string_equal(out, "ERROR: t:1:19: render work limit exceeded (4000000 units)");
	g_free(out);
	g_string_free(json, TRUE);
	/* and so are filters chewing through large values */
	GString *big = g_string_new("{\"s\": \"");
	for (int i = 0; i < 50000; i++)
		g_string_append(big, "abcdefghij");
	g_string_append(big, "\", \"l\": [1,2,3,4,5,6,7,8,9,10]}");
	out = render_full("{% for a in l %}{% for b in l %}{% for c in l %}{% if s | upper == \"x\" %}{% endif %}"
	                  "{% endfor %}{% endfor %}{% endfor %}", big->str, "en", TR_TMPL_TEXT, 0);
	assert_true(g_str_has_prefix(out, "ERROR: t:1:"));
	assert_non_null(strstr(out, "render work limit exceeded"));
	g_free(out);
	g_string_free(big, TRUE);
}

static void test_limits(void **state)
{
	(void)state;
	const tr_tmpl_limit *limits = tr_tmpl_limits();
	size_t depth = 0, source = 0, nodes = 0, nesting = 0, filters = 0, path = 0;
	for (const tr_tmpl_limit *l = limits; l->name != NULL; l++) {
		assert_true(l->value >= l->min && l->value <= l->max);
		assert_non_null(l->doc);
		if (strcmp(l->name, "template_max_depth") == 0) depth = l->value;
		if (strcmp(l->name, "template_max_source") == 0) source = l->value;
		if (strcmp(l->name, "template_max_expr_nodes") == 0) nodes = l->value;
		if (strcmp(l->name, "template_max_expr_nesting") == 0) nesting = l->value;
		if (strcmp(l->name, "template_max_filters") == 0) filters = l->value;
		if (strcmp(l->name, "template_max_path") == 0) path = l->value;
	}
	assert_int_equal(depth, 16);

	/* block nesting: 16 is fine, 17 is not */
	GString *s = g_string_new(NULL);
	for (size_t i = 0; i < depth; i++)
		g_string_append(s, i % 2 ? "{% for x in list %}" : "{% if yes %}");
	g_string_append(s, "deep");
	for (size_t i = depth; i-- > 0;)
		g_string_append(s, i % 2 ? "{% endfor %}" : "{% endif %}");
	char *out = render_full(s->str, CONTEXT_JSON, "en", TR_TMPL_TEXT, 0);
	assert_int_equal(strlen(out), 4 * 6561 /* 3^8 loops of "deep" */);
	g_free(out);
	g_string_prepend(s, "\n {% if yes %}");
	g_string_append(s, "{% endif %}");
	assert_compile_error(s->str, TR_TMPL_ERROR_LIMIT, "t:2:243: blocks nested deeper than 16");
	g_string_free(s, TRUE);

	/* expression nesting */
	s = g_string_new("{% if ");
	for (size_t i = 0; i <= nesting; i++)
		g_string_append(s, "(");
	g_string_append(s, "yes");
	for (size_t i = 0; i <= nesting; i++)
		g_string_append(s, ")");
	g_string_append(s, " %}{% endif %}");
	assert_compile_error(s->str, TR_TMPL_ERROR_LIMIT, "t:1:39: expression nested deeper than 32");
	g_string_free(s, TRUE);
	s = g_string_new("{% if ");
	for (size_t i = 0; i <= nesting; i++)
		g_string_append(s, "not ");
	g_string_append(s, "yes %}{% endif %}");
	assert_compile_error(s->str, TR_TMPL_ERROR_LIMIT, "t:1:135: expression nested deeper than 32");
	g_string_free(s, TRUE);

	/* expression size */
	s = g_string_new("{% if a");
	for (size_t i = 0; i < nodes; i++)
		g_string_append(s, " or a");
	g_string_append(s, " %}{% endif %}");
	assert_compile_error(s->str, TR_TMPL_ERROR_LIMIT, "t:1:167: expression has more than 64 parts");
	g_string_free(s, TRUE);

	/* filter chain */
	s = g_string_new("{{ a");
	for (size_t i = 0; i <= filters; i++)
		g_string_append(s, " | upper");
	g_string_append(s, " }}");
	assert_compile_error(s->str, TR_TMPL_ERROR_LIMIT, "t:1:136: more than 16 filters on one value");
	g_string_free(s, TRUE);

	/* path length */
	s = g_string_new("{{ a");
	for (size_t i = 0; i < path; i++)
		g_string_append(s, ".b");
	g_string_append(s, " }}");
	assert_compile_error(s->str, TR_TMPL_ERROR_LIMIT, "t:1:4: path has more than 16 parts");
	g_string_free(s, TRUE);

	/* name length */
	assert_compile_error("{{ aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa }}",
	                     TR_TMPL_ERROR_LIMIT, "t:1:4: name longer than 64 bytes");

	/* source size */
	char *huge = g_malloc(source + 2);
	memset(huge, 'x', source + 1);
	huge[source + 1] = '\0';
	assert_compile_error(huge, TR_TMPL_ERROR_LIMIT, "t:1:1: template is 65537 bytes, the limit is 65536");
	huge[source] = '\0';
	tr_tmpl *t = compile_ok(huge);
	tr_tmpl_free(&t);
	g_free(huge);
}

static const char *const FILE_SRC =
	"Subject: [{{ ticket.id }}] {{ subject | truncate:30 }}\r\n"
	"X-Triage-Ticket: {{ ticket.id }}\r\n"
	"Keywords: support,\r\n"
	"\t{{ ticket.priority | lower }}\r\n"
	"\r\n"
	"Hello {{ customer.name | default:\"there\" }},\r\n"
	"{{ subject }}\r\n";

static void test_file(void **state)
{
	(void)state;
	GError *error = NULL;
	tr_tmpl_file *f = tr_tmpl_file_parse("ack.tmpl", FILE_SRC, strlen(FILE_SRC), &error);
	assert_non_null(f);
	assert_int_equal(tr_tmpl_file_n_headers(f), 3);
	assert_string_equal(tr_tmpl_file_header_name(f, 0), "Subject");
	assert_string_equal(tr_tmpl_file_header_name(f, 1), "X-Triage-Ticket");
	assert_string_equal(tr_tmpl_file_header_name(f, 2), "Keywords");
	assert_ptr_equal(tr_tmpl_file_lookup(f, "subject"), tr_tmpl_file_header(f, 0));
	assert_null(tr_tmpl_file_lookup(f, "From"));

	JsonNode *ctx = context("{\"ticket\": {\"id\": \"TKT-7\", \"priority\": \"P2\"},"
	                        "\"subject\": \"Hi\\r\\nBcc: victim@example.com and a long tail\"}");
	/* header templates render in header mode even when asked for text */
	char *out = tr_tmpl_render(tr_tmpl_file_header(f, 0), ctx, "en", TR_TMPL_TEXT, 0, &error);
	char *decoded = g_mime_utils_header_decode_text(NULL, out);
	assert_null(strchr(out, '\n'));
	assert_string_equal(decoded, "[TKT-7] Hi Bcc: victim@example.com a…");
	g_free(decoded);
	g_free(out);
	out = tr_tmpl_render(tr_tmpl_file_header(f, 2), ctx, "en", TR_TMPL_HEADER, 0, &error);
	assert_string_equal(out, "support, p2");
	g_free(out);
	out = tr_tmpl_render(tr_tmpl_file_body(f), ctx, "en", TR_TMPL_TEXT, 0, &error);
	assert_string_equal(out, "Hello there,\r\nHi\nBcc: victim@example.com and a long tail\r\n");
	g_free(out);

	static const char *const known[] = { "ticket.id", "subject", "customer.name", NULL };
	assert_false(tr_tmpl_file_check(f, known, &error));
	assert_string_equal(error->message, "ack.tmpl:4:5: unknown variable 'ticket.priority'");
	g_clear_error(&error);
	static const char *const all[] = { "ticket.id", "ticket.priority", "subject", "customer.name", NULL };
	assert_true(tr_tmpl_file_check(f, all, &error));
	tr_tmpl_file_free(&f);
	assert_null(f);
	tr_tmpl_file_free(&f);
	json_node_unref(ctx);
}

static void assert_file_error(const char *src, int code, const char *message)
{
	GError *error = NULL;
	tr_tmpl_file *f = tr_tmpl_file_parse("f.tmpl", src, strlen(src), &error);
	if (f != NULL)
		fail_msg("parsed but should not: «%s»", src);
	if (!g_error_matches(error, TR_TMPL_ERROR, code) || strcmp(error->message, message) != 0)
		fail_msg("«%s»\n  got      %d «%s»\n  expected %d «%s»", src, error->code, error->message, code,
		         message);
	g_error_free(error);
}

static void test_file_errors(void **state)
{
	(void)state;
	const int F = TR_TMPL_ERROR_FILE, S = TR_TMPL_ERROR_SYNTAX;
	assert_file_error("", F, "f.tmpl:1:1: missing the blank line between the headers and the body");
	assert_file_error("Subject: x\nbody without blank line\n", F,
	                  "f.tmpl:2:1: expected 'Name: value' or the blank line that starts the body");
	assert_file_error("Subject: x", F, "f.tmpl:2:1: missing the blank line between the headers and the body");
	assert_file_error("Subject: x\nBcc: {{ evil }}\n\nbody", F,
	                  "f.tmpl:2:1: header 'Bcc' cannot come from a template (allowed: Subject, Comments, "
	                  "Keywords, X-*)");
	static const char *const refused[] = { "From", "To", "Cc", "Reply-To", "Sender", "Message-ID",
	                                       "In-Reply-To", "References", "Auto-Submitted", "Precedence",
	                                       "Content-Type", "MIME-Version", "Date", "Return-Path", "X-" };
	for (size_t i = 0; i < G_N_ELEMENTS(refused); i++) {
		char *src = g_strdup_printf("Subject: s\n%s: v\n\nbody", refused[i]);
		char *want = g_strdup_printf("f.tmpl:2:1: header '%s' cannot come from a template (allowed: "
		                             "Subject, Comments, Keywords, X-*)", refused[i]);
		assert_file_error(src, F, want);
		g_free(want);
		g_free(src);
	}
	assert_file_error("Subject: a\nsubject: b\n\n", F, "f.tmpl:2:1: header 'subject' appears twice (first on line 1)");
	assert_file_error("X-A: a\n\nbody", F, "f.tmpl:1:1: no Subject header");
	assert_file_error(" folded\nSubject: a\n\n", F, "f.tmpl:1:1: continuation line before the first header");
	assert_file_error("Sub ject: a\n\n", F, "f.tmpl:1:4: invalid character in header name");
	assert_file_error(": a\n\n", F,
	                  "f.tmpl:1:1: header '' cannot come from a template (allowed: Subject, Comments, Keywords, X-*)");
	/* template errors carry file lines and columns */
	assert_file_error("Subject: [{{ ticket.id }] x\n\nbody", S, "f.tmpl:1:24: unexpected character '}'");
	assert_file_error("X-Long: a\n  b {{ x | nope }}\nSubject: s\n\nbody", TR_TMPL_ERROR_UNKNOWN_FILTER,
	                  "f.tmpl:2:12: unknown filter 'nope'");
	assert_file_error("Subject: s\nX-A: a\n\nline 4\nline 5 {% if x %}\n", S,
	                  "f.tmpl:5:8: 'if' is not closed (missing '{% endif %}')");
	assert_file_error("Subject: s\r\n\r\n\r\nab {{ }}", S, "f.tmpl:4:4: empty '{{ }}'");
	GString *many = g_string_new("Subject: s\n");
	for (int i = 0; i < 16; i++)
		g_string_append_printf(many, "X-H%d: v\n", i);
	g_string_append(many, "\nbody");
	assert_file_error(many->str, TR_TMPL_ERROR_FILE, "f.tmpl:17:1: more than 16 header lines");
	g_string_free(many, TRUE);
	/* a byte-order mark is not part of the first header name */
	GError *error = NULL;
	tr_tmpl_file *f = tr_tmpl_file_parse("bom", "\xEF\xBB\xBFSubject: ok\n\n", 16, &error);
	assert_non_null(f);
	tr_tmpl_file_free(&f);
}

static void test_file_load(void **state)
{
	(void)state;
	GError *error = NULL;
	char *dir = g_dir_make_tmp("tmpl-XXXXXX", &error);
	assert_non_null(dir);
	char *path = g_build_filename(dir, "ack.tmpl", NULL);
	assert_true(g_file_set_contents(path, FILE_SRC, -1, &error));
	tr_tmpl_file *f = tr_tmpl_file_load(path, &error);
	assert_non_null(f);
	assert_int_equal(tr_tmpl_file_n_headers(f), 3);
	tr_tmpl_file_free(&f);

	assert_true(g_file_set_contents(path, "Subject: ok\n\nline 3\n{% for %}", -1, &error));
	assert_null(tr_tmpl_file_load(path, &error));
	char *want = g_strdup_printf("%s:4:8: expected a loop variable name, found '%%}'", path);
	assert_string_equal(error->message, want);
	g_free(want);
	g_clear_error(&error);

	assert_null(tr_tmpl_file_load(dir, &error));
	assert_true(g_error_matches(error, TR_TMPL_ERROR, TR_TMPL_ERROR_FILE));
	g_clear_error(&error);
	unlink(path);
	assert_null(tr_tmpl_file_load(path, &error));
	assert_true(g_str_has_prefix(error->message, path));
	g_clear_error(&error);

	char *big = g_malloc0(70000);
	memset(big, 'x', 69999);
	assert_true(g_file_set_contents(path, big, -1, &error));
	assert_null(tr_tmpl_file_load(path, &error));
	assert_true(g_error_matches(error, TR_TMPL_ERROR, TR_TMPL_ERROR_LIMIT));
	g_clear_error(&error);
	g_free(big);
	unlink(path);
	rmdir(dir);
	g_free(path);
	g_free(dir);
}

static const char *const ACK_CONTEXT =
	"{"
	"\"ticket\": {\"id\": \"TKT-000042\", \"priority\": \"P2\"},"
	"\"subject\": \"Invoice 2025-0042 was charged twice — please refund the duplicate payment asap\","
	"\"customer\": {\"name\": \"Ana Souza\", \"tier\": \"enterprise\"},"
	"\"team\": {\"name\": \"Billing Support\", \"signature\": \"billing@example.test · +49 30 1234567\"},"
	"\"sla\": {\"first_response_minutes\": 240, \"first_response_due\": " MONDAY_0800_UTC "},"
	"\"business_hours\": false,"
	"\"articles\": [{\"title\": \"Why was I charged twice?\", \"url\": \"https://help.example.test/a/12\"},"
	"               {\"title\": \"Refunds: how long they take, and how to follow them up with your bank or card issuer\","
	"                \"url\": \"https://help.example.test/a/31\"}],"
	"\"message\": {\"excerpt\": \"Hello,\\n\\nour card was charged twice for invoice 2025-0042.\\n"
	"Please refund one of the payments.\\n\\nThanks\\nAna\\n-- \\nsent from my phone\\nline 9\\n\"},"
	"\"tz\": \"Europe/Berlin\""
	"}";

static const char *const ACK_BODY =
	"Hello Ana Souza,\n"
	"\n"
	"Thank you for contacting Billing Support. We have\n"
	"received your message and opened ticket TKT-000042 for it.\n"
	"\n"
	"Your enterprise plan includes a first reply within\n"
	"4 hours: expect to hear from us by Monday 3 March, 09:00 CET.\n"
	"\n"
	"Our team is outside business hours right now; the clock starts when we open.\n"
	"\n"
	"These articles may already answer your question:\n"
	"\n"
	"  1. Why was I charged twice?\n"
	"     https://help.example.test/a/12\n"
	"  2. Refunds: how long they take, and how to follow them up with your bank…\n"
	"     https://help.example.test/a/31\n"
	"\n"
	"For reference, you wrote:\n"
	"\n"
	"> Hello,\n"
	">\n"
	"> our card was charged twice for invoice 2025-0042.\n"
	"> Please refund one of the payments.\n"
	">\n"
	"> Thanks\n"
	"> Ana\n"
	"> -- \n"
	"\n"
	"Please keep [TKT-000042] in the subject when you reply, so that your\n"
	"answer reaches the same ticket.\n"
	"\n"
	"Kind regards,\n"
	"Billing Support\n"
	"billing@example.test · +49 30 1234567\n";

/* A realistic acknowledgment template (tests/unit/data), end to end. */
static void test_acknowledgment_template(void **state)
{
	(void)state;
	GError *error = NULL;
	char *path = tr_test_path("tests/unit/data/ack-sample.tmpl");
	tr_tmpl_file *f = tr_tmpl_file_load(path, &error);
	if (f == NULL)
		fail_msg("%s", error->message);
	static const char *const known[] = {
		"ticket.id", "ticket.priority", "subject", "customer.name", "customer.tier", "team.name",
		"team.signature", "sla.first_response_minutes", "sla.first_response_due", "business_hours",
		"articles[].title", "articles[].url", "message.excerpt", NULL,
	};
	if (!tr_tmpl_file_check(f, known, &error))
		fail_msg("%s", error->message);
	JsonNode *ctx = context(ACK_CONTEXT);
	char *subject = tr_tmpl_render(tr_tmpl_file_lookup(f, "Subject"), ctx, "en", TR_TMPL_HEADER, 998, &error);
	assert_non_null(subject);
	assert_header_safe(subject);
	char *decoded = g_mime_utils_header_decode_text(NULL, subject);
	assert_string_equal(decoded, "[TKT-000042] Re: Invoice 2025-0042 was charged twice — please refund the dup…");
	char *body = tr_tmpl_render(tr_tmpl_file_body(f), ctx, "en", TR_TMPL_TEXT, 0, &error);
	assert_non_null(body);
	if (strcmp(body, ACK_BODY) != 0)
		fail_msg("ack body:\n%s\n---- expected:\n%s", body, ACK_BODY);
	g_free(decoded);
	g_free(subject);
	g_free(body);
	json_node_unref(ctx);
	tr_tmpl_file_free(&f);
	g_free(path);
}

/* Every construct and filter against one context, from several threads. */
static gpointer render_thread(gpointer data)
{
	const tr_tmpl *t = data;
	JsonNode *ctx = context(CONTEXT_JSON);
	char *first = tr_tmpl_render(t, ctx, "de", TR_TMPL_TEXT, 0, NULL);
	gboolean same = TRUE;
	for (int i = 0; i < 200; i++) {
		char *again = tr_tmpl_render(t, ctx, "de", TR_TMPL_TEXT, 0, NULL);
		same = same && strcmp(first, again) == 0;
		g_free(again);
	}
	g_free(first);
	json_node_unref(ctx);
	return GINT_TO_POINTER(same);
}

static void test_threads(void **state)
{
	(void)state;
	tr_tmpl *t = compile_ok("{% for a in articles %}{{ a.title | upper | truncate:8 }} {{ due | date }} "
	                        "{{ mins | duration }}{% endfor %}");
	GThread *threads[4];
	for (int i = 0; i < 4; i++)
		threads[i] = g_thread_new("render", render_thread, t);
	for (int i = 0; i < 4; i++)
		assert_true(GPOINTER_TO_INT(g_thread_join(threads[i])));
	tr_tmpl_free(&t);
}

int main(void)
{
	g_mime_init();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_variables),
		cmocka_unit_test(test_if),
		cmocka_unit_test(test_for),
		cmocka_unit_test(test_comments_and_trimming),
		cmocka_unit_test(test_filter_upper_lower),
		cmocka_unit_test(test_filter_default),
		cmocka_unit_test(test_filter_truncate),
		cmocka_unit_test(test_filter_lines),
		cmocka_unit_test(test_filter_duration_all_languages),
		cmocka_unit_test(test_filter_date_all_languages),
		cmocka_unit_test(test_languages),
		cmocka_unit_test(test_filters_language_neutral),
		cmocka_unit_test(test_syntax_errors),
		cmocka_unit_test(test_nul_byte_position),
		cmocka_unit_test(test_filter_errors),
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_header_injection),
		cmocka_unit_test(test_header_rfc2047),
		cmocka_unit_test(test_text_mode_controls),
		cmocka_unit_test(test_output_limit),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_file),
		cmocka_unit_test(test_file_errors),
		cmocka_unit_test(test_file_load),
		cmocka_unit_test(test_acknowledgment_template),
		cmocka_unit_test(test_threads),
	};
	int failed = cmocka_run_group_tests(tests, NULL, NULL);
	g_mime_shutdown();
	return failed;
}
