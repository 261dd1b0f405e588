/* test_milter.c — the milter's per-message logic without libmilter: what
 * it changes for which message, the fail-safe paths, the hooks, and its
 * settings.  (tests/integration/milter.sh drives the real binding.) */
#include "testutil.h"

#include <stdio.h>
#include <string.h>

#include "channels/milter.h"
#include "core/engine.h"
#include "core/normalize.h"

static tr_engine *engine;
static tr_engine_slot *engines;

static int setup(void **state)
{
	(void)state;
	tr_norm_global_init();
	char *path = tr_test_path("conf/triage.conf");
	engine = tr_test_engine(path);
	g_free(path);
	if (engine == NULL)
		return -1;
	engines = tr_engine_slot_new(tr_engine_ref(engine));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tr_engine_slot_free(&engines);
	tr_engine_free(&engine);
	return 0;
}

/* ---- fakes ---- */

typedef enum { FAKE_NEW, FAKE_DUPLICATE, FAKE_TEMPFAIL, FAKE_FULL } fake_mode;

typedef struct {
	fake_mode mode;
	unsigned calls;
	bool truncated;
	size_t len;
	char source[96];
	/* the reply hook */
	bool reply_fails;
	bool reply_unknown;
	unsigned replies;
	char ticket[64];
	char agent[128];
} fake_store;

static bool fake_ingest_fn(void *context, const tr_ingest_input *in, tr_ingest_result *result, GError **error)
{
	fake_store *f = context;
	f->calls++;
	f->len = in->len;
	f->truncated = strstr(in->source, "truncated") != NULL;
	g_strlcpy(f->source, in->source, sizeof(f->source));
	if (f->mode == FAKE_NEW || f->mode == FAKE_DUPLICATE) {
		result->kind = f->mode == FAKE_NEW ? TR_INGEST_NEW : TR_INGEST_DUPLICATE;
		g_strlcpy(result->ticket, "TKT-000042", sizeof(result->ticket));
		return true;
	}
	g_set_error(error, TR_STORE_ERROR, f->mode == FAKE_FULL ? TR_STORE_ERROR_FULL : TR_STORE_ERROR_BUSY,
	            "fake trouble");
	return false;
}

static bool fake_reply_fn(void *context, const char *ticket, const tr_ingest_input *in, bool *recorded_r,
                          GError **error)
{
	fake_store *f = context;
	f->replies++;
	g_strlcpy(f->ticket, ticket, sizeof(f->ticket));
	g_strlcpy(f->agent, in->envelope_from, sizeof(f->agent));
	*recorded_r = !f->reply_unknown;
	if (f->reply_fails) {
		g_set_error(error, TR_STORE_ERROR, TR_STORE_ERROR_BUSY, "fake trouble");
		return false;
	}
	return true;
}

/* ---- a milter with settings from a config text ---- */

typedef struct {
	tr_milter_settings settings;
	tr_milter *milter;
	fake_store ingest;   /* the store fake: ingest and reply */
	tr_milter_store store;
	unsigned errors;
} fixture;

static const char base_conf[] =
	"[milter]\n"
	"recipients = Support@Example.test, @support.example.test\n"
	"agent_domains = example.test\n"
	"tag_priority = P1, P2\n"
	"tag_ticket = yes\n"
	"escalation_recipient = yes\n"
	"quarantine_triggers = security\n"
	"[tickets]\n"
	"prefix = tkt\n";

static fixture *fixture_new(const char *conf_text, bool with_ingest, bool with_reply)
{
	fixture *f = g_new0(fixture, 1);
	/* Named as if in conf/, so teams.conf is found next to it. */
	char *name = tr_test_path("conf/milter-test.conf");
	tr_diag *diag = tr_diag_new();
	tr_conf *conf = tr_conf_load_data(name, conf_text, strlen(conf_text), diag);
	assert_non_null(conf);
	tr_milter_settings_load(&f->settings, conf, NULL, diag);
	f->errors = tr_diag_error_count(diag);
	tr_conf_free(&conf);
	tr_diag_free(&diag);
	g_free(name);
	f->ingest.mode = FAKE_NEW;
	f->store = (tr_milter_store){ with_ingest ? fake_ingest_fn : NULL, with_reply ? fake_reply_fn : NULL,
	                              &f->ingest };
	f->milter = tr_milter_new(engines, &f->settings, &f->store);
	return f;
}

