/* smtp.c — outbound mail through a relay with libESMTP; see smtp.h */
#include "channels/smtp.h"

/* libESMTP declares its OpenSSL and SASL entry points only when these come first. */
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <auth-client.h>
#include <libesmtp.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

G_DEFINE_QUARK(tr-smtp-error-quark, tr_smtp_error)

/* libESMTP keeps header names without a terminating NUL and looks them up
 * with strncasecmp() (htable.c).  The real reads stop at the first
 * mismatch, inside the buffer, but ASan's strict_string_checks (on in
 * tests/run) measures the whole string and reports an overflow on every
 * message.  In sanitizer builds only, ignore interceptor reports raised
 * from inside libESMTP (its own code is not instrumented either way). */
#if defined(__SANITIZE_ADDRESS__)
#define TR_SMTP_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TR_SMTP_ASAN 1
#endif
#endif
#ifdef TR_SMTP_ASAN
const char *__asan_default_suppressions(void);
const char *__asan_default_suppressions(void)
{
	return "interceptor_via_lib:libesmtp.so\n";
}
/* libESMTP's BDAT code leaks its 1 KB header buffer when the message
 * callback refuses the message (our AUTH/TLS gate, see message_cb): one
 * allocation per refused delivery, inside the library. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:libesmtp.so\n";
}
#endif

const tr_conftab tr_smtp_limits_table[] = {
	{ "port", 25, 1, 65535, TR_UNIT_COUNT, offsetof(tr_smtp_limits, port),
	  "relay TCP port (25 for a relay on the same network, 587 for submission)" },
	{ "timeout", 30, 1, 3600, TR_UNIT_SECONDS, offsetof(tr_smtp_limits, timeout),
	  "wait this long for each reply and each write before giving up (TEMPORARY)" },
	{ "final_timeout", 300, 1, 3600, TR_UNIT_SECONDS, offsetof(tr_smtp_limits, final_timeout),
	  "wait this long for the reply to the end of the message; giving up here is AMBIGUOUS" },
	{ "max_message_bytes", 10 * 1024 * 1024, 1024, 1024 * 1024 * 1024, TR_UNIT_BYTES,
	  offsetof(tr_smtp_limits, max_message_bytes),
	  "larger messages fail PERMANENT without contacting the relay" },
	{ "retry_base", 60, 1, 86400, TR_UNIT_SECONDS, offsetof(tr_smtp_limits, retry_base),
	  "first retry delay after a TEMPORARY failure; doubles per attempt" },
	{ "retry_max", 3600, 1, 7 * 86400, TR_UNIT_SECONDS, offsetof(tr_smtp_limits, retry_max),
	  "longest retry delay after a TEMPORARY failure" },
	{ "retry_give_up", 5 * 86400, 60, 30 * 86400, TR_UNIT_SECONDS, offsetof(tr_smtp_limits, retry_give_up),
	  "stop retrying a TEMPORARY failure this long after the first attempt" },
	{ "ambiguous_delay", 3600, 60, 7 * 86400, TR_UNIT_SECONDS, offsetof(tr_smtp_limits, ambiguous_delay),
	  "wait this long before resending a message whose delivery was AMBIGUOUS" },
	{ "ambiguous_retries", 1, 0, 3, TR_UNIT_COUNT, offsetof(tr_smtp_limits, ambiguous_retries),
	  "resends after an AMBIGUOUS delivery (0: never, a human decides)" },
	{ NULL, 0, 0, 0, TR_UNIT_COUNT, 0, NULL },
};

static const char *const smtp_string_keys[] = {
	"host", "tls", "ca_file", "verify", "auth_user", "auth_password", "auth_password_file", "helo",
};

/* Each libESMTP callback gets message bytes in pieces of at most this. */
#define MESSAGE_CHUNK (64 * 1024)
/* Server reply lines kept for diagnostics (longer ones are cut). */
#define REPLY_MAX 240

/* ------------------------------------------------------------------------ */
/* configuration                                                            */
/* ------------------------------------------------------------------------ */

const char *tr_smtp_tls_name(tr_smtp_tls tls)
{
	switch (tls) {
	case TR_SMTP_TLS_REQUIRED: return "required";
	case TR_SMTP_TLS_OPTIONAL: return "optional";
	case TR_SMTP_TLS_NONE: return "none";
	}
	return "?";
}

void tr_smtp_config_default(tr_smtp_config *config)
{
	memset(config, 0, sizeof(*config));
	config->host = g_strdup("localhost");
	config->tls = TR_SMTP_TLS_REQUIRED;
	config->verify = true;
	tr_conftab_defaults(tr_smtp_limits_table, &config->limits);
}

static void wipe_string(char **s)
{
	if (*s != NULL) {
		explicit_bzero(*s, strlen(*s));
		g_free(*s);
		*s = NULL;
	}
}

void tr_smtp_config_clear(tr_smtp_config *config)
{
	g_free(config->host);
	g_free(config->ca_file);
	g_free(config->auth_user);
	wipe_string(&config->auth_password);
	g_free(config->helo);
	memset(config, 0, sizeof(*config));
}

static void config_copy(tr_smtp_config *to, const tr_smtp_config *from)
{
	*to = *from;
	to->host = g_strdup(from->host);
	to->ca_file = g_strdup(from->ca_file);
	to->auth_user = g_strdup(from->auth_user);
	to->auth_password = g_strdup(from->auth_password);
	to->helo = g_strdup(from->helo);
}

static bool host_is_ip_literal(const char *host)
{
	return g_hostname_is_ip_address(host);
}

/* A name libESMTP can put in "host:port": no ':' (it splits at the first
 * one, so IPv6 literals cannot work), no spaces or controls. */
static bool valid_host(const char *host)
{
	size_t n = strlen(host);
	if (n == 0 || n > 253)
		return false;
	for (const char *p = host; *p != '\0'; p++)
		if (!g_ascii_isalnum(*p) && *p != '.' && *p != '-' && *p != '_')
			return false;
	return true;
}

