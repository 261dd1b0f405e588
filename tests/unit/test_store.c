/*
 * test_store.c — tickets that live: dedup, threading (no hijacking),
 * replies, agent replies, reopen, repeat contacts, mass incidents,
 * business-hours deadlines, pause/resume, the SLA ladder exactly once
 * across restarts, unacknowledged escalations, concurrent ingest, bounces
 * and acknowledgment limits.  The shipped configuration, a temporary
 * database, an explicit clock.
 */
#include "testutil.h"

#include <glib/gstdio.h>
#include <locale.h>
#include <sqlite3.h>
#include <string.h>

#include "core/engine.h"
#include "store/ingest.h"
#include "store/outbox.h"
#include "store/sla.h"
#include "store/store.h"
#include "store/ticket.h"

/* 2026-11-16 09:00 UTC, a Monday (10:00 in Berlin, business hours). */
#define T0 1794819600
#define MINUTE 60
#define HOUR 3600

static tr_engine *engine;
static char *dir;

typedef struct {
	char *path;
	tr_store *store;
	tr_ingest *ingest;
} fixture;

static int global_setup(void **state)
{
	(void)state;
	setlocale(LC_CTYPE, "C.UTF-8");
	char *conf = tr_test_path("conf/triage.conf");
	engine = tr_test_engine(conf);
	g_free(conf);
	dir = g_dir_make_tmp("triage-store-XXXXXX", NULL);
	return engine != NULL ? 0 : -1;
}

static int global_teardown(void **state)
{
	(void)state;
	tr_engine_free(&engine);
	tr_test_rmtree(&dir);
	return 0;
}

static tr_store *open_store(const char *path)
{
	tr_store_settings settings;
	tr_store_settings_default(&settings, path);
	settings.agent_domains = g_strsplit("example.test", ",", -1);
	GError *error = NULL;
	tr_store *store = tr_store_open(&settings, &error);
	if (store == NULL)
		fail_msg("open %s: %s", path, error->message);
	tr_store_settings_clear(&settings);
	return store;
}

static int setup(void **state)
{
	static int counter;
	fixture *f = g_new0(fixture, 1);
	f->path = g_strdup_printf("%s/t%d.db", dir, counter++);
	f->store = open_store(f->path);
	tr_outbox_options options = { .message_domain = "example.test", .rooms = true };
	f->ingest = tr_ingest_new(f->store, engine, &options);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	tr_ingest_free(&f->ingest);
	tr_store_close(&f->store);
	g_free(f->path);
	g_free(f);
	return 0;
}

static const tr_policy *policy(void)
{
	return tr_engine_policy(engine);
}

static tr_ingest_result ingest(fixture *f, const char *raw, int64_t now)
{
	tr_ingest_input in = { .channel = TR_CHANNEL_FILE, .data = raw, .len = strlen(raw), .now = now, .source = "test" };
	tr_ingest_result res;
	GError *error = NULL;
	if (!tr_ingest_message(f->ingest, &in, &res, &error))
		fail_msg("ingest: %s", error->message);
	return res;
}

static char *mail(const char *from, const char *subject, const char *message_id, const char *extra_headers,
                  const char *body)
{
	return g_strdup_printf("From: %s\nTo: support@example.test\nSubject: %s\n%s%s%s%s"
	                       "Content-Type: text/plain; charset=utf-8\n\n%s\n",
	                       from, subject, message_id ? "Message-ID: <" : "", message_id ? message_id : "",
	                       message_id ? ">\n" : "", extra_headers ? extra_headers : "", body);
}

static int count(fixture *f, const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL);
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	int n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

static tr_ticket get(fixture *f, int64_t id)
{
	tr_ticket t;
	GError *error = NULL;
	if (!tr_ticket_get(f->store, id, &t, &error))
		fail_msg("%s", error->message);
	return t;
}

static bool has_event(fixture *f, int64_t id, const char *kind)
{
	char *sql = g_strdup_printf("SELECT count(*) FROM events WHERE ticket_id = %" G_GINT64_FORMAT " AND kind = '%s'",
	                            (gint64)id, kind);
	int n = count(f, sql);
	g_free(sql);
	return n > 0;
}

