/* test_rules.c — rule files, refusals, prefilter and matching */
#include "testutil.h"

#include <locale.h>
#include <string.h>

#include "core/acmatch.h"
#include "core/fold.h"
#include "core/normalize.h"
#include "core/rules.h"

static tr_norm *norm;

static int setup(void **state)
{
	(void)state;
	setlocale(LC_CTYPE, "C.UTF-8");
	norm = tr_norm_new(NULL, NULL, NULL);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tr_norm_free(&norm);
	return 0;
}

/* Load rules from text; on error return NULL and the joined diagnostics. */
static tr_rules *load(const char *text, char **errors_r)
{
	tr_diag *diag = tr_diag_new();
	tr_rules *rules = tr_rules_load_data("test.conf", text, strlen(text), NULL, diag);
	if (errors_r != NULL)
		*errors_r = tr_diag_join(diag);
	tr_diag_free(&diag);
	return rules;
}

static tr_rules *load_ok(const char *text)
{
	char *errors = NULL;
	tr_rules *rules = load(text, &errors);
	if (rules == NULL)
		fail_msg("rules did not load:\n%s", errors);
	g_free(errors);
	return rules;
}

static void expect_error(const char *text, const char *fragment)
{
	char *errors = NULL;
	tr_rules *rules = load(text, &errors);
	if (rules != NULL)
		fail_msg("rules loaded, expected an error containing '%s'", fragment);
	if (strstr(errors, fragment) == NULL)
		fail_msg("errors do not contain '%s':\n%s", fragment, errors);
	g_free(errors);
}

static tr_msg *mail(const char *subject, const char *body)
{
	char *raw = g_strdup_printf("From: Customer <c@customer.example>\nSubject: %s\n"
	                            "Content-Type: text/plain; charset=utf-8\n\n%s\n", subject, body);
	tr_msg *msg = tr_norm_parse(norm, TR_CHANNEL_FILE, raw, strlen(raw), NULL);
	g_free(raw);
	return msg;
}

/* The hit of rule name, or NULL. */
static const tr_rule_hit *hit_of(const tr_rule_hit *hits, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(tr_rule_name(hits[i].rule), name) == 0)
			return &hits[i];
	}
	return NULL;
}

static bool fires(const tr_rules *rules, const char *subject, const char *body, const char *name)
{
	tr_msg *msg = mail(subject, body);
	size_t n;
	tr_rule_hit *hits = tr_rules_match(rules, msg, &n);
	const tr_rule_hit *h = hit_of(hits, n, name);
	bool fired = h != NULL && !h->negated;
	tr_msg_free(&msg);
	return fired;
}

static void test_errors_name_file_line_rule(void **state)
{
	(void)state;
	expect_error("[rule a]\nphrases = x\n\n[rule b]\nin = subject, nowhere\nphrases = y\ncategory = c\n",
	             "test.conf:5: error: [rule b] in: unknown field 'nowhere'");
	expect_error("[rule a]\nphrases = x\ncategory = c\n[rule a]\nphrases = y\ncategory = c\n",
	             "test.conf:4: error: [rule a] already defined at test.conf:1");
	expect_error("[rule t]\nphrases = x\ntrigger = sunshine\n", "test.conf:3: error: [rule t] trigger: 'sunshine'");
	expect_error("[rule u]\nphrases = x\nurgency = extreme\n", "test.conf:3: error: [rule u] urgency");
	expect_error("[rule n]\ncategory = c\n", "[rule n]: needs exactly one of phrases, regex or approx");
	expect_error("[rule two]\nphrases = x\nregex = y+\ncategory = c\n", "needs exactly one");
	expect_error("[rule nothing]\nphrases = x\n", "contributes nothing");
	expect_error("[whatever]\nkey = value\n", "test.conf:1: error: [whatever]: unknown group");
	expect_error("[rule l]\nphrases = x\ncategory = c\nlang = english\n", "[rule l] lang");
	expect_error("[rule broken\nphrases = x\n", "test.conf:1:");
	expect_error("[rule star]\nphrases = re*fund\ncategory = c\n", "'*' only at the end");
	/* the second header is refused and not kept (it leaked: fuzz_rules) */
	expect_error("[rule h]\nin = header:X-A, header:X-B\nphrases = x\ncategory = c\n",
	             "test.conf:2: error: [rule h] in: only one header per rule");
}

