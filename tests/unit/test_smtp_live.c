/* test_smtp_live.c — tr_smtp_send() against a real Postfix on loopback.
 *
 * Driven by tests/integration/smtp.sh, which starts Dovecot and Postfix
 * (tests/lib/servers.sh), exports the variables below, runs this program
 * once per Postfix configuration ("phase") and checks on the server side
 * what the results here claim: what was SENT is in the mailbox byte for
 * byte, what was refused never reached Postfix.  Without
 * TR_SMTP_TEST_PHASE every test is skipped (a plain unit-test run).
 *
 *   TR_SMTP_TEST_PHASE       main | notls | slow | down
 *   TR_SMTP_TEST_PORT        Postfix smtpd port
 *   TR_SMTP_TEST_CA          the harness CA (cert: DNS:localhost, IP:127.0.0.1)
 *   TR_SMTP_TEST_OUT         directory for what the script checks afterwards:
 *                              delivered  "USER MESSAGE-ID" per SENT message
 *                              absent     "MESSAGE-ID" per message that must not reach Postfix
 *                              *.eml      messages whose bytes are compared with the mailbox
 *   TR_SMTP_TEST_DOWN_PORT   a port nothing listens on
 *   TR_SMTP_TEST_OTHER_NAME  optional: another name of 127.0.0.1, not in the certificate
 *   TR_SMTP_TEST_PASSWORD    password of the Dovecot accounts (SASL)
 *   TR_SMTP_TEST_BENCH       set: measure messages per second (main phase)
 */
#include "testutil.h"
#include "channels/smtp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *phase_now(void)
{
	const char *p = getenv("TR_SMTP_TEST_PHASE");
	return p != NULL ? p : "";
}

/* Skip unless the script runs this phase. */
static void need_phase(const char *phase)
{
	if (strcmp(phase_now(), phase) != 0) {
		static bool said;
		if (*phase_now() == '\0' && !said) {
			said = true;
			printf("# TR_SMTP_TEST_PHASE not set: these run from tests/integration/smtp.sh\n");
		}
		skip();
	}
}

static const char *env(const char *name)
{
	const char *v = getenv(name);
	if (v == NULL || *v == '\0')
		fail_msg("%s is not set", name);
	return v;
}

static int test_port(void)
{
	return atoi(env("TR_SMTP_TEST_PORT"));
}