static void fixture_free(fixture *f)
{
	tr_milter_free(&f->milter);
	tr_milter_settings_clear(&f->settings);
	g_free(f);
}

typedef struct {
	const char *from;
	const char *const *rcpts;
	const char *const *headers;   /* name, value, name, value, ..., NULL */
	const char *body;
} input;

static tr_milter_verdict run(fixture *f, const input *in, tr_milter_verdict *eoh_r, GString *dump)
{
	tr_milter_msg *msg = tr_milter_msg_new(f->milter, in->from);
	for (const char *const *r = in->rcpts; *r != NULL; r++)
		tr_milter_msg_rcpt(msg, *r);
	for (const char *const *h = in->headers; h[0] != NULL; h += 2)
		tr_milter_msg_header(msg, h[0], h[1]);
	tr_milter_verdict eoh = tr_milter_msg_eoh(msg);
	if (eoh_r != NULL)
		*eoh_r = eoh;
	if (in->body != NULL)
		tr_milter_msg_body(msg, in->body, strlen(in->body));
	const tr_milter_action *actions;
	size_t n;
	tr_milter_verdict verdict = tr_milter_msg_eom(msg, "QID42", &actions, &n);
	static const char *const kinds[] = { "delete", "change", "add", "rcpt", "quarantine" };
	for (size_t i = 0; i < n; i++)
		g_string_append_printf(dump, "%s %s %d %s\n", kinds[actions[i].kind],
		                       actions[i].name != NULL ? actions[i].name : "-", actions[i].index,
		                       actions[i].value != NULL ? actions[i].value : "(null)");
	tr_milter_msg_free(&msg);
	return verdict;
}

static const char *const to_support[] = { "<support@example.test>", NULL };
static const char *const outage_headers[] = {
	"From", "Dana Whitfield <dana@bigcorp.example>",
	"To", "support@example.test",
	"X-Triage-Priority", "P4",
	"Subject", "=?UTF-8?Q?URGENT=3A_production_API_down?= for everyone",
	"x-triage-priority", "P4 again",
	"X-TRIAGE-Ticket", "TKT-999999",
	"Message-ID", "<m1@bigcorp.example>",
	NULL,
};
static const char outage_body[] =
	"Our production API is down for everyone, all users get 500 errors.\r\n"
	"Please escalate immediately.\r\n";

static void test_selected_message(void **state)
{
	(void)state;
	fixture *f = fixture_new(base_conf, true, true);
	assert_int_equal(f->errors, 0);
	input in = { "<dana@bigcorp.example>", to_support, outage_headers, outage_body };
	GString *dump = g_string_new(NULL);
	tr_milter_verdict eoh;
	assert_int_equal(run(f, &in, &eoh, dump), TR_MILTER_CONTINUE);
	assert_int_equal(eoh, TR_MILTER_CONTINUE);
	const char *d = dump->str;
	/* Forged headers removed, highest index of a name first. */
	assert_true(g_str_has_prefix(d, "delete X-TRIAGE-Ticket 1 (null)\n"
	                                "delete x-triage-priority 2 (null)\n"
	                                "delete X-Triage-Priority 1 (null)\n"));
	assert_non_null(strstr(d, "add X-Triage-Priority 0 P1\n"));
	assert_non_null(strstr(d, "add X-Triage-Ticket 0 TKT-000042\n"));
	assert_non_null(strstr(d, "add X-Triage-Escalate 0 yes\n"));
	assert_non_null(strstr(d, "add X-Triage-Team 0 engineering\n"));
	assert_non_null(strstr(d, "add X-Triage-Sentiment 0 negative; compound=-"));
	assert_non_null(strstr(d, "add X-Triage-Rules 0 "));
	/* The raw (encoded) subject keeps its form behind the tags. */
	assert_non_null(strstr(d, "change Subject 1 [P1] [TKT-000042] =?UTF-8?Q?URGENT=3A_production_API_down?= for everyone\n"));
	assert_non_null(strstr(d, "rcpt - 0 <oncall@example.test>\n"));
	assert_null(strstr(d, "quarantine"));
	assert_int_equal(f->ingest.calls, 1);
	assert_true(g_str_has_prefix(f->ingest.source, "milter QID42"));
	assert_int_equal(f->ingest.replies, 0);   /* a customer is no agent */
	g_string_free(dump, TRUE);
	fixture_free(f);
}