static void test_dedup(void **state)
{
	fixture *f = *state;
	char *raw = mail("alice@customer.example", "Printer broken", "m1@customer.example", NULL,
	                 "The printer in room 4 is broken.");
	tr_ingest_result a = ingest(f, raw, T0);
	assert_int_equal(a.kind, TR_INGEST_NEW);
	assert_string_equal(a.ticket, "TKT-000001");
	assert_true(a.ack_queued);
	tr_ingest_result b = ingest(f, raw, T0 + 60);
	assert_int_equal(b.kind, TR_INGEST_DUPLICATE);
	assert_int_equal(b.ticket_id, a.ticket_id);
	g_free(raw);
	/* Without a Message-ID: the content hash, even with other Received lines. */
	raw = g_strdup("Received: from a\nFrom: bob@customer.example\nSubject: no id\n"
	               "Date: Mon, 16 Nov 2026 09:00:00 +0000\n\nhello there\n");
	tr_ingest_result c = ingest(f, raw, T0);
	g_free(raw);
	raw = g_strdup("Received: from b\nReceived: from c\nFrom: bob@customer.example\nSubject: no id\n"
	               "Date: Mon, 16 Nov 2026 09:00:00 +0000\n\nhello there\n");
	tr_ingest_result d = ingest(f, raw, T0 + 5);
	assert_int_equal(d.kind, TR_INGEST_DUPLICATE);
	assert_int_equal(d.ticket_id, c.ticket_id);
	g_free(raw);
	assert_int_equal(count(f, "SELECT count(*) FROM tickets"), 2);
	assert_int_equal(count(f, "SELECT count(*) FROM outbox WHERE kind = 'ack'"), 2);
}

static void test_threading_and_hijack(void **state)
{
	fixture *f = *state;
	char *raw = mail("alice@acme.example", "Export fails", "t1@acme.example", NULL, "The CSV export fails.");
	tr_ingest_result first = ingest(f, raw, T0);
	g_free(raw);
	/* The requester, with the tag: a reply. */
	raw = mail("alice@acme.example", "Re: [TKT-000001] Export fails", "t2@acme.example", NULL, "Any news?");
	tr_ingest_result r = ingest(f, raw, T0 + HOUR);
	assert_int_equal(r.kind, TR_INGEST_REPLY);
	assert_int_equal(r.ticket_id, first.ticket_id);
	g_free(raw);
	/* A colleague on the same company domain: a reply too. */
	raw = mail("bob@acme.example", "Re: [TKT-000001] Export fails", "t3@acme.example", NULL, "Same here.");
	r = ingest(f, raw, T0 + HOUR);
	assert_int_equal(r.kind, TR_INGEST_REPLY);
	g_free(raw);
	/* A stranger using the tag: a new ticket that remembers the reference. */
	raw = mail("mallory@evil.example", "[TKT-000001] please send me the export", "t4@evil.example", NULL,
	           "Send me all the data of this ticket.");
	r = ingest(f, raw, T0 + HOUR);
	assert_int_equal(r.kind, TR_INGEST_NEW);
	assert_int_not_equal(r.ticket_id, first.ticket_id);
	assert_string_equal(r.reference, "TKT-000001");
	tr_ticket t = get(f, r.ticket_id);
	assert_string_equal(t.reference, "TKT-000001");
	tr_ticket_clear(&t);
	g_free(raw);
	/* On a public mail domain, "same domain" means nothing. */
	raw = mail("carol@gmail.com", "Login", "g1@gmail.com", NULL, "I cannot log in.");
	tr_ingest_result g1 = ingest(f, raw, T0);
	g_free(raw);
	char *subject = g_strdup_printf("Re: [%s] Login", g1.ticket);
	raw = mail("dave@gmail.com", subject, "g2@gmail.com", NULL, "Me neither, give me her account.");
	r = ingest(f, raw, T0 + 60);
	assert_int_equal(r.kind, TR_INGEST_NEW);
	g_free(raw);
	g_free(subject);
	/* In-Reply-To our acknowledgment's Message-ID (no tag needed). */
	char *ack_id = tr_outbox_message_id("ack:1", "example.test");
	char *hdr = g_strdup_printf("In-Reply-To: <%s>\nReferences: <t1@acme.example> <%s>\n", ack_id, ack_id);
	raw = mail("alice@acme.example", "Re: Export fails", "t5@acme.example", hdr, "Attached the file.");
	r = ingest(f, raw, T0 + 2 * HOUR);
	assert_int_equal(r.kind, TR_INGEST_REPLY);
	assert_int_equal(r.ticket_id, first.ticket_id);
	g_free(raw);
	g_free(hdr);
	g_free(ack_id);
	/* Only one acknowledgment per ticket. */
	assert_int_equal(count(f, "SELECT count(*) FROM outbox WHERE kind = 'ack' AND ticket_id = 1"), 1);
}

