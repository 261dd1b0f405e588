/* lmtp.c — LMTP/SMTP listener, next-hop client, triage gateway; see lmtp.h */
#include "channels/lmtp.h"

#include <arpa/inet.h>
#include <gio/gio.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/normalize.h"
#include "core/xtriage.h"

const tr_conftab tr_lmtp_limits_table[] = {
	{ "message_bytes", 25 * 1024 * 1024, 1024, (int64_t)2 * 1024 * 1024 * 1024, TR_UNIT_BYTES,
	  offsetof(tr_lmtp_limits, message_bytes),
	  "[lmtp] largest message accepted (advertised as SIZE); larger: 552 5.3.4" },
	{ "command_bytes", 2048, 512, 65536, TR_UNIT_BYTES, offsetof(tr_lmtp_limits, command_bytes),
	  "[lmtp] longest command line; longer: 500 5.5.2" },
	{ "address_bytes", 256, 64, 4096, TR_UNIT_BYTES, offsetof(tr_lmtp_limits, address_bytes),
	  "[lmtp] longest MAIL FROM / RCPT TO address; longer: 501" },
	{ "recipients", 1000, 1, 100000, TR_UNIT_COUNT, offsetof(tr_lmtp_limits, recipients),
	  "[lmtp] recipients per message; more: 452 4.5.3" },
	{ "errors", 10, 1, 1000, TR_UNIT_COUNT, offsetof(tr_lmtp_limits, errors),
	  "[lmtp] protocol errors in one connection before 421 and disconnect" },
	{ "connections", 50, 1, 10000, TR_UNIT_COUNT, offsetof(tr_lmtp_limits, connections),
	  "[lmtp] concurrent connections (one thread each); more: 421 4.3.2" },
	{ "timeout", 300, 1, 3600, TR_UNIT_SECONDS, offsetof(tr_lmtp_limits, timeout),
	  "[lmtp] wait this long for a command, or for a reply to be written" },
	{ "data_timeout", 600, 1, 7200, TR_UNIT_SECONDS, offsetof(tr_lmtp_limits, data_timeout),
	  "[lmtp] wait this long between reads of the message text" },
	{ "shutdown_timeout", 30, 0, 3600, TR_UNIT_SECONDS, offsetof(tr_lmtp_limits, shutdown_timeout),
	  "[lmtp] at shutdown, transactions under way get this long to finish" },
	{ "next_hop_timeout", 120, 1, 3600, TR_UNIT_SECONDS, offsetof(tr_lmtp_limits, next_hop_timeout),
	  "[lmtp] next hop: connect, each read and each write" },
	{ "rules_header_bytes", 200, 16, 900, TR_UNIT_BYTES, offsetof(tr_lmtp_limits, rules_header_bytes),
	  "[lmtp] characters of the rule list in X-Triage-Rules" },
	{ NULL, 0, 0, 0, TR_UNIT_COUNT, 0, NULL },
};

#define DEFAULT_LISTEN "inet:127.0.0.1:10027"
#define READ_CHUNK 65536

/* ---- settings ---- */

void tr_lmtp_settings_default(tr_lmtp_settings *s)
{
	memset(s, 0, sizeof(*s));
	s->listen = g_strdup(DEFAULT_LISTEN);
	s->hostname = g_strdup(g_get_host_name());
	s->next_hop_required = true;
	s->socket_mode = 0660;
	s->on_error = TR_LMTP_ON_ERROR_ACCEPT;
	tr_conftab_defaults(tr_lmtp_limits_table, &s->limits);
}

void tr_lmtp_settings_clear(tr_lmtp_settings *s)
{
	g_free(s->listen);
	g_free(s->hostname);
	g_free(s->next_hop);
	memset(s, 0, sizeof(*s));
}

