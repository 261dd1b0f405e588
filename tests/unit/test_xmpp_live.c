/* test_xmpp_live.c — tr_xmpp against a real Prosody (driven by
 * tests/integration/xmpp.sh, which starts the server and the listeners).
 *
 * Every test SKIPs unless TR_XMPP_TEST_PORT is set.  The script exports:
 *   TR_XMPP_TEST_PORT      c2s port on 127.0.0.1 (host "localhost")
 *   TR_XMPP_TEST_CA        the test CA (the server certificate is for localhost)
 *   TR_XMPP_TEST_PASSWORD  password of every account (secret)
 *   TR_XMPP_TEST_ROOM      a room that exists: a go-sendxmpp listener (agent2,
 *                          the room's owner) sits in it and writes what it sees
 *                          to TR_XMPP_TEST_LISTEN_LOG
 *   TR_XMPP_TEST_RESTART_ROOM / TR_XMPP_TEST_RESTART_LOG / _LOG2
 *                          the same for the restart test, before and after
 *   TR_XMPP_TEST_CTL       a directory for requests to the script: the driver
 *                          writes "request" (stop | start | freeze | thaw |
 *                          kick NICK),
 *                          the script answers in "reply"
 *   TR_TIME_FACTOR         (optional, whole number) stretches every wait and
 *                          timeout below: an instrumented build is slower
 *   SSL_CERT_FILE, SSL_CERT_DIR  an empty system trust store: the test CA is
 *                          trusted through ca_file only
 * Accounts: triage-bot (the gateway), agent1 (a human agent), stranger (a
 * customer); the offline message "offline-hello" from stranger waits for
 * triage-bot.
 */
#include "testutil.h"
#include "channels/chatcmd.h"
#include "channels/xmpp.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define DOMAIN "localhost"
#define MUC "conference.localhost"
#define BOT "triage-bot@" DOMAIN
#define HUMAN "agent1@" DOMAIN
#define CUSTOMER "stranger@" DOMAIN
#define NEW_ROOM "escalation@" MUC

static const char *env_port, *env_ca, *env_password, *env_room, *env_log;
static const char *env_restart_room, *env_restart_log, *env_restart_log2, *env_ctl;
static int time_factor = 1;

static int group_setup(void **state)
{
	(void)state;
	env_port = g_getenv("TR_XMPP_TEST_PORT");
	env_ca = g_getenv("TR_XMPP_TEST_CA");
	env_password = g_getenv("TR_XMPP_TEST_PASSWORD");
	env_room = g_getenv("TR_XMPP_TEST_ROOM");
	env_log = g_getenv("TR_XMPP_TEST_LISTEN_LOG");
	env_restart_room = g_getenv("TR_XMPP_TEST_RESTART_ROOM");
	env_restart_log = g_getenv("TR_XMPP_TEST_RESTART_LOG");
	env_restart_log2 = g_getenv("TR_XMPP_TEST_RESTART_LOG2");
	env_ctl = g_getenv("TR_XMPP_TEST_CTL");
	if (env_password == NULL)
		env_password = "secret";
	const char *factor = g_getenv("TR_TIME_FACTOR");
	if (factor != NULL)
		time_factor = (int)CLAMP(g_ascii_strtoll(factor, NULL, 10), 1, 100);
	return 0;
}

#define NEED_SERVER()                                                               \
	do {                                                                        \
		if (env_port == NULL || env_ca == NULL) {                           \
			print_message("# no Prosody: run tests/integration/xmpp.sh\n"); \
			skip();                                                     \
		}                                                                   \
	} while (0)

/* ------------------------------------------------------------- helpers */

/* A wait, a timeout or a latency bound (in any unit), stretched by
 * TR_TIME_FACTOR. */
static int scaled(int n)
{
	return n * time_factor;
}

static gint64 ms_since(gint64 t0)
{
	return (g_get_monotonic_time() - t0) / 1000;
}