static void test_dangerous_patterns_refused(void **state)
{
	(void)state;
	expect_error("[rule br]\nregex = (a)\\\\1\ncategory = c\n", "back-reference");
	expect_error("[rule nest]\nregex = (a+)+b\ncategory = c\n", "nested repetition");
	expect_error("[rule nest2]\nregex = (x(ab)*)*y\ncategory = c\n", "nested repetition");
	expect_error("[rule big]\nregex = a{1000}\ncategory = c\n", "repetition bound over 50");
	expect_error("[rule paren]\nregex = (abc\ncategory = c\n", "unbalanced '('");
	GString *longp = g_string_new("[rule long]\nregex = ");
	for (int i = 0; i < 600; i++)
		g_string_append_c(longp, 'a');
	g_string_append(longp, "\ncategory = c\n");
	expect_error(longp->str, "longer than pattern_bytes");
	g_string_free(longp, TRUE);
	expect_error("[rule short]\napprox = abc\nmax_cost = 1\ncategory = c\n", "too short");
	expect_error("[rule cost]\napprox = password\nmax_cost = 9\ncategory = c\n", "max_cost");
	expect_error("[rule costp]\nphrases = x\nmax_cost = 1\ncategory = c\n", "only for approx rules");
}

static void test_phrases_words_and_folding(void **state)
{
	(void)state;
	tr_rules *rules = load_ok("[rule refund]\nphrases = refund; money back\ncategory = billing:3\n"
	                          "[rule prefix]\nphrases = invoic*\ncategory = billing\n"
	                          "[rule accent]\nphrases = atención al cliente; Grüße\ncategory = x\n");
	assert_true(fires(rules, "Refund please", "", "refund"));
	assert_true(fires(rules, "", "I want my MONEY\nBACK now", "refund"));
	assert_false(fires(rules, "", "is this refundable?", "refund"));
	assert_false(fires(rules, "", "prerefund", "refund"));
	assert_true(fires(rules, "", "the invoices are wrong", "prefix"));
	assert_true(fires(rules, "", "invoicing", "prefix"));
	assert_true(fires(rules, "", "problema con atencion al cliente", "accent"));
	assert_true(fires(rules, "", "Viele GRÜSSE", "accent"));
	tr_rules_free(&rules);
	assert_null(rules);
}

static void test_regex_with_prefilter(void **state)
{
	(void)state;
	char *warnings = NULL;
	tr_rules *rules = load("[rule twice]\nregex = charged (twice|two times|2x)\ncategory = billing\n"
	                       "[rule alt]\nregex = (error|failure) code [0-9]+\ncategory = technical\n"
	                       "[rule bare]\nregex = [0-9]{3}-[0-9]{4}\ncategory = phone\n", &warnings);
	assert_non_null(rules);
	assert_non_null(strstr(warnings, "[rule bare] regex has no literal"));
	g_free(warnings);
	assert_int_equal(tr_rules_unfiltered(rules), 1);  /* alt needs " code " after the group */
	assert_true(fires(rules, "", "I was Charged TWICE for November", "twice"));
	assert_true(fires(rules, "", "we got charged 2x", "twice"));
	assert_false(fires(rules, "", "charged once", "twice"));
	assert_true(fires(rules, "", "it shows error code 4711", "alt"));
	assert_true(fires(rules, "", "call 555-0142", "bare"));
	tr_rules_free(&rules);
}

