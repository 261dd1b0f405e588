/* test_smtp.c — outbound SMTP (tr_smtp_*): configuration, retry schedule,
 * and result classification against a scripted SMTP server in a thread.
 *
 * The scripted server makes the cases a real relay will not produce on
 * demand: a connection closed or a reply withheld after the end of the data
 * (AMBIGUOUS), a relay that hangs up in the middle of the body (TEMPORARY,
 * and SIGPIPE must not kill us).  The same classification against real
 * Postfix is in test_smtp_live.c (tests/integration/smtp.sh). */
#include "testutil.h"
#include "channels/smtp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- a scripted SMTP server -------------------------------------------- */

typedef enum {
	END_REPLY_250,     /* the normal case */
	END_CLOSE,         /* read the final ".", close without a word */
	END_SILENT,        /* read the final ".", say nothing until the client leaves */
	END_REPLY_452,
	END_REPLY_554,
} end_mode;

typedef struct {
	int listen_fd;
	int port;
	GThread *thread;
	/* the script */
	const char *greeting;      /* default "220 fake ESMTP" */
	const char *extensions;    /* EHLO lines after the first, default 8BITMIME and SIZE */
	const char *mail_reply;    /* default "250 2.1.0 ok" */
	bool close_after_354;      /* hang up as soon as DATA is answered */
	end_mode end;
	/* what it saw */
	int connections;
	bool got_mail, got_end_of_data;
	int mail_commands;
	GString *mail_command;
	GString *rcpts;            /* "a@x b@y " */
	GString *data;             /* the message as received, dot-unstuffed */
} fake_server;

typedef struct {
	int fd;
	char buf[4096];
	size_t len, pos;
} conn_reader;

/* One line with its CRLF into line (cut at size); false at EOF or error. */
static bool read_line(conn_reader *r, char *line, size_t size)
{
	size_t n = 0;
	for (;;) {
		if (r->pos == r->len) {
			struct pollfd p = { r->fd, POLLIN, 0 };
			if (poll(&p, 1, 10000) <= 0)
				return false;
			ssize_t got = recv(r->fd, r->buf, sizeof r->buf, 0);
			if (got <= 0)
				return false;
			r->len = (size_t)got;
			r->pos = 0;
		}
		char c = r->buf[r->pos++];
		if (n + 1 < size)
			line[n++] = c;
		if (c == '\n') {
			line[n] = '\0';
			return true;
		}
	}
}

static void say(int fd, const char *text)
{
	size_t len = strlen(text);
	while (len > 0) {
		ssize_t n = send(fd, text, len, MSG_NOSIGNAL);
		if (n <= 0)
			return;
		text += n;
		len -= (size_t)n;
	}
}

static void serve_one(fake_server *s, int fd)
{
	conn_reader r = { .fd = fd };
	char line[2048];
	say(fd, s->greeting != NULL ? s->greeting : "220 fake ESMTP\r\n");
	if (s->greeting != NULL && s->greeting[0] != '2') {
		/* A refusing greeting: answer QUIT, then hang up. */
		while (read_line(&r, line, sizeof line))
			if (g_ascii_strncasecmp(line, "QUIT", 4) == 0) {
				say(fd, "221 bye\r\n");
				break;
			}
		return;
	}
	while (read_line(&r, line, sizeof line)) {
		if (g_ascii_strncasecmp(line, "EHLO", 4) == 0) {
			say(fd, "250-fake.example\r\n");
			say(fd, s->extensions != NULL ? s->extensions : "250-8BITMIME\r\n250 SIZE 100000000\r\n");
		} else if (g_ascii_strncasecmp(line, "MAIL FROM:", 10) == 0) {
			s->got_mail = true;
			s->mail_commands++;
			g_string_assign(s->mail_command, line);
			say(fd, s->mail_reply != NULL ? s->mail_reply : "250 2.1.0 ok\r\n");
		} else if (g_ascii_strncasecmp(line, "RCPT TO:<", 9) == 0) {
			char *end = strchr(line, '>');
			g_string_append_len(s->rcpts, line + 9, end != NULL ? end - (line + 9) : 0);
			g_string_append_c(s->rcpts, ' ');
			if (g_str_has_prefix(line + 9, "reject"))
				say(fd, "550 5.1.1 no such user here\r\n");
			else if (g_str_has_prefix(line + 9, "defer"))
				say(fd, "450 4.2.1 mailbox busy, try later\r\n");
			else
				say(fd, "250 2.1.5 ok\r\n");
		} else if (g_ascii_strncasecmp(line, "DATA", 4) == 0) {
			say(fd, "354 go ahead\r\n");
			if (s->close_after_354)
				return;
			while (read_line(&r, line, sizeof line)) {
				if (strcmp(line, ".\r\n") == 0) {
					s->got_end_of_data = true;
					break;
				}
				g_string_append(s->data, line[0] == '.' ? line + 1 : line);
			}
			if (!s->got_end_of_data)
				return;
			switch (s->end) {
			case END_REPLY_250: say(fd, "250 2.0.0 Ok: queued as FAKE123\r\n"); break;
			case END_REPLY_452: say(fd, "452 4.3.1 insufficient system storage\r\n"); break;
			case END_REPLY_554: say(fd, "554 5.6.0 message content rejected\r\n"); break;
			case END_CLOSE: return;
			case END_SILENT:
				/* Ignore everything (QUIT included) until the client hangs up. */
				while (read_line(&r, line, sizeof line)) {
				}
				return;
			}
		} else if (g_ascii_strncasecmp(line, "RSET", 4) == 0) {
			say(fd, "250 2.0.0 ok\r\n");
		} else if (g_ascii_strncasecmp(line, "QUIT", 4) == 0) {
			say(fd, "221 2.0.0 bye\r\n");
			return;
		} else {
			say(fd, "502 5.5.2 not implemented\r\n");
		}
	}
}