static tr_xmpp_config make_config(const char *jid, const char *nick, bool with_ca)
{
	tr_xmpp_config cfg;
	tr_xmpp_config_default(&cfg);
	cfg.enabled = true;
	cfg.jid = g_strdup(jid);
	cfg.password = g_strdup(env_password);
	cfg.host = g_strdup("127.0.0.1");
	cfg.limits.port = g_ascii_strtoll(env_port, NULL, 10);
	cfg.ca_file = with_ca ? g_strdup(env_ca) : NULL;
	g_free(cfg.nick);
	cfg.nick = g_strdup(nick);
	cfg.limits.reconnect_backoff = 1;
	cfg.limits.reconnect_backoff_max = 2;
	cfg.limits.connect_timeout = scaled(5);
	cfg.limits.join_timeout = scaled(5);
	return cfg;
}

static void set_rooms(tr_xmpp_config *cfg, const char *a, const char *b)
{
	g_strfreev(cfg->rooms);
	cfg->rooms = g_new0(char *, 3);
	int n = 0;
	if (a != NULL)
		cfg->rooms[n++] = g_strdup(a);
	if (b != NULL)
		cfg->rooms[n++] = g_strdup(b);
}

/* One connection and everything it reported; expect() claims events so
 * that each one is matched once. */
typedef struct {
	const char *name;
	tr_xmpp *x;
	GPtrArray *seen;     /* tr_xmpp_event* */
	GArray *claimed;     /* gboolean per event */
} peer;

typedef struct {
	tr_xmpp_event_type type;
	const char *room, *nick, *id, *body;   /* NULL = any; body: substring */
} want;

static peer *peer_start(const char *name, tr_xmpp_config *cfg)
{
	peer *p = g_new0(peer, 1);
	p->name = name;
	GError *error = NULL;
	p->x = tr_xmpp_start(cfg, &error);
	if (p->x == NULL)
		fail_msg("%s: %s", name, error->message);
	tr_xmpp_config_clear(cfg);
	p->seen = g_ptr_array_new();
	p->claimed = g_array_new(FALSE, TRUE, sizeof(gboolean));
	return p;
}

static void peer_dump(const peer *p)
{
	for (guint i = 0; i < p->seen->len; i++) {
		const tr_xmpp_event *ev = p->seen->pdata[i];
		print_message("#   %s: %s room=%s nick=%s jid=%s id=%s body=%s text=%s%s\n", p->name,
		              tr_xmpp_event_type_name(ev->type), ev->room, ev->nick, ev->jid, ev->id,
		              ev->body, ev->text,
		              ev->type == TR_XMPP_EVENT_SEND_RESULT ? tr_xmpp_send_status_name(ev->send_status) : "");
	}
}

static bool matches(const tr_xmpp_event *ev, const want *w)
{
	return ev->type == w->type && (w->room == NULL || g_strcmp0(ev->room, w->room) == 0) &&
	       (w->nick == NULL || g_strcmp0(ev->nick, w->nick) == 0) &&
	       (w->id == NULL || g_strcmp0(ev->id, w->id) == 0) &&
	       (w->body == NULL || (ev->body != NULL && strstr(ev->body, w->body) != NULL));
}

static const tr_xmpp_event *peer_poll(peer *p, const want *w, int timeout_ms)
{
	for (guint i = 0; i < p->seen->len; i++) {
		if (!g_array_index(p->claimed, gboolean, i) && matches(p->seen->pdata[i], w)) {
			g_array_index(p->claimed, gboolean, i) = TRUE;
			return p->seen->pdata[i];
		}
	}
	gint64 end = g_get_monotonic_time() + (gint64)scaled(timeout_ms) * 1000;
	for (;;) {
		gint64 left = (end - g_get_monotonic_time()) / 1000;
		tr_xmpp_event *ev;
		if (left <= 0 || !tr_xmpp_next_event(p->x, (int)left, &ev))
			return NULL;
		g_ptr_array_add(p->seen, ev);
		gboolean claim = matches(ev, w);
		g_array_append_val(p->claimed, claim);
		if (claim)
			return ev;
	}
}

