/*
 * test_chatops.c — chat-ops without a server (daemon/chatops.c): who may run a
 * command (real JIDs of [person]s and [xmpp] operators; nicks only where
 * configured, and never against a JID the room shows), and what each
 * command does to the store: the ticket operation and a chat_command event
 * with the actor in one transaction, answers for the room, refusals that
 * change nothing, and an acknowledged escalation that climbs no further.
 * The shipped configuration, a temporary database, an explicit clock.
 */
#include "testutil.h"

#include <locale.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channels/chatcmd.h"
#include "channels/xmpp.h"
#include "core/engine.h"
#include "daemon/chatops.h"
#include "store/ingest.h"
#include "store/sla.h"
#include "store/store.h"
#include "store/ticket.h"

/* 2026-11-16 09:00 UTC, a Monday. */
#define T0 1794819600
#define MINUTE 60
#define ROOM "ops@conference.example.test"

static tr_engine *engine;
static char *dir;

typedef struct {
	char *path;
	tr_store *store;
	int64_t ticket;        /* a P1 outage, escalated */
	tr_chatops_actor ana;     /* a [person] */
	tr_chatops_actor op;      /* an [xmpp] operator without a [person] */
} fixture;

static int global_setup(void **state)
{
	(void)state;
	setlocale(LC_CTYPE, "C.UTF-8");
	char *conf = tr_test_path("conf/triage.conf");
	engine = tr_test_engine(conf);
	g_free(conf);
	dir = g_dir_make_tmp("triage-chatops-XXXXXX", NULL);
	return engine != NULL ? 0 : -1;
}

static int global_teardown(void **state)
{
	(void)state;
	tr_engine_free(&engine);
	tr_test_rmtree(&dir);
	return 0;
}

static tr_xmpp_config config(void)
{
	tr_xmpp_config cfg;
	tr_xmpp_config_default(&cfg);
	g_strfreev(cfg.operators);
	cfg.operators = g_strsplit("ops-bot@example.org,night@example.org", ",", -1);
	g_strfreev(cfg.operators_by_nick);
	cfg.operators_by_nick = g_strsplit("ana,helper", ",", -1);
	return cfg;
}