void tr_lmtp_settings_load(tr_lmtp_settings *s, const tr_conf *conf, const char *listen_override,
                           tr_diag *diag)
{
	static const char *const extra[] = {
		"listen", "hostname", "next_hop", "next_hop_required", "soft_bounce", "socket_mode",
		"on_error", NULL,
	};
	tr_lmtp_settings_default(s);
	tr_conftab_load_keys(tr_lmtp_limits_table, conf, diag, "lmtp", &s->limits, extra);

	char *listen = listen_override != NULL ? g_strdup(listen_override)
	                                       : tr_conf_string(conf, "lmtp", "listen", DEFAULT_LISTEN);
	tr_netaddr addr;
	GError *error = NULL;
	if (!tr_netaddr_parse(listen, &addr, &error)) {
		if (listen_override != NULL)
			tr_diag_error(diag, NULL, 0, "--listen: %s", error->message);
		else
			tr_conf_error(conf, diag, "lmtp", "listen", "%s", error->message);
		g_clear_error(&error);
	}
	g_free(s->listen);
	s->listen = listen;

	char *hostname = tr_conf_string(conf, "lmtp", "hostname", NULL);
	if (hostname != NULL && *hostname != '\0') {
		if (strspn(hostname, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") !=
		    strlen(hostname) || strlen(hostname) > 255)
			tr_conf_error(conf, diag, "lmtp", "hostname", "'%s' is not a host name", hostname);
		else {
			g_free(s->hostname);
			s->hostname = g_strdup(hostname);
		}
	}
	g_free(hostname);

	char *hop = tr_conf_string(conf, "lmtp", "next_hop", NULL);
	if (hop != NULL && *hop != '\0') {
		tr_lmtp_next_hop parsed;
		if (!tr_lmtp_next_hop_parse(hop, &parsed, &error)) {
			tr_conf_error(conf, diag, "lmtp", "next_hop", "%s", error->message);
			g_clear_error(&error);
		}
		s->next_hop = hop;
	} else {
		g_free(hop);
	}
	s->next_hop_required = tr_conf_bool(conf, diag, "lmtp", "next_hop_required", true);
	s->soft_bounce = tr_conf_bool(conf, diag, "lmtp", "soft_bounce", false);

	char *mode = tr_conf_string(conf, "lmtp", "socket_mode", NULL);
	if (mode != NULL) {
		char *end = NULL;
		unsigned long m = strtoul(mode, &end, 8);
		if (*mode == '\0' || *end != '\0' || m > 0777)
			tr_conf_error(conf, diag, "lmtp", "socket_mode", "'%s' is not an octal mode like 0660", mode);
		else
			s->socket_mode = (unsigned)m;
		g_free(mode);
	}
	char *on_error = tr_conf_string(conf, "lmtp", "on_error", NULL);
	if (on_error != NULL) {
		if (g_ascii_strcasecmp(on_error, "accept") == 0)
			s->on_error = TR_LMTP_ON_ERROR_ACCEPT;
		else if (g_ascii_strcasecmp(on_error, "tempfail") == 0)
			s->on_error = TR_LMTP_ON_ERROR_TEMPFAIL;
		else
			tr_conf_error(conf, diag, "lmtp", "on_error", "'%s' is not accept or tempfail", on_error);
		g_free(on_error);
	}
}

/* ---- session ---- */

typedef enum {
	ST_START,   /* no LHLO/EHLO/HELO yet */
	ST_READY,   /* greeted, no transaction */
	ST_MAIL,    /* MAIL accepted, collecting RCPTs */
	ST_DATA,    /* reading the message text */
	ST_CLOSED,
} session_state;

/* Where the DATA reader is within a line. */
typedef enum {
	DATA_BOL,     /* at the start of a line */
	DATA_DOT,     /* a line started with "." */
	DATA_DOT_CR,  /* a line started with ".\r" */
	DATA_MID,     /* inside a line */
} data_state;

struct tr_lmtp_session {
	const tr_lmtp_settings *settings;
	const tr_lmtp_hook *hook;
	char *client;
	char *id;
	session_state state;
	bool lmtp;            /* greeted with LHLO */
	bool esmtp;           /* LHLO or EHLO: parameters allowed */
	char *helo;
	unsigned errors;

	GString *line;        /* command being read, without its LF */
	bool line_overlong;   /* the current line passed command_bytes: skipping to LF */

	char *mail_from;
	bool body_8bit;
	GPtrArray *rcpts;     /* char *, without <> */
	GString *data;
	data_state dstate;
	bool pending_cr;      /* a CR was read inside a line; LF may follow */
	bool too_big;
};

typedef struct {
	int code;
	const char *enhanced;
	const char *text;
} default_reply;

static const default_reply result_defaults[] = {
	[TR_LMTP_DEFER] = { 451, "4.3.0", "Temporary failure, try again later" },
	[TR_LMTP_DEFER_FULL] = { 452, "4.3.1", "Insufficient system storage, try again later" },
	[TR_LMTP_DELIVERED] = { 250, "2.0.0", "Ok" },
	[TR_LMTP_REJECT] = { 550, "5.7.1", "Rejected" },
};

const char *tr_lmtp_result_name(tr_lmtp_result result)
{
	switch (result) {
	case TR_LMTP_DEFER: return "451 4.3.0";
	case TR_LMTP_DEFER_FULL: return "452 4.3.1";
	case TR_LMTP_DELIVERED: return "250 2.0.0";
	case TR_LMTP_REJECT: return "550 5.7.1";
	}
	return "451 4.3.0";
}

static void reply(GString *out, int code, const char *enhanced, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void reply(GString *out, int code, const char *enhanced, const char *fmt, ...)
{
	g_string_append_printf(out, "%d %s ", code, enhanced);
	va_list ap;
	va_start(ap, fmt);
	g_string_append_vprintf(out, fmt, ap);
	va_end(ap);
	g_string_append(out, "\r\n");
}

static void session_close(tr_lmtp_session *s)
{
	s->state = ST_CLOSED;
}

/* A protocol error: the reply, and after too many of them 421. */
static void error_reply(tr_lmtp_session *s, GString *out, int code, const char *enhanced,
                        const char *text)
{
	reply(out, code, enhanced, "%s", text);
	if (++s->errors >= (unsigned)s->settings->limits.errors) {
		reply(out, 421, "4.7.0", "%s Error: too many errors", s->settings->hostname);
		session_close(s);
	}
}

static void reset_transaction(tr_lmtp_session *s)
{
	g_clear_pointer(&s->mail_from, g_free);
	s->body_8bit = false;
	g_ptr_array_set_size(s->rcpts, 0);
	/* Do not keep a large buffer alive in an idle connection. */
	if (s->data->allocated_len > 1024 * 1024) {
		g_string_free(s->data, TRUE);
		s->data = g_string_sized_new(16 * 1024);
	} else {
		g_string_truncate(s->data, 0);
	}
	s->too_big = false;
	s->pending_cr = false;
	s->dstate = DATA_BOL;
	if (s->state == ST_MAIL || s->state == ST_DATA)
		s->state = ST_READY;
}

tr_lmtp_session *tr_lmtp_session_new(const tr_lmtp_settings *settings, const tr_lmtp_hook *hook,
                                     const char *client, const char *session_id)
{
	tr_lmtp_session *s = g_new0(tr_lmtp_session, 1);
	s->settings = settings;
	s->hook = hook;
	s->client = g_strdup(client != NULL ? client : "test");
	s->id = g_strdup(session_id != NULL ? session_id : "-");
	s->line = g_string_sized_new(256);
	s->rcpts = g_ptr_array_new_with_free_func(g_free);
	s->data = g_string_sized_new(16 * 1024);
	s->state = ST_START;
	return s;
}

void tr_lmtp_session_free(tr_lmtp_session **sp)
{
	tr_lmtp_session *s = *sp;
	if (s == NULL)
		return;
	*sp = NULL;
	g_free(s->client);
	g_free(s->id);
	g_free(s->helo);
	g_free(s->mail_from);
	g_string_free(s->line, TRUE);
	g_ptr_array_free(s->rcpts, TRUE);
	g_string_free(s->data, TRUE);
	g_free(s);
}

void tr_lmtp_session_greet(tr_lmtp_session *s, GString *out)
{
	reply(out, 220, "2.0.0", "%s LMTP/ESMTP triage ready", s->settings->hostname);
}

bool tr_lmtp_session_closed(const tr_lmtp_session *s)
{
	return s->state == ST_CLOSED;
}

bool tr_lmtp_session_busy(const tr_lmtp_session *s)
{
	return s->state == ST_MAIL || s->state == ST_DATA;
}

bool tr_lmtp_session_in_data(const tr_lmtp_session *s)
{
	return s->state == ST_DATA;
}

void tr_lmtp_session_timeout(tr_lmtp_session *s, GString *out)
{
	if (s->state == ST_CLOSED)
		return;
	reply(out, 421, "4.4.2", "%s Error: timeout exceeded", s->settings->hostname);
	reset_transaction(s);
	session_close(s);
}

void tr_lmtp_session_shutdown(tr_lmtp_session *s, GString *out)
{
	if (s->state == ST_CLOSED)
		return;
	reply(out, 421, "4.3.2", "%s Service shutting down, try again later", s->settings->hostname);
	reset_transaction(s);
	session_close(s);
}

void tr_lmtp_session_eof(tr_lmtp_session *s)
{
	reset_transaction(s);
	session_close(s);
}

/* ---- addresses ---- */

static bool is_atext(unsigned char c)
{
	return g_ascii_isalnum(c) || (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~.", c) != NULL);
}

static bool domain_valid(const char *d, size_t len)
{
	if (len == 0 || len > 255)
		return false;
	if (d[0] == '[') {   /* address literal */
		if (len < 3 || d[len - 1] != ']')
			return false;
		for (size_t i = 1; i + 1 < len; i++) {
			unsigned char c = (unsigned char)d[i];
			if (c <= 0x20 || c >= 0x7f || c == '[' || c == ']' || c == '\\')
				return false;
		}
		return true;
	}
	size_t label = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)d[i];
		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if (g_ascii_isalnum(c) || c == '-' || c == '_') {
			if (++label > 63)
				return false;
		} else {
			return false;
		}
	}
	return label > 0;
}

/*
 * Validate the path between < and > (RFC 5321 4.1.2, without SMTPUTF8):
 * a source route is skipped, the local part is a dot-atom or a quoted
 * string, the domain a host name or an address literal.  Returns the
 * mailbox (after any source route) or NULL.
 */
static const char *address_check(const char *a, size_t len, bool recipient, size_t max_len,
                                 size_t *mailbox_len_r)
{
	if (len > max_len)
		return NULL;
	if (len == 0)
		return recipient ? NULL : (*mailbox_len_r = 0, a);
	if (a[0] == '@') {   /* "@relay1,@relay2:" source route: ignored */
		const char *colon = memchr(a, ':', len);
		if (colon == NULL)
			return NULL;
		for (const char *p = a; p < colon; p++)
			if (*p != '@' && *p != ',' && !is_atext((unsigned char)*p) && *p != '[' && *p != ']')
				return NULL;
		len -= (size_t)(colon + 1 - a);
		a = colon + 1;
		if (len == 0)
			return NULL;
	}
	if (recipient && len == 10 && g_ascii_strncasecmp(a, "postmaster", 10) == 0) {
		*mailbox_len_r = len;
		return a;
	}
	size_t i = 0;
	if (a[0] == '"') {
		for (i = 1; i < len && a[i] != '"'; i++) {
			unsigned char c = (unsigned char)a[i];
			if (c == '\\' && i + 1 < len)
				c = (unsigned char)a[++i];
			if (c < 0x20 || c >= 0x7f)
				return NULL;
		}
		if (i >= len || i == 1)
			return NULL;
		i++;
	} else {
		while (i < len && a[i] != '@') {
			if (!is_atext((unsigned char)a[i]))
				return NULL;
			i++;
		}
		if (i == 0)
			return NULL;
	}
	if (i >= len || a[i] != '@' || !domain_valid(a + i + 1, len - i - 1))
		return NULL;
	*mailbox_len_r = len;
	return a;
}

/*
 * Split "FROM:<path> params" (after the verb): the path between the
 * brackets (quotes respected) and what follows.  False on a syntax error.
 */
static bool parse_path(const char *args, const char *keyword, const char **path_r, size_t *len_r,
                       const char **params_r)
{
	size_t klen = strlen(keyword);
	if (g_ascii_strncasecmp(args, keyword, klen) != 0)
		return false;
	const char *p = args + klen;
	while (*p == ' ')
		p++;
	if (*p != '<')
		return false;
	const char *start = ++p;
	bool quoted = false;
	for (; *p != '\0'; p++) {
		if (quoted && *p == '\\' && p[1] != '\0')
			p++;
		else if (*p == '"')
			quoted = !quoted;
		else if (*p == '>' && !quoted)
			break;
	}
	if (*p != '>')
		return false;
	*path_r = start;
	*len_r = (size_t)(p - start);
	p++;
	if (*p != '\0' && *p != ' ')
		return false;
	while (*p == ' ')
		p++;
	*params_r = p;
	return true;
}

/* ---- commands ---- */

static void cmd_greeting(tr_lmtp_session *s, const char *verb, const char *args, GString *out)
{
	if (*args == '\0') {
		char text[64];
		g_snprintf(text, sizeof(text), "Syntax: %s hostname", verb);
		error_reply(s, out, 501, "5.5.4", text);
		return;
	}
	reset_transaction(s);
	g_free(s->helo);
	/* It goes into a Received: header: printable, no spaces, bounded. */
	size_t n = strcspn(args, " ");
	if (n > 255)
		n = 255;
	s->helo = g_strndup(args, n);
	for (char *c = s->helo; *c != '\0'; c++)
		if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f || *c == '(' || *c == ')')
			*c = '?';
	s->lmtp = g_ascii_strcasecmp(verb, "LHLO") == 0;
	s->esmtp = g_ascii_strcasecmp(verb, "HELO") != 0;
	s->state = ST_READY;
	if (!s->esmtp) {
		reply(out, 250, "2.0.0", "%s", s->settings->hostname);
		return;
	}
	/* The lines of a multi-line reply carry no enhanced code (RFC 2034 allows
	 * either; every client accepts this form, Postfix sends it). */
	g_string_append_printf(out,
	                       "250-%s\r\n250-PIPELINING\r\n250-SIZE %" G_GINT64_FORMAT "\r\n"
	                       "250-ENHANCEDSTATUSCODES\r\n250 8BITMIME\r\n",
	                       s->settings->hostname, (gint64)s->settings->limits.message_bytes);
}