static gpointer fake_thread(gpointer arg)
{
	fake_server *s = arg;
	struct pollfd p = { s->listen_fd, POLLIN, 0 };
	if (poll(&p, 1, 10000) <= 0)
		return NULL;
	int fd = accept(s->listen_fd, NULL, NULL);
	if (fd < 0)
		return NULL;
	s->connections++;
	serve_one(s, fd);
	close(fd);
	return NULL;
}

/* A listening socket on 127.0.0.1 and a free port. */
static int listen_loopback(int *port_r)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = 0 };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(listen(fd, 8), 0);
	socklen_t len = sizeof a;
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	*port_r = ntohs(a.sin_port);
	return fd;
}

static fake_server *fake_new(void)
{
	fake_server *s = g_new0(fake_server, 1);
	s->listen_fd = listen_loopback(&s->port);
	s->mail_command = g_string_new(NULL);
	s->rcpts = g_string_new(NULL);
	s->data = g_string_new(NULL);
	return s;
}

static void fake_start(fake_server *s)
{
	s->thread = g_thread_new("fake-smtp", fake_thread, s);
}

/* Wait for the server thread (it ends with its connection) and free it. */
static void fake_free(fake_server **sp)
{
	fake_server *s = *sp;
	*sp = NULL;
	if (s->thread != NULL)
		g_thread_join(s->thread);
	close(s->listen_fd);
	g_string_free(s->mail_command, TRUE);
	g_string_free(s->rcpts, TRUE);
	g_string_free(s->data, TRUE);
	g_free(s);
}

/* A port nobody listens on (bound, never listened, closed). */
static int dead_port(void)
{
	int port;
	int fd = listen_loopback(&port);
	close(fd);
	return port;
}

/* ---- helpers ------------------------------------------------------------- */

#define assert_error(error, domain, code_) do { \
		assert_non_null(error); \
		if (!g_error_matches((error), (domain), (code_))) \
			fail_msg("error %d: %s", (error)->code, (error)->message); \
	} while (0)

static const char MESSAGE[] =
	"From: Support <support@example.test>\r\n"
	"To: <customer@example.org>\r\n"
	"Subject: =?UTF-8?Q?Ticket_TKT-000042_re=C3=A7u?=\r\n"
	"Date: Mon, 03 Mar 2025 08:00:00 +0000\r\n"
	"Message-ID: <tkt-42.ack@example.test>\r\n"
	"Auto-Submitted: auto-replied\r\n"
	"MIME-Version: 1.0\r\n"
	"Content-Type: text/plain; charset=UTF-8\r\n"
	"Content-Transfer-Encoding: quoted-printable\r\n"
	"\r\n"
	"Bonjour, nous avons re=C3=A7u votre message.\r\n"
	".a line that starts with a dot\r\n"
	"..and one with two\r\n"
	".\r\n"
	"the line above is a lone dot\r\n";

static tr_smtp_client *client_for(int port, tr_smtp_tls tls)
{
	tr_smtp_config config;
	tr_smtp_config_default(&config);
	g_free(config.host);
	config.host = g_strdup("127.0.0.1");
	config.limits.port = port;
	config.limits.timeout = 2;
	config.limits.final_timeout = 1;
	config.tls = tls;
	config.helo = g_strdup("test.example");
	GError *error = NULL;
	tr_smtp_client *client = tr_smtp_client_new(&config, &error);
	if (client == NULL)
		fail_msg("tr_smtp_client_new: %s", error->message);
	tr_smtp_config_clear(&config);
	return client;
}

static tr_smtp_result *send_one(tr_smtp_client *client, const char *const *rcpts, const char *data,
                                size_t len, bool expect_sent)
{
	tr_smtp_result *res = NULL;
	GError *error = NULL;
	bool sent = tr_smtp_send(client, "support@example.test", rcpts, data, len, &res, &error);
	assert_non_null(res);
	if (sent != expect_sent)
		fail_msg("sent=%d, summary: %s", sent, res->summary);
	if (sent) {
		assert_null(error);
	} else {
		assert_non_null(error);
		assert_string_equal(error->message, res->summary);
		g_error_free(error);
	}
	return res;
}

/* ---- classification against the scripted server ------------------------ */

static void test_sent_byte_for_byte(void **state)
{
	(void)state;
	fake_server *s = fake_new();
	fake_start(s);
	tr_smtp_client *client = client_for(s->port, TR_SMTP_TLS_NONE);
	const char *rcpts[] = { "customer@example.org", NULL };
	tr_smtp_result *res = send_one(client, rcpts, MESSAGE, strlen(MESSAGE), true);
	assert_int_equal(res->status, TR_SMTP_SENT);
	assert_int_equal(res->n_sent, 1);
	assert_int_equal(res->phase, TR_SMTP_PHASE_REPLIED);
	assert_int_equal(res->recipients[0].code, 250);
	assert_string_equal(res->recipients[0].enhanced, "");   /* no ENHANCEDSTATUSCODES offered */
	assert_string_equal(res->queue_reply, "250 2.0.0 Ok: queued as FAKE123");
	assert_false(res->tls);
	assert_non_null(strstr(res->summary, "smtp relay 127.0.0.1:"));
	assert_non_null(strstr(res->summary, ": sent to 1 recipient: 250 2.0.0 Ok: queued as FAKE123"));
	tr_smtp_result_free(&res);
	assert_null(res);
	fake_free(&s);
	tr_smtp_client_free(&client);
	assert_null(client);
}