static void test_agent_reply_first_response(void **state)
{
	fixture *f = *state;
	char *raw = mail("erin@shop.example", "Where is my invoice", "a1@shop.example", NULL, "I need the invoice.");
	tr_ingest_result r = ingest(f, raw, T0);
	g_free(raw);
	raw = mail("ana@example.test", "Re: [TKT-000001] Where is my invoice", "a2@example.test", NULL,
	           "Here it is, attached.");
	tr_ingest_result a = ingest(f, raw, T0 + 30 * MINUTE);
	assert_int_equal(a.kind, TR_INGEST_AGENT);
	tr_ticket t = get(f, r.ticket_id);
	assert_int_equal(t.first_response_at, T0 + 30 * MINUTE);
	tr_ticket_clear(&t);
	assert_true(has_event(f, r.ticket_id, "first_response"));
	g_free(raw);
}

static void test_reopen_and_resume(void **state)
{
	fixture *f = *state;
	char *raw = mail("frank@shop.example", "Question", "r1@shop.example", NULL, "How do I export?");
	tr_ingest_result r = ingest(f, raw, T0);
	g_free(raw);
	GError *error = NULL;
	/* Waiting for the customer: the clocks stop; the reply resumes them. */
	assert_true(tr_ticket_pause(f->store, policy(), r.ticket_id, true, "ana", T0 + 10 * MINUTE, &error));
	tr_ticket t = get(f, r.ticket_id);
	assert_string_equal(t.status, "waiting");
	assert_int_equal(t.clock_since, 0);
	tr_ticket_clear(&t);
	raw = mail("frank@shop.example", "Re: [TKT-000001] Question", "r2@shop.example", NULL, "I use Windows.");
	tr_ingest_result reply = ingest(f, raw, T0 + 2 * HOUR);
	assert_true(reply.resumed);
	t = get(f, r.ticket_id);
	assert_string_equal(t.status, "open");
	assert_int_equal(t.clock_since, T0 + 2 * HOUR);
	tr_ticket_clear(&t);
	g_free(raw);
	/* Resolved, then a reply within the window: reopened. */
	assert_true(tr_ticket_resolve(f->store, policy(), r.ticket_id, "ana", T0 + 3 * HOUR, &error));
	raw = mail("frank@shop.example", "Re: [TKT-000001] Question", "r3@shop.example", NULL, "Still broken!");
	reply = ingest(f, raw, T0 + 2 * 86400);
	assert_int_equal(reply.kind, TR_INGEST_REPLY);
	assert_true(reply.reopened);
	t = get(f, r.ticket_id);
	assert_string_equal(t.status, "open");
	assert_int_equal(t.reopened, 1);
	tr_ticket_clear(&t);
	g_free(raw);
	/* Resolved again, and a reply after the window: a new ticket. */
	assert_true(tr_ticket_resolve(f->store, policy(), r.ticket_id, "ana", T0 + 3 * 86400, &error));
	raw = mail("frank@shop.example", "Re: [TKT-000001] Question", "r4@shop.example", NULL, "Another thing.");
	reply = ingest(f, raw, T0 + 30 * 86400);
	assert_int_equal(reply.kind, TR_INGEST_NEW);
	assert_string_equal(reply.reference, "TKT-000001");
	g_free(raw);
}

static void test_repeat_contact(void **state)
{
	fixture *f = *state;
	tr_ingest_result r = { 0 };
	for (int i = 0; i < 3; i++) {
		char *id = g_strdup_printf("rep%d@shop.example", i);
		char *subject = g_strdup_printf("Problem number %d", i);
		char *body = g_strdup_printf("Different problem %d with a different text each time, %d.", i, i * 7);
		char *raw = mail("gina@shop.example", subject, id, NULL, body);
		r = ingest(f, raw, T0 + i * HOUR);
		if (i < 2)
			assert_false(r.repeat_contact);
		g_free(raw);
		g_free(id);
		g_free(subject);
		g_free(body);
	}
	assert_true(r.repeat_contact);
	assert_true(r.escalated);
	tr_ticket t = get(f, r.ticket_id);
	assert_non_null(strstr(t.triggers, "repeat_contact"));
	tr_ticket_clear(&t);
}