static void cmd_mail(tr_lmtp_session *s, const char *args, GString *out)
{
	if (s->state == ST_START) {
		error_reply(s, out, 503, "5.5.1", "Error: send LHLO, EHLO or HELO first");
		return;
	}
	if (s->state == ST_MAIL) {
		error_reply(s, out, 503, "5.5.1", "Error: nested MAIL command");
		return;
	}
	const char *path, *params;
	size_t len, mailbox_len;
	if (!parse_path(args, "FROM:", &path, &len, &params)) {
		error_reply(s, out, 501, "5.5.4", "Syntax: MAIL FROM:<address>");
		return;
	}
	const char *mailbox = address_check(path, len, false, (size_t)s->settings->limits.address_bytes,
	                                    &mailbox_len);
	if (mailbox == NULL) {
		error_reply(s, out, 501, "5.1.7", "Bad sender address syntax");
		return;
	}
	bool body_8bit = false;
	char **words = g_strsplit(params, " ", -1);
	for (char **w = words; *w != NULL; w++) {
		if (**w == '\0')
			continue;
		if (!s->esmtp) {
			error_reply(s, out, 555, "5.5.4", "Error: parameters need LHLO or EHLO");
			goto out;
		}
		if (g_ascii_strncasecmp(*w, "SIZE=", 5) == 0) {
			const char *n = *w + 5;
			if (*n == '\0' || strspn(n, "0123456789") != strlen(n)) {
				error_reply(s, out, 501, "5.5.4", "Error: bad SIZE= value");
				goto out;
			}
			/* More than 19 digits cannot fit and is over any limit anyway. */
			if (strlen(n) > 18 || g_ascii_strtoull(n, NULL, 10) > (guint64)s->settings->limits.message_bytes) {
				reply(out, 552, "5.3.4", "Error: message size exceeds fixed limit");
				goto out;
			}
		} else if (g_ascii_strcasecmp(*w, "BODY=8BITMIME") == 0) {
			body_8bit = true;
		} else if (g_ascii_strcasecmp(*w, "BODY=7BIT") == 0) {
			body_8bit = false;
		} else {
			error_reply(s, out, 555, "5.5.4", "Error: unsupported MAIL parameter");
			goto out;
		}
	}
	reset_transaction(s);
	s->mail_from = g_strndup(mailbox, mailbox_len);
	s->body_8bit = body_8bit;
	s->state = ST_MAIL;
	reply(out, 250, "2.1.0", "Ok");
out:
	g_strfreev(words);
}

static void cmd_rcpt(tr_lmtp_session *s, const char *args, GString *out)
{
	if (s->state != ST_MAIL) {
		error_reply(s, out, 503, "5.5.1", "Error: need MAIL command");
		return;
	}
	const char *path, *params;
	size_t len, mailbox_len;
	if (!parse_path(args, "TO:", &path, &len, &params)) {
		error_reply(s, out, 501, "5.5.4", "Syntax: RCPT TO:<address>");
		return;
	}
	if (*params != '\0') {
		error_reply(s, out, 555, "5.5.4", "Error: unsupported RCPT parameter");
		return;
	}
	const char *mailbox = address_check(path, len, true, (size_t)s->settings->limits.address_bytes,
	                                    &mailbox_len);
	if (mailbox == NULL) {
		error_reply(s, out, 501, "5.1.3", "Bad recipient address syntax");
		return;
	}
	if (s->rcpts->len >= (guint)s->settings->limits.recipients) {
		reply(out, 452, "4.5.3", "Error: too many recipients");
		return;
	}
	g_ptr_array_add(s->rcpts, g_strndup(mailbox, mailbox_len));
	reply(out, 250, "2.1.5", "Ok");
}

static void cmd_data(tr_lmtp_session *s, const char *args, GString *out)
{
	if (*args != '\0') {
		error_reply(s, out, 501, "5.5.4", "Syntax: DATA");
		return;
	}
	if (s->state != ST_MAIL) {
		error_reply(s, out, 503, "5.5.1", "Error: need MAIL command");
		return;
	}
	if (s->rcpts->len == 0) {
		/* RFC 2033 4.2: LMTP must answer 503 here; SMTP servers say 554. */
		error_reply(s, out, s->lmtp ? 503 : 554, "5.5.1", "Error: no valid recipients");
		return;
	}
	g_string_truncate(s->data, 0);
	s->dstate = DATA_BOL;
	s->pending_cr = false;
	s->too_big = false;
	s->state = ST_DATA;
	reply(out, 354, "2.0.0", "End data with <CR><LF>.<CR><LF>");
}

static void command(tr_lmtp_session *s, const char *line, size_t len, GString *out)
{
	if (memchr(line, '\0', len) != NULL) {
		error_reply(s, out, 500, "5.5.2", "Error: NUL character in command");
		return;
	}
	size_t verb_len = strcspn(line, " ");
	char verb[16];
	if (verb_len == 0 || verb_len >= sizeof(verb)) {
		error_reply(s, out, 500, "5.5.2", "Error: command not recognized");
		return;
	}
	memcpy(verb, line, verb_len);
	verb[verb_len] = '\0';
	const char *args = line + verb_len;
	while (*args == ' ')
		args++;
	/* Trailing spaces are common in hand-typed and some robot commands. */
	char *trimmed = g_strdup(args);
	g_strchomp(trimmed);

	if (g_ascii_strcasecmp(verb, "LHLO") == 0 || g_ascii_strcasecmp(verb, "EHLO") == 0 ||
	    g_ascii_strcasecmp(verb, "HELO") == 0) {
		for (char *v = verb; *v != '\0'; v++)
			*v = g_ascii_toupper(*v);
		cmd_greeting(s, verb, trimmed, out);
	} else if (g_ascii_strcasecmp(verb, "MAIL") == 0) {
		cmd_mail(s, trimmed, out);
	} else if (g_ascii_strcasecmp(verb, "RCPT") == 0) {
		cmd_rcpt(s, trimmed, out);
	} else if (g_ascii_strcasecmp(verb, "DATA") == 0) {
		cmd_data(s, trimmed, out);
	} else if (g_ascii_strcasecmp(verb, "RSET") == 0) {
		if (*trimmed != '\0') {
			error_reply(s, out, 501, "5.5.4", "Syntax: RSET");
		} else {
			reset_transaction(s);
			reply(out, 250, "2.0.0", "Ok");
		}
	} else if (g_ascii_strcasecmp(verb, "NOOP") == 0) {
		reply(out, 250, "2.0.0", "Ok");
	} else if (g_ascii_strcasecmp(verb, "QUIT") == 0) {
		reply(out, 221, "2.0.0", "Bye");
		reset_transaction(s);
		session_close(s);
	} else if (g_ascii_strcasecmp(verb, "VRFY") == 0) {
		if (*trimmed == '\0')
			error_reply(s, out, 501, "5.5.4", "Syntax: VRFY address");
		else
			reply(out, 252, "2.5.2", "Cannot VRFY user, but will accept message");
	} else if (g_ascii_strcasecmp(verb, "HELP") == 0) {
		reply(out, 214, "2.0.0", "Commands: LHLO EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY");
	} else if (g_ascii_strcasecmp(verb, "EXPN") == 0 || g_ascii_strcasecmp(verb, "ETRN") == 0 ||
	           g_ascii_strcasecmp(verb, "TURN") == 0 || g_ascii_strcasecmp(verb, "ATRN") == 0 ||
	           g_ascii_strcasecmp(verb, "BDAT") == 0 || g_ascii_strcasecmp(verb, "STARTTLS") == 0 ||
	           g_ascii_strcasecmp(verb, "AUTH") == 0 || g_ascii_strcasecmp(verb, "SEND") == 0 ||
	           g_ascii_strcasecmp(verb, "SOML") == 0 || g_ascii_strcasecmp(verb, "SAML") == 0 ||
	           g_ascii_strcasecmp(verb, "XCLIENT") == 0 || g_ascii_strcasecmp(verb, "XFORWARD") == 0) {
		error_reply(s, out, 502, "5.5.1", "Error: command not implemented");
	} else {
		error_reply(s, out, 500, "5.5.2", "Error: command not recognized");
	}
	g_free(trimmed);
}