static void test_sent_data_intact(void **state)
{
	(void)state;
	fake_server *s = fake_new();
	fake_start(s);
	tr_smtp_client *client = client_for(s->port, TR_SMTP_TLS_NONE);
	const char *rcpts[] = { "customer@example.org", NULL };
	tr_smtp_result *res = send_one(client, rcpts, MESSAGE, strlen(MESSAGE), true);
	tr_smtp_result_free(&res);
	/* The thread owns what it saw until it ends. */
	g_thread_join(s->thread);
	s->thread = NULL;
	/* Dot-stuffing undone by the server gives back exactly our bytes. */
	assert_string_equal(s->data->str, MESSAGE);
	assert_string_equal(s->rcpts->str, "customer@example.org ");
	assert_non_null(strstr(s->mail_command->str, "MAIL FROM:<support@example.test>"));
	assert_non_null(strstr(s->mail_command->str, "SIZE="));
	assert_null(strstr(s->mail_command->str, "BODY=8BITMIME"));   /* 7-bit message */
	fake_free(&s);
	tr_smtp_client_free(&client);
}

static void test_missing_final_crlf_added(void **state)
{
	(void)state;
	fake_server *s = fake_new();
	fake_start(s);
	tr_smtp_client *client = client_for(s->port, TR_SMTP_TLS_NONE);
	const char *rcpts[] = { "customer@example.org", NULL };
	char *msg = g_strdup_printf("%slast line without end", MESSAGE);
	tr_smtp_result *res = send_one(client, rcpts, msg, strlen(msg), true);
	tr_smtp_result_free(&res);
	g_thread_join(s->thread);
	s->thread = NULL;
	char *want = g_strdup_printf("%s\r\n", msg);
	assert_string_equal(s->data->str, want);
	g_free(want);
	g_free(msg);
	fake_free(&s);
	tr_smtp_client_free(&client);
}

/* "\n.\r\n" would slip past libESMTP's dot-stuffing (it only looks after
 * CRLF): a lenient relay could end the data there and read the rest as
 * commands.  Bare line ends go out as CRLF, so the dot is stuffed. */
static void test_bare_line_ends_cannot_smuggle(void **state)
{
	(void)state;
	fake_server *s = fake_new();
	fake_start(s);
	tr_smtp_client *client = client_for(s->port, TR_SMTP_TLS_NONE);
	const char *rcpts[] = { "customer@example.org", NULL };
#define HEADERS "From: <a@example.test>\r\nDate: Mon, 03 Mar 2025 08:00:00 +0000\r\n" \
	"Message-ID: <smuggle@example.test>\r\nSubject: smuggle\r\n\r\n"
	const char msg[] = HEADERS "hello\n.\r\nMAIL FROM:<evil@example.org>\r\nbare CR\rhere\r\n";
	tr_smtp_result *res = send_one(client, rcpts, msg, strlen(msg), true);
	assert_true(res->line_ends_fixed);
	tr_smtp_result_free(&res);
	g_thread_join(s->thread);
	s->thread = NULL;
	assert_string_equal(s->data->str, HEADERS "hello\r\n.\r\nMAIL FROM:<evil@example.org>\r\nbare CR\r\nhere\r\n");
#undef HEADERS
	assert_int_equal(s->mail_commands, 1);
	fake_free(&s);
	tr_smtp_client_free(&client);
}

static void test_8bit_declared(void **state)
{
	(void)state;
	fake_server *s = fake_new();
	fake_start(s);
	tr_smtp_client *client = client_for(s->port, TR_SMTP_TLS_NONE);
	const char *rcpts[] = { "customer@example.org", NULL };
	const char *msg = "From: <a@example.test>\r\nDate: Mon, 03 Mar 2025 08:00:00 +0000\r\n"
	                  "Message-ID: <8bit@example.test>\r\nContent-Type: text/plain; charset=UTF-8\r\n"
	                  "Content-Transfer-Encoding: 8bit\r\n\r\nreçu, merci — 受付\r\n";
	tr_smtp_result *res = send_one(client, rcpts, msg, strlen(msg), true);
	tr_smtp_result_free(&res);
	g_thread_join(s->thread);
	s->thread = NULL;
	assert_non_null(strstr(s->mail_command->str, "BODY=8BITMIME"));
	assert_string_equal(s->data->str, msg);
	fake_free(&s);
	tr_smtp_client_free(&client);
}

static void test_8bit_without_8bitmime_is_permanent(void **state)
{
	(void)state;
	fake_server *s = fake_new();
	s->extensions = "250 SIZE 100000000\r\n";
	fake_start(s);
	tr_smtp_client *client = client_for(s->port, TR_SMTP_TLS_NONE);
	const char *rcpts[] = { "customer@example.org", NULL };
	const char *msg = "Subject: x\r\n\r\nreçu\r\n";
	tr_smtp_result *res = send_one(client, rcpts, msg, strlen(msg), false);
	assert_int_equal(res->status, TR_SMTP_PERMANENT);
	assert_non_null(strstr(res->recipients[0].reply, "8BITMIME"));
	tr_smtp_result_free(&res);
	g_thread_join(s->thread);
	s->thread = NULL;
	assert_false(s->got_mail);
	fake_free(&s);
	tr_smtp_client_free(&client);
}