static void test_mass_incident(void **state)
{
	fixture *f = *state;
	const char *customers[] = { "a@one.example", "b@two.example", "c@three.example", "d@four.example",
	                            "e@five.example", "f@six.example" };
	tr_ingest_result r[6];
	for (int i = 0; i < 6; i++) {
		char *id = g_strdup_printf("inc%d@x.example", i);
		char *raw = mail(customers[i], "Dashboard is down", id, NULL,
		                 "Hi, the dashboard is down since 9:00, we get error 500 on every page. Please help.");
		r[i] = ingest(f, raw, T0 + i * 5 * MINUTE);
		g_free(raw);
		g_free(id);
	}
	/* The fifth customer makes it an incident: one parent, all linked. */
	assert_int_equal(r[3].incident_id, 0);
	assert_true(r[4].incident_created);
	assert_int_not_equal(r[4].incident_id, 0);
	assert_int_equal(r[5].incident_id, r[4].incident_id);
	assert_false(r[5].incident_created);
	assert_int_equal(count(f, "SELECT count(*) FROM tickets WHERE is_incident = 1"), 1);
	assert_int_equal(count(f, "SELECT count(*) FROM tickets WHERE parent_id IS NOT NULL"), 6);
	/* Escalations: the first ticket's own, then the incident's — not six. */
	assert_int_equal(count(f, "SELECT count(*) FROM outbox WHERE kind = 'forward'"), 2);
	assert_int_equal(count(f, "SELECT count(*) FROM outbox WHERE template = 'incident' AND kind = 'forward'"), 1);
}

static void test_business_deadline(void **state)
{
	fixture *f = *state;
	/* Friday 2026-11-20 16:00 Berlin; a free customer's P3: 2 business days
	 * of 8 h -> Tuesday 16:00. */
	char *raw = mail("hal@free.example", "How to export", "b1@free.example", NULL, "How do I export my data to CSV?");
	tr_ingest_result r = ingest(f, raw, 1795186800);
	tr_ticket t = get(f, r.ticket_id);
	assert_int_equal(t.priority, 3);
	assert_true(t.fr_business);
	assert_string_equal(t.calendar, "business");
	assert_int_equal(t.fr_due, 1795532400);
	tr_ticket_clear(&t);
	g_free(raw);
}

static int64_t p1_enterprise(fixture *f, int64_t now)
{
	char *raw = mail("ops@bigcorp.example", "Site down", "p1@bigcorp.example", NULL,
	                 "Our site is down for all users, nobody can log in.");
	tr_ingest_result r = ingest(f, raw, now);
	g_free(raw);
	assert_int_equal(r.priority, 1);
	assert_true(r.escalated);
	return r.ticket_id;
}

static tr_sla_tick_result tick(tr_store *store, int64_t now)
{
	tr_outbox_options options = { .message_domain = "example.test", .rooms = true };
	tr_sla_tick_result res;
	GError *error = NULL;
	if (!tr_sla_tick(store, policy(), &options, now, &res, &error))
		fail_msg("tick: %s", error->message);
	return res;
}