/* Bytes up to and including the next LF: one command line. */
static const char *feed_command(tr_lmtp_session *s, const char *p, const char *end, GString *out)
{
	const char *lf = memchr(p, '\n', (size_t)(end - p));
	const char *stop = lf != NULL ? lf : end;
	size_t n = (size_t)(stop - p);
	if (!s->line_overlong) {
		if (s->line->len + n > (size_t)s->settings->limits.command_bytes) {
			/* Skip to the end of the line without keeping it. */
			s->line_overlong = true;
			g_string_truncate(s->line, 0);
		} else {
			g_string_append_len(s->line, p, (gssize)n);
		}
	}
	if (lf == NULL)
		return end;
	if (s->line_overlong) {
		s->line_overlong = false;
		error_reply(s, out, 500, "5.5.2", "Error: line too long");
	} else {
		if (s->line->len > 0 && s->line->str[s->line->len - 1] == '\r')
			g_string_truncate(s->line, s->line->len - 1);
		command(s, s->line->str, s->line->len, out);
	}
	g_string_truncate(s->line, 0);
	return lf + 1;
}

static void data_append(tr_lmtp_session *s, const char *p, size_t n)
{
	if (s->too_big)
		return;
	if (s->data->len + n > (size_t)s->settings->limits.message_bytes) {
		/* Read on to the final dot, keep nothing more. */
		s->too_big = true;
		g_string_free(s->data, TRUE);
		s->data = g_string_sized_new(16 * 1024);
		return;
	}
	g_string_append_len(s->data, p, (gssize)n);
}

/* The reply line for one recipient's status (rcpt NULL in SMTP mode). */
static void status_reply(GString *out, const tr_lmtp_rcpt_status *st, const char *rcpt)
{
	tr_lmtp_result result = st->result;
	if ((unsigned)result > TR_LMTP_REJECT)
		result = TR_LMTP_DEFER;
	const default_reply *d = &result_defaults[result];
	int code = st->code;
	if (code / 100 != d->code / 100 || code > 599)
		code = d->code;
	/* The hook's text, printable ASCII only (it may quote a next hop). */
	char text[sizeof(st->text)];
	size_t n = 0;
	for (size_t i = 0; i < sizeof(st->text) - 1 && st->text[i] != '\0'; i++) {
		unsigned char c = (unsigned char)st->text[i];
		text[n++] = c >= 0x20 && c < 0x7f ? (char)c : ' ';
	}
	text[n] = '\0';
	g_strstrip(text);
	/* Keep an enhanced code of the right class at the start, else add ours. */
	bool has_enhanced = g_ascii_isdigit(text[0]) && text[0] - '0' == code / 100 && text[1] == '.' &&
	                    g_ascii_isdigit(text[2]);
	g_string_append_printf(out, "%d ", code);
	if (!has_enhanced)
		g_string_append_printf(out, "%s ", d->enhanced);
	if (rcpt != NULL && text[0] == '\0')
		g_string_append_printf(out, "<%s> ", rcpt);
	g_string_append(out, text[0] != '\0' ? text : d->text);
	g_string_append(out, "\r\n");
}

static void deliver(tr_lmtp_session *s, GString *out)
{
	size_t n = s->rcpts->len;
	tr_lmtp_rcpt_status *status = g_new0(tr_lmtp_rcpt_status, n);
	for (size_t i = 0; i < n; i++)
		status[i].result = TR_LMTP_DEFER;
	if (s->hook != NULL && s->hook->deliver != NULL) {
		tr_lmtp_envelope env = {
			.lmtp = s->lmtp,
			.session_id = s->id,
			.helo = s->helo != NULL ? s->helo : "",
			.client = s->client,
			.mail_from = s->mail_from,
			.body_8bit = s->body_8bit,
			.rcpts = (const char *const *)s->rcpts->pdata,
			.rcpts_count = n,
			.data = s->data->str,
			.len = s->data->len,
		};
		s->hook->deliver(s->hook->context, &env, status);
	}
	if (s->lmtp) {
		for (size_t i = 0; i < n; i++)
			status_reply(out, &status[i], g_ptr_array_index(s->rcpts, i));
	} else {
		/* One reply for all: only a unanimous outcome can be reported as
		 * such; mixed outcomes are retried (redelivery is recognised). */
		bool same = true;
		for (size_t i = 1; i < n; i++)
			same = same && status[i].result == status[0].result;
		if (same) {
			status_reply(out, &status[0], NULL);
		} else {
			reply(out, 451, "4.3.0", "Error: not every recipient could be delivered, try again later");
		}
	}
	g_free(status);
}

static void end_of_data(tr_lmtp_session *s, GString *out)
{
	if (s->too_big) {
		size_t replies = s->lmtp ? s->rcpts->len : 1;
		for (size_t i = 0; i < replies; i++)
			reply(out, 552, "5.3.4", "Error: message too big");
	} else {
		deliver(s, out);
	}
	s->state = ST_READY;
	reset_transaction(s);
}

/* Message text, dot-unstuffed, line ends made CRLF, until the final dot. */
static const char *feed_data(tr_lmtp_session *s, const char *p, const char *end, GString *out)
{
	while (p < end) {
		char c = *p;
		switch (s->dstate) {
		case DATA_BOL:
			if (c == '.') {
				s->dstate = DATA_DOT;
				p++;
			} else {
				s->dstate = DATA_MID;
			}
			break;
		case DATA_DOT:
			if (c == '\r') {
				s->dstate = DATA_DOT_CR;
				p++;
			} else if (c == '\n') {
				end_of_data(s, out);
				return p + 1;
			} else {
				s->dstate = DATA_MID;   /* a stuffed dot: dropped */
			}
			break;
		case DATA_DOT_CR:
			if (c == '\n') {
				end_of_data(s, out);
				return p + 1;
			}
			/* ".\r" and more: the dot was stuffing, the CR is text. */
			s->pending_cr = true;
			s->dstate = DATA_MID;
			break;
		case DATA_MID: {
			const char *q = p;
			while (q < end && *q != '\r' && *q != '\n')
				q++;
			if (q > p) {
				if (s->pending_cr) {
					data_append(s, "\r", 1);
					s->pending_cr = false;
				}
				data_append(s, p, (size_t)(q - p));
				p = q;
			} else if (c == '\n') {
				s->pending_cr = false;
				data_append(s, "\r\n", 2);
				s->dstate = DATA_BOL;
				p++;
			} else {   /* CR: a line end if LF follows, else text */
				if (s->pending_cr)
					data_append(s, "\r", 1);
				s->pending_cr = true;
				p++;
			}
			break;
		}
		}
	}
	return p;
}

void tr_lmtp_session_feed(tr_lmtp_session *s, const void *data, size_t len, GString *out)
{
	const char *p = data, *end = p + len;
	while (p < end && s->state != ST_CLOSED) {
		if (s->state == ST_DATA)
			p = feed_data(s, p, end, out);
		else
			p = feed_command(s, p, end, out);
	}
}

/* ---- sockets ---- */

static int64_t now_ms(void)
{
	return g_get_monotonic_time() / 1000;
}

/* Wait for events on fd until deadline_ms (monotonic); 1 ready, 0 timeout, -1 error. */
static int wait_fd(int fd, short events, int64_t deadline_ms)
{
	for (;;) {
		int64_t left = deadline_ms - now_ms();
		if (left < 0)
			left = 0;
		struct pollfd pfd = { .fd = fd, .events = events };
		int r = poll(&pfd, 1, (int)MIN(left, 3600 * 1000));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0 && left > 0)
			continue;   /* capped wait ended early */
		return r > 0 ? 1 : 0;
	}
}

