/* test_lmtp_server.c — the LMTP listener, the next-hop client and the
 * triage gateway, over real sockets on loopback inside the test process:
 * our own client talks to our own server, whose hook is a fake. */
#include "testutil.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "channels/lmtp.h"
#include "core/engine.h"
#include "core/normalize.h"

/* ---- a capturing hook and a server in a thread ---- */

typedef struct {
	GMutex lock;
	const char *results;     /* per recipient D/T/F/R; NULL all D */
	unsigned calls;
	GString *data;
	GPtrArray *rcpts;
	int delay_ms;            /* the hook takes this long */
} capture;

static void capture_deliver(void *context, const tr_lmtp_envelope *env, tr_lmtp_rcpt_status *status)
{
	capture *c = context;
	if (c->delay_ms > 0)
		g_usleep((gulong)c->delay_ms * 1000);
	g_mutex_lock(&c->lock);
	c->calls++;
	g_string_assign(c->data, "");
	g_string_append_len(c->data, env->data, (gssize)env->len);
	g_ptr_array_set_size(c->rcpts, 0);
	for (size_t i = 0; i < env->rcpts_count; i++) {
		g_ptr_array_add(c->rcpts, g_strdup(env->rcpts[i]));
		char r = c->results != NULL && i < strlen(c->results) ? c->results[i] : 'D';
		status[i].result = r == 'T' ? TR_LMTP_DEFER : r == 'F' ? TR_LMTP_DEFER_FULL
		                 : r == 'R' ? TR_LMTP_REJECT : TR_LMTP_DELIVERED;
		if (r == 'R')
			g_strlcpy(status[i].text, "5.1.1 <nobody> User unknown", sizeof(status[i].text));
	}
	g_mutex_unlock(&c->lock);
}

typedef struct {
	tr_lmtp_settings settings;
	capture cap;
	tr_lmtp_hook hook;
	tr_lmtp_server *server;
	GThread *thread;
	char *spec;   /* "lmtp:inet:127.0.0.1:PORT" */
	int port;
} test_server;

static gpointer server_main(gpointer data)
{
	tr_lmtp_server_run(data);
	return NULL;
}

static test_server *server_start(const char *listen, void (*tune)(tr_lmtp_settings *))
{
	test_server *t = g_new0(test_server, 1);
	tr_lmtp_settings_default(&t->settings);
	g_free(t->settings.listen);
	t->settings.listen = g_strdup(listen != NULL ? listen : "inet:127.0.0.1:0");
	g_free(t->settings.hostname);
	t->settings.hostname = g_strdup("next.test");
	if (tune != NULL)
		tune(&t->settings);
	g_mutex_init(&t->cap.lock);
	t->cap.data = g_string_new(NULL);
	t->cap.rcpts = g_ptr_array_new_with_free_func(g_free);
	t->hook = (tr_lmtp_hook){ capture_deliver, &t->cap };
	GError *error = NULL;
	t->server = tr_lmtp_server_new(&t->settings, &t->hook, &error);
	if (t->server == NULL)
		fail_msg("server: %s", error->message);
	const char *addr = tr_lmtp_server_address(t->server);
	if (g_str_has_prefix(addr, "unix:")) {
		t->spec = g_strdup_printf("lmtp:%s", addr);
	} else {
		t->port = atoi(strrchr(addr, ':') + 1);
		t->spec = g_strdup_printf("lmtp:inet:127.0.0.1:%d", t->port);
	}
	t->thread = g_thread_new("test-server", server_main, t->server);
	return t;
}

static void server_stop(test_server *t)
{
	if (t->thread != NULL) {
		tr_lmtp_server_stop(t->server);
		g_thread_join(t->thread);
	}
	assert_int_equal(tr_lmtp_server_connections(t->server), 0);
	tr_lmtp_server_free(&t->server);
	tr_lmtp_settings_clear(&t->settings);
	g_string_free(t->cap.data, TRUE);
	g_ptr_array_free(t->cap.rcpts, TRUE);
	g_mutex_clear(&t->cap.lock);
	g_free(t->spec);
	g_free(t);
}