static void test_ladder_exactly_once_across_restarts(void **state)
{
	fixture *f = *state;
	int64_t id = p1_enterprise(f, T0);  /* first response 15 min, around the clock */
	tr_ticket t = get(f, id);
	assert_int_equal(t.fr_due, T0 + 15 * MINUTE);
	assert_int_equal(t.next_check_at, T0 + 5 * MINUTE);  /* the escalation's acknowledgment timeout */
	tr_ticket_clear(&t);
	tr_sla_tick_result r = tick(f->store, T0 + 7 * MINUTE);
	assert_int_equal(r.warnings, 0);
	r = tick(f->store, T0 + 8 * MINUTE);
	assert_int_equal(r.warnings, 1);
	r = tick(f->store, T0 + 8 * MINUTE);
	assert_int_equal(r.warnings, 0);
	/* Restart: a new connection, as after a crash. */
	tr_ingest_free(&f->ingest);
	tr_store_close(&f->store);
	f->store = open_store(f->path);
	tr_outbox_options options = { .message_domain = "example.test", .rooms = true };
	f->ingest = tr_ingest_new(f->store, engine, &options);
	r = tick(f->store, T0 + 9 * MINUTE);
	assert_int_equal(r.warnings + r.breaches, 0);
	/* Past 75 % and 100 % at once: both, once; and the customer's notice. */
	r = tick(f->store, T0 + 16 * MINUTE);
	assert_int_equal(r.warnings, 1);
	assert_int_equal(r.breaches, 1);
	r = tick(f->store, T0 + 17 * MINUTE);
	assert_int_equal(r.warnings + r.breaches, 0);
	assert_int_equal(count(f, "SELECT count(*) FROM sla_ladder WHERE clock = 'first_response'"), 3);
	assert_int_equal(count(f, "SELECT count(*) FROM outbox WHERE kind = 'customer_notice'"), 1);
	assert_true(has_event(f, id, "breached"));
	/* A second store on the same file ticking at the same time adds nothing. */
	tr_store *other = open_store(f->path);
	r = tick(other, T0 + 17 * MINUTE);
	assert_int_equal(r.warnings + r.breaches, 0);
	tr_store_close(&other);
}

static void test_unacknowledged_escalation(void **state)
{
	fixture *f = *state;
	int64_t id = p1_enterprise(f, T0);  /* P1: 5 minutes to acknowledge */
	tr_sla_tick_result r = tick(f->store, T0 + 4 * MINUTE);
	assert_int_equal(r.escalations, 0);
	r = tick(f->store, T0 + 5 * MINUTE);
	assert_int_equal(r.escalations, 1);  /* the secondary on-call */
	r = tick(f->store, T0 + 6 * MINUTE);
	assert_int_equal(r.escalations, 0);
	r = tick(f->store, T0 + 10 * MINUTE);
	assert_int_equal(r.escalations, 1);  /* the manager */
	assert_int_equal(count(f, "SELECT count(*) FROM sla_ladder WHERE clock = 'escalation'"), 2);
	/* Acknowledged: no more ladder for the first-response clock. */
	GError *error = NULL;
	assert_true(tr_ticket_ack(f->store, policy(), id, "ivan", T0 + 11 * MINUTE, &error));
	r = tick(f->store, T0 + 20 * MINUTE);
	assert_int_equal(r.breaches, 0);
	tr_ticket t = get(f, id);
	assert_int_equal(t.first_response_at, T0 + 11 * MINUTE);
	assert_int_equal(t.escalation_acked_at, T0 + 11 * MINUTE);
	tr_ticket_clear(&t);
}

static void test_pause_resume(void **state)
{
	fixture *f = *state;
	int64_t id = p1_enterprise(f, T0);
	GError *error = NULL;
	assert_true(tr_ticket_ack(f->store, policy(), id, "ivan", T0 + MINUTE, &error));
	/* Resolution: 4 h.  Pause after 1 h; an hour paused; resume. */
	assert_true(tr_ticket_pause(f->store, policy(), id, false, "ivan", T0 + HOUR, &error));
	tr_sla_tick_result r = tick(f->store, T0 + 3 * HOUR);
	assert_int_equal(r.warnings, 0);  /* 50 % would be at 2 h of running time */
	tr_ticket t = get(f, id);
	assert_int_equal(tr_sla_consumed(policy(), &t, true, T0 + 3 * HOUR), HOUR);
	tr_ticket_clear(&t);
	assert_true(tr_ticket_resume(f->store, policy(), id, "ivan", T0 + 3 * HOUR, &error));
	t = get(f, id);
	assert_int_equal(t.res_due, T0 + 3 * HOUR + 3 * HOUR);  /* 3 h left */
	assert_int_equal(t.next_check_at, T0 + 4 * HOUR);        /* 50 % after another hour */
	tr_ticket_clear(&t);
	assert_true(has_event(f, id, "paused"));
	assert_true(has_event(f, id, "resumed"));
}

