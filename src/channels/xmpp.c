/* xmpp.c — the XMPP connection thread, rooms and send accounting; see xmpp.h */
#include "channels/xmpp.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <strophe.h>

#include "channels/xmpp-private.h"
#include "core/backoff.h"
#include "core/log.h"

G_DEFINE_QUARK(tr-xmpp-error-quark, tr_xmpp_error)

#define NS_MUC       "http://jabber.org/protocol/muc"
#define NS_MUC_USER  "http://jabber.org/protocol/muc#user"
#define NS_MUC_OWNER "http://jabber.org/protocol/muc#owner"
#define NS_DATA      "jabber:x:data"
#define NS_PING      "urn:xmpp:ping"
#define NS_SID       "urn:xmpp:sid:0"
#define NS_DELAY     "urn:xmpp:delay"
#define NS_STANZAS   "urn:ietf:params:xml:ns:xmpp-stanzas"

/* The loop's xmpp_run_once() timeout: the latency of a queued message and
 * of a close request. */
#define LOOP_MS 50
/* How long a graceful close waits for the server's </stream:stream>. */
#define CLOSE_GRACE_US (1200 * G_TIME_SPAN_MILLISECOND)
/* A libstrophe disconnect that never reports back is forced after this. */
#define DISCONNECT_GRACE_US (3 * G_TIME_SPAN_SECOND)
#define DEFAULT_STOP_MS 2000
#define ID_MAX 200
#define NICK_MAX 64

/* ------------------------------------------------------------------ config */

const tr_conftab tr_xmpp_limits_table[] = {
	{ "port", 0, 0, 65535, TR_UNIT_COUNT, offsetof(tr_xmpp_limits, port),
	  "[xmpp] server port; 0 = 5222 on host, or the DNS SRV record of the JID domain" },
	{ "ping_interval", 60, 0, 3600, TR_UNIT_SECONDS, offsetof(tr_xmpp_limits, ping_interval),
	  "[xmpp] XEP-0199 ping to the server this often; 0 = never" },
	{ "ping_timeout", 20, 1, 600, TR_UNIT_SECONDS, offsetof(tr_xmpp_limits, ping_timeout),
	  "[xmpp] a ping unanswered this long means the connection is dead" },
	{ "connect_timeout", 30, 1, 600, TR_UNIT_SECONDS, offsetof(tr_xmpp_limits, connect_timeout),
	  "[xmpp] TCP, TLS, login and bind must be done within this" },
	{ "join_timeout", 20, 1, 600, TR_UNIT_SECONDS, offsetof(tr_xmpp_limits, join_timeout),
	  "[xmpp] a room must answer our join within this" },
	{ "reconnect_backoff", 1, 1, 3600, TR_UNIT_SECONDS, offsetof(tr_xmpp_limits, reconnect_backoff),
	  "[xmpp] first wait before a reconnect or a room rejoin; doubles per failure" },
	{ "reconnect_backoff_max", 60, 1, 86400, TR_UNIT_SECONDS, offsetof(tr_xmpp_limits, reconnect_backoff_max),
	  "[xmpp] longest wait between reconnects or rejoins" },
	{ "room_rate", 20, 0, 6000, TR_UNIT_COUNT, offsetof(tr_xmpp_limits, room_rate),
	  "[xmpp] posts per minute per room, in bursts of as many; 0 = no limit" },
	{ "send_timeout", 300, 1, 86400, TR_UNIT_SECONDS, offsetof(tr_xmpp_limits, send_timeout),
	  "[xmpp] a message not written within this fails (not connected, room not joined)" },
	{ "echo_timeout", 30, 1, 3600, TR_UNIT_SECONDS, offsetof(tr_xmpp_limits, echo_timeout),
	  "[xmpp] a room post without its echo after this is reported uncertain" },
	{ "queue_max", 1000, 1, 1000000, TR_UNIT_COUNT, offsetof(tr_xmpp_limits, queue_max),
	  "[xmpp] messages enqueued and not yet reported, at most" },
	{ "body_max", 16 * 1024, 64, 1024 * 1024, TR_UNIT_BYTES, offsetof(tr_xmpp_limits, body_max),
	  "[xmpp] bytes of one outgoing message" },
	{ "incoming_max", 64 * 1024, 256, 16 * 1024 * 1024, TR_UNIT_BYTES, offsetof(tr_xmpp_limits, incoming_max),
	  "[xmpp] bytes of an incoming message body kept; the rest is cut" },
	{ "event_queue_max", 10000, 16, 10000000, TR_UNIT_COUNT, offsetof(tr_xmpp_limits, event_queue_max),
	  "[xmpp] unread events; incoming messages beyond it are dropped and counted" },
	{ "chat_thread_window", 2 * 3600, 0, 30 * 86400, TR_UNIT_SECONDS, offsetof(tr_xmpp_limits, chat_thread_window),
	  "[xmpp] a chat from a JID whose open chat ticket was active this recently threads onto it; 0 = never" },
	{ "outbox_retry", 30, 1, 3600, TR_UNIT_SECONDS, offsetof(tr_xmpp_limits, outbox_retry),
	  "[xmpp] first wait before retrying a post or chat that failed; doubles per attempt" },
	{ "outbox_retry_max", 3600, 1, 86400, TR_UNIT_SECONDS, offsetof(tr_xmpp_limits, outbox_retry_max),
	  "[xmpp] longest wait between retries of a failed post or chat" },
	{ "outbox_give_up", 86400, 60, 30 * 86400, TR_UNIT_SECONDS, offsetof(tr_xmpp_limits, outbox_give_up),
	  "[xmpp] a post or chat still failing this long after it was queued is marked failed" },
	{ "ambiguous_delay", 120, 0, 86400, TR_UNIT_SECONDS, offsetof(tr_xmpp_limits, ambiguous_delay),
	  "[xmpp] wait before the one marked resend of a post or chat whose delivery is uncertain" },
	{ "outbox_inflight", 100, 1, 100000, TR_UNIT_COUNT, offsetof(tr_xmpp_limits, outbox_inflight),
	  "[xmpp] outbox rows handed to the connection and not yet confirmed, at most" },
	{ NULL, 0, 0, 0, TR_UNIT_COUNT, 0, NULL },
};

static const char *const string_keys[] = {
	"jid", "password", "password_file", "host", "tls", "ca_file", "verify", "nick", "rooms",
	"create_rooms", "operators", "operators_by_nick", NULL,
};

static const char *const tls_mode_names[] = {
	[TR_XMPP_TLS_REQUIRED] = "required",
	[TR_XMPP_TLS_DIRECT] = "direct",
	[TR_XMPP_TLS_OPTIONAL] = "optional",
};

void tr_xmpp_config_default(tr_xmpp_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->tls = TR_XMPP_TLS_REQUIRED;
	cfg->verify = true;
	cfg->nick = g_strdup("triage");
	cfg->rooms = g_new0(char *, 1);
	cfg->operators = g_new0(char *, 1);
	cfg->operators_by_nick = g_new0(char *, 1);
	tr_conftab_defaults(tr_xmpp_limits_table, &cfg->limits);
}

static void free_secret(char *secret)
{
	if (secret == NULL)
		return;
	explicit_bzero(secret, strlen(secret));
	g_free(secret);
}

void tr_xmpp_config_clear(tr_xmpp_config *cfg)
{
	g_free(cfg->jid);
	free_secret(cfg->password);
	g_free(cfg->host);
	g_free(cfg->ca_file);
	g_free(cfg->nick);
	g_strfreev(cfg->rooms);
	g_strfreev(cfg->operators);
	g_strfreev(cfg->operators_by_nick);
	memset(cfg, 0, sizeof(*cfg));
}

void tr_xmpp_config_copy(tr_xmpp_config *dst, const tr_xmpp_config *src)
{
	*dst = *src;
	dst->jid = g_strdup(src->jid);
	dst->password = g_strdup(src->password);
	dst->host = g_strdup(src->host);
	dst->ca_file = g_strdup(src->ca_file);
	dst->nick = g_strdup(src->nick);
	dst->rooms = src->rooms != NULL ? g_strdupv(src->rooms) : g_new0(char *, 1);
	dst->operators = src->operators != NULL ? g_strdupv(src->operators) : g_new0(char *, 1);
	dst->operators_by_nick = src->operators_by_nick != NULL ? g_strdupv(src->operators_by_nick)
	                                                        : g_new0(char *, 1);
}

static bool nick_valid(const char *nick)
{
	size_t len = strlen(nick);
	if (len == 0 || len > NICK_MAX || !g_utf8_validate(nick, (gssize)len, NULL))
		return false;
	if (g_unichar_isspace(g_utf8_get_char(nick)) ||
	    g_unichar_isspace(g_utf8_get_char(g_utf8_find_prev_char(nick, nick + len))))
		return false;
	for (const char *p = nick; *p != '\0'; p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char(p);
		if (g_unichar_iscntrl(c) || g_unichar_type(c) == G_UNICODE_FORMAT)
			return false;
	}
	return true;
}

static bool host_valid(const char *host)
{
	size_t len = strlen(host);
	if (len == 0 || len > 253)
		return false;
	for (const char *p = host; *p != '\0'; p++) {
		if (!g_ascii_isalnum(*p) && *p != '-' && *p != '.' && *p != ':' && *p != '[' && *p != ']')
			return false;
	}
	return true;
}

/* A password from a file: the first line, without its line end. */
static char *read_password_file(const tr_conf *conf, tr_diag *diag, const char *path)
{
	char *data = NULL;
	gsize len = 0;
	GError *error = NULL;
	if (!g_file_get_contents(path, &data, &len, &error)) {
		tr_conf_error(conf, diag, "xmpp", "password_file", "%s", error->message);
		g_error_free(error);
		return NULL;
	}
	struct stat st;
	if (stat(path, &st) == 0 && (st.st_mode & 077) != 0)
		tr_diag_warning(diag, tr_conf_path(conf), tr_conf_line(conf, "xmpp", "password_file"),
		                "[xmpp] password_file %s is readable by others (chmod 600)", path);
	if (len > 0 && data[len - 1] == '\n')
		data[--len] = '\0';
	if (len > 0 && data[len - 1] == '\r')
		data[--len] = '\0';
	if (len == 0 || memchr(data, '\0', len) != NULL || memchr(data, '\n', len) != NULL) {
		tr_conf_error(conf, diag, "xmpp", "password_file", "%s must hold the password on one line", path);
		free_secret(data);
		return NULL;
	}
	return data;
}

static void load_limits(tr_xmpp_config *cfg, const tr_conf *conf, tr_diag *diag)
{
	for (const tr_conftab *row = tr_xmpp_limits_table; row->name != NULL; row++) {
		char *text = tr_conf_string(conf, "xmpp", row->name, NULL);
		if (text == NULL)
			continue;
		int64_t v;
		if (!tr_conf_parse_int(text, row->unit, &v))
			tr_conf_error(conf, diag, "xmpp", row->name, "'%s' is not a valid %s", text,
			              row->unit == TR_UNIT_SECONDS ? "duration (30, 30s, 5m, 1h)" :
			              row->unit == TR_UNIT_BYTES ? "size (64k, 1M)" : "number");
		else if (v < row->min || v > row->max)
			tr_conf_error(conf, diag, "xmpp", row->name,
			              "%" G_GINT64_FORMAT " is out of range %" G_GINT64_FORMAT "..%" G_GINT64_FORMAT,
			              (gint64)v, (gint64)row->min, (gint64)row->max);
		else
			*(int64_t *)((char *)&cfg->limits + row->offset) = v;
		g_free(text);
	}
}

static void load_rooms(tr_xmpp_config *cfg, const tr_conf *conf, tr_diag *diag)
{
	char *text = tr_conf_string(conf, "xmpp", "rooms", NULL);
	if (text == NULL)
		return;
	char **items = g_strsplit_set(text, ",; \t", -1);
	GPtrArray *rooms = g_ptr_array_new();
	for (char **item = items; *item != NULL; item++) {
		if (**item == '\0')
			continue;
		if (!tr_xmpp_jid_valid(*item, true, false)) {
			tr_conf_error(conf, diag, "xmpp", "rooms", "'%s' is not a room JID (room@service)", *item);
			continue;
		}
		char *room = tr_xmpp_jid_normalize(*item);
		bool dup = false;
		for (guint i = 0; i < rooms->len; i++)
			dup = dup || strcmp(rooms->pdata[i], room) == 0;
		if (dup) {
			tr_conf_error(conf, diag, "xmpp", "rooms", "room %s is listed twice", room);
			g_free(room);
			continue;
		}
		g_ptr_array_add(rooms, room);
	}
	g_ptr_array_add(rooms, NULL);
	g_strfreev(cfg->rooms);
	cfg->rooms = (char **)g_ptr_array_free(rooms, FALSE);
	g_strfreev(items);
	g_free(text);
}