/* ---- raw client helpers ---- */

static int raw_connect(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	return fd;
}

/* Read until a final reply line ("ddd ") arrives or timeout_ms pass; the
 * bytes read, as a string. */
static char *raw_read(int fd, int timeout_ms)
{
	GString *in = g_string_new(NULL);
	gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
	for (;;) {
		/* A complete final line? */
		const char *p = in->str;
		bool done = false;
		while (*p != '\0') {
			const char *e = strstr(p, "\r\n");
			if (e == NULL)
				break;
			if (e - p >= 4 && p[3] == ' ')
				done = true;
			p = e + 2;
		}
		if (done)
			break;
		int left = (int)((deadline - g_get_monotonic_time()) / 1000);
		if (left <= 0)
			break;
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		if (poll(&pfd, 1, left) <= 0)
			break;
		char buf[4096];
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			break;
		g_string_append_len(in, buf, n);
	}
	return g_string_free(in, FALSE);
}

static void raw_send(int fd, const char *text)
{
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
}

static bool raw_closed(int fd, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	if (poll(&pfd, 1, timeout_ms) <= 0)
		return false;
	char buf[256];
	return read(fd, buf, sizeof(buf)) == 0;
}

static tr_lmtp_envelope envelope(const char *const *rcpts, size_t n, const char *data)
{
	return (tr_lmtp_envelope){
		.lmtp = true, .session_id = "T1", .helo = "front.test", .client = "192.0.2.7",
		.mail_from = "alice@example.org", .rcpts = rcpts, .rcpts_count = n,
		.data = data, .len = strlen(data),
	};
}

/* ---- listener + client ---- */

static void test_client_server_lmtp(void **state)
{
	(void)state;
	test_server *t = server_start(NULL, NULL);
	t->cap.results = "DRT";
	tr_lmtp_next_hop hop;
	assert_true(tr_lmtp_next_hop_parse(t->spec, &hop, NULL));
	static const char *const rcpts[] = { "a@example.test", "b@example.test", "c@example.test" };
	const char *data = "Subject: x\r\n\r\n.leading dot\r\nno final newline";
	tr_lmtp_envelope env = envelope(rcpts, 3, data);
	tr_lmtp_rcpt_status st[3];
	memset(st, 0, sizeof(st));
	tr_lmtp_client_deliver(&hop, "client.test", 5, false, &env, data, strlen(data), st);
	assert_int_equal(st[0].result, TR_LMTP_DELIVERED);
	assert_int_equal(st[0].code, 250);
	assert_int_equal(st[1].result, TR_LMTP_REJECT);
	assert_int_equal(st[1].code, 550);
	assert_non_null(strstr(st[1].text, "User unknown"));
	assert_int_equal(st[2].result, TR_LMTP_DEFER);
	assert_int_equal(t->cap.calls, 1);
	/* Dot-stuffed on the way, unstuffed on arrival, a line end added. */
	assert_string_equal(t->cap.data->str, "Subject: x\r\n\r\n.leading dot\r\nno final newline\r\n");

	/* soft_bounce: the 5xx becomes a temporary failure. */
	memset(st, 0, sizeof(st));
	tr_lmtp_client_deliver(&hop, "client.test", 5, true, &env, data, strlen(data), st);
	assert_int_equal(st[1].result, TR_LMTP_DEFER);
	assert_int_equal(st[1].code / 100, 4);
	server_stop(t);
}