/* An EHLO argument: a domain name or an address literal "[…]". */
static bool valid_helo(const char *helo)
{
	size_t n = strlen(helo);
	if (n == 0 || n > 253)
		return false;
	if (helo[0] == '[')
		return helo[n - 1] == ']' && strspn(helo + 1, "0123456789abcdefABCDEF.:IPv6") == n - 2;
	return strspn(helo, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") == n;
}

static char *read_password_file(const tr_conf *conf, tr_diag *diag, const char *path)
{
	char *text = NULL;
	gsize len = 0;
	GError *gerr = NULL;
	if (!g_file_get_contents(path, &text, &len, &gerr)) {
		tr_conf_error(conf, diag, "smtp", "auth_password_file", "%s", gerr->message);
		g_error_free(gerr);
		return NULL;
	}
	struct stat st;
	if (stat(path, &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
		tr_diag_warning(diag, tr_conf_path(conf), tr_conf_line(conf, "smtp", "auth_password_file"),
		                "[smtp] auth_password_file %s is readable by group or others (chmod 600)", path);
	/* One trailing line end is the editor's, not the password's. */
	if (len > 0 && text[len - 1] == '\n')
		text[--len] = '\0';
	if (len > 0 && text[len - 1] == '\r')
		text[--len] = '\0';
	if (len == 0 || strlen(text) != len || strpbrk(text, "\r\n") != NULL) {
		tr_conf_error(conf, diag, "smtp", "auth_password_file",
		              "%s must hold the password on one line", path);
		explicit_bzero(text, len);
		g_free(text);
		return NULL;
	}
	return text;
}

static void load_limits(tr_smtp_config *config, const tr_conf *conf, tr_diag *diag)
{
	for (const tr_conftab *row = tr_smtp_limits_table; row->name != NULL; row++) {
		char *text = tr_conf_string(conf, "smtp", row->name, NULL);
		if (text == NULL)
			continue;
		int64_t v;
		if (!tr_conf_parse_int(text, row->unit, &v))
			tr_conf_error(conf, diag, "smtp", row->name, "'%s' is not a valid number", text);
		else if (v < row->min || v > row->max)
			tr_conf_error(conf, diag, "smtp", row->name,
			              "%" G_GINT64_FORMAT " is out of range %" G_GINT64_FORMAT "..%" G_GINT64_FORMAT,
			              (gint64)v, (gint64)row->min, (gint64)row->max);
		else
			*(int64_t *)((char *)&config->limits + row->offset) = v;
		g_free(text);
	}
}

bool tr_smtp_config_load(tr_smtp_config *config, const tr_conf *conf, tr_diag *diag)
{
	unsigned errors_before = tr_diag_error_count(diag);
	tr_smtp_config_default(config);
	if (!g_key_file_has_group(tr_conf_keyfile(conf), "smtp"))
		return true;

	GPtrArray *known = g_ptr_array_new();
	for (const tr_conftab *row = tr_smtp_limits_table; row->name != NULL; row++)
		g_ptr_array_add(known, (gpointer)row->name);
	for (size_t i = 0; i < G_N_ELEMENTS(smtp_string_keys); i++)
		g_ptr_array_add(known, (gpointer)smtp_string_keys[i]);
	g_ptr_array_add(known, NULL);
	tr_conf_check_keys(conf, diag, "smtp", (const char *const *)known->pdata);
	g_ptr_array_free(known, TRUE);

	load_limits(config, conf, diag);

	char *host = tr_conf_string(conf, "smtp", "host", NULL);
	if (host != NULL) {
		if (!valid_host(host))
			tr_conf_error(conf, diag, "smtp", "host",
			              "'%s' is not a host name or IPv4 address (IPv6 literals are not supported)", host);
		else {
			g_free(config->host);
			config->host = g_steal_pointer(&host);
		}
		g_free(host);
	}

	char *tls = tr_conf_string(conf, "smtp", "tls", NULL);
	if (tls != NULL) {
		if (g_ascii_strcasecmp(tls, "required") == 0)
			config->tls = TR_SMTP_TLS_REQUIRED;
		else if (g_ascii_strcasecmp(tls, "optional") == 0)
			config->tls = TR_SMTP_TLS_OPTIONAL;
		else if (g_ascii_strcasecmp(tls, "none") == 0)
			config->tls = TR_SMTP_TLS_NONE;
		else
			tr_conf_error(conf, diag, "smtp", "tls", "'%s' is not required, optional or none", tls);
		g_free(tls);
	}

	config->verify = tr_conf_bool(conf, diag, "smtp", "verify", true);
	if (!config->verify && config->tls != TR_SMTP_TLS_NONE)
		tr_diag_warning(diag, tr_conf_path(conf), tr_conf_line(conf, "smtp", "verify"),
		                "[smtp] verify = no: the relay's certificate is not checked, anyone on the "
		                "path can read and change outgoing mail");

	config->ca_file = tr_conf_file_path(conf, "smtp", "ca_file", NULL);
	if (config->ca_file != NULL && !g_file_test(config->ca_file, G_FILE_TEST_IS_REGULAR))
		tr_conf_error(conf, diag, "smtp", "ca_file", "%s: no such file", config->ca_file);

	char *helo = tr_conf_string(conf, "smtp", "helo", NULL);
	if (helo != NULL) {
		if (!valid_helo(helo))
			tr_conf_error(conf, diag, "smtp", "helo", "'%s' is not a domain name or [address]", helo);
		else
			config->helo = g_steal_pointer(&helo);
		g_free(helo);
	}

	config->auth_user = tr_conf_string(conf, "smtp", "auth_user", NULL);
	char *password = tr_conf_string(conf, "smtp", "auth_password", NULL);
	char *password_file = tr_conf_file_path(conf, "smtp", "auth_password_file", NULL);
	if (password != NULL && password_file != NULL)
		tr_conf_error(conf, diag, "smtp", "auth_password_file",
		              "give auth_password or auth_password_file, not both");
	else if (password_file != NULL)
		config->auth_password = read_password_file(conf, diag, password_file);
	else if (password != NULL)
		config->auth_password = g_steal_pointer(&password);
	wipe_string(&password);
	g_free(password_file);
	if (config->auth_user != NULL) {
		if (*config->auth_user == '\0' || strpbrk(config->auth_user, "\r\n") != NULL)
			tr_conf_error(conf, diag, "smtp", "auth_user", "not a valid user name");
		else if (config->auth_password == NULL && tr_diag_error_count(diag) == errors_before)
			tr_conf_error(conf, diag, "smtp", "auth_user",
			              "needs auth_password or auth_password_file");
		if (config->tls != TR_SMTP_TLS_REQUIRED)
			tr_conf_error(conf, diag, "smtp", "auth_user",
			              "AUTH needs tls = required (the password must never travel in clear)");
	} else if (config->auth_password != NULL) {
		tr_conf_error(conf, diag, "smtp", "auth_password", "a password without auth_user");
	}

	if (config->limits.retry_base > config->limits.retry_max)
		tr_conf_error(conf, diag, "smtp", "retry_base", "is larger than retry_max");
	return tr_diag_error_count(diag) == errors_before;
}

void tr_smtp_config_print(const tr_smtp_config *config, GString *out)
{
	g_string_append_printf(out, "host = %s\n", config->host);
	g_string_append_printf(out, "tls = %s\n", tr_smtp_tls_name(config->tls));
	g_string_append_printf(out, "ca_file = %s\n", config->ca_file != NULL ? config->ca_file : "(system store)");
	g_string_append_printf(out, "verify = %s\n", config->verify ? "yes" : "no");
	g_string_append_printf(out, "auth_user = %s\n", config->auth_user != NULL ? config->auth_user : "(none)");
	g_string_append_printf(out, "auth_password = %s\n", config->auth_password != NULL ? "(set)" : "(none)");
	g_string_append_printf(out, "helo = %s\n", config->helo != NULL ? config->helo : "(system host name)");
	tr_conftab_print(tr_smtp_limits_table, &config->limits, out);
}

/* ------------------------------------------------------------------------ */
/* the client                                                               */
/* ------------------------------------------------------------------------ */

struct tr_smtp_client {
	tr_smtp_config config;
	char *relay;          /* "host:port" for libESMTP and for messages */
	bool host_is_ip;
	X509_STORE *store;    /* trusted CAs, shared by every session's SSL_CTX */
};

static void init_auth_once(void)
{
	static gsize done = 0;
	if (g_once_init_enter(&done)) {
		auth_client_init();
		g_once_init_leave(&done, 1);
	}
}

static char *openssl_error_string(void)
{
	unsigned long e = ERR_peek_last_error();
	char buf[256];
	if (e == 0)
		return g_strdup("unknown OpenSSL error");
	ERR_error_string_n(e, buf, sizeof buf);
	return g_strdup(buf);
}

tr_smtp_client *tr_smtp_client_new(const tr_smtp_config *config, GError **error)
{
	char *relay = g_strdup_printf("%s:%" G_GINT64_FORMAT, config->host != NULL ? config->host : "",
	                              (gint64)config->limits.port);
	if (config->host == NULL || !valid_host(config->host)) {
		g_set_error(error, TR_SMTP_ERROR, TR_SMTP_ERROR_CONFIG,
		            "smtp relay %s: host must be a host name or IPv4 address", relay);
		g_free(relay);
		return NULL;
	}
	if (config->auth_user != NULL && (config->auth_password == NULL || config->tls != TR_SMTP_TLS_REQUIRED)) {
		g_set_error(error, TR_SMTP_ERROR, TR_SMTP_ERROR_CONFIG,
		            "smtp relay %s: AUTH needs a password and tls = required", relay);
		g_free(relay);
		return NULL;
	}
	X509_STORE *store = NULL;
	if (config->tls != TR_SMTP_TLS_NONE && config->verify) {
		ERR_clear_error();
		store = X509_STORE_new();
		if (store == NULL)
			g_error("X509_STORE_new: out of memory");
		bool loaded = config->ca_file != NULL ? X509_STORE_load_file(store, config->ca_file) == 1
		                                      : X509_STORE_set_default_paths(store) == 1;
		if (!loaded) {
			char *why = openssl_error_string();
			g_set_error(error, TR_SMTP_ERROR, TR_SMTP_ERROR_CONFIG,
			            "smtp relay %s: cannot load CA certificates from %s: %s", relay,
			            config->ca_file != NULL ? config->ca_file : "the system store", why);
			g_free(why);
			X509_STORE_free(store);
			g_free(relay);
			return NULL;
		}
	}
	init_auth_once();
	tr_smtp_client *client = g_new0(tr_smtp_client, 1);
	config_copy(&client->config, config);
	client->relay = relay;
	client->host_is_ip = host_is_ip_literal(config->host);
	client->store = store;
	return client;
}

void tr_smtp_client_free(tr_smtp_client **clientp)
{
	tr_smtp_client *client = *clientp;
	if (client == NULL)
		return;
	*clientp = NULL;
	tr_smtp_config_clear(&client->config);
	g_free(client->relay);
	X509_STORE_free(client->store);
	g_free(client);
}

const char *tr_smtp_client_relay(const tr_smtp_client *client)
{
	return client->relay;
}

/* ------------------------------------------------------------------------ */
/* one session: what the callbacks learn                                    */
/* ------------------------------------------------------------------------ */

typedef struct {
	const tr_smtp_client *client;

	/* the message, handed to libESMTP by message_cb */
	const char *data;
	size_t len, offset;
	const char *terminator;   /* "\r\n" or "\n" when data lacks its last line end */
	bool terminator_sent;

	/* how far the session got */
	bool connected;           /* SMTP_EV_CONNECT */
	bool mail_replied;        /* SMTP_EV_MAILSTATUS */
	bool data_started;        /* libESMTP rewound the message: 354, or BDAT under way */
	bool data_exhausted;      /* it read our last byte: the end of data may go out next */
	bool refused_data;        /* we would not hand the message over (see gate_reason) */
	const char *gate_reason;
	bool watch_sigpipe;       /* SIGPIPE was not pending when the session began */
	bool write_failed;        /* a write hit a closed connection while data was going out */

	/* TLS */
	bool tls_ok;
	char tls_cipher[64];
	bool tls_not_offered;     /* SMTP_EV_EXTNA_STARTTLS */
	char tls_error[320];      /* why the certificate was refused */
	bool no_8bitmime;         /* SMTP_EV_EXTNA_8BITMIME */

	/* AUTH, followed through the protocol monitor */
	bool auth_pending;        /* AUTH sent, final reply not yet seen */
	bool auth_ok;
	bool auth_failed;
	char auth_reply[REPLY_MAX + 1];

	/* protocol monitor: replies and command verbs, never arguments */
	char line[1024];
	size_t line_len;
	bool in_multiline;
	char last_reply[REPLY_MAX + 1];   /* first line of the last reply */
	char error_reply[REPLY_MAX + 1];  /* first line of the first 4xx/5xx reply */
	char last_command[16];            /* verb of the last command written */
} delivery;

/* Printable ASCII copy, cut at max bytes. */
static void copy_printable(char *to, size_t size, const char *from, size_t len)
{
	size_t n = 0;
	for (size_t i = 0; i < len && n + 1 < size; i++) {
		unsigned char c = (unsigned char)from[i];
		if (c == '\r' || c == '\n')
			continue;
		to[n++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	to[n] = '\0';
}

static void reply_line(delivery *d, const char *line, size_t len)
{
	while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	if (len < 3 || !g_ascii_isdigit(line[0]) || !g_ascii_isdigit(line[1]) || !g_ascii_isdigit(line[2]))
		return;
	bool final = len == 3 || line[3] == ' ';
	if (!d->in_multiline) {
		copy_printable(d->last_reply, sizeof d->last_reply, line, len);
		if ((line[0] == '4' || line[0] == '5') && d->error_reply[0] == '\0')
			g_strlcpy(d->error_reply, d->last_reply, sizeof d->error_reply);
	}
	d->in_multiline = !final;
	if (!final || !d->auth_pending)
		return;
	int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	if (code == 334)
		return;   /* a SASL challenge: AUTH goes on */
	d->auth_pending = false;
	if (code / 100 == 2) {
		d->auth_ok = true;
	} else {
		d->auth_failed = true;
		if (d->auth_reply[0] == '\0')
			g_strlcpy(d->auth_reply, d->last_reply, sizeof d->auth_reply);
	}
}

/* libESMTP shows us what goes over the wire (decrypted, outside the message
 * data).  We keep server replies and the verbs of our commands: AUTH's
 * arguments and the SASL lines after it hold credentials and are never
 * looked at beyond their first bytes. */
static void monitor_cb(const char *buf, int len, int writing, void *arg)
{
	delivery *d = arg;
	if (len <= 0)
		return;
	if (writing == SMTP_CB_WRITING) {
		if (len >= 5 && g_ascii_strncasecmp(buf, "AUTH ", 5) == 0) {
			d->auth_pending = true;
			g_strlcpy(d->last_command, "AUTH", sizeof d->last_command);
			return;
		}
		if (d->auth_pending)
			return;   /* a SASL response line: credentials */
		size_t n = 0;
		while (n < (size_t)len && n + 1 < sizeof d->last_command && g_ascii_isalpha(buf[n]))
			n++;
		if (n > 0) {
			memcpy(d->last_command, buf, n);
			d->last_command[n] = '\0';
		}
		return;
	}
	if (writing != SMTP_CB_READING)
		return;
	for (int i = 0; i < len; i++) {
		if (d->line_len + 1 < sizeof d->line)
			d->line[d->line_len++] = buf[i];
		if (buf[i] == '\n') {
			reply_line(d, d->line, d->line_len);
			d->line_len = 0;
		}
	}
}

static bool sigpipe_pending(void)
{
	sigset_t pending;
	sigemptyset(&pending);
	return sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
}

/* The message, in pieces.  len == NULL means "rewind": libESMTP is about to
 * send the message (after 354, or when it starts BDAT).  Returning NULL with
 * errno set makes libESMTP drop the connection without ending the data, so
 * the relay cannot accept anything: our way to stop a delivery that must
 * not happen (AUTH failed, TLS missing). */
static const char *message_cb(void **ctx, int *len, void *arg)
{
	delivery *d = arg;
	(void)ctx;   /* libESMTP free()s *ctx: we keep our state in d */
	if (len == NULL) {
		d->offset = 0;
		d->terminator_sent = false;
		d->data_started = true;
		return NULL;
	}
	if (d->gate_reason == NULL) {
		const tr_smtp_config *config = &d->client->config;
		if (config->tls == TR_SMTP_TLS_REQUIRED && !d->tls_ok)
			d->gate_reason = "TLS is required but not in use";
		else if (config->auth_user != NULL && !d->auth_ok)
			d->gate_reason = d->auth_failed ? "AUTH failed" : "the relay did not accept AUTH";
		else
			d->gate_reason = "";
	}
	if (*d->gate_reason != '\0') {
		d->refused_data = true;
		*len = 0;
		errno = ECANCELED;
		return NULL;
	}
	/* libESMTP ignores failed writes and would go on to the end of the
	 * data, which would then look as if the final "." had gone out.  A
	 * write into a closed connection raises SIGPIPE (blocked, so it stays
	 * pending): stop there, the end of the data has certainly not left. */
	if (d->write_failed || (d->watch_sigpipe && sigpipe_pending())) {
		d->write_failed = true;
		*len = 0;
		errno = EPIPE;
		return NULL;
	}
	if (d->offset < d->len) {
		size_t n = d->len - d->offset;
		if (n > MESSAGE_CHUNK)
			n = MESSAGE_CHUNK;
		const char *piece = d->data + d->offset;
		d->offset += n;
		*len = (int)n;
		return piece;
	}
	if (d->terminator != NULL && !d->terminator_sent) {
		d->terminator_sent = true;
		*len = (int)strlen(d->terminator);
		return d->terminator;
	}
	d->data_exhausted = true;
	*len = 0;
	return NULL;
}

static void set_tls_error(delivery *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_tls_error(delivery *d, const char *fmt, ...)
{
	if (d->tls_error[0] != '\0')
		return;   /* the first reason is the real one */
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(d->tls_error, sizeof d->tls_error, fmt, ap);
	va_end(ap);
}

static void event_cb(smtp_session_t session, int event, void *arg, ...)
{
	delivery *d = arg;
	const tr_smtp_config *config = &d->client->config;
	va_list ap;
	(void)session;
	va_start(ap, arg);
	switch (event) {
	case SMTP_EV_CONNECT:
		d->connected = true;
		break;
	case SMTP_EV_MAILSTATUS:
		d->mail_replied = true;
		break;
	case SMTP_EV_STARTTLS_OK: {
		(void)va_arg(ap, SSL *);
		const char *cipher = va_arg(ap, const char *);
		d->tls_ok = true;
		g_strlcpy(d->tls_cipher, cipher != NULL ? cipher : "", sizeof d->tls_cipher);
		break;
	}
	case SMTP_EV_EXTNA_STARTTLS:
		d->tls_not_offered = true;
		break;
	case SMTP_EV_INVALID_PEER_CERTIFICATE: {
		/* Only reached with verify = no (SSL_VERIFY_PEER fails the handshake first). */
		long result = va_arg(ap, long);
		int *ok = va_arg(ap, int *);
		if (!config->verify)
			*ok = 1;
		else
			set_tls_error(d, "certificate of %s refused: %s", d->client->relay,
			              X509_verify_cert_error_string(result));
		break;
	}
	case SMTP_EV_NO_PEER_CERTIFICATE: {
		int *ok = va_arg(ap, int *);
		if (!config->verify)
			*ok = 1;
		else
			set_tls_error(d, "%s presented no certificate", d->client->relay);
		break;
	}
	case SMTP_EV_WRONG_PEER_CERTIFICATE: {
		/* libESMTP's own name check knows DNS names only.  For an IP
		 * literal OpenSSL has already checked the IP SAN during the
		 * handshake (X509_VERIFY_PARAM_set1_ip_asc), or it would have
		 * failed. */
		int *ok = va_arg(ap, int *);
		const char *name = va_arg(ap, const char *);
		if (!config->verify || d->client->host_is_ip)
			*ok = 1;
		else
			set_tls_error(d, "certificate of %s is for '%s', not '%s'", d->client->relay,
			              name != NULL ? name : "?", config->host);
		break;
	}
	case SMTP_EV_WEAK_CIPHER: {
		int bits = va_arg(ap, int);
		int *ok = va_arg(ap, int *);
		*ok = 0;
		set_tls_error(d, "%s offered a %d-bit cipher", d->client->relay, bits);
		break;
	}
	case SMTP_EV_UNUSABLE_CLIENT_CERTIFICATE:
	case SMTP_EV_UNUSABLE_CA_LIST:
		set_tls_error(d, "libESMTP found an unusable certificate file under $HOME/.authenticate");
		break;
	case SMTP_EV_EXTNA_8BITMIME:
		d->no_8bitmime = true;
		break;
	default:
		break;
	}
	va_end(ap);
}

/* SASL asks for user and password (PLAIN, LOGIN).  Never over plain text:
 * the configuration requires TLS for AUTH, this is the second lock.  After
 * one refusal libESMTP would try the next mechanism with the same password:
 * one failed login per delivery is enough for the relay's logs (and for
 * fail2ban), so the next mechanism gets nothing and is aborted. */
static int interact_cb(auth_client_request_t request, char **result, int fields, void *arg)
{
	static char empty[] = "";
	delivery *d = arg;
	const tr_smtp_config *config = &d->client->config;
	if (!d->tls_ok || d->auth_failed)
		return 0;
	for (int i = 0; i < fields; i++) {
		if (request[i].flags & AUTH_USER)
			result[i] = config->auth_user;
		else if (request[i].flags & AUTH_PASS)
			result[i] = config->auth_password;
		else
			result[i] = empty;
	}
	return 1;
}

/* OpenSSL's verdict, kept for the error message (the handshake fails anyway). */
static int verify_cb(int preverify_ok, X509_STORE_CTX *store_ctx)
{
	if (preverify_ok)
		return 1;
	SSL *ssl = X509_STORE_CTX_get_ex_data(store_ctx, SSL_get_ex_data_X509_STORE_CTX_idx());
	delivery *d = ssl != NULL ? SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)) : NULL;
	if (d != NULL) {
		int err = X509_STORE_CTX_get_error(store_ctx);
		X509 *cert = X509_STORE_CTX_get_current_cert(store_ctx);
		char subject[160] = "";
		if (cert != NULL)
			X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof subject);
		set_tls_error(d, "certificate of %s refused: %s (depth %d%s%s)", d->client->relay,
		              X509_verify_cert_error_string(err), X509_STORE_CTX_get_error_depth(store_ctx),
		              subject[0] != '\0' ? ", " : "", subject);
	}
	return 0;
}

/* libESMTP creates the SSL object itself and sends no SNI; name the relay
 * as the handshake starts, for relays with several certificates. */
static void info_cb(const SSL *ssl, int where, int ret)
{
	(void)ret;
	if (!(where & SSL_CB_HANDSHAKE_START))
		return;
	delivery *d = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	if (d != NULL && !d->client->host_is_ip)
		SSL_set_tlsext_host_name((SSL *)ssl, d->client->config.host);
}

/* A fresh context per session (LIBRARIES.md: libESMTP's shared default is
 * freed after the first session), TLS 1.2 at most (1.3 sessions stall in
 * libESMTP's I/O loop), peer verification with the host name or IP. */
static SSL_CTX *make_ssl_ctx(const tr_smtp_client *client, delivery *d)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL)
		g_error("SSL_CTX_new failed");
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_app_data(ctx, d);
	SSL_CTX_set_info_callback(ctx, info_cb);
	if (client->config.verify) {
		SSL_CTX_set1_cert_store(ctx, client->store);
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_cb);
		X509_VERIFY_PARAM *param = SSL_CTX_get0_param(ctx);
		X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if (client->host_is_ip)
			X509_VERIFY_PARAM_set1_ip_asc(param, client->config.host);
		else
			X509_VERIFY_PARAM_set1_host(param, client->config.host, 0);
	} else {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	}
	return ctx;
}