static bool write_all(int fd, const char *p, size_t len, int64_t timeout_s)
{
	int64_t deadline = now_ms() + timeout_s * 1000;
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (wait_fd(fd, POLLOUT, deadline) <= 0)
				return false;
			continue;
		}
		return false;
	}
	return true;
}

static void set_nonblocking(int fd)
{
	int flags = fcntl(fd, F_GETFL);
	if (flags >= 0)
		fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

/* Connect to addr within timeout_s; the socket is non-blocking. -1 with *error. */
static int connect_to(const tr_netaddr *addr, int64_t timeout_s, GError **error)
{
	int64_t deadline = now_ms() + timeout_s * 1000;
	if (addr->family == TR_NETADDR_UNIX) {
		struct sockaddr_un sun = { .sun_family = AF_UNIX };
		g_strlcpy(sun.sun_path, addr->path, sizeof(sun.sun_path));
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0 || (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 && errno != EINPROGRESS &&
		               errno != EAGAIN)) {
			g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "connect unix:%s: %s", addr->path,
			            g_strerror(errno));
			if (fd >= 0)
				close(fd);
			return -1;
		}
		return fd;
	}
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC }, *res = NULL;
	int rc = getaddrinfo(addr->host[0] != '\0' ? addr->host : "127.0.0.1", addr->port, &hints, &res);
	if (rc != 0) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_HOST_NOT_FOUND, "%s: %s", addr->host, gai_strerror(rc));
		return -1;
	}
	int fd = -1, last_errno = ECONNREFUSED;
	for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
		fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0) {
			last_errno = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		if (errno == EINPROGRESS && wait_fd(fd, POLLOUT, deadline) > 0) {
			int soerr = 0;
			socklen_t sl = sizeof(soerr);
			if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0)
				break;
			last_errno = soerr != 0 ? soerr : errno;
		} else {
			last_errno = errno == EINPROGRESS ? ETIMEDOUT : errno;
		}
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(last_errno), "connect %s:%s: %s", addr->host,
		            addr->port, g_strerror(last_errno));
	return fd;
}

/* ---- server ---- */

typedef struct conn conn;

struct tr_lmtp_server {
	const tr_lmtp_settings *settings;
	tr_lmtp_hook hook;
	tr_netaddr addr;
	char *address;
	int listen_fd;
	int stop_pipe[2];
	gint stopping;
	GMutex lock;
	GCond changed;
	GHashTable *conns;   /* conn * */
	unsigned active;
	guint64 serial;
	guint32 instance;    /* random prefix of session ids */
};

struct conn {
	tr_lmtp_server *server;
	int fd;
	char client[INET6_ADDRSTRLEN + 8];
	char id[32];
};

static int bind_unix(const tr_netaddr *addr, unsigned mode, GError **error)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	g_strlcpy(sun.sun_path, addr->path, sizeof(sun.sun_path));
	struct stat st;
	/* A socket left by an earlier run is replaced; anything else is not ours. */
	if (lstat(addr->path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_EXISTS, "%s exists and is not a socket", addr->path);
			return -1;
		}
		unlink(addr->path);
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || chmod(addr->path, mode) < 0 ||
	    listen(fd, 128) < 0) {
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "unix:%s: %s", addr->path,
		            g_strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static int bind_inet(const tr_netaddr *addr, GError **error)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE, .ai_family = AF_UNSPEC };
	struct addrinfo *res = NULL;
	int rc = getaddrinfo(addr->host[0] != '\0' ? addr->host : NULL, addr->port, &hints, &res);
	if (rc != 0) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_HOST_NOT_FOUND, "%s: %s", addr->host, gai_strerror(rc));
		return -1;
	}
	int fd = -1, last_errno = EADDRNOTAVAIL;
	for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
		fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			last_errno = errno;
			continue;
		}
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 128) == 0)
			break;
		last_errno = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(last_errno), "%s:%s: %s",
		            addr->host[0] != '\0' ? addr->host : "*", addr->port, g_strerror(last_errno));
	return fd;
}

tr_lmtp_server *tr_lmtp_server_new(const tr_lmtp_settings *settings, const tr_lmtp_hook *hook,
                                   GError **error)
{
	tr_netaddr addr;
	if (!tr_netaddr_parse(settings->listen, &addr, error))
		return NULL;
	int fd = addr.family == TR_NETADDR_UNIX ? bind_unix(&addr, settings->socket_mode, error)
	                                                : bind_inet(&addr, error);
	if (fd < 0)
		return NULL;
	set_nonblocking(fd);
	tr_lmtp_server *srv = g_new0(tr_lmtp_server, 1);
	if (pipe2(srv->stop_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "pipe: %s", g_strerror(errno));
		close(fd);
		g_free(srv);
		return NULL;
	}
	srv->settings = settings;
	if (hook != NULL)
		srv->hook = *hook;
	srv->addr = addr;
	srv->listen_fd = fd;
	srv->conns = g_hash_table_new(g_direct_hash, g_direct_equal);
	srv->instance = g_random_int();
	g_mutex_init(&srv->lock);
	g_cond_init(&srv->changed);
	if (addr.family == TR_NETADDR_INET) {
		/* Port 0 binds any free port: name the one we got. */
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
			char host[INET6_ADDRSTRLEN] = "";
			unsigned port = 0;
			if (ss.ss_family == AF_INET) {
				inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host, sizeof(host));
				port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
			} else if (ss.ss_family == AF_INET6) {
				inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, host, sizeof(host));
				port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
			}
			g_strlcpy(srv->addr.host, host, sizeof(srv->addr.host));
			g_snprintf(srv->addr.port, sizeof(srv->addr.port), "%u", port);
		}
	}
	srv->address = tr_netaddr_describe(&srv->addr);
	return srv;
}

const char *tr_lmtp_server_address(const tr_lmtp_server *srv)
{
	return srv->address;
}

void tr_lmtp_server_stop(tr_lmtp_server *srv)
{
	ssize_t n = write(srv->stop_pipe[1], "x", 1);
	(void)n;
}

unsigned tr_lmtp_server_connections(tr_lmtp_server *srv)
{
	g_mutex_lock(&srv->lock);
	unsigned n = srv->active;
	g_mutex_unlock(&srv->lock);
	return n;
}

/*
 * Close gracefully: a client that pipelined more than we read (after QUIT,
 * or when 421 ended the session) must still get our last replies, but
 * closing with unread input makes the kernel send a reset that can
 * destroy them.  So: end our side, read and drop what is left for a
 * moment, then close.
 */
static void linger_close(int fd)
{
	shutdown(fd, SHUT_WR);
	int64_t deadline = now_ms() + 1000;
	size_t total = 0;
	char buf[4096];
	while (total < 1024 * 1024 && wait_fd(fd, POLLIN, deadline) > 0) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			break;
		total += (size_t)n;
	}
}

static void conn_done(conn *c)
{
	linger_close(c->fd);
	tr_lmtp_server *srv = c->server;
	g_mutex_lock(&srv->lock);
	g_hash_table_remove(srv->conns, c);
	close(c->fd);
	srv->active--;
	g_cond_broadcast(&srv->changed);
	g_mutex_unlock(&srv->lock);
	g_free(c);
}

