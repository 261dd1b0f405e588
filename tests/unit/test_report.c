/*
 * test_report.c — the dashboard's figures (store/report.h) over stores
 * built through the real ingest with the shipped conf/triage.conf, fixed
 * clocks, and agent operations at times chosen against each ticket's own
 * due times: every SLA state, pauses, reopens, the escalation ladder,
 * window bounds, repeated issues and mass incidents.
 *
 * Figures that follow from what the test did (SLA states, times, reopens,
 * groups, window bounds) are asserted as literals; figures that follow from
 * the classifier (category, priority, team, escalation) are asserted
 * against the ticket rows read back through the public ticket API, so a
 * change of the rules cannot make this test lie or fail spuriously.
 */
#include "testutil.h"

#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/engine.h"
#include "store/ingest.h"
#include "store/report.h"
#include "store/sla.h"
#include "store/ticket.h"

/* Monday 2026-11-16 09:00 Europe/Berlin: the business calendar opens. */
#define T0 1794816000
/* Thursday 2026-11-19 12:00 Europe/Berlin. */
#define THURSDAY_NOON (T0 + 3 * 86400 + 3 * 3600)

static char *dir;
static tr_engine *engine;
static const tr_outbox_options outbox_options = { .message_domain = "test.invalid", .rooms = false };

static int setup(void **state)
{
	(void)state;
	setlocale(LC_CTYPE, "C.UTF-8");
	dir = g_dir_make_tmp("triage-report-XXXXXX", NULL);
	char *conf = tr_test_path("conf/triage.conf");
	engine = tr_test_engine(conf);
	g_free(conf);
	return engine != NULL && dir != NULL ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	tr_engine_free(&engine);
	tr_test_rmtree(&dir);
	return 0;
}

static tr_store *open_store(const char *name)
{
	char *path = g_strdup_printf("%s/%s.db", dir, name);
	tr_store_settings settings;
	tr_store_settings_default(&settings, path);
	GError *error = NULL;
	tr_store *store = tr_store_open(&settings, &error);
	if (store == NULL)
		fail_msg("open %s: %s", path, error->message);
	tr_store_settings_clear(&settings);
	g_free(path);
	return store;
}

static unsigned serial;

/* One mail through the whole pipeline at now; the ticket's row id. */
static int64_t mail(tr_ingest *ing, const char *from, const char *subject, const char *body, int64_t now,
                    tr_ingest_result *res_r)
{
	char *raw = g_strdup_printf("From: %s\nTo: support@example.test\nSubject: %s\nMessage-ID: <m%u@customer.example>\n"
	                            "Date: Mon, 16 Nov 2026 09:00:00 +0100\nContent-Type: text/plain; charset=utf-8\n\n%s\n",
	                            from, subject, ++serial, body);
	tr_ingest_input in = { .channel = TR_CHANNEL_FILE, .data = raw, .len = strlen(raw), .now = now, .source = "test" };
	tr_ingest_result res;
	GError *error = NULL;
	if (!tr_ingest_message(ing, &in, &res, &error))
		fail_msg("ingest '%s': %s", subject, error->message);
	g_free(raw);
	if (res_r != NULL)
		*res_r = res;
	return res.ticket_id;
}

static int64_t chat(tr_ingest *ing, const char *from, const char *text, int64_t now)
{
	tr_ingest_input in = { .channel = TR_CHANNEL_XMPP, .chat_from = from, .chat_text = text,
	                       .chat_len = strlen(text), .now = now, .source = "test" };
	tr_ingest_result res;
	GError *error = NULL;
	if (!tr_ingest_message(ing, &in, &res, &error))
		fail_msg("chat: %s", error->message);
	return res.ticket_id;
}

static tr_ticket get(tr_store *store, int64_t id)
{
	tr_ticket t;
	GError *error = NULL;
	if (!tr_ticket_get(store, id, &t, &error))
		fail_msg("ticket %" G_GINT64_FORMAT ": %s", (gint64)id, error->message);
	return t;
}

static void ok_or_fail(bool ok, GError *error, const char *what)
{
	if (!ok)
		fail_msg("%s: %s", what, error != NULL ? error->message : "?");
}