/* operators: bare JIDs (a resource would make the check depend on which
 * client a person uses); operators_by_nick: room nicks. */
static char **load_operator_list(const tr_conf *conf, tr_diag *diag, const char *key, bool jids)
{
	GPtrArray *out = g_ptr_array_new();
	char *text = tr_conf_string(conf, "xmpp", key, NULL);
	char **items = g_strsplit_set(text != NULL ? text : "", jids ? ",; \t" : ",;", -1);
	for (char **item = items; *item != NULL; item++) {
		g_strstrip(*item);
		if (**item == '\0')
			continue;
		if (jids && !tr_xmpp_jid_valid(*item, true, false)) {
			tr_conf_error(conf, diag, "xmpp", key, "'%s' is not a bare JID (user@domain)", *item);
			continue;
		}
		if (!jids && !nick_valid(*item)) {
			tr_conf_error(conf, diag, "xmpp", key, "'%s': 1-%d characters, no control characters", *item,
			              NICK_MAX);
			continue;
		}
		g_ptr_array_add(out, jids ? tr_xmpp_jid_normalize(*item) : g_strdup(*item));
	}
	g_strfreev(items);
	g_free(text);
	g_ptr_array_add(out, NULL);
	return (char **)g_ptr_array_free(out, FALSE);
}

bool tr_xmpp_config_load(tr_xmpp_config *cfg, const tr_conf *conf, tr_diag *diag)
{
	const char *g = "xmpp";
	unsigned errors = tr_diag_error_count(diag);
	tr_xmpp_config_default(cfg);
	GKeyFile *kf = tr_conf_keyfile(conf);
	if (!g_key_file_has_group(kf, g))
		return true;

	GPtrArray *known = g_ptr_array_new();
	for (const char *const *k = string_keys; *k != NULL; k++)
		g_ptr_array_add(known, (gpointer)*k);
	for (const tr_conftab *row = tr_xmpp_limits_table; row->name != NULL; row++)
		g_ptr_array_add(known, (gpointer)row->name);
	g_ptr_array_add(known, NULL);
	tr_conf_check_keys(conf, diag, g, (const char *const *)known->pdata);
	g_ptr_array_free(known, TRUE);
	load_limits(cfg, conf, diag);

	char *jid = tr_conf_string(conf, g, "jid", NULL);
	if (jid == NULL || *jid == '\0')
		tr_conf_error(conf, diag, g, NULL, "[xmpp] needs jid = bot@example.org");
	else if (!tr_xmpp_jid_valid(jid, true, true))
		tr_conf_error(conf, diag, g, "jid", "'%s' is not a JID (user@domain)", jid);
	else
		cfg->jid = tr_xmpp_jid_normalize(jid);
	g_free(jid);

	/* The raw value: g_key_file_get_string() would interpret backslashes. */
	char *password = g_key_file_get_value(kf, g, "password", NULL);
	char *password_file = tr_conf_file_path(conf, g, "password_file", NULL);
	if (password != NULL)
		g_strstrip(password);
	if (password != NULL && password_file != NULL)
		tr_conf_error(conf, diag, g, "password_file", "set password or password_file, not both");
	else if (password_file != NULL)
		cfg->password = read_password_file(conf, diag, password_file);
	else if (password != NULL && *password != '\0')
		cfg->password = g_strdup(password);
	else
		tr_conf_error(conf, diag, g, NULL, "[xmpp] needs password or password_file");
	free_secret(password);
	g_free(password_file);

	char *host = tr_conf_string(conf, g, "host", NULL);
	if (host != NULL && !host_valid(host))
		tr_conf_error(conf, diag, g, "host", "'%s' is not a host name or address", host);
	else if (host != NULL)
		cfg->host = g_ascii_strdown(host, -1);
	g_free(host);

	char *tls = tr_conf_string(conf, g, "tls", NULL);
	if (tls != NULL) {
		bool found = false;
		for (size_t i = 0; i < G_N_ELEMENTS(tls_mode_names); i++) {
			if (g_ascii_strcasecmp(tls, tls_mode_names[i]) == 0) {
				cfg->tls = (tr_xmpp_tls_mode)i;
				found = true;
			}
		}
		if (g_ascii_strcasecmp(tls, "yes") == 0) {
			cfg->tls = TR_XMPP_TLS_REQUIRED;
			found = true;
		}
		if (!found)
			tr_conf_error(conf, diag, g, "tls", "'%s' is not required, direct or optional", tls);
		else if (cfg->tls == TR_XMPP_TLS_OPTIONAL)
			tr_diag_warning(diag, tr_conf_path(conf), tr_conf_line(conf, g, "tls"),
			                "[xmpp] tls = optional: without STARTTLS the login goes in clear text");
	}
	g_free(tls);

	cfg->ca_file = tr_conf_file_path(conf, g, "ca_file", NULL);
	if (cfg->ca_file != NULL && access(cfg->ca_file, R_OK) != 0)
		tr_conf_error(conf, diag, g, "ca_file", "cannot read %s: %s", cfg->ca_file, g_strerror(errno));
	cfg->verify = tr_conf_bool(conf, diag, g, "verify", true);
	if (!cfg->verify)
		tr_diag_warning(diag, tr_conf_path(conf), tr_conf_line(conf, g, "verify"),
		                "[xmpp] verify = no: any certificate is accepted, a man in the middle "
		                "can read the password and the chats");

	char *nick = tr_conf_string(conf, g, "nick", NULL);
	if (nick != NULL && !nick_valid(nick))
		tr_conf_error(conf, diag, g, "nick", "'%s': 1-%d characters, no control characters", nick, NICK_MAX);
	else if (nick != NULL) {
		g_free(cfg->nick);
		cfg->nick = g_strdup(nick);
	}
	g_free(nick);

	load_rooms(cfg, conf, diag);
	cfg->create_rooms = tr_conf_bool(conf, diag, g, "create_rooms", false);
	g_strfreev(cfg->operators);
	cfg->operators = load_operator_list(conf, diag, "operators", true);
	g_strfreev(cfg->operators_by_nick);
	cfg->operators_by_nick = load_operator_list(conf, diag, "operators_by_nick", false);
	if (cfg->operators_by_nick[0] != NULL)
		tr_diag_warning(diag, tr_conf_path(conf), tr_conf_line(conf, g, "operators_by_nick"),
		                "[xmpp] operators_by_nick: in a room that hides real JIDs anyone can take a "
		                "free nick; prefer rooms that show the bot real JIDs");
	if (cfg->limits.outbox_retry_max < cfg->limits.outbox_retry)
		tr_conf_error(conf, diag, g, "outbox_retry_max", "is shorter than outbox_retry");
	if (cfg->limits.reconnect_backoff_max < cfg->limits.reconnect_backoff)
		tr_conf_error(conf, diag, g, "reconnect_backoff_max", "is shorter than reconnect_backoff");
	cfg->enabled = cfg->jid != NULL;
	return tr_diag_error_count(diag) == errors;
}

void tr_xmpp_config_print(const tr_xmpp_config *cfg, GString *out)
{
	g_string_append_printf(out, "jid = %s\n", cfg->jid != NULL ? cfg->jid : "(none: XMPP is off)");
	g_string_append_printf(out, "password = %s\n", cfg->password != NULL ? "(set, hidden)" : "(none)");
	g_string_append_printf(out, "host = %s\n", cfg->host != NULL ? cfg->host : "(the JID domain)");
	g_string_append_printf(out, "tls = %s\n", tls_mode_names[cfg->tls]);
	g_string_append_printf(out, "ca_file = %s\n", cfg->ca_file != NULL ? cfg->ca_file : "(system trust store)");
	g_string_append_printf(out, "verify = %s\n", cfg->verify ? "yes" : "no");
	g_string_append_printf(out, "nick = %s\n", cfg->nick);
	char *rooms = cfg->rooms != NULL ? g_strjoinv(", ", cfg->rooms) : g_strdup("");
	g_string_append_printf(out, "rooms = %s\n", rooms);
	g_free(rooms);
	g_string_append_printf(out, "create_rooms = %s\n", cfg->create_rooms ? "yes" : "no");
	char *operators = cfg->operators != NULL ? g_strjoinv(", ", cfg->operators) : g_strdup("");
	g_string_append_printf(out, "operators = %s\n", operators);
	g_free(operators);
	operators = cfg->operators_by_nick != NULL ? g_strjoinv(", ", cfg->operators_by_nick) : g_strdup("");
	g_string_append_printf(out, "operators_by_nick = %s\n", operators);
	g_free(operators);
	tr_conftab_print(tr_xmpp_limits_table, &cfg->limits, out);
}

/* ---------------------------------------------------------- pure helpers */

static bool jid_node_char_ok(gunichar c)
{
	return !(c == '"' || c == '&' || c == '\'' || c == '/' || c == ':' || c == '<' ||
	         c == '>' || c == '@' || g_unichar_isspace(c) || g_unichar_iscntrl(c) ||
	         g_unichar_type(c) == G_UNICODE_FORMAT);
}

static bool jid_domain_ok(const char *s, size_t len)
{
	if (len == 0 || len > 1023 || s[0] == '.' || s[len - 1] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!(g_ascii_isalnum(c) || c == '-' || c == '.' || c >= 0x80))
			return false;
		if (c == '.' && i + 1 < len && s[i + 1] == '.')
			return false;
	}
	return true;
}

bool tr_xmpp_jid_valid(const char *jid, bool need_node, bool resource)
{
	if (jid == NULL)
		return false;
	size_t len = strlen(jid);
	if (len == 0 || len > 3071 || !g_utf8_validate(jid, (gssize)len, NULL))
		return false;
	const char *slash = strchr(jid, '/');
	const char *end = slash != NULL ? slash : jid + len;
	if (slash != NULL) {
		if (!resource || slash[1] == '\0' || strlen(slash + 1) > 1023)
			return false;
		for (const char *p = slash + 1; *p != '\0'; p = g_utf8_next_char(p)) {
			gunichar c = g_utf8_get_char(p);
			if (g_unichar_iscntrl(c) || g_unichar_type(c) == G_UNICODE_FORMAT)
				return false;
		}
	}
	const char *at = memchr(jid, '@', (size_t)(end - jid));
	if (at == NULL)
		return !need_node && jid_domain_ok(jid, (size_t)(end - jid));
	if (at == jid || at - jid > 1023)
		return false;
	for (const char *p = jid; p < at; p = g_utf8_next_char(p)) {
		if (!jid_node_char_ok(g_utf8_get_char(p)))
			return false;
	}
	return jid_domain_ok(at + 1, (size_t)(end - at - 1));
}

char *tr_xmpp_jid_normalize(const char *jid)
{
	const char *slash = strchr(jid, '/');
	size_t bare_len = slash != NULL ? (size_t)(slash - jid) : strlen(jid);
	char *bare = g_utf8_strdown(jid, (gssize)bare_len);
	char *out = g_strconcat(bare, slash != NULL ? slash : "", NULL);
	g_free(bare);
	return out;
}

char *tr_xmpp_jid_bare(const char *jid)
{
	if (jid == NULL)
		return NULL;
	const char *slash = strchr(jid, '/');
	return slash != NULL ? g_strndup(jid, (gsize)(slash - jid)) : g_strdup(jid);
}

const char *tr_xmpp_jid_resource(const char *jid)
{
	const char *slash = jid != NULL ? strchr(jid, '/') : NULL;
	return slash != NULL ? slash + 1 : NULL;
}