static void test_client_server_smtp(void **state)
{
	(void)state;
	test_server *t = server_start(NULL, NULL);
	char *spec = g_strdup_printf("smtp:inet:127.0.0.1:%d", t->port);
	tr_lmtp_next_hop hop;
	assert_true(tr_lmtp_next_hop_parse(spec, &hop, NULL));
	assert_false(hop.lmtp);
	static const char *const rcpts[] = { "a@example.test", "b@example.test" };
	tr_lmtp_envelope env = envelope(rcpts, 2, "x\r\n");
	tr_lmtp_rcpt_status st[2];
	memset(st, 0, sizeof(st));
	tr_lmtp_client_deliver(&hop, "client.test", 5, false, &env, "x\r\n", 3, st);
	assert_int_equal(st[0].result, TR_LMTP_DELIVERED);
	assert_int_equal(st[1].result, TR_LMTP_DELIVERED);
	g_free(spec);
	server_stop(t);
}

static void test_client_unreachable(void **state)
{
	(void)state;
	/* A port that was just free: bind, note, close. */
	test_server *t = server_start(NULL, NULL);
	char *spec = g_strdup(t->spec);
	server_stop(t);
	tr_lmtp_next_hop hop;
	assert_true(tr_lmtp_next_hop_parse(spec, &hop, NULL));
	static const char *const rcpts[] = { "a@example.test" };
	tr_lmtp_envelope env = envelope(rcpts, 1, "x\r\n");
	tr_lmtp_rcpt_status st[1];
	memset(st, 0, sizeof(st));
	st[0].result = TR_LMTP_DELIVERED;
	tr_lmtp_client_deliver(&hop, "client.test", 2, false, &env, "x\r\n", 3, st);
	assert_int_equal(st[0].result, TR_LMTP_DEFER);
	assert_true(g_str_has_prefix(st[0].text, "4.4.2 next hop"));
	g_free(spec);
}

static void test_unix_socket(void **state)
{
	(void)state;
	char *dir = g_dir_make_tmp("triage-lmtp-XXXXXX", NULL);
	char *listen = g_strdup_printf("unix:%s/lmtp.sock", dir);
	test_server *t = server_start(listen, NULL);
	tr_lmtp_next_hop hop;
	assert_true(tr_lmtp_next_hop_parse(t->spec, &hop, NULL));
	static const char *const rcpts[] = { "a@example.test" };
	tr_lmtp_envelope env = envelope(rcpts, 1, "x\r\n");
	tr_lmtp_rcpt_status st[1];
	memset(st, 0, sizeof(st));
	tr_lmtp_client_deliver(&hop, "client.test", 5, false, &env, "x\r\n", 3, st);
	assert_int_equal(st[0].result, TR_LMTP_DELIVERED);
	server_stop(t);
	char *sock = g_strdup_printf("%s/lmtp.sock", dir);
	assert_false(g_file_test(sock, G_FILE_TEST_EXISTS));   /* removed at stop */
	rmdir(dir);
	g_free(sock);
	g_free(listen);
	g_free(dir);
}

static void one_connection(tr_lmtp_settings *s)
{
	s->limits.connections = 1;
}

static void test_connection_limit(void **state)
{
	(void)state;
	test_server *t = server_start(NULL, one_connection);
	int a = raw_connect(t->port);
	char *greeting = raw_read(a, 2000);
	assert_true(g_str_has_prefix(greeting, "220 "));
	int b = raw_connect(t->port);
	char *refused = raw_read(b, 2000);
	assert_true(g_str_has_prefix(refused, "421 4.3.2 "));
	assert_true(raw_closed(b, 2000));
	close(b);
	raw_send(a, "QUIT\r\n");
	char *bye = raw_read(a, 2000);
	assert_true(g_str_has_prefix(bye, "221 "));
	close(a);
	/* The slot is free again. */
	gint64 until = g_get_monotonic_time() + 2 * G_USEC_PER_SEC;
	while (tr_lmtp_server_connections(t->server) > 0 && g_get_monotonic_time() < until)
		g_usleep(10000);
	int c = raw_connect(t->port);
	char *again = raw_read(c, 2000);
	assert_true(g_str_has_prefix(again, "220 "));
	close(c);
	g_free(greeting);
	g_free(refused);
	g_free(bye);
	g_free(again);
	server_stop(t);
}