/* SIGPIPE: libESMTP write()s to the socket; a relay that hangs up would
 * kill the process.  Block it in this thread and swallow what we caused. */
typedef struct {
	sigset_t old;
	bool was_pending;
} sigpipe_guard;

static void sigpipe_block(sigpipe_guard *guard)
{
	sigset_t pipe_set, pending;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	sigemptyset(&pending);
	sigpending(&pending);
	guard->was_pending = sigismember(&pending, SIGPIPE) == 1;
	pthread_sigmask(SIG_BLOCK, &pipe_set, &guard->old);
}

static void sigpipe_restore(sigpipe_guard *guard)
{
	if (!guard->was_pending) {
		sigset_t pipe_set;
		sigemptyset(&pipe_set);
		sigaddset(&pipe_set, SIGPIPE);
		struct timespec zero = { 0, 0 };
		while (sigtimedwait(&pipe_set, NULL, &zero) == SIGPIPE) {
		}
	}
	pthread_sigmask(SIG_SETMASK, &guard->old, NULL);
}

/* ------------------------------------------------------------------------ */
/* classification                                                           */
/* ------------------------------------------------------------------------ */

const char *tr_smtp_status_name(tr_smtp_status status)
{
	switch (status) {
	case TR_SMTP_SENT: return "sent";
	case TR_SMTP_TEMPORARY: return "temporary";
	case TR_SMTP_PERMANENT: return "permanent";
	case TR_SMTP_AMBIGUOUS: return "ambiguous";
	}
	return "?";
}