char *tr_xmpp_body_clean(const char *text)
{
	char *valid = g_utf8_make_valid(text, -1);
	GString *out = g_string_sized_new(strlen(valid));
	for (const char *p = valid; *p != '\0'; p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char(p);
		if (c == '\r') {
			if (p[1] != '\n')
				g_string_append_c(out, '\n');
			continue;
		}
		if ((c < 0x20 && c != '\t' && c != '\n') || c == 0xFFFE || c == 0xFFFF)
			continue;
		g_string_append_len(out, p, g_utf8_next_char(p) - p);
	}
	g_free(valid);
	return g_string_free(out, FALSE);
}

bool tr_xmpp_bucket_take(tr_xmpp_bucket *b, int64_t per_minute, gint64 now)
{
	if (per_minute <= 0)
		return true;
	if (b->last == 0) {
		b->tokens = (double)per_minute;
	} else if (now > b->last) {
		b->tokens += (double)(now - b->last) * (double)per_minute / (60.0 * G_USEC_PER_SEC);
		if (b->tokens > (double)per_minute)
			b->tokens = (double)per_minute;
	}
	b->last = now;
	if (b->tokens < 1.0)
		return false;
	b->tokens -= 1.0;
	return true;
}

gint64 tr_xmpp_bucket_wait(const tr_xmpp_bucket *b, int64_t per_minute, gint64 now)
{
	if (per_minute <= 0 || b->last == 0)
		return 0;
	double tokens = b->tokens + (double)(now - b->last) * (double)per_minute / (60.0 * G_USEC_PER_SEC);
	if (tokens >= 1.0)
		return 0;
	return (gint64)((1.0 - tokens) * 60.0 * G_USEC_PER_SEC / (double)per_minute) + 1;
}

/* The reconnect and rejoin schedule of the configuration (core/backoff). */
static tr_backoff_policy backoff_policy(const tr_xmpp_limits *limits)
{
	return (tr_backoff_policy){
		.initial_ms = limits->reconnect_backoff * 1000,
		.max_ms = limits->reconnect_backoff_max * 1000,
		.factor = 2.0,
		.jitter = 0.25,
	};
}

static uint64_t backoff_seed(const char *name)
{
	return ((uint64_t)g_str_hash(name) << 32) ^ (uint64_t)g_get_real_time() ^ g_random_int();
}

/* ---------------------------------------------------------------- parsing */

static char *stanza_text(xmpp_stanza_t *st)
{
	if (st == NULL)
		return NULL;
	char *text = xmpp_stanza_get_text(st);
	if (text == NULL)
		return NULL;
	char *copy = g_strdup(text);
	xmpp_free(xmpp_stanza_get_context(st), text);
	return copy;
}

static void cut_utf8(char *s, size_t max, bool *truncated)
{
	size_t len = strlen(s);
	if (len <= max)
		return;
	const char *end = s + max;
	/* step back to the start of the character that crosses the limit */
	while (end > s && ((unsigned char)*end & 0xC0) == 0x80)
		end--;
	s[end - s] = '\0';
	*truncated = true;
}

static void parse_error(tr_xmpp_in *in, xmpp_stanza_t *st)
{
	xmpp_stanza_t *err = xmpp_stanza_get_child_by_name(st, "error");
	if (err == NULL)
		return;
	for (xmpp_stanza_t *c = xmpp_stanza_get_children(err); c != NULL; c = xmpp_stanza_get_next(c)) {
		if (!xmpp_stanza_is_tag(c))
			continue;
		const char *name = xmpp_stanza_get_name(c);
		const char *ns = xmpp_stanza_get_ns(c);
		if (ns == NULL || strcmp(ns, NS_STANZAS) != 0)
			continue;
		if (strcmp(name, "text") == 0)
			in->error_text = in->error_text != NULL ? in->error_text : stanza_text(c);
		else if (in->error_condition == NULL)
			in->error_condition = g_strdup(name);
	}
	if (in->error_condition == NULL)
		in->error_condition = g_strdup("undefined-condition");
	if (in->error_text != NULL)
		cut_utf8(in->error_text, 300, &(bool){ false });
}

static void parse_muc_user(tr_xmpp_in *in, xmpp_stanza_t *x)
{
	in->muc_user = true;
	for (xmpp_stanza_t *c = xmpp_stanza_get_children(x); c != NULL; c = xmpp_stanza_get_next(c)) {
		if (!xmpp_stanza_is_tag(c))
			continue;
		const char *name = xmpp_stanza_get_name(c);
		if (strcmp(name, "status") == 0) {
			const char *code = xmpp_stanza_get_attribute(c, "code");
			if (code != NULL && in->n_status < TR_XMPP_MAX_STATUS)
				in->status[in->n_status++] = atoi(code);
		} else if (strcmp(name, "item") == 0 && in->item_role == NULL) {
			in->item_jid = g_strdup(xmpp_stanza_get_attribute(c, "jid"));
			in->item_nick = g_strdup(xmpp_stanza_get_attribute(c, "nick"));
			in->item_role = g_strdup(xmpp_stanza_get_attribute(c, "role"));
			in->item_affiliation = g_strdup(xmpp_stanza_get_attribute(c, "affiliation"));
			in->item_reason = stanza_text(xmpp_stanza_get_child_by_name(c, "reason"));
			if (in->item_role == NULL)
				in->item_role = g_strdup("");
		} else if (strcmp(name, "destroy") == 0) {
			in->destroyed = true;
			if (in->item_reason == NULL)
				in->item_reason = stanza_text(xmpp_stanza_get_child_by_name(c, "reason"));
		}
	}
	if (in->item_reason != NULL)
		cut_utf8(in->item_reason, 300, &(bool){ false });
}

tr_xmpp_in *tr_xmpp_in_parse(xmpp_stanza_t *st, size_t body_max, const char *own_bare)
{
	const char *name = xmpp_stanza_get_name(st);
	if (name == NULL)
		return NULL;
	tr_xmpp_in *in = g_new0(tr_xmpp_in, 1);
	if (strcmp(name, "message") == 0)
		in->kind = TR_XMPP_IN_MESSAGE;
	else if (strcmp(name, "presence") == 0)
		in->kind = TR_XMPP_IN_PRESENCE;
	else if (strcmp(name, "iq") == 0)
		in->kind = TR_XMPP_IN_IQ;
	else {
		g_free(in);
		return NULL;
	}
	in->type = g_strdup(xmpp_stanza_get_type(st));
	in->from = g_strdup(xmpp_stanza_get_from(st));
	in->id = g_strdup(xmpp_stanza_get_id(st));
	if (in->type != NULL && strcmp(in->type, "error") == 0)
		parse_error(in, st);

	if (in->kind == TR_XMPP_IN_MESSAGE) {
		in->body = stanza_text(xmpp_stanza_get_child_by_name(st, "body"));
		if (in->body != NULL)
			cut_utf8(in->body, body_max, &in->truncated);
		in->subject = xmpp_stanza_get_child_by_name(st, "subject") != NULL;
		in->delayed = xmpp_stanza_get_child_by_name_and_ns(st, "delay", NS_DELAY) != NULL ||
		              xmpp_stanza_get_child_by_name_and_ns(st, "x", "jabber:x:delay") != NULL;
		/* MUC invitations (mediated: muc#user, direct: XEP-0249) */
		in->invite = xmpp_stanza_get_child_by_name_and_ns(st, "x", NS_MUC_USER) != NULL ||
		             xmpp_stanza_get_child_by_name_and_ns(st, "x", "jabber:x:conference") != NULL;
		xmpp_stanza_t *origin = xmpp_stanza_get_child_by_name_and_ns(st, "origin-id", NS_SID);
		if (origin != NULL)
			in->origin_id = g_strdup(xmpp_stanza_get_attribute(origin, "id"));
		/* The stanza-id we may trust is the one added by the room (groupchat)
		 * or by our own server (chat); anything else the sender could forge. */
		char *by_room = tr_xmpp_jid_bare(in->from);
		const char *trusted = in->type != NULL && strcmp(in->type, "groupchat") == 0 ? by_room : own_bare;
		for (xmpp_stanza_t *c = xmpp_stanza_get_children(st); c != NULL; c = xmpp_stanza_get_next(c)) {
			if (!xmpp_stanza_is_tag(c) || strcmp(xmpp_stanza_get_name(c), "stanza-id") != 0)
				continue;
			const char *ns = xmpp_stanza_get_ns(c);
			const char *by = xmpp_stanza_get_attribute(c, "by");
			if (ns != NULL && strcmp(ns, NS_SID) == 0 && by != NULL && trusted != NULL &&
			    g_ascii_strcasecmp(by, trusted) == 0 && in->stanza_id == NULL)
				in->stanza_id = g_strdup(xmpp_stanza_get_attribute(c, "id"));
		}
		g_free(by_room);
	} else if (in->kind == TR_XMPP_IN_PRESENCE) {
		xmpp_stanza_t *x = xmpp_stanza_get_child_by_name_and_ns(st, "x", NS_MUC_USER);
		if (x != NULL)
			parse_muc_user(in, x);
	} else {
		for (xmpp_stanza_t *c = xmpp_stanza_get_children(st); c != NULL; c = xmpp_stanza_get_next(c)) {
			if (xmpp_stanza_is_tag(c) && strcmp(xmpp_stanza_get_name(c), "error") != 0) {
				in->payload_name = g_strdup(xmpp_stanza_get_name(c));
				in->payload_ns = g_strdup(xmpp_stanza_get_ns(c));
				break;
			}
		}
	}
	return in;
}

void tr_xmpp_in_free(tr_xmpp_in **inp)
{
	tr_xmpp_in *in = *inp;
	if (in == NULL)
		return;
	g_free(in->type);
	g_free(in->from);
	g_free(in->id);
	g_free(in->body);
	g_free(in->origin_id);
	g_free(in->stanza_id);
	g_free(in->item_jid);
	g_free(in->item_nick);
	g_free(in->item_role);
	g_free(in->item_affiliation);
	g_free(in->item_reason);
	g_free(in->error_condition);
	g_free(in->error_text);
	g_free(in->payload_name);
	g_free(in->payload_ns);
	g_free(in->conn_text);
	g_free(in);
	*inp = NULL;
}

bool tr_xmpp_in_has_status(const tr_xmpp_in *in, int code)
{
	for (unsigned i = 0; i < in->n_status; i++) {
		if (in->status[i] == code)
			return true;
	}
	return false;
}

static bool type_is(const tr_xmpp_in *in, const char *type)
{
	return in->type != NULL && strcmp(in->type, type) == 0;
}

tr_xmpp_msg_class tr_xmpp_classify_message(const tr_xmpp_in *in, const char *room_nick, bool joined,
                                           const char *own_bare)
{
	if (type_is(in, "error"))
		return TR_XMPP_MSG_ERROR;
	if (in->from == NULL)
		return TR_XMPP_MSG_IGNORE;
	const char *resource = tr_xmpp_jid_resource(in->from);
	if (type_is(in, "groupchat")) {
		if (room_nick == NULL)
			return TR_XMPP_MSG_IGNORE;
		if (resource == NULL)
			return TR_XMPP_MSG_ROOM_OTHER;
		if (!joined)
			return TR_XMPP_MSG_EARLY;
		if (in->delayed)
			return TR_XMPP_MSG_HISTORY;
		if (strcmp(resource, room_nick) == 0)
			return TR_XMPP_MSG_ECHO;
		if (in->body == NULL || in->subject)
			return TR_XMPP_MSG_ROOM_OTHER;
		return TR_XMPP_MSG_ROOM;
	}
	if (type_is(in, "headline"))
		return TR_XMPP_MSG_IGNORE;
	if (room_nick != NULL)
		return TR_XMPP_MSG_MUC_PRIVATE;
	if (in->body == NULL || in->invite || strchr(in->from, '@') == NULL)
		return TR_XMPP_MSG_IGNORE;
	char *bare = tr_xmpp_jid_bare(in->from);
	char *lower = g_utf8_strdown(bare, -1);
	bool own = own_bare != NULL && strcmp(lower, own_bare) == 0;
	g_free(lower);
	g_free(bare);
	return own ? TR_XMPP_MSG_IGNORE : TR_XMPP_MSG_CHAT;
}

const char *tr_xmpp_msg_class_name(tr_xmpp_msg_class c)
{
	static const char *const names[] = {
		"ignore", "error", "room", "echo", "history", "early", "room-other", "chat", "muc-private",
	};
	return (size_t)c < G_N_ELEMENTS(names) ? names[c] : "?";
}

