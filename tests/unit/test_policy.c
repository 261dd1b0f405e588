/*
 * test_policy.c — the decision tables shipped in conf/: priority matrix,
 * triggers, routing, on-call, SLA in business time, customer directory,
 * acknowledgment rules.  Rules are test rules (one word per signal) so the
 * policy is tested apart from the default rule set.
 */
#include "testutil.h"

#include <glib/gstdio.h>
#include <locale.h>
#include <string.h>

#include "core/engine.h"

static char *dir;
static tr_engine *engine;

/* 2026-11-20 16:00 Europe/Berlin, a Friday. */
#define FRIDAY_1600_BERLIN 1795186800
#define TUESDAY_1600_BERLIN 1795532400
#define WEDNESDAY_DEC23_1600_BERLIN 1798038000
#define MONDAY_DEC28_1600_BERLIN 1798470000
#define SATURDAY_0300_BERLIN 1795226400
#define ROTATION_START 1767600000  /* 2026-01-05 09:00 Berlin, a Monday: the first handover */

static const char *test_rules =
	"[rule u-high]\nphrases = uhigh\nurgency = high\n"
	"[rule u-medium]\nphrases = umedium\nurgency = medium\n"
	"[rule u-low]\nphrases = ulow\nurgency = low\n"
	"[rule i-high]\nphrases = ihigh\nimpact = high\n"
	"[rule i-medium]\nphrases = imedium\nimpact = medium\n"
	"[rule i-low]\nphrases = ilow\nimpact = low\n"
	"[rule sec]\nphrases = secword\ntrigger = security\ncategory = security:4\n"
	"[rule out]\nphrases = outword\ntrigger = outage\ncategory = technical:2\n"
	"[rule bill]\nphrases = billword\ncategory = billing:2\n"
	"[rule tech]\nphrases = techword\ncategory = technical:2\n"
	"[rule feat]\nphrases = featword\ncategory = feature:3\n"
	"[rule acct]\nphrases = acctword\ncategory = account:2\n"
	"[rule integ]\nphrases = integword\ncategory = integration:3\n"
	"[rule legal]\nphrases = legalword\ncategory = legal:4\n"
	"[rule churn]\nphrases = churnword\ntrigger = churn\n"
	"[rule big]\nphrases = bigscore\nscore = 11\n";

static int setup(void **state)
{
	(void)state;
	setlocale(LC_CTYPE, "C.UTF-8");
	dir = g_dir_make_tmp("triage-policy-XXXXXX", NULL);
	char *rules_dir = g_build_filename(dir, "rules.d", NULL);
	g_mkdir(rules_dir, 0700);
	char *rules_file = g_build_filename(rules_dir, "test.conf", NULL);
	g_file_set_contents(rules_file, test_rules, -1, NULL);
	char *conf_dir = tr_test_path("conf");
	char *abs_conf = g_canonicalize_filename(conf_dir, NULL);
	char *main_conf = g_strdup_printf(
		"[triage]\nrules = rules.d\nsentiment_lexicon = %1$s/sentiment/vader_lexicon.txt\n"
		"emoji_lexicon = %1$s/sentiment/emoji_utf8_lexicon.txt\n"
		"support_lexicon = %1$s/sentiment/support_lexicon.txt\n"
		"policy = %1$s/policy.conf\nteams = %1$s/teams.conf\ncalendars = %1$s/calendars.conf\n"
		"customers = %1$s/customers.conf\n"
		"[outbound]\ntemplates = %1$s/../templates\n", abs_conf);
	char *main_path = g_build_filename(dir, "triage.conf", NULL);
	g_file_set_contents(main_path, main_conf, -1, NULL);
	engine = tr_test_engine(main_path);
	g_free(rules_dir);
	g_free(rules_file);
	g_free(conf_dir);
	g_free(abs_conf);
	g_free(main_conf);
	g_free(main_path);
	return engine != NULL ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	tr_engine_free(&engine);
	tr_test_rmtree(&dir);
	return 0;
}

typedef struct {
	tr_msg *msg;
	tr_decision d;
} result;

static result *decide_raw(const char *raw, int64_t now)
{
	result *r = g_new0(result, 1);
	r->msg = tr_norm_parse(tr_engine_norm(engine), TR_CHANNEL_FILE, raw, strlen(raw), NULL);
	tr_decide_input input = { .now = now };
	tr_engine_decide(engine, r->msg, &input, &r->d);
	return r;
}