const char *tr_smtp_phase_name(tr_smtp_phase phase)
{
	switch (phase) {
	case TR_SMTP_PHASE_NONE: return "not connected";
	case TR_SMTP_PHASE_CONNECTED: return "connected";
	case TR_SMTP_PHASE_ENVELOPE: return "envelope";
	case TR_SMTP_PHASE_DATA: return "data";
	case TR_SMTP_PHASE_END_OF_DATA: return "end of data sent, no reply";
	case TR_SMTP_PHASE_REPLIED: return "replied";
	}
	return "?";
}

/* A reply class from libESMTP's status: 2, 4, 5, or 0 (none / other). */
static int reply_class(const smtp_status_t *status)
{
	int c = status != NULL ? status->code / 100 : 0;
	return c == 2 || c == 4 || c == 5 ? c : 0;
}

static void set_from_reply(tr_pool *pool, tr_smtp_rcpt_result *r, tr_smtp_status st,
                           const smtp_status_t *status)
{
	r->status = st;
	r->code = status->code;
	r->enhanced = status->enh_class != 0
	              ? tr_pool_printf(pool, "%d.%d.%d", status->enh_class, status->enh_subject, status->enh_detail)
	              : "";
	char text[REPLY_MAX + 1];
	const char *t = status->text != NULL ? status->text : "";
	copy_printable(text, sizeof text, t, strlen(t));
	r->reply = tr_pool_strdup(pool, g_strstrip(text));
}