static void short_timeout(tr_lmtp_settings *s)
{
	s->limits.timeout = 1;
}

static void test_timeout(void **state)
{
	(void)state;
	test_server *t = server_start(NULL, short_timeout);
	int fd = raw_connect(t->port);
	char *greeting = raw_read(fd, 2000);
	raw_send(fd, "LHLO c\r\n");
	char *lhlo = raw_read(fd, 2000);
	char *gone = raw_read(fd, 4000);
	assert_true(g_str_has_prefix(gone, "421 4.4.2 "));
	assert_true(raw_closed(fd, 2000));
	close(fd);
	g_free(greeting);
	g_free(lhlo);
	g_free(gone);
	server_stop(t);
}

static void short_shutdown(tr_lmtp_settings *s)
{
	s->limits.shutdown_timeout = 10;
}

/* Stop: an idle client is told 421; a transaction under way finishes
 * (250) and is then told 421; the listener no longer accepts. */
static void test_shutdown(void **state)
{
	(void)state;
	test_server *t = server_start(NULL, short_shutdown);
	int idle = raw_connect(t->port);
	int busy = raw_connect(t->port);
	g_free(raw_read(idle, 2000));
	g_free(raw_read(busy, 2000));
	raw_send(busy, "LHLO c\r\nMAIL FROM:<a@b.test>\r\n");
	char *r = raw_read(busy, 2000);
	g_free(r);
	r = raw_read(busy, 300);   /* the MAIL reply may come separately */
	g_free(r);

	tr_lmtp_server_stop(t->server);
	char *bye = raw_read(idle, 2000);
	assert_true(g_str_has_prefix(bye, "421 4.3.2 "));
	g_free(bye);
	raw_send(busy, "RCPT TO:<x@example.test>\r\nDATA\r\n");
	char *more = raw_read(busy, 2000);
	g_free(more);
	more = raw_read(busy, 500);
	g_free(more);
	raw_send(busy, "hello\r\n.\r\n");
	char *done = raw_read(busy, 2000);
	assert_non_null(strstr(done, "250 "));
	char *closing = strstr(done, "421 4.3.2") ? g_strdup(done) : raw_read(busy, 2000);
	assert_non_null(strstr(closing, "421 4.3.2"));
	g_thread_join(t->thread);   /* run() returned by itself */
	t->thread = NULL;
	assert_int_equal(t->cap.calls, 1);
	close(idle);
	close(busy);
	g_free(done);
	g_free(closing);
	server_stop(t);
}

/* ---- the gateway ---- */

static tr_engine *engine;
static tr_engine_slot *engines;

static int gateway_setup(void **state)
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

static int gateway_teardown(void **state)
{
	(void)state;
	tr_engine_slot_free(&engines);
	tr_engine_free(&engine);
	return 0;
}

typedef enum { FAKE_NEW, FAKE_DUPLICATE, FAKE_TEMPFAIL, FAKE_FULL } fake_mode;

typedef struct {
	fake_mode mode;
	unsigned calls;
	bool saw_envelope;
} fake_ingest;

static bool fake_ingest_fn(void *context, const tr_ingest_input *in, tr_ingest_result *result, GError **error)
{
	fake_ingest *f = context;
	f->calls++;
	f->saw_envelope = in->channel == TR_CHANNEL_LMTP && in->n_envelope_to > 0 && in->envelope_from != NULL &&
	                  in->data != NULL && in->len > 0 && in->now > 0 && in->source != NULL;
	switch (f->mode) {
	case FAKE_NEW:
	case FAKE_DUPLICATE:
		result->kind = f->mode == FAKE_NEW ? TR_INGEST_NEW : TR_INGEST_DUPLICATE;
		g_strlcpy(result->ticket, "TKT-000042", sizeof(result->ticket));
		result->priority = 1;
		g_strlcpy(result->category, "technical", sizeof(result->category));
		g_strlcpy(result->team, "engineering", sizeof(result->team));
		return true;
	case FAKE_TEMPFAIL:
		g_set_error(error, TR_STORE_ERROR, TR_STORE_ERROR_BUSY, "fake store busy");
		return false;
	case FAKE_FULL:
		g_set_error(error, TR_STORE_ERROR, TR_STORE_ERROR_FULL, "fake disk full");
		return false;
	}
	return false;
}