static gpointer conn_main(gpointer data)
{
	conn *c = data;
	tr_lmtp_server *srv = c->server;
	const tr_lmtp_limits *limits = &srv->settings->limits;
	tr_lmtp_session *s = tr_lmtp_session_new(srv->settings, &srv->hook, c->client, c->id);
	GString *out = g_string_sized_new(1024);
	char *buf = g_malloc(READ_CHUNK);
	bool stopping = false;
	tr_lmtp_session_greet(s, out);
	for (;;) {
		/* Every byte read so far is consumed: replies to a pipelined group
		 * go out together (RFC 2920). */
		if (out->len > 0) {
			if (!write_all(c->fd, out->str, out->len, limits->timeout))
				break;
			g_string_truncate(out, 0);
		}
		if (tr_lmtp_session_closed(s))
			break;
		stopping = stopping || g_atomic_int_get(&srv->stopping);
		if (stopping && !tr_lmtp_session_busy(s)) {
			tr_lmtp_session_shutdown(s, out);
			continue;
		}
		int64_t timeout = tr_lmtp_session_in_data(s) ? limits->data_timeout : limits->timeout;
		struct pollfd pfd[2] = {
			{ .fd = c->fd, .events = POLLIN },
			{ .fd = srv->stop_pipe[0], .events = POLLIN },
		};
		int r = poll(pfd, stopping ? 1 : 2, (int)(timeout * 1000));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			break;
		if (r == 0) {
			tr_log_info("lmtp %s: %s: timeout", c->id, c->client);
			tr_lmtp_session_timeout(s, out);
			continue;
		}
		if (!stopping && (pfd[1].revents & POLLIN)) {
			stopping = true;
			if (!(pfd[0].revents & POLLIN))
				continue;
		}
		if (!(pfd[0].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		ssize_t n = read(c->fd, buf, READ_CHUNK);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0) {
			tr_lmtp_session_eof(s);
			break;
		}
		tr_lmtp_session_feed(s, buf, (size_t)n, out);
	}
	g_free(buf);
	g_string_free(out, TRUE);
	tr_lmtp_session_free(&s);
	conn_done(c);
	return NULL;
}

static void refuse(int fd, const char *hostname, const char *why)
{
	char line[300];
	int n = g_snprintf(line, sizeof(line), "421 4.3.2 %s Error: %s, try again later\r\n", hostname, why);
	/* Best effort on a fresh socket: the line fits in any send buffer. */
	ssize_t w = send(fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)w;
	close(fd);
}

static void accept_one(tr_lmtp_server *srv)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int fd = accept4(srv->listen_fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
			tr_log_warning("lmtp: accept: %s", g_strerror(errno));
			g_usleep(100 * 1000);   /* do not spin while out of descriptors */
		}
		return;
	}
	g_mutex_lock(&srv->lock);
	if (srv->active >= (unsigned)srv->settings->limits.connections) {
		g_mutex_unlock(&srv->lock);
		tr_log_info("lmtp: connection limit %u reached, refusing a client", srv->active);
		refuse(fd, srv->settings->hostname, "too many connections");
		return;
	}
	conn *c = g_new0(conn, 1);
	c->server = srv;
	c->fd = fd;
	g_snprintf(c->id, sizeof(c->id), "%08X.%" G_GUINT64_FORMAT, srv->instance, ++srv->serial);
	if (ss.ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, c->client, sizeof(c->client));
	else if (ss.ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, c->client, sizeof(c->client));
	else
		g_strlcpy(c->client, "unix", sizeof(c->client));
	srv->active++;
	g_hash_table_add(srv->conns, c);
	g_mutex_unlock(&srv->lock);

	GError *error = NULL;
	GThread *thread = g_thread_try_new("lmtp-conn", conn_main, c, &error);
	if (thread == NULL) {
		tr_log_warning("lmtp: cannot start a connection thread: %s", error->message);
		g_clear_error(&error);
		g_mutex_lock(&srv->lock);
		g_hash_table_remove(srv->conns, c);
		srv->active--;
		g_mutex_unlock(&srv->lock);
		refuse(fd, srv->settings->hostname, "out of resources");
		g_free(c);
		return;
	}
	g_thread_unref(thread);
}

void tr_lmtp_server_run(tr_lmtp_server *srv)
{
	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = srv->listen_fd, .events = POLLIN },
			{ .fd = srv->stop_pipe[0], .events = POLLIN },
		};
		int r = poll(pfd, 2, -1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			tr_log_warning("lmtp: poll: %s", g_strerror(errno));
			break;
		}
		if (pfd[1].revents & POLLIN)
			break;
		if (pfd[0].revents & POLLIN)
			accept_one(srv);
	}
	/* Stop accepting; connections see the flag (and the readable pipe). */
	g_atomic_int_set(&srv->stopping, 1);
	close(srv->listen_fd);
	srv->listen_fd = -1;
	if (srv->addr.family == TR_NETADDR_UNIX)
		unlink(srv->addr.path);

	g_mutex_lock(&srv->lock);
	if (srv->active > 0)
		tr_log_info("lmtp: stopping, %u connection%s to finish", srv->active, srv->active == 1 ? "" : "s");
	gint64 deadline = g_get_monotonic_time() + srv->settings->limits.shutdown_timeout * G_USEC_PER_SEC;
	while (srv->active > 0 && g_cond_wait_until(&srv->changed, &srv->lock, deadline))
		;
	if (srv->active > 0) {
		/* Out of time: stop reading.  A transaction under way loses its
		 * connection and the client retries; one inside the delivery
		 * hook still finishes and writes its reply. */
		tr_log_info("lmtp: shutdown timeout, closing %u connection%s", srv->active,
		          srv->active == 1 ? "" : "s");
		GHashTableIter it;
		gpointer key;
		g_hash_table_iter_init(&it, srv->conns);
		while (g_hash_table_iter_next(&it, &key, NULL))
			shutdown(((conn *)key)->fd, SHUT_RD);
		while (srv->active > 0)
			g_cond_wait(&srv->changed, &srv->lock);
	}
	g_mutex_unlock(&srv->lock);
}

void tr_lmtp_server_free(tr_lmtp_server **srvp)
{
	tr_lmtp_server *srv = *srvp;
	if (srv == NULL)
		return;
	*srvp = NULL;
	g_return_if_fail(srv->active == 0);
	if (srv->listen_fd >= 0) {
		close(srv->listen_fd);
		if (srv->addr.family == TR_NETADDR_UNIX)
			unlink(srv->addr.path);
	}
	close(srv->stop_pipe[0]);
	close(srv->stop_pipe[1]);
	g_hash_table_destroy(srv->conns);
	g_mutex_clear(&srv->lock);
	g_cond_clear(&srv->changed);
	g_free(srv->address);
	g_free(srv);
}

/* ---- client ---- */

bool tr_lmtp_next_hop_parse(const char *spec, tr_lmtp_next_hop *hop, GError **error)
{
	memset(hop, 0, sizeof(*hop));
	hop->lmtp = true;
	const char *rest = spec;
	if (g_str_has_prefix(spec, "lmtp:")) {
		rest = spec + 5;
	} else if (g_str_has_prefix(spec, "smtp:")) {
		rest = spec + 5;
		hop->lmtp = false;
	}
	if (!tr_netaddr_parse(rest, &hop->addr, error)) {
		g_prefix_error(error, "next hop: ");
		return false;
	}
	return true;
}

typedef struct {
	int fd;
	int64_t timeout_s;
	GString *in;      /* bytes read and not yet consumed */
	char failure[160];
} hop_conn;

/* One reply (possibly multi-line): its code, and its text (the lines'
 * texts joined by spaces, bounded); -1 on I/O error or garbage. */
static int hop_reply(hop_conn *h, GString *text)
{
	g_string_truncate(text, 0);
	int64_t deadline = now_ms() + h->timeout_s * 1000;
	for (unsigned lines = 0; lines < 100;) {
		char *lf = memchr(h->in->str, '\n', h->in->len);
		if (lf == NULL) {
			if (h->in->len > 4096) {
				g_strlcpy(h->failure, "reply line too long", sizeof(h->failure));
				return -1;
			}
			int w = wait_fd(h->fd, POLLIN, deadline);
			if (w <= 0) {
				g_strlcpy(h->failure, w == 0 ? "timeout waiting for a reply" : "poll failed",
				          sizeof(h->failure));
				return -1;
			}
			char buf[4096];
			ssize_t n = read(h->fd, buf, sizeof(buf));
			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (n <= 0) {
				g_snprintf(h->failure, sizeof(h->failure), "connection closed%s%s",
				           n < 0 ? ": " : "", n < 0 ? g_strerror(errno) : "");
				return -1;
			}
			g_string_append_len(h->in, buf, n);
			continue;
		}
		size_t len = (size_t)(lf - h->in->str);
		char *line = g_strndup(h->in->str, len);
		g_string_erase(h->in, 0, (gssize)len + 1);
		g_strchomp(line);
		lines++;
		if (strlen(line) < 3 || !g_ascii_isdigit(line[0]) || !g_ascii_isdigit(line[1]) ||
		    !g_ascii_isdigit(line[2]) || (line[3] != '\0' && line[3] != ' ' && line[3] != '-')) {
			g_strlcpy(h->failure, "garbled reply", sizeof(h->failure));
			g_free(line);
			return -1;
		}
		if (text->len < 200 && line[3] != '\0') {
			if (text->len > 0)
				g_string_append_c(text, ' ');
			g_string_append(text, line + 4);
		}
		bool last = line[3] != '-';
		int code = atoi(line);
		g_free(line);
		if (last)
			return code;
	}
	g_strlcpy(h->failure, "too many reply lines", sizeof(h->failure));
	return -1;
}

static bool hop_send(hop_conn *h, const char *p, size_t len)
{
	if (!write_all(h->fd, p, len, h->timeout_s)) {
		g_snprintf(h->failure, sizeof(h->failure), "write failed: %s", g_strerror(errno));
		return false;
	}
	return true;
}