static const tr_xmpp_event *peer_expect(peer *p, want w, int timeout_ms, const char *what)
{
	const tr_xmpp_event *ev = peer_poll(p, &w, timeout_ms);
	if (ev == NULL) {
		print_message("# %s: no %s within %d ms; events so far:\n", p->name, what, scaled(timeout_ms));
		peer_dump(p);
		fail_msg("%s: %s", p->name, what);
	}
	return ev;
}

/* Read whatever is queued now, without waiting. */
static void peer_drain(peer *p, int wait_ms)
{
	want nothing = { .type = (tr_xmpp_event_type)-1 };
	peer_poll(p, &nothing, wait_ms);
}

static unsigned peer_count(const peer *p, want w)
{
	unsigned n = 0;
	for (guint i = 0; i < p->seen->len; i++)
		n += matches(p->seen->pdata[i], &w);
	return n;
}

/* Stop the connection: how long it took; *finished_r (when not NULL): the
 * thread ended within the stop's bound instead of being let go. */
static gint64 peer_stop(peer **pp, bool *finished_r)
{
	peer *p = *pp;
	gint64 t0 = g_get_monotonic_time();
	bool finished = tr_xmpp_close(p->x, 0);
	tr_xmpp_stop(&p->x);
	gint64 took = ms_since(t0);
	if (!finished)
		print_message("# %s: stop() let the connection thread go after %" G_GINT64_FORMAT " ms\n", p->name, took);
	if (finished_r != NULL)
		*finished_r = finished;
	for (guint i = 0; i < p->seen->len; i++) {
		tr_xmpp_event *ev = p->seen->pdata[i];
		tr_xmpp_event_free(&ev);
	}
	g_ptr_array_free(p->seen, TRUE);
	g_array_free(p->claimed, TRUE);
	g_free(p);
	*pp = NULL;
	return took;
}

static void post(peer *p, const char *room, const char *text, const char *id)
{
	GError *error = NULL;
	if (!tr_xmpp_post_room(p->x, room, text, id, &error))
		fail_msg("%s: post %s: %s", p->name, id, error->message);
}

static void chat(peer *p, const char *jid, const char *text, const char *id)
{
	GError *error = NULL;
	if (!tr_xmpp_send_chat(p->x, jid, text, id, &error))
		fail_msg("%s: chat %s: %s", p->name, id, error->message);
}

/* Lines of a listener log (go-sendxmpp: "STAMP room/nick: body") that end
 * with "/nick: body". */
static unsigned log_count(const char *path, const char *nick, const char *body)
{
	char *data = NULL;
	if (!g_file_get_contents(path, &data, NULL, NULL))
		return 0;
	char *needle = g_strdup_printf("/%s: %s", nick, body);
	unsigned n = 0;
	char **lines = g_strsplit(data, "\n", -1);
	for (char **l = lines; *l != NULL; l++)
		n += g_str_has_suffix(*l, needle);
	g_strfreev(lines);
	g_free(needle);
	g_free(data);
	return n;
}

static bool log_wait(const char *path, const char *nick, const char *body, unsigned count, int timeout_ms)
{
	gint64 end = g_get_monotonic_time() + (gint64)scaled(timeout_ms) * 1000;
	do {
		if (log_count(path, nick, body) >= count)
			return true;
		g_usleep(20 * 1000);
	} while (g_get_monotonic_time() < end);
	return false;
}

/* Ask the script to do something to the server; wait for its answer. */
static void control(const char *request)
{
	if (env_ctl == NULL)
		fail_msg("TR_XMPP_TEST_CTL is not set");
	char *req = g_build_filename(env_ctl, "request", NULL);
	char *tmp = g_build_filename(env_ctl, "request.tmp", NULL);
	char *reply = g_build_filename(env_ctl, "reply", NULL);
	unlink(reply);
	assert_true(g_file_set_contents(tmp, request, -1, NULL));
	assert_int_equal(rename(tmp, req), 0);
	gint64 end = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;
	char *answer = NULL;
	while (g_get_monotonic_time() < end && !g_file_get_contents(reply, &answer, NULL, NULL))
		g_usleep(20 * 1000);
	if (answer == NULL)
		fail_msg("the script did not answer '%s'", request);
	g_strchomp(answer);
	if (strcmp(answer, "ok") != 0)
		fail_msg("'%s' failed: %s", request, answer);
	unlink(reply);
	g_free(answer);
	g_free(req);
	g_free(tmp);
	g_free(reply);
}