static void set_diagnosis(tr_smtp_rcpt_result *r, tr_smtp_status st, const char *why)
{
	r->status = st;
	r->code = 0;
	r->enhanced = "";
	r->reply = why;
}

/* Why the session ended before the relay answered the data: the most
 * specific thing we know, worded for an operator. */
static const char *session_failure(const delivery *d, int err, tr_pool *pool)
{
	const tr_smtp_config *config = &d->client->config;
	char buf[160];
	smtp_strerror(err, buf, sizeof buf);
	if (!d->connected)
		return tr_pool_printf(pool, "cannot connect to %s: %s", d->client->relay, buf);
	if (d->tls_error[0] != '\0')
		return tr_pool_printf(pool, "STARTTLS failed: %s; nothing was sent", d->tls_error);
	if (d->tls_not_offered)
		return tr_pool_printf(pool, "%s does not offer STARTTLS and tls = required; nothing was sent",
		                      d->client->relay);
	if (config->tls != TR_SMTP_TLS_NONE && !d->tls_ok && strcmp(d->last_command, "STARTTLS") == 0) {
		if (err == SMTP_ERR_CLIENT_ERROR) {
			char *why = openssl_error_string();
			const char *text = tr_pool_printf(pool, "TLS handshake with %s failed: %s; nothing was sent",
			                                  d->client->relay, why);
			g_free(why);
			return text;
		}
		return tr_pool_printf(pool, "%s refused STARTTLS: %s", d->client->relay,
		                      d->error_reply[0] != '\0' ? d->error_reply : d->last_reply);
	}
	if (config->auth_user != NULL && d->auth_failed)
		return tr_pool_printf(pool, "authentication as %s failed: %s; message not sent",
		                      config->auth_user, d->auth_reply);
	if (config->auth_user != NULL && !d->auth_ok && d->mail_replied)
		return tr_pool_printf(pool, "%s offered no AUTH mechanism we use (PLAIN, LOGIN); message not sent",
		                      d->client->relay);
	if (d->refused_data)
		return tr_pool_printf(pool, "%s; message not sent", d->gate_reason);
	if (d->no_8bitmime)
		return tr_pool_printf(pool, "%s does not accept 8-bit data (no 8BITMIME) and the message has 8-bit bytes",
		                      d->client->relay);
	if (!d->mail_replied && d->error_reply[0] != '\0')
		return tr_pool_printf(pool, "%s refused the session: %s", d->client->relay, d->error_reply);
	if (d->write_failed)
		return tr_pool_printf(pool, "connection to %s lost while sending the message (%zu of %zu bytes "
		                      "handed over); its end was not sent", d->client->relay, d->offset, d->len);
	if (err == SMTP_ERR_DROPPED_CONNECTION)
		return tr_pool_printf(pool, "connection to %s lost or timed out after %s",
		                      d->client->relay, d->last_command[0] != '\0' ? d->last_command : "connect");
	return tr_pool_printf(pool, "session with %s failed after %s: %s", d->client->relay,
	                      d->last_command[0] != '\0' ? d->last_command : "connect", buf);
}