static void test_close_after_end_of_data_is_ambiguous(void **state)
{
	(void)state;
	fake_server *s = fake_new();
	s->end = END_CLOSE;
	fake_start(s);
	tr_smtp_client *client = client_for(s->port, TR_SMTP_TLS_NONE);
	const char *rcpts[] = { "customer@example.org", "other@example.org", NULL };
	GError *error = NULL;
	tr_smtp_result *res = NULL;
	assert_false(tr_smtp_send(client, "", rcpts, MESSAGE, strlen(MESSAGE), &res, &error));
	assert_error(error, TR_SMTP_ERROR, TR_SMTP_ERROR_AMBIGUOUS);
	g_error_free(error);
	assert_int_equal(res->status, TR_SMTP_AMBIGUOUS);
	assert_int_equal(res->n_ambiguous, 2);
	assert_int_equal(res->phase, TR_SMTP_PHASE_END_OF_DATA);
	assert_null(res->queue_reply);
	assert_non_null(strstr(res->summary, "ambiguous failure for customer@example.org"));
	assert_non_null(strstr(res->recipients[1].reply, "may or may not have been accepted"));
	tr_smtp_result_free(&res);
	g_thread_join(s->thread);
	s->thread = NULL;
	assert_true(s->got_end_of_data);
	assert_non_null(strstr(s->mail_command->str, "MAIL FROM:<>"));   /* null reverse path */
	fake_free(&s);
	tr_smtp_client_free(&client);
}

static void test_silence_after_end_of_data_is_ambiguous(void **state)
{
	(void)state;
	fake_server *s = fake_new();
	s->end = END_SILENT;
	fake_start(s);
	tr_smtp_client *client = client_for(s->port, TR_SMTP_TLS_NONE);   /* final_timeout 1 s */
	const char *rcpts[] = { "customer@example.org", NULL };
	gint64 start = g_get_monotonic_time();
	tr_smtp_result *res = send_one(client, rcpts, MESSAGE, strlen(MESSAGE), false);
	gint64 took = g_get_monotonic_time() - start;
	assert_int_equal(res->status, TR_SMTP_AMBIGUOUS);
	assert_non_null(strstr(res->recipients[0].reply, "timed out"));
	assert_true(took >= 900000 && took < 6000000);
	tr_smtp_result_free(&res);
	fake_free(&s);
	tr_smtp_client_free(&client);
}

/* The relay hangs up right after 354 while we write a 4 MB body: the end of
 * the data never left, so the relay cannot have it (TEMPORARY, not
 * AMBIGUOUS).  Writing into the closed socket raises SIGPIPE, which must
 * not kill the process even with the default disposition. */
static void test_hangup_during_body_is_temporary(void **state)
{
	(void)state;
	void (*old)(int) = signal(SIGPIPE, SIG_DFL);
	fake_server *s = fake_new();
	s->close_after_354 = true;
	fake_start(s);
	tr_smtp_client *client = client_for(s->port, TR_SMTP_TLS_NONE);
	size_t big = 4 * 1024 * 1024;
	GString *msg = g_string_new("Subject: big\r\n\r\n");
	while (msg->len < big)
		g_string_append(msg, "0123456789012345678901234567890123456789012345678901234567890123456789\r\n");
	const char *rcpts[] = { "customer@example.org", NULL };
	tr_smtp_result *res = send_one(client, rcpts, msg->str, msg->len, false);
	assert_int_equal(res->status, TR_SMTP_TEMPORARY);
	assert_int_equal(res->phase, TR_SMTP_PHASE_DATA);
	assert_non_null(strstr(res->recipients[0].reply, "lost while sending the message"));
	assert_non_null(strstr(res->recipients[0].reply, "its end was not sent"));
	tr_smtp_result_free(&res);
	g_string_free(msg, TRUE);
	fake_free(&s);
	tr_smtp_client_free(&client);
	sigset_t pending;
	sigpending(&pending);
	assert_false(sigismember(&pending, SIGPIPE));
	signal(SIGPIPE, old);
}

static void test_recipients_classified_one_by_one(void **state)
{
	(void)state;
	fake_server *s = fake_new();
	fake_start(s);
	tr_smtp_client *client = client_for(s->port, TR_SMTP_TLS_NONE);
	const char *rcpts[] = { "customer@example.org", "reject@example.org", "defer@example.org", NULL };
	GError *error = NULL;
	tr_smtp_result *res = NULL;
	assert_false(tr_smtp_send(client, "support@example.test", rcpts, MESSAGE, strlen(MESSAGE), &res, &error));
	assert_error(error, TR_SMTP_ERROR, TR_SMTP_ERROR_TEMPORARY);   /* the most urgent: retry defer@ */
	g_error_free(error);
	assert_int_equal(res->n_recipients, 3);
	assert_int_equal(res->recipients[0].status, TR_SMTP_SENT);
	assert_int_equal(res->recipients[1].status, TR_SMTP_PERMANENT);
	assert_int_equal(res->recipients[1].code, 550);
	assert_string_equal(res->recipients[1].reply, "5.1.1 no such user here");
	assert_int_equal(res->recipients[2].status, TR_SMTP_TEMPORARY);
	assert_int_equal(res->recipients[2].code, 450);
	assert_int_equal(res->n_sent, 1);
	assert_int_equal(res->n_permanent, 1);
	assert_int_equal(res->n_temporary, 1);
	assert_non_null(strstr(res->summary, "temporary failure for defer@example.org: 450"));
	assert_non_null(strstr(res->summary, "1 sent, 1 temporary, 1 permanent"));
	tr_smtp_result_free(&res);
	fake_free(&s);
	tr_smtp_client_free(&client);
}

