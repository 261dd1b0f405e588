/*
 * test_imap_live.c — the IMAP session layer against a real Dovecot.
 *
 * Runs only under tests/integration/imap.sh, which starts Dovecot with
 * the harness (tests/lib/servers.sh) and exports:
 *
 *   TR_IMAP_TEST_HOST        127.0.0.1
 *   TR_IMAP_TEST_PORT        IMAP with STARTTLS (and plaintext)
 *   TR_IMAP_TEST_IMAPS_PORT  IMAP over implicit TLS
 *   TR_IMAP_TEST_CA          the harness CA ($SRV_CA)
 *   TR_IMAP_TEST_PASSWORD    password of every test account
 *   TR_IMAP_TEST_DIR         a directory for message files the script can read
 *   TR_IMAP_TEST_CTL         directory with the FIFOs req and resp: the
 *                            script's side of the harness (LMTP delivery,
 *                            imap_flags, imap_count, Dovecot restart, ...)
 *
 * Without them (a plain unit-test run) every test reports a skip.
 *
 * Each request to the script is one line on req ("deliver USER FILE",
 * "flags USER MAILBOX SEQ", "count USER MAILBOX", "restart",
 * "authlog USER", "uidvalidity USER MAILBOX VALUE"); the reply on resp is
 * "ok" or "fail" on the first line and the command's output after it.
 */
#include "testutil.h"
#include "channels/imap.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *env_host, *env_port, *env_imaps_port, *env_ca, *env_password, *env_dir, *env_ctl;
static GMutex ctl_lock;
static unsigned message_counter;

static bool live(void)
{
	return env_host != NULL && env_port != NULL && env_imaps_port != NULL && env_ca != NULL &&
	       env_password != NULL && env_dir != NULL && env_ctl != NULL;
}

#define REQUIRE_LIVE() \
	do { \
		if (!live()) { \
			skip(); \
			return; \
		} \
	} while (0)

static double now_seconds(void)
{
	return (double)g_get_monotonic_time() / G_USEC_PER_SEC;
}

/* ---- the script's side of the harness ---- */

