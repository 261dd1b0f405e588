/* test_xmpp.c — the XMPP connection without a server: configuration,
 * stanza parsing and classification, rate limit, JIDs, bodies,
 * and the connection object against a closed port (queueing, send_timeout,
 * close, stop).  The live tests against Prosody are test_xmpp_live.c. */
#include "testutil.h"
#include "channels/xmpp.h"
#include "channels/xmpp-private.h"
#include "core/conf.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/crypto.h>

/* ------------------------------------------------------------ config */

static tr_conf *load(const char *text, tr_diag *diag)
{
	tr_conf *conf = tr_conf_load_data("/etc/triage/triage.conf", text, strlen(text), diag);
	assert_non_null(conf);
	return conf;
}

static bool diag_has(const tr_diag *diag, const char *needle)
{
	const GPtrArray *msgs = tr_diag_messages(diag);
	for (guint i = 0; i < msgs->len; i++) {
		if (strstr(msgs->pdata[i], needle) != NULL)
			return true;
	}
	return false;
}

static void test_config_defaults(void **state)
{
	(void)state;
	tr_diag *diag = tr_diag_new();
	tr_conf *conf = load("[store]\npath = x.db\n", diag);
	tr_xmpp_config cfg;
	assert_true(tr_xmpp_config_load(&cfg, conf, diag));
	assert_false(cfg.enabled);
	assert_int_equal(cfg.tls, TR_XMPP_TLS_REQUIRED);
	assert_true(cfg.verify);
	assert_string_equal(cfg.nick, "triage");
	assert_false(cfg.create_rooms);
	assert_null(cfg.rooms[0]);
	assert_int_equal(cfg.limits.ping_interval, 60);
	assert_int_equal(cfg.limits.room_rate, 20);
	assert_int_equal(cfg.limits.reconnect_backoff, 1);
	assert_int_equal(cfg.limits.reconnect_backoff_max, 60);
	tr_xmpp_config_clear(&cfg);
	assert_null(cfg.jid);
	tr_conf_free(&conf);
	tr_diag_free(&diag);
}

/* The daemon's side of [xmpp]: chat-ops authorization and worker limits. */
static void test_config_operators(void **state)
{
	(void)state;
	tr_diag *diag = tr_diag_new();
	tr_conf *conf = load("[xmpp]\n"
	                     "jid = bot@example.org\n"
	                     "password = x\n"
	                     "operators = Ana@Example.ORG, ivan@example.org;night@example.org\n"   /* line 4 */
	                     "operators_by_nick = Ana Lima, helper\n"                            /* line 5 */
	                     "chat_thread_window = 30m\n"
	                     "outbox_retry = 10s\n"
	                     "ambiguous_delay = 5m\n",
	                     diag);
	tr_xmpp_config cfg;
	assert_true(tr_xmpp_config_load(&cfg, conf, diag));
	assert_string_equal(cfg.operators[0], "ana@example.org");
	assert_string_equal(cfg.operators[1], "ivan@example.org");
	assert_string_equal(cfg.operators[2], "night@example.org");
	assert_null(cfg.operators[3]);
	assert_string_equal(cfg.operators_by_nick[0], "Ana Lima");   /* nicks keep case and blanks */
	assert_string_equal(cfg.operators_by_nick[1], "helper");
	assert_true(diag_has(diag, "triage.conf:5: warning") && diag_has(diag, "anyone can take a free nick"));
	assert_int_equal(cfg.limits.chat_thread_window, 1800);
	assert_int_equal(cfg.limits.outbox_retry, 10);
	assert_int_equal(cfg.limits.outbox_retry_max, 3600);
	assert_int_equal(cfg.limits.ambiguous_delay, 300);
	GString *out = g_string_new(NULL);
	tr_xmpp_config_print(&cfg, out);
	assert_non_null(strstr(out->str, "operators = ana@example.org, ivan@example.org, night@example.org\n"));
	assert_non_null(strstr(out->str, "chat_thread_window = 1800"));
	g_string_free(out, TRUE);
	tr_xmpp_config copy;
	tr_xmpp_config_copy(&copy, &cfg);
	tr_xmpp_config_clear(&cfg);
	assert_string_equal(copy.operators[2], "night@example.org");
	assert_string_equal(copy.operators_by_nick[0], "Ana Lima");
	tr_xmpp_config_clear(&copy);
	tr_conf_free(&conf);
	tr_diag_free(&diag);

	diag = tr_diag_new();
	conf = load("[xmpp]\n"
	            "jid = bot@example.org\n"
	            "password = x\n"
	            "operators = ana@example.org/phone, not a jid\n"   /* line 4: resource, then words */
	            "outbox_retry = 1h\n"
	            "outbox_retry_max = 30m\n",                         /* line 6: shorter */
	            diag);
	assert_false(tr_xmpp_config_load(&cfg, conf, diag));
	assert_true(diag_has(diag, "triage.conf:4: error") && diag_has(diag, "'ana@example.org/phone' is not a bare JID"));
	assert_true(diag_has(diag, "'not' is not a bare JID"));
	assert_true(diag_has(diag, "triage.conf:6: error") && diag_has(diag, "shorter than outbox_retry"));
	tr_xmpp_config_clear(&cfg);
	tr_conf_free(&conf);
	tr_diag_free(&diag);
}