static const char spoofed[] =
	"From: Dana <dana@bigcorp.example>\r\n"
	"To: support@example.test\r\n"
	"X-Triage-Priority: P4\r\n"
	"x-triage-ticket: TKT-999999\r\n"
	"\tcontinued\r\n"
	"Subject: URGENT: production API down, all users getting 500 errors\r\n"
	"Message-ID: <gw-1@bigcorp.example>\r\n"
	"\r\n"
	"Our production API is down for everyone. Please escalate immediately.\r\n"
	"X-Triage-Priority: P4 in the body stays\r\n";

typedef struct {
	tr_lmtp_settings settings;
	tr_lmtp_gateway *gateway;
	tr_lmtp_hook hook;
	fake_ingest ingest;
	tr_lmtp_store store;
} test_gateway;

static test_gateway *gateway_new(const char *next_hop, bool with_ingest, fake_mode st)
{
	test_gateway *g = g_new0(test_gateway, 1);
	tr_lmtp_settings_default(&g->settings);
	g_free(g->settings.hostname);
	g->settings.hostname = g_strdup("gw.test");
	g->settings.next_hop = g_strdup(next_hop);
	g->settings.limits.next_hop_timeout = 3;
	g->ingest.mode = st;
	g->store = (tr_lmtp_store){ fake_ingest_fn, &g->ingest };
	GError *error = NULL;
	g->gateway = tr_lmtp_gateway_new(engines, &g->settings, with_ingest ? &g->store : NULL, &error);
	if (g->gateway == NULL)
		fail_msg("gateway: %s", error->message);
	g->hook = tr_lmtp_gateway_hook(g->gateway);
	return g;
}

static void gateway_free(test_gateway *g)
{
	tr_lmtp_gateway_free(&g->gateway);
	tr_lmtp_settings_clear(&g->settings);
	g_free(g);
}

static void gateway_run(test_gateway *g, const char *const *rcpts, size_t n, const char *data,
                        tr_lmtp_rcpt_status *st)
{
	tr_lmtp_envelope env = envelope(rcpts, n, data);
	for (size_t i = 0; i < n; i++)
		st[i] = (tr_lmtp_rcpt_status){ .result = TR_LMTP_DEFER };
	g->hook.deliver(g->hook.context, &env, st);
}