/* Decide each recipient that went to the relay (see smtp.h for the classes). */
static void classify(tr_pool *pool, const delivery *d, int err, smtp_message_t message,
                     smtp_recipient_t *handles, tr_smtp_result *res)
{
	const smtp_status_t *mail = smtp_reverse_path_status(message);
	const smtp_status_t *final = smtp_message_transfer_status(message);
	int final_class = reply_class(final);
	/* The reply to the end of the data arrived (or DATA / a BDAT chunk was
	 * refused, which ends the transaction the same way). */
	bool final_reply = final_class != 0;
	const char *failure = NULL;
	/* Without the AUTH we were told to use, the relay's replies say nothing
	 * about the recipients ("530 authentication required", "554 relay
	 * access denied"): a wrong password must not turn into bounces. */
	bool auth_missing = d->client->config.auth_user != NULL && !d->auth_ok &&
	                    (d->auth_failed || d->mail_replied);

	for (size_t i = 0; i < res->n_recipients; i++) {
		tr_smtp_rcpt_result *r = &res->recipients[i];
		if (handles[i] == NULL)
			continue;   /* refused before the session */
		const smtp_status_t *rcpt = smtp_recipient_status(handles[i]);
		int rcpt_class = reply_class(rcpt);
		if (d->no_8bitmime) {
			set_diagnosis(r, TR_SMTP_PERMANENT, failure != NULL ? failure : (failure = session_failure(d, err, pool)));
		} else if (auth_missing) {
			set_diagnosis(r, TR_SMTP_TEMPORARY, failure != NULL ? failure : (failure = session_failure(d, err, pool)));
		} else if (rcpt_class == 5) {
			set_from_reply(pool, r, TR_SMTP_PERMANENT, rcpt);
		} else if (rcpt_class == 4) {
			set_from_reply(pool, r, TR_SMTP_TEMPORARY, rcpt);
		} else if (final_reply && rcpt_class == 2) {
			set_from_reply(pool, r, final_class == 2 && d->data_exhausted ? TR_SMTP_SENT
			                        : final_class == 5 ? TR_SMTP_PERMANENT : TR_SMTP_TEMPORARY, final);
		} else if (d->data_exhausted && !final_reply) {
			/* The end of the data may have reached the relay.  With
			 * PIPELINING/CHUNKING even a recipient whose RCPT reply we
			 * never read may have been accepted. */
			set_diagnosis(r, TR_SMTP_AMBIGUOUS,
			              tr_pool_printf(pool, "the whole message went to %s but no reply came (%s); "
			                             "it may or may not have been accepted",
			                             d->client->relay,
			                             err == SMTP_ERR_DROPPED_CONNECTION ? "connection lost or timed out"
			                                                                : "session failed"));
		} else if (reply_class(mail) == 5) {
			set_from_reply(pool, r, TR_SMTP_PERMANENT, mail);
		} else if (reply_class(mail) == 4) {
			set_from_reply(pool, r, TR_SMTP_TEMPORARY, mail);
		} else if (final_reply) {
			/* Refused at DATA without a readable RCPT reply. */
			set_from_reply(pool, r, final_class == 5 ? TR_SMTP_PERMANENT : TR_SMTP_TEMPORARY, final);
		} else {
			set_diagnosis(r, TR_SMTP_TEMPORARY, failure != NULL ? failure : (failure = session_failure(d, err, pool)));
		}
	}

	if (!d->connected)
		res->phase = TR_SMTP_PHASE_NONE;
	else if (!d->mail_replied)
		res->phase = TR_SMTP_PHASE_CONNECTED;
	else if (!d->data_started)
		res->phase = TR_SMTP_PHASE_ENVELOPE;
	else if (!d->data_exhausted)
		res->phase = TR_SMTP_PHASE_DATA;
	else if (!final_reply)
		res->phase = TR_SMTP_PHASE_END_OF_DATA;
	else
		res->phase = TR_SMTP_PHASE_REPLIED;
	if (final_reply && d->data_exhausted) {
		char text[REPLY_MAX + 1];
		const char *t = final->text != NULL ? final->text : "";
		copy_printable(text, sizeof text, t, strlen(t));
		if (final->enh_class != 0)
			res->queue_reply = tr_pool_printf(pool, "%d %d.%d.%d %s", final->code, final->enh_class,
			                                  final->enh_subject, final->enh_detail, g_strstrip(text));
		else
			res->queue_reply = tr_pool_printf(pool, "%d %s", final->code, g_strstrip(text));
	}
	res->tls = d->tls_ok;
	res->tls_cipher = d->tls_ok ? tr_pool_strdup(pool, d->tls_cipher) : NULL;
	res->authenticated = d->auth_ok;
}

/* ------------------------------------------------------------------------ */
/* tr_smtp_send                                                             */
/* ------------------------------------------------------------------------ */