static void record(const char *file, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void record(const char *file, const char *fmt, ...)
{
	char *path = g_build_filename(env("TR_SMTP_TEST_OUT"), file, NULL);
	FILE *f = fopen(path, "a");
	if (f == NULL)
		fail_msg("cannot append to %s", path);
	va_list ap;
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	fclose(f);
	g_free(path);
}

static void save_eml(const char *name, const char *data)
{
	char *path = g_build_filename(env("TR_SMTP_TEST_OUT"), name, NULL);
	if (!g_file_set_contents(path, data, -1, NULL))
		fail_msg("cannot write %s", path);
	g_free(path);
}

/* A message with a Message-ID unique to this run and test. */
static char *message_id(const char *tag)
{
	return g_strdup_printf("%s.%d.%" G_GINT64_FORMAT "@triage.test", tag, (int)getpid(), g_get_real_time());
}

static char *make_message(const char *id, const char *to, const char *subject)
{
	return g_strdup_printf("From: Support <support@example.test>\r\n"
	                       "To: <%s>\r\n"
	                       "Subject: %s\r\n"
	                       "Date: Mon, 03 Mar 2025 08:00:00 +0000\r\n"
	                       "Message-ID: <%s>\r\n"
	                       "Auto-Submitted: auto-replied\r\n"
	                       "MIME-Version: 1.0\r\n"
	                       "Content-Type: text/plain; charset=UTF-8\r\n"
	                       "Content-Transfer-Encoding: quoted-printable\r\n"
	                       "\r\n"
	                       "Nous avons re=C3=A7u votre demande.\r\n"
	                       ".dot-stuffed line\r\n", to, subject, id);
}

typedef struct {
	const char *host;
	tr_smtp_tls tls;
	bool with_ca;
	bool verify;
	const char *user, *password;
	int port;
	int64_t final_timeout;
} client_opts;

static tr_smtp_client *client_with(const client_opts *o)
{
	tr_smtp_config config;
	tr_smtp_config_default(&config);
	g_free(config.host);
	config.host = g_strdup(o->host != NULL ? o->host : "localhost");
	config.limits.port = o->port != 0 ? o->port : test_port();
	config.limits.timeout = 10;
	config.limits.final_timeout = o->final_timeout != 0 ? o->final_timeout : 10;
	config.tls = o->tls;
	config.verify = o->verify;
	config.helo = g_strdup("gateway.triage.test");
	if (o->with_ca)
		config.ca_file = g_strdup(env("TR_SMTP_TEST_CA"));
	if (o->user != NULL) {
		config.auth_user = g_strdup(o->user);
		config.auth_password = g_strdup(o->password);
	}
	GError *error = NULL;
	tr_smtp_client *client = tr_smtp_client_new(&config, &error);
	if (client == NULL)
		fail_msg("tr_smtp_client_new: %s", error->message);
	tr_smtp_config_clear(&config);
	return client;
}

/* Send one message to rcpt (a Dovecot user at example.test, or any
 * address); record what the script must find. */
static tr_smtp_result *send_to(tr_smtp_client *client, const char *tag, const char *user,
                               tr_smtp_status want)
{
	char *id = message_id(tag);
	char *to = g_strdup_printf("%s@example.test", user);
	char *msg = make_message(id, to, tag);
	const char *rcpts[] = { to, NULL };
	tr_smtp_result *res = NULL;
	GError *error = NULL;
	bool sent = tr_smtp_send(client, "support@example.test", rcpts, msg, strlen(msg), &res, &error);
	printf("# %s: %s (%.1f ms, phase %s)\n", tag, res->summary, res->elapsed_us / 1000.0,
	       tr_smtp_phase_name(res->phase));
	if (res->status != want)
		fail_msg("%s: wanted %s, got %s", tag, tr_smtp_status_name(want), res->summary);
	assert_int_equal(sent, want == TR_SMTP_SENT);
	assert_true(sent == (error == NULL));
	g_clear_error(&error);
	if (want == TR_SMTP_SENT)
		record("delivered", "%s %s\n", user, id);
	else if (want != TR_SMTP_AMBIGUOUS)
		record("absent", "%s\n", id);
	g_free(msg);
	g_free(to);
	g_free(id);
	return res;
}

/* ---- phase main: Postfix with STARTTLS, SASL, recipient restrictions ---- */

static void test_tls_required_with_ca_delivers_intact(void **state)
{
	(void)state;
	need_phase("main");
	tr_smtp_client *client = client_with(&(client_opts){ .tls = TR_SMTP_TLS_REQUIRED, .with_ca = true, .verify = true });
	/* Two messages for alice, compared byte for byte by the script: a
	 * 7-bit one (RFC 2047 subject, quoted-printable UTF-8 body, a leading
	 * dot) and an 8-bit one (BODY=8BITMIME). */
	char *id = message_id("intact-qp");
	char *qp = g_strdup_printf("From: Support <support@example.test>\r\n"
	                           "To: Alice <alice@example.test>\r\n"
	                           "Subject: =?UTF-8?Q?Ticket_TKT-000042_=E2=80=94_re=C3=A7u?=\r\n"
	                           "Date: Mon, 03 Mar 2025 08:00:00 +0000\r\n"
	                           "Message-ID: <%s>\r\n"
	                           "Auto-Submitted: auto-replied\r\n"
	                           "X-Triage-Ticket: TKT-000042\r\n"
	                           "MIME-Version: 1.0\r\n"
	                           "Content-Type: text/plain; charset=UTF-8\r\n"
	                           "Content-Transfer-Encoding: quoted-printable\r\n"
	                           "\r\n"
	                           "Bonjour Alice,\r\n"
	                           "\r\n"
	                           "nous avons re=C3=A7u votre message =E2=80=94 merci.\r\n"
	                           ".this line starts with a dot\r\n"
	                           ".\r\n"
	                           "(the line above is a lone dot)\r\n", id);
	const char *alice[] = { "alice@example.test", NULL };
	tr_smtp_result *res = NULL;
	GError *error = NULL;
	if (!tr_smtp_send(client, "support@example.test", alice, qp, strlen(qp), &res, &error))
		fail_msg("%s", error->message);
	printf("# intact-qp: %s, TLS %s\n", res->summary, res->tls_cipher);
	assert_true(res->tls);
	assert_non_null(res->tls_cipher);
	assert_false(res->authenticated);
	assert_int_equal(res->phase, TR_SMTP_PHASE_REPLIED);
	assert_int_equal(res->recipients[0].code, 250);
	assert_string_equal(res->recipients[0].enhanced, "2.0.0");
	assert_non_null(strstr(res->queue_reply, "queued as"));
	save_eml("intact-qp.eml", qp);
	record("delivered", "alice %s\n", id);
	tr_smtp_result_free(&res);
	g_free(qp);
	g_free(id);

	id = message_id("intact-8bit");
	char *eight = g_strdup_printf("From: Support <support@example.test>\r\n"
	                              "To: Alice <alice@example.test>\r\n"
	                              "Subject: Ticket TKT-000043\r\n"
	                              "Date: Mon, 03 Mar 2025 08:00:00 +0000\r\n"
	                              "Message-ID: <%s>\r\n"
	                              "MIME-Version: 1.0\r\n"
	                              "Content-Type: text/plain; charset=UTF-8\r\n"
	                              "Content-Transfer-Encoding: 8bit\r\n"
	                              "\r\n"
	                              "Grüße, reçu — 受け付けました\r\n", id);
	if (!tr_smtp_send(client, "support@example.test", alice, eight, strlen(eight), &res, &error))
		fail_msg("%s", error->message);
	save_eml("intact-8bit.eml", eight);
	record("delivered", "alice %s\n", id);
	tr_smtp_result_free(&res);
	g_free(eight);
	g_free(id);
	tr_smtp_client_free(&client);
}

/* libESMTP cannot check an IP address; OpenSSL checks the IP SAN instead. */
static void test_tls_ip_literal_checked_by_openssl(void **state)
{
	(void)state;
	need_phase("main");
	tr_smtp_client *client = client_with(&(client_opts){ .host = "127.0.0.1", .tls = TR_SMTP_TLS_REQUIRED,
	                                                      .with_ca = true, .verify = true });
	tr_smtp_result *res = send_to(client, "ip-literal", "support", TR_SMTP_SENT);
	assert_true(res->tls);
	tr_smtp_result_free(&res);
	tr_smtp_client_free(&client);
}

static void test_tls_without_ca_refused(void **state)
{
	(void)state;
	need_phase("main");
	/* The system store does not know the harness CA. */
	tr_smtp_client *client = client_with(&(client_opts){ .tls = TR_SMTP_TLS_REQUIRED, .verify = true });
	tr_smtp_result *res = send_to(client, "no-ca", "support", TR_SMTP_TEMPORARY);
	assert_false(res->tls);
	assert_int_equal(res->phase, TR_SMTP_PHASE_CONNECTED);
	assert_non_null(strstr(res->recipients[0].reply, "STARTTLS failed: certificate of localhost:"));
	assert_non_null(strstr(res->recipients[0].reply, "unable to get local issuer certificate"));
	assert_non_null(strstr(res->recipients[0].reply, "nothing was sent"));
	tr_smtp_result_free(&res);
	tr_smtp_client_free(&client);
	/* tls = optional does not fall back to plain text after a bad certificate. */
	client = client_with(&(client_opts){ .tls = TR_SMTP_TLS_OPTIONAL, .verify = true });
	res = send_to(client, "no-ca-optional", "support", TR_SMTP_TEMPORARY);
	assert_non_null(strstr(res->recipients[0].reply, "certificate"));
	tr_smtp_result_free(&res);
	tr_smtp_client_free(&client);
}

/* verify = no (a warning in check-config): an unknown CA is accepted. */
static void test_tls_verify_no_accepts_anything(void **state)
{
	(void)state;
	need_phase("main");
	tr_smtp_client *client = client_with(&(client_opts){ .tls = TR_SMTP_TLS_REQUIRED, .verify = false });
	tr_smtp_result *res = send_to(client, "verify-no", "support", TR_SMTP_SENT);
	assert_true(res->tls);
	tr_smtp_result_free(&res);
	tr_smtp_client_free(&client);
}

static void test_tls_wrong_name_refused(void **state)
{
	(void)state;
	need_phase("main");
	const char *other = getenv("TR_SMTP_TEST_OTHER_NAME");
	if (other == NULL || *other == '\0') {
		printf("# no second name for 127.0.0.1 on this machine\n");
		skip();
	}
	tr_smtp_client *client = client_with(&(client_opts){ .host = other, .tls = TR_SMTP_TLS_REQUIRED,
	                                                      .with_ca = true, .verify = true });
	tr_smtp_result *res = send_to(client, "wrong-name", "support", TR_SMTP_TEMPORARY);
	assert_non_null(strstr(res->recipients[0].reply, "hostname mismatch"));
	tr_smtp_result_free(&res);
	tr_smtp_client_free(&client);
}

static void test_tls_optional_uses_tls(void **state)
{
	(void)state;
	need_phase("main");
	tr_smtp_client *client = client_with(&(client_opts){ .tls = TR_SMTP_TLS_OPTIONAL, .with_ca = true, .verify = true });
	tr_smtp_result *res = send_to(client, "optional-tls", "support", TR_SMTP_SENT);
	assert_true(res->tls);
	tr_smtp_result_free(&res);
	tr_smtp_client_free(&client);
}

static void test_tls_none_only_when_configured(void **state)
{
	(void)state;
	need_phase("main");
	/* The relay offers STARTTLS; tls = none was asked for, so plain text. */
	tr_smtp_client *client = client_with(&(client_opts){ .tls = TR_SMTP_TLS_NONE });
	tr_smtp_result *res = send_to(client, "tls-none", "support", TR_SMTP_SENT);
	assert_false(res->tls);
	tr_smtp_result_free(&res);
	tr_smtp_client_free(&client);
}

static void test_rejected_recipient_permanent_other_sent(void **state)
{
	(void)state;
	need_phase("main");
	tr_smtp_client *client = client_with(&(client_opts){ .tls = TR_SMTP_TLS_REQUIRED, .with_ca = true, .verify = true });
	char *id = message_id("reject-mixed");
	char *msg = make_message(id, "support@example.test", "reject-mixed");
	const char *rcpts[] = { "reject@example.test", "support@example.test", NULL };
	tr_smtp_result *res = NULL;
	GError *error = NULL;
	assert_false(tr_smtp_send(client, "support@example.test", rcpts, msg, strlen(msg), &res, &error));
	printf("# reject-mixed: %s\n", res->summary);
	assert_true(g_error_matches(error, TR_SMTP_ERROR, TR_SMTP_ERROR_PERMANENT));
	assert_non_null(strstr(error->message, "smtp relay localhost:"));
	g_clear_error(&error);
	assert_int_equal(res->status, TR_SMTP_PERMANENT);
	assert_int_equal(res->recipients[0].status, TR_SMTP_PERMANENT);
	assert_int_equal(res->recipients[0].code, 554);
	assert_string_equal(res->recipients[0].enhanced, "5.7.1");
	assert_non_null(strstr(res->recipients[0].reply, "Recipient address rejected"));
	assert_int_equal(res->recipients[1].status, TR_SMTP_SENT);
	assert_int_equal(res->n_sent, 1);
	assert_int_equal(res->n_permanent, 1);
	record("delivered", "support %s\n", id);
	tr_smtp_result_free(&res);
	g_free(msg);
	g_free(id);
	tr_smtp_client_free(&client);
}

static void test_deferred_recipient_temporary(void **state)
{
	(void)state;
	need_phase("main");
	tr_smtp_client *client = client_with(&(client_opts){ .tls = TR_SMTP_TLS_REQUIRED, .with_ca = true, .verify = true });
	tr_smtp_result *res = send_to(client, "defer", "defer", TR_SMTP_TEMPORARY);
	assert_int_equal(res->recipients[0].code / 100, 4);
	assert_int_equal(res->recipients[0].enhanced[0], '4');
	tr_smtp_result_free(&res);
	tr_smtp_client_free(&client);
}

static void test_port_without_listener_temporary(void **state)
{
	(void)state;
	need_phase("main");
	tr_smtp_client *client = client_with(&(client_opts){ .tls = TR_SMTP_TLS_REQUIRED, .with_ca = true, .verify = true,
	                                                      .port = atoi(env("TR_SMTP_TEST_DOWN_PORT")) });
	tr_smtp_result *res = send_to(client, "no-listener", "support", TR_SMTP_TEMPORARY);
	assert_int_equal(res->phase, TR_SMTP_PHASE_NONE);
	assert_non_null(strstr(res->recipients[0].reply, "cannot connect to localhost:"));
	assert_non_null(strstr(res->recipients[0].reply, "Connection refused"));
	tr_smtp_result_free(&res);
	tr_smtp_client_free(&client);
}

static void test_auth_plain_good_password(void **state)
{
	(void)state;
	need_phase("main");
	tr_smtp_client *client = client_with(&(client_opts){ .tls = TR_SMTP_TLS_REQUIRED, .with_ca = true, .verify = true,
	                                                      .user = "support", .password = env("TR_SMTP_TEST_PASSWORD") });
	tr_smtp_result *res = send_to(client, "auth-good", "support", TR_SMTP_SENT);
	assert_true(res->authenticated);
	tr_smtp_result_free(&res);
	tr_smtp_client_free(&client);
}

/* Postfix would take the mail from loopback without AUTH (mynetworks):
 * libESMTP goes on after a failed AUTH, tr_smtp must not. */
static void test_auth_bad_password_not_sent(void **state)
{
	(void)state;
	need_phase("main");
	tr_smtp_client *client = client_with(&(client_opts){ .tls = TR_SMTP_TLS_REQUIRED, .with_ca = true, .verify = true,
	                                                      .user = "support", .password = "wrong-password" });
	tr_smtp_result *res = send_to(client, "auth-bad", "support", TR_SMTP_TEMPORARY);
	assert_false(res->authenticated);
	assert_non_null(strstr(res->recipients[0].reply, "authentication as support failed: 535 5.7.8"));
	assert_non_null(strstr(res->recipients[0].reply, "message not sent"));
	tr_smtp_result_free(&res);
	tr_smtp_client_free(&client);
}

typedef struct {
	tr_smtp_client *client;
	int index, count;
	int sent;
	GString *ids;
} thread_job;

static gpointer sender_thread(gpointer arg)
{
	thread_job *job = arg;
	for (int i = 0; i < job->count; i++) {
		char *tag = g_strdup_printf("thread%d-%02d", job->index, i);
		char *id = message_id(tag);
		char *msg = make_message(id, "bob@example.test", tag);
		const char *rcpts[] = { "bob@example.test", NULL };
		if (tr_smtp_send(job->client, "support@example.test", rcpts, msg, strlen(msg), NULL, NULL)) {
			job->sent++;
			g_string_append_printf(job->ids, "bob %s\n", id);
		}
		g_free(msg);
		g_free(id);
		g_free(tag);
	}
	return NULL;
}

static void test_twenty_messages_from_two_threads(void **state)
{
	(void)state;
	need_phase("main");
	tr_smtp_client *client = client_with(&(client_opts){ .tls = TR_SMTP_TLS_REQUIRED, .with_ca = true, .verify = true,
	                                                      .user = "support", .password = env("TR_SMTP_TEST_PASSWORD") });
	thread_job jobs[2];
	GThread *threads[2];
	gint64 start = g_get_monotonic_time();
	for (int t = 0; t < 2; t++) {
		jobs[t] = (thread_job){ client, t, 10, 0, g_string_new(NULL) };
		threads[t] = g_thread_new("sender", sender_thread, &jobs[t]);
	}
	for (int t = 0; t < 2; t++)
		g_thread_join(threads[t]);
	double secs = (g_get_monotonic_time() - start) / 1e6;
	printf("# 20 messages from 2 threads (STARTTLS + AUTH each): %.2f s, %.1f msg/s\n", secs, 20 / secs);
	for (int t = 0; t < 2; t++) {
		assert_int_equal(jobs[t].sent, 10);
		record("delivered", "%s", jobs[t].ids->str);
		g_string_free(jobs[t].ids, TRUE);
	}
	tr_smtp_client_free(&client);
}

/* Messages per second to the local Postfix, one session each, to an
 * address Postfix keeps in its queue (no delivery work behind it). */
static void test_throughput(void **state)
{
	(void)state;
	need_phase("main");
	if (getenv("TR_SMTP_TEST_BENCH") == NULL) {
		printf("# TR_SMTP_TEST_BENCH not set: no throughput run\n");
		skip();
	}
	static const struct { const char *name; client_opts opts; } kinds[] = {
		{ "plain", { .tls = TR_SMTP_TLS_NONE } },
		{ "STARTTLS", { .tls = TR_SMTP_TLS_REQUIRED, .with_ca = true, .verify = true } },
	};
	for (size_t k = 0; k < G_N_ELEMENTS(kinds); k++) {
		tr_smtp_client *client = client_with(&kinds[k].opts);
		const int n = 30;
		gint64 start = g_get_monotonic_time();
		for (int i = 0; i < n; i++) {
			char *id = message_id("throughput");
			char *msg = make_message(id, "customer@example.org", "throughput");
			const char *rcpts[] = { "customer@example.org", NULL };
			GError *error = NULL;
			if (!tr_smtp_send(client, "support@example.test", rcpts, msg, strlen(msg), NULL, &error))
				fail_msg("%s", error->message);
			g_free(msg);
			g_free(id);
		}
		double secs = (g_get_monotonic_time() - start) / 1e6;
		printf("# throughput %s: %d messages in %.2f s, %.1f msg/s (one session each, 1 thread)\n",
		       kinds[k].name, n, secs, n / secs);
		tr_smtp_client_free(&client);
	}
}

/* ---- phase notls: Postfix without STARTTLS ---- */

static void test_notls_required_refused(void **state)
{
	(void)state;
	need_phase("notls");
	tr_smtp_client *client = client_with(&(client_opts){ .tls = TR_SMTP_TLS_REQUIRED, .with_ca = true, .verify = true });
	tr_smtp_result *res = send_to(client, "notls-required", "support", TR_SMTP_TEMPORARY);
	assert_non_null(strstr(res->recipients[0].reply, "does not offer STARTTLS and tls = required"));
	tr_smtp_result_free(&res);
	tr_smtp_client_free(&client);
}

static void test_notls_optional_plain(void **state)
{
	(void)state;
	need_phase("notls");
	tr_smtp_client *client = client_with(&(client_opts){ .tls = TR_SMTP_TLS_OPTIONAL, .with_ca = true, .verify = true });
	tr_smtp_result *res = send_to(client, "notls-optional", "support", TR_SMTP_SENT);
	assert_false(res->tls);
	tr_smtp_result_free(&res);
	tr_smtp_client_free(&client);
}

static void test_notls_none_plain(void **state)
{
	(void)state;
	need_phase("notls");
	tr_smtp_client *client = client_with(&(client_opts){ .tls = TR_SMTP_TLS_NONE });
	tr_smtp_result *res = send_to(client, "notls-none", "support", TR_SMTP_SENT);
	tr_smtp_result_free(&res);
	tr_smtp_client_free(&client);
}

/* ---- phase slow: Postfix sleeps before answering the end of data, relays
 * only for authenticated clients (loopback is not in mynetworks), and offers
 * no CHUNKING (libESMTP uses DATA) ---- */

/* The reply comes after we stopped waiting: AMBIGUOUS — and Postfix does
 * deliver it (the script checks), which is why AMBIGUOUS is not retried
 * blindly. */
static void test_slow_final_reply_ambiguous(void **state)
{
	(void)state;
	need_phase("slow");
	tr_smtp_client *client = client_with(&(client_opts){ .tls = TR_SMTP_TLS_REQUIRED, .with_ca = true, .verify = true,
	                                                      .final_timeout = 1 });
	tr_smtp_result *res = send_to(client, "slow-ambiguous", "support", TR_SMTP_AMBIGUOUS);
	assert_int_equal(res->phase, TR_SMTP_PHASE_END_OF_DATA);
	assert_non_null(strstr(res->recipients[0].reply, "no reply came"));
	char *line = g_strdup_printf("%s\n", res->summary);
	record("ambiguous", "%s", line);
	g_free(line);
	tr_smtp_result_free(&res);
	tr_smtp_client_free(&client);
}

/* The relay refuses to relay without AUTH: after a wrong password its
 * 554 5.7.1 is about us, not the recipient — TEMPORARY, not a bounce. */
static void test_slow_auth_bad_relay_denied_temporary(void **state)
{
	(void)state;
	need_phase("slow");
	tr_smtp_client *client = client_with(&(client_opts){ .tls = TR_SMTP_TLS_REQUIRED, .with_ca = true, .verify = true,
	                                                      .user = "support", .password = "wrong-password" });
	char *id = message_id("auth-bad-relay");
	char *msg = make_message(id, "customer@example.org", "auth-bad-relay");
	const char *rcpts[] = { "customer@example.org", NULL };
	tr_smtp_result *res = NULL;
	assert_false(tr_smtp_send(client, "support@example.test", rcpts, msg, strlen(msg), &res, NULL));
	printf("# auth-bad-relay: %s\n", res->summary);
	assert_int_equal(res->status, TR_SMTP_TEMPORARY);
	assert_non_null(strstr(res->recipients[0].reply, "authentication as support failed"));
	record("absent", "%s\n", id);
	tr_smtp_result_free(&res);
	g_free(msg);
	g_free(id);
	tr_smtp_client_free(&client);
}

/* ---- phase down: Postfix stopped ---- */

static void test_relay_stopped_temporary(void **state)
{
	(void)state;
	need_phase("down");
	tr_smtp_client *client = client_with(&(client_opts){ .tls = TR_SMTP_TLS_REQUIRED, .with_ca = true, .verify = true });
	tr_smtp_result *res = send_to(client, "relay-down", "support", TR_SMTP_TEMPORARY);
	assert_non_null(strstr(res->recipients[0].reply, "cannot connect to localhost:"));
	assert_non_null(strstr(res->recipients[0].reply, "Connection refused"));
	tr_smtp_result_free(&res);
	tr_smtp_client_free(&client);
}

#define T(f) cmocka_unit_test(f)
static const struct CMUnitTest main_tests[] = {
	T(test_tls_required_with_ca_delivers_intact), T(test_tls_ip_literal_checked_by_openssl),
	T(test_tls_without_ca_refused), T(test_tls_verify_no_accepts_anything), T(test_tls_wrong_name_refused), T(test_tls_optional_uses_tls),
	T(test_tls_none_only_when_configured), T(test_rejected_recipient_permanent_other_sent),
	T(test_deferred_recipient_temporary), T(test_port_without_listener_temporary),
	T(test_auth_plain_good_password), T(test_auth_bad_password_not_sent),
	T(test_twenty_messages_from_two_threads), T(test_throughput),
};
static const struct CMUnitTest notls_tests[] = {
	T(test_notls_required_refused), T(test_notls_optional_plain), T(test_notls_none_plain),
};
static const struct CMUnitTest slow_tests[] = {
	T(test_slow_final_reply_ambiguous), T(test_slow_auth_bad_relay_denied_temporary),
};
static const struct CMUnitTest down_tests[] = { T(test_relay_stopped_temporary) };

int main(void)
{
	static const struct { const char *phase; const struct CMUnitTest *tests; size_t n; } phases[] = {
		{ "main", main_tests, G_N_ELEMENTS(main_tests) },
		{ "notls", notls_tests, G_N_ELEMENTS(notls_tests) },
		{ "slow", slow_tests, G_N_ELEMENTS(slow_tests) },
		{ "down", down_tests, G_N_ELEMENTS(down_tests) },
	};
	/* One phase when the script says which; otherwise every test, each
	 * reporting a skip, under one TAP plan. */
	GArray *run = g_array_new(FALSE, FALSE, sizeof(struct CMUnitTest));
	for (size_t p = 0; p < G_N_ELEMENTS(phases); p++)
		if (*phase_now() == '\0' || strcmp(phase_now(), phases[p].phase) == 0)
			g_array_append_vals(run, phases[p].tests, (guint)phases[p].n);
	if (run->len == 0) {
		fprintf(stderr, "TR_SMTP_TEST_PHASE=%s: no such phase\n", phase_now());
		return 2;
	}
	int failed = _cmocka_run_group_tests("smtp_live", (const struct CMUnitTest *)(void *)run->data,
	                                     run->len, NULL, NULL);
	g_array_free(run, TRUE);
	return failed;
}