static int hop_command(hop_conn *h, GString *text, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int hop_command(hop_conn *h, GString *text, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *line = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	bool ok = hop_send(h, line, strlen(line));
	g_free(line);
	return ok ? hop_reply(h, text) : -1;
}

/* Dot-stuff and send the message, then the final dot. */
static bool hop_send_data(hop_conn *h, const char *data, size_t len)
{
	GString *buf = g_string_sized_new(READ_CHUNK + 1024);
	bool bol = true, ok = true;
	const char *p = data, *end = data + len;
	while (p < end && ok) {
		if (bol && *p == '.')
			g_string_append_c(buf, '.');
		const char *lf = memchr(p, '\n', (size_t)(end - p));
		const char *stop = lf != NULL ? lf + 1 : end;
		g_string_append_len(buf, p, stop - p);
		bol = lf != NULL;
		p = stop;
		if (buf->len >= READ_CHUNK) {
			ok = hop_send(h, buf->str, buf->len);
			g_string_truncate(buf, 0);
		}
	}
	if (len > 0 && !bol)
		g_string_append(buf, "\r\n");
	g_string_append(buf, ".\r\n");
	ok = ok && hop_send(h, buf->str, buf->len);
	g_string_free(buf, TRUE);
	return ok;
}

static void hop_status(tr_lmtp_rcpt_status *st, int code, const char *text, bool soft_bounce)
{
	st->code = code;
	if (code >= 200 && code < 300) {
		st->result = TR_LMTP_DELIVERED;
	} else if (code >= 500 && code < 600 && !soft_bounce) {
		st->result = TR_LMTP_REJECT;
	} else {
		st->result = TR_LMTP_DEFER;
		if (code < 400 || code >= 500)
			st->code = 451;
	}
	g_snprintf(st->text, sizeof(st->text), "%s", text);
}

void tr_lmtp_client_deliver(const tr_lmtp_next_hop *hop, const char *helo, int64_t timeout,
                            bool soft_bounce, const tr_lmtp_envelope *env, const char *data,
                            size_t len, tr_lmtp_rcpt_status *status)
{
	size_t n = env->rcpts_count;
	bool *pending = g_new0(bool, n);   /* accepted at RCPT, waiting for the DATA reply */
	bool *final = g_new0(bool, n);
	hop_conn h = { .fd = -1, .timeout_s = timeout, .in = g_string_sized_new(1024) };
	GString *text = g_string_sized_new(256);
	GError *error = NULL;
	char *where = tr_netaddr_describe(&hop->addr);
	int code;

	h.fd = connect_to(&hop->addr, timeout, &error);
	if (h.fd < 0) {
		g_strlcpy(h.failure, error->message, sizeof(h.failure));
		g_clear_error(&error);
		goto fail;
	}
	code = hop_reply(&h, text);
	if (code != 220) {
		if (code > 0)
			g_snprintf(h.failure, sizeof(h.failure), "greeting %d %s", code, text->str);
		goto fail;
	}
	code = hop_command(&h, text, "%s %s\r\n", hop->lmtp ? "LHLO" : "EHLO", helo);
	if (code / 100 != 2) {
		if (code > 0)
			g_snprintf(h.failure, sizeof(h.failure), "%s refused: %d %s", hop->lmtp ? "LHLO" : "EHLO",
			           code, text->str);
		goto fail;
	}
	code = hop_command(&h, text, "MAIL FROM:<%s>%s\r\n", env->mail_from, env->body_8bit ? " BODY=8BITMIME" : "");
	if (code < 0)
		goto fail;
	if (code / 100 != 2) {
		for (size_t i = 0; i < n; i++) {
			hop_status(&status[i], code, text->str, soft_bounce);
			final[i] = true;
		}
		goto quit;
	}
	size_t accepted = 0;
	for (size_t i = 0; i < n; i++) {
		code = hop_command(&h, text, "RCPT TO:<%s>\r\n", env->rcpts[i]);
		if (code < 0)
			goto fail;
		if (code / 100 == 2) {
			pending[i] = true;
			accepted++;
		} else {
			hop_status(&status[i], code, text->str, soft_bounce);
			final[i] = true;
		}
	}
	if (accepted == 0)
		goto quit;
	code = hop_command(&h, text, "DATA\r\n");
	if (code < 0)
		goto fail;
	if (code != 354) {
		for (size_t i = 0; i < n; i++) {
			if (pending[i]) {
				hop_status(&status[i], code, text->str, soft_bounce);
				final[i] = true;
			}
		}
		goto quit;
	}
	if (!hop_send_data(&h, data, len))
		goto fail;
	if (hop->lmtp) {
		for (size_t i = 0; i < n; i++) {
			if (!pending[i])
				continue;
			code = hop_reply(&h, text);
			if (code < 0)
				goto fail;
			hop_status(&status[i], code, text->str, soft_bounce);
			final[i] = true;
		}
	} else {
		code = hop_reply(&h, text);
		if (code < 0)
			goto fail;
		for (size_t i = 0; i < n; i++) {
			if (pending[i]) {
				hop_status(&status[i], code, text->str, soft_bounce);
				final[i] = true;
			}
		}
	}
quit:
	hop_command(&h, text, "QUIT\r\n");
	goto done;
fail:
	/* Whatever was not answered may or may not have arrived: retry it. */
	for (size_t i = 0; i < n; i++) {
		if (!final[i]) {
			status[i].result = TR_LMTP_DEFER;
			status[i].code = 451;
			g_snprintf(status[i].text, sizeof(status[i].text), "4.4.2 next hop %s: %s", where, h.failure);
		}
	}
	tr_log_info("lmtp %s: next hop %s: %s", env->session_id, where, h.failure);
done:
	if (h.fd >= 0)
		close(h.fd);
	g_string_free(h.in, TRUE);
	g_string_free(text, TRUE);
	g_free(where);
	g_free(pending);
	g_free(final);
}

/* ---- gateway ---- */

struct tr_lmtp_gateway {
	tr_engine_slot *engines;
	const tr_lmtp_settings *settings;
	tr_lmtp_store store;
	bool has_next_hop;
	tr_lmtp_next_hop next_hop;
	gint fail_classify;
};

tr_lmtp_gateway *tr_lmtp_gateway_new(tr_engine_slot *engines, const tr_lmtp_settings *settings,
                                     const tr_lmtp_store *store, GError **error)
{
	tr_lmtp_gateway *gw = g_new0(tr_lmtp_gateway, 1);
	gw->engines = engines;
	gw->settings = settings;
	if (store != NULL)
		gw->store = *store;
	if (settings->next_hop != NULL && *settings->next_hop != '\0') {
		if (!tr_lmtp_next_hop_parse(settings->next_hop, &gw->next_hop, error)) {
			g_free(gw);
			return NULL;
		}
		gw->has_next_hop = true;
	}
	if (!gw->has_next_hop && gw->store.ingest == NULL) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
		            "[lmtp] has no next_hop and no ticket store is attached: "
		            "nothing would keep the messages");
		g_free(gw);
		return NULL;
	}
	return gw;
}

void tr_lmtp_gateway_free(tr_lmtp_gateway **gwp)
{
	g_clear_pointer(gwp, g_free);
}

void tr_lmtp_gateway_fail_classify(tr_lmtp_gateway *gw, bool fail)
{
	g_atomic_int_set(&gw->fail_classify, fail ? 1 : 0);
}

static void set_all(tr_lmtp_rcpt_status *status, size_t n, tr_lmtp_result result, const char *text)
{
	for (size_t i = 0; i < n; i++) {
		status[i].result = result;
		status[i].code = 0;
		g_strlcpy(status[i].text, text, sizeof(status[i].text));
	}
}

/* Copy the message without any X-Triage-* header field (nobody outside
 * may set them) into out. */
static void copy_without_triage_headers(GString *out, const char *data, size_t len)
{
	const char *p = data, *end = data + len;
	bool dropping = false;
	while (p < end) {
		const char *lf = memchr(p, '\n', (size_t)(end - p));
		const char *next = lf != NULL ? lf + 1 : end;
		size_t line_len = (size_t)(next - p);
		if (*p == '\r' || *p == '\n')
			break;   /* the blank line: the body follows */
		if (*p == ' ' || *p == '\t') {
			if (!dropping)
				g_string_append_len(out, p, (gssize)line_len);
			p = next;
			continue;
		}
		const char *colon = memchr(p, ':', line_len);
		if (colon == NULL)
			break;   /* not a header line: no header block, keep everything */
		size_t name_len = (size_t)(colon - p);
		while (name_len > 0 && (p[name_len - 1] == ' ' || p[name_len - 1] == '\t'))
			name_len--;   /* obsolete "Name :" syntax */
		bool name_ok = name_len > 0;
		for (size_t i = 0; i < name_len && name_ok; i++)
			name_ok = (unsigned char)p[i] > 0x20 && (unsigned char)p[i] < 0x7f;
		if (!name_ok)
			break;
		dropping = tr_xtriage_is_header(p, name_len);
		if (!dropping)
			g_string_append_len(out, p, (gssize)line_len);
		p = next;
	}
	g_string_append_len(out, p, end - p);
}