/* ----------------------------------------------------------------- events */

const char *tr_xmpp_event_type_name(tr_xmpp_event_type type)
{
	static const char *const names[] = {
		"connected", "disconnected", "joined", "left", "room-message", "chat-message", "send-result",
	};
	return (size_t)type < G_N_ELEMENTS(names) ? names[type] : "?";
}

const char *tr_xmpp_left_reason_name(tr_xmpp_left_reason reason)
{
	static const char *const names[] = {
		"connection", "kicked", "banned", "removed", "shutdown", "join-failed", "not-found", "other",
	};
	return (size_t)reason < G_N_ELEMENTS(names) ? names[reason] : "?";
}

const char *tr_xmpp_send_status_name(tr_xmpp_send_status status)
{
	static const char *const names[] = { "ok", "failed", "uncertain" };
	return (size_t)status < G_N_ELEMENTS(names) ? names[status] : "?";
}

void tr_xmpp_event_free(tr_xmpp_event **evp)
{
	tr_xmpp_event *ev = *evp;
	if (ev == NULL)
		return;
	g_free(ev->room);
	g_free(ev->nick);
	g_free(ev->jid);
	g_free(ev->body);
	g_free(ev->stanza_id);
	g_free(ev->id);
	g_free(ev->text);
	g_free(ev);
	*evp = NULL;
}

/* ------------------------------------------------------------- the object */

/* One enqueued message.  Owned by exactly one container at a time: the
 * command queue, a room's (or the chat) waiting queue, then x->inflight. */
typedef struct {
	bool is_room;
	char *to;                /* room bare JID, or chat recipient */
	char *body;
	char *caller_id;
	char stanza_id[48];
	guint64 serial;          /* enqueue order */
	gint64 enqueued;         /* monotonic */
	gint64 written;          /* 0 until handed to libstrophe */
	guint64 barrier;         /* chat: serial of the ping written after it */
} out_msg;

typedef enum {
	ROOM_IDLE,               /* not connected */
	ROOM_JOINING,            /* presence sent, waiting for our own presence */
	ROOM_CONFIGURING,        /* we created it (201): owner form sent */
	ROOM_JOINED,
	ROOM_BACKOFF,            /* left or failed: rejoin at deadline */
} room_state;

typedef struct {
	char *jid;
	char *nick;              /* the nick we asked for, then the one the room gave */
	room_state state;
	gint64 deadline;         /* JOINING/CONFIGURING: give up; BACKOFF: retry */
	tr_backoff backoff;      /* rejoins */
	bool nick_retried;
	bool created;
	char config_iq[48];
	char *last_error;
	GQueue waiting;          /* out_msg*, not yet written, in order */
	tr_xmpp_bucket bucket;
	GHashTable *occupants;   /* nick -> real JID ("" when hidden) */
} room;

typedef enum { CONN_DOWN, CONN_CONNECTING, CONN_UP } conn_state;

typedef struct {
	guint64 serial;
	gint64 sent;
} ping_out;

struct tr_xmpp {
	tr_xmpp_config cfg;
	char *own_bare;
	char *domain;

	/* shared with API callers, under lock (pthread, not GMutex: GLib's
	 * futex-based mutex is invisible to ThreadSanitizer) */
	pthread_mutex_t lock;
	pthread_cond_t event_cond;   /* an event was queued, or the thread finished */
	pthread_cond_t command_cond; /* a command was queued, or close was asked */
	GQueue events;
	GQueue commands;         /* out_msg* from the API */
	unsigned outstanding;
	bool closing, finished;
	int refs;
	int event_fd;
	GThread *thread;
	tr_xmpp_stats stats;

	/* the connection thread's own */
	xmpp_ctx_t *ctx;
	xmpp_log_t log;
	xmpp_conn_t *conn;
	conn_state cstate;
	bool releasing;          /* our own release: ignore libstrophe's events */
	bool disconnect_sent;    /* xmpp_disconnect() called on this connection */
	gint64 next_connect, deadline;
	tr_backoff reconnect;    /* transient failures: the configured schedule */
	tr_backoff reconnect_slow; /* failures a human must fix: tr_backoff_slow */
	char *fail_reason;       /* why the current attempt failed, from our callbacks */
	bool fail_needs_human;   /* untrusted certificate, fd beyond FD_SETSIZE */
	char *last_log_error;    /* libstrophe's last warning or error */
	char *last_down_reason;  /* why the last session or attempt ended */
	bool trust_warned;
	GQueue inbox;            /* tr_xmpp_in*, filled by the callbacks */
	GHashTable *rooms;       /* room JID -> room* */
	GQueue chat_waiting;     /* out_msg* */
	GQueue chat_inflight;    /* out_msg* written chats, in order (not owning) */
	GHashTable *inflight;    /* stanza id -> out_msg* (owning) */
	GQueue pings;            /* ping_out*, oldest first */
	guint64 ping_serial;
	gint64 next_ping;
	guint64 id_serial;       /* iq ids (thread) */
	guint64 msg_serial;      /* message ids (API, under lock) */
	char id_prefix[24];
};

static void in_free_notify(gpointer data)
{
	tr_xmpp_in *in = data;
	tr_xmpp_in_free(&in);
}

/* libstrophe's certfail and sockopt callbacks carry no user data; they run
 * on the connection thread, which sets this. */
static __thread tr_xmpp *thread_self;

static gint64 now_us(void)
{
	return g_get_monotonic_time();
}

/* Wait on cond until the monotonic time until (microseconds); false when
 * the time came. */
static bool cond_wait_until(pthread_cond_t *cond, pthread_mutex_t *mutex, gint64 until)
{
	struct timespec ts = {
		.tv_sec = (time_t)(until / G_USEC_PER_SEC),
		.tv_nsec = (long)(until % G_USEC_PER_SEC) * 1000,
	};
	return pthread_cond_timedwait(cond, mutex, &ts) != ETIMEDOUT;
}

static void next_id(tr_xmpp *x, const char *kind, char *buf, size_t size)
{
	g_snprintf(buf, size, "%s-%s%" G_GUINT64_FORMAT, x->id_prefix, kind, ++x->id_serial);
}