static void test_approximate(void **state)
{
	(void)state;
	tr_rules *rules = load_ok("[rule refund]\napprox = refund\nmax_cost = 1\ncategory = billing\n"
	                          "[rule password]\napprox = password reset\nmax_cost = 2\ncategory = account\n"
	                          "[rule login]\napprox = cant login\nmax_cost = 1\ncategory = account\n");
	assert_true(fires(rules, "", "where is my refnud", "refund"));     /* transposition */
	assert_true(fires(rules, "", "where is my refund", "refund"));
	assert_true(fires(rules, "", "refudn please", "refund"));
	assert_false(fires(rules, "", "I refuse to pay", "refund"));       /* two substitutions */
	assert_false(fires(rules, "", "nothing to see", "refund"));
	assert_true(fires(rules, "", "the pasword rest link", "password"));
	assert_true(fires(rules, "", "i can't login", "login"));
	assert_true(fires(rules, "", "i cant loggin", "login"));
	tr_msg *msg = mail("", "where is my refnud");
	size_t n;
	tr_rule_hit *hits = tr_rules_match(rules, msg, &n);
	assert_int_equal(hit_of(hits, n, "refund")->cost, 1);
	assert_string_equal(hit_of(hits, n, "refund")->match, "refnud");
	tr_msg_free(&msg);
	tr_rules_free(&rules);
}

static void test_negation(void **state)
{
	(void)state;
	tr_rules *rules = load_ok("[rule urgent]\nphrases = urgent; dringend; urgente\nurgency = high\n"
	                          "[rule loss]\nphrases = data loss; lost data\ntrigger = data_loss\n"
	                          "[rule norush]\nphrases = no rush\nurgency = low\n");
	assert_true(fires(rules, "", "this is urgent", "urgent"));
	assert_false(fires(rules, "", "this is not urgent", "urgent"));
	assert_false(fires(rules, "", "Es ist nicht dringend.", "urgent"));
	assert_false(fires(rules, "", "no es urgente", "urgent"));
	assert_false(fires(rules, "", "ce n'est pas urgent", "urgent"));
	assert_false(fires(rules, "", "não é urgente", "urgent"));
	assert_false(fires(rules, "", "there was no data loss", "loss"));
	/* A blank line ends the clause too ("No worries" as its own paragraph);
	 * a single line break does not (mail is hard-wrapped). */
	assert_true(fires(rules, "", "Hi, no worries\n\nurgent: the export fails", "urgent"));
	assert_true(fires(rules, "", "no problem\r\n  \r\nurgent: the export fails", "urgent"));
	assert_false(fires(rules, "", "this is not\nurgent", "urgent"));
	/* "Nothing urgent" in every language, not only in English. */
	assert_false(fires(rules, "", "nothing urgent", "urgent"));
	assert_false(fires(rules, "", "Hola, nada urgente", "urgent"));
	assert_false(fires(rules, "", "Bonjour, rien d'urgent", "urgent"));
	assert_false(fires(rules, "", "nichts dringend", "urgent"));
	/* A clause break or "but" ends the negation. */
	assert_true(fires(rules, "", "I did not sleep. This is urgent", "urgent"));
	assert_true(fires(rules, "", "not much to say but urgent", "urgent"));
	/* A negated then a plain occurrence: it fires. */
	assert_true(fires(rules, "", "not urgent yesterday. Today: urgent!", "urgent"));
	/* Low-urgency phrases are not negatable themselves. */
	assert_true(fires(rules, "", "no rush", "norush"));
	tr_msg *msg = mail("", "not urgent");
	size_t n;
	tr_rule_hit *hits = tr_rules_match(rules, msg, &n);
	assert_true(hit_of(hits, n, "urgent")->negated);
	tr_msg_free(&msg);
	tr_rules_free(&rules);
}

