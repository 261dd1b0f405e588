/*
 * test_chat_thread.c — chat intake in the store: a 1:1 chat becomes a
 * ticket of channel xmpp acknowledged in the chat; follow-ups from the
 * same JID thread onto its open ticket while the conversation is alive
 * ([xmpp] chat_thread_window), never onto a resolved one, another JID's or
 * a mail ticket; chat ids make a resent message a duplicate, and the same
 * words on another day are a new message.  The shipped configuration, a
 * temporary database, an explicit clock.
 */
#include "testutil.h"

#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <sqlite3.h>
#include <string.h>

#include "core/engine.h"
#include "store/ingest.h"
#include "store/outbox.h"
#include "store/store.h"
#include "store/ticket.h"

/* 2026-11-16 09:00 UTC, a Monday. */
#define T0 1794819600
#define MINUTE 60
#define HOUR 3600
#define WINDOW (2 * HOUR)

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
	dir = g_dir_make_tmp("triage-chat-XXXXXX", NULL);
	return engine != NULL ? 0 : -1;
}

static int global_teardown(void **state)
{
	(void)state;
	tr_engine_free(&engine);
	tr_test_rmtree(&dir);
	return 0;
}

static int setup(void **state)
{
	static int counter;
	fixture *f = g_new0(fixture, 1);
	f->path = g_strdup_printf("%s/c%d.db", dir, counter++);
	tr_store_settings settings;
	tr_store_settings_default(&settings, f->path);
	GError *error = NULL;
	f->store = tr_store_open(&settings, &error);
	if (f->store == NULL)
		fail_msg("open %s: %s", f->path, error->message);
	tr_store_settings_clear(&settings);
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

static tr_ingest_result chat_full(fixture *f, const char *from, const char *text, const char *id, int64_t window,
                                  int64_t now)
{
	tr_ingest_input in = {
		.channel = TR_CHANNEL_XMPP, .chat_from = from, .chat_text = text, .chat_len = strlen(text),
		.chat_id = id, .chat_thread_window = window, .now = now, .source = "xmpp:test",
	};
	tr_ingest_result res;
	GError *error = NULL;
	if (!tr_ingest_message(f->ingest, &in, &res, &error))
		fail_msg("chat: %s", error->message);
	return res;
}

static tr_ingest_result chat(fixture *f, const char *from, const char *text, int64_t now)
{
	return chat_full(f, from, text, NULL, WINDOW, now);
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

static void test_chat_becomes_ticket_with_chat_ack(void **state)
{
	fixture *f = *state;
	tr_ingest_result r = chat(f, "Carol@Chat.Example", "Hi, I cannot log in to my account since this morning.", T0);
	assert_int_equal(r.kind, TR_INGEST_NEW);
	assert_true(r.ack_queued);
	tr_ticket t;
	GError *error = NULL;
	assert_true(tr_ticket_get(f->store, r.ticket_id, &t, &error));
	assert_string_equal(t.channel, "xmpp");
	assert_string_equal(t.requester, "carol@chat.example");   /* normalized */
	tr_ticket_clear(&t);
	/* The acknowledgment goes back into the chat, to the bare JID. */
	assert_int_equal(count(f, "SELECT count(*) FROM outbox WHERE kind = 'ack' AND channel = 'xmpp' "
	                          "AND recipient = 'carol@chat.example' AND template = 'ack'"), 1);
	assert_int_equal(count(f, "SELECT count(*) FROM outbox WHERE channel = 'smtp'"), 0);
}

static void test_follow_ups_thread_within_window(void **state)
{
	fixture *f = *state;
	tr_ingest_result first = chat(f, "carol@chat.example", "My invoice shows the wrong amount.", T0);
	tr_ingest_result second = chat(f, "carol@chat.example", "It is invoice 4411, charged twice.", T0 + 30 * MINUTE);
	assert_int_equal(second.kind, TR_INGEST_REPLY);
	assert_int_equal(second.ticket_id, first.ticket_id);
	/* The window runs from the last activity, not from the first message. */
	tr_ingest_result third = chat(f, "carol@chat.example", "Any news?", T0 + 30 * MINUTE + WINDOW - 1);
	assert_int_equal(third.kind, TR_INGEST_REPLY);
	assert_int_equal(third.ticket_id, first.ticket_id);
	assert_int_equal(count(f, "SELECT count(*) FROM messages WHERE direction = 'in'"), 3);
	/* One acknowledgment per ticket, not one per chat line. */
	assert_int_equal(count(f, "SELECT count(*) FROM outbox WHERE kind = 'ack'"), 1);
	/* Quiet for longer than the window: a new conversation, a new ticket. */
	int64_t later = T0 + 30 * MINUTE + WINDOW - 1 + WINDOW + 1;
	tr_ingest_result fourth = chat(f, "carol@chat.example", "Another question about exports.", later);
	assert_int_equal(fourth.kind, TR_INGEST_NEW);
	assert_true(fourth.ticket_id != first.ticket_id);
	/* ... and the next line goes to the newest one. */
	tr_ingest_result fifth = chat(f, "carol@chat.example", "The CSV one.", later + MINUTE);
	assert_int_equal(fifth.ticket_id, fourth.ticket_id);
}

static void test_agent_activity_keeps_thread_alive(void **state)
{
	fixture *f = *state;
	tr_ingest_result first = chat(f, "dan@chat.example", "The dashboard is slow.", T0);
	GError *error = NULL;
	assert_true(tr_ticket_ack(f->store, tr_engine_policy(engine), first.ticket_id, "ana", T0 + 100 * MINUTE, &error));
	/* 3 h after the chat but 80 min after the agent answered: same ticket. */
	tr_ingest_result r = chat(f, "dan@chat.example", "Thanks, still slow though.", T0 + 3 * HOUR);
	assert_int_equal(r.kind, TR_INGEST_REPLY);
	assert_int_equal(r.ticket_id, first.ticket_id);
}

static void test_never_resolved_other_jid_or_mail(void **state)
{
	fixture *f = *state;
	tr_ingest_result first = chat(f, "erin@chat.example", "Password reset mail never arrives.", T0);
	/* Another JID, even on the same domain: its own ticket. */
	tr_ingest_result other = chat(f, "frank@chat.example", "Password reset mail never arrives.", T0 + MINUTE);
	assert_int_equal(other.kind, TR_INGEST_NEW);
	assert_true(other.ticket_id != first.ticket_id);
	/* Resolved: the next chat opens a new ticket, even inside the window. */
	GError *error = NULL;
	assert_true(tr_ticket_resolve(f->store, tr_engine_policy(engine), first.ticket_id, "ana", T0 + 5 * MINUTE, &error));
	tr_ingest_result again = chat(f, "erin@chat.example", "It arrived, but the link fails.", T0 + 10 * MINUTE);
	assert_int_equal(again.kind, TR_INGEST_NEW);
	assert_true(again.ticket_id != first.ticket_id);
	/* A mail ticket of the same address is not a chat conversation. */
	const char *raw = "From: gina@chat.example\nTo: support@example.test\nSubject: Export\n"
	                  "Message-ID: <m1@chat.example>\n\nThe export fails.\n";
	tr_ingest_input in = { .channel = TR_CHANNEL_FILE, .data = raw, .len = strlen(raw), .now = T0, .source = "t" };
	tr_ingest_result mail;
	assert_true(tr_ingest_message(f->ingest, &in, &mail, &error));
	tr_ingest_result c = chat(f, "gina@chat.example", "About my mail: the export still fails.", T0 + MINUTE);
	assert_int_equal(c.kind, TR_INGEST_NEW);
	assert_true(c.ticket_id != mail.ticket_id);
}

static void test_waiting_ticket_resumes(void **state)
{
	fixture *f = *state;
	tr_ingest_result first = chat(f, "hugo@chat.example", "Which plan includes SSO?", T0);
	GError *error = NULL;
	assert_true(tr_ticket_pause(f->store, tr_engine_policy(engine), first.ticket_id, true, "ana", T0 + MINUTE,
	                            &error));
	tr_ingest_result r = chat(f, "hugo@chat.example", "We have 40 users.", T0 + 20 * MINUTE);
	assert_int_equal(r.ticket_id, first.ticket_id);
	assert_true(r.resumed);
}

static void test_window_zero_and_dedup(void **state)
{
	fixture *f = *state;
	/* Window 0: every chat is its own ticket; the same words later are
	 * a new message, not a duplicate of the first. */
	tr_ingest_result a = chat_full(f, "ivan@chat.example", "hello?", NULL, 0, T0);
	tr_ingest_result b = chat_full(f, "ivan@chat.example", "hello?", NULL, 0, T0 + HOUR);
	assert_int_equal(a.kind, TR_INGEST_NEW);
	assert_int_equal(b.kind, TR_INGEST_NEW);
	assert_true(a.ticket_id != b.ticket_id);
	/* The same message id and text again (a client resending): a duplicate. */
	tr_ingest_result c = chat_full(f, "jo@chat.example", "Our API keys stopped working.", "id-1", WINDOW, T0);
	tr_ingest_result d = chat_full(f, "jo@chat.example", "Our API keys stopped working.", "id-1", WINDOW, T0 + 5);
	assert_int_equal(d.kind, TR_INGEST_DUPLICATE);
	assert_int_equal(d.ticket_id, c.ticket_id);
	/* A client that reuses ids: other words are another message. */
	tr_ingest_result e = chat_full(f, "jo@chat.example", "All of them.", "id-1", WINDOW, T0 + 10);
	assert_int_equal(e.kind, TR_INGEST_REPLY);
	assert_int_equal(e.ticket_id, c.ticket_id);
	/* Another sender with the same id and words is not a duplicate. */
	tr_ingest_result g = chat_full(f, "kim@chat.example", "Our API keys stopped working.", "id-1", WINDOW, T0 + 20);
	assert_int_equal(g.kind, TR_INGEST_NEW);
	assert_int_equal(count(f, "SELECT count(*) FROM messages WHERE message_id LIKE 'xmpp.%@chat.example'"), 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_chat_becomes_ticket_with_chat_ack, setup, teardown),
		cmocka_unit_test_setup_teardown(test_follow_ups_thread_within_window, setup, teardown),
		cmocka_unit_test_setup_teardown(test_agent_activity_keeps_thread_alive, setup, teardown),
		cmocka_unit_test_setup_teardown(test_never_resolved_other_jid_or_mail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_waiting_ticket_resumes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_window_zero_and_dedup, setup, teardown),
	};
	return cmocka_run_group_tests(tests, global_setup, global_teardown);
}