static void test_config_full(void **state)
{
	(void)state;
	tr_diag *diag = tr_diag_new();
	tr_conf *conf = load("[xmpp]\n"
	                     "jid = Triage-Bot@Example.ORG/gw1\n"
	                     "password = s3cr\\et # not a comment\n"
	                     "host = xmpp.example.org\n"
	                     "port = 5223\n"
	                     "tls = direct\n"
	                     "ca_file = /etc/ssl/certs/ca-certificates.crt\n"
	                     "nick = Triage Bot\n"
	                     "rooms = OnCall@conference.example.org, billing@conference.example.org;"
	                     "  security@conference.example.org\n"
	                     "create_rooms = yes\n"
	                     "ping_interval = 2m\n"
	                     "reconnect_backoff = 2s\n"
	                     "reconnect_backoff_max = 5m\n"
	                     "room_rate = 6\n"
	                     "body_max = 8k\n", diag);
	tr_xmpp_config cfg;
	bool ok = tr_xmpp_config_load(&cfg, conf, diag);
	if (!ok)
		fail_msg("%s", tr_diag_join(diag));
	assert_true(cfg.enabled);
	assert_string_equal(cfg.jid, "triage-bot@example.org/gw1");
	assert_string_equal(cfg.password, "s3cr\\et # not a comment");
	assert_string_equal(cfg.host, "xmpp.example.org");
	assert_int_equal(cfg.limits.port, 5223);
	assert_int_equal(cfg.tls, TR_XMPP_TLS_DIRECT);
	assert_string_equal(cfg.nick, "Triage Bot");
	assert_string_equal(cfg.rooms[0], "oncall@conference.example.org");
	assert_string_equal(cfg.rooms[1], "billing@conference.example.org");
	assert_string_equal(cfg.rooms[2], "security@conference.example.org");
	assert_null(cfg.rooms[3]);
	assert_true(cfg.create_rooms);
	assert_int_equal(cfg.limits.ping_interval, 120);
	assert_int_equal(cfg.limits.reconnect_backoff_max, 300);
	assert_int_equal(cfg.limits.room_rate, 6);
	assert_int_equal(cfg.limits.body_max, 8192);

	GString *out = g_string_new(NULL);
	tr_xmpp_config_print(&cfg, out);
	assert_null(strstr(out->str, "s3cr"));
	assert_non_null(strstr(out->str, "password = (set, hidden)"));
	assert_non_null(strstr(out->str, "room_rate = 6"));
	g_string_free(out, TRUE);

	tr_xmpp_config copy;
	tr_xmpp_config_copy(&copy, &cfg);
	tr_xmpp_config_clear(&cfg);
	assert_string_equal(copy.rooms[2], "security@conference.example.org");
	tr_xmpp_config_clear(&copy);
	tr_conf_free(&conf);
	tr_diag_free(&diag);
}

static void test_config_errors(void **state)
{
	(void)state;
	tr_diag *diag = tr_diag_new();
	tr_conf *conf = load("[xmpp]\n"
	                     "jid = not a jid\n"                         /* line 2 */
	                     "password = x\n"
	                     "password_file = /nonexistent\n"            /* line 4: both */
	                     "tls = maybe\n"                             /* line 5 */
	                     "ca_file = /nonexistent/ca.pem\n"           /* line 6 */
	                     "verify = no\n"                             /* line 7: warning */
	                     "nick = bad\\tnick\n"                       /* line 8 */
	                     "rooms = a@b, nope, a@b, x@y/res\n"         /* line 9 */
	                     "ping_interval = soon\n"                    /* line 10 */
	                     "room_rate = 100000\n"                      /* line 11 */
	                     "reconnect_backoff = 10\n"
	                     "reconnect_backoff_max = 5\n"               /* line 13 */
	                     "colour = blue\n", diag);                   /* line 14: warning */
	tr_xmpp_config cfg;
	assert_false(tr_xmpp_config_load(&cfg, conf, diag));
	char *all = tr_diag_join(diag);
	assert_true(diag_has(diag, "triage.conf:2: error"));
	assert_true(diag_has(diag, "triage.conf:4: error") && diag_has(diag, "not both"));
	assert_true(diag_has(diag, "triage.conf:5: error") && diag_has(diag, "'maybe'"));
	assert_true(diag_has(diag, "triage.conf:6: error"));
	assert_true(diag_has(diag, "triage.conf:7: warning") && diag_has(diag, "man in the middle"));
	assert_true(diag_has(diag, "triage.conf:8: error"));
	assert_true(diag_has(diag, "'nope' is not a room JID"));
	assert_true(diag_has(diag, "room a@b is listed twice"));
	assert_true(diag_has(diag, "'x@y/res' is not a room JID"));
	assert_true(diag_has(diag, "triage.conf:10: error"));
	assert_true(diag_has(diag, "triage.conf:11: error") && diag_has(diag, "out of range"));
	assert_true(diag_has(diag, "triage.conf:13: error"));
	assert_true(diag_has(diag, "triage.conf:14: warning") && diag_has(diag, "unknown key 'colour'"));
	g_free(all);
	tr_xmpp_config_clear(&cfg);
	tr_conf_free(&conf);
	tr_diag_free(&diag);

	diag = tr_diag_new();
	conf = load("[xmpp]\nnick = x\n", diag);
	assert_false(tr_xmpp_config_load(&cfg, conf, diag));
	assert_true(diag_has(diag, "needs jid"));
	assert_true(diag_has(diag, "needs password"));
	tr_xmpp_config_clear(&cfg);
	tr_conf_free(&conf);
	tr_diag_free(&diag);
}