static void test_fields(void **state)
{
	(void)state;
	tr_rules *rules = load_ok("[rule outage]\nphrases = is down\ntrigger = outage\n"
	                          "[rule quoted]\nin = quoted\nphrases = is down\ncategory = history\n"
	                          "[rule domain]\nin = sender_domain\nphrases = customer.example\ncategory = known\n"
	                          "[rule header]\nin = header:X-Priority\nregex = ^1\nurgency = high\n"
	                          "[rule es]\nphrases = factura\nlang = es\ncategory = billing\n");
	/* Words only in quoted history do not count by default. */
	const char *reply = "Thanks, all good now.\n\nOn Mon, 16 Nov 2026 at 10:00, Bob <b@x.example> wrote:\n"
	                    "> the site is down\n";
	tr_msg *msg = mail("Re: status", reply);
	size_t n;
	tr_rule_hit *hits = tr_rules_match(rules, msg, &n);
	(void)hits;
	tr_msg_free(&msg);
	assert_true(fires(rules, "", "the site is down", "outage"));
	assert_true(fires(rules, "", "x", "domain"));
	char *raw = g_strdup("From: c@customer.example\nX-Priority: 1 (Highest)\nSubject: s\n\nbody\n");
	msg = tr_norm_parse(norm, TR_CHANNEL_FILE, raw, strlen(raw), NULL);
	hits = tr_rules_match(rules, msg, &n);
	const tr_rule_hit *h = hit_of(hits, n, "header");
	assert_non_null(h);
	assert_int_equal(h->field, TR_FIELD_HEADER);
	assert_string_equal(h->header, "X-Priority");
	tr_msg_free(&msg);
	g_free(raw);
	/* Language filter: a Spanish rule ignores English mail, and runs when
	 * the language is unknown. */
	tr_lang *lang = tr_lang_new(NULL, NULL, NULL);
	tr_norm *with_lang = tr_norm_new(NULL, lang, NULL);
	const char *en = "From: c@x.example\nSubject: s\n\nThe factura word inside an English sentence that is long enough.\n";
	msg = tr_norm_parse(with_lang, TR_CHANNEL_FILE, en, strlen(en), NULL);
	assert_string_equal(msg->language, "en");
	hits = tr_rules_match(rules, msg, &n);
	assert_null(hit_of(hits, n, "es"));
	tr_msg_free(&msg);
	tr_norm_free(&with_lang);
	tr_lang_free(&lang);
	assert_true(fires(rules, "", "factura", "es"));
	tr_rules_free(&rules);
}

static void test_quoted_history_excluded(void **state)
{
	(void)state;
	tr_rules *rules = load_ok("[rule outage]\nphrases = is down\ntrigger = outage\n");
	/* Quoted with ">" lines: the quote splitter marks them as history. */
	tr_msg *msg = mail("Re: status", "Thanks, everything works again.\n\n> Our site is down\n> since 9:00\n");
	size_t n;
	tr_rule_hit *hits = tr_rules_match(rules, msg, &n);
	assert_null(hit_of(hits, n, "outage"));
	tr_msg_free(&msg);
	tr_rules_free(&rules);
}

static void test_acmatch(void **state)
{
	(void)state;
	tr_ac *ac = tr_ac_new();
	unsigned he = tr_ac_add(ac, "he", 2), she = tr_ac_add(ac, "she", 3), his = tr_ac_add(ac, "his", 3),
	         hers = tr_ac_add(ac, "hers", 4);
	assert_int_equal(tr_ac_add(ac, "he", 2), he);
	tr_ac_compile(ac);
	tr_ac_iter it;
	tr_ac_iter_init(&it, ac, "ushers his", 10);
	unsigned id;
	size_t end;
	GString *seen = g_string_new(NULL);
	while (tr_ac_iter_next(&it, &id, &end))
		g_string_append_printf(seen, "%u@%zu ", id, end);
	char *want = g_strdup_printf("%u@4 %u@4 %u@6 %u@10 ", she, he, hers, his);
	assert_string_equal(seen->str, want);
	g_free(want);
	g_string_free(seen, TRUE);
	tr_ac_free(&ac);
	assert_null(ac);
}

static void test_fold(void **state)
{
	(void)state;
	tr_pool *pool = tr_pool_new(0);
	assert_string_equal(tr_fold(pool, "ÀÉÎÕÜ ñ ß Œuvre “Can’t” – ok…", strlen("ÀÉÎÕÜ ñ ß Œuvre “Can’t” – ok…"), NULL),
	                    "aeiou n ss oeuvre \"can't\" - ok...");
	assert_string_equal(tr_fold(pool, "ΑΘΗΝΑ", strlen("ΑΘΗΝΑ"), NULL), "αθηνα");
	tr_pool_free(&pool);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_errors_name_file_line_rule),
		cmocka_unit_test(test_dangerous_patterns_refused),
		cmocka_unit_test(test_phrases_words_and_folding),
		cmocka_unit_test(test_regex_with_prefilter),
		cmocka_unit_test(test_approximate),
		cmocka_unit_test(test_negation),
		cmocka_unit_test(test_fields),
		cmocka_unit_test(test_quoted_history_excluded),
		cmocka_unit_test(test_acmatch),
		cmocka_unit_test(test_fold),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
