/* test_mailstore.c — the store behind the mail channels' hooks, on a real
 * SQLite file: commit, duplicate, many threads at once, agent replies
 * (first response) that never open a ticket, and a store that cannot be
 * opened. */
#include "testutil.h"

#include <glib/gstdio.h>
#include <string.h>

#include "core/normalize.h"
#include "daemon/mailstore.h"
#include "store/ticket.h"

static tr_engine *engine;
static tr_engine_slot *engines;
static char *dir;

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
	dir = g_dir_make_tmp("triage-mailstore-XXXXXX", NULL);
	return dir != NULL ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	tr_engine_slot_free(&engines);
	tr_engine_free(&engine);
	tr_test_rmtree(&dir);
	return 0;
}

static tr_mailstore *mailstore_at(const char *name)
{
	tr_store_settings settings;
	char *path = g_build_filename(dir, name, NULL);
	tr_store_settings_default(&settings, path);
	g_strfreev(settings.agent_domains);
	settings.agent_domains = g_strsplit("example.test", ",", -1);
	settings.limits.synchronous = 1;
	tr_outbox_options outbox = { .message_domain = "triage.example.test" };
	tr_mailstore *ms = tr_mailstore_new(&settings, engines, &outbox);
	tr_store_settings_clear(&settings);
	g_free(path);
	return ms;
}

static char *message(const char *from, const char *subject, const char *id)
{
	return g_strdup_printf("From: %s\r\nTo: support@example.test\r\nSubject: %s\r\nMessage-ID: <%s>\r\n"
	                       "Date: Mon, 16 Nov 2026 08:00:00 +0000\r\n\r\n"
	                       "Our production API is down for everyone, please escalate.\r\n",
	                       from, subject, id);
}

static tr_ingest_input input_for(const char *data, const char *from)
{
	static const char *const to[] = { "support@example.test" };
	return (tr_ingest_input){
		.channel = TR_CHANNEL_LMTP, .data = data, .len = strlen(data), .envelope_from = from,
		.envelope_to = to, .n_envelope_to = 1, .now = 1795334400, .source = "test",
	};
}

static void test_commit_and_duplicate(void **state)
{
	(void)state;
	tr_mailstore *ms = mailstore_at("a.db");
	assert_true(tr_mailstore_probe(ms, NULL));
	char *data = message("dana@bigcorp.example", "URGENT: API down", "a-1@bigcorp.example");
	tr_ingest_input in = input_for(data, "dana@bigcorp.example");
	tr_ingest_result r;
	GError *error = NULL;
	assert_true(tr_mailstore_ingest(ms, &in, &r, &error));
	assert_int_equal(r.kind, TR_INGEST_NEW);
	assert_string_equal(r.ticket, "TKT-000001");
	assert_int_equal(r.priority, 1);
	assert_true(tr_mailstore_ingest(ms, &in, &r, &error));
	assert_int_equal(r.kind, TR_INGEST_DUPLICATE);
	assert_string_equal(r.ticket, "TKT-000001");
	g_free(data);
	tr_mailstore_free(&ms);
	tr_mailstore_free(&ms);
}

typedef struct {
	tr_mailstore *ms;
	int index;
	int ok;
} job;

static gpointer worker(gpointer data)
{
	job *j = data;
	for (int i = 0; i < 5; i++) {
		char *id = g_strdup_printf("t%d-%d@bigcorp.example", j->index, i);
		char *from = g_strdup_printf("user%d@customer%d.example", i, j->index);
		char *msg = message(from, "Invoice question", id);
		tr_ingest_input in = input_for(msg, from);
		tr_ingest_result r;
		GError *error = NULL;
		if (tr_mailstore_ingest(j->ms, &in, &r, &error))
			j->ok++;
		else
			g_printerr("ingest: %s\n", error->message);
		g_clear_error(&error);
		g_free(msg);
		g_free(from);
		g_free(id);
	}
	return NULL;
}