/* Why an envelope address must not go into an SMTP command, or NULL. */
static const char *address_problem(const char *address, bool is_sender)
{
	size_t n = strlen(address);
	if (n == 0)
		return is_sender ? NULL : "empty address";
	if (n > 254)
		return "longer than 254 bytes";
	for (const unsigned char *p = (const unsigned char *)address; *p != '\0'; p++) {
		if (*p <= 0x20 || *p >= 0x7f)
			return "contains a space, a control character or a non-ASCII byte";
		if (*p == '<' || *p == '>')
			return "contains '<' or '>'";
	}
	const char *at = strrchr(address, '@');
	if (at == NULL || at == address || at[1] == '\0')
		return "not of the form local@domain";
	return NULL;
}

static bool has_8bit(const char *data, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)data[i] >= 0x80)
			return true;
	return false;
}

/* Bare CR or LF anywhere?  libESMTP splits lines at CRLF only and
 * dot-stuffs after CRLF only, so "\n.\r\n" would reach the relay
 * unstuffed: a lenient relay could take it as the end of the data and the
 * rest as new commands (SMTP smuggling).  RFC 5321 2.3.8 forbids them. */
static bool has_bare_line_end(const char *data, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (data[i] == '\n' && (i == 0 || data[i - 1] != '\r'))
			return true;
		if (data[i] == '\r' && i + 1 < len && data[i + 1] != '\n')
			return true;
	}
	return false;
}

/* A copy with every bare CR and bare LF made CRLF (a final lone CR too). */
static char *normalize_line_ends(tr_pool *pool, const char *data, size_t len, size_t *len_r)
{
	char *out = tr_pool_alloc(pool, 2 * len + 1);
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		char c = data[i];
		if (c == '\r') {
			out[n++] = '\r';
			out[n++] = '\n';
			if (i + 1 < len && data[i + 1] == '\n')
				i++;
		} else if (c == '\n') {
			out[n++] = '\r';
			out[n++] = '\n';
		} else {
			out[n++] = c;
		}
	}
	*len_r = n;
	return out;
}

static void run_session(const tr_smtp_client *client, const char *sender, const char *data, size_t len,
                        tr_smtp_result *res, tr_pool *pool)
{
	const tr_smtp_config *config = &client->config;
	delivery *d = g_new0(delivery, 1);
	d->client = client;
	d->data = data;
	d->len = len;
	if (len == 0 || data[len - 1] != '\n')
		d->terminator = len > 0 && data[len - 1] == '\r' ? "\n" : "\r\n";

	smtp_session_t session = smtp_create_session();
	if (session == NULL)
		g_error("smtp_create_session: out of memory");
	if (!smtp_set_server(session, client->relay) ||
	    (config->helo != NULL && !smtp_set_hostname(session, config->helo)))
		g_error("libESMTP: out of memory");
	smtp_set_eventcb(session, event_cb, d);
	smtp_set_monitorcb(session, monitor_cb, d, 0);
	long step_ms = (long)config->limits.timeout * 1000;
	smtp_set_timeout(session, Timeout_GREETING | Timeout_OVERRIDE_RFC2822_MINIMUM, step_ms);
	smtp_set_timeout(session, Timeout_ENVELOPE | Timeout_OVERRIDE_RFC2822_MINIMUM, step_ms);
	smtp_set_timeout(session, Timeout_DATA | Timeout_OVERRIDE_RFC2822_MINIMUM, step_ms);
	smtp_set_timeout(session, Timeout_TRANSFER | Timeout_OVERRIDE_RFC2822_MINIMUM, step_ms);
	smtp_set_timeout(session, Timeout_DATA2 | Timeout_OVERRIDE_RFC2822_MINIMUM,
	                 (long)config->limits.final_timeout * 1000);

	SSL_CTX *ctx = NULL;
	if (config->tls != TR_SMTP_TLS_NONE) {
		ctx = make_ssl_ctx(client, d);
		smtp_starttls_set_ctx(session, ctx);
		smtp_starttls_enable(session, config->tls == TR_SMTP_TLS_REQUIRED ? Starttls_REQUIRED : Starttls_ENABLED);
	} else {
		smtp_starttls_enable(session, Starttls_DISABLED);
	}

	auth_context_t auth = NULL;
	if (config->auth_user != NULL) {
		auth = auth_create_context();
		if (auth == NULL)
			g_error("auth_create_context: out of memory");
		auth_set_mechanism_flags(auth, AUTH_PLUGIN_PLAIN, 0);
		auth_set_interact_cb(auth, interact_cb, d);
		smtp_auth_set_context(session, auth);
	}

	smtp_message_t message = smtp_add_message(session);
	if (message == NULL || !smtp_set_reverse_path(message, sender))
		g_error("libESMTP: out of memory");
	smtp_set_messagecb(message, message_cb, d);
	smtp_size_set_estimate(message, len);
	if (has_8bit(data, len))
		smtp_8bitmime_set_body(message, E8bitmime_8BITMIME);
	smtp_recipient_t *handles = tr_pool_alloc_array(pool, res->n_recipients, sizeof(*handles));
	for (size_t i = 0; i < res->n_recipients; i++)
		if (res->recipients[i].reply == NULL) {
			handles[i] = smtp_add_recipient(message, res->recipients[i].address);
			if (handles[i] == NULL)
				g_error("libESMTP: out of memory");
		}

	sigpipe_guard guard;
	sigpipe_block(&guard);
	d->watch_sigpipe = !guard.was_pending;
	ERR_clear_error();
	smtp_start_session(session);   /* its return value says little: see classify() */
	int err = smtp_errno();
	classify(pool, d, err, message, handles, res);
	ERR_clear_error();
	sigpipe_restore(&guard);

	smtp_destroy_session(session);
	if (auth != NULL)
		auth_destroy_context(auth);
	SSL_CTX_free(ctx);   /* libESMTP held its own reference */
	g_free(d);
}

void tr_smtp_result_free(tr_smtp_result **resultp)
{
	tr_smtp_result *res = *resultp;
	if (res == NULL)
		return;
	*resultp = NULL;
	tr_pool *pool = res->pool;
	tr_pool_free(&pool);
}

static const tr_smtp_rcpt_result *first_with(const tr_smtp_result *res, tr_smtp_status status)
{
	for (size_t i = 0; i < res->n_recipients; i++)
		if (res->recipients[i].status == status)
			return &res->recipients[i];
	return NULL;
}