static tr_report *build(tr_store *store, int64_t since, int64_t now)
{
	tr_report_options o = { .since = since, .now = now };
	GError *error = NULL;
	tr_report *r = tr_report_build(store, tr_engine_policy(engine), &o, &error);
	if (r == NULL)
		fail_msg("report: %s", error->message);
	return r;
}

static unsigned count_of(const tr_report_counts *c, const char *name)
{
	for (size_t i = 0; i < c->n; i++) {
		if (strcmp(c->items[i].name, name) == 0)
			return c->items[i].count;
	}
	return 0;
}

/* Every name of want (name -> GUINT count) with its count, and nothing else. */
static void assert_counts(const tr_report_counts *got, GHashTable *want, const char *what)
{
	if (got->n != g_hash_table_size(want))
		fail_msg("%s: %zu names, want %u", what, got->n, g_hash_table_size(want));
	GHashTableIter it;
	gpointer key, value;
	g_hash_table_iter_init(&it, want);
	while (g_hash_table_iter_next(&it, &key, &value)) {
		if (count_of(got, key) != GPOINTER_TO_UINT(value))
			fail_msg("%s: %s = %u, want %u", what, (const char *)key, count_of(got, key), GPOINTER_TO_UINT(value));
	}
	for (size_t i = 1; i < got->n; i++)
		assert_true(got->items[i - 1].count >= got->items[i].count);
}

static void bump(GHashTable *h, const char *name)
{
	gpointer old = g_hash_table_lookup(h, name);
	g_hash_table_insert(h, g_strdup(name), GUINT_TO_POINTER(GPOINTER_TO_UINT(old) + 1));
}

static void assert_clock(const tr_report_clock *got, const tr_report_clock *want, const char *what)
{
	if (memcmp(got, want, sizeof(*got)) != 0)
		fail_msg("%s: on time %u late %u open %u breached %u none %u; want %u %u %u %u %u", what, got->met_on_time,
		         got->met_late, got->open_within, got->open_breached, got->no_target, want->met_on_time,
		         want->met_late, want->open_within, want->open_breached, want->no_target);
}

/* ---------------------------------------------------------------- subjects */

static void assert_key(const char *subject, const char *want)
{
	char *key = tr_report_subject_key(subject, "TKT");
	if (strcmp(key, want) != 0)
		fail_msg("key of '%s' = '%s', want '%s'", subject, key, want);
	g_free(key);
}

static void test_subject_key(void **state)
{
	(void)state;
	assert_key("Invoice 10023 charged twice", "invoice # charged twice");
	assert_key("Re: Fwd: [TKT-000012] Invoice 12345 charged TWICE!!", "invoice # charged twice");
	assert_key("RE[2]: [ILUG] find the biggest file", "find the biggest file");
	assert_key("AW: WG:  Rechnung   falsch", "rechnung falsch");
	assert_key("Re : hello", "hello");
	assert_key("Fwd:Re:x", "x");
	assert_key("Problem [TKT-000042] with export", "problem with export");
	assert_key("Error 500 on login", "error 500 on login");
	assert_key("Report: weekly numbers", "report weekly numbers");
	assert_key("Ärger mit Überweisung", "ärger mit überweisung");
	assert_key("<script>alert(1)</script>", "script alert 1 script");
	assert_key("", "");
	assert_key("Re:", "");
	assert_key("!!!", "");
	char *key = tr_report_subject_key("caf\xe9 cr\xff\xfe" "d", "TKT");
	assert_true(g_utf8_validate(key, -1, NULL));
	g_free(key);
	key = tr_report_subject_key(NULL, NULL);
	assert_string_equal(key, "");
	g_free(key);

	char *shown = tr_report_subject_display("Re: AW: [TKT-000012]  Invoice 12345 ");
	assert_string_equal(shown, "Invoice 12345");
	g_free(shown);
	shown = tr_report_subject_display("caf\xe9");
	assert_true(g_utf8_validate(shown, -1, NULL));
	g_free(shown);
}