static void test_auto_reply_and_bounce(void **state)
{
	fixture *f = *state;
	char *raw = mail("ivy@shop.example", "Help", "ab1@shop.example", NULL, "Please help me with my order.");
	tr_ingest_result r = ingest(f, raw, T0);
	g_free(raw);
	GError *error = NULL;
	assert_true(tr_ticket_pause(f->store, policy(), r.ticket_id, true, "ana", T0 + MINUTE, &error));
	/* An out-of-office on the ticket: attached, the ticket keeps waiting. */
	raw = mail("ivy@shop.example", "Automatic reply: [TKT-000001] Help", "ab2@shop.example",
	           "Auto-Submitted: auto-replied\n", "I am out of the office.");
	tr_ingest_result a = ingest(f, raw, T0 + 2 * MINUTE);
	assert_int_equal(a.kind, TR_INGEST_REPLY);
	assert_false(a.resumed);
	tr_ticket t = get(f, r.ticket_id);
	assert_string_equal(t.status, "waiting");
	tr_ticket_clear(&t);
	g_free(raw);
	/* A hard bounce for another customer: no more acks to that address. */
	raw = g_strdup("From: MAILER-DAEMON@mx.example\nSubject: Undelivered Mail Returned to Sender\n"
	               "Message-ID: <dsn1@mx.example>\nMIME-Version: 1.0\n"
	               "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\n\n"
	               "--b\nContent-Type: text/plain\n\nFailed.\n"
	               "--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example\n\n"
	               "Final-Recipient: rfc822; gone@shop.example\nAction: failed\nStatus: 5.1.1\n--b--\n");
	ingest(f, raw, T0 + 3 * MINUTE);
	g_free(raw);
	raw = mail("gone@shop.example", "Hello", "ab3@shop.example", NULL, "A question about my order.");
	tr_ingest_result g = ingest(f, raw, T0 + 4 * MINUTE);
	assert_false(g.ack_queued);
	assert_string_equal(g.no_ack, "address bounced recently");
	g_free(raw);
}

static void test_ack_limits(void **state)
{
	fixture *f = *state;
	int acks = 0;
	for (int i = 0; i < 8; i++) {
		char *id = g_strdup_printf("lim%d@flood.example", i);
		char *body = g_strdup_printf("Message number %d about topic %d, each one different from the rest %d.",
		                             i, i * 13, i * 101);
		char *subject = g_strdup_printf("Topic %d", i);
		char *raw = mail("flood@flood.example", subject, id, NULL, body);
		tr_ingest_result r = ingest(f, raw, T0 + i * MINUTE);
		acks += r.ack_queued;
		g_free(raw);
		g_free(id);
		g_free(body);
		g_free(subject);
	}
	assert_int_equal(acks, 5);  /* ack_per_sender_hour */
	assert_int_equal(count(f, "SELECT count(*) FROM tickets"), 8);  /* every message is still a ticket */
	assert_int_equal(count(f, "SELECT count(*) FROM events WHERE kind = 'ack_suppressed'"), 3);
}

/* One address over new_per_sender_hour opens no more tickets; its repeat
 * contact escalates once. */
static void test_sender_flood(void **state)
{
	fixture *f = *state;
	int joined = 0, escalated = 0;
	for (int i = 0; i < 30; i++) {
		char *id = g_strdup_printf("fl%d@flood.example", i);
		char *body = g_strdup_printf("Flood %d about subject %d, each one different %d.", i, i * 17, i * 103);
		char *subject = g_strdup_printf("Flood %d", i);
		char *raw = mail("flood@flood.example", subject, id, NULL, body);
		tr_ingest_result r = ingest(f, raw, T0 + i * MINUTE);
		joined += r.flood;
		escalated += r.escalated;
		if (r.flood) {
			assert_int_equal(r.kind, TR_INGEST_REPLY);
			assert_false(r.ack_queued);
			assert_false(r.escalated);
		}
		g_free(raw);
		g_free(id);
		g_free(body);
		g_free(subject);
	}
	assert_int_equal(joined, 10);
	assert_int_equal(count(f, "SELECT count(*) FROM tickets"), 20);  /* new_per_sender_hour */
	assert_int_equal(count(f, "SELECT count(*) FROM messages"), 30); /* nothing lost */
	assert_int_equal(count(f, "SELECT count(*) FROM events WHERE kind = 'flood_joined' AND ticket_id = 20"), 10);
	assert_int_equal(escalated, 1);                                  /* the repeat contact, once */
	assert_true(count(f, "SELECT count(*) FROM events WHERE kind = 'escalation_suppressed'") > 0);
	/* An hour later the address may open tickets again. */
	char *raw = mail("flood@flood.example", "Later", "later@flood.example", NULL, "A new question, much later.");
	tr_ingest_result r = ingest(f, raw, T0 + 30 * MINUTE + HOUR);
	assert_int_equal(r.kind, TR_INGEST_NEW);
	g_free(raw);
}