/* ------------------------------------------------------------------ TLS */

static void test_untrusted_certificate_is_refused(void **state)
{
	(void)state;
	NEED_SERVER();
	tr_xmpp_config cfg = make_config(BOT, "triage", false); /* no ca_file: system store (empty, xmpp.sh) */
	peer *bot = peer_start("bot", &cfg);
	const tr_xmpp_event *ev = peer_expect(bot, (want){ .type = TR_XMPP_EVENT_DISCONNECTED }, 5000,
	                                      "a refused connection attempt");
	print_message("# refused: %s\n", ev->text);
	assert_non_null(strstr(ev->text, "not trusted"));
	assert_non_null(strstr(ev->text, "127.0.0.1"));
	peer_drain(bot, 300);
	assert_int_equal(peer_count(bot, (want){ .type = TR_XMPP_EVENT_CONNECTED }), 0);
	tr_xmpp_stats stats;
	tr_xmpp_get_stats(bot->x, &stats);
	assert_int_equal(stats.connects, 0);
	peer_stop(&bot, NULL);
}

static void test_verify_no_accepts_it(void **state)
{
	(void)state;
	NEED_SERVER();
	/* agent1, not the bot: the bot's offline message waits for a later test */
	tr_xmpp_config cfg = make_config(HUMAN, "agent1", false);
	cfg.verify = false;
	peer *p = peer_start("agent1", &cfg);
	const tr_xmpp_event *ev = peer_expect(p, (want){ .type = TR_XMPP_EVENT_CONNECTED }, 5000,
	                                      "a session with verify = no");
	assert_non_null(strstr(ev->text, "(TLS)"));
	assert_true(g_str_has_prefix(ev->jid, HUMAN "/"));
	peer_stop(&p, NULL);
}

/* ------------------------------------------------ rooms, messages, chats */