static void set_fail_reason(tr_xmpp *x, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void set_fail_reason(tr_xmpp *x, const char *fmt, ...)
{
	if (x->fail_reason != NULL)
		return; /* the first cause is the interesting one */
	va_list ap;
	va_start(ap, fmt);
	x->fail_reason = g_strdup_vprintf(fmt, ap);
	va_end(ap);
}

static const char *server_name(const tr_xmpp *x)
{
	return x->cfg.host != NULL ? x->cfg.host : x->domain;
}

static void event_fd_signal(tr_xmpp *x)
{
	uint64_t one = 1;
	if (x->event_fd >= 0 && write(x->event_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		tr_log_debug("xmpp %s: eventfd write: %s", x->cfg.jid, g_strerror(errno));
}

static void event_fd_drain(tr_xmpp *x)
{
	uint64_t value;
	if (x->event_fd >= 0 && read(x->event_fd, &value, sizeof(value)) < 0 && errno != EAGAIN)
		tr_log_debug("xmpp %s: eventfd read: %s", x->cfg.jid, g_strerror(errno));
}

static tr_xmpp_event *event_new(tr_xmpp_event_type type)
{
	tr_xmpp_event *ev = g_new0(tr_xmpp_event, 1);
	ev->type = type;
	ev->time = g_get_real_time();
	return ev;
}

/* Queue an event for the consumer (x->lock held).  Incoming messages
 * (droppable) are dropped when the consumer is event_queue_max behind;
 * state changes and send results never are. */
static void push_event_locked(tr_xmpp *x, tr_xmpp_event *ev, bool droppable)
{
	if (droppable && g_queue_get_length(&x->events) >= (guint)x->cfg.limits.event_queue_max) {
		x->stats.dropped_events++;
		tr_xmpp_event_free(&ev);
		return;
	}
	g_queue_push_tail(&x->events, ev);
	if (g_queue_get_length(&x->events) == 1)
		event_fd_signal(x);
	pthread_cond_broadcast(&x->event_cond);
}

static void push_event(tr_xmpp *x, tr_xmpp_event *ev, bool droppable)
{
	pthread_mutex_lock(&x->lock);
	push_event_locked(x, ev, droppable);
	pthread_mutex_unlock(&x->lock);
}

static void out_msg_free(out_msg *m)
{
	g_free(m->to);
	g_free(m->body);
	g_free(m->caller_id);
	g_free(m);
}

static gint out_msg_order(gconstpointer a, gconstpointer b)
{
	const out_msg *ma = a, *mb = b;
	return ma->serial < mb->serial ? -1 : ma->serial > mb->serial;
}

/* Report m's outcome and free it (the caller has taken it out of every
 * container). */
static void finish_msg(tr_xmpp *x, out_msg *m, tr_xmpp_send_status status, tr_xmpp_confirmation how,
                       const char *text)
{
	tr_xmpp_event *ev = event_new(TR_XMPP_EVENT_SEND_RESULT);
	ev->id = g_strdup(m->caller_id);
	if (m->is_room)
		ev->room = g_strdup(m->to);
	else
		ev->jid = g_strdup(m->to);
	ev->send_status = status;
	ev->confirmation = how;
	ev->text = g_strdup(text);
	ev->stanza_id = g_strdup(m->stanza_id);
	/* one critical section: a consumer that sees the result sees the counts */
	pthread_mutex_lock(&x->lock);
	x->outstanding--;
	if (status == TR_XMPP_SEND_OK)
		x->stats.sent++;
	else if (status == TR_XMPP_SEND_FAILED)
		x->stats.failed++;
	else
		x->stats.uncertain++;
	push_event_locked(x, ev, false);
	pthread_mutex_unlock(&x->lock);
	out_msg_free(m);
}

/* Take a written message out of the in-flight tables and report it. */
static void finish_inflight(tr_xmpp *x, out_msg *m, tr_xmpp_send_status status, tr_xmpp_confirmation how,
                            const char *text)
{
	g_hash_table_steal(x->inflight, m->stanza_id);
	if (!m->is_room)
		g_queue_remove(&x->chat_inflight, m);
	finish_msg(x, m, status, how, text);
}

/* ------------------------------------------------ libstrophe's callbacks
 * They only copy what they are given and queue it; the loop does the rest. */

static int on_stanza(xmpp_conn_t *conn, xmpp_stanza_t *stanza, void *userdata)
{
	(void)conn;
	tr_xmpp *x = userdata;
	tr_xmpp_in *in = tr_xmpp_in_parse(stanza, (size_t)x->cfg.limits.incoming_max, x->own_bare);
	if (in != NULL)
		g_queue_push_tail(&x->inbox, in);
	return 1;
}

static const char *stream_error_name(xmpp_error_type_t type)
{
	static const char *const names[] = {
		"bad-format", "bad-namespace-prefix", "conflict", "connection-timeout", "host-gone",
		"host-unknown", "improper-addressing", "internal-server-error", "invalid-from",
		"invalid-id", "invalid-namespace", "invalid-xml", "not-authorized", "policy-violation",
		"remote-connection-failed", "resource-constraint", "restricted-xml", "see-other-host",
		"system-shutdown", "undefined-condition", "unsupported-encoding",
		"unsupported-stanza-type", "unsupported-version", "xml-not-well-formed",
	};
	return (size_t)type < G_N_ELEMENTS(names) ? names[type] : "undefined-condition";
}

static void on_conn(xmpp_conn_t *conn, xmpp_conn_event_t event, int error,
                    xmpp_stream_error_t *stream_error, void *userdata)
{
	(void)conn;
	tr_xmpp *x = userdata;
	if (x->releasing)
		return;
	tr_xmpp_in *in = g_new0(tr_xmpp_in, 1);
	in->kind = TR_XMPP_IN_CONN;
	in->conn_event = (int)event;
	in->conn_error = error;
	if (stream_error != NULL)
		in->conn_text = g_strdup_printf("stream error %s%s%s", stream_error_name(stream_error->type),
		                                stream_error->text != NULL ? ": " : "",
		                                stream_error->text != NULL ? stream_error->text : "");
	g_queue_push_tail(&x->inbox, in);
}

static int on_certfail(const xmpp_tlscert_t *cert, const char *const errormsg)
{
	tr_xmpp *x = thread_self;
	if (x == NULL)
		return 0;
	if (!x->cfg.verify) {
		if (!x->trust_warned)
			tr_log_warning("xmpp %s: %s: accepting an untrusted certificate (%s): verify = no", x->cfg.jid,
			               server_name(x), errormsg);
		x->trust_warned = true;
		return 1;
	}
	const char *subject = xmpp_tlscert_get_string(cert, XMPP_CERT_SUBJECT);
	x->fail_needs_human = true;
	set_fail_reason(x, "%s: TLS certificate not trusted: %s (subject %s); set ca_file, or verify = no",
	                server_name(x), errormsg != NULL ? errormsg : "verification failed",
	                subject != NULL ? subject : "?");
	return 0;
}

static int on_sockopt(xmpp_conn_t *conn, void *sock)
{
	int fd = *(int *)sock;
	if (fd >= FD_SETSIZE) {
		if (thread_self != NULL)
			thread_self->fail_needs_human = true;
		if (thread_self != NULL)
			set_fail_reason(thread_self, "socket fd %d >= FD_SETSIZE (%d): libstrophe waits with "
			                "select() and cannot use it; open the XMPP connection earlier", fd, FD_SETSIZE);
		return -1;
	}
	return xmpp_sockopt_cb_keepalive(conn, sock);
}

static void on_log(void *userdata, xmpp_log_level_t level, const char *area, const char *msg)
{
	tr_xmpp *x = userdata;
	if (level >= XMPP_LEVEL_WARN) {
		g_free(x->last_log_error);
		x->last_log_error = g_strdup_printf("%s: %s", area, msg);
		g_strchomp(x->last_log_error);
	}
	/* Debug only: the reasons that matter reach the consumer in events.
	 * libstrophe logs every stanza; the SASL exchange (a PLAIN password)
	 * is never written anywhere. */
	if (strstr(msg, "urn:ietf:params:xml:ns:xmpp-sasl") == NULL && strstr(msg, "<auth") == NULL &&
	    tr_log_get_level() >= TR_LOG_DEBUG)
		tr_log_debug("xmpp %s: libstrophe %s: %s", x->cfg.jid, area, msg);
}

/* ------------------------------------------------------------ the wire */

static void send_stanza(tr_xmpp *x, xmpp_stanza_t *st)
{
	xmpp_send(x->conn, st);
	xmpp_stanza_release(st);
}

static xmpp_stanza_t *child(xmpp_stanza_t *parent, const char *name, const char *ns)
{
	xmpp_stanza_t *c = xmpp_stanza_new(xmpp_stanza_get_context(parent));
	xmpp_stanza_set_name(c, name);
	if (ns != NULL)
		xmpp_stanza_set_ns(c, ns);
	xmpp_stanza_add_child(parent, c);
	xmpp_stanza_release(c); /* the parent holds it */
	return c;
}

static void send_ping(tr_xmpp *x, gint64 now)
{
	ping_out *p = g_new0(ping_out, 1);
	p->serial = ++x->ping_serial;
	p->sent = now;
	g_queue_push_tail(&x->pings, p);
	char id[48];
	g_snprintf(id, sizeof(id), "%s-ping%" G_GUINT64_FORMAT, x->id_prefix, p->serial);
	xmpp_stanza_t *iq = xmpp_iq_new(x->ctx, "get", id);
	xmpp_stanza_set_to(iq, x->domain);
	child(iq, "ping", NS_PING);
	send_stanza(x, iq);
	if (x->cfg.limits.ping_interval > 0)
		x->next_ping = now + x->cfg.limits.ping_interval * G_USEC_PER_SEC;
}

static void send_message(tr_xmpp *x, out_msg *m)
{
	xmpp_stanza_t *msg = xmpp_message_new(x->ctx, m->is_room ? "groupchat" : "chat", m->to, m->stanza_id);
	xmpp_message_set_body(msg, m->body);
	/* XEP-0359: rooms that rewrite the id keep this one */
	xmpp_stanza_t *origin = child(msg, "origin-id", NS_SID);
	xmpp_stanza_set_attribute(origin, "id", m->stanza_id);
	send_stanza(x, msg);
}

static void send_room_presence(tr_xmpp *x, room *r, bool available)
{
	xmpp_stanza_t *pres = xmpp_presence_new(x->ctx);
	char *to = g_strdup_printf("%s/%s", r->jid, r->nick);
	xmpp_stanza_set_to(pres, to);
	g_free(to);
	if (available) {
		xmpp_stanza_t *mx = child(pres, "x", NS_MUC);
		xmpp_stanza_t *history = child(mx, "history", NULL);
		xmpp_stanza_set_attribute(history, "maxstanzas", "0");
	} else {
		xmpp_stanza_set_type(pres, "unavailable");
	}
	send_stanza(x, pres);
}

static void send_iq_reply(tr_xmpp *x, const tr_xmpp_in *in, bool ok)
{
	xmpp_stanza_t *iq = xmpp_iq_new(x->ctx, ok ? "result" : "error", in->id);
	if (in->from != NULL)
		xmpp_stanza_set_to(iq, in->from);
	if (!ok) {
		xmpp_stanza_t *err = child(iq, "error", NULL);
		xmpp_stanza_set_type(err, "cancel");
		child(err, "service-unavailable", NS_STANZAS);
	}
	send_stanza(x, iq);
}

/* ----------------------------------------------------------------- rooms */

static room *room_get(tr_xmpp *x, const char *jid, bool create)
{
	room *r = g_hash_table_lookup(x->rooms, jid);
	if (r != NULL || !create)
		return r;
	r = g_new0(room, 1);
	r->jid = g_strdup(jid);
	r->nick = g_strdup(x->cfg.nick);
	r->state = ROOM_IDLE;
	tr_backoff_policy policy = backoff_policy(&x->cfg.limits);
	tr_backoff_init(&r->backoff, &policy, backoff_seed(jid));
	g_queue_init(&r->waiting);
	r->occupants = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	g_hash_table_insert(x->rooms, r->jid, r);
	return r;
}

static void room_free(gpointer data)
{
	room *r = data;
	out_msg *m;
	while ((m = g_queue_pop_head(&r->waiting)) != NULL)
		out_msg_free(m);
	g_hash_table_destroy(r->occupants);
	g_free(r->nick);
	g_free(r->last_error);
	g_free(r->jid);
	g_free(r);
}

/* The room a stanza came from (room JIDs compare case-insensitively). */
static room *room_of(tr_xmpp *x, const char *from)
{
	if (from == NULL)
		return NULL;
	char *bare = tr_xmpp_jid_bare(from);
	char *lower = g_utf8_strdown(bare, -1);
	room *r = g_hash_table_lookup(x->rooms, lower);
	g_free(lower);
	g_free(bare);
	return r;
}

static void room_join(tr_xmpp *x, room *r, gint64 now)
{
	g_hash_table_remove_all(r->occupants);
	r->created = false;
	r->state = ROOM_JOINING;
	r->deadline = now + x->cfg.limits.join_timeout * G_USEC_PER_SEC;
	send_room_presence(x, r, true);
}

static void room_left(tr_xmpp *x, room *r, tr_xmpp_left_reason reason, const char *text, gint64 now)
{
	tr_xmpp_event *ev = event_new(TR_XMPP_EVENT_LEFT);
	ev->room = g_strdup(r->jid);
	ev->left_reason = reason;
	ev->text = g_strdup(text);
	push_event(x, ev, false);
	g_free(r->last_error);
	r->last_error = g_strdup(text);
	g_hash_table_remove_all(r->occupants);
	if (reason == TR_XMPP_LEFT_CONNECTION) {
		r->state = ROOM_IDLE;
		return;
	}
	r->state = ROOM_BACKOFF;
	r->deadline = now + tr_backoff_next(&r->backoff) * G_TIME_SPAN_MILLISECOND;
}

static void room_joined(tr_xmpp *x, room *r)
{
	r->state = ROOM_JOINED;
	tr_backoff_reset(&r->backoff);
	r->nick_retried = false;
	g_clear_pointer(&r->last_error, g_free);
	tr_xmpp_event *ev = event_new(TR_XMPP_EVENT_JOINED);
	ev->room = g_strdup(r->jid);
	ev->created = r->created;
	ev->text = g_strdup(r->nick);
	push_event(x, ev, false);
	pthread_mutex_lock(&x->lock);
	x->stats.rooms_joined++;
	pthread_mutex_unlock(&x->lock);
}

static void room_not_joined_any_more(tr_xmpp *x, room *r)
{
	if (r->state != ROOM_JOINED)
		return;
	pthread_mutex_lock(&x->lock);
	x->stats.rooms_joined--;
	pthread_mutex_unlock(&x->lock);
}

static void send_owner_form(tr_xmpp *x, room *r, gint64 now)
{
	next_id(x, "cfg", r->config_iq, sizeof(r->config_iq));
	xmpp_stanza_t *iq = xmpp_iq_new(x->ctx, "set", r->config_iq);
	xmpp_stanza_set_to(iq, r->jid);
	xmpp_stanza_t *query = child(iq, "query", NS_MUC_OWNER);
	xmpp_stanza_t *form = child(query, "x", NS_DATA);
	xmpp_stanza_set_type(form, "submit");
	send_stanza(x, iq);
	r->state = ROOM_CONFIGURING;
	r->deadline = now + x->cfg.limits.join_timeout * G_USEC_PER_SEC;
}

static tr_xmpp_left_reason left_reason_of(const tr_xmpp_in *in)
{
	if (tr_xmpp_in_has_status(in, 307))
		return TR_XMPP_LEFT_KICKED;
	if (tr_xmpp_in_has_status(in, 301))
		return TR_XMPP_LEFT_BANNED;
	if (tr_xmpp_in_has_status(in, 321) || tr_xmpp_in_has_status(in, 322))
		return TR_XMPP_LEFT_REMOVED;
	if (tr_xmpp_in_has_status(in, 332) || in->destroyed)
		return TR_XMPP_LEFT_SHUTDOWN;
	return TR_XMPP_LEFT_OTHER;
}

static void handle_own_presence(tr_xmpp *x, room *r, const tr_xmpp_in *in, const char *nick, gint64 now)
{
	if (type_is(in, "unavailable")) {
		if (tr_xmpp_in_has_status(in, 303) && in->item_nick != NULL) {
			g_free(r->nick); /* the room changed our nick */
			r->nick = g_strdup(in->item_nick);
			return;
		}
		if (r->state != ROOM_JOINED && r->state != ROOM_JOINING && r->state != ROOM_CONFIGURING)
			return; /* the echo of our own leaving */
		tr_xmpp_left_reason reason = left_reason_of(in);
		char *text = g_strdup_printf("%s: %s%s%s", r->jid, tr_xmpp_left_reason_name(reason),
		                             in->item_reason != NULL ? ": " : "",
		                             in->item_reason != NULL ? in->item_reason : "");
		room_not_joined_any_more(x, r);
		room_left(x, r, reason, text, now);
		g_free(text);
		return;
	}
	if (strcmp(nick, r->nick) != 0) {
		g_free(r->nick); /* status 210: the room picked our nick */
		r->nick = g_strdup(nick);
	}
	if (r->state != ROOM_JOINING)
		return;
	if (tr_xmpp_in_has_status(in, 201)) {
		r->created = true;
		if (x->cfg.create_rooms) {
			send_owner_form(x, r, now);
		} else {
			send_room_presence(x, r, false);
			char *text = g_strdup_printf("%s: the room did not exist (create_rooms = no)", r->jid);
			room_left(x, r, TR_XMPP_LEFT_NOT_FOUND, text, now);
			g_free(text);
		}
		return;
	}
	room_joined(x, r);
}

static void handle_presence(tr_xmpp *x, const tr_xmpp_in *in, gint64 now)
{
	room *r = room_of(x, in->from);
	if (r == NULL || r->state == ROOM_IDLE)
		return;
	const char *nick = tr_xmpp_jid_resource(in->from);
	if (type_is(in, "error")) {
		if (r->state != ROOM_JOINING && r->state != ROOM_CONFIGURING)
			return;
		if (in->error_condition != NULL && strcmp(in->error_condition, "conflict") == 0 && !r->nick_retried) {
			/* someone has our nick: try once with a suffix */
			r->nick_retried = true;
			char *alt = g_strdup_printf("%s_", x->cfg.nick);
			g_free(r->nick);
			r->nick = alt;
			room_join(x, r, now);
			return;
		}
		char *text = g_strdup_printf("%s refused the join: %s%s%s", r->jid, in->error_condition,
		                             in->error_text != NULL ? ": " : "",
		                             in->error_text != NULL ? in->error_text : "");
		room_left(x, r, TR_XMPP_LEFT_JOIN_FAILED, text, now);
		g_free(text);
		return;
	}
	if (nick == NULL)
		return;
	if (tr_xmpp_in_has_status(in, 110) || strcmp(nick, r->nick) == 0) {
		handle_own_presence(x, r, in, nick, now);
		return;
	}
	if (type_is(in, "unavailable")) {
		if (tr_xmpp_in_has_status(in, 303) && in->item_nick != NULL) {
			char *jid = g_strdup(g_hash_table_lookup(r->occupants, nick));
			g_hash_table_insert(r->occupants, g_strdup(in->item_nick), jid != NULL ? jid : g_strdup(""));
		}
		g_hash_table_remove(r->occupants, nick);
	} else if (in->type == NULL) {
		g_hash_table_insert(r->occupants, g_strdup(nick), g_strdup(in->item_jid != NULL ? in->item_jid : ""));
	}
}

/* --------------------------------------------------------------- messages */

static out_msg *find_echo(tr_xmpp *x, room *r, const tr_xmpp_in *in)
{
	out_msg *m = NULL;
	if (in->id != NULL)
		m = g_hash_table_lookup(x->inflight, in->id);
	if (m == NULL && in->origin_id != NULL)
		m = g_hash_table_lookup(x->inflight, in->origin_id);
	if (m != NULL)
		return m->is_room && strcmp(m->to, r->jid) == 0 ? m : NULL;
	/* A room that dropped both ids: the oldest unconfirmed post with this body. */
	GHashTableIter it;
	gpointer value;
	out_msg *best = NULL;
	g_hash_table_iter_init(&it, x->inflight);
	while (g_hash_table_iter_next(&it, NULL, &value)) {
		out_msg *c = value;
		if (c->is_room && strcmp(c->to, r->jid) == 0 && in->body != NULL && strcmp(c->body, in->body) == 0 &&
		    (best == NULL || c->written < best->written))
			best = c;
	}
	return best;
}

static void handle_message(tr_xmpp *x, tr_xmpp_in *in)
{
	room *r = room_of(x, in->from);
	tr_xmpp_msg_class c = tr_xmpp_classify_message(in, r != NULL ? r->nick : NULL,
	                                               r != NULL && r->state == ROOM_JOINED, x->own_bare);
	switch (c) {
	case TR_XMPP_MSG_ERROR: {
		out_msg *m = in->id != NULL ? g_hash_table_lookup(x->inflight, in->id) : NULL;
		if (m == NULL) {
			tr_log_debug("xmpp %s: error %s from %s for no message of ours", x->cfg.jid,
			             in->error_condition, in->from != NULL ? in->from : "?");
			return;
		}
		char *text = g_strdup_printf("%s refused it: %s%s%s", in->from != NULL ? in->from : m->to,
		                             in->error_condition, in->error_text != NULL ? ": " : "",
		                             in->error_text != NULL ? in->error_text : "");
		finish_inflight(x, m, TR_XMPP_SEND_FAILED, TR_XMPP_CONFIRMED_NONE, text);
		g_free(text);
		return;
	}
	case TR_XMPP_MSG_ECHO: {
		out_msg *m = find_echo(x, r, in);
		if (m != NULL)
			finish_inflight(x, m, TR_XMPP_SEND_OK, TR_XMPP_CONFIRMED_ECHO, "the room reflected it");
		return;
	}
	case TR_XMPP_MSG_ROOM: {
		tr_xmpp_event *ev = event_new(TR_XMPP_EVENT_ROOM_MESSAGE);
		ev->room = g_strdup(r->jid);
		ev->nick = g_strdup(tr_xmpp_jid_resource(in->from));
		const char *real = g_hash_table_lookup(r->occupants, ev->nick);
		ev->jid = real != NULL && *real != '\0' ? g_strdup(real) : NULL;
		ev->body = g_steal_pointer(&in->body);
		ev->stanza_id = g_strdup(in->stanza_id != NULL ? in->stanza_id : in->id);
		ev->truncated = in->truncated;
		push_event(x, ev, true);
		return;
	}
	case TR_XMPP_MSG_CHAT: {
		tr_xmpp_event *ev = event_new(TR_XMPP_EVENT_CHAT_MESSAGE);
		ev->jid = g_strdup(in->from);
		ev->body = g_steal_pointer(&in->body);
		ev->stanza_id = g_strdup(in->stanza_id != NULL ? in->stanza_id : in->id);
		ev->delayed = in->delayed;
		ev->truncated = in->truncated;
		push_event(x, ev, true);
		return;
	}
	default:
		tr_log_debug("xmpp %s: message from %s ignored (%s)", x->cfg.jid,
		             in->from != NULL ? in->from : "?", tr_xmpp_msg_class_name(c));
		return;
	}
}

static void pong(tr_xmpp *x, guint64 serial)
{
	ping_out *p;
	while ((p = g_queue_peek_head(&x->pings)) != NULL && p->serial <= serial)
		g_free(g_queue_pop_head(&x->pings));
	/* the server has read everything written before that ping */
	out_msg *m;
	while ((m = g_queue_peek_head(&x->chat_inflight)) != NULL && m->barrier <= serial)
		finish_inflight(x, m, TR_XMPP_SEND_OK, TR_XMPP_CONFIRMED_SERVER, "the server accepted it");
}

static void handle_iq(tr_xmpp *x, const tr_xmpp_in *in, gint64 now)
{
	if (type_is(in, "get") || type_is(in, "set")) {
		/* answer pings and acknowledge roster pushes (RFC 6121 2.1.6);
		 * anything else is service-unavailable */
		bool ping = type_is(in, "get") && g_strcmp0(in->payload_ns, NS_PING) == 0;
		bool roster = type_is(in, "set") && g_strcmp0(in->payload_ns, "jabber:iq:roster") == 0 &&
		              (in->from == NULL || g_ascii_strcasecmp(in->from, x->own_bare) == 0);
		send_iq_reply(x, in, ping || roster);
		return;
	}
	if (in->id == NULL)
		return;
	size_t plen = strlen(x->id_prefix);
	if (strncmp(in->id, x->id_prefix, plen) == 0 && strncmp(in->id + plen, "-ping", 5) == 0) {
		/* an error answer (feature-not-implemented) proves the same */
		pong(x, g_ascii_strtoull(in->id + plen + 5, NULL, 10));
		return;
	}
	GHashTableIter it;
	gpointer value;
	g_hash_table_iter_init(&it, x->rooms);
	while (g_hash_table_iter_next(&it, NULL, &value)) {
		room *r = value;
		if (r->state != ROOM_CONFIGURING || strcmp(r->config_iq, in->id) != 0)
			continue;
		if (type_is(in, "result")) {
			room_joined(x, r);
		} else {
			char *text = g_strdup_printf("%s refused its configuration: %s", r->jid,
			                             in->error_condition != NULL ? in->error_condition : "error");
			send_room_presence(x, r, false);
			room_left(x, r, TR_XMPP_LEFT_JOIN_FAILED, text, now);
			g_free(text);
		}
		return;
	}
}

/* ------------------------------------------------------------ connection */

static void release_conn(tr_xmpp *x)
{
	if (x->conn == NULL)
		return;
	x->releasing = true;
	xmpp_conn_release(x->conn);
	x->releasing = false;
	x->conn = NULL;
}

/* The session (or an attempt at one) is over: report, fail over what was
 * in flight, and schedule the next attempt. */
static void conn_down(tr_xmpp *x, const char *why, gint64 now)
{
	release_conn(x);
	x->cstate = CONN_DOWN;
	x->disconnect_sent = false;
	char *reason = g_strdup(why);
	tr_xmpp_event *ev = event_new(TR_XMPP_EVENT_DISCONNECTED);
	ev->text = g_strdup(reason);
	push_event(x, ev, false);
	g_free(x->last_down_reason);
	x->last_down_reason = g_strdup(reason);
	pthread_mutex_lock(&x->lock);
	x->stats.connected = false;
	pthread_mutex_unlock(&x->lock);

	GHashTableIter it;
	gpointer value;
	g_hash_table_iter_init(&it, x->rooms);
	while (g_hash_table_iter_next(&it, NULL, &value)) {
		room *r = value;
		if (r->state == ROOM_JOINED) {
			room_not_joined_any_more(x, r);
			room_left(x, r, TR_XMPP_LEFT_CONNECTION, reason, now);
		}
		r->state = ROOM_IDLE;
		tr_backoff_reset(&r->backoff);
		r->nick_retried = false;
		g_free(r->nick);
		r->nick = g_strdup(x->cfg.nick);
	}
	GList *written = g_list_sort(g_hash_table_get_values(x->inflight), out_msg_order);
	char *text = g_strdup_printf("connection lost before confirmation (%s): it may or may not have been delivered",
	                             reason);
	for (GList *l = written; l != NULL; l = l->next)
		finish_inflight(x, l->data, TR_XMPP_SEND_UNCERTAIN, TR_XMPP_CONFIRMED_NONE, text);
	g_list_free(written);
	g_free(text);
	g_queue_clear_full(&x->pings, g_free);
	g_queue_clear_full(&x->inbox, in_free_notify);
	/* a certificate nobody trusts will not fix itself in a second */
	tr_backoff *schedule = x->fail_needs_human ? &x->reconnect_slow : &x->reconnect;
	x->next_connect = now + tr_backoff_next(schedule) * G_TIME_SPAN_MILLISECOND;
	g_free(reason);
}

static char *disconnect_reason(tr_xmpp *x, const tr_xmpp_in *in)
{
	if (x->fail_reason != NULL)
		return g_strdup(x->fail_reason);
	if (in != NULL && in->conn_text != NULL)
		return g_strdup_printf("%s: %s", server_name(x), in->conn_text);
	if (x->cstate == CONN_CONNECTING && x->last_log_error != NULL)
		return g_strdup_printf("%s: %s", server_name(x), x->last_log_error);
	if (in != NULL && in->conn_error != 0)
		return g_strdup_printf("%s: %s", server_name(x), g_strerror(in->conn_error));
	if (x->cstate == CONN_CONNECTING)
		return g_strdup_printf("%s: no session (TLS, login or bind failed)", server_name(x));
	return g_strdup_printf("%s: connection closed", server_name(x));
}

static void conn_start(tr_xmpp *x, gint64 now)
{
	g_clear_pointer(&x->fail_reason, g_free);
	g_clear_pointer(&x->last_log_error, g_free);
	x->fail_needs_human = false;
	xmpp_conn_t *c = xmpp_conn_new(x->ctx);
	long flags = XMPP_CONN_FLAG_DISABLE_SM;
	if (x->cfg.tls == TR_XMPP_TLS_REQUIRED)
		flags |= XMPP_CONN_FLAG_MANDATORY_TLS;
	else if (x->cfg.tls == TR_XMPP_TLS_DIRECT)
		flags |= XMPP_CONN_FLAG_LEGACY_SSL;
	xmpp_conn_set_flags(c, flags);
	xmpp_conn_set_jid(c, x->cfg.jid);
	xmpp_conn_set_pass(c, x->cfg.password);
	if (x->cfg.ca_file != NULL)
		xmpp_conn_set_cafile(c, x->cfg.ca_file);
	xmpp_conn_set_certfail_handler(c, on_certfail);
	xmpp_conn_set_sockopt_callback(c, on_sockopt);
	/* One handler for every stanza: libstrophe silently refuses to add the
	 * same function twice, even for different stanza names. */
	xmpp_handler_add(c, on_stanza, NULL, NULL, NULL, x);
	x->conn = c;
	x->cstate = CONN_CONNECTING;
	x->disconnect_sent = false;
	x->deadline = now + x->cfg.limits.connect_timeout * G_USEC_PER_SEC;
	const char *host = x->cfg.host;
	unsigned short port = (unsigned short)x->cfg.limits.port;
	if (host == NULL && port != 0)
		host = x->domain;
	int rc = xmpp_connect_client(c, host, port, on_conn, x);
	if (rc != XMPP_EOK) {
		set_fail_reason(x, "%s: cannot connect (libstrophe error %d%s%s)", server_name(x), rc,
		                x->last_log_error != NULL ? ": " : "",
		                x->last_log_error != NULL ? x->last_log_error : "");
		char *why = disconnect_reason(x, NULL);
		conn_down(x, why, now);
		g_free(why);
	}
}

static void handle_conn(tr_xmpp *x, const tr_xmpp_in *in, gint64 now)
{
	if (in->conn_event == XMPP_CONN_CONNECT) {
		if (x->cstate != CONN_CONNECTING)
			return;
		x->cstate = CONN_UP;
		tr_backoff_reset(&x->reconnect);
		tr_backoff_reset(&x->reconnect_slow);
		g_clear_pointer(&x->fail_reason, g_free);
		tr_xmpp_event *ev = event_new(TR_XMPP_EVENT_CONNECTED);
		ev->jid = g_strdup(xmpp_conn_get_bound_jid(x->conn));
		ev->text = g_strdup_printf("%s%s", server_name(x),
		                           xmpp_conn_is_secured(x->conn) ? " (TLS)" : " (NO TLS)");
		push_event(x, ev, false);
		pthread_mutex_lock(&x->lock);
		x->stats.connected = true;
		x->stats.connects++;
		pthread_mutex_unlock(&x->lock);
		/* Initial presence: messages to our bare JID reach this session and
		 * the server hands over what it stored while we were away. */
		send_stanza(x, xmpp_presence_new(x->ctx));
		x->next_ping = x->cfg.limits.ping_interval > 0 ? now + x->cfg.limits.ping_interval * G_USEC_PER_SEC : 0;
		GHashTableIter it;
		gpointer value;
		g_hash_table_iter_init(&it, x->rooms);
		while (g_hash_table_iter_next(&it, NULL, &value))
			room_join(x, value, now);
		return;
	}
	if (x->cstate == CONN_DOWN)
		return;
	char *why = disconnect_reason(x, in);
	conn_down(x, why, now);
	g_free(why);
}

static void process_inbox(tr_xmpp *x)
{
	tr_xmpp_in *in;
	while ((in = g_queue_pop_head(&x->inbox)) != NULL) {
		gint64 now = now_us();
		if (in->kind == TR_XMPP_IN_CONN)
			handle_conn(x, in, now);
		else if (x->cstate != CONN_UP)
			; /* left over from a connection that is gone */
		else if (in->kind == TR_XMPP_IN_MESSAGE)
			handle_message(x, in);
		else if (in->kind == TR_XMPP_IN_PRESENCE)
			handle_presence(x, in, now);
		else
			handle_iq(x, in, now);
		tr_xmpp_in_free(&in);
	}
}

/* ---------------------------------------------------------------- timers */

static void dead_connection(tr_xmpp *x, const char *what, gint64 seconds, gint64 now)
{
	set_fail_reason(x, "%s: %s %lld s", server_name(x), what, (long long)seconds);
	char *why = g_strdup(x->fail_reason);
	/* no goodbye to a peer that does not answer: release at once */
	conn_down(x, why, now);
	g_free(why);
}

static const char *waiting_reason(tr_xmpp *x, const room *r)
{
	if (x->cstate != CONN_UP)
		return x->last_down_reason != NULL ? x->last_down_reason : "not connected yet";
	if (r != NULL && r->state != ROOM_JOINED)
		return r->last_error != NULL ? r->last_error : "the room is not joined yet";
	return r != NULL ? "held back by room_rate" : "not written";
}

static void expire_queue(tr_xmpp *x, GQueue *q, const room *r, gint64 now)
{
	gint64 limit = x->cfg.limits.send_timeout * G_USEC_PER_SEC;
	out_msg *m;
	while ((m = g_queue_peek_head(q)) != NULL && now - m->enqueued > limit) {
		g_queue_pop_head(q);
		char *text = g_strdup_printf("not sent within %lld s: %s", (long long)x->cfg.limits.send_timeout,
		                             waiting_reason(x, r));
		finish_msg(x, m, TR_XMPP_SEND_FAILED, TR_XMPP_CONFIRMED_NONE, text);
		g_free(text);
	}
}

static void timers(tr_xmpp *x, gint64 now)
{
	if (x->cstate == CONN_CONNECTING && now >= x->deadline) {
		dead_connection(x, "no session within", x->cfg.limits.connect_timeout, now);
	} else if (x->cstate == CONN_UP) {
		ping_out *p = g_queue_peek_head(&x->pings);
		if (p != NULL && now - p->sent > x->cfg.limits.ping_timeout * G_USEC_PER_SEC)
			dead_connection(x, "no answer to a ping for", x->cfg.limits.ping_timeout, now);
		else if (x->next_ping != 0 && now >= x->next_ping && g_queue_is_empty(&x->pings))
			send_ping(x, now);
	}

	GHashTableIter it;
	gpointer value;
	g_hash_table_iter_init(&it, x->rooms);
	while (g_hash_table_iter_next(&it, NULL, &value)) {
		room *r = value;
		if (x->cstate == CONN_UP && (r->state == ROOM_JOINING || r->state == ROOM_CONFIGURING) &&
		    now >= r->deadline) {
			send_room_presence(x, r, false);
			char *text = g_strdup_printf("%s: no answer to our join within %lld s", r->jid,
			                             (long long)x->cfg.limits.join_timeout);
			room_left(x, r, TR_XMPP_LEFT_JOIN_FAILED, text, now);
			g_free(text);
		} else if (x->cstate == CONN_UP && r->state == ROOM_BACKOFF && now >= r->deadline) {
			room_join(x, r, now);
		}
		expire_queue(x, &r->waiting, r, now);
	}
	expire_queue(x, &x->chat_waiting, NULL, now);

	/* room posts whose echo does not come */
	gint64 echo_limit = x->cfg.limits.echo_timeout * G_USEC_PER_SEC;
	GList *late = NULL;
	g_hash_table_iter_init(&it, x->inflight);
	while (g_hash_table_iter_next(&it, NULL, &value)) {
		out_msg *m = value;
		if (m->is_room && now - m->written > echo_limit)
			late = g_list_prepend(late, m);
	}
	for (GList *l = late; l != NULL; l = l->next) {
		char *text = g_strdup_printf("no echo from the room within %lld s: it may or may not have been delivered",
		                             (long long)x->cfg.limits.echo_timeout);
		finish_inflight(x, l->data, TR_XMPP_SEND_UNCERTAIN, TR_XMPP_CONFIRMED_NONE, text);
		g_free(text);
	}
	g_list_free(late);
}

/* Write what may go out now. */
static void flush(tr_xmpp *x, gint64 now)
{
	if (x->cstate != CONN_UP)
		return;
	bool wrote_chat = false;
	out_msg *m;
	while ((m = g_queue_pop_head(&x->chat_waiting)) != NULL) {
		m->written = now;
		m->barrier = x->ping_serial + 1; /* the ping written below */
		send_message(x, m);
		g_hash_table_insert(x->inflight, m->stanza_id, m);
		g_queue_push_tail(&x->chat_inflight, m);
		wrote_chat = true;
	}
	if (wrote_chat)
		send_ping(x, now);
	GHashTableIter it;
	gpointer value;
	g_hash_table_iter_init(&it, x->rooms);
	while (g_hash_table_iter_next(&it, NULL, &value)) {
		room *r = value;
		if (r->state != ROOM_JOINED)
			continue;
		while (!g_queue_is_empty(&r->waiting) && tr_xmpp_bucket_take(&r->bucket, x->cfg.limits.room_rate, now)) {
			m = g_queue_pop_head(&r->waiting);
			m->written = now;
			send_message(x, m);
			g_hash_table_insert(x->inflight, m->stanza_id, m);
		}
	}
}

/* ------------------------------------------------------------ the thread */

static bool take_commands(tr_xmpp *x, gint64 now)
{
	GQueue taken = G_QUEUE_INIT;
	pthread_mutex_lock(&x->lock);
	bool closing = x->closing;
	taken = x->commands;
	g_queue_init(&x->commands);
	pthread_mutex_unlock(&x->lock);
	out_msg *m;
	while ((m = g_queue_pop_head(&taken)) != NULL) {
		if (!m->is_room) {
			g_queue_push_tail(&x->chat_waiting, m);
			continue;
		}
		room *r = room_get(x, m->to, true);
		if (r->state == ROOM_IDLE && x->cstate == CONN_UP)
			room_join(x, r, now); /* a room nobody configured: join on first use */
		g_queue_push_tail(&r->waiting, m);
	}
	return closing;
}

static void wait_for_commands(tr_xmpp *x, gint64 until)
{
	pthread_mutex_lock(&x->lock);
	if (g_queue_is_empty(&x->commands) && !x->closing)
		cond_wait_until(&x->command_cond, &x->lock, until);
	pthread_mutex_unlock(&x->lock);
}

static void fail_queue(tr_xmpp *x, GQueue *q, const char *text)
{
	out_msg *m;
	while ((m = g_queue_pop_head(q)) != NULL)
		finish_msg(x, m, TR_XMPP_SEND_FAILED, TR_XMPP_CONFIRMED_NONE, text);
}

/* Leave politely, give in-flight posts a moment to be confirmed, close the
 * stream, and give every message still here its result. */
static void shutdown_session(tr_xmpp *x)
{
	const char *closed = "not sent: the XMPP connection was closed";
	if (x->cstate == CONN_UP) {
		GHashTableIter it;
		gpointer value;
		g_hash_table_iter_init(&it, x->rooms);
		while (g_hash_table_iter_next(&it, NULL, &value)) {
			room *r = value;
			if (r->state == ROOM_JOINED)
				send_room_presence(x, r, false);
		}
		set_fail_reason(x, "%s: closed by triage", server_name(x));
		xmpp_disconnect(x->conn);
		gint64 end = now_us() + CLOSE_GRACE_US;
		while (x->conn != NULL && now_us() < end) {
			xmpp_run_once(x->ctx, LOOP_MS);
			process_inbox(x);
		}
	}
	if (x->conn != NULL) {
		set_fail_reason(x, "%s: closed by triage", server_name(x));
		char *why = g_strdup(x->fail_reason);
		conn_down(x, why, now_us());
		g_free(why);
	}
	take_commands(x, now_us());
	fail_queue(x, &x->chat_waiting, closed);
	GHashTableIter it;
	gpointer value;
	g_hash_table_iter_init(&it, x->rooms);
	while (g_hash_table_iter_next(&it, NULL, &value))
		fail_queue(x, &((room *)value)->waiting, closed);
}

static void object_free(tr_xmpp *x)
{
	tr_xmpp_event *ev;
	while ((ev = g_queue_pop_head(&x->events)) != NULL)
		tr_xmpp_event_free(&ev);
	out_msg *m;
	while ((m = g_queue_pop_head(&x->commands)) != NULL)
		out_msg_free(m);
	if (x->event_fd >= 0)
		close(x->event_fd);
	pthread_mutex_destroy(&x->lock);
	pthread_cond_destroy(&x->event_cond);
	pthread_cond_destroy(&x->command_cond);
	tr_xmpp_config_clear(&x->cfg);
	g_free(x->own_bare);
	g_free(x->domain);
	g_free(x);
}

/* The thread's own state (it does not touch the shared part). */
static void thread_state_free(tr_xmpp *x)
{
	release_conn(x);
	if (x->ctx != NULL)
		xmpp_ctx_free(x->ctx);
	x->ctx = NULL;
	g_queue_clear_full(&x->inbox, in_free_notify);
	g_queue_clear_full(&x->pings, g_free);
	g_queue_clear(&x->chat_inflight);
	g_queue_clear_full(&x->chat_waiting, (GDestroyNotify)out_msg_free);
	g_hash_table_destroy(x->inflight);
	g_hash_table_destroy(x->rooms);
	g_free(x->fail_reason);
	g_free(x->last_log_error);
	g_free(x->last_down_reason);
}

static gpointer thread_main(gpointer data)
{
	tr_xmpp *x = data;
	thread_self = x;
	x->log.handler = on_log;
	x->log.userdata = x;
	x->ctx = xmpp_ctx_new(NULL, &x->log);
	while (x->ctx != NULL) {
		gint64 now = now_us();
		if (take_commands(x, now))
			break;
		if (x->cstate == CONN_DOWN && now >= x->next_connect) {
			conn_start(x, now);
			now = now_us();
		}
		if (x->conn != NULL)
			xmpp_run_once(x->ctx, LOOP_MS);
		else
			wait_for_commands(x, MIN(now + LOOP_MS * G_TIME_SPAN_MILLISECOND, MAX(x->next_connect, now)));
		process_inbox(x);
		now = now_us();
		timers(x, now);
		flush(x, now);
	}
	if (x->ctx != NULL)
		shutdown_session(x);
	thread_state_free(x);
	thread_self = NULL;
	pthread_mutex_lock(&x->lock);
	x->finished = true;
	x->stats.connected = false;
	pthread_cond_broadcast(&x->event_cond);
	int refs = --x->refs;
	pthread_mutex_unlock(&x->lock);
	if (refs == 0)
		object_free(x); /* stop() gave up waiting and detached us */
	return NULL;
}

/* ------------------------------------------------------------------- API */

static void library_init(void)
{
	static gsize done = 0;
	if (g_once_init_enter(&done)) {
		/* Without OpenSSL's exit handler: a connection thread that
		 * tr_xmpp_stop() let go may still be inside OpenSSL (loading the
		 * CA bundle, a handshake) when the process exits, and the handler
		 * would free OpenSSL's global state under it.  The first
		 * initialisation in a process decides, so triage's main() does
		 * the same before anything else; this covers other programs. */
		if (!OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, NULL))
			g_error("xmpp: OpenSSL cannot be initialised");
		xmpp_initialize();
		g_once_init_leave(&done, 1);
	}
}

static bool config_usable(const tr_xmpp_config *cfg, GError **error)
{
	const char *problem = NULL;
	if (cfg->jid == NULL || !tr_xmpp_jid_valid(cfg->jid, true, true))
		problem = "jid is missing or not user@domain";
	else if (cfg->password == NULL || *cfg->password == '\0')
		problem = "no password";
	else if (cfg->nick == NULL || !nick_valid(cfg->nick))
		problem = "bad nick";
	else if (cfg->limits.ping_timeout <= 0 || cfg->limits.connect_timeout <= 0 ||
	         cfg->limits.join_timeout <= 0 || cfg->limits.reconnect_backoff <= 0 ||
	         cfg->limits.reconnect_backoff_max < cfg->limits.reconnect_backoff ||
	         cfg->limits.send_timeout <= 0 || cfg->limits.echo_timeout <= 0 ||
	         cfg->limits.queue_max <= 0 || cfg->limits.body_max <= 0 ||
	         cfg->limits.incoming_max <= 0 || cfg->limits.event_queue_max <= 0 ||
	         cfg->limits.port < 0 || cfg->limits.port > 65535)
		problem = "a limit is out of range";
	for (char **r = cfg->rooms; problem == NULL && r != NULL && *r != NULL; r++) {
		if (!tr_xmpp_jid_valid(*r, true, false))
			problem = "a room is not room@service";
	}
	if (problem != NULL) {
		g_set_error(error, TR_XMPP_ERROR, TR_XMPP_ERROR_CONFIG, "xmpp %s: %s",
		            cfg->jid != NULL ? cfg->jid : "(no jid)", problem);
		return false;
	}
	return true;
}

tr_xmpp *tr_xmpp_start(const tr_xmpp_config *cfg, GError **error)
{
	if (!config_usable(cfg, error))
		return NULL;
	library_init();
	int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (efd < 0) {
		g_set_error(error, TR_XMPP_ERROR, TR_XMPP_ERROR_CONFIG, "xmpp %s: eventfd: %s", cfg->jid,
		            g_strerror(errno));
		return NULL;
	}
	tr_xmpp *x = g_new0(tr_xmpp, 1);
	tr_xmpp_config_copy(&x->cfg, cfg);
	char *jid = tr_xmpp_jid_normalize(cfg->jid);
	g_free(x->cfg.jid);
	x->cfg.jid = jid;
	x->own_bare = tr_xmpp_jid_bare(x->cfg.jid);
	x->domain = g_strdup(strchr(x->own_bare, '@') + 1);
	x->event_fd = efd;
	pthread_mutex_init(&x->lock, NULL);
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC); /* the clock of g_get_monotonic_time() */
	pthread_cond_init(&x->event_cond, &attr);
	pthread_cond_init(&x->command_cond, &attr);
	pthread_condattr_destroy(&attr);
	g_queue_init(&x->events);
	g_queue_init(&x->commands);
	g_queue_init(&x->inbox);
	g_queue_init(&x->chat_waiting);
	g_queue_init(&x->chat_inflight);
	g_queue_init(&x->pings);
	x->rooms = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, room_free);
	x->inflight = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify)out_msg_free);
	for (char **r = x->cfg.rooms; *r != NULL; r++) {
		char *norm = tr_xmpp_jid_normalize(*r);
		room_get(x, norm, true);
		g_free(norm);
	}
	/* ids unique across restarts, so a late echo or bounce of an earlier
	 * process cannot be taken for ours */
	g_snprintf(x->id_prefix, sizeof(x->id_prefix), "tr%08x%04x", g_random_int(), g_random_int() & 0xffff);
	tr_backoff_policy policy = backoff_policy(&x->cfg.limits);
	tr_backoff_init(&x->reconnect, &policy, backoff_seed(x->cfg.jid));
	tr_backoff_init(&x->reconnect_slow, &tr_backoff_slow, backoff_seed(x->cfg.jid));
	x->refs = 2;
	x->cstate = CONN_DOWN;
	GError *thread_error = NULL;
	x->thread = g_thread_try_new("tr-xmpp", thread_main, x, &thread_error);
	if (x->thread == NULL) {
		g_set_error(error, TR_XMPP_ERROR, TR_XMPP_ERROR_CONFIG, "xmpp %s: cannot start a thread: %s",
		            x->cfg.jid, thread_error->message);
		g_error_free(thread_error);
		g_hash_table_destroy(x->rooms);
		g_hash_table_destroy(x->inflight);
		object_free(x);
		return NULL;
	}
	return x;
}