static void test_final_reply_classes(void **state)
{
	(void)state;
	static const struct { end_mode end; tr_smtp_status want; int code; } cases[] = {
		{ END_REPLY_452, TR_SMTP_TEMPORARY, 452 },
		{ END_REPLY_554, TR_SMTP_PERMANENT, 554 },
	};
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		fake_server *s = fake_new();
		s->end = cases[i].end;
		fake_start(s);
		tr_smtp_client *client = client_for(s->port, TR_SMTP_TLS_NONE);
		const char *rcpts[] = { "customer@example.org", NULL };
		tr_smtp_result *res = send_one(client, rcpts, MESSAGE, strlen(MESSAGE), false);
		assert_int_equal(res->status, cases[i].want);
		assert_int_equal(res->recipients[0].code, cases[i].code);
		assert_int_equal(res->phase, TR_SMTP_PHASE_REPLIED);
		tr_smtp_result_free(&res);
		fake_free(&s);
		tr_smtp_client_free(&client);
	}
}

static void test_sender_refused_is_permanent(void **state)
{
	(void)state;
	fake_server *s = fake_new();
	s->mail_reply = "553 5.7.1 sender not allowed\r\n";
	fake_start(s);
	tr_smtp_client *client = client_for(s->port, TR_SMTP_TLS_NONE);
	const char *rcpts[] = { "customer@example.org", "other@example.org", NULL };
	tr_smtp_result *res = send_one(client, rcpts, MESSAGE, strlen(MESSAGE), false);
	assert_int_equal(res->status, TR_SMTP_PERMANENT);
	assert_int_equal(res->n_permanent, 2);
	assert_int_equal(res->recipients[1].code, 553);
	assert_int_equal(res->phase, TR_SMTP_PHASE_ENVELOPE);
	tr_smtp_result_free(&res);
	fake_free(&s);
	tr_smtp_client_free(&client);
}

static void test_greeting_421_is_temporary(void **state)
{
	(void)state;
	fake_server *s = fake_new();
	s->greeting = "421 4.3.2 too busy, come back later\r\n";
	fake_start(s);
	tr_smtp_client *client = client_for(s->port, TR_SMTP_TLS_NONE);
	const char *rcpts[] = { "customer@example.org", NULL };
	tr_smtp_result *res = send_one(client, rcpts, MESSAGE, strlen(MESSAGE), false);
	assert_int_equal(res->status, TR_SMTP_TEMPORARY);
	assert_int_equal(res->phase, TR_SMTP_PHASE_CONNECTED);
	assert_non_null(strstr(res->recipients[0].reply, "refused the session: 421 4.3.2 too busy"));
	tr_smtp_result_free(&res);
	fake_free(&s);
	tr_smtp_client_free(&client);
}

static void test_tls_required_but_not_offered(void **state)
{
	(void)state;
	fake_server *s = fake_new();
	fake_start(s);
	tr_smtp_config config;
	tr_smtp_config_default(&config);
	config.limits.port = s->port;   /* host localhost: a name, as TLS wants */
	config.limits.timeout = 2;
	config.verify = false;          /* no CA store needed: it never gets that far */
	GError *error = NULL;
	tr_smtp_client *client = tr_smtp_client_new(&config, &error);
	assert_non_null(client);
	tr_smtp_config_clear(&config);
	const char *rcpts[] = { "customer@example.org", NULL };
	tr_smtp_result *res = send_one(client, rcpts, MESSAGE, strlen(MESSAGE), false);
	assert_int_equal(res->status, TR_SMTP_TEMPORARY);
	assert_non_null(strstr(res->recipients[0].reply, "does not offer STARTTLS and tls = required"));
	tr_smtp_result_free(&res);
	g_thread_join(s->thread);
	s->thread = NULL;
	assert_false(s->got_mail);   /* never a word of the envelope in clear */
	fake_free(&s);
	tr_smtp_client_free(&client);
}

static void test_relay_down_is_temporary(void **state)
{
	(void)state;
	tr_smtp_client *client = client_for(dead_port(), TR_SMTP_TLS_NONE);
	const char *rcpts[] = { "customer@example.org", NULL };
	tr_smtp_result *res = send_one(client, rcpts, MESSAGE, strlen(MESSAGE), false);
	assert_int_equal(res->status, TR_SMTP_TEMPORARY);
	assert_int_equal(res->phase, TR_SMTP_PHASE_NONE);
	assert_non_null(strstr(res->recipients[0].reply, "cannot connect to 127.0.0.1:"));
	assert_non_null(strstr(res->recipients[0].reply, "refused"));
	tr_smtp_result_free(&res);
	tr_smtp_client_free(&client);
}