static void test_config_password_file(void **state)
{
	(void)state;
	char *dir = g_dir_make_tmp("tr-xmpp-XXXXXX", NULL);
	char *path = g_build_filename(dir, "xmpp.pw", NULL);
	assert_true(g_file_set_contents(path, "pass word\\x\n", -1, NULL));
	chmod(path, 0600);
	char *text = g_strdup_printf("[xmpp]\njid = bot@example.org\npassword_file = %s\n", path);
	tr_diag *diag = tr_diag_new();
	tr_conf *conf = load(text, diag);
	tr_xmpp_config cfg;
	assert_true(tr_xmpp_config_load(&cfg, conf, diag));
	assert_string_equal(cfg.password, "pass word\\x");
	assert_int_equal(tr_diag_warning_count(diag), 0);
	tr_xmpp_config_clear(&cfg);
	tr_conf_free(&conf);
	/* readable by others: a warning; empty: an error */
	chmod(path, 0644);
	conf = load(text, diag);
	assert_true(tr_xmpp_config_load(&cfg, conf, diag));
	assert_true(diag_has(diag, "readable by others"));
	tr_xmpp_config_clear(&cfg);
	tr_conf_free(&conf);
	assert_true(g_file_set_contents(path, "\n", -1, NULL));
	conf = load(text, diag);
	assert_false(tr_xmpp_config_load(&cfg, conf, diag));
	assert_true(diag_has(diag, "on one line"));
	tr_xmpp_config_clear(&cfg);
	tr_conf_free(&conf);
	tr_diag_free(&diag);
	unlink(path);
	rmdir(dir);
	g_free(text);
	g_free(path);
	g_free(dir);
}

/* ------------------------------------------------------ pure helpers */

static void test_jids(void **state)
{
	(void)state;
	static const struct { const char *jid; bool node; bool res; bool ok; } cases[] = {
		{ "bot@example.org", true, false, true },
		{ "bot@example.org/res ource", true, true, true },
		{ "bot@example.org/res", true, false, false },
		{ "example.org", true, false, false },
		{ "example.org", false, false, true },
		{ "@example.org", true, false, false },
		{ "bot@", true, false, false },
		{ "b ot@example.org", true, false, false },
		{ "b<t@example.org", true, false, false },
		{ "bot@exa mple.org", true, false, false },
		{ "bot@example..org", true, false, false },
		{ "bot@example.org/", true, true, false },
		{ "bot@example.org/a\nb", true, true, false },
		{ "josé@bücher.example", true, false, true },
		{ "a@b@c", true, false, false },
		{ "", true, false, false },
	};
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		if (tr_xmpp_jid_valid(cases[i].jid, cases[i].node, cases[i].res) != cases[i].ok)
			fail_msg("%s: want %d", cases[i].jid, cases[i].ok);
	}
	assert_false(tr_xmpp_jid_valid(NULL, false, false));
	char *n = tr_xmpp_jid_normalize("Bot@Example.ORG/Res");
	assert_string_equal(n, "bot@example.org/Res");
	g_free(n);
	char *b = tr_xmpp_jid_bare("room@muc/nick/with/slash");
	assert_string_equal(b, "room@muc");
	g_free(b);
	assert_string_equal(tr_xmpp_jid_resource("room@muc/nick/with/slash"), "nick/with/slash");
	assert_null(tr_xmpp_jid_resource("room@muc"));
}

static void test_body_clean(void **state)
{
	(void)state;
	static const struct { const char *in, *out; } cases[] = {
		{ "plain", "plain" },
		{ "a\r\nb\rc\nd", "a\nb\nc\nd" },
		{ "tab\tok", "tab\tok" },
		{ "bell\x07 esc\x1b nul-free", "bell esc nul-free" },
		{ "bad \xff byte", "bad \xef\xbf\xbd byte" },
		{ "nonchar \xef\xbf\xbe!", "nonchar !" },
		{ "<b>&amp;</b>", "<b>&amp;</b>" },   /* escaping is libstrophe's job */
	};
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		char *out = tr_xmpp_body_clean(cases[i].in);
		assert_string_equal(out, cases[i].out);
		g_free(out);
	}
}

static void test_bucket(void **state)
{
	(void)state;
	tr_xmpp_bucket b = { 0 };
	const gint64 S = G_USEC_PER_SEC;
	gint64 t = 1000 * S;
	/* 6 per minute: a burst of 6, then one every 10 s */
	for (int i = 0; i < 6; i++)
		assert_true(tr_xmpp_bucket_take(&b, 6, t));
	assert_false(tr_xmpp_bucket_take(&b, 6, t));
	gint64 wait = tr_xmpp_bucket_wait(&b, 6, t);
	assert_true(wait > 9 * S && wait <= 10 * S + 1);
	assert_false(tr_xmpp_bucket_take(&b, 6, t + 9 * S));
	assert_true(tr_xmpp_bucket_take(&b, 6, t + 10 * S + 1));
	assert_false(tr_xmpp_bucket_take(&b, 6, t + 10 * S + 2));
	/* a long pause refills to the burst size, not beyond */
	gint64 later = t + 3600 * S;
	for (int i = 0; i < 6; i++)
		assert_true(tr_xmpp_bucket_take(&b, 6, later));
	assert_false(tr_xmpp_bucket_take(&b, 6, later));
	/* 0 = no limit */
	tr_xmpp_bucket u = { 0 };
	for (int i = 0; i < 1000; i++)
		assert_true(tr_xmpp_bucket_take(&u, 0, t));
	assert_int_equal(tr_xmpp_bucket_wait(&u, 0, t), 0);
}

/* -------------------------------------------- stanzas, classification */

static xmpp_ctx_t *ctx;

static int setup_ctx(void **state)
{
	(void)state;
	xmpp_initialize();
	ctx = xmpp_ctx_new(NULL, NULL);
	return ctx != NULL ? 0 : -1;
}

static int teardown_ctx(void **state)
{
	(void)state;
	xmpp_ctx_free(ctx);
	return 0;
}