bool tr_xmpp_close(tr_xmpp *x, int timeout_ms)
{
	if (timeout_ms <= 0)
		timeout_ms = DEFAULT_STOP_MS;
	gint64 end = now_us() + (gint64)timeout_ms * G_TIME_SPAN_MILLISECOND;
	pthread_mutex_lock(&x->lock);
	x->closing = true;
	pthread_cond_broadcast(&x->command_cond);
	while (!x->finished) {
		if (!cond_wait_until(&x->event_cond, &x->lock, end))
			break;
	}
	bool finished = x->finished;
	pthread_mutex_unlock(&x->lock);
	if (finished && x->thread != NULL) {
		g_thread_join(x->thread);
		x->thread = NULL;
	}
	return finished;
}

void tr_xmpp_stop(tr_xmpp **xp)
{
	tr_xmpp *x = *xp;
	if (x == NULL)
		return;
	*xp = NULL;
	if (!tr_xmpp_close(x, 0) && x->thread != NULL) {
		tr_log_warning("xmpp %s: the connection thread is blocked in a library call; "
		               "it will clean up when the call returns", x->cfg.jid);
		g_thread_unref(x->thread);
		x->thread = NULL;
	}
	pthread_mutex_lock(&x->lock);
	int refs = --x->refs;
	pthread_mutex_unlock(&x->lock);
	if (refs == 0)
		object_free(x);
}