static void test_rates(void **state)
{
	(void)state;
	assert_true(tr_report_percent(0, 0) < 0);
	assert_true(tr_report_percent(1, 4) == 25.0);
	tr_report_clock c = { .met_on_time = 3, .met_late = 1, .open_within = 7, .open_breached = 0, .no_target = 2 };
	assert_true(tr_report_compliance(&c) == 75.0);
	tr_report_clock undecided = { .open_within = 4, .no_target = 1 };
	assert_true(tr_report_compliance(&undecided) < 0);
}

/* ---------------------------------------------------------------- an empty store */

static void test_empty(void **state)
{
	(void)state;
	tr_store *store = open_store("empty");
	tr_report *r = build(store, T0, THURSDAY_NOON);
	assert_int_equal(r->since, T0);
	assert_int_equal(r->now, THURSDAY_NOON);
	assert_int_equal(r->tickets, 0);
	assert_int_equal(r->by_channel.n + r->by_category.n + r->by_team.n + r->by_trigger.n, 0);
	for (int p = 0; p < TR_REPORT_PRIORITIES; p++)
		assert_int_equal(r->by_priority[p] + r->sla[p].tickets, 0);
	assert_true(tr_report_compliance(&r->sla_all.first_response) < 0);
	assert_int_equal(r->first_response.count + r->resolution.count, 0);
	assert_int_equal(r->first_response.median + r->first_response.p90, 0);
	assert_int_equal(r->escalated + r->reopened + r->resolved_ever + r->open_escalations_total, 0);
	assert_int_equal(r->n_open_escalations + r->n_top_issues + r->n_incidents, 0);
	tr_report_free(&r);
	assert_null(r);
	tr_report_free(&r);  /* harmless */
	tr_store_close(&store);
}

/* ---------------------------------------------------------------- SLA, escalations, reopens */

static const char outage_body[] =
	"URGENT: our production API is down, all users get 500 errors since 10 minutes. "
	"This is an outage, please help now.";
static const char billing_body[] =
	"Hello, my invoice was charged twice on my credit card. Please refund the duplicate payment. Thanks";

/* Reasons of the first "escalated" event, as the report counts them. */
static void expected_reasons(tr_store *store, int64_t id, GHashTable *reasons, bool *moved_up_r)
{
	size_t n;
	tr_ticket_event_row *events = tr_ticket_events(store, id, &n);
	bool first = true;
	*moved_up_r = false;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(events[i].kind, "escalated") != 0)
			continue;
		if (g_str_has_prefix(events[i].detail != NULL ? events[i].detail : "", "not acknowledged"))
			*moved_up_r = true;
		if (!first)
			continue;
		first = false;
		char **parts = g_strsplit(events[i].detail != NULL ? events[i].detail : "", ", ", -1);
		for (char **p = parts; *p != NULL; p++)
			bump(reasons, g_str_has_prefix(*p, "rule score") ? "rule score" : *p);
		g_strfreev(parts);
	}
	tr_ticket_events_free(events, n);
}