static result *decide_from(const char *from, const char *body, int64_t now)
{
	char *raw = g_strdup_printf("From: %s\nTo: support@example.test\nSubject: question\n\n%s\n", from, body);
	result *r = decide_raw(raw, now);
	g_free(raw);
	return r;
}

static result *decide(const char *body)
{
	return decide_from("someone@unknown.example", body, FRIDAY_1600_BERLIN);
}

static void result_free(result *r)
{
	tr_msg_free(&r->msg);
	g_free(r);
}

static bool has_trigger(const tr_decision *d, tr_trigger t)
{
	return (d->triggers & (1u << t)) != 0;
}

static void test_priority_matrix(void **state)
{
	(void)state;
	static const struct { const char *words; int priority; } cases[] = {
		{ "uhigh ihigh", 1 }, { "uhigh imedium", 2 }, { "uhigh ilow", 3 },
		{ "umedium ihigh", 2 }, { "umedium imedium", 3 }, { "umedium ilow", 4 },
		{ "ulow ihigh", 3 }, { "ulow imedium", 4 }, { "ulow ilow", 4 },
		{ "nothing at all", 3 },  /* defaults: medium x medium */
	};
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		result *r = decide(cases[i].words);
		if (r->d.priority != cases[i].priority)
			fail_msg("'%s': got %s, want P%d", cases[i].words, tr_priority_name(r->d.priority),
			         cases[i].priority);
		result_free(r);
	}
}

static void test_triggers_raise_never_lower(void **state)
{
	(void)state;
	result *r = decide("secword");  /* free customer, medium x medium = P3 */
	assert_int_equal(r->d.priority, 2);
	assert_true(has_trigger(&r->d, TR_TRIGGER_SECURITY));
	assert_true(r->d.escalate);
	result_free(r);
	r = decide("secword ihigh");     /* impact high -> P1 */
	assert_int_equal(r->d.priority, 1);
	result_free(r);
	r = decide("ulow ilow secword");  /* "it can wait" cannot lower a security report */
	assert_int_equal(r->d.priority, 2);
	result_free(r);
	r = decide_from("cto@bigcorp.example", "outword", FRIDAY_1600_BERLIN);  /* enterprise -> P1 */
	assert_int_equal(r->d.priority, 1);
	assert_true(has_trigger(&r->d, TR_TRIGGER_OUTAGE));
	assert_true(has_trigger(&r->d, TR_TRIGGER_VIP));
	result_free(r);
	r = decide("bigscore");  /* rule scores add up to escalate_score */
	assert_true(r->d.escalate);
	result_free(r);
	r = decide("churnword");
	assert_true(has_trigger(&r->d, TR_TRIGGER_CHURN));
	assert_true(r->d.escalate);
	result_free(r);
}

static void test_quoted_words_do_not_count(void **state)
{
	(void)state;
	result *r = decide("All fine now, thanks.\n\n> secword uhigh ihigh\n");
	assert_false(has_trigger(&r->d, TR_TRIGGER_SECURITY));
	assert_int_equal(r->d.priority, 3);
	result_free(r);
}

static void test_routing(void **state)
{
	(void)state;
	result *r = decide("secword");
	assert_string_equal(r->d.team, "security");
	assert_string_equal(r->d.tier, "specialist");
	result_free(r);
	r = decide_from("ap@bigcorp.example", "billword", FRIDAY_1600_BERLIN);
	assert_string_equal(r->d.team, "account-management");
	assert_string_equal(r->d.assignee, "hugo");  /* the account manager */
	result_free(r);
	/* Round-robin through the billing team. */
	r = decide("billword");
	assert_string_equal(r->d.team, "billing");
	const char *first = r->d.assignee;
	result_free(r);
	r = decide("billword");
	assert_string_not_equal(r->d.assignee, first);
	result_free(r);
	r = decide("umedium ihigh uhigh techword");  /* technical P1 -> engineering L3, on call */
	assert_int_equal(r->d.priority, 1);
	assert_string_equal(r->d.team, "engineering");
	assert_string_equal(r->d.tier, "L3");
	assert_non_null(r->d.oncall_primary);
	assert_string_equal(r->d.assignee, r->d.oncall_primary);
	result_free(r);
	r = decide_from("dev@fintech.example", "techword", FRIDAY_1600_BERLIN);  /* enterprise -> L2 */
	assert_string_equal(r->d.team, "support-l2");
	assert_string_equal(r->d.tier, "L2");
	result_free(r);
	r = decide("integword");
	assert_string_equal(r->d.team, "devrel");
	result_free(r);
	r = decide("legalword");
	assert_string_equal(r->d.team, "legal");
	result_free(r);
	r = decide("featword");
	assert_string_equal(r->d.team, "product");
	result_free(r);
	/* Language route: Spanish general questions go to the Spanish team. */
	tr_lang *lang = NULL;
	(void)lang;
	r = decide_raw("From: cliente@correo.example\nSubject: pregunta\n"
	               "Content-Type: text/plain; charset=utf-8\n\n"
	               "Hola, tengo una pregunta sobre mi pedido y no sé qué hacer con esto. Gracias.\n",
	               FRIDAY_1600_BERLIN);
	assert_string_equal(r->msg->language, "es");
	assert_string_equal(r->d.team, "support-es");
	assert_string_equal(r->d.language, "es");
	result_free(r);
}