typedef struct {
	const char *path;
	int start;
	int duplicates;
} thread_arg;

static gpointer ingest_thread(gpointer data)
{
	thread_arg *a = data;
	tr_store *store = open_store(a->path);
	tr_outbox_options options = { .message_domain = "example.test" };
	tr_ingest *ing = tr_ingest_new(store, engine, &options);
	for (int k = 0; k < 40; k++) {
		int i = (a->start + k) % 40;
		char *id = g_strdup_printf("conc%d@shop.example", i);
		char *body = g_strdup_printf("Concurrent message %d, unique text %d.", i, i * 31);
		char *from = g_strdup_printf("many%d@shop.example", i % 8);
		char *raw = mail(from, "Concurrent", id, NULL, body);
		g_free(from);
		tr_ingest_input in = { .channel = TR_CHANNEL_FILE, .data = raw, .len = strlen(raw), .now = T0 + i };
		tr_ingest_result res;
		GError *error = NULL;
		if (!tr_ingest_message(ing, &in, &res, &error))
			g_error("concurrent ingest: %s", error->message);
		a->duplicates += res.kind == TR_INGEST_DUPLICATE;
		g_free(raw);
		g_free(id);
		g_free(body);
	}
	tr_ingest_free(&ing);
	tr_store_close(&store);
	return NULL;
}

static void test_concurrent_threads(void **state)
{
	fixture *f = *state;
	thread_arg a = { f->path, 0, 0 }, b = { f->path, 20, 0 };
	GThread *ta = g_thread_new("a", ingest_thread, &a);
	GThread *tb = g_thread_new("b", ingest_thread, &b);
	g_thread_join(ta);
	g_thread_join(tb);
	assert_int_equal(a.duplicates + b.duplicates, 40);
	assert_int_equal(count(f, "SELECT count(*) FROM tickets"), 40);
	assert_int_equal(count(f, "SELECT count(*) FROM messages"), 40);
	assert_int_equal(count(f, "SELECT count(DISTINCT ticket_id) FROM outbox WHERE kind = 'ack'"),
	                 count(f, "SELECT count(*) FROM outbox WHERE kind = 'ack'"));
}

static void test_batch_rolls_back_one(void **state)
{
	fixture *f = *state;
	GError *error = NULL;
	assert_true(tr_ingest_batch_begin(f->ingest, &error));
	char *good = mail("j@shop.example", "One", "batch1@shop.example", NULL, "first");
	tr_ingest_input in = { .channel = TR_CHANNEL_FILE, .data = good, .len = strlen(good), .now = T0 };
	tr_ingest_result res;
	assert_true(tr_ingest_batch_add(f->ingest, &in, &res, &error));
	tr_ingest_input empty = { .channel = TR_CHANNEL_FILE, .data = "", .len = 0, .now = T0 };
	assert_false(tr_ingest_batch_add(f->ingest, &empty, &res, &error));
	g_clear_error(&error);
	assert_true(tr_ingest_batch_commit(f->ingest, &error));
	assert_int_equal(count(f, "SELECT count(*) FROM tickets"), 1);
	g_free(good);
	assert_int_equal(tr_store_schema_version(f->store), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_dedup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threading_and_hijack, setup, teardown),
		cmocka_unit_test_setup_teardown(test_agent_reply_first_response, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen_and_resume, setup, teardown),
		cmocka_unit_test_setup_teardown(test_repeat_contact, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mass_incident, setup, teardown),
		cmocka_unit_test_setup_teardown(test_business_deadline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ladder_exactly_once_across_restarts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unacknowledged_escalation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pause_resume, setup, teardown),
		cmocka_unit_test_setup_teardown(test_auto_reply_and_bounce, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ack_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sender_flood, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_threads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_rolls_back_one, setup, teardown),
	};
	return cmocka_run_group_tests(tests, global_setup, global_teardown);
}