static tr_xmpp_in *parse(const char *xml, size_t body_max)
{
	xmpp_stanza_t *st = xmpp_stanza_new_from_string(ctx, xml);
	if (st == NULL)
		fail_msg("cannot parse %s", xml);
	tr_xmpp_in *in = tr_xmpp_in_parse(st, body_max, "bot@localhost");
	xmpp_stanza_release(st);
	assert_non_null(in);
	return in;
}

#define ROOM "room@conference.localhost"

static void test_classify(void **state)
{
	(void)state;
	static const struct {
		const char *xml;
		const char *room_nick;    /* NULL: the sender is not one of our rooms */
		bool joined;
		tr_xmpp_msg_class want;
	} cases[] = {
		/* an occupant speaks */
		{ "<message type='groupchat' from='" ROOM "/alice' id='a1'><body>!ack TKT-1</body></message>",
		  "triage", true, TR_XMPP_MSG_ROOM },
		/* our own post comes back */
		{ "<message type='groupchat' from='" ROOM "/triage' id='x'><body>P1</body></message>",
		  "triage", true, TR_XMPP_MSG_ECHO },
		/* history on join, even our own old posts */
		{ "<message type='groupchat' from='" ROOM "/alice'><body>old</body>"
		  "<delay xmlns='urn:xmpp:delay' stamp='2024-01-01T00:00:00Z'/></message>",
		  "triage", true, TR_XMPP_MSG_HISTORY },
		{ "<message type='groupchat' from='" ROOM "/triage'><body>old</body>"
		  "<delay xmlns='urn:xmpp:delay' stamp='2024-01-01T00:00:00Z'/></message>",
		  "triage", true, TR_XMPP_MSG_HISTORY },
		{ "<message type='groupchat' from='" ROOM "/alice'><body>old</body>"
		  "<x xmlns='jabber:x:delay' stamp='20240101T00:00:00'/></message>",
		  "triage", true, TR_XMPP_MSG_HISTORY },
		/* before our join completed */
		{ "<message type='groupchat' from='" ROOM "/alice'><body>early</body></message>",
		  "triage", false, TR_XMPP_MSG_EARLY },
		/* subject, room notices, chat states */
		{ "<message type='groupchat' from='" ROOM "/alice'><subject>topic</subject></message>",
		  "triage", true, TR_XMPP_MSG_ROOM_OTHER },
		{ "<message type='groupchat' from='" ROOM "/alice'><subject>t</subject><body>b</body></message>",
		  "triage", true, TR_XMPP_MSG_ROOM_OTHER },
		{ "<message type='groupchat' from='" ROOM "'><body>room notice</body></message>",
		  "triage", true, TR_XMPP_MSG_ROOM_OTHER },
		{ "<message type='groupchat' from='" ROOM "/alice'><active xmlns='http://jabber.org/protocol/chatstates'/></message>",
		  "triage", true, TR_XMPP_MSG_ROOM_OTHER },
		/* groupchat from a room we are not in */
		{ "<message type='groupchat' from='other@conference.localhost/alice'><body>x</body></message>",
		  NULL, false, TR_XMPP_MSG_IGNORE },
		/* 1:1 */
		{ "<message type='chat' from='customer@example.org/phone'><body>help</body></message>",
		  NULL, false, TR_XMPP_MSG_CHAT },
		{ "<message from='customer@example.org/phone'><body>no type = normal</body></message>",
		  NULL, false, TR_XMPP_MSG_CHAT },
		{ "<message type='normal' from='customer@example.org'><body>x</body>"
		  "<delay xmlns='urn:xmpp:delay' stamp='2024-01-01T00:00:00Z' from='localhost'/></message>",
		  NULL, false, TR_XMPP_MSG_CHAT },
		{ "<message type='chat' from='customer@example.org/phone'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>",
		  NULL, false, TR_XMPP_MSG_IGNORE },
		{ "<message type='chat' from='" ROOM "/alice'><body>private via room</body></message>",
		  "triage", true, TR_XMPP_MSG_MUC_PRIVATE },
		{ "<message type='headline' from='news@example.org'><body>x</body></message>",
		  NULL, false, TR_XMPP_MSG_IGNORE },
		{ "<message type='chat' from='localhost'><body>server notice</body></message>",
		  NULL, false, TR_XMPP_MSG_IGNORE },
		{ "<message type='chat' from='BOT@localhost/other'><body>own account</body></message>",
		  NULL, false, TR_XMPP_MSG_IGNORE },
		{ "<message type='chat'><body>no sender</body></message>",
		  NULL, false, TR_XMPP_MSG_IGNORE },
		{ "<message from='other@conference.localhost'><body>alice invites you</body>"
		  "<x xmlns='http://jabber.org/protocol/muc#user'><invite from='alice@localhost'/></x></message>",
		  NULL, false, TR_XMPP_MSG_IGNORE },
		{ "<message from='alice@localhost/pc'><body>join us</body>"
		  "<x xmlns='jabber:x:conference' jid='other@conference.localhost'/></message>",
		  NULL, false, TR_XMPP_MSG_IGNORE },
		/* errors */
		{ "<message type='error' from='nobody@localhost' id='m1'><error type='cancel'>"
		  "<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>",
		  NULL, false, TR_XMPP_MSG_ERROR },
	};
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		tr_xmpp_in *in = parse(cases[i].xml, 1000);
		tr_xmpp_msg_class got = tr_xmpp_classify_message(in, cases[i].room_nick, cases[i].joined, "bot@localhost");
		if (got != cases[i].want)
			fail_msg("case %zu: got %s, want %s: %s", i, tr_xmpp_msg_class_name(got),
			         tr_xmpp_msg_class_name(cases[i].want), cases[i].xml);
		tr_xmpp_in_free(&in);
		assert_null(in);
	}
}