static void test_sla_escalations_reopens(void **state)
{
	(void)state;
	tr_store *store = open_store("sla");
	const tr_policy *policy = tr_engine_policy(engine);
	tr_ingest *ing = tr_ingest_new(store, engine, &outbox_options);
	GError *error = NULL;
	tr_ingest_result res;

	int64_t outage = mail(ing, "Dee <dee@delta.example>", "Production API down", outage_body, T0, NULL);
	int64_t billing_late = mail(ing, "Ann <ann@alpha.example>", "Invoice 10023 charged twice", billing_body, T0 + 60, NULL);
	int64_t resolved_only = mail(ing, "Bob <bob@beta.example>", "Invoice 20077 charged twice", billing_body, T0 + 120, NULL);
	int64_t untouched = mail(ing, "Fay <fay@zeta.example>", "How do I change my password?",
	                         "Hello, how can I change the password of my account? Thanks, Fay", T0 + 180, NULL);
	int64_t feature = mail(ing, "Eve <eve@eps.example>", "Feature request: dark mode",
	                       "It would be nice to have a dark mode in the editor some day. Not urgent at all. Thanks!",
	                       T0 + 240, NULL);
	int64_t paused = mail(ing, "Gus <gus@eta.example>", "<script>alert(1)</script> export to CSV",
	                      "How do I export my reports to CSV? Thanks", T0 + 300, NULL);
	int64_t all[] = { outage, billing_late, resolved_only, untouched, feature, paused };

	/* The outage is escalated; nobody acknowledges it within its timeout: one step up. */
	tr_ticket t = get(store, outage);
	assert_true(t.escalated);
	int64_t timeout = tr_policy_ack_timeout(policy, t.priority);
	tr_sla_tick_result tick;
	ok_or_fail(tr_sla_tick(store, policy, &outbox_options, t.escalated_at + timeout + 1, &tick, &error), error, "tick");
	assert_true(tick.escalations >= 1);
	int64_t outage_ack = t.fr_due - 600;
	assert_true(outage_ack > t.escalated_at + timeout + 1);
	assert_true(t.res_due < THURSDAY_NOON);
	tr_ticket_clear(&t);
	ok_or_fail(tr_ticket_ack(store, policy, outage, "agent", outage_ack, &error), error, "ack outage");

	/* First response an hour late, resolved, then the customer writes back: reopened. */
	t = get(store, billing_late);
	int64_t late_ack = t.fr_due + 3600;
	tr_ticket_clear(&t);
	ok_or_fail(tr_ticket_ack(store, policy, billing_late, "agent", late_ack, &error), error, "late ack");
	ok_or_fail(tr_ticket_resolve(store, policy, billing_late, "agent", late_ack + 60, &error), error, "resolve");
	char subject[96];
	t = get(store, billing_late);
	g_snprintf(subject, sizeof(subject), "Re: [%s] Invoice 10023 charged twice", t.public_id);
	tr_ticket_clear(&t);
	int64_t again = mail(ing, "Ann <ann@alpha.example>", subject,
	                     "Thank you. The duplicate charge is still listed on my statement though.", late_ack + 3660, &res);
	assert_int_equal(again, billing_late);
	assert_true(res.reopened);

	/* Resolved without a recorded first response: the resolution is the first response. */
	int64_t resolved_at = T0 + 120 + 7200;
	ok_or_fail(tr_ticket_resolve(store, policy, resolved_only, "agent", resolved_at, &error), error, "resolve");

	/* Waiting for the customer after an hour: the clocks stop far within target. */
	ok_or_fail(tr_ticket_pause(store, policy, paused, true, "agent", T0 + 300 + 3600, &error), error, "pause");

	/* The ladder runs at report time: the untouched ticket's first response breaches. */
	ok_or_fail(tr_sla_tick(store, policy, &outbox_options, THURSDAY_NOON, &tick, &error), error, "tick");

	/* Preconditions of the expected states, from the tickets' own clocks. */
	t = get(store, untouched);
	assert_true(t.fr_due < THURSDAY_NOON && t.res_due > THURSDAY_NOON);
	tr_ticket_clear(&t);
	t = get(store, feature);
	assert_true(t.fr_due > THURSDAY_NOON && t.res_due > THURSDAY_NOON);
	tr_ticket_clear(&t);
	t = get(store, paused);
	assert_string_equal(t.status, "waiting");
	assert_true(t.fr_due < THURSDAY_NOON);  /* a naive due-time check would call it breached */
	assert_true(tr_sla_consumed(policy, &t, false, THURSDAY_NOON) < t.fr_target);
	tr_ticket_clear(&t);
	t = get(store, billing_late);
	assert_int_equal(t.reopened, 1);
	assert_true(tr_sla_consumed(policy, &t, true, THURSDAY_NOON) < t.res_target);
	tr_ticket_clear(&t);
	t = get(store, resolved_only);
	assert_true(resolved_at < t.fr_due);
	tr_ticket_clear(&t);

	/* What each ticket's clocks must show. */
	enum { ON_TIME, LATE, WITHIN, BREACHED };
	static const int first_response[] = { ON_TIME, LATE, ON_TIME, BREACHED, WITHIN, WITHIN };
	static const int resolution[] = { BREACHED, WITHIN, ON_TIME, WITHIN, WITHIN, WITHIN };
	tr_report_sla want[TR_REPORT_PRIORITIES] = { 0 };
	tr_report_sla want_all = { 0 };
	unsigned want_escalated = 0, want_open_escalations = 0, want_moved_up = 0;
	GHashTable *want_reasons = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	for (size_t i = 0; i < G_N_ELEMENTS(all); i++) {
		t = get(store, all[i]);
		int p = t.priority - 1;
		tr_report_sla *w[2] = { &want[p], &want_all };
		for (int k = 0; k < 2; k++) {
			w[k]->tickets++;
			tr_report_clock *c[2] = { &w[k]->first_response, &w[k]->resolution };
			int s[2] = { first_response[i], resolution[i] };
			for (int clock = 0; clock < 2; clock++) {
				unsigned *slot[] = { &c[clock]->met_on_time, &c[clock]->met_late, &c[clock]->open_within,
				                     &c[clock]->open_breached };
				(*slot[s[clock]])++;
			}
		}
		if (t.escalated) {
			bool moved_up;
			want_escalated++;
			expected_reasons(store, t.id, want_reasons, &moved_up);
			want_moved_up += moved_up;
			want_open_escalations += strcmp(t.status, "resolved") != 0;
		}
		tr_ticket_clear(&t);
	}

	tr_report *r = build(store, T0 - 86400, THURSDAY_NOON);
	assert_int_equal(r->tickets, 6);
	assert_int_equal(r->status_open, 4);
	assert_int_equal(r->status_waiting, 1);
	assert_int_equal(r->status_paused, 0);
	assert_int_equal(r->status_resolved, 1);
	for (int p = 0; p < TR_REPORT_PRIORITIES; p++) {
		char what[32];
		assert_int_equal(r->sla[p].tickets, want[p].tickets);
		g_snprintf(what, sizeof(what), "P%d first response", p + 1);
		assert_clock(&r->sla[p].first_response, &want[p].first_response, what);
		g_snprintf(what, sizeof(what), "P%d resolution", p + 1);
		assert_clock(&r->sla[p].resolution, &want[p].resolution, what);
	}
	assert_int_equal(r->sla_all.tickets, 6);
	assert_clock(&r->sla_all.first_response, &want_all.first_response, "all first response");
	assert_clock(&r->sla_all.resolution, &want_all.resolution, "all resolution");
	/* On time 2 (outage, resolved_only), late 1, breached 1 of 4 decided: 50 %. */
	assert_true(tr_report_compliance(&r->sla_all.first_response) == 50.0);

	/* First responses: the outage ack, the late ack, the resolution; nearest rank. */
	int64_t fr[] = { outage_ack - T0, late_ack - (T0 + 60), 7200 };
	assert_int_equal(r->first_response.count, 3);
	int64_t lo = MIN(MIN(fr[0], fr[1]), fr[2]), hi = MAX(MAX(fr[0], fr[1]), fr[2]);
	assert_int_equal(r->first_response.median, fr[0] + fr[1] + fr[2] - lo - hi);
	assert_int_equal(r->first_response.p90, hi);
	assert_int_equal(r->resolution.count, 1);  /* the reopened one is open again */
	assert_int_equal(r->resolution.median, 7200);
	assert_int_equal(r->resolution.p90, 7200);

	assert_int_equal(r->reopened, 1);
	assert_int_equal(r->reopen_count, 1);
	assert_int_equal(r->resolved_ever, 2);
	assert_true(tr_report_percent(r->reopened, r->resolved_ever) == 50.0);

	assert_int_equal(r->escalated, want_escalated);
	assert_int_equal(r->escalation_moved_up, want_moved_up);
	assert_true(r->escalation_moved_up >= 1);
	assert_counts(&r->escalation_reasons, want_reasons, "escalation reasons");
	for (size_t i = 0; i < r->escalation_reasons.n; i++)
		assert_null(strstr(r->escalation_reasons.items[i].name, ">="));
	g_hash_table_destroy(want_reasons);

	/* The outage: acknowledged after one step up, open since T0. */
	assert_int_equal(r->open_escalations_total, want_open_escalations);
	assert_int_equal(r->n_open_escalations, want_open_escalations);
	const tr_report_escalation *found = NULL;
	for (size_t i = 0; i < r->n_open_escalations; i++) {
		const tr_report_escalation *e = &r->open_escalations[i];
		if (i > 0)
			assert_true(r->open_escalations[i - 1].priority <= e->priority);
		assert_true(e->id != resolved_only);
		if (e->id == outage)
			found = e;
	}
	assert_non_null(found);
	assert_true(found->acknowledged);
	assert_int_equal(found->moved_up, 1);
	assert_int_equal(found->escalated_at, T0);
	assert_int_equal(found->age, THURSDAY_NOON - T0);
	assert_false(found->incident);
	assert_string_equal(found->subject, "Production API down");
	assert_non_null(strstr(found->reasons, "trigger outage"));

	/* A window that starts after the first three tickets. */
	tr_report_free(&r);
	r = build(store, T0 + 121, THURSDAY_NOON);
	assert_int_equal(r->tickets, 3);
	assert_int_equal(r->reopened, 0);
	assert_int_equal(r->open_escalations_total, want_open_escalations);  /* any age */
	tr_report_free(&r);

	tr_ingest_free(&ing);
	tr_store_close(&store);
}