static bool id_valid(const char *id)
{
	if (id == NULL)
		return false;
	size_t len = strlen(id);
	if (len == 0 || len > ID_MAX)
		return false;
	for (const char *p = id; *p != '\0'; p++) {
		if (*p < 0x20 || *p > 0x7e)
			return false;
	}
	return true;
}

static bool enqueue(tr_xmpp *x, bool is_room, const char *to, const char *text, const char *id, GError **error)
{
	if (!id_valid(id)) {
		g_set_error(error, TR_XMPP_ERROR, TR_XMPP_ERROR_INVALID, "xmpp: message id must be 1-%d printable ASCII bytes",
		            ID_MAX);
		return false;
	}
	if (!tr_xmpp_jid_valid(to, true, !is_room)) {
		g_set_error(error, TR_XMPP_ERROR, TR_XMPP_ERROR_INVALID, "xmpp: '%s' is not a %s", to != NULL ? to : "(null)",
		            is_room ? "room JID (room@service)" : "JID (user@domain[/resource])");
		return false;
	}
	char *body = text != NULL ? tr_xmpp_body_clean(text) : g_strdup("");
	size_t len = strlen(body);
	if (len == 0 || len > (size_t)x->cfg.limits.body_max) {
		g_set_error(error, TR_XMPP_ERROR, TR_XMPP_ERROR_INVALID, "xmpp: message %s for %s is %s", id, to,
		            len == 0 ? "empty" : "longer than body_max");
		g_free(body);
		return false;
	}
	out_msg *m = g_new0(out_msg, 1);
	m->is_room = is_room;
	m->to = tr_xmpp_jid_normalize(to);
	m->body = body;
	m->caller_id = g_strdup(id);
	m->enqueued = now_us();
	pthread_mutex_lock(&x->lock);
	if (x->closing || x->finished) {
		pthread_mutex_unlock(&x->lock);
		g_set_error(error, TR_XMPP_ERROR, TR_XMPP_ERROR_STOPPED, "xmpp %s: the connection is closed", x->cfg.jid);
		out_msg_free(m);
		return false;
	}
	if (x->outstanding >= (unsigned)x->cfg.limits.queue_max) {
		pthread_mutex_unlock(&x->lock);
		g_set_error(error, TR_XMPP_ERROR, TR_XMPP_ERROR_FULL, "xmpp %s: %u messages outstanding (queue_max)",
		            x->cfg.jid, x->outstanding);
		out_msg_free(m);
		return false;
	}
	m->serial = ++x->msg_serial;
	g_snprintf(m->stanza_id, sizeof(m->stanza_id), "%s-m%" G_GUINT64_FORMAT, x->id_prefix, m->serial);
	x->outstanding++;
	g_queue_push_tail(&x->commands, m);
	pthread_cond_broadcast(&x->command_cond);
	pthread_mutex_unlock(&x->lock);
	return true;
}