/* Eight threads at once: each gets its own connection from the pool. */
static void test_threads(void **state)
{
	(void)state;
	tr_mailstore *ms = mailstore_at("b.db");
	job jobs[8];
	GThread *threads[8];
	for (int i = 0; i < 8; i++) {
		jobs[i] = (job){ ms, i, 0 };
		threads[i] = g_thread_new("ingest", worker, &jobs[i]);
	}
	int ok = 0;
	for (int i = 0; i < 8; i++) {
		g_thread_join(threads[i]);
		ok += jobs[i].ok;
	}
	assert_int_equal(ok, 40);
	tr_mailstore_free(&ms);
}

static void test_agent_reply(void **state)
{
	(void)state;
	tr_mailstore *ms = mailstore_at("c.db");
	char *data = message("dana@bigcorp.example", "URGENT: API down", "c-1@bigcorp.example");
	tr_ingest_input in = input_for(data, "dana@bigcorp.example");
	tr_ingest_result r;
	assert_true(tr_mailstore_ingest(ms, &in, &r, NULL));
	char ticket[40];
	g_strlcpy(ticket, r.ticket, sizeof(ticket));

	/* An agent answers: recorded as the first response. */
	char *subject = g_strdup_printf("Re: [%s] URGENT: API down", ticket);
	char *reply = message("ana@example.test", subject, "reply-1@example.test");
	tr_ingest_input rin = input_for(reply, "ana@example.test");
	rin.channel = TR_CHANNEL_MILTER;
	bool recorded = false;
	GError *error = NULL;
	assert_true(tr_mailstore_reply(ms, ticket, &rin, &recorded, &error));
	assert_true(recorded);

	tr_store_settings settings;
	char *path = g_build_filename(dir, "c.db", NULL);
	tr_store_settings_default(&settings, path);
	tr_store *store = tr_store_open(&settings, &error);
	assert_non_null(store);
	tr_ticket t;
	assert_true(tr_ticket_get(store, tr_store_parse_ticket(store, ticket), &t, &error));
	assert_true(t.first_response_at > 0);
	tr_ticket_clear(&t);

	/* An unknown ticket, or a sender the store takes for no agent: nothing
	 * recorded, and no ticket opened for the agent's mail. */
	char *other = message("ana@example.test", "Re: [TKT-000999] hello", "reply-2@example.test");
	tr_ingest_input oin = input_for(other, "ana@example.test");
	assert_true(tr_mailstore_reply(ms, "TKT-000999", &oin, &recorded, &error));
	assert_false(recorded);
	char *stranger = message("eve@elsewhere.example", subject, "reply-3@elsewhere.example");
	tr_ingest_input sin = input_for(stranger, "eve@elsewhere.example");
	assert_true(tr_mailstore_reply(ms, ticket, &sin, &recorded, &error));
	assert_false(recorded);
	assert_int_equal(tr_store_parse_ticket(store, "TKT-000002"), 2);
	assert_false(tr_ticket_get(store, 2, &t, &error));   /* still only one ticket */
	g_clear_error(&error);

	tr_store_close(&store);
	tr_store_settings_clear(&settings);
	g_free(path);
	g_free(stranger);
	g_free(other);
	g_free(reply);
	g_free(subject);
	g_free(data);
	tr_mailstore_free(&ms);
}

/* A store that cannot be opened: a temporary failure per message. */
static void test_unwritable(void **state)
{
	(void)state;
	tr_store_settings settings;
	tr_store_settings_default(&settings, "/dev/null/triage.db");
	tr_mailstore *ms = tr_mailstore_new(&settings, engines, NULL);
	tr_store_settings_clear(&settings);
	GError *error = NULL;
	assert_false(tr_mailstore_probe(ms, &error));
	g_clear_error(&error);
	char *data = message("dana@bigcorp.example", "x", "d-1@bigcorp.example");
	tr_ingest_input in = input_for(data, "dana@bigcorp.example");
	tr_ingest_result r;
	assert_false(tr_mailstore_ingest(ms, &in, &r, &error));
	assert_non_null(error);
	g_clear_error(&error);
	g_free(data);
	tr_mailstore_free(&ms);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_commit_and_duplicate),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_agent_reply),
		cmocka_unit_test(test_unwritable),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