static void test_gateway_forwards_with_headers(void **state)
{
	(void)state;
	test_server *next = server_start(NULL, NULL);
	test_gateway *g = gateway_new(next->spec, true, FAKE_NEW);
	static const char *const rcpts[] = { "support@example.test" };
	tr_lmtp_rcpt_status st[1];
	gateway_run(g, rcpts, 1, spoofed, st);
	assert_int_equal(st[0].result, TR_LMTP_DELIVERED);
	assert_int_equal(g->ingest.calls, 1);
	assert_true(g->ingest.saw_envelope);
	assert_int_equal(next->cap.calls, 1);
	const char *fwd = next->cap.data->str;
	assert_true(g_str_has_prefix(fwd, "Received: from front.test (192.0.2.7)\r\n\tby gw.test (triage) with LMTP id T1"));
	assert_non_null(strstr(fwd, "\r\nX-Triage-Priority: P1\r\n"));
	assert_non_null(strstr(fwd, "\r\nX-Triage-Category: technical\r\n"));   /* as the store has it */
	assert_non_null(strstr(fwd, "\r\nX-Triage-Ticket: TKT-000042\r\n"));
	assert_non_null(strstr(fwd, "\r\nX-Triage-Team: engineering\r\n"));
	assert_non_null(strstr(fwd, "\r\nX-Triage-Rules: "));
	/* The spoofed ones are gone, with their continuation line. */
	assert_null(strstr(fwd, "P4\r\nx-triage"));
	assert_null(strstr(fwd, "TKT-999999"));
	assert_null(strstr(fwd, "continued"));
	assert_null(strstr(fwd, "X-Triage-Priority: P4\r\nx-"));
	assert_non_null(strstr(fwd, "\r\nX-Triage-Priority: P4 in the body stays\r\n"));
	/* Exactly one X-Triage-Priority header in the header block. */
	const char *body = strstr(fwd, "\r\n\r\n");
	const char *first = strstr(fwd, "X-Triage-Priority:");
	assert_true(first < body);
	assert_true(strstr(first + 1, "X-Triage-Priority:") > body);
	gateway_free(g);

	/* A duplicate is confirmed the same way. */
	g = gateway_new(next->spec, true, FAKE_DUPLICATE);
	gateway_run(g, rcpts, 1, spoofed, st);
	assert_int_equal(st[0].result, TR_LMTP_DELIVERED);
	assert_non_null(strstr(next->cap.data->str, "X-Triage-Ticket: TKT-000042"));
	gateway_free(g);
	server_stop(next);
}

static void test_gateway_store_trouble(void **state)
{
	(void)state;
	test_server *next = server_start(NULL, NULL);
	static const char *const rcpts[] = { "support@example.test", "billing@example.test" };
	tr_lmtp_rcpt_status st[2];

	test_gateway *g = gateway_new(next->spec, true, FAKE_TEMPFAIL);
	gateway_run(g, rcpts, 2, spoofed, st);
	assert_int_equal(st[0].result, TR_LMTP_DEFER);
	assert_int_equal(st[1].result, TR_LMTP_DEFER);
	assert_true(g_str_has_prefix(st[0].text, "4.3.0"));
	assert_int_equal(next->cap.calls, 0);   /* nothing passed on before the commit */
	gateway_free(g);

	g = gateway_new(next->spec, true, FAKE_FULL);
	gateway_run(g, rcpts, 2, spoofed, st);
	assert_int_equal(st[0].result, TR_LMTP_DEFER_FULL);
	assert_true(g_str_has_prefix(st[1].text, "4.3.1"));
	assert_int_equal(next->cap.calls, 0);
	gateway_free(g);
	server_stop(next);
}

static void test_gateway_next_hop_trouble(void **state)
{
	(void)state;
	test_server *next = server_start(NULL, NULL);
	static const char *const rcpts[] = { "support@example.test", "nobody@example.test" };
	tr_lmtp_rcpt_status st[2];

	/* The next hop rejects one recipient: passed on as its verdict. */
	next->cap.results = "DR";
	test_gateway *g = gateway_new(next->spec, true, FAKE_NEW);
	gateway_run(g, rcpts, 2, spoofed, st);
	assert_int_equal(st[0].result, TR_LMTP_DELIVERED);
	assert_int_equal(st[1].result, TR_LMTP_REJECT);
	assert_non_null(strstr(st[1].text, "User unknown"));
	gateway_free(g);
	char *spec = g_strdup(next->spec);
	server_stop(next);

	/* The next hop is down: 451 for everyone, although committed. */
	g = gateway_new(spec, true, FAKE_NEW);
	gateway_run(g, rcpts, 2, spoofed, st);
	assert_int_equal(st[0].result, TR_LMTP_DEFER);
	assert_int_equal(st[1].result, TR_LMTP_DEFER);
	gateway_free(g);

	/* ... unless the commit is declared enough. */
	g = gateway_new(spec, true, FAKE_NEW);
	g->settings.next_hop_required = false;
	gateway_run(g, rcpts, 2, spoofed, st);
	assert_int_equal(st[0].result, TR_LMTP_DELIVERED);
	assert_non_null(strstr(st[0].text, "TKT-000042"));
	gateway_free(g);

	/* Without a store, the next hop is what keeps the message: 451. */
	g = gateway_new(spec, false, FAKE_NEW);
	g->settings.next_hop_required = false;
	gateway_run(g, rcpts, 2, spoofed, st);
	assert_int_equal(st[0].result, TR_LMTP_DEFER);
	gateway_free(g);
	g_free(spec);
}