static void summarize(tr_smtp_result *res, tr_pool *pool)
{
	for (size_t i = 0; i < res->n_recipients; i++) {
		switch (res->recipients[i].status) {
		case TR_SMTP_SENT: res->n_sent++; break;
		case TR_SMTP_TEMPORARY: res->n_temporary++; break;
		case TR_SMTP_PERMANENT: res->n_permanent++; break;
		case TR_SMTP_AMBIGUOUS: res->n_ambiguous++; break;
		}
	}
	res->status = res->n_ambiguous > 0 ? TR_SMTP_AMBIGUOUS
	            : res->n_temporary > 0 ? TR_SMTP_TEMPORARY
	            : res->n_permanent > 0 ? TR_SMTP_PERMANENT : TR_SMTP_SENT;
	if (res->status == TR_SMTP_SENT) {
		res->summary = tr_pool_printf(pool, "smtp relay %s: sent to %zu recipient%s: %s", res->relay,
		                              res->n_sent, res->n_sent == 1 ? "" : "s",
		                              res->queue_reply != NULL ? res->queue_reply : "");
		return;
	}
	const tr_smtp_rcpt_result *r = first_with(res, res->status);
	GString *s = g_string_new(NULL);
	g_string_append_printf(s, "smtp relay %s: %s failure for %s: ", res->relay,
	                       tr_smtp_status_name(res->status), r->address);
	if (r->code != 0)
		g_string_append_printf(s, "%d %s%s", r->code, r->enhanced, *r->enhanced != '\0' ? " " : "");
	g_string_append(s, r->reply);
	if (res->n_recipients > 1)
		g_string_append_printf(s, " (%zu recipients: %zu sent, %zu temporary, %zu permanent, %zu ambiguous)",
		                       res->n_recipients, res->n_sent, res->n_temporary, res->n_permanent,
		                       res->n_ambiguous);
	res->summary = tr_pool_strdup(pool, s->str);
	g_string_free(s, TRUE);
}

bool tr_smtp_send(const tr_smtp_client *client, const char *sender, const char *const *recipients,
                  const char *data, size_t len, tr_smtp_result **result_r, GError **error)
{
	g_return_val_if_fail(client != NULL && sender != NULL && recipients != NULL, false);
	g_return_val_if_fail(data != NULL || len == 0, false);
	int64_t start = g_get_monotonic_time();
	tr_pool *pool = tr_pool_new(4096);
	tr_smtp_result *res = tr_pool_alloc(pool, sizeof(*res));
	res->pool = pool;
	res->relay = tr_pool_strdup(pool, client->relay);
	while (recipients[res->n_recipients] != NULL)
		res->n_recipients++;
	res->recipients = tr_pool_alloc_array(pool, res->n_recipients, sizeof(*res->recipients));

	const char *sender_problem = address_problem(sender, true);
	bool too_big = (int64_t)len > client->config.limits.max_message_bytes;
	size_t usable = 0;
	for (size_t i = 0; i < res->n_recipients; i++) {
		tr_smtp_rcpt_result *r = &res->recipients[i];
		r->address = tr_pool_strdup(pool, recipients[i]);
		r->enhanced = "";
		const char *problem = address_problem(r->address, false);
		if (problem != NULL)
			r->reply = tr_pool_printf(pool, "recipient address refused: %s; not sent", problem);
		else if (sender_problem != NULL)
			r->reply = tr_pool_printf(pool, "sender address '%s' refused: %s; not sent", sender, sender_problem);
		else if (too_big)
			r->reply = tr_pool_printf(pool, "message is %zu bytes, over max_message_bytes (%" G_GINT64_FORMAT "); not sent",
			                          len, (gint64)client->config.limits.max_message_bytes);
		else
			usable++;
		r->status = r->reply != NULL ? TR_SMTP_PERMANENT : TR_SMTP_TEMPORARY;
	}
	if (res->n_recipients == 0) {
		/* Nothing to do is a caller's mistake, reported like a refusal. */
		res->status = TR_SMTP_PERMANENT;
		res->summary = tr_pool_printf(pool, "smtp relay %s: permanent failure: no recipients", res->relay);
	} else {
		if (usable > 0 && has_bare_line_end(data, len)) {
			data = normalize_line_ends(pool, data, len, &len);
			res->line_ends_fixed = true;
		}
		if (usable > 0)
			run_session(client, sender, data, len, res, pool);
		summarize(res, pool);
	}
	res->elapsed_us = g_get_monotonic_time() - start;

	bool sent = res->status == TR_SMTP_SENT;
	if (!sent)
		g_set_error_literal(error, TR_SMTP_ERROR,
		                    res->status == TR_SMTP_AMBIGUOUS ? TR_SMTP_ERROR_AMBIGUOUS
		                    : res->status == TR_SMTP_TEMPORARY ? TR_SMTP_ERROR_TEMPORARY
		                                                       : TR_SMTP_ERROR_PERMANENT,
		                    res->summary);
	if (result_r != NULL)
		*result_r = res;
	else
		tr_smtp_result_free(&res);
	return sent;
}

/* ------------------------------------------------------------------------ */
/* the retry schedule                                                       */
/* ------------------------------------------------------------------------ */

tr_smtp_retry_decision tr_smtp_retry_next(const tr_smtp_limits *limits, tr_smtp_status status,
                                          const tr_smtp_retry_state *state, uint32_t random_value)
{
	tr_smtp_retry_decision decision = { false, 0, state->ambiguous > 0, NULL };
	switch (status) {
	case TR_SMTP_SENT:
		decision.marked = false;
		decision.reason = "sent";
		return decision;
	case TR_SMTP_PERMANENT:
		decision.marked = false;
		decision.reason = "refused permanently";
		return decision;
	case TR_SMTP_AMBIGUOUS: {
		if ((int64_t)state->ambiguous > limits->ambiguous_retries) {
			decision.reason = "delivery ambiguous and resends used up: a human decides";
			return decision;
		}
		int64_t jitter = limits->ambiguous_delay / 10;
		decision.retry = true;
		decision.marked = true;
		decision.delay = limits->ambiguous_delay + (jitter > 0 ? (int64_t)(random_value % (uint64_t)(jitter + 1)) : 0);
		decision.reason = "delivery ambiguous: one late resend, may duplicate";
		return decision;
	}
	case TR_SMTP_TEMPORARY:
		break;
	}
	if (state->age >= limits->retry_give_up) {
		decision.reason = "temporary failures for longer than retry_give_up: given up";
		return decision;
	}
	/* base * 2^(attempts-1), capped; the shift is bounded so it cannot overflow. */
	unsigned exponent = state->attempts > 0 ? state->attempts - 1 : 0;
	int64_t delay = limits->retry_max;
	if (exponent < 40 && limits->retry_base <= (limits->retry_max >> exponent))
		delay = limits->retry_base << exponent;
	if (delay > limits->retry_max)
		delay = limits->retry_max;
	/* Equal jitter: half fixed so retries never bunch at zero, half random
	 * so a relay that comes back is not hit by every message at once. */
	int64_t half = delay / 2;
	decision.delay = delay - half + (half > 0 ? (int64_t)(random_value % (uint64_t)(half + 1)) : 0);
	if (decision.delay < 1)
		decision.delay = 1;
	decision.retry = true;
	decision.reason = decision.marked ? "temporary failure after an ambiguous attempt: retry, may duplicate"
	                                  : "temporary failure: retry with backoff";
	return decision;
}