static void test_parse_details(void **state)
{
	(void)state;
	/* ids, origin-id, the stanza-id of the room only (others could be forged) */
	tr_xmpp_in *in = parse("<message type='groupchat' from='" ROOM "/alice' id='a1'>"
	                       "<body>hello &amp; &lt;bye&gt;</body>"
	                       "<origin-id xmlns='urn:xmpp:sid:0' id='o1'/>"
	                       "<stanza-id xmlns='urn:xmpp:sid:0' by='evil@example.org' id='forged'/>"
	                       "<stanza-id xmlns='urn:xmpp:sid:0' by='" ROOM "' id='s1'/></message>", 1000);
	assert_string_equal(in->body, "hello & <bye>");
	assert_string_equal(in->id, "a1");
	assert_string_equal(in->origin_id, "o1");
	assert_string_equal(in->stanza_id, "s1");
	assert_false(in->truncated);
	tr_xmpp_in_free(&in);

	/* bodies are cut at a character boundary */
	in = parse("<message type='chat' from='a@b/c'><body>aaaé</body></message>", 4);
	assert_string_equal(in->body, "aaa");
	assert_true(in->truncated);
	tr_xmpp_in_free(&in);

	/* presence: statuses, item, reason */
	in = parse("<presence from='" ROOM "/triage' type='unavailable'>"
	           "<x xmlns='http://jabber.org/protocol/muc#user'>"
	           "<item affiliation='none' role='none' jid='bot@localhost/r'><reason>spam</reason></item>"
	           "<status code='307'/><status code='110'/></x></presence>", 1000);
	assert_int_equal(in->kind, TR_XMPP_IN_PRESENCE);
	assert_true(in->muc_user);
	assert_true(tr_xmpp_in_has_status(in, 307));
	assert_true(tr_xmpp_in_has_status(in, 110));
	assert_false(tr_xmpp_in_has_status(in, 201));
	assert_string_equal(in->item_reason, "spam");
	assert_string_equal(in->item_jid, "bot@localhost/r");
	assert_string_equal(in->item_role, "none");
	tr_xmpp_in_free(&in);

	/* more statuses than we keep: no overflow */
	GString *many = g_string_new("<presence from='" ROOM "/x'><x xmlns='http://jabber.org/protocol/muc#user'>");
	for (int i = 0; i < 50; i++)
		g_string_append_printf(many, "<status code='%d'/>", 100 + i);
	g_string_append(many, "</x></presence>");
	in = parse(many->str, 1000);
	assert_int_equal(in->n_status, TR_XMPP_MAX_STATUS);
	tr_xmpp_in_free(&in);
	g_string_free(many, TRUE);

	/* room destroyed */
	in = parse("<presence from='" ROOM "/triage' type='unavailable'><x xmlns='http://jabber.org/protocol/muc#user'>"
	           "<item affiliation='none' role='none'/><destroy><reason>gone</reason></destroy></x></presence>", 1000);
	assert_true(in->destroyed);
	assert_string_equal(in->item_reason, "gone");
	tr_xmpp_in_free(&in);

	/* errors: condition and text */
	in = parse("<presence from='" ROOM "/triage' type='error'><error type='cancel'>"
	           "<conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
	           "<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>nick taken</text></error></presence>", 1000);
	assert_string_equal(in->error_condition, "conflict");
	assert_string_equal(in->error_text, "nick taken");
	tr_xmpp_in_free(&in);

	/* iq: payload */
	in = parse("<iq type='get' from='localhost' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>", 1000);
	assert_int_equal(in->kind, TR_XMPP_IN_IQ);
	assert_string_equal(in->payload_name, "ping");
	assert_string_equal(in->payload_ns, "urn:xmpp:ping");
	tr_xmpp_in_free(&in);

	/* not a stanza we know */
	xmpp_stanza_t *st = xmpp_stanza_new_from_string(ctx, "<foo/>");
	assert_null(tr_xmpp_in_parse(st, 100, NULL));
	xmpp_stanza_release(st);
}

/* ------------------------------------ the object, with nobody listening */

/* A loopback port with nothing behind it (bound, then closed). */
static int closed_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	socklen_t len = sizeof(sa);
	getsockname(fd, (struct sockaddr *)&sa, &len);
	close(fd);
	return ntohs(sa.sin_port);
}

static void offline_config(tr_xmpp_config *cfg)
{
	tr_xmpp_config_default(cfg);
	cfg->enabled = true;
	cfg->jid = g_strdup("bot@localhost");
	cfg->password = g_strdup("secret");
	cfg->host = g_strdup("127.0.0.1");
	cfg->limits.port = closed_port();
	g_strfreev(cfg->rooms);
	cfg->rooms = g_strsplit("oncall@conference.localhost", ",", -1);
}

static tr_xmpp_event *wait_event(tr_xmpp *x, tr_xmpp_event_type type, int timeout_ms)
{
	gint64 end = g_get_monotonic_time() + timeout_ms * 1000;
	tr_xmpp_event *ev = NULL;
	while (g_get_monotonic_time() < end) {
		int left = (int)((end - g_get_monotonic_time()) / 1000);
		if (!tr_xmpp_next_event(x, MAX(left, 1), &ev))
			continue;
		if (ev->type == type)
			return ev;
		tr_xmpp_event_free(&ev);
	}
	return NULL;
}