static void test_gateway_classification_failure(void **state)
{
	(void)state;
	test_server *next = server_start(NULL, NULL);
	static const char *const rcpts[] = { "support@example.test" };
	tr_lmtp_rcpt_status st[1];

	/* on_error = accept: passed on untouched, no ticket attempted. */
	test_gateway *g = gateway_new(next->spec, true, FAKE_NEW);
	tr_lmtp_gateway_fail_classify(g->gateway, true);
	gateway_run(g, rcpts, 1, spoofed, st);
	assert_int_equal(st[0].result, TR_LMTP_DELIVERED);
	assert_int_equal(g->ingest.calls, 0);
	assert_int_equal(next->cap.calls, 1);
	assert_string_equal(next->cap.data->str, spoofed);
	gateway_free(g);

	/* on_error = tempfail: 451. */
	g = gateway_new(next->spec, true, FAKE_NEW);
	g->settings.on_error = TR_LMTP_ON_ERROR_TEMPFAIL;
	tr_lmtp_gateway_fail_classify(g->gateway, true);
	gateway_run(g, rcpts, 1, spoofed, st);
	assert_int_equal(st[0].result, TR_LMTP_DEFER);
	assert_int_equal(next->cap.calls, 1);
	gateway_free(g);

	/* An empty message cannot be classified either: same rule. */
	g = gateway_new(NULL, true, FAKE_NEW);
	gateway_run(g, rcpts, 1, "", st);
	assert_int_equal(st[0].result, TR_LMTP_DEFER);   /* accept needs a next hop */
	gateway_free(g);
	server_stop(next);
}

static void test_gateway_store_only(void **state)
{
	(void)state;
	static const char *const rcpts[] = { "support@example.test" };
	tr_lmtp_rcpt_status st[1];
	test_gateway *g = gateway_new(NULL, true, FAKE_NEW);
	gateway_run(g, rcpts, 1, spoofed, st);
	assert_int_equal(st[0].result, TR_LMTP_DELIVERED);
	assert_non_null(strstr(st[0].text, "TKT-000042"));
	assert_true(g->ingest.saw_envelope);
	gateway_free(g);

	/* Neither store nor next hop: refused at set-up. */
	tr_lmtp_settings settings;
	tr_lmtp_settings_default(&settings);
	GError *error = NULL;
	assert_null(tr_lmtp_gateway_new(engines, &settings, NULL, &error));
	assert_non_null(strstr(error->message, "nothing would keep"));
	g_clear_error(&error);
	tr_lmtp_settings_clear(&settings);
}


/* Many clients at once through listener + gateway + next hop: every
 * message is classified, committed once and passed on. */
static gint concurrent_ingests;

static bool counting_ingest(void *context, const tr_ingest_input *in, tr_ingest_result *result, GError **error)
{
	(void)context;
	if (in->data == NULL || in->n_envelope_to == 0) {
		g_set_error(error, TR_STORE_ERROR, TR_STORE_ERROR_SQL, "bad input");
		return false;
	}
	int n = g_atomic_int_add(&concurrent_ingests, 1) + 1;
	result->kind = TR_INGEST_NEW;
	g_snprintf(result->ticket, sizeof(result->ticket), "TKT-%06d", n);
	return true;
}

typedef struct {
	tr_lmtp_next_hop hop;
	int index;
	int delivered;
} client_job;

#define CLIENTS 8
#define MESSAGES 10