static void test_rooms_messages_and_chats(void **state)
{
	(void)state;
	NEED_SERVER();
	gint64 t0;
	tr_xmpp_config cfg = make_config(BOT, "triage", true);
	cfg.create_rooms = true;
	set_rooms(&cfg, NEW_ROOM, env_room);
	peer *bot = peer_start("bot", &cfg);
	const tr_xmpp_event *ev = peer_expect(bot, (want){ .type = TR_XMPP_EVENT_CONNECTED }, 5000, "connected");
	assert_non_null(strstr(ev->text, "(TLS)"));
	ev = peer_expect(bot, (want){ .type = TR_XMPP_EVENT_JOINED, .room = NEW_ROOM }, 5000, "joined the new room");
	assert_true(ev->created);   /* status 201, default form submitted */
	ev = peer_expect(bot, (want){ .type = TR_XMPP_EVENT_JOINED, .room = env_room }, 5000, "joined the existing room");
	assert_false(ev->created);

	/* chat intake: what the customer wrote while we were offline */
	ev = peer_expect(bot, (want){ .type = TR_XMPP_EVENT_CHAT_MESSAGE, .body = "offline-hello" }, 5000,
	                 "the offline message");
	assert_true(ev->delayed);
	assert_true(g_str_has_prefix(ev->jid, CUSTOMER "/"));

	/* the human agent joins both rooms */
	cfg = make_config(HUMAN, "agent1", true);
	set_rooms(&cfg, NEW_ROOM, env_room);
	peer *human = peer_start("agent1", &cfg);
	peer_expect(human, (want){ .type = TR_XMPP_EVENT_JOINED, .room = NEW_ROOM }, 5000, "joined the new room");
	peer_expect(human, (want){ .type = TR_XMPP_EVENT_JOINED, .room = env_room }, 5000, "joined the existing room");

	/* bot -> room: confirmed by the echo, seen by the go-sendxmpp listener and the human */
	t0 = g_get_monotonic_time();
	post(bot, env_room, "P1 TKT-000123 database down (escalation)", "post-1");
	ev = peer_expect(bot, (want){ .type = TR_XMPP_EVENT_SEND_RESULT, .id = "post-1" }, 2000, "result of post-1");
	assert_int_equal(ev->send_status, TR_XMPP_SEND_OK);
	assert_int_equal(ev->confirmation, TR_XMPP_CONFIRMED_ECHO);
	assert_string_equal(ev->room, env_room);
	print_message("# post confirmed by its echo in %" G_GINT64_FORMAT " ms\n", ms_since(t0));
	assert_true(log_wait(env_log, "triage", "P1 TKT-000123 database down (escalation)", 1, 2000));
	ev = peer_expect(human, (want){ .type = TR_XMPP_EVENT_ROOM_MESSAGE, .room = env_room, .nick = "triage" },
	                 2000, "the bot's post");
	assert_string_equal(ev->body, "P1 TKT-000123 database down (escalation)");
	post(bot, NEW_ROOM, "P2 TKT-000124 in the new room", "post-2");
	ev = peer_expect(bot, (want){ .type = TR_XMPP_EVENT_SEND_RESULT, .id = "post-2" }, 2000, "result of post-2");
	assert_int_equal(ev->send_status, TR_XMPP_SEND_OK);
	peer_expect(human, (want){ .type = TR_XMPP_EVENT_ROOM_MESSAGE, .room = NEW_ROOM, .body = "TKT-000124" },
	            2000, "the bot's post in the new room");

	/* human -> room: nick, real JID where the room shows it to us, within 2 s */
	t0 = g_get_monotonic_time();
	post(human, NEW_ROOM, "!ack TKT-000123", "h-1");
	ev = peer_expect(bot, (want){ .type = TR_XMPP_EVENT_ROOM_MESSAGE, .room = NEW_ROOM, .nick = "agent1" },
	                 2000, "the human's command");
	print_message("# room message reached the bot in %" G_GINT64_FORMAT " ms; real JID %s\n", ms_since(t0), ev->jid);
	assert_string_equal(ev->body, "!ack TKT-000123");
	/* we created the room, so we own it and see real JIDs (semi-anonymous) */
	assert_non_null(ev->jid);
	assert_true(g_str_has_prefix(ev->jid, HUMAN "/"));
	assert_non_null(ev->stanza_id);
	tr_chatcmd cmd;
	assert_int_equal(tr_chatcmd_parse(ev->body, strlen(ev->body), "TKT", &cmd), TR_CHATCMD_ACK);
	assert_int_equal(cmd.ticket, 123);

	post(human, env_room, "!claim TKT-000123", "h-2");
	ev = peer_expect(bot, (want){ .type = TR_XMPP_EVENT_ROOM_MESSAGE, .room = env_room, .nick = "agent1" },
	                 2000, "the human's message in the existing room");
	/* a semi-anonymous room owned by someone else hides real JIDs from us */
	assert_null(ev->jid);

	/* 1:1 chat from a customer, and the reply */
	cfg = make_config(CUSTOMER, "customer", true);
	peer *customer = peer_start("customer", &cfg);
	peer_expect(customer, (want){ .type = TR_XMPP_EVENT_CONNECTED }, 5000, "connected");
	t0 = g_get_monotonic_time();
	chat(customer, BOT, "I cannot log in since this morning", "c-1");
	ev = peer_expect(customer, (want){ .type = TR_XMPP_EVENT_SEND_RESULT, .id = "c-1" }, 2000, "result of c-1");
	assert_int_equal(ev->send_status, TR_XMPP_SEND_OK);
	assert_int_equal(ev->confirmation, TR_XMPP_CONFIRMED_SERVER);
	ev = peer_expect(bot, (want){ .type = TR_XMPP_EVENT_CHAT_MESSAGE, .body = "cannot log in" }, 2000,
	                 "the customer's chat");
	print_message("# chat reached the bot in %" G_GINT64_FORMAT " ms from %s\n", ms_since(t0), ev->jid);
	assert_false(ev->delayed);
	assert_true(g_str_has_prefix(ev->jid, CUSTOMER "/"));
	char *reply_to = g_strdup(ev->jid);
	chat(bot, reply_to, "Thanks, this is ticket TKT-000125.", "reply-1");
	ev = peer_expect(bot, (want){ .type = TR_XMPP_EVENT_SEND_RESULT, .id = "reply-1" }, 2000, "result of reply-1");
	assert_int_equal(ev->send_status, TR_XMPP_SEND_OK);
	assert_int_equal(ev->confirmation, TR_XMPP_CONFIRMED_SERVER);
	assert_string_equal(ev->jid, reply_to);
	g_free(reply_to);
	ev = peer_expect(customer, (want){ .type = TR_XMPP_EVENT_CHAT_MESSAGE, .body = "TKT-000125" }, 2000,
	                 "the reply");
	assert_true(g_str_has_prefix(ev->jid, BOT "/"));

	/* refused by the server: a user that does not exist */
	chat(bot, "nobody@" DOMAIN, "hello?", "chat-nobody");
	ev = peer_expect(bot, (want){ .type = TR_XMPP_EVENT_SEND_RESULT, .id = "chat-nobody" }, 2000,
	                 "result of chat-nobody");
	assert_int_equal(ev->send_status, TR_XMPP_SEND_FAILED);
	assert_non_null(strstr(ev->text, "service-unavailable"));
	/* refused by a room we are not in (and cannot join: it does not exist
	 * and the human may not create it) */

	/* no echo of our own posts and no history replay reached the consumer */
	peer_drain(bot, 300);
	assert_int_equal(peer_count(bot, (want){ .type = TR_XMPP_EVENT_ROOM_MESSAGE, .nick = "triage" }), 0);
	assert_int_equal(peer_count(bot, (want){ .type = TR_XMPP_EVENT_ROOM_MESSAGE, .body = "history-before-join" }), 0);
	assert_int_equal(peer_count(human, (want){ .type = TR_XMPP_EVENT_ROOM_MESSAGE, .body = "history-before-join" }), 0);
	assert_int_equal(peer_count(bot, (want){ .type = TR_XMPP_EVENT_SEND_RESULT }), 4);
	assert_int_equal(log_count(env_log, "triage", "P1 TKT-000123 database down (escalation)"), 1);

	peer_stop(&customer, NULL);
	peer_stop(&human, NULL);
	bool finished = false;
	gint64 took = peer_stop(&bot, &finished);
	print_message("# stop() of a joined session took %" G_GINT64_FORMAT " ms\n", took);
	assert_true(finished);
	assert_true(took < scaled(1500));
}