/* Addresses come from customers and end up in RCPT TO:<…>. */
static void test_bad_addresses_never_reach_the_wire(void **state)
{
	(void)state;
	fake_server *s = fake_new();
	fake_start(s);
	tr_smtp_client *client = client_for(s->port, TR_SMTP_TLS_NONE);
	const char *rcpts[] = {
		"customer@example.org",
		"x@example.org>\r\nRCPT TO:<victim@example.org",
		"two words@example.org",
		"no-at-sign",
		"rené@example.org",
		"",
		NULL,
	};
	tr_smtp_result *res = send_one(client, rcpts, MESSAGE, strlen(MESSAGE), false);
	assert_int_equal(res->status, TR_SMTP_PERMANENT);
	assert_int_equal(res->n_sent, 1);
	assert_int_equal(res->n_permanent, 5);
	for (size_t i = 1; i < 6; i++) {
		assert_int_equal(res->recipients[i].status, TR_SMTP_PERMANENT);
		assert_int_equal(res->recipients[i].code, 0);
		assert_non_null(strstr(res->recipients[i].reply, "recipient address refused"));
	}
	tr_smtp_result_free(&res);
	g_thread_join(s->thread);
	s->thread = NULL;
	assert_string_equal(s->rcpts->str, "customer@example.org ");
	fake_free(&s);

	/* A bad sender, a message too big, no recipients: no connection at all
	 * (the port is dead: a connection attempt would say so). */
	tr_smtp_config config;
	tr_smtp_config_default(&config);
	config.limits.port = dead_port();
	config.limits.max_message_bytes = 1024;
	config.tls = TR_SMTP_TLS_NONE;
	tr_smtp_client *small = tr_smtp_client_new(&config, NULL);
	tr_smtp_config_clear(&config);
	const char *one[] = { "customer@example.org", NULL };
	GError *error = NULL;
	assert_false(tr_smtp_send(small, "bad sender@x", one, "x\r\n", 3, &res, &error));
	assert_error(error, TR_SMTP_ERROR, TR_SMTP_ERROR_PERMANENT);
	g_clear_error(&error);
	assert_non_null(strstr(res->recipients[0].reply, "sender address 'bad sender@x' refused"));
	assert_int_equal(res->phase, TR_SMTP_PHASE_NONE);
	tr_smtp_result_free(&res);
	char *big = g_malloc0(2048);
	memset(big, 'a', 2047);
	assert_false(tr_smtp_send(small, "", one, big, 2047, &res, NULL));
	assert_int_equal(res->status, TR_SMTP_PERMANENT);
	assert_non_null(strstr(res->recipients[0].reply, "over max_message_bytes (1024)"));
	tr_smtp_result_free(&res);
	g_free(big);
	const char *none[] = { NULL };
	assert_false(tr_smtp_send(small, "", none, "x", 1, NULL, &error));
	assert_error(error, TR_SMTP_ERROR, TR_SMTP_ERROR_PERMANENT);
	g_clear_error(&error);
	tr_smtp_client_free(&small);
	tr_smtp_client_free(&client);
}

/* ---- configuration --------------------------------------------------------- */

static bool load(const char *text, tr_smtp_config *config, char **messages_r)
{
	tr_diag *diag = tr_diag_new();
	tr_conf *conf = tr_conf_load_data("triage.conf", text, strlen(text), diag);
	assert_non_null(conf);
	bool ok = tr_smtp_config_load(config, conf, diag);
	*messages_r = tr_diag_join(diag);
	tr_conf_free(&conf);
	tr_diag_free(&diag);
	return ok;
}

static void test_config_defaults(void **state)
{
	(void)state;
	tr_smtp_config c;
	char *msgs;
	assert_true(load("[store]\npath = x.db\n", &c, &msgs));
	assert_string_equal(msgs, "");
	g_free(msgs);
	assert_string_equal(c.host, "localhost");
	assert_int_equal(c.limits.port, 25);
	assert_int_equal(c.tls, TR_SMTP_TLS_REQUIRED);
	assert_true(c.verify);
	assert_null(c.ca_file);
	assert_null(c.auth_user);
	assert_int_equal(c.limits.timeout, 30);
	assert_int_equal(c.limits.final_timeout, 300);
	assert_int_equal(c.limits.ambiguous_retries, 1);
	GString *out = g_string_new(NULL);
	tr_smtp_config_print(&c, out);
	assert_non_null(strstr(out->str, "tls = required\n"));
	assert_non_null(strstr(out->str, "ca_file = (system store)\n"));
	assert_non_null(strstr(out->str, "max_message_bytes = 10485760  #"));
	g_string_free(out, TRUE);
	tr_smtp_config_clear(&c);
}

static void test_config_full(void **state)
{
	(void)state;
	char *dir = g_dir_make_tmp("tr-smtp-XXXXXX", NULL);
	char *pwfile = g_build_filename(dir, "smtp.password", NULL);
	char *cafile = g_build_filename(dir, "ca.pem", NULL);
	assert_true(g_file_set_contents(pwfile, "s3cret pass\n", -1, NULL));
	chmod(pwfile, 0600);
	assert_true(g_file_set_contents(cafile, "not really a CA\n", -1, NULL));
	char *text = g_strdup_printf("[smtp]\nhost = relay.example.net\nport = 587\ntls = required\n"
	                             "ca_file = %s\nauth_user = triage@example.net\nauth_password_file = smtp.password\n"
	                             "helo = gw.example.net\ntimeout = 1m\nfinal_timeout = 10m\n"
	                             "max_message_bytes = 20M\nretry_base = 30s\nretry_max = 2h\n"
	                             "ambiguous_delay = 2h\nambiguous_retries = 0\n", cafile);
	/* auth_password_file is relative to the config file's directory. */
	char *conf_path = g_build_filename(dir, "triage.conf", NULL);
	assert_true(g_file_set_contents(conf_path, text, -1, NULL));
	tr_diag *diag = tr_diag_new();
	tr_conf *conf = tr_conf_load(conf_path, diag);
	assert_non_null(conf);
	tr_smtp_config c;
	assert_true(tr_smtp_config_load(&c, conf, diag));
	assert_int_equal(tr_diag_error_count(diag), 0);
	assert_int_equal(tr_diag_warning_count(diag), 0);
	assert_string_equal(c.host, "relay.example.net");
	assert_int_equal(c.limits.port, 587);
	assert_string_equal(c.ca_file, cafile);
	assert_string_equal(c.auth_user, "triage@example.net");
	assert_string_equal(c.auth_password, "s3cret pass");
	assert_string_equal(c.helo, "gw.example.net");
	assert_int_equal(c.limits.timeout, 60);
	assert_int_equal(c.limits.final_timeout, 600);
	assert_int_equal(c.limits.max_message_bytes, 20 * 1024 * 1024);
	assert_int_equal(c.limits.retry_base, 30);
	assert_int_equal(c.limits.retry_max, 7200);
	assert_int_equal(c.limits.ambiguous_retries, 0);
	GString *out = g_string_new(NULL);
	tr_smtp_config_print(&c, out);
	assert_null(strstr(out->str, "s3cret"));
	assert_non_null(strstr(out->str, "auth_password = (set)"));
	g_string_free(out, TRUE);

	/* A CA file that holds no certificate: the client refuses to start. */
	GError *error = NULL;
	assert_null(tr_smtp_client_new(&c, &error));
	assert_error(error, TR_SMTP_ERROR, TR_SMTP_ERROR_CONFIG);
	assert_non_null(strstr(error->message, "smtp relay relay.example.net:587: cannot load CA certificates from"));
	g_error_free(error);
	tr_smtp_config_clear(&c);
	tr_conf_free(&conf);

	/* A password file others may read: a warning, still loaded. */
	chmod(pwfile, 0644);
	conf = tr_conf_load(conf_path, diag);
	assert_true(tr_smtp_config_load(&c, conf, diag));
	assert_int_equal(tr_diag_warning_count(diag), 1);
	char *msgs = tr_diag_join(diag);
	assert_non_null(strstr(msgs, "triage.conf:7: warning: [smtp] auth_password_file"));
	assert_non_null(strstr(msgs, "chmod 600"));
	g_free(msgs);
	tr_smtp_config_clear(&c);
	tr_conf_free(&conf);
	tr_diag_free(&diag);

	unlink(pwfile);
	unlink(cafile);
	unlink(conf_path);
	rmdir(dir);
	g_free(conf_path);
	g_free(text);
	g_free(cafile);
	g_free(pwfile);
	g_free(dir);
}