static gpointer client_main(gpointer data)
{
	client_job *job = data;
	static const char *const rcpts[] = { "support@example.test", "billing@example.test" };
	for (int i = 0; i < MESSAGES; i++) {
		char *msg = g_strdup_printf("From: c%d@bigcorp.example\r\nSubject: URGENT outage %d/%d\r\n"
		                            "Message-ID: <c%d-%d@bigcorp.example>\r\n\r\nThe API is down for everyone.\r\n",
		                            job->index, job->index, i, job->index, i);
		tr_lmtp_envelope env = envelope(rcpts, 2, msg);
		tr_lmtp_rcpt_status st[2];
		memset(st, 0, sizeof(st));
		tr_lmtp_client_deliver(&job->hop, "client.test", 10, false, &env, msg, strlen(msg), st);
		job->delivered += (st[0].result == TR_LMTP_DELIVERED) + (st[1].result == TR_LMTP_DELIVERED);
		g_free(msg);
	}
	return NULL;
}

static void test_concurrent_clients(void **state)
{
	(void)state;
	test_server *next = server_start(NULL, NULL);
	tr_lmtp_settings settings;
	tr_lmtp_settings_default(&settings);
	g_free(settings.listen);
	settings.listen = g_strdup("inet:127.0.0.1:0");
	settings.next_hop = g_strdup(next->spec);
	/* A client may reconnect before the server thread of its last
	 * connection is gone: leave room (as for an MTA's process limit). */
	settings.limits.connections = CLIENTS * 2;
	tr_lmtp_store store = { counting_ingest, NULL };
	GError *error = NULL;
	tr_lmtp_gateway *gw = tr_lmtp_gateway_new(engines, &settings, &store, &error);
	assert_non_null(gw);
	tr_lmtp_hook hook = tr_lmtp_gateway_hook(gw);
	tr_lmtp_server *front = tr_lmtp_server_new(&settings, &hook, &error);
	assert_non_null(front);
	GThread *front_thread = g_thread_new("front", server_main, front);
	char *spec = g_strdup_printf("lmtp:inet:%s", tr_lmtp_server_address(front));

	client_job jobs[CLIENTS];
	GThread *threads[CLIENTS];
	for (int i = 0; i < CLIENTS; i++) {
		jobs[i] = (client_job){ .index = i };
		assert_true(tr_lmtp_next_hop_parse(spec, &jobs[i].hop, NULL));
		threads[i] = g_thread_new("client", client_main, &jobs[i]);
	}
	int delivered = 0;
	for (int i = 0; i < CLIENTS; i++) {
		g_thread_join(threads[i]);
		delivered += jobs[i].delivered;
	}
	assert_int_equal(delivered, CLIENTS * MESSAGES * 2);
	assert_int_equal(g_atomic_int_get(&concurrent_ingests), CLIENTS * MESSAGES);
	assert_int_equal(next->cap.calls, CLIENTS * MESSAGES);

	tr_lmtp_server_stop(front);
	g_thread_join(front_thread);
	tr_lmtp_server_free(&front);
	tr_lmtp_gateway_free(&gw);
	tr_lmtp_settings_clear(&settings);
	g_free(spec);
	server_stop(next);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_client_server_lmtp),
		cmocka_unit_test(test_client_server_smtp),
		cmocka_unit_test(test_client_unreachable),
		cmocka_unit_test(test_unix_socket),
		cmocka_unit_test(test_connection_limit),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_shutdown),
		cmocka_unit_test(test_gateway_forwards_with_headers),
		cmocka_unit_test(test_gateway_store_trouble),
		cmocka_unit_test(test_gateway_next_hop_trouble),
		cmocka_unit_test(test_gateway_classification_failure),
		cmocka_unit_test(test_gateway_store_only),
		cmocka_unit_test(test_concurrent_clients),
	};
	return cmocka_run_group_tests(tests, gateway_setup, gateway_teardown);
}