/* -------------------------------------------------- kick, then rejoin */

static void test_kicked_then_rejoined(void **state)
{
	(void)state;
	NEED_SERVER();
	tr_xmpp_config cfg = make_config(BOT, "triage", true);
	set_rooms(&cfg, env_room, NULL);
	peer *bot = peer_start("bot", &cfg);
	peer_expect(bot, (want){ .type = TR_XMPP_EVENT_JOINED, .room = env_room }, 5000, "joined");
	control("kick triage");
	const tr_xmpp_event *ev = peer_expect(bot, (want){ .type = TR_XMPP_EVENT_LEFT, .room = env_room }, 3000,
	                                      "kicked");
	assert_int_equal(ev->left_reason, TR_XMPP_LEFT_KICKED);
	assert_non_null(strstr(ev->text, "kick test"));
	gint64 kicked_at = ev->time;
	post(bot, env_room, "posted while kicked out", "after-kick");
	ev = peer_expect(bot, (want){ .type = TR_XMPP_EVENT_JOINED, .room = env_room }, 5000, "rejoined");
	print_message("# rejoined %" G_GINT64_FORMAT " ms after the kick (backoff)\n", (ev->time - kicked_at) / 1000);
	assert_true(ev->time - kicked_at >= 700 * 1000); /* backoff: 1 s minus jitter */
	ev = peer_expect(bot, (want){ .type = TR_XMPP_EVENT_SEND_RESULT, .id = "after-kick" }, 2000, "result");
	assert_int_equal(ev->send_status, TR_XMPP_SEND_OK);
	assert_true(log_wait(env_log, "triage", "posted while kicked out", 1, 2000));
	peer_stop(&bot, NULL);
}