bool tr_xmpp_post_room(tr_xmpp *x, const char *room_jid, const char *text, const char *id, GError **error)
{
	return enqueue(x, true, room_jid, text, id, error);
}

bool tr_xmpp_send_chat(tr_xmpp *x, const char *jid, const char *text, const char *id, GError **error)
{
	return enqueue(x, false, jid, text, id, error);
}

bool tr_xmpp_next_event(tr_xmpp *x, int timeout_ms, tr_xmpp_event **event)
{
	*event = NULL;
	gint64 end = now_us() + (gint64)MAX(timeout_ms, 0) * G_TIME_SPAN_MILLISECOND;
	pthread_mutex_lock(&x->lock);
	while (g_queue_is_empty(&x->events) && !x->finished && timeout_ms != 0) {
		if (timeout_ms < 0)
			pthread_cond_wait(&x->event_cond, &x->lock);
		else if (!cond_wait_until(&x->event_cond, &x->lock, end))
			break;
	}
	tr_xmpp_event *ev = g_queue_pop_head(&x->events);
	if (ev != NULL && g_queue_is_empty(&x->events))
		event_fd_drain(x);
	pthread_mutex_unlock(&x->lock);
	*event = ev;
	return ev != NULL;
}

int tr_xmpp_event_fd(const tr_xmpp *x)
{
	return x->event_fd;
}

void tr_xmpp_get_stats(tr_xmpp *x, tr_xmpp_stats *stats)
{
	pthread_mutex_lock(&x->lock);
	*stats = x->stats;
	stats->outstanding = x->outstanding;
	pthread_mutex_unlock(&x->lock);
}