static int setup(void **state)
{
	static int counter;
	fixture *f = g_new0(fixture, 1);
	f->path = g_strdup_printf("%s/o%d.db", dir, counter++);
	tr_store_settings settings;
	tr_store_settings_default(&settings, f->path);
	GError *error = NULL;
	f->store = tr_store_open(&settings, &error);
	if (f->store == NULL)
		fail_msg("open: %s", error->message);
	tr_store_settings_clear(&settings);
	tr_outbox_options options = { .message_domain = "example.test", .rooms = true };
	tr_ingest *ing = tr_ingest_new(f->store, engine, &options);
	const char *raw = "From: Priya Raman <priya.raman@bigcorp.example>\nTo: support@example.test\n"
	                  "Subject: Checkout down for all customers\nMessage-ID: <p1@bigcorp.example>\n\n"
	                  "Since 08:40 the checkout is down for all customers, nobody can pay.\n";
	tr_ingest_input in = { .channel = TR_CHANNEL_FILE, .data = raw, .len = strlen(raw), .now = T0, .source = "t" };
	tr_ingest_result res;
	if (!tr_ingest_message(ing, &in, &res, &error))
		fail_msg("ingest: %s", error->message);
	tr_ingest_free(&ing);
	assert_int_equal(res.priority, 1);
	assert_true(res.escalated);
	f->ticket = res.ticket_id;
	tr_xmpp_config cfg = config();
	assert_true(tr_chatops_authorize(&cfg, tr_engine_policy(engine), "ana@localhost/phone", "ana", ROOM, &f->ana));
	assert_true(tr_chatops_authorize(&cfg, tr_engine_policy(engine), "ops-bot@example.org/x", NULL, NULL, &f->op));
	tr_xmpp_config_clear(&cfg);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	tr_chatops_actor_clear(&f->ana);
	tr_chatops_actor_clear(&f->op);
	tr_store_close(&f->store);
	g_free(f->path);
	g_free(f);
	return 0;
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

static int events(fixture *f)
{
	return count(f, "SELECT count(*) FROM events");
}

/* Parse text as typed in the room and run it; the answer (g_free). */
static char *run(fixture *f, const tr_chatops_actor *actor, const char *text, int64_t now, bool *done_r)
{
	tr_chatcmd cmd;
	tr_chatcmd_parse(text, strlen(text), "TKT", &cmd);
	GString *reply = g_string_new(NULL);
	bool done = tr_chatops_execute(f->store, engine, &cmd, actor, ROOM, now, reply);
	if (done_r != NULL)
		*done_r = done;
	return g_string_free(reply, FALSE);
}

static tr_ticket get(fixture *f)
{
	tr_ticket t;
	GError *error = NULL;
	if (!tr_ticket_get(f->store, f->ticket, &t, &error))
		fail_msg("%s", error->message);
	return t;
}

static void test_authorize(void **state)
{
	(void)state;
	tr_xmpp_config cfg = config();
	const tr_policy *policy = tr_engine_policy(engine);
	tr_chatops_actor a;
	/* A [person]'s JID, any resource, any case: the person. */
	assert_true(tr_chatops_authorize(&cfg, policy, "Ana@LocalHost/Laptop", "whatever", ROOM, &a));
	assert_string_equal(a.name, "ana");
	assert_string_equal(a.person, "ana");
	assert_string_equal(a.display, "Ana Lima");
	tr_chatops_actor_clear(&a);
	/* An [xmpp] operators JID without a [person]: the bare JID. */
	assert_true(tr_chatops_authorize(&cfg, policy, "night@example.org/x", "n", ROOM, &a));
	assert_string_equal(a.name, "night@example.org");
	assert_null(a.person);
	tr_chatops_actor_clear(&a);
	/* A stranger: refused, even with an operator's nick — the JID is who
	 * it is (operators_by_nick lists "ana"). */
	assert_false(tr_chatops_authorize(&cfg, policy, "stranger@evil.example/r", "ana", ROOM, &a));
	assert_string_equal(a.name, "stranger@evil.example");
	tr_chatops_actor_clear(&a);
	/* A room that hides JIDs: only configured nicks; a nick that is a
	 * [person] acts as that person. */
	assert_true(tr_chatops_authorize(&cfg, policy, NULL, "ana", ROOM, &a));
	assert_string_equal(a.name, "ana");
	tr_chatops_actor_clear(&a);
	assert_true(tr_chatops_authorize(&cfg, policy, NULL, "helper", ROOM, &a));
	assert_string_equal(a.name, ROOM "/helper");
	assert_null(a.person);
	tr_chatops_actor_clear(&a);
	assert_false(tr_chatops_authorize(&cfg, policy, NULL, "Ana", ROOM, &a));   /* exact nicks only */
	tr_chatops_actor_clear(&a);
	assert_false(tr_chatops_authorize(&cfg, policy, NULL, "ivan", ROOM, &a));
	tr_chatops_actor_clear(&a);
	assert_false(tr_chatops_authorize(&cfg, policy, NULL, NULL, ROOM, &a));
	tr_chatops_actor_clear(&a);
	/* Without operators_by_nick a hidden JID is never enough. */
	g_strfreev(cfg.operators_by_nick);
	cfg.operators_by_nick = g_new0(char *, 1);
	assert_false(tr_chatops_authorize(&cfg, policy, NULL, "ana", ROOM, &a));
	tr_chatops_actor_clear(&a);
	tr_xmpp_config_clear(&cfg);
}

static void test_ack_stops_the_ladder(void **state)
{
	fixture *f = *state;
	bool done;
	char *reply = run(f, &f->ana, "!ack TKT-000001", T0 + 2 * MINUTE, &done);
	assert_true(done);
	assert_non_null(strstr(reply, "TKT-000001 acknowledged by Ana Lima"));
	g_free(reply);
	tr_ticket t = get(f);
	assert_int_equal(t.first_response_at, T0 + 2 * MINUTE);
	assert_int_equal(t.escalation_acked_at, T0 + 2 * MINUTE);
	tr_ticket_clear(&t);
	assert_int_equal(count(f, "SELECT count(*) FROM events WHERE kind = 'acked' AND actor = 'ana'"), 1);
	assert_int_equal(count(f, "SELECT count(*) FROM events WHERE kind = 'chat_command' AND actor = 'ana' "
	                          "AND detail = '!ack via " ROOM "'"), 1);
	/* Again: noted, nothing new but the events. */
	reply = run(f, &f->ana, "!ack 1", T0 + 3 * MINUTE, &done);
	assert_non_null(strstr(reply, "already acknowledged"));
	g_free(reply);
	/* 40 minutes on: no warning, no breach, no reminder for it. */
	tr_outbox_options options = { .message_domain = "example.test", .rooms = true };
	tr_sla_tick_result r;
	GError *error = NULL;
	assert_true(tr_sla_tick(f->store, tr_engine_policy(engine), &options, T0 + 40 * MINUTE, &r, &error));
	assert_int_equal(count(f, "SELECT count(*) FROM sla_ladder"), 0);
	assert_int_equal(count(f, "SELECT count(*) FROM outbox WHERE kind = 'room_post' AND template != 'escalation'"), 0);
}

static void test_unacknowledged_climbs(void **state)
{
	/* The control: the same ticket without !ack gets the ladder. */
	fixture *f = *state;
	tr_outbox_options options = { .message_domain = "example.test", .rooms = true };
	tr_sla_tick_result r;
	GError *error = NULL;
	assert_true(tr_sla_tick(f->store, tr_engine_policy(engine), &options, T0 + 40 * MINUTE, &r, &error));
	assert_true(count(f, "SELECT count(*) FROM sla_ladder") >= 4);
	assert_true(count(f, "SELECT count(*) FROM outbox WHERE kind = 'room_post' AND template != 'escalation'") >= 4);
}

static void test_claim_assign(void **state)
{
	fixture *f = *state;
	bool done;
	char *reply = run(f, &f->ana, "!claim TKT-1", T0, &done);
	assert_true(done);
	assert_string_equal(reply, "TKT-000001 assigned to Ana Lima");
	g_free(reply);
	tr_ticket t = get(f);
	assert_string_equal(t.assignee, "ana");
	tr_ticket_clear(&t);
	/* An operator who is no [person] cannot claim: nothing changes. */
	int before = events(f);
	reply = run(f, &f->op, "!claim TKT-1", T0, &done);
	assert_false(done);
	assert_non_null(strstr(reply, "!assign TKT-000001 NAME"));
	g_free(reply);
	assert_int_equal(events(f), before);
	/* ... but can assign, to a [person] only. */
	reply = run(f, &f->op, "!assign TKT-1 ben", T0, &done);
	assert_true(done);
	assert_string_equal(reply, "TKT-000001 assigned to Ben Okafor");
	g_free(reply);
	assert_int_equal(count(f, "SELECT count(*) FROM events WHERE kind = 'assigned' AND actor = 'ops-bot@example.org' "
	                          "AND detail = 'ben'"), 1);
	assert_int_equal(count(f, "SELECT count(*) FROM events WHERE kind = 'chat_command' "
	                          "AND detail = '!assign ben via " ROOM "'"), 1);
	before = events(f);
	reply = run(f, &f->op, "!assign TKT-1 nobody", T0, &done);
	assert_false(done);
	assert_string_equal(reply, "no person 'nobody' in teams.conf");
	g_free(reply);
	assert_int_equal(events(f), before);
}

static void test_pause_resume_resolve(void **state)
{
	fixture *f = *state;
	bool done;
	char *reply = run(f, &f->ana, "!pause TKT-1", T0 + MINUTE, &done);
	assert_true(done);
	g_free(reply);
	tr_ticket t = get(f);
	assert_string_equal(t.status, "paused");
	assert_int_equal(t.clock_since, 0);
	tr_ticket_clear(&t);
	int before = events(f);
	reply = run(f, &f->ana, "!pause TKT-1", T0 + MINUTE, &done);
	assert_false(done);
	assert_string_equal(reply, "TKT-000001 is paused, not running");
	g_free(reply);
	assert_int_equal(events(f), before);
	reply = run(f, &f->ana, "!resume TKT-1", T0 + 5 * MINUTE, &done);
	assert_true(done);
	g_free(reply);
	t = get(f);
	assert_string_equal(t.status, "open");
	tr_ticket_clear(&t);
	reply = run(f, &f->ana, "!resolve TKT-1", T0 + 9 * MINUTE, &done);
	assert_true(done);
	assert_string_equal(reply, "TKT-000001 resolved by Ana Lima");
	g_free(reply);
	assert_int_equal(count(f, "SELECT count(*) FROM events WHERE kind = 'resolved' AND actor = 'ana'"), 1);
	before = events(f);
	reply = run(f, &f->ana, "!resolve TKT-1", T0 + 9 * MINUTE, &done);
	assert_false(done);
	g_free(reply);
	reply = run(f, &f->ana, "!pause TKT-1", T0 + 9 * MINUTE, &done);
	assert_false(done);
	g_free(reply);
	assert_int_equal(events(f), before);
}

static void test_show_open_help_unknown(void **state)
{
	fixture *f = *state;
	bool done;
	char *reply = run(f, &f->ana, "!show TKT-000001", T0 + 5 * MINUTE, &done);
	assert_true(done);
	assert_non_null(strstr(reply, "TKT-000001 P1 open"));
	assert_non_null(strstr(reply, "first response: due in 10m (33%)"));
	assert_non_null(strstr(reply, "subject: Checkout down for all customers"));
	g_free(reply);
	assert_int_equal(count(f, "SELECT count(*) FROM events WHERE kind = 'chat_command' AND detail LIKE '!show%'"), 1);
	reply = run(f, &f->ana, "!open", T0, &done);
	assert_true(done);
	assert_non_null(strstr(reply, "TKT-000001 P1 open engineering"));
	g_free(reply);
	reply = run(f, &f->ana, "!open P4", T0, &done);
	assert_string_equal(reply, "open P4:\nno open tickets");
	g_free(reply);
	reply = run(f, &f->ana, "!open engineering", T0, &done);
	assert_non_null(strstr(reply, "open in engineering:\nTKT-000001"));
	g_free(reply);
	reply = run(f, &f->ana, "!help", T0, &done);
	assert_non_null(strstr(reply, "!ack TKT-123"));
	assert_non_null(strstr(reply, "!help"));
	g_free(reply);
	int before = events(f);
	reply = run(f, &f->ana, "!ack TKT-999", T0, &done);
	assert_false(done);
	assert_string_equal(reply, "no ticket TKT-000999");
	g_free(reply);
	reply = run(f, &f->ana, "!ack TKT-1\xe2\x80\xae", T0, &done);   /* a bidi override */
	assert_false(done);
	assert_non_null(strstr(reply, "not allowed"));
	g_free(reply);
	assert_int_equal(events(f), before);
	tr_ticket t = get(f);
	assert_int_equal(t.first_response_at, 0);
	tr_ticket_clear(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_authorize),
		cmocka_unit_test_setup_teardown(test_ack_stops_the_ladder, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unacknowledged_climbs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_claim_assign, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pause_resume_resolve, setup, teardown),
		cmocka_unit_test_setup_teardown(test_show_open_help_unknown, setup, teardown),
	};
	return cmocka_run_group_tests(tests, global_setup, global_teardown);
}