static void test_oncall_rotation(void **state)
{
	(void)state;
	const tr_policy *p = tr_engine_policy(engine);
	const char *primary, *secondary;
	static const struct { int64_t t; const char *primary, *secondary; } cases[] = {
		{ ROTATION_START, "ivan", "jun" },
		{ ROTATION_START + 7 * 86400 - 1, "ivan", "jun" },
		{ ROTATION_START + 7 * 86400, "jun", "kim" },
		{ ROTATION_START + 14 * 86400, "kim", "ivan" },
		{ ROTATION_START + 21 * 86400, "ivan", "jun" },
		{ ROTATION_START - 1, "kim", "ivan" },  /* the week before the start */
	};
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		assert_true(tr_policy_oncall(p, "engineering", cases[i].t, &primary, &secondary));
		assert_string_equal(primary, cases[i].primary);
		assert_string_equal(secondary, cases[i].secondary);
	}
	assert_false(tr_policy_oncall(p, "billing", ROTATION_START, &primary, &secondary));
}

static void test_sla_business_time(void **state)
{
	(void)state;
	/* Free P3: first response 2 business days (16 business hours) in the
	 * business calendar (Berlin, Mon-Fri 9-17): Friday 16:00 -> Tuesday 16:00. */
	result *r = decide("umedium imedium");
	assert_int_equal(r->d.priority, 3);
	assert_int_equal(r->d.sla.first_response_minutes, 16 * 60);
	assert_true(r->d.sla.first_response_business);
	assert_string_equal(r->d.sla.calendar, "business");
	assert_int_equal(r->d.sla.first_response_due, TUESDAY_1600_BERLIN);
	result_free(r);
	/* Enterprise P1: 15 minutes around the clock, even on Saturday night. */
	r = decide_from("ops@bigcorp.example", "uhigh ihigh", SATURDAY_0300_BERLIN);
	assert_int_equal(r->d.priority, 1);
	assert_false(r->d.sla.first_response_business);
	assert_int_equal(r->d.sla.first_response_minutes, 15);
	assert_int_equal(r->d.sla.first_response_due, SATURDAY_0300_BERLIN + 15 * 60);
	assert_int_equal(r->d.sla.resolution_due, SATURDAY_0300_BERLIN + 4 * 3600);
	result_free(r);
	/* Starter P3 (1 business day) over the Christmas holidays, in the
	 * customer's own calendar... lojavirtual has Brazil; use a free sender:
	 * free P4 first response is 5bd, so take P2 (1bd) via a security-free
	 * combination: uhigh imedium = P2. */
	r = decide_from("someone@unknown.example", "uhigh imedium", WEDNESDAY_DEC23_1600_BERLIN);
	assert_int_equal(r->d.priority, 2);
	/* Dec 23 16-17 (1 h), Dec 24-26 holidays, Dec 27 Sunday, Dec 28 9-16 (7 h). */
	assert_int_equal(r->d.sla.first_response_due, MONDAY_DEC28_1600_BERLIN);
	result_free(r);
}