/* ------------------------------------------- a server that stops answering */

static void test_ping_detects_a_dead_server(void **state)
{
	(void)state;
	NEED_SERVER();
	tr_xmpp_config cfg = make_config(BOT, "triage", true);
	set_rooms(&cfg, env_room, NULL);
	cfg.limits.ping_interval = 1;
	cfg.limits.ping_timeout = 2;
	cfg.limits.connect_timeout = scaled(3);
	peer *bot = peer_start("bot", &cfg);
	peer_expect(bot, (want){ .type = TR_XMPP_EVENT_JOINED, .room = env_room }, 5000, "joined");
	gint64 t0 = g_get_monotonic_time();
	control("freeze");
	/* written into a connection nobody reads: neither confirmed nor refused */
	post(bot, env_room, "written while frozen #1", "frozen-1");
	post(bot, env_room, "written while frozen #2", "frozen-2");
	const tr_xmpp_event *ev = peer_expect(bot, (want){ .type = TR_XMPP_EVENT_DISCONNECTED }, 6000,
	                                      "the dead connection noticed");
	gint64 noticed = ms_since(t0);
	print_message("# frozen server noticed after %" G_GINT64_FORMAT " ms: %s\n", noticed, ev->text);
	assert_non_null(strstr(ev->text, "no answer to a ping"));
	for (int i = 1; i <= 2; i++) {
		char id[16];
		g_snprintf(id, sizeof(id), "frozen-%d", i);
		ev = peer_expect(bot, (want){ .type = TR_XMPP_EVENT_SEND_RESULT, .id = id }, 100, id);
		assert_int_equal(ev->send_status, TR_XMPP_SEND_UNCERTAIN);
		assert_non_null(strstr(ev->text, "may or may not"));
	}
	peer_expect(bot, (want){ .type = TR_XMPP_EVENT_LEFT, .room = env_room }, 100, "left with the connection");
	control("thaw");
	t0 = g_get_monotonic_time();
	peer_expect(bot, (want){ .type = TR_XMPP_EVENT_CONNECTED }, 10000, "reconnected");
	peer_expect(bot, (want){ .type = TR_XMPP_EVENT_JOINED, .room = env_room }, 5000, "rejoined");
	print_message("# back in the room %" G_GINT64_FORMAT " ms after the thaw\n", ms_since(t0));
	/* what the "uncertain" posts did: the server had them in its socket
	 * buffer and may still have handled them after the thaw */
	g_usleep(300 * 1000);
	print_message("# uncertain posts seen by the listener after the thaw: %u and %u\n",
	              log_count(env_log, "triage", "written while frozen #1"),
	              log_count(env_log, "triage", "written while frozen #2"));
	peer_stop(&bot, NULL);
}

/* --------------------------------- restart: queued while down, sent once */

#define RESTART_POSTS 5