static void append_received(GString *out, const tr_lmtp_gateway *gw, const tr_lmtp_envelope *env)
{
	GDateTime *now = g_date_time_new_now_local();
	char *date = g_date_time_format(now, "%a, %d %b %Y %H:%M:%S %z");
	g_string_append_printf(out, "Received: from %s (%s)\r\n\tby %s (triage) with %s id %s",
	                       env->helo[0] != '\0' ? env->helo : "unknown", env->client,
	                       gw->settings->hostname, env->lmtp ? "LMTP" : "ESMTP", env->session_id);
	if (env->rcpts_count == 1)
		g_string_append_printf(out, "\r\n\tfor <%s>", env->rcpts[0]);
	g_string_append_printf(out, "; %s\r\n", date);
	g_free(date);
	g_date_time_unref(now);
}

/* The store's view of the ticket goes into the headers: priority,
 * category and team as the ticket has them (history may have raised the
 * priority; a reply keeps its ticket's category). */
static void apply_result(tr_pool *pool, tr_decision *d, const tr_ingest_result *r)
{
	if (r->priority >= 1 && r->priority <= TR_PRIORITY_COUNT)
		d->priority = r->priority;
	if (r->category[0] != '\0')
		d->category = tr_pool_strdup(pool, r->category);
	if (r->team[0] != '\0')
		d->team = tr_pool_strdup(pool, r->team);
}

static void gateway_deliver(void *context, const tr_lmtp_envelope *env, tr_lmtp_rcpt_status *status)
{
	tr_lmtp_gateway *gw = context;
	const tr_lmtp_settings *settings = gw->settings;
	size_t n = env->rcpts_count;
	int64_t started = g_get_monotonic_time();
	tr_decide_input input = { .now = g_get_real_time() / G_USEC_PER_SEC };
	tr_decision decision;
	memset(&decision, 0, sizeof(decision));
	tr_engine *engine = tr_engine_slot_get(gw->engines);
	tr_msg *msg = NULL;
	GError *error = NULL;
	const char *failure = NULL;

	if (g_atomic_int_get(&gw->fail_classify)) {
		failure = "internal error (test fault: classify)";
	} else {
		msg = tr_norm_parse(tr_engine_norm(engine), TR_CHANNEL_LMTP, env->data, env->len, &error);
		if (msg == NULL) {
			failure = error != NULL ? error->message : "the normalizer returned nothing";
		} else {
			msg->envelope_from = tr_pool_strdup(msg->pool, env->mail_from);
			if (*env->mail_from == '\0')
				msg->auto_flags |= TR_AUTO_NULL_SENDER;
			const char **to = tr_pool_alloc_array(msg->pool, n + 1, sizeof(char *));
			for (size_t i = 0; i < n; i++)
				to[i] = tr_pool_strdup(msg->pool, env->rcpts[i]);
			msg->envelope_to = to;
			msg->envelope_to_count = n;
			tr_engine_decide(engine, msg, &input, &decision);
		}
	}
	if (failure != NULL) {
		/* Fail safe: pass on untouched when we can, else retry later. */
		bool pass = settings->on_error == TR_LMTP_ON_ERROR_ACCEPT && gw->has_next_hop;
		tr_log_warning("lmtp %s: classification failed: %s; %s", env->session_id, failure,
		               pass ? "passing the message on untouched" : "temporary failure");
		g_clear_error(&error);
		if (pass)
			tr_lmtp_client_deliver(&gw->next_hop, settings->hostname, settings->limits.next_hop_timeout,
			                       settings->soft_bounce, env, env->data, env->len, status);
		else
			set_all(status, n, TR_LMTP_DEFER, "4.3.0 Internal error, try again later");
		tr_engine_free(&engine);
		return;
	}

	char ticket[sizeof(((tr_ingest_result *)0)->ticket)] = "";
	const char *stored = "none";
	if (gw->store.ingest != NULL) {
		char *source = g_strdup_printf("lmtp %s from %s", env->session_id, env->client);
		tr_ingest_input in = {
			.channel = TR_CHANNEL_LMTP,
			.data = env->data,
			.len = env->len,
			.envelope_from = env->mail_from,
			.envelope_to = env->rcpts,
			.n_envelope_to = n,
			.now = input.now,
			.source = source,
		};
		tr_ingest_result result;
		memset(&result, 0, sizeof(result));
		bool ok = gw->store.ingest(gw->store.context, &in, &result, &error);
		g_free(source);
		if (!ok) {
			bool full = g_error_matches(error, TR_STORE_ERROR, TR_STORE_ERROR_FULL);
			tr_log_warning("lmtp %s: from=<%s> nrcpt=%zu: not committed: %s", env->session_id, env->mail_from, n,
			               error != NULL ? error->message : "the store hook failed");
			g_clear_error(&error);
			if (full)
				set_all(status, n, TR_LMTP_DEFER_FULL, "4.3.1 Insufficient system storage, try again later");
			else
				set_all(status, n, TR_LMTP_DEFER, "4.3.0 Temporary failure in the ticket store, try again later");
			tr_msg_free(&msg);
			tr_engine_free(&engine);
			return;
		}
		g_strlcpy(ticket, result.ticket, sizeof(ticket));
		apply_result(msg->pool, &decision, &result);
		stored = tr_ingest_kind_name(result.kind);
	}

	if (gw->has_next_hop) {
		tr_xtriage_header headers[TR_XTRIAGE_HEADERS_MAX];
		size_t nh = tr_xtriage_headers(msg->pool, &decision, ticket, (size_t)settings->limits.rules_header_bytes,
		                               "\r\n\t", headers);
		GString *fwd = g_string_sized_new(env->len + 1024);
		append_received(fwd, gw, env);
		for (size_t i = 0; i < nh; i++)
			g_string_append_printf(fwd, "%s: %s\r\n", headers[i].name, headers[i].value);
		copy_without_triage_headers(fwd, env->data, env->len);
		tr_lmtp_client_deliver(&gw->next_hop, settings->hostname, settings->limits.next_hop_timeout,
		                       settings->soft_bounce, env, fwd->str, fwd->len, status);
		g_string_free(fwd, TRUE);
		if (!settings->next_hop_required && gw->store.ingest != NULL) {
			/* Configured so: the commit is what counts. */
			for (size_t i = 0; i < n; i++) {
				if (status[i].result != TR_LMTP_DELIVERED) {
					tr_log_warning("lmtp %s: <%s>: next hop failed (%s), accepted anyway "
					               "(next_hop_required = no) ticket=%s",
					               env->session_id, env->rcpts[i], status[i].text, ticket[0] ? ticket : "-");
					status[i].result = TR_LMTP_DELIVERED;
					status[i].code = 250;
					g_snprintf(status[i].text, sizeof(status[i].text), "2.0.0 Ok: %s committed",
					           ticket[0] != '\0' ? ticket : "message");
				}
			}
		}
	} else {
		for (size_t i = 0; i < n; i++) {
			status[i].result = TR_LMTP_DELIVERED;
			status[i].code = 250;
			g_snprintf(status[i].text, sizeof(status[i].text), "2.0.0 <%s> Ok: %s (%s)", env->rcpts[i],
			           ticket[0] != '\0' ? ticket : "message", stored);
		}
	}
	size_t delivered = 0;
	for (size_t i = 0; i < n; i++)
		delivered += status[i].result == TR_LMTP_DELIVERED;
	tr_log_info("lmtp %s: from=<%s> nrcpt=%zu size=%zu priority=%s category=%s team=%s ticket=%s "
	            "store=%s delivered=%zu/%zu (%.1f ms)",
	            env->session_id, env->mail_from, n, env->len, tr_priority_name(decision.priority),
	            decision.category, decision.team, ticket[0] != '\0' ? ticket : "-", stored, delivered, n,
	            (double)(g_get_monotonic_time() - started) / 1000.0);
	tr_msg_free(&msg);
	tr_engine_free(&engine);
}

tr_lmtp_hook tr_lmtp_gateway_hook(tr_lmtp_gateway *gw)
{
	return (tr_lmtp_hook){ .deliver = gateway_deliver, .context = gw };
}