static void test_customer_directory(void **state)
{
	(void)state;
	result *r = decide_from("someone@eu.bigcorp.example", "hello", FRIDAY_1600_BERLIN);
	assert_string_equal(r->d.customer->account, "bigcorp");
	assert_int_equal(r->d.customer->tier, TR_CUSTOMER_ENTERPRISE);
	assert_true(r->d.customer->vip);
	assert_string_equal(r->d.sla.calendar, "us-east");  /* the customer's calendar wins */
	result_free(r);
	r = decide_from("someone@notbigcorp.example", "hello", FRIDAY_1600_BERLIN);
	assert_null(r->d.customer->account);
	assert_int_equal(r->d.customer->tier, TR_CUSTOMER_FREE);
	result_free(r);
}

static void test_acknowledgment(void **state)
{
	(void)state;
	result *r = decide("hello");
	assert_true(r->d.ack);
	result_free(r);
	r = decide_raw("From: a@x.example\nAuto-Submitted: auto-replied\nSubject: away\n\nI am away\n", FRIDAY_1600_BERLIN);
	assert_false(r->d.ack);
	assert_non_null(strstr(r->d.no_ack_reason, "auto_submitted"));
	result_free(r);
	r = decide_from("support@example.test", "hello", FRIDAY_1600_BERLIN);
	assert_false(r->d.ack);
	result_free(r);
	r = decide_raw("From: a@x.example\nX-Triage-Loop: example.test\nSubject: s\n\nhello\n", FRIDAY_1600_BERLIN);
	assert_false(r->d.ack);
	result_free(r);
	r = decide_raw("From: MAILER-DAEMON@mx.example\nSubject: Undelivered Mail Returned to Sender\n\nbounce\n",
	               FRIDAY_1600_BERLIN);
	assert_false(r->d.ack);
	result_free(r);
	/* A NUL in the address leaves "bin@exa": no reply can reach that. */
	static const char nul_from[] = "From: <bin@exa\0mple.test>\nSubject: s\n\nhello\n";
	tr_msg *m = tr_norm_parse(tr_engine_norm(engine), TR_CHANNEL_FILE, nul_from, sizeof(nul_from) - 1, NULL);
	assert_non_null(m);
	tr_decision d;
	tr_decide_input di = { .now = FRIDAY_1600_BERLIN };
	tr_engine_decide(engine, m, &di, &d);
	assert_false(d.ack);
	assert_string_equal(d.no_ack_reason, "the sender address cannot take a reply");
	tr_msg_free(&m);
	/* A chat JID may have a dotless domain. */
	m = tr_norm_text(tr_engine_norm(engine), TR_CHANNEL_XMPP, "alice@localhost", "hello", 5);
	tr_engine_decide(engine, m, &di, &d);
	assert_true(d.ack);
	tr_msg_free(&m);
}

static void test_sentiment_trigger(void **state)
{
	(void)state;
	result *r = decide("This is horrible, terrible and disgusting. I hate it. Worst experience ever, "
	                   "absolutely awful and useless!!!");
	assert_true(r->d.sentiment.compound <= -0.7);
	assert_true(has_trigger(&r->d, TR_TRIGGER_NEGATIVE_SENTIMENT));
	assert_true(r->d.escalate);
	result_free(r);
	r = decide("Thank you so much, everything works great now!");
	assert_true(r->d.sentiment.compound > 0.5);
	assert_false(has_trigger(&r->d, TR_TRIGGER_NEGATIVE_SENTIMENT));
	result_free(r);
}

static void test_explained(void **state)
{
	(void)state;
	result *r = decide("secword ihigh");
	bool saw_trigger = false, saw_route = false;
	for (size_t i = 0; i < r->d.n_explanation; i++) {
		saw_trigger |= strstr(r->d.explanation[i], "trigger security raises") != NULL;
		saw_route |= strstr(r->d.explanation[i], "route security -> team security") != NULL;
	}
	assert_true(saw_trigger);
	assert_true(saw_route);
	assert_true(r->d.n_hits >= 2);
	result_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_priority_matrix),
		cmocka_unit_test(test_triggers_raise_never_lower),
		cmocka_unit_test(test_quoted_words_do_not_count),
		cmocka_unit_test(test_routing),
		cmocka_unit_test(test_oncall_rotation),
		cmocka_unit_test(test_sla_business_time),
		cmocka_unit_test(test_customer_directory),
		cmocka_unit_test(test_acknowledgment),
		cmocka_unit_test(test_sentiment_trigger),
		cmocka_unit_test(test_explained),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