static void test_restart_delivers_queued_posts_once(void **state)
{
	(void)state;
	NEED_SERVER();
	tr_xmpp_config cfg = make_config(BOT, "triage", true);
	/* create_rooms = no: after the restart the room exists again only once
	 * the listener is back in it, so every post has a witness */
	set_rooms(&cfg, env_restart_room, NULL);
	peer *bot = peer_start("bot", &cfg);
	/* the listener may still be on its way: we join once it made the room */
	peer_expect(bot, (want){ .type = TR_XMPP_EVENT_JOINED, .room = env_restart_room }, 15000, "joined");
	post(bot, env_restart_room, "before the restart", "pre");
	peer_expect(bot, (want){ .type = TR_XMPP_EVENT_SEND_RESULT, .id = "pre" }, 2000, "result of pre");
	assert_true(log_wait(env_restart_log, "triage", "before the restart", 1, 2000));

	control("stop");
	const tr_xmpp_event *ev = peer_expect(bot, (want){ .type = TR_XMPP_EVENT_DISCONNECTED }, 5000,
	                                      "the shutdown noticed");
	print_message("# disconnected: %s\n", ev->text);
	/* queued while the server is down */
	for (int i = 1; i <= RESTART_POSTS; i++) {
		char id[16], text[64];
		g_snprintf(id, sizeof(id), "queued-%d", i);
		g_snprintf(text, sizeof(text), "queued while down #%d", i);
		post(bot, env_restart_room, text, id);
	}
	tr_xmpp_stats stats;
	tr_xmpp_get_stats(bot->x, &stats);
	assert_false(stats.connected);
	assert_int_equal(stats.outstanding, RESTART_POSTS);
	control("start");   /* Prosody is back, a new listener on its way in */
	gint64 t0 = g_get_monotonic_time();
	peer_expect(bot, (want){ .type = TR_XMPP_EVENT_CONNECTED }, 10000, "reconnected");
	/* create_rooms = no: joined means the listener made the room again */
	peer_expect(bot, (want){ .type = TR_XMPP_EVENT_JOINED, .room = env_restart_room }, 15000, "rejoined");
	for (int i = 1; i <= RESTART_POSTS; i++) {
		char id[16];
		g_snprintf(id, sizeof(id), "queued-%d", i);
		ev = peer_expect(bot, (want){ .type = TR_XMPP_EVENT_SEND_RESULT, .id = id }, 5000, id);
		assert_int_equal(ev->send_status, TR_XMPP_SEND_OK);
		assert_int_equal(ev->confirmation, TR_XMPP_CONFIRMED_ECHO);
	}
	print_message("# all %d queued posts confirmed %" G_GINT64_FORMAT " ms after the restart\n", RESTART_POSTS,
	              ms_since(t0));
	for (int i = 1; i <= RESTART_POSTS; i++) {
		char text[64];
		g_snprintf(text, sizeof(text), "queued while down #%d", i);
		assert_true(log_wait(env_restart_log2, "triage", text, 1, 2000));
	}
	/* and nothing twice: give a duplicate time to show up */
	g_usleep(500 * 1000);
	peer_drain(bot, 0);
	for (int i = 1; i <= RESTART_POSTS; i++) {
		char text[64], id[16];
		g_snprintf(text, sizeof(text), "queued while down #%d", i);
		g_snprintf(id, sizeof(id), "queued-%d", i);
		assert_int_equal(log_count(env_restart_log2, "triage", text), 1);
		assert_int_equal(peer_count(bot, (want){ .type = TR_XMPP_EVENT_SEND_RESULT, .id = id }), 1);
	}
	assert_int_equal(log_count(env_restart_log2, "triage", "before the restart"), 0);
	unsigned not_found = peer_count(bot, (want){ .type = TR_XMPP_EVENT_LEFT, .room = env_restart_room });
	print_message("# LEFT events around the restart (connection, room not there yet): %u\n", not_found);
	bool finished = false;
	gint64 took = peer_stop(&bot, &finished);
	print_message("# stop() took %" G_GINT64_FORMAT " ms\n", took);
	assert_true(finished);
	assert_true(took < scaled(1500));
}

static gint64 test_started;

static int timed_setup(void **state)
{
	(void)state;
	test_started = g_get_monotonic_time();
	return 0;
}

static int timed_teardown(void **state)
{
	(void)state;
	if (env_port != NULL)
		print_message("# took %" G_GINT64_FORMAT " ms\n", ms_since(test_started));
	return 0;
}

#define LIVE_TEST(f) cmocka_unit_test_setup_teardown(f, timed_setup, timed_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		LIVE_TEST(test_untrusted_certificate_is_refused),
		LIVE_TEST(test_verify_no_accepts_it),
		LIVE_TEST(test_rooms_messages_and_chats),
		LIVE_TEST(test_kicked_then_rejoined),
		LIVE_TEST(test_ping_detects_a_dead_server),
		LIVE_TEST(test_restart_delivers_queued_posts_once),
	};
	return cmocka_run_group_tests(tests, group_setup, NULL);
}