static void test_start_refuses_bad_config(void **state)
{
	(void)state;
	tr_xmpp_config cfg;
	tr_xmpp_config_default(&cfg);
	GError *error = NULL;
	assert_null(tr_xmpp_start(&cfg, &error));
	assert_true(g_error_matches(error, TR_XMPP_ERROR, TR_XMPP_ERROR_CONFIG));
	g_clear_error(&error);
	cfg.jid = g_strdup("bot@localhost");
	assert_null(tr_xmpp_start(&cfg, &error));
	assert_non_null(strstr(error->message, "no password"));
	g_clear_error(&error);
	tr_xmpp_config_clear(&cfg);
}

static void test_offline_queue_and_timeouts(void **state)
{
	(void)state;
	tr_xmpp_config cfg;
	offline_config(&cfg);
	cfg.limits.send_timeout = 1;
	cfg.limits.queue_max = 3;
	GError *error = NULL;
	tr_xmpp *x = tr_xmpp_start(&cfg, &error);
	assert_non_null(x);
	tr_xmpp_config_clear(&cfg);

	/* the connection attempt fails and says why */
	tr_xmpp_event *ev = wait_event(x, TR_XMPP_EVENT_DISCONNECTED, 5000);
	assert_non_null(ev);
	assert_non_null(strstr(ev->text, "127.0.0.1"));
	tr_xmpp_event_free(&ev);

	/* enqueue checks its arguments */
	assert_false(tr_xmpp_post_room(x, "not a room", "x", "id", &error));
	assert_true(g_error_matches(error, TR_XMPP_ERROR, TR_XMPP_ERROR_INVALID));
	g_clear_error(&error);
	assert_false(tr_xmpp_post_room(x, "r@conference.localhost/nick", "x", "id", &error));
	g_clear_error(&error);
	assert_false(tr_xmpp_send_chat(x, "customer@example.org", "x", "bad\nid", &error));
	g_clear_error(&error);
	assert_false(tr_xmpp_send_chat(x, "customer@example.org", "\x01\x02", "id", &error));
	assert_non_null(strstr(error->message, "empty"));
	g_clear_error(&error);
	char *big = g_strnfill(20000, 'x');
	assert_false(tr_xmpp_send_chat(x, "customer@example.org", big, "id", &error));
	assert_non_null(strstr(error->message, "body_max"));
	g_clear_error(&error);
	g_free(big);

	/* queued while down; queue_max; then send_timeout fails them */
	assert_true(tr_xmpp_post_room(x, "OnCall@conference.localhost", "P1 TKT-1", "post-1", &error));
	assert_true(tr_xmpp_post_room(x, "new@conference.localhost", "P2 TKT-2", "post-2", &error));
	assert_true(tr_xmpp_send_chat(x, "customer@example.org/phone", "hello", "chat-1", &error));
	assert_false(tr_xmpp_send_chat(x, "customer@example.org", "one too many", "chat-2", &error));
	assert_true(g_error_matches(error, TR_XMPP_ERROR, TR_XMPP_ERROR_FULL));
	g_clear_error(&error);
	tr_xmpp_stats stats;
	tr_xmpp_get_stats(x, &stats);
	assert_int_equal(stats.outstanding, 3);
	assert_false(stats.connected);

	GHashTable *seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	while (g_hash_table_size(seen) < 3 && (ev = wait_event(x, TR_XMPP_EVENT_SEND_RESULT, 5000)) != NULL) {
		assert_int_equal(ev->send_status, TR_XMPP_SEND_FAILED);
		assert_int_equal(ev->confirmation, TR_XMPP_CONFIRMED_NONE);
		assert_non_null(strstr(ev->text, "not sent within 1 s"));
		if (strcmp(ev->id, "post-1") == 0)
			assert_string_equal(ev->room, "oncall@conference.localhost");
		if (strcmp(ev->id, "chat-1") == 0)
			assert_string_equal(ev->jid, "customer@example.org/phone");
		assert_true(g_hash_table_add(seen, g_strdup(ev->id)));
		tr_xmpp_event_free(&ev);
	}
	assert_int_equal(g_hash_table_size(seen), 3);
	g_hash_table_destroy(seen);
	tr_xmpp_get_stats(x, &stats);
	assert_int_equal(stats.outstanding, 0);
	assert_int_equal(stats.failed, 3);

	/* close gives the rest its result and ends the thread quickly */
	assert_true(tr_xmpp_post_room(x, "oncall@conference.localhost", "late", "post-3", &error));
	gint64 t0 = g_get_monotonic_time();
	assert_true(tr_xmpp_close(x, 2000));
	assert_true(g_get_monotonic_time() - t0 < 500 * 1000);
	assert_false(tr_xmpp_post_room(x, "oncall@conference.localhost", "after", "post-4", &error));
	assert_true(g_error_matches(error, TR_XMPP_ERROR, TR_XMPP_ERROR_STOPPED));
	g_clear_error(&error);
	ev = wait_event(x, TR_XMPP_EVENT_SEND_RESULT, 100);
	assert_non_null(ev);
	assert_string_equal(ev->id, "post-3");
	assert_int_equal(ev->send_status, TR_XMPP_SEND_FAILED);
	assert_non_null(strstr(ev->text, "closed"));
	tr_xmpp_event_free(&ev);
	/* finished and drained: next_event returns at once */
	t0 = g_get_monotonic_time();
	assert_false(tr_xmpp_next_event(x, 5000, &ev));
	assert_null(ev);
	assert_true(g_get_monotonic_time() - t0 < 100 * 1000);
	tr_xmpp_stop(&x);
	assert_null(x);
	tr_xmpp_stop(&x);
}