static void test_not_selected_passes_untouched(void **state)
{
	(void)state;
	fixture *f = fixture_new(base_conf, true, true);
	static const char *const rcpts[] = { "<alice@example.test>", "<bob@elsewhere.example>", NULL };
	input in = { "<dana@bigcorp.example>", rcpts, outage_headers, outage_body };
	GString *dump = g_string_new(NULL);
	tr_milter_verdict eoh;
	assert_int_equal(run(f, &in, &eoh, dump), TR_MILTER_ACCEPT);
	assert_int_equal(eoh, TR_MILTER_ACCEPT);
	assert_string_equal(dump->str, "");
	assert_int_equal(f->ingest.calls, 0);
	g_string_free(dump, TRUE);
	fixture_free(f);
}

static void test_selection(void **state)
{
	(void)state;
	fixture *f = fixture_new(base_conf, false, false);
	assert_true(tr_milter_selected(&f->settings, "support@example.test"));
	assert_true(tr_milter_selected(&f->settings, "<SUPPORT@example.TEST>"));
	assert_true(tr_milter_selected(&f->settings, "anyone@support.example.test"));
	assert_false(tr_milter_selected(&f->settings, "anyone@sub.support.example.test"));
	assert_false(tr_milter_selected(&f->settings, "support@example.test.evil"));
	assert_false(tr_milter_selected(&f->settings, "xsupport@example.test"));
	assert_false(tr_milter_selected(&f->settings, ""));
	/* One selected recipient among others selects the message. */
	static const char *const rcpts[] = { "<alice@example.test>", "<x@support.example.test>", NULL };
	input in = { "<dana@bigcorp.example>", rcpts, outage_headers, outage_body };
	GString *dump = g_string_new(NULL);
	assert_int_equal(run(f, &in, NULL, dump), TR_MILTER_CONTINUE);
	assert_non_null(strstr(dump->str, "add X-Triage-Priority"));
	/* Without a store: no ticket header, no ticket tag. */
	assert_null(strstr(dump->str, "X-Triage-Ticket 0"));
	assert_non_null(strstr(dump->str, "change Subject 1 [P1] =?UTF-8?"));
	g_string_free(dump, TRUE);
	fixture_free(f);
}

static void test_subject_tags(void **state)
{
	(void)state;
	fixture *f = fixture_new(base_conf, true, false);
	/* Already tagged: not tagged twice. */
	static const char *const tagged[] = {
		"From", "dana@bigcorp.example", "Subject", "[P1] [TKT-000042] URGENT: production API down",
		NULL,
	};
	input in = { "<dana@bigcorp.example>", to_support, tagged, outage_body };
	GString *dump = g_string_new(NULL);
	run(f, &in, NULL, dump);
	assert_null(strstr(dump->str, "Subject"));
	/* No Subject at all: one is added with the tags. */
	static const char *const none[] = { "From", "dana@bigcorp.example", NULL };
	in.headers = none;
	g_string_truncate(dump, 0);
	run(f, &in, NULL, dump);
	assert_non_null(strstr(dump->str, "add Subject 0 [P"));
	g_string_free(dump, TRUE);
	fixture_free(f);

	/* Tags off: the subject is left alone. */
	f = fixture_new("[milter]\nrecipients = support@example.test\n", true, false);
	in.headers = outage_headers;
	dump = g_string_new(NULL);
	run(f, &in, NULL, dump);
	assert_null(strstr(dump->str, "Subject"));
	assert_null(strstr(dump->str, "rcpt "));
	g_string_free(dump, TRUE);
	fixture_free(f);
}

static void test_quarantine(void **state)
{
	(void)state;
	fixture *f = fixture_new(base_conf, false, false);
	static const char *const headers[] = {
		"From", "x@customer.example", "Subject", "Security breach: our account was hacked", NULL,
	};
	input in = { "<x@customer.example>", to_support, headers,
	             "Someone hacked our account and there was unauthorized access to our data. Security incident!\r\n" };
	GString *dump = g_string_new(NULL);
	assert_int_equal(run(f, &in, NULL, dump), TR_MILTER_CONTINUE);
	assert_non_null(strstr(dump->str, "quarantine - 0 triage: trigger security\n"));
	g_string_free(dump, TRUE);
	fixture_free(f);
}