static void test_config_errors(void **state)
{
	(void)state;
	static const struct { const char *text; const char *want; } cases[] = {
		{ "[smtp]\ntls = sometimes\n", "triage.conf:2: error: [smtp] tls: 'sometimes' is not required, optional or none" },
		{ "[smtp]\nport = 0\n", "triage.conf:2: error: [smtp] port: 0 is out of range 1..65535" },
		{ "[smtp]\ntimeout = soon\n", "triage.conf:2: error: [smtp] timeout: 'soon' is not a valid number" },
		{ "[smtp]\nhost = ::1\n", "IPv6 literals are not supported" },
		{ "[smtp]\nhost = relay example\n", "is not a host name" },
		{ "[smtp]\ntls = none\nauth_user = u\nauth_password = p\n",
		  "triage.conf:3: error: [smtp] auth_user: AUTH needs tls = required" },
		{ "[smtp]\ntls = optional\nauth_user = u\nauth_password = p\n", "AUTH needs tls = required" },
		{ "[smtp]\nauth_user = u\n", "needs auth_password or auth_password_file" },
		{ "[smtp]\nauth_password = p\n", "a password without auth_user" },
		{ "[smtp]\nauth_user = u\nauth_password = p\nauth_password_file = /nonexistent\n", "not both" },
		{ "[smtp]\nauth_user = u\nauth_password_file = /nonexistent/pw\n", "/nonexistent/pw" },
		{ "[smtp]\nca_file = /nonexistent/ca.pem\n", "triage.conf:2: error: [smtp] ca_file: /nonexistent/ca.pem: no such file" },
		{ "[smtp]\nhelo = bad_name!\n", "is not a domain name or [address]" },
		{ "[smtp]\nretry_base = 2h\nretry_max = 1h\n", "is larger than retry_max" },
		{ "[smtp]\nverify = maybe\n", "'maybe' is not yes/no" },
	};
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		tr_smtp_config c;
		char *msgs;
		bool ok = load(cases[i].text, &c, &msgs);
		if (ok || strstr(msgs, cases[i].want) == NULL)
			fail_msg("case %zu: ok=%d, messages:\n%s\nwanted: %s", i, ok, msgs, cases[i].want);
		g_free(msgs);
		tr_smtp_config_clear(&c);
	}
	/* Warnings, not errors: an unknown key, verify = no. */
	tr_smtp_config c;
	char *msgs;
	assert_true(load("[smtp]\nhostname = x\nverify = no\n", &c, &msgs));
	assert_non_null(strstr(msgs, "triage.conf:2: warning: [smtp] unknown key 'hostname'"));
	assert_non_null(strstr(msgs, "triage.conf:3: warning: [smtp] verify = no"));
	assert_false(c.verify);
	g_free(msgs);
	tr_smtp_config_clear(&c);
}

/* ---- the retry schedule ---------------------------------------------------- */

static tr_smtp_limits default_limits(void)
{
	tr_smtp_limits l;
	tr_conftab_defaults(tr_smtp_limits_table, &l);
	return l;
}

static void test_retry_final_classes(void **state)
{
	(void)state;
	tr_smtp_limits l = default_limits();
	tr_smtp_retry_state st = { 1, 0, 0 };
	tr_smtp_retry_decision d = tr_smtp_retry_next(&l, TR_SMTP_SENT, &st, 7);
	assert_false(d.retry);
	assert_false(d.marked);
	d = tr_smtp_retry_next(&l, TR_SMTP_PERMANENT, &st, 7);
	assert_false(d.retry);
	assert_string_equal(d.reason, "refused permanently");
}