static bool ctl_try(char **output_r, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static bool ctl_try(char **output_r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *request = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	g_mutex_lock(&ctl_lock);
	char *req_path = g_build_filename(env_ctl, "req", NULL);
	char *resp_path = g_build_filename(env_ctl, "resp", NULL);
	char *line = g_strconcat(request, "\n", NULL);
	int fd = open(req_path, O_WRONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	/* one write of less than PIPE_BUF: atomic */
	assert_int_equal(write(fd, line, strlen(line)), (ssize_t)strlen(line));
	close(fd);
	char *reply = NULL;
	gsize len = 0;
	GError *error = NULL;
	if (!g_file_get_contents(resp_path, &reply, &len, &error))
		fail_msg("control reply for '%s': %s", request, error->message);
	g_mutex_unlock(&ctl_lock);
	bool ok = strncmp(reply, "ok\n", 3) == 0;
	char *nl = strchr(reply, '\n');
	char *output = g_strdup(nl != NULL ? nl + 1 : "");
	g_strchomp(output);
	if (!ok)
		print_message("# control '%s' failed: %s\n", request, output);
	if (output_r != NULL)
		*output_r = output;
	else
		g_free(output);
	g_free(reply);
	g_free(line);
	g_free(req_path);
	g_free(resp_path);
	g_free(request);
	return ok;
}

static char *ctl(const char *what, const char *arg1, const char *arg2, const char *arg3)
{
	char *out = NULL;
	bool ok = ctl_try(&out, "%s%s%s%s%s%s%s", what, arg1 ? " " : "", arg1 ? arg1 : "",
	                  arg2 ? " " : "", arg2 ? arg2 : "", arg3 ? " " : "", arg3 ? arg3 : "");
	if (!ok)
		fail_msg("control request '%s' failed: %s", what, out);
	return out;
}

/* A message file of about size bytes; returns its path (g_free). */
static char *make_message(const char *subject, size_t size)
{
	unsigned n = g_atomic_int_add(&message_counter, 1);
	char *path = g_strdup_printf("%s/msg-%u.eml", env_dir, n);
	GString *m = g_string_new(NULL);
	g_string_append_printf(m, "From: Customer <customer@example.org>\r\n"
	                          "To: support@example.test\r\n"
	                          "Subject: %s\r\n"
	                          "Message-ID: <live-%u-%d@example.org>\r\n"
	                          "Date: Mon, 2 Jun 2025 10:00:00 +0000\r\n"
	                          "\r\n"
	                          "The printer is on fire.\r\n", subject, n, (int)getpid());
	while (m->len < size)
		g_string_append(m, "More text about the printer, which keeps burning.\r\n");
	GError *error = NULL;
	if (!g_file_set_contents(path, m->str, (gssize)m->len, &error))
		fail_msg("%s: %s", path, error->message);
	chmod(path, 0644);
	g_string_free(m, TRUE);
	return path;
}

static void deliver(const char *user, const char *subject, size_t size)
{
	char *path = make_message(subject, size);
	g_free(ctl("deliver", user, path, NULL));
	g_free(path);
}

static char *flags_of(const char *user, const char *mailbox, unsigned seq)
{
	char num[16];
	snprintf(num, sizeof(num), "%u", seq);
	return ctl("flags", user, mailbox, num);
}

static int count_of(const char *user, const char *mailbox)
{
	char *out = ctl("count", user, mailbox, NULL);
	int n = atoi(out);
	g_free(out);
	return n;
}

/* ---- sessions ---- */

static void config_for(tr_imap_config *c, const char *user, tr_imap_security security)
{
	tr_imap_config_init(c);
	c->host = g_strdup(env_host);
	c->user = g_strdup(user);
	c->password = g_strdup(env_password);
	c->security = security;
	c->ca_file = g_strdup(env_ca);
	c->limits.port = atoi(security == TR_IMAP_SECURITY_IMPLICIT ? env_imaps_port : env_port);
	c->limits.timeout = 10;
}

typedef struct {
	GString *sent;      /* everything the client sent */
	GString *received;
} trace_log;

static void trace(char direction, const char *data, size_t len, void *context)
{
	trace_log *log = context;
	g_string_append_len(direction == '>' ? log->sent : log->received, data, (gssize)len);
}

static trace_log *trace_new(void)
{
	trace_log *t = g_new0(trace_log, 1);
	t->sent = g_string_new(NULL);
	t->received = g_string_new(NULL);
	return t;
}

static void trace_free(trace_log *t)
{
	g_string_free(t->sent, TRUE);
	g_string_free(t->received, TRUE);
	g_free(t);
}

/* Did the client try to log in?  LOGIN goes out as private data. */
static bool login_sent(const trace_log *t)
{
	return strstr(t->sent->str, "<private>") != NULL || strstr(t->sent->str, "LOGIN") != NULL;
}

static tr_imap *connect_ok(tr_imap_config *c, tr_imap_mailbox *box)
{
	tr_imap *s = tr_imap_new(c);
	GError *error = NULL;
	tr_imap_mailbox local;
	if (!tr_imap_connect(s, 0, box != NULL ? box : &local, &error))
		fail_msg("connect: %s", error->message);
	return s;
}

static void expect_error(const GError *error, tr_imap_error_code code, const char *substring)
{
	assert_non_null(error);
	if (error->domain != TR_IMAP_ERROR || error->code != (int)code)
		fail_msg("expected code %d, got %d: %s", (int)code, error->code, error->message);
	if (substring != NULL && strstr(error->message, substring) == NULL)
		fail_msg("'%s' not in: %s", substring, error->message);
	print_message("# %s\n", error->message);
}

static GArray *search(tr_imap *s, tr_imap_search_kind kind, uint32_t min_uid)
{
	GArray *uids = NULL;
	GError *error = NULL;
	if (!tr_imap_search(s, kind, min_uid, &uids, &error))
		fail_msg("search: %s", error->message);
	return uids;
}

/* ---- TLS ---- */

static void test_implicit_tls_with_ca(void **state)
{
	(void)state;
	REQUIRE_LIVE();
	tr_imap_config c;
	config_for(&c, "support", TR_IMAP_SECURITY_IMPLICIT);
	tr_imap_mailbox box;
	tr_imap *s = connect_ok(&c, &box);
	assert_true(tr_imap_is_connected(s));
	assert_true(box.uidvalidity > 0);
	assert_true(box.uidnext >= 1);
	assert_true(box.caps & TR_IMAP_CAP_IDLE);
	assert_true(box.caps & TR_IMAP_CAP_MOVE);
	assert_true(box.caps & TR_IMAP_CAP_UIDPLUS);
	assert_true(box.keywords_storable);
	print_message("# UIDVALIDITY %u UIDNEXT %u EXISTS %u\n", box.uidvalidity, box.uidnext, box.exists);
	GError *error = NULL;
	assert_true(tr_imap_noop(s, NULL, &error));
	tr_imap_free(&s);
	assert_null(s);
	tr_imap_config_clear(&c);
}

static void test_starttls_with_ca(void **state)
{
	(void)state;
	REQUIRE_LIVE();
	tr_imap_config c;
	config_for(&c, "support", TR_IMAP_SECURITY_STARTTLS);
	tr_imap *s = tr_imap_new(&c);
	trace_log *t = trace_new();
	tr_imap_set_trace(s, trace, t);
	GError *error = NULL;
	tr_imap_mailbox box;
	if (!tr_imap_connect(s, 0, &box, &error))
		fail_msg("%s", error->message);
	const char *starttls = strstr(t->sent->str, "STARTTLS");
	const char *login = strstr(t->sent->str, "<private>");
	assert_non_null(starttls);
	assert_non_null(login);
	assert_true(starttls < login);
	assert_null(strstr(t->sent->str, env_password));   /* the trace never shows it */
	assert_true(box.uidvalidity > 0);
	tr_imap_free(&s);
	trace_free(t);
	tr_imap_config_clear(&c);
}

/* A connection that must be refused before LOGIN: the error, and the
 * trace shows no LOGIN on the wire. */
static void refused_before_login(tr_imap_config *c, tr_imap_error_code code, const char *substring)
{
	tr_imap *s = tr_imap_new(c);
	trace_log *t = trace_new();
	tr_imap_set_trace(s, trace, t);
	GError *error = NULL;
	tr_imap_mailbox box;
	assert_false(tr_imap_connect(s, 0, &box, &error));
	expect_error(error, code, substring);
	assert_int_equal(tr_imap_error_class_of(error), TR_IMAP_CLASS_SLOW);
	assert_false(tr_imap_is_connected(s));
	assert_false(login_sent(t));
	g_error_free(error);
	tr_imap_free(&s);
	trace_free(t);
}

static int authlog_lines(void)
{
	char *out = ctl("authlog", "tlsprobe", NULL, NULL);
	int n = atoi(out);
	g_free(out);
	return n;
}

static void test_untrusted_certificate_refused(void **state)
{
	(void)state;
	REQUIRE_LIVE();
	int before = authlog_lines();
	tr_imap_config c;
	char msg[128];

	/* the system store does not know the harness CA */
	config_for(&c, "tlsprobe", TR_IMAP_SECURITY_IMPLICIT);
	g_clear_pointer(&c.ca_file, g_free);
	snprintf(msg, sizeof(msg), "imap %s:%s: certificate not trusted:", env_host, env_imaps_port);
	refused_before_login(&c, TR_IMAP_ERROR_CERTIFICATE, msg);
	tr_imap_config_clear(&c);

	config_for(&c, "tlsprobe", TR_IMAP_SECURITY_STARTTLS);
	g_clear_pointer(&c.ca_file, g_free);
	refused_before_login(&c, TR_IMAP_ERROR_CERTIFICATE, "certificate not trusted");
	tr_imap_config_clear(&c);

	/* a CA file that is not the one that signed the server's certificate */
	char *other_ca = g_build_filename(env_dir, "other-ca.pem", NULL);
	char *cmd = g_strdup_printf("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
	                            "-keyout %s.key -out %s -days 1 -subj /CN=other >/dev/null 2>&1",
	                            other_ca, other_ca);
	assert_int_equal(system(cmd), 0);
	config_for(&c, "tlsprobe", TR_IMAP_SECURITY_IMPLICIT);
	g_free(c.ca_file);
	c.ca_file = g_strdup(other_ca);
	refused_before_login(&c, TR_IMAP_ERROR_CERTIFICATE, "unable to get local issuer certificate");
	tr_imap_config_clear(&c);
	g_free(cmd);
	g_free(other_ca);

	/* Dovecot saw no authentication attempt for the account... */
	assert_int_equal(authlog_lines(), before);
	/* ...while a trusted login is visible in the same log (positive control) */
	config_for(&c, "tlsprobe", TR_IMAP_SECURITY_IMPLICIT);
	tr_imap *s = connect_ok(&c, NULL);
	tr_imap_free(&s);
	tr_imap_config_clear(&c);
	int after = before;
	for (int i = 0; i < 50 && after == before; i++) {
		g_usleep(100 * 1000);
		after = authlog_lines();
	}
	assert_true(after > before);
}

static void test_wrong_host_name_refused(void **state)
{
	(void)state;
	REQUIRE_LIVE();
	tr_imap_config c;
	config_for(&c, "tlsprobe", TR_IMAP_SECURITY_IMPLICIT);
	c.tls_name = g_strdup("mail.example.org");
	refused_before_login(&c, TR_IMAP_ERROR_CERTIFICATE, "certificate is not for 'mail.example.org'");
	tr_imap_config_clear(&c);

	config_for(&c, "tlsprobe", TR_IMAP_SECURITY_STARTTLS);
	c.tls_name = g_strdup("127.0.0.2");
	refused_before_login(&c, TR_IMAP_ERROR_CERTIFICATE, "certificate is not for '127.0.0.2'");
	tr_imap_config_clear(&c);

	/* the certificate's DNS name works as well as its IP address */
	config_for(&c, "tlsprobe", TR_IMAP_SECURITY_IMPLICIT);
	g_free(c.host);
	c.host = g_strdup("localhost");
	tr_imap *s = connect_ok(&c, NULL);
	tr_imap_free(&s);
	tr_imap_config_clear(&c);
}

static void test_plain_only_when_allowed(void **state)
{
	(void)state;
	REQUIRE_LIVE();
	tr_imap_config c;
	config_for(&c, "tlsprobe", TR_IMAP_SECURITY_PLAIN);
	refused_before_login(&c, TR_IMAP_ERROR_CONFIG, "allow_plain");
	c.allow_plain = true;
	tr_imap *s = tr_imap_new(&c);
	trace_log *t = trace_new();
	tr_imap_set_trace(s, trace, t);
	GError *error = NULL;
	tr_imap_mailbox box;
	if (!tr_imap_connect(s, 0, &box, &error))
		fail_msg("%s", error->message);
	assert_null(strstr(t->sent->str, "STARTTLS"));
	assert_true(login_sent(t));
	tr_imap_free(&s);
	trace_free(t);

	/* verify = no accepts any certificate (the config loader warns) */
	tr_imap_config_clear(&c);
	config_for(&c, "tlsprobe", TR_IMAP_SECURITY_IMPLICIT);
	g_clear_pointer(&c.ca_file, g_free);
	c.verify = false;
	s = connect_ok(&c, NULL);
	tr_imap_free(&s);
	tr_imap_config_clear(&c);
}

/* ---- login, folders ---- */

static void test_wrong_password_is_auth_error(void **state)
{
	(void)state;
	REQUIRE_LIVE();
	tr_imap_config c;
	config_for(&c, "support", TR_IMAP_SECURITY_IMPLICIT);
	g_free(c.password);
	c.password = g_strdup("wrong");
	tr_imap *s = tr_imap_new(&c);
	GError *error = NULL;
	tr_imap_mailbox box;
	assert_false(tr_imap_connect(s, 0, &box, &error));
	expect_error(error, TR_IMAP_ERROR_AUTH, "login as 'support' refused");
	assert_int_equal(tr_imap_error_class_of(error), TR_IMAP_CLASS_SLOW);
	assert_false(tr_imap_is_connected(s));
	g_clear_error(&error);
	tr_imap_free(&s);
	tr_imap_config_clear(&c);

	config_for(&c, "support", TR_IMAP_SECURITY_IMPLICIT);
	g_free(c.folder);
	c.folder = g_strdup("NoSuchFolder");
	s = tr_imap_new(&c);
	assert_false(tr_imap_connect(s, 0, &box, &error));
	expect_error(error, TR_IMAP_ERROR_MAILBOX, "mailbox NoSuchFolder: SELECT refused");
	assert_int_equal(tr_imap_error_class_of(error), TR_IMAP_CLASS_SLOW);
	g_clear_error(&error);
	tr_imap_free(&s);
	tr_imap_config_clear(&c);

	/* nothing listens: a network error naming the peer */
	config_for(&c, "support", TR_IMAP_SECURITY_IMPLICIT);
	c.limits.port = 1;
	s = tr_imap_new(&c);
	assert_false(tr_imap_connect(s, 0, &box, &error));
	expect_error(error, TR_IMAP_ERROR_NETWORK, "imap 127.0.0.1:1: cannot connect");
	assert_int_equal(tr_imap_error_class_of(error), TR_IMAP_CLASS_NETWORK);
	g_clear_error(&error);
	tr_imap_free(&s);
	tr_imap_config_clear(&c);
}

/* ---- fetch, flags, search, move ---- */

static void test_fetch_peek_mark_quarantine(void **state)
{
	(void)state;
	REQUIRE_LIVE();
	deliver("alice", "first", 0);
	deliver("alice", "second", 0);
	deliver("alice", "third", 0);
	tr_imap_config c;
	config_for(&c, "alice", TR_IMAP_SECURITY_IMPLICIT);
	g_free(c.quarantine);
	c.quarantine = g_strdup("Held/Unparsable");   /* does not exist yet */
	tr_imap_mailbox box;
	tr_imap *s = connect_ok(&c, &box);
	assert_int_equal(box.exists, 3);
	GArray *uids = search(s, TR_IMAP_SEARCH_PENDING, 0);
	assert_int_equal(uids->len, 3);
	uint32_t uid[3];
	for (unsigned i = 0; i < 3; i++)
		uid[i] = g_array_index(uids, uint32_t, i);
	g_array_unref(uids);
	assert_true(uid[0] < uid[1] && uid[1] < uid[2]);

	GError *error = NULL;
	const char *subjects[] = { "Subject: first", "Subject: second", "Subject: third" };
	for (unsigned i = 0; i < 3; i++) {
		tr_imap_message *m = NULL;
		if (!tr_imap_fetch(s, uid[i], &m, &error))
			fail_msg("%s", error->message);
		assert_int_equal(m->uid, uid[i]);
		assert_non_null(strstr(m->data, subjects[i]));
		assert_non_null(strstr(m->data, "The printer is on fire."));
		assert_int_equal(m->len, strlen(m->data));
		assert_int_equal(m->size, m->len);
		assert_int_equal(m->flags & (TR_IMAP_FLAG_SEEN | TR_IMAP_FLAG_TRIAGED), 0);
		tr_imap_message_free(&m);
		assert_null(m);
	}
	/* BODY.PEEK[]: the server did not set \Seen (checked by another client) */
	for (unsigned seq = 1; seq <= 3; seq++) {
		char *flags = flags_of("alice", "INBOX", seq);
		print_message("# flags of %u after fetch: '%s'\n", seq, flags);
		assert_null(strstr(flags, "\\Seen"));
		g_free(flags);
	}

	/* a person reads message 2: it is still pending (no reliance on UNSEEN) */
	assert_true(tr_imap_add_flags(s, uid[1], TR_IMAP_FLAG_SEEN, &error));
	/* message 1 is triaged: keyword only (the default mark) */
	assert_true(tr_imap_mark(s, uid[0], &error));
	char *flags = flags_of("alice", "INBOX", 1);
	assert_non_null(strstr(flags, "$Triaged"));
	assert_null(strstr(flags, "\\Seen"));
	g_free(flags);
	unsigned f = 0;
	assert_true(tr_imap_fetch_flags(s, uid[0], &f, &error));
	assert_true(f & TR_IMAP_FLAG_TRIAGED);

	uids = search(s, TR_IMAP_SEARCH_PENDING, 0);
	assert_int_equal(uids->len, 2);
	assert_int_equal(g_array_index(uids, uint32_t, 0), uid[1]);
	assert_int_equal(g_array_index(uids, uint32_t, 1), uid[2]);
	g_array_unref(uids);
	uids = search(s, TR_IMAP_SEARCH_PENDING, uid[2]);
	assert_int_equal(uids->len, 1);
	g_array_unref(uids);
	uids = search(s, TR_IMAP_SEARCH_PENDING, uid[2] + 1);   /* "n:*" quirk filtered */
	assert_int_equal(uids->len, 0);
	g_array_unref(uids);
	uids = search(s, TR_IMAP_SEARCH_TRIAGED, 0);
	assert_int_equal(uids->len, 1);
	assert_int_equal(g_array_index(uids, uint32_t, 0), uid[0]);
	g_array_unref(uids);

	/* message 3 cannot be parsed: quarantine, the folder is created */
	assert_true(tr_imap_quarantine(s, uid[2], &error));
	assert_int_equal(count_of("alice", "Held/Unparsable"), 1);
	assert_int_equal(count_of("alice", "INBOX"), 2);
	uids = search(s, TR_IMAP_SEARCH_ALL, 0);
	assert_int_equal(uids->len, 2);
	g_array_unref(uids);
	/* a UID that is gone */
	tr_imap_message *m = NULL;
	assert_false(tr_imap_fetch(s, uid[2], &m, &error));
	expect_error(error, TR_IMAP_ERROR_GONE, "UID");
	assert_int_equal(tr_imap_error_class_of(error), TR_IMAP_CLASS_MESSAGE);
	g_clear_error(&error);
	assert_true(tr_imap_is_connected(s));
	tr_imap_free(&s);
	tr_imap_config_clear(&c);

	/* keyword,seen,move: everything at once, in a new session */
	config_for(&c, "alice", TR_IMAP_SECURITY_STARTTLS);
	c.mark = TR_IMAP_MARK_KEYWORD | TR_IMAP_MARK_SEEN | TR_IMAP_MARK_MOVE;
	c.move_to = g_strdup("Triaged");
	s = connect_ok(&c, NULL);
	assert_true(tr_imap_mark(s, uid[1], &error));
	assert_int_equal(count_of("alice", "Triaged"), 1);
	flags = flags_of("alice", "Triaged", 1);
	assert_non_null(strstr(flags, "$Triaged"));
	assert_non_null(strstr(flags, "\\Seen"));
	g_free(flags);
	uids = search(s, TR_IMAP_SEARCH_ALL, 0);
	assert_int_equal(uids->len, 1);   /* only message 1 is left */
	g_array_unref(uids);
	tr_imap_free(&s);
	tr_imap_config_clear(&c);
}

static void test_move_without_move_capability(void **state)
{
	(void)state;
	REQUIRE_LIVE();
	deliver("dave", "one", 0);
	deliver("dave", "two", 0);
	tr_imap_config c;
	config_for(&c, "dave", TR_IMAP_SECURITY_IMPLICIT);
	c.ignore_caps = TR_IMAP_CAP_MOVE;
	c.mark = TR_IMAP_MARK_MOVE;
	c.move_to = g_strdup("Done");
	tr_imap_mailbox box;
	tr_imap *s = connect_ok(&c, &box);
	assert_int_equal(box.caps & TR_IMAP_CAP_MOVE, 0);
	GArray *uids = search(s, TR_IMAP_SEARCH_PENDING, 0);
	assert_int_equal(uids->len, 2);
	uint32_t first = g_array_index(uids, uint32_t, 0), second = g_array_index(uids, uint32_t, 1);
	g_array_unref(uids);
	GError *error = NULL;
	/* COPY + \Deleted + UID EXPUNGE */
	assert_true(tr_imap_mark(s, first, &error));
	assert_int_equal(count_of("dave", "Done"), 1);
	assert_int_equal(count_of("dave", "INBOX"), 1);
	tr_imap_free(&s);

	/* without UIDPLUS either: copied, the original only flagged \Deleted */
	c.ignore_caps = TR_IMAP_CAP_MOVE | TR_IMAP_CAP_UIDPLUS;
	s = connect_ok(&c, NULL);
	assert_true(tr_imap_mark(s, second, &error));
	assert_int_equal(count_of("dave", "Done"), 2);
	assert_int_equal(count_of("dave", "INBOX"), 1);
	char *flags = flags_of("dave", "INBOX", 1);
	assert_non_null(strstr(flags, "\\Deleted"));
	g_free(flags);
	uids = search(s, TR_IMAP_SEARCH_PENDING, 0);
	assert_int_equal(uids->len, 0);   /* \Deleted is never pending */
	g_array_unref(uids);
	tr_imap_free(&s);
	tr_imap_config_clear(&c);
}

static void test_too_big_not_fetched(void **state)
{
	(void)state;
	REQUIRE_LIVE();
	deliver("erin", "big", 64 * 1024);
	deliver("erin", "small", 0);
	tr_imap_config c;
	config_for(&c, "erin", TR_IMAP_SECURITY_IMPLICIT);
	c.limits.message_bytes = 8 * 1024;
	tr_imap *s = tr_imap_new(&c);
	trace_log *t = trace_new();
	tr_imap_set_trace(s, trace, t);
	GError *error = NULL;
	tr_imap_mailbox box;
	if (!tr_imap_connect(s, 0, &box, &error))
		fail_msg("%s", error->message);
	GArray *uids = search(s, TR_IMAP_SEARCH_PENDING, 0);
	assert_int_equal(uids->len, 2);
	tr_imap_message *m = NULL;
	g_string_truncate(t->received, 0);
	assert_false(tr_imap_fetch(s, g_array_index(uids, uint32_t, 0), &m, &error));
	assert_null(m);
	expect_error(error, TR_IMAP_ERROR_TOO_BIG, "exceeds message_bytes = 8192");
	assert_int_equal(tr_imap_error_class_of(error), TR_IMAP_CLASS_MESSAGE);
	g_clear_error(&error);
	/* only the size and flags went over the wire, not the 64 KiB */
	print_message("# %zu bytes received for the too-big message\n", t->received->len);
	assert_true(t->received->len < 1024);
	/* the session goes on */
	assert_true(tr_imap_is_connected(s));
	if (!tr_imap_fetch(s, g_array_index(uids, uint32_t, 1), &m, &error))
		fail_msg("%s", error->message);
	assert_non_null(strstr(m->data, "Subject: small"));
	tr_imap_message_free(&m);
	g_array_unref(uids);
	tr_imap_free(&s);
	trace_free(t);
	tr_imap_config_clear(&c);
}

/* ---- IDLE, interrupt, polling ---- */

typedef struct {
	const char *user;
	unsigned delay_ms;
	double delivered_at;
	tr_imap *interrupt;
} helper_job;

static gpointer deliver_later(gpointer data)
{
	helper_job *job = data;
	g_usleep(job->delay_ms * 1000);
	deliver(job->user, "arrives during IDLE", 0);
	job->delivered_at = now_seconds();
	return NULL;
}

static gpointer interrupt_later(gpointer data)
{
	helper_job *job = data;
	g_usleep(job->delay_ms * 1000);
	job->delivered_at = now_seconds();
	tr_imap_interrupt(job->interrupt);
	return NULL;
}

static void test_idle_wakes_on_delivery(void **state)
{
	(void)state;
	REQUIRE_LIVE();
	tr_imap_config c;
	config_for(&c, "bob", TR_IMAP_SECURITY_IMPLICIT);
	tr_imap *s = connect_ok(&c, NULL);
	GError *error = NULL;
	/* before any search, waiting says "look first" */
	assert_int_equal(tr_imap_wait(s, 5, &error), TR_IMAP_WAIT_NEW_MAIL);
	GArray *uids = search(s, TR_IMAP_SEARCH_PENDING, 0);
	assert_int_equal(uids->len, 0);
	g_array_unref(uids);
	helper_job job = { .user = "bob", .delay_ms = 300 };
	GThread *th = g_thread_new("deliver", deliver_later, &job);
	double start = now_seconds();
	tr_imap_wait_result r = tr_imap_wait(s, 20, &error);
	double woke = now_seconds();
	g_thread_join(th);
	if (r == TR_IMAP_WAIT_ERROR)
		fail_msg("%s", error->message);
	assert_int_equal(r, TR_IMAP_WAIT_NEW_MAIL);
	print_message("# IDLE woke %.3f s after the LMTP delivery returned (%.3f s after start)\n",
	              woke - job.delivered_at, woke - start);
	assert_true(woke - job.delivered_at < 2.0);
	uids = search(s, TR_IMAP_SEARCH_PENDING, 0);
	assert_int_equal(uids->len, 1);
	g_array_unref(uids);
	/* nothing new: a short wait times out */
	start = now_seconds();
	assert_int_equal(tr_imap_wait(s, 1, &error), TR_IMAP_WAIT_TIMEOUT);
	assert_true(now_seconds() - start >= 0.9);
	tr_imap_free(&s);
	tr_imap_config_clear(&c);
}

static void test_interrupt_ends_idle(void **state)
{
	(void)state;
	REQUIRE_LIVE();
	tr_imap_config c;
	config_for(&c, "bob", TR_IMAP_SECURITY_STARTTLS);
	tr_imap *s = connect_ok(&c, NULL);
	GError *error = NULL;
	g_array_unref(search(s, TR_IMAP_SEARCH_ALL, 0));
	helper_job job = { .delay_ms = 300, .interrupt = s };
	GThread *th = g_thread_new("interrupt", interrupt_later, &job);
	tr_imap_wait_result r = tr_imap_wait(s, 30, &error);
	double woke = now_seconds();
	g_thread_join(th);
	assert_int_equal(r, TR_IMAP_WAIT_INTERRUPTED);
	print_message("# IDLE ended %.3f s after tr_imap_interrupt()\n", woke - job.delivered_at);
	assert_true(woke - job.delivered_at < 1.0);
	/* the session is fine afterwards */
	assert_true(tr_imap_noop(s, NULL, &error));
	/* an interrupt before the wait is not lost; it is consumed once */
	tr_imap_interrupt(s);
	double start = now_seconds();
	assert_int_equal(tr_imap_wait(s, 30, &error), TR_IMAP_WAIT_INTERRUPTED);
	assert_true(now_seconds() - start < 1.0);
	assert_int_equal(tr_imap_wait(s, 1, &error), TR_IMAP_WAIT_TIMEOUT);
	tr_imap_free(&s);
	tr_imap_config_clear(&c);
}

static void test_polling_without_idle(void **state)
{
	(void)state;
	REQUIRE_LIVE();
	tr_imap_config c;
	config_for(&c, "frank", TR_IMAP_SECURITY_IMPLICIT);
	c.ignore_caps = TR_IMAP_CAP_IDLE;
	c.limits.poll_interval = 1;
	tr_imap_mailbox box;
	tr_imap *s = tr_imap_new(&c);
	trace_log *t = trace_new();
	tr_imap_set_trace(s, trace, t);
	GError *error = NULL;
	if (!tr_imap_connect(s, 0, &box, &error))
		fail_msg("%s", error->message);
	assert_int_equal(box.caps & TR_IMAP_CAP_IDLE, 0);
	g_array_unref(search(s, TR_IMAP_SEARCH_ALL, 0));
	helper_job job = { .user = "frank", .delay_ms = 200 };
	GThread *th = g_thread_new("deliver", deliver_later, &job);
	tr_imap_wait_result r = tr_imap_wait(s, 20, &error);
	double woke = now_seconds();
	g_thread_join(th);
	if (r == TR_IMAP_WAIT_ERROR)
		fail_msg("%s", error->message);
	assert_int_equal(r, TR_IMAP_WAIT_NEW_MAIL);
	print_message("# polling noticed the delivery after %.3f s\n", woke - job.delivered_at);
	assert_true(woke - job.delivered_at < 2.5);
	assert_null(strstr(t->sent->str, "IDLE"));
	assert_non_null(strstr(t->sent->str, "NOOP"));
	/* an interrupt ends the polling sleep at once */
	g_array_unref(search(s, TR_IMAP_SEARCH_ALL, 0));
	helper_job job2 = { .delay_ms = 200, .interrupt = s };
	th = g_thread_new("interrupt", interrupt_later, &job2);
	assert_int_equal(tr_imap_wait(s, 30, &error), TR_IMAP_WAIT_INTERRUPTED);
	woke = now_seconds();
	g_thread_join(th);
	assert_true(woke - job2.delivered_at < 1.0);
	tr_imap_free(&s);
	trace_free(t);
	tr_imap_config_clear(&c);
}

/* ---- server restart, UIDVALIDITY ---- */

static gpointer restart_later(gpointer data)
{
	helper_job *job = data;
	g_usleep(job->delay_ms * 1000);
	g_free(ctl("restart", NULL, NULL, NULL));
	job->delivered_at = now_seconds();
	return NULL;
}

static void test_restart_then_reconnect(void **state)
{
	(void)state;
	REQUIRE_LIVE();
	tr_imap_config c;
	config_for(&c, "carol", TR_IMAP_SECURITY_IMPLICIT);
	tr_imap_mailbox box_idle, box_busy;
	tr_imap *idle = connect_ok(&c, &box_idle);
	tr_imap *busy = connect_ok(&c, &box_busy);
	g_array_unref(search(idle, TR_IMAP_SEARCH_ALL, 0));
	helper_job job = { .delay_ms = 200 };
	GThread *th = g_thread_new("restart", restart_later, &job);
	GError *error = NULL;
	double start = now_seconds();
	/* the session in IDLE notices that the server went away */
	tr_imap_wait_result r = tr_imap_wait(idle, 30, &error);
	double noticed = now_seconds();
	g_thread_join(th);
	assert_int_equal(r, TR_IMAP_WAIT_ERROR);
	expect_error(error, TR_IMAP_ERROR_NETWORK, NULL);
	assert_int_equal(tr_imap_error_class_of(error), TR_IMAP_CLASS_NETWORK);
	print_message("# the IDLE session noticed the restart after %.3f s\n", noticed - start);
	assert_true(noticed - start < 10.0);
	g_clear_error(&error);
	assert_false(tr_imap_is_connected(idle));

	/* the other session learns it at its next command */
	assert_false(tr_imap_noop(busy, NULL, &error));
	expect_error(error, TR_IMAP_ERROR_NETWORK, NULL);
	assert_int_equal(tr_imap_error_class_of(error), TR_IMAP_CLASS_NETWORK);
	g_clear_error(&error);
	assert_false(tr_imap_is_connected(busy));
	/* and every call fails fast until a reconnect */
	GArray *uids = NULL;
	assert_false(tr_imap_search(busy, TR_IMAP_SEARCH_ALL, 0, &uids, &error));
	expect_error(error, TR_IMAP_ERROR_NETWORK, "not connected");
	g_clear_error(&error);

	tr_imap_mailbox again;
	if (!tr_imap_connect(busy, box_busy.uidvalidity, &again, &error))
		fail_msg("reconnect: %s", error->message);
	assert_int_equal(again.uidvalidity, box_busy.uidvalidity);
	assert_true(tr_imap_noop(busy, NULL, &error));
	if (!tr_imap_connect(idle, box_idle.uidvalidity, &again, &error))
		fail_msg("reconnect: %s", error->message);
	tr_imap_free(&idle);
	tr_imap_free(&busy);
	tr_imap_config_clear(&c);
}

static void test_uidvalidity_change(void **state)
{
	(void)state;
	REQUIRE_LIVE();
	deliver("grace", "before the change", 0);
	tr_imap_config c;
	config_for(&c, "grace", TR_IMAP_SECURITY_IMPLICIT);
	tr_imap_mailbox box;
	tr_imap *s = connect_ok(&c, &box);
	tr_imap_disconnect(s);
	char value[16];
	snprintf(value, sizeof(value), "%u", box.uidvalidity + 1000);
	g_free(ctl("uidvalidity", "grace", "INBOX", value));
	GError *error = NULL;
	tr_imap_mailbox after;
	assert_false(tr_imap_connect(s, box.uidvalidity, &after, &error));
	expect_error(error, TR_IMAP_ERROR_UIDVALIDITY, "every stored UID is void");
	assert_int_equal(tr_imap_error_class_of(error), TR_IMAP_CLASS_RESYNC);
	g_clear_error(&error);
	/* still connected and selected, the new value adopted */
	assert_true(tr_imap_is_connected(s));
	assert_int_equal(after.uidvalidity, box.uidvalidity + 1000);
	assert_int_equal(tr_imap_mailbox_info(s)->uidvalidity, after.uidvalidity);
	GArray *uids = search(s, TR_IMAP_SEARCH_PENDING, 0);
	assert_int_equal(uids->len, 1);
	g_array_unref(uids);
	tr_imap_free(&s);
	tr_imap_config_clear(&c);
}

/* Each test's duration as a TAP comment: the script has a time budget. */
static double test_started;

static int timing_start(void **state)
{
	(void)state;
	test_started = now_seconds();
	return 0;
}

static int timing_end(void **state)
{
	(void)state;
	if (live())
		print_message("# %.2f s\n", now_seconds() - test_started);
	return 0;
}

#define LIVE_TEST(f) cmocka_unit_test_setup_teardown(f, timing_start, timing_end)

int main(void)
{
	/* what the daemon's main() does: a dropped peer must not kill us */
	signal(SIGPIPE, SIG_IGN);
	env_host = getenv("TR_IMAP_TEST_HOST");
	env_port = getenv("TR_IMAP_TEST_PORT");
	env_imaps_port = getenv("TR_IMAP_TEST_IMAPS_PORT");
	env_ca = getenv("TR_IMAP_TEST_CA");
	env_password = getenv("TR_IMAP_TEST_PASSWORD");
	env_dir = getenv("TR_IMAP_TEST_DIR");
	env_ctl = getenv("TR_IMAP_TEST_CTL");
	if (!live())
		print_message("# TR_IMAP_TEST_* not set: live IMAP tests skipped "
		              "(tests/integration/imap.sh runs them against Dovecot)\n");
	const struct CMUnitTest tests[] = {
		LIVE_TEST(test_implicit_tls_with_ca),
		LIVE_TEST(test_starttls_with_ca),
		LIVE_TEST(test_untrusted_certificate_refused),
		LIVE_TEST(test_wrong_host_name_refused),
		LIVE_TEST(test_plain_only_when_allowed),
		LIVE_TEST(test_wrong_password_is_auth_error),
		LIVE_TEST(test_fetch_peek_mark_quarantine),
		LIVE_TEST(test_move_without_move_capability),
		LIVE_TEST(test_too_big_not_fetched),
		LIVE_TEST(test_idle_wakes_on_delivery),
		LIVE_TEST(test_interrupt_ends_idle),
		LIVE_TEST(test_polling_without_idle),
		LIVE_TEST(test_restart_then_reconnect),
		LIVE_TEST(test_uidvalidity_change),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