static void test_body_limit(void **state)
{
	(void)state;
	fixture *f = fixture_new("[milter]\nrecipients = support@example.test\nbody_bytes = 1K\n", true, false);
	GString *body = g_string_new(outage_body);
	while (body->len < 100000)
		g_string_append(body, "filler text that is not looked at\r\n");
	input in = { "<dana@bigcorp.example>", to_support, outage_headers, body->str };
	GString *dump = g_string_new(NULL);
	assert_int_equal(run(f, &in, NULL, dump), TR_MILTER_CONTINUE);
	assert_true(f->ingest.truncated);
	assert_true(f->ingest.len < 1024 + 512);   /* headers + the first 1 KB */
	assert_non_null(strstr(dump->str, "add X-Triage-Priority 0 P1"));   /* the start is enough */
	g_string_free(body, TRUE);
	g_string_free(dump, TRUE);
	fixture_free(f);
}

static void test_fail_safe(void **state)
{
	(void)state;
	input in = { "<dana@bigcorp.example>", to_support, outage_headers, outage_body };
	GString *dump = g_string_new(NULL);

	/* Internal error, on_error = accept: only the forged headers go. */
	fixture *f = fixture_new(base_conf, true, false);
	tr_milter_fail_classify(f->milter, true);
	assert_int_equal(run(f, &in, NULL, dump), TR_MILTER_CONTINUE);
	assert_string_equal(dump->str, "delete X-TRIAGE-Ticket 1 (null)\ndelete x-triage-priority 2 (null)\n"
	                               "delete X-Triage-Priority 1 (null)\n");
	assert_int_equal(f->ingest.calls, 0);
	assert_int_equal(tr_milter_on_error_verdict(f->milter), TR_MILTER_ACCEPT);
	fixture_free(f);

	/* on_error = tempfail: 4xx, no change. */
	f = fixture_new("[milter]\nrecipients = support@example.test\non_error = tempfail\n", true, false);
	tr_milter_fail_classify(f->milter, true);
	g_string_truncate(dump, 0);
	assert_int_equal(run(f, &in, NULL, dump), TR_MILTER_TEMPFAIL);
	assert_string_equal(dump->str, "");
	assert_int_equal(tr_milter_on_error_verdict(f->milter), TR_MILTER_TEMPFAIL);
	fixture_free(f);

	/* The store fails: the same rule; never a reject. */
	static const fake_mode failures[] = { FAKE_TEMPFAIL, FAKE_FULL };
	for (size_t i = 0; i < G_N_ELEMENTS(failures); i++) {
		f = fixture_new(base_conf, true, false);
		f->ingest.mode = failures[i];
		g_string_truncate(dump, 0);
		assert_int_equal(run(f, &in, NULL, dump), TR_MILTER_CONTINUE);
		assert_null(strstr(dump->str, "add "));
		assert_int_equal(f->ingest.calls, 1);
		fixture_free(f);
		f = fixture_new("[milter]\nrecipients = support@example.test\non_error = tempfail\n", true, false);
		f->ingest.mode = failures[i];
		g_string_truncate(dump, 0);
		assert_int_equal(run(f, &in, NULL, dump), TR_MILTER_TEMPFAIL);
		fixture_free(f);
	}

	/* A duplicate is a success: the ticket it names is used. */
	f = fixture_new(base_conf, true, false);
	f->ingest.mode = FAKE_DUPLICATE;
	g_string_truncate(dump, 0);
	assert_int_equal(run(f, &in, NULL, dump), TR_MILTER_CONTINUE);
	assert_non_null(strstr(dump->str, "add X-Triage-Ticket 0 TKT-000042"));
	fixture_free(f);
	g_string_free(dump, TRUE);
}