static void test_retry_backoff_doubles_with_jitter(void **state)
{
	(void)state;
	tr_smtp_limits l = default_limits();   /* base 60 s, max 3600 s */
	int64_t want_full[] = { 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600 };
	for (unsigned a = 1; a <= G_N_ELEMENTS(want_full); a++) {
		tr_smtp_retry_state st = { a, 0, 600 };
		int64_t full = want_full[a - 1];
		tr_smtp_retry_decision lo = tr_smtp_retry_next(&l, TR_SMTP_TEMPORARY, &st, 0);
		tr_smtp_retry_decision hi = tr_smtp_retry_next(&l, TR_SMTP_TEMPORARY, &st, UINT32_MAX);
		assert_true(lo.retry && hi.retry);
		assert_false(lo.marked);
		assert_int_equal(lo.delay, full - full / 2);
		assert_true(hi.delay >= full - full / 2 && hi.delay <= full);
		for (uint32_t r = 0; r < 1000; r += 37) {
			tr_smtp_retry_decision d = tr_smtp_retry_next(&l, TR_SMTP_TEMPORARY, &st, r);
			assert_true(d.delay >= full / 2 && d.delay <= full);
		}
	}
	/* A huge attempt count does not overflow. */
	tr_smtp_retry_state st = { 4000000000u, 0, 600 };
	tr_smtp_retry_decision d = tr_smtp_retry_next(&l, TR_SMTP_TEMPORARY, &st, 12345);
	assert_true(d.retry);
	assert_true(d.delay >= 1800 && d.delay <= 3600);
	/* Tiny base: never zero. */
	l.retry_base = 1;
	st = (tr_smtp_retry_state){ 1, 0, 0 };
	d = tr_smtp_retry_next(&l, TR_SMTP_TEMPORARY, &st, 0);
	assert_int_equal(d.delay, 1);
}

static void test_retry_gives_up(void **state)
{
	(void)state;
	tr_smtp_limits l = default_limits();
	tr_smtp_retry_state st = { 50, 0, 5 * 86400 };
	tr_smtp_retry_decision d = tr_smtp_retry_next(&l, TR_SMTP_TEMPORARY, &st, 1);
	assert_false(d.retry);
	assert_non_null(strstr(d.reason, "given up"));
	st.age = 5 * 86400 - 1;
	assert_true(tr_smtp_retry_next(&l, TR_SMTP_TEMPORARY, &st, 1).retry);
}

static void test_retry_ambiguous_once_marked(void **state)
{
	(void)state;
	tr_smtp_limits l = default_limits();   /* one resend after 1 h */
	tr_smtp_retry_state st = { 1, 1, 0 };
	tr_smtp_retry_decision d = tr_smtp_retry_next(&l, TR_SMTP_AMBIGUOUS, &st, 0);
	assert_true(d.retry);
	assert_true(d.marked);
	assert_int_equal(d.delay, 3600);
	d = tr_smtp_retry_next(&l, TR_SMTP_AMBIGUOUS, &st, UINT32_MAX);
	assert_true(d.delay >= 3600 && d.delay <= 3960);
	/* The resend failed temporarily: keep retrying, still marked. */
	st = (tr_smtp_retry_state){ 2, 1, 3700 };
	d = tr_smtp_retry_next(&l, TR_SMTP_TEMPORARY, &st, 0);
	assert_true(d.retry);
	assert_true(d.marked);
	/* The resend was ambiguous again: final, a human decides. */
	st = (tr_smtp_retry_state){ 2, 2, 3700 };
	d = tr_smtp_retry_next(&l, TR_SMTP_AMBIGUOUS, &st, 0);
	assert_false(d.retry);
	assert_non_null(strstr(d.reason, "human"));
	/* ambiguous_retries = 0: never resend. */
	l.ambiguous_retries = 0;
	st = (tr_smtp_retry_state){ 1, 1, 0 };
	assert_false(tr_smtp_retry_next(&l, TR_SMTP_AMBIGUOUS, &st, 0).retry);
	/* A later success is not marked. */
	st = (tr_smtp_retry_state){ 3, 1, 9000 };
	assert_false(tr_smtp_retry_next(&l, TR_SMTP_SENT, &st, 0).marked);
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(tr_smtp_status_name(TR_SMTP_AMBIGUOUS), "ambiguous");
	assert_string_equal(tr_smtp_tls_name(TR_SMTP_TLS_OPTIONAL), "optional");
	assert_string_equal(tr_smtp_phase_name(TR_SMTP_PHASE_END_OF_DATA), "end of data sent, no reply");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sent_byte_for_byte),
		cmocka_unit_test(test_sent_data_intact),
		cmocka_unit_test(test_missing_final_crlf_added),
		cmocka_unit_test(test_bare_line_ends_cannot_smuggle),
		cmocka_unit_test(test_8bit_declared),
		cmocka_unit_test(test_8bit_without_8bitmime_is_permanent),
		cmocka_unit_test(test_close_after_end_of_data_is_ambiguous),
		cmocka_unit_test(test_silence_after_end_of_data_is_ambiguous),
		cmocka_unit_test(test_hangup_during_body_is_temporary),
		cmocka_unit_test(test_recipients_classified_one_by_one),
		cmocka_unit_test(test_final_reply_classes),
		cmocka_unit_test(test_sender_refused_is_permanent),
		cmocka_unit_test(test_greeting_421_is_temporary),
		cmocka_unit_test(test_tls_required_but_not_offered),
		cmocka_unit_test(test_relay_down_is_temporary),
		cmocka_unit_test(test_bad_addresses_never_reach_the_wire),
		cmocka_unit_test(test_config_defaults),
		cmocka_unit_test(test_config_full),
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_retry_final_classes),
		cmocka_unit_test(test_retry_backoff_doubles_with_jitter),
		cmocka_unit_test(test_retry_gives_up),
		cmocka_unit_test(test_retry_ambiguous_once_marked),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