static void test_event_fd_and_stop_with_unread_events(void **state)
{
	(void)state;
	tr_xmpp_config cfg;
	offline_config(&cfg);
	GError *error = NULL;
	tr_xmpp *x = tr_xmpp_start(&cfg, &error);
	tr_xmpp_config_clear(&cfg);
	assert_non_null(x);
	int fd = tr_xmpp_event_fd(x);
	assert_true(fd >= 0);
	GPollFD pfd = { .fd = fd, .events = G_IO_IN };
	assert_int_equal(g_poll(&pfd, 1, 5000), 1);     /* the failed attempt */
	tr_xmpp_event *ev;
	while (tr_xmpp_next_event(x, 0, &ev))
		tr_xmpp_event_free(&ev);
	assert_int_equal(g_poll(&pfd, 1, 0), 0);        /* drained: not readable */
	/* queue some work and stop without reading anything: no leak, quick */
	for (int i = 0; i < 10; i++) {
		char id[16];
		g_snprintf(id, sizeof(id), "m%d", i);
		assert_true(tr_xmpp_send_chat(x, "a@example.org", "x", id, &error));
	}
	gint64 t0 = g_get_monotonic_time();
	tr_xmpp_stop(&x);
	assert_true(g_get_monotonic_time() - t0 < 500 * 1000);
}

static unsigned count_events(tr_xmpp *x, tr_xmpp_event_type type, int ms)
{
	unsigned n = 0;
	gint64 end = g_get_monotonic_time() + ms * 1000;
	tr_xmpp_event *ev;
	while (g_get_monotonic_time() < end) {
		if (tr_xmpp_next_event(x, 50, &ev)) {
			n += ev->type == type;
			tr_xmpp_event_free(&ev);
		}
	}
	return n;
}

/* libstrophe waits with select(): a socket numbered FD_SETSIZE or more
 * must be refused before it is used, and the retry waits on the slow
 * schedule (a full fd table does not empty itself in a second).  A plain
 * refused connection retries on the configured (1 s) schedule. */
static void test_socket_beyond_fd_setsize_is_refused(void **state)
{
	(void)state;
	tr_xmpp_config cfg;
	offline_config(&cfg);
	tr_xmpp *x = tr_xmpp_start(&cfg, NULL);
	tr_xmpp_config_clear(&cfg);
	assert_non_null(x);
	assert_true(count_events(x, TR_XMPP_EVENT_DISCONNECTED, 2600) >= 2);
	tr_xmpp_stop(&x);

	struct rlimit rl;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_max < FD_SETSIZE + 64)
		skip();
	struct rlimit raised = rl;
	raised.rlim_cur = FD_SETSIZE + 64;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &raised), 0);
	GArray *fds = g_array_new(FALSE, FALSE, sizeof(int));
	int fd;
	while ((fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0 && fd < FD_SETSIZE + 8)
		g_array_append_val(fds, fd);
	if (fd >= 0)
		close(fd);
	offline_config(&cfg);
	x = tr_xmpp_start(&cfg, NULL);
	tr_xmpp_config_clear(&cfg);
	assert_non_null(x);
	tr_xmpp_event *ev = wait_event(x, TR_XMPP_EVENT_DISCONNECTED, 5000);
	assert_non_null(ev);
	assert_non_null(strstr(ev->text, "FD_SETSIZE"));
	tr_xmpp_event_free(&ev);
	assert_int_equal(count_events(x, TR_XMPP_EVENT_DISCONNECTED, 2600), 0);
	tr_xmpp_stop(&x);
	for (guint i = 0; i < fds->len; i++)
		close(g_array_index(fds, int, i));
	g_array_free(fds, TRUE);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
}

/* A server that offers STARTTLS, says <proceed/> and then never answers
 * the TLS ClientHello: libstrophe's handshake is synchronous and has no
 * timeout of its own, so the connection thread is stuck inside
 * xmpp_run_once().  stop() must still return in about 2 s. */
typedef struct {
	int listen_fd, client_fd;
	gint in_handshake;
} stalling_server;

static gpointer stalling_server_main(gpointer data)
{
	stalling_server *s = data;
	s->client_fd = accept(s->listen_fd, NULL, NULL);
	if (s->client_fd < 0)
		return NULL;
	char buf[4096];
	GString *seen = g_string_new(NULL);
	ssize_t n;
	while (strstr(seen->str, "<stream:stream") == NULL && (n = read(s->client_fd, buf, sizeof(buf))) > 0)
		g_string_append_len(seen, buf, n);
	const char *features = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
	                       "xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='localhost' "
	                       "version='1.0'><stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>"
	                       "<required/></starttls></stream:features>";
	if (write(s->client_fd, features, strlen(features)) < 0)
		return NULL;
	while (strstr(seen->str, "<starttls") == NULL && (n = read(s->client_fd, buf, sizeof(buf))) > 0)
		g_string_append_len(seen, buf, n);
	const char *proceed = "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";
	if (write(s->client_fd, proceed, strlen(proceed)) < 0)
		return NULL;
	g_string_free(seen, TRUE);
	/* the first bytes of the ClientHello: the client is inside SSL_connect() */
	if (read(s->client_fd, buf, sizeof(buf)) > 0)
		g_atomic_int_set(&s->in_handshake, 1);
	return NULL; /* and say nothing more: the ClientHello is never answered */
}

/* Connect to a stalling server and return once the connection thread is
 * inside the TLS handshake; srv->client_fd is the server's end. */