static void test_agent_reply(void **state)
{
	(void)state;
	fixture *f = fixture_new(base_conf, true, true);
	static const char *const to_customer[] = { "<dana@bigcorp.example>", NULL };
	static const char *const headers[] = {
		"From", "Ana <ana@example.test>", "Subject", "Re: [TKT-000123] production API down",
		"Message-ID", "<reply-1@example.test>", "X-Triage-Priority", "P1", NULL,
	};
	input in = { "<ana@example.test>", to_customer, headers, "We are on it.\r\n" };
	GString *dump = g_string_new(NULL);
	tr_milter_verdict eoh;
	assert_int_equal(run(f, &in, &eoh, dump), TR_MILTER_CONTINUE);
	assert_int_equal(eoh, TR_MILTER_CONTINUE);
	assert_int_equal(f->ingest.replies, 1);
	assert_string_equal(f->ingest.ticket, "TKT-000123");
	assert_string_equal(f->ingest.agent, "ana@example.test");
	assert_string_equal(dump->str, "");    /* not selected: no change at all */
	assert_int_equal(f->ingest.calls, 0);

	/* No tag: let go after the headers, nothing recorded. */
	static const char *const untagged[] = { "From", "ana@example.test", "Subject", "Lunch?", NULL };
	in.headers = untagged;
	assert_int_equal(run(f, &in, &eoh, dump), TR_MILTER_ACCEPT);
	assert_int_equal(eoh, TR_MILTER_ACCEPT);
	assert_int_equal(f->ingest.replies, 1);
	/* A tag in an encoded subject is found. */
	static const char *const encoded[] = {
		"From", "ana@example.test", "Subject", "=?UTF-8?Q?Re=3A_=5BTKT-000124=5D_r=C3=A9ponse?=", NULL,
	};
	in.headers = encoded;
	assert_int_equal(run(f, &in, &eoh, dump), TR_MILTER_CONTINUE);
	assert_int_equal(eoh, TR_MILTER_CONTINUE);
	assert_int_equal(f->ingest.replies, 2);
	assert_string_equal(f->ingest.ticket, "TKT-000124");

	/* A failing reply hook: on_error. */
	in.headers = headers;
	f->ingest.reply_fails = true;
	assert_int_equal(run(f, &in, NULL, dump), TR_MILTER_CONTINUE);
	assert_int_equal(f->ingest.replies, 3);
	g_string_free(dump, TRUE);
	fixture_free(f);

	/* The same agent domain from [tickets] when [milter] has none. */
	f = fixture_new("[milter]\nrecipients = support@example.test\n[tickets]\nagent_domains = example.test\n", false, true);
	in.headers = headers;
	dump = g_string_new(NULL);
	run(f, &in, NULL, dump);
	assert_int_equal(f->ingest.replies, 1);
	g_string_free(dump, TRUE);
	fixture_free(f);
}

static void test_settings(void **state)
{
	(void)state;
	fixture *f = fixture_new(base_conf, false, false);
	assert_int_equal(f->errors, 0);
	assert_string_equal(f->settings.ticket_prefix, "TKT");
	assert_int_equal(f->settings.tag_priorities, (1u << 1) | (1u << 2));
	assert_true(f->settings.tag_ticket);
	assert_string_equal(g_hash_table_lookup(f->settings.team_mailboxes, "billing"), "billing@example.test");
	assert_string_equal(f->settings.listen, "inet:10030@127.0.0.1");
	assert_int_equal(f->settings.limits.body_bytes, 256 * 1024);
	fixture_free(f);

	static const char *const bad[] = {
		"[milter]\non_error = reject\n",
		"[milter]\ntag_priority = P9\n",
		"[milter]\nquarantine_triggers = nonsense\n",
		"[milter]\nrecipients = support\n",
		"[milter]\nlisten = tcp:1@x\n",
		"[milter]\nbody_bytes = 10\n",
		"[milter]\ntag_ticket = maybe\n",
	};
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		f = fixture_new(bad[i], false, false);
		if (f->errors == 0)
			fail_msg("no error for:\n%s", bad[i]);
		fixture_free(f);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_selected_message),
		cmocka_unit_test(test_not_selected_passes_untouched),
		cmocka_unit_test(test_selection),
		cmocka_unit_test(test_subject_tags),
		cmocka_unit_test(test_quarantine),
		cmocka_unit_test(test_body_limit),
		cmocka_unit_test(test_fail_safe),
		cmocka_unit_test(test_agent_reply),
		cmocka_unit_test(test_settings),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