/* ---------------------------------------------------------------- volume, window, issues, incidents */

static const char login_body[] =
	"Since this morning the login page fails with error 502 for everyone in our team. Please check.";

static void test_volume_window_issues_incidents(void **state)
{
	(void)state;
	tr_store *store = open_store("volume");
	tr_ingest *ing = tr_ingest_new(store, engine, &outbox_options);
	const int64_t since = T0, now = T0 + 7200;
	tr_ingest_result res;

	mail(ing, "early@one.example", "Question about webhooks", "How do webhooks retry?", since - 1, NULL);
	mail(ing, "first@two.example", "Question about API limits", "What are the API rate limits?", since, NULL);
	int64_t b1 = mail(ing, "Ann <ann@alpha.example>", "Invoice 10023 charged twice", billing_body, T0 + 60, NULL);
	int64_t b2 = mail(ing, "Bob <bob@beta.example>", "Re: invoice 20077 charged twice!", billing_body, T0 + 120, NULL);
	int64_t b3 = mail(ing, "Cy <cy@gamma.example>", "[TKT-000099] Invoice 30001 charged TWICE", billing_body,
	                  T0 + 180, NULL);
	static const char *const reporters[] = {
		"una@u1.example", "vic@v2.example", "wes@w3.example", "xia@x4.example", "yan@y5.example",
	};
	int64_t login_first = 0;
	for (size_t i = 0; i < G_N_ELEMENTS(reporters); i++) {
		mail(ing, reporters[i], "Login fails with error 502", login_body, T0 + 600 + 60 * (int64_t)i, &res);
		if (i == 0)
			login_first = res.ticket_id;
	}
	assert_true(res.incident_created);
	int64_t incident = res.incident_id;
	int64_t chatted = chat(ing, "carol@chat.example", "Hi, how can I download my invoices as PDF?", T0 + 3000);
	mail(ing, "last@three.example", "Question about SSO setup", "How do I set up SSO with Okta?", now, NULL);
	mail(ing, "late@four.example", "Question about exports", "Can I export to Excel?", now + 1, NULL);

	tr_ticket t = get(store, chatted);
	assert_string_equal(t.channel, "xmpp");
	tr_ticket_clear(&t);

	/* What the classifier decided, read back from the rows of the window. */
	GHashTable *categories = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	GHashTable *teams = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	GHashTable *triggers = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	unsigned priorities[TR_REPORT_PRIORITIES] = { 0 }, escalated = 0, in_window = 0;
	tr_ticket_filter f = { .since = since };
	tr_ticket_iter *it = tr_ticket_list_init(store, &f);
	while (tr_ticket_list_next(it, &t)) {
		if (!t.is_incident && t.created_at <= now) {
			in_window++;
			bump(categories, t.category);
			bump(teams, t.team);
			priorities[t.priority - 1]++;
			escalated += t.escalated;
			char **names = g_strsplit(t.triggers, ",", -1);
			for (char **n = names; *n != NULL; n++) {
				if (**n != '\0')
					bump(triggers, *n);
			}
			g_strfreev(names);
		}
		tr_ticket_clear(&t);
	}
	tr_ticket_list_deinit(&it);

	tr_report *r = build(store, since, now);
	/* At since and at now are in; one second before and after are not; the incident parent is not a ticket. */
	assert_int_equal(in_window, 11);
	assert_int_equal(r->tickets, 11);
	assert_int_equal(r->status_open, 11);
	assert_int_equal(r->by_channel.n, 2);
	assert_int_equal(count_of(&r->by_channel, "file"), 10);
	assert_int_equal(count_of(&r->by_channel, "xmpp"), 1);
	assert_string_equal(r->by_channel.items[0].name, "file");
	assert_counts(&r->by_category, categories, "by category");
	assert_counts(&r->by_team, teams, "by team");
	assert_counts(&r->by_trigger, triggers, "by trigger");
	for (int p = 0; p < TR_REPORT_PRIORITIES; p++)
		assert_int_equal(r->by_priority[p], priorities[p]);
	assert_int_equal(r->escalated, escalated);
	g_hash_table_destroy(categories);
	g_hash_table_destroy(teams);
	g_hash_table_destroy(triggers);

	/* Repeated issues: the five identical reports, then the three invoices
	 * whose subjects differ in prefixes, tags, case and numbers. */
	assert_true(r->n_top_issues >= 2);
	const tr_report_issue *login = &r->top_issues[0], *invoice = &r->top_issues[1];
	assert_string_equal(login->key, "login fails with error 502");
	assert_int_equal(login->tickets, 5);
	assert_int_equal(login->requesters, 5);
	assert_int_equal(login->open, 5);
	assert_int_equal(login->first_at, T0 + 600);
	assert_int_equal(login->last_at, T0 + 840);
	assert_int_equal(login->n_samples, TR_REPORT_ISSUE_SAMPLES);
	assert_string_equal(invoice->key, "invoice # charged twice");
	assert_int_equal(invoice->tickets, 3);
	assert_int_equal(invoice->requesters, 3);
	assert_string_equal(invoice->subject, "Invoice 30001 charged TWICE");
	assert_int_equal(invoice->n_samples, 3);
	char id[40];
	assert_string_equal(invoice->samples[0], tr_store_format_ticket(store, b3, id, sizeof(id)));
	assert_string_equal(invoice->samples[1], tr_store_format_ticket(store, b2, id, sizeof(id)));
	assert_string_equal(invoice->samples[2], tr_store_format_ticket(store, b1, id, sizeof(id)));
	for (size_t i = 2; i < r->n_top_issues; i++)
		assert_true(r->top_issues[i].tickets >= 2 && r->top_issues[i].tickets <= 3);

	/* The mass incident: one parent with its five tickets, escalated once. */
	assert_int_equal(r->n_incidents, 1);
	assert_int_equal(r->incidents[0].id, incident);
	assert_int_equal(r->incidents[0].children, 5);
	assert_int_equal(r->incidents[0].open_children, 5);
	assert_true(g_str_has_prefix(r->incidents[0].subject, "Incident: "));
	bool parent_listed = false;
	for (size_t i = 0; i < r->n_open_escalations; i++)
		parent_listed |= r->open_escalations[i].id == incident && r->open_escalations[i].incident;
	assert_true(parent_listed);
	tr_report_free(&r);

	/* --top and the repeat threshold. */
	tr_report_options o = { .since = since, .now = now, .top_issues = 1, .min_repeat = 4 };
	GError *error = NULL;
	r = tr_report_build(store, tr_engine_policy(engine), &o, &error);
	assert_non_null(r);
	assert_int_equal(r->n_top_issues, 1);
	assert_int_equal(r->top_issues[0].tickets, 5);
	tr_report_free(&r);

	/* A resolved child is no longer open in its incident or its issue. */
	ok_or_fail(tr_ticket_resolve(store, tr_engine_policy(engine), login_first, "agent", now, &error), error,
	           "resolve");
	r = build(store, since, now);
	assert_int_equal(r->incidents[0].children, 5);
	assert_int_equal(r->incidents[0].open_children, 4);
	assert_int_equal(r->top_issues[0].open, 4);
	assert_int_equal(r->status_resolved, 1);
	tr_report_free(&r);
	tr_ingest_free(&ing);
	tr_store_close(&store);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_subject_key),
		cmocka_unit_test(test_rates),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_sla_escalations_reopens),
		cmocka_unit_test(test_volume_window_issues_incidents),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