static tr_xmpp *start_stuck_in_handshake(stalling_server *srv)
{
	*srv = (stalling_server){ .client_fd = -1 };
	srv->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	if (srv->listen_fd < 0 || bind(srv->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    getsockname(srv->listen_fd, (struct sockaddr *)&sa, &len) != 0 || listen(srv->listen_fd, 4) != 0) {
		if (srv->listen_fd >= 0)
			close(srv->listen_fd);
		return NULL;
	}
	GThread *server = g_thread_new("stalling-server", stalling_server_main, srv);

	tr_xmpp_config cfg;
	offline_config(&cfg);
	cfg.limits.port = ntohs(sa.sin_port);
	/* It cannot fire while libstrophe blocks in the handshake anyway; long
	 * enough for the CA bundle, which libstrophe loads before it (seconds
	 * under ASan with fast_unwind_on_malloc=0). */
	cfg.limits.connect_timeout = 60;
	tr_xmpp *x = tr_xmpp_start(&cfg, NULL);
	tr_xmpp_config_clear(&cfg);
	g_thread_join(server);
	if (x == NULL || !g_atomic_int_get(&srv->in_handshake)) {
		tr_xmpp_stop(&x);
		if (srv->client_fd >= 0)
			close(srv->client_fd);
		close(srv->listen_fd);
	}
	return x;
}

static void test_stop_while_stuck_in_tls_handshake(void **state)
{
	(void)state;
	stalling_server srv;
	tr_xmpp *x = start_stuck_in_handshake(&srv);
	assert_non_null(x);

	gint64 t0 = g_get_monotonic_time();
	assert_false(tr_xmpp_close(x, 500));     /* it cannot finish... */
	tr_xmpp_stop(&x);                         /* ...so stop detaches it */
	gint64 took = (g_get_monotonic_time() - t0) / 1000;
	assert_true(took < 3000);
	/* the peer goes away, the handshake fails, the thread cleans up */
	close(srv.client_fd);
	close(srv.listen_fd);
	g_usleep(500 * 1000);
}

/* A process that exits right after stop() let a connection thread go, while
 * that thread is still inside OpenSSL (in xmpp.sh under ASan: loading the
 * CA bundle for a new connection).  The child below does that; it must
 * exit with status 0, without a sanitizer report and without hanging.
 * Without OPENSSL_INIT_NO_ATEXIT it fails in both builds: OpenSSL's exit
 * handler has torn OpenSSL down under the thread (checked at the end of
 * the child's exit), and under ASan LeakSanitizer reports what the thread
 * allocated in the torn-down OpenSSL.  In xmpp.sh it was a use-after-free
 * in libcrypto (docs/testing.md, "Sanitizers and valgrind"). */
#define CHILD_EXIT_WITH_THREAD_LET_GO "--exit-with-a-connection-thread-let-go"

static int stuck_client_fd = -1;
static guint threads_before;

static guint thread_count(void)
{
	GDir *dir = g_dir_open("/proc/self/task", 0, NULL);
	guint n = 0;
	if (dir == NULL)
		return 0;
	while (g_dir_read_name(dir) != NULL)
		n++;
	g_dir_close(dir);
	return n;
}

/* Registered before the connection starts, so it runs after every exit
 * handler registered later, OpenSSL's among them (atexit() runs them in
 * reverse order).  It stands for the rest of an exit taking its time: the
 * peer goes away, the handshake fails, and the thread that was let go
 * cleans up inside OpenSSL while the process is exiting. */
static void release_stuck_thread_at_exit(void)
{
	close(stuck_client_fd);
	gint64 end = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
	while (thread_count() > threads_before && g_get_monotonic_time() < end)
		g_usleep(20 * 1000);
	/* fails once OpenSSL's exit handler has run ("stopped") */
	if (!OPENSSL_init_crypto(0, NULL)) {
		fprintf(stderr, "child: OpenSSL was cleaned up while the connection thread still used it\n");
		_exit(4);
	}
}

static int exit_with_a_thread_let_go(void)
{
	threads_before = thread_count();
	atexit(release_stuck_thread_at_exit);
	stalling_server srv;
	tr_xmpp *x = start_stuck_in_handshake(&srv);
	if (x == NULL) {
		fprintf(stderr, "child: the connection did not get stuck in the TLS handshake\n");
		return 3;
	}
	tr_xmpp_stop(&x); /* about 2 s, then the thread is let go */
	stuck_client_fd = srv.client_fd;
	close(srv.listen_fd);
	return 0;
}

static void test_exit_with_a_connection_thread_let_go(void **state)
{
	(void)state;
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		execl("/proc/self/exe", "test_xmpp", CHILD_EXIT_WITH_THREAD_LET_GO, (char *)NULL);
		_exit(127);
	}
	int status = 0;
	gint64 end = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;
	pid_t done;
	while ((done = waitpid(pid, &status, WNOHANG)) == 0 && g_get_monotonic_time() < end)
		g_usleep(50 * 1000);
	if (done == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		fail_msg("the process hung at exit (killed after 60 s)");
	}
	assert_int_equal(done, pid);
	if (!WIFEXITED(status))
		fail_msg("the process died at exit: signal %d", WTERMSIG(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], CHILD_EXIT_WITH_THREAD_LET_GO) == 0)
		return exit_with_a_thread_let_go();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_defaults),
		cmocka_unit_test(test_config_full),
		cmocka_unit_test(test_config_operators),
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_config_password_file),
		cmocka_unit_test(test_jids),
		cmocka_unit_test(test_body_clean),
		cmocka_unit_test(test_bucket),
		cmocka_unit_test_setup_teardown(test_classify, setup_ctx, teardown_ctx),
		cmocka_unit_test_setup_teardown(test_parse_details, setup_ctx, teardown_ctx),
		cmocka_unit_test(test_start_refuses_bad_config),
		cmocka_unit_test(test_offline_queue_and_timeouts),
		cmocka_unit_test(test_event_fd_and_stop_with_unread_events),
		cmocka_unit_test(test_socket_beyond_fd_setsize_is_refused),
		cmocka_unit_test(test_stop_while_stuck_in_tls_handshake),
		cmocka_unit_test(test_exit_with_a_connection_thread_let_go),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
