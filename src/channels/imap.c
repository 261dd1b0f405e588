/* imap.c — IMAP session layer of the support-mailbox channel; see imap.h */
#include "channels/imap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libetpan/libetpan.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#define KiB 1024
#define MiB (1024 * 1024)

const tr_conftab tr_imap_limits_table[] = {
	{ "port", 0, 0, 65535, TR_UNIT_COUNT, offsetof(tr_imap_limits, port),
	  "server port; 0 = 993 for security = imaps, 143 otherwise" },
	{ "timeout", 60, 5, 3600, TR_UNIT_SECONDS, offsetof(tr_imap_limits, timeout),
	  "connect timeout and longest wait for any reply of the server" },
	{ "poll_interval", 60, 1, 25 * 60, TR_UNIT_SECONDS, offsetof(tr_imap_limits, poll_interval),
	  "NOOP polling interval when the server has no IDLE (or it is ignored)" },
	{ "idle_restart", 25 * 60, 10, 28 * 60, TR_UNIT_SECONDS, offsetof(tr_imap_limits, idle_restart),
	  "an IDLE is ended and re-issued after this long (servers drop idle clients after 30 min)" },
	{ "message_bytes", 25 * MiB, 1 * KiB, 1024 * MiB, TR_UNIT_BYTES, offsetof(tr_imap_limits, message_bytes),
	  "larger messages are reported as too big and never downloaded" },
	{ NULL, 0, 0, 0, TR_UNIT_COUNT, 0, NULL },
};

#define PASSWORD_FILE_MAX 4096
#define SERVER_TEXT_MAX 200
#define FOLDER_NAME_MAX 255
#define KEYWORD_MAX 64

/* ==== configuration ======================================================= */

void tr_imap_config_init(tr_imap_config *c)
{
	memset(c, 0, sizeof(*c));
	c->name = g_strdup("imap");
	c->security = TR_IMAP_SECURITY_IMPLICIT;
	c->verify = true;
	c->folder = g_strdup("INBOX");
	c->mark = TR_IMAP_MARK_KEYWORD;
	c->keyword = g_strdup("$Triaged");
	c->quarantine = g_strdup("Quarantine");
	tr_conftab_defaults(tr_imap_limits_table, &c->limits);
}

void tr_imap_config_clear(tr_imap_config *c)
{
	g_free(c->name);
	g_free(c->host);
	g_free(c->tls_name);
	g_free(c->ca_file);
	g_free(c->user);
	if (c->password != NULL)
		explicit_bzero(c->password, strlen(c->password));
	g_free(c->password);
	g_free(c->folder);
	g_free(c->move_to);
	g_free(c->keyword);
	g_free(c->quarantine);
	memset(c, 0, sizeof(*c));
}

void tr_imap_config_copy(tr_imap_config *dst, const tr_imap_config *src)
{
	*dst = *src;
	dst->name = g_strdup(src->name);
	dst->host = g_strdup(src->host);
	dst->tls_name = g_strdup(src->tls_name);
	dst->ca_file = g_strdup(src->ca_file);
	dst->user = g_strdup(src->user);
	dst->password = g_strdup(src->password);
	dst->folder = g_strdup(src->folder);
	dst->move_to = g_strdup(src->move_to);
	dst->keyword = g_strdup(src->keyword);
	dst->quarantine = g_strdup(src->quarantine);
}

bool tr_imap_folder_name_valid(const char *name, const char **why_r)
{
	const char *why = NULL;
	size_t len = name != NULL ? strlen(name) : 0;
	if (len == 0)
		why = "empty";
	else if (len > FOLDER_NAME_MAX)
		why = "longer than 255 bytes";
	else if (name[0] == '/' || name[len - 1] == '/')
		why = "starts or ends with '/'";
	else {
		for (size_t i = 0; i < len && why == NULL; i++) {
			unsigned char ch = (unsigned char)name[i];
			if (ch < 0x20 || ch >= 0x7f)
				why = "not printable ASCII (write other characters in modified UTF-7)";
			else if (ch == '*' || ch == '%')
				why = "contains a wildcard ('*' or '%')";
			else if (ch == '"' || ch == '\\')
				why = "contains '\"' or '\\'";
		}
	}
	if (why_r != NULL)
		*why_r = why;
	return why == NULL;
}

bool tr_imap_keyword_valid(const char *keyword)
{
	size_t len = keyword != NULL ? strlen(keyword) : 0;
	if (len == 0 || len > KEYWORD_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)keyword[i];
		/* RFC 3501 atom: no controls, space, SP ( ) { % * " \ ] and no 8-bit */
		if (ch <= 0x20 || ch >= 0x7f || strchr("(){%*\"\\]", ch) != NULL)
			return false;
	}
	return true;
}

bool tr_imap_parse_mark(const char *text, unsigned *mark_r, char **move_to_r, char **error_r)
{
	unsigned mark = 0;
	char *move_to = NULL;
	char *error = NULL;
	char **items = g_strsplit(text != NULL ? text : "", ",", -1);
	for (char **item = items; *item != NULL && error == NULL; item++) {
		char *word = g_strstrip(*item);
		unsigned bit;
		if (g_ascii_strcasecmp(word, "keyword") == 0)
			bit = TR_IMAP_MARK_KEYWORD;
		else if (g_ascii_strcasecmp(word, "seen") == 0)
			bit = TR_IMAP_MARK_SEEN;
		else if (g_ascii_strncasecmp(word, "move:", 5) == 0) {
			bit = TR_IMAP_MARK_MOVE;
			const char *folder = word + 5;
			while (*folder == ' ' || *folder == '\t')
				folder++;
			const char *why;
			if (!tr_imap_folder_name_valid(folder, &why)) {
				error = g_strdup_printf("move folder '%s': %s", folder, why);
				break;
			}
			if ((mark & TR_IMAP_MARK_MOVE) == 0)
				move_to = g_strdup(folder);
		} else if (*word == '\0') {
			error = g_strdup("empty item (expected keyword, seen or move:FOLDER)");
			break;
		} else {
			error = g_strdup_printf("unknown item '%s' (expected keyword, seen or move:FOLDER)", word);
			break;
		}
		if (mark & bit) {
			error = g_strdup_printf("'%s' given twice", word);
			break;
		}
		mark |= bit;
	}
	g_strfreev(items);
	if (error == NULL && mark == 0)
		error = g_strdup("empty (expected keyword, seen or move:FOLDER)");
	if (error != NULL) {
		g_free(move_to);
		if (error_r != NULL)
			*error_r = error;
		else
			g_free(error);
		return false;
	}
	*mark_r = mark;
	if (move_to_r != NULL)
		*move_to_r = move_to;
	else
		g_free(move_to);
	return true;
}

/* Read the first line of a secret file: a regular file, at most 4 KiB.
 * O_NONBLOCK so a FIFO named by mistake cannot hang the start-up. */
static char *read_password_file(const char *path, bool *world_readable_r, char **error_r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		*error_r = g_strdup_printf("cannot open %s: %s", path, g_strerror(errno));
		return NULL;
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		*error_r = g_strdup_printf("%s is not a regular file", path);
		close(fd);
		return NULL;
	}
	if (st.st_size > PASSWORD_FILE_MAX) {
		*error_r = g_strdup_printf("%s is larger than %d bytes", path, PASSWORD_FILE_MAX);
		close(fd);
		return NULL;
	}
	*world_readable_r = (st.st_mode & S_IROTH) != 0;
	char buf[PASSWORD_FILE_MAX + 1];
	size_t len = 0;
	for (;;) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*error_r = g_strdup_printf("cannot read %s: %s", path, g_strerror(errno));
			close(fd);
			explicit_bzero(buf, sizeof(buf));
			return NULL;
		}
		if (n == 0 || (len += (size_t)n) >= sizeof(buf) - 1)
			break;
	}
	close(fd);
	size_t line = 0;
	while (line < len && buf[line] != '\r' && buf[line] != '\n')
		line++;
	char *password = NULL;
	if (memchr(buf, '\0', line) != NULL)
		*error_r = g_strdup_printf("%s contains a NUL byte", path);
	else if (line == 0)
		*error_r = g_strdup_printf("%s: the first line is empty", path);
	else
		password = g_strndup(buf, line);
	explicit_bzero(buf, sizeof(buf));
	return password;
}

static bool host_name_valid(const char *host)
{
	size_t len = host != NULL ? strlen(host) : 0;
	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)host[i];
		if (!g_ascii_isalnum(ch) && ch != '.' && ch != '-' && ch != '_' && ch != ':')
			return false;
	}
	return true;
}

static const char *const config_keys[] = {
	"host", "security", "allow_plain", "tls_name", "ca_file", "verify", "user", "password",
	"password_file", "folder", "mark", "keyword", "quarantine", "ignore_capabilities", NULL,
};

static void load_limits(tr_imap_config *c, const tr_conf *conf, const char *group, tr_diag *diag)
{
	for (const tr_conftab *row = tr_imap_limits_table; row->name != NULL; row++) {
		char *text = tr_conf_string(conf, group, row->name, NULL);
		if (text == NULL)
			continue;
		int64_t v;
		if (!tr_conf_parse_int(text, row->unit, &v))
			tr_conf_error(conf, diag, group, row->name, "'%s' is not a valid %s", text,
			              row->unit == TR_UNIT_BYTES ? "size (k, M, G suffixes)" :
			              row->unit == TR_UNIT_SECONDS ? "duration (s, m, h suffixes)" : "number");
		else if (v < row->min || v > row->max)
			tr_conf_error(conf, diag, group, row->name,
			              "%" G_GINT64_FORMAT " is out of range %" G_GINT64_FORMAT "..%" G_GINT64_FORMAT,
			              (gint64)v, (gint64)row->min, (gint64)row->max);
		else
			*(int64_t *)((char *)&c->limits + row->offset) = v;
		g_free(text);
	}
}

static void check_unknown_keys(const tr_conf *conf, const char *group, tr_diag *diag)
{
	GPtrArray *known = g_ptr_array_new();
	for (const char *const *k = config_keys; *k != NULL; k++)
		g_ptr_array_add(known, (gpointer)*k);
	for (const tr_conftab *row = tr_imap_limits_table; row->name != NULL; row++)
		g_ptr_array_add(known, (gpointer)row->name);
	g_ptr_array_add(known, NULL);
	tr_conf_check_keys(conf, diag, group, (const char *const *)known->pdata);
	g_ptr_array_free(known, TRUE);
}

static void replace(char **field, char *value)
{
	g_free(*field);
	*field = value;
}

static void load_folder(const tr_conf *conf, tr_diag *diag, const char *group, const char *key,
                        char **field)
{
	char *value = tr_conf_string(conf, group, key, NULL);
	if (value == NULL)
		return;
	const char *why;
	if (!tr_imap_folder_name_valid(value, &why)) {
		tr_conf_error(conf, diag, group, key, "'%s': %s", value, why);
		g_free(value);
		return;
	}
	replace(field, value);
}

static void load_ignore_caps(tr_imap_config *c, const tr_conf *conf, const char *group, tr_diag *diag)
{
	char *value = tr_conf_string(conf, group, "ignore_capabilities", NULL);
	if (value == NULL)
		return;
	char **items = g_strsplit_set(value, ", \t", -1);
	for (char **item = items; *item != NULL; item++) {
		if (**item == '\0')
			continue;
		if (g_ascii_strcasecmp(*item, "IDLE") == 0)
			c->ignore_caps |= TR_IMAP_CAP_IDLE;
		else if (g_ascii_strcasecmp(*item, "MOVE") == 0)
			c->ignore_caps |= TR_IMAP_CAP_MOVE;
		else if (g_ascii_strcasecmp(*item, "UIDPLUS") == 0)
			c->ignore_caps |= TR_IMAP_CAP_UIDPLUS;
		else
			tr_conf_error(conf, diag, group, "ignore_capabilities",
			              "'%s' is not IDLE, MOVE or UIDPLUS", *item);
	}
	g_strfreev(items);
	g_free(value);
}

static void load_secret(tr_imap_config *c, const tr_conf *conf, const char *group, tr_diag *diag)
{
	char *password = tr_conf_string(conf, group, "password", NULL);
	char *file = tr_conf_file_path(conf, group, "password_file", NULL);
	if (password != NULL && file != NULL) {
		tr_conf_error(conf, diag, group, "password_file", "give either password or password_file, not both");
	} else if (file != NULL) {
		char *error = NULL;
		bool world_readable = false;
		char *secret = read_password_file(file, &world_readable, &error);
		if (secret == NULL) {
			tr_conf_error(conf, diag, group, "password_file", "%s", error);
			g_free(error);
		} else {
			replace(&c->password, secret);
			if (world_readable)
				tr_diag_warning(diag, tr_conf_path(conf), tr_conf_line(conf, group, "password_file"),
				                "[%s] password_file: %s is readable by every user", group, file);
		}
	} else if (password != NULL && *password != '\0') {
		replace(&c->password, g_strdup(password));
	} else {
		tr_conf_error(conf, diag, group, NULL, "password or password_file is required");
	}
	if (password != NULL)
		explicit_bzero(password, strlen(password));
	g_free(password);
	g_free(file);
}

bool tr_imap_config_load(tr_imap_config *c, const tr_conf *conf, const char *group, tr_diag *diag)
{
	unsigned errors_before = tr_diag_error_count(diag);
	tr_imap_config_init(c);
	if (strncmp(group, "imap ", 5) == 0 && group[5] != '\0') {
		const char *name = group + 5;
		if (strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") != strlen(name))
			tr_conf_error(conf, diag, group, NULL, "account name '%s': letters, digits, '_', '.', '-' only", name);
		replace(&c->name, g_strdup(name));
	}
	if (!g_key_file_has_group(tr_conf_keyfile(conf), group)) {
		tr_diag_error(diag, tr_conf_path(conf), 0, "no [%s] group", group);
		return false;
	}
	check_unknown_keys(conf, group, diag);
	load_limits(c, conf, group, diag);

	char *host = tr_conf_string(conf, group, "host", NULL);
	if (host == NULL || *host == '\0')
		tr_conf_error(conf, diag, group, NULL, "host is required");
	else if (!host_name_valid(host))
		tr_conf_error(conf, diag, group, "host", "'%s' is not a host name or address", host);
	replace(&c->host, host);

	char *tls_name = tr_conf_string(conf, group, "tls_name", NULL);
	if (tls_name != NULL && !host_name_valid(tls_name))
		tr_conf_error(conf, diag, group, "tls_name", "'%s' is not a host name or address", tls_name);
	replace(&c->tls_name, tls_name);

	char *security = tr_conf_string(conf, group, "security", NULL);
	if (security != NULL) {
		if (g_ascii_strcasecmp(security, "imaps") == 0 || g_ascii_strcasecmp(security, "tls") == 0)
			c->security = TR_IMAP_SECURITY_IMPLICIT;
		else if (g_ascii_strcasecmp(security, "starttls") == 0)
			c->security = TR_IMAP_SECURITY_STARTTLS;
		else if (g_ascii_strcasecmp(security, "plain") == 0)
			c->security = TR_IMAP_SECURITY_PLAIN;
		else
			tr_conf_error(conf, diag, group, "security", "'%s' is not imaps, starttls or plain", security);
	}
	g_free(security);
	c->allow_plain = tr_conf_bool(conf, diag, group, "allow_plain", false);
	if (c->security == TR_IMAP_SECURITY_PLAIN && !c->allow_plain)
		tr_conf_error(conf, diag, group, "security",
		              "plain sends the password unencrypted; set allow_plain = yes to accept that");

	c->verify = tr_conf_bool(conf, diag, group, "verify", true);
	if (!c->verify && c->security != TR_IMAP_SECURITY_PLAIN)
		tr_diag_warning(diag, tr_conf_path(conf), tr_conf_line(conf, group, "verify"),
		                "[%s] verify = no: any certificate is accepted, the password is open to "
		                "whoever sits on the path", group);
	char *ca_file = tr_conf_file_path(conf, group, "ca_file", NULL);
	if (ca_file != NULL && access(ca_file, R_OK) != 0)
		tr_conf_error(conf, diag, group, "ca_file", "cannot read %s: %s", ca_file, g_strerror(errno));
	replace(&c->ca_file, ca_file);

	char *user = tr_conf_string(conf, group, "user", NULL);
	if (user == NULL || *user == '\0')
		tr_conf_error(conf, diag, group, NULL, "user is required");
	replace(&c->user, user);
	load_secret(c, conf, group, diag);

	load_folder(conf, diag, group, "folder", &c->folder);
	load_folder(conf, diag, group, "quarantine", &c->quarantine);
	char *keyword = tr_conf_string(conf, group, "keyword", NULL);
	if (keyword != NULL) {
		if (!tr_imap_keyword_valid(keyword) || keyword[0] == '\\')
			tr_conf_error(conf, diag, group, "keyword", "'%s' is not a valid IMAP keyword", keyword);
		else
			replace(&c->keyword, g_strdup(keyword));
		g_free(keyword);
	}
	char *mark = tr_conf_string(conf, group, "mark", NULL);
	if (mark != NULL) {
		char *error = NULL, *move_to = NULL;
		unsigned bits;
		if (tr_imap_parse_mark(mark, &bits, &move_to, &error)) {
			c->mark = bits;
			replace(&c->move_to, move_to);
		} else {
			tr_conf_error(conf, diag, group, "mark", "'%s': %s", mark, error);
			g_free(error);
		}
		g_free(mark);
	}
	if (c->move_to != NULL && strcmp(c->move_to, c->folder) == 0)
		tr_conf_error(conf, diag, group, "mark", "move folder is the watched folder '%s'", c->folder);
	if (strcmp(c->quarantine, c->folder) == 0)
		tr_conf_error(conf, diag, group, "quarantine", "is the watched folder '%s'", c->folder);
	if (c->mark == TR_IMAP_MARK_SEEN)
		tr_diag_warning(diag, tr_conf_path(conf), tr_conf_line(conf, group, "mark"),
		                "[%s] mark = seen alone: mail a person has read cannot be told from triaged "
		                "mail; add 'keyword' so catch-up finds it", group);
	load_ignore_caps(c, conf, group, diag);
	return tr_diag_error_count(diag) == errors_before;
}

static void config_free(gpointer p)
{
	tr_imap_config *c = p;
	tr_imap_config_clear(c);
	g_free(c);
}

GPtrArray *tr_imap_configs_load(const tr_conf *conf, tr_diag *diag)
{
	GPtrArray *out = g_ptr_array_new_with_free_func(config_free);
	gsize n = 0;
	char **groups = g_key_file_get_groups(tr_conf_keyfile(conf), &n);
	for (gsize i = 0; i < n; i++) {
		if (strncmp(groups[i], "imap ", 5) != 0)
			continue;
		tr_imap_config *c = g_new0(tr_imap_config, 1);
		if (tr_imap_config_load(c, conf, groups[i], diag))
			g_ptr_array_add(out, c);
		else
			config_free(c);
	}
	g_strfreev(groups);
	return out;
}

/* ==== errors ================================================================ */

G_DEFINE_QUARK(tr-imap-error-quark, tr_imap_error)

tr_imap_error_class tr_imap_error_class_of(const GError *error)
{
	if (error == NULL || error->domain != TR_IMAP_ERROR)
		return TR_IMAP_CLASS_NONE;
	switch ((tr_imap_error_code)error->code) {
	case TR_IMAP_ERROR_NETWORK:
		return TR_IMAP_CLASS_NETWORK;
	case TR_IMAP_ERROR_CERTIFICATE:
	case TR_IMAP_ERROR_AUTH:
	case TR_IMAP_ERROR_CONFIG:
	case TR_IMAP_ERROR_MAILBOX:
		return TR_IMAP_CLASS_SLOW;
	case TR_IMAP_ERROR_MESSAGE:
	case TR_IMAP_ERROR_GONE:
	case TR_IMAP_ERROR_TOO_BIG:
		return TR_IMAP_CLASS_MESSAGE;
	case TR_IMAP_ERROR_UIDVALIDITY:
		return TR_IMAP_CLASS_RESYNC;
	}
	return TR_IMAP_CLASS_NONE;
}

const char *tr_imap_error_class_name(tr_imap_error_class error_class)
{
	switch (error_class) {
	case TR_IMAP_CLASS_NONE: return "none";
	case TR_IMAP_CLASS_NETWORK: return "network";
	case TR_IMAP_CLASS_SLOW: return "slow";
	case TR_IMAP_CLASS_MESSAGE: return "message";
	case TR_IMAP_CLASS_RESYNC: return "resync";
	}
	return "unknown";
}

/* ==== session ================================================================ */

/*
 * libetpan keeps the message count of the selected folder in
 * sel_exists: an EXISTS reply sets it, each EXPUNGE decrements it.  To
 * learn whether an EXISTS arrived during IDLE or NOOP (new mail), the
 * count is parked on a sentinel first: afterwards a value within
 * SENTINEL_RANGE below the sentinel means "only expunges", anything else
 * is a real EXISTS.
 */
#define EXISTS_SENTINEL 0xF0000000u
#define EXISTS_SENTINEL_RANGE 0x01000000u

struct tr_imap {
	tr_imap_config config;
	char *peer;                /* "host:port" for messages */
	const char *verify_name;   /* tls_name or host (points into config) */
	uint16_t port;
	mailimap *imap;            /* NULL when disconnected */
	bool connected;            /* logged in, folder selected */
	bool selecting;            /* messages name the folder from SELECT on */
	tr_imap_mailbox mailbox;
	uint32_t exists_at_search; /* sel_exists at the last search */
	uint32_t exists_parked;    /* sel_exists while parked on the sentinel */
	GHashTable *folders_seen;  /* folders known to exist on this connection */
	tr_imap_trace_fn *trace_fn;
	void *trace_context;

	GMutex lock;               /* guards the fields below (tr_imap_interrupt) */
	GCond wakeup;
	bool interrupt_pending;
	bool idling;               /* an idle is set up on imap->imap_stream */
};

tr_imap *tr_imap_new(const tr_imap_config *config)
{
	tr_imap *s = g_new0(tr_imap, 1);
	tr_imap_config_copy(&s->config, config);
	if (s->config.folder == NULL)
		s->config.folder = g_strdup("INBOX");
	if (s->config.keyword == NULL)
		s->config.keyword = g_strdup("$Triaged");
	if (s->config.quarantine == NULL)
		s->config.quarantine = g_strdup("Quarantine");
	int64_t port = s->config.limits.port;
	if (port <= 0 || port > 65535)
		port = s->config.security == TR_IMAP_SECURITY_IMPLICIT ? 993 : 143;
	s->port = (uint16_t)port;
	const char *host = s->config.host != NULL ? s->config.host : "(no host)";
	s->peer = strchr(host, ':') != NULL ? g_strdup_printf("[%s]:%u", host, s->port)
	                                    : g_strdup_printf("%s:%u", host, s->port);
	s->verify_name = s->config.tls_name != NULL ? s->config.tls_name : s->config.host;
	s->folders_seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	g_mutex_init(&s->lock);
	g_cond_init(&s->wakeup);
	return s;
}

void tr_imap_free(tr_imap **sp)
{
	tr_imap *s = *sp;
	if (s == NULL)
		return;
	*sp = NULL;
	tr_imap_disconnect(s);
	g_hash_table_destroy(s->folders_seen);
	g_mutex_clear(&s->lock);
	g_cond_clear(&s->wakeup);
	g_free(s->peer);
	tr_imap_config_clear(&s->config);
	g_free(s);
}

bool tr_imap_is_connected(const tr_imap *s)
{
	return s->connected;
}

const char *tr_imap_peer(const tr_imap *s)
{
	return s->peer;
}

const tr_imap_mailbox *tr_imap_mailbox_info(const tr_imap *s)
{
	return &s->mailbox;
}

void tr_imap_set_trace(tr_imap *s, tr_imap_trace_fn *fn, void *context)
{
	s->trace_fn = fn;
	s->trace_context = context;
}

/* ---- errors ---- */

static void fail(tr_imap *s, GError **error, tr_imap_error_code code, const char *fmt, ...)
	G_GNUC_PRINTF(4, 5);

static void fail(tr_imap *s, GError **error, tr_imap_error_code code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *text = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	if (s->connected || s->selecting)
		g_set_error(error, TR_IMAP_ERROR, (int)code, "imap %s mailbox %s: %s", s->peer,
		            s->config.folder, text);
	else
		g_set_error(error, TR_IMAP_ERROR, (int)code, "imap %s: %s", s->peer, text);
	g_free(text);
}

/* The human-readable text of the server's last reply: printable ASCII,
 * at most SERVER_TEXT_MAX bytes (a hostile server does not get to write
 * control characters into our logs).  g_free. */
static char *server_text(const tr_imap *s)
{
	const char *text = s->imap != NULL ? s->imap->imap_response : NULL;
	if (text == NULL || *text == '\0')
		return g_strdup("(no text)");
	GString *out = g_string_new(NULL);
	for (const char *p = text; *p != '\0' && out->len < SERVER_TEXT_MAX; p++)
		g_string_append_c(out, (*p >= 0x20 && *p < 0x7f) ? *p : '?');
	if (strlen(text) > SERVER_TEXT_MAX)
		g_string_append(out, "...");
	return g_string_free(out, FALSE);
}

/* libetpan codes that mean the connection itself is gone or unusable, as
 * opposed to the server answering NO or BAD to one command. */
static bool transport_failure(int r)
{
	switch (r) {
	case MAILIMAP_ERROR_BAD_STATE:
	case MAILIMAP_ERROR_STREAM:
	case MAILIMAP_ERROR_PARSE:
	case MAILIMAP_ERROR_CONNECTION_REFUSED:
	case MAILIMAP_ERROR_MEMORY:
	case MAILIMAP_ERROR_FATAL:
	case MAILIMAP_ERROR_PROTOCOL:
	case MAILIMAP_ERROR_DONT_ACCEPT_CONNECTION:
	case MAILIMAP_ERROR_SSL:
		return true;
	default:
		return false;
	}
}

static const char *transport_reason(int r)
{
	switch (r) {
	case MAILIMAP_ERROR_STREAM: return "connection closed or timed out";
	case MAILIMAP_ERROR_PARSE: return "unparsable reply";
	case MAILIMAP_ERROR_FATAL: return "server ended the session (BYE)";
	case MAILIMAP_ERROR_BAD_STATE: return "session not in the right state";
	case MAILIMAP_ERROR_MEMORY: return "out of memory in libetpan";
	default: return "protocol failure";
	}
}

/* Close the connection without a word to the server (it may be dead, or
 * not trusted). */
static void drop_connection(tr_imap *s)
{
	if (s->imap != NULL) {
		if (s->imap->imap_stream != NULL) {
			mailstream_close(s->imap->imap_stream);
			s->imap->imap_stream = NULL;
		}
		mailimap_free(s->imap);
		s->imap = NULL;
	}
	s->connected = false;
	s->selecting = false;
	g_hash_table_remove_all(s->folders_seen);
}

/* A libetpan command failed: a transport failure drops the connection and
 * is a NETWORK error; anything else is the server refusing, with code. */
static void command_failed(tr_imap *s, int r, tr_imap_error_code code, GError **error,
                           const char *what)
{
	if (transport_failure(r)) {
		fail(s, error, TR_IMAP_ERROR_NETWORK, "%s: %s", what, transport_reason(r));
		drop_connection(s);
		return;
	}
	char *text = server_text(s);
	fail(s, error, code, "%s refused: %s", what, text);
	g_free(text);
}

static bool require_connection(tr_imap *s, GError **error)
{
	if (s->connected && s->imap != NULL && s->imap->imap_stream != NULL)
		return true;
	fail(s, error, TR_IMAP_ERROR_NETWORK, "not connected");
	return false;
}

/* A server may announce a new UIDVALIDITY at any time (untagged OK): every
 * UID the caller holds is void from then on. */
static bool check_uidvalidity(tr_imap *s, GError **error)
{
	struct mailimap_selection_info *sel = s->imap != NULL ? s->imap->imap_selection_info : NULL;
	if (sel == NULL || sel->sel_uidvalidity == 0 || sel->sel_uidvalidity == s->mailbox.uidvalidity)
		return true;
	uint32_t old = s->mailbox.uidvalidity;
	s->mailbox.uidvalidity = sel->sel_uidvalidity;
	fail(s, error, TR_IMAP_ERROR_UIDVALIDITY, "UIDVALIDITY changed from %u to %u", old,
	     sel->sel_uidvalidity);
	return false;
}

/* ---- sentinel on the message count ---- */

static void exists_park(tr_imap *s)
{
	struct mailimap_selection_info *sel = s->imap->imap_selection_info;
	if (sel == NULL)
		return;
	s->exists_parked = sel->sel_exists;
	sel->sel_exists = EXISTS_SENTINEL;
}

/* Restore the count; true when an EXISTS arrived meanwhile. */
static bool exists_unpark(tr_imap *s)
{
	if (s->imap == NULL || s->imap->imap_selection_info == NULL)
		return false;
	struct mailimap_selection_info *sel = s->imap->imap_selection_info;
	uint32_t now = sel->sel_exists;
	if (now <= EXISTS_SENTINEL && now > EXISTS_SENTINEL - EXISTS_SENTINEL_RANGE) {
		uint32_t expunged = EXISTS_SENTINEL - now;
		sel->sel_exists = s->exists_parked >= expunged ? s->exists_parked - expunged : 0;
		s->mailbox.exists = sel->sel_exists;
		return false;
	}
	s->mailbox.exists = now;
	return true;
}

/* ---- TCP ---- */

/* Connect to host:port within timeout seconds, trying every address.
 * Returns a blocking socket, or -1 and a reason (g_free). */
static int tcp_connect(const char *host, uint16_t port, int64_t timeout, char **why_r)
{
	struct addrinfo hints, *res = NULL;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	char service[8];
	snprintf(service, sizeof(service), "%u", port);
	int gai = getaddrinfo(host, service, &hints, &res);
	if (gai != 0) {
		*why_r = g_strdup_printf("cannot resolve %s: %s", host, gai_strerror(gai));
		return -1;
	}
	gint64 deadline = g_get_monotonic_time() + timeout * G_USEC_PER_SEC;
	char *why = NULL;
	int fd = -1;
	for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
		int sock = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
		if (sock < 0) {
			g_free(why);
			why = g_strdup_printf("socket: %s", g_strerror(errno));
			continue;
		}
		int err = 0;
		if (connect(sock, ai->ai_addr, ai->ai_addrlen) != 0) {
			err = errno;
			while (err == EINPROGRESS || err == EINTR) {
				gint64 left_ms = (deadline - g_get_monotonic_time()) / 1000;
				if (left_ms <= 0) {
					err = ETIMEDOUT;
					break;
				}
				struct pollfd pfd = { .fd = sock, .events = POLLOUT };
				int n = poll(&pfd, 1, (int)MIN(left_ms, 60 * 60 * 1000));
				if (n < 0 && errno == EINTR)
					continue;
				if (n == 0) {
					err = ETIMEDOUT;
					break;
				}
				socklen_t len = sizeof(err);
				if (n < 0 || getsockopt(sock, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
					err = errno;
				break;
			}
		}
		if (err == 0) {
			/* A server that vanishes without a FIN (NAT timeout, power
			 * loss) would otherwise keep an IDLE waiting for up to
			 * idle_restart: keepalives find it within about two minutes. */
			int on = 1, idle = 60, interval = 15, count = 4;
			setsockopt(sock, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
			setsockopt(sock, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
			setsockopt(sock, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof(interval));
			setsockopt(sock, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof(count));
			int flags = fcntl(sock, F_GETFL);
			if (flags >= 0 && fcntl(sock, F_SETFL, flags & ~O_NONBLOCK) == 0) {
				fd = sock;
				break;
			}
			err = errno;
		}
		close(sock);
		g_free(why);
		why = g_strdup(g_strerror(err));
	}
	freeaddrinfo(res);
	if (fd < 0)
		*why_r = why != NULL ? why : g_strdup("no address");
	else
		g_free(why);
	return fd;
}

/* ---- certificate verification (OpenSSL) ---- */

static bool is_ip_address(const char *name)
{
	unsigned char buf[sizeof(struct in6_addr)];
	return inet_pton(AF_INET, name, buf) == 1 || inet_pton(AF_INET6, name, buf) == 1;
}

/* SNI for the handshake (not for addresses, RFC 6066). */
static void tls_setup(struct mailstream_ssl_context *ctx, void *data)
{
	tr_imap *s = data;
	if (s->verify_name != NULL && !is_ip_address(s->verify_name))
		mailstream_ssl_set_server_name(ctx, (char *)s->verify_name);
}

static char *x509_name_text(const X509_NAME *name)
{
	BIO *bio = BIO_new(BIO_s_mem());
	X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
	char *data = NULL;
	long len = BIO_get_mem_data(bio, &data);
	char *text = g_strndup(data != NULL ? data : "", len > 0 ? (gsize)len : 0);
	BIO_free(bio);
	return text;
}

/* "DNS:localhost, IP:127.0.0.1" — what the certificate is valid for. */
static char *x509_alt_names(X509 *cert)
{
	GString *out = g_string_new(NULL);
	GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	for (int i = 0; names != NULL && i < sk_GENERAL_NAME_num(names) && i < 20; i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);
		if (gn->type == GEN_DNS) {
			/* a hostile certificate does not get to write control
			 * characters into our logs */
			const unsigned char *p = ASN1_STRING_get0_data(gn->d.dNSName);
			int len = MIN(ASN1_STRING_length(gn->d.dNSName), 255);
			g_string_append_printf(out, "%sDNS:", out->len ? ", " : "");
			for (int k = 0; k < len; k++)
				g_string_append_c(out, p[k] >= 0x20 && p[k] < 0x7f ? (char)p[k] : '?');
		} else if (gn->type == GEN_IPADD) {
			char buf[INET6_ADDRSTRLEN] = "?";
			int len = ASN1_STRING_length(gn->d.iPAddress);
			const unsigned char *p = ASN1_STRING_get0_data(gn->d.iPAddress);
			if (len == 4)
				inet_ntop(AF_INET, p, buf, sizeof(buf));
			else if (len == 16)
				inet_ntop(AF_INET6, p, buf, sizeof(buf));
			g_string_append_printf(out, "%sIP:%s", out->len ? ", " : "", buf);
		}
	}
	GENERAL_NAMES_free(names);
	if (out->len == 0)
		g_string_append(out, "none");
	return g_string_free(out, FALSE);
}

static char *openssl_errors(void)
{
	unsigned long e = ERR_get_error();
	char buf[256];
	if (e == 0)
		return g_strdup("unknown error");
	ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return g_strdup(buf);
}

/*
 * The chain the server presented must lead to a trusted CA (ca_file, or
 * the system store without it), be valid now, be meant for a TLS server,
 * and name verify_name (DNS name or IP address, no partial wildcards).
 */
static bool verify_certificate(tr_imap *s, mailstream *stream, GError **error)
{
	if (!s->config.verify)
		return true;
	carray *chain = mailstream_get_certificate_chain(stream);
	if (chain == NULL || carray_count(chain) == 0) {
		if (chain != NULL)
			mailstream_certificate_chain_free(chain);
		fail(s, error, TR_IMAP_ERROR_CERTIFICATE, "certificate not trusted: the server sent none");
		return false;
	}
	bool ok = false;
	X509 *leaf = NULL;
	STACK_OF(X509) *untrusted = sk_X509_new_null();
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	for (unsigned i = 0; i < carray_count(chain); i++) {
		MMAPString *der = carray_get(chain, i);
		const unsigned char *p = (const unsigned char *)der->str;
		X509 *cert = d2i_X509(NULL, &p, (long)der->len);
		if (cert == NULL) {
			fail(s, error, TR_IMAP_ERROR_CERTIFICATE,
			     "certificate not trusted: certificate %u of the chain is not valid DER", i);
			goto out;
		}
		if (i == 0)
			leaf = cert;
		else
			sk_X509_push(untrusted, cert);
	}
	if (s->config.ca_file != NULL) {
		if (X509_STORE_load_file(store, s->config.ca_file) != 1) {
			char *why = openssl_errors();
			fail(s, error, TR_IMAP_ERROR_CONFIG, "cannot load ca_file %s: %s", s->config.ca_file, why);
			g_free(why);
			goto out;
		}
	} else if (X509_STORE_set_default_paths(store) != 1) {
		char *why = openssl_errors();
		fail(s, error, TR_IMAP_ERROR_CONFIG, "cannot load the system trust store: %s", why);
		g_free(why);
		goto out;
	}
	if (X509_STORE_CTX_init(ctx, store, leaf, untrusted) != 1) {
		char *why = openssl_errors();
		fail(s, error, TR_IMAP_ERROR_CERTIFICATE, "certificate check failed: %s", why);
		g_free(why);
		goto out;
	}
	X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
	X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(ctx);
	X509_VERIFY_PARAM_set_auth_level(param, 1);   /* no keys weaker than 80 bits */
	X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (is_ip_address(s->verify_name))
		X509_VERIFY_PARAM_set1_ip_asc(param, s->verify_name);
	else
		X509_VERIFY_PARAM_set1_host(param, s->verify_name, 0);
	if (X509_verify_cert(ctx) == 1) {
		ok = true;
		goto out;
	}
	int err = X509_STORE_CTX_get_error(ctx);
	if (err == X509_V_ERR_HOSTNAME_MISMATCH || err == X509_V_ERR_IP_ADDRESS_MISMATCH) {
		char *names = x509_alt_names(leaf);
		char *subject = x509_name_text(X509_get_subject_name(leaf));
		fail(s, error, TR_IMAP_ERROR_CERTIFICATE,
		     "certificate is not for '%s' (subject %s, valid for %s)", s->verify_name, subject, names);
		g_free(subject);
		g_free(names);
	} else {
		X509 *bad = X509_STORE_CTX_get_current_cert(ctx);
		char *subject = x509_name_text(X509_get_subject_name(bad != NULL ? bad : leaf));
		char *issuer = x509_name_text(X509_get_issuer_name(bad != NULL ? bad : leaf));
		fail(s, error, TR_IMAP_ERROR_CERTIFICATE,
		     "certificate not trusted: %s (subject %s, issuer %s; trusted CAs: %s)",
		     X509_verify_cert_error_string(err), subject, issuer,
		     s->config.ca_file != NULL ? s->config.ca_file : "the system store");
		g_free(subject);
		g_free(issuer);
	}
out:
	ERR_clear_error();
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	sk_X509_pop_free(untrusted, X509_free);
	X509_free(leaf);
	mailstream_certificate_chain_free(chain);
	return ok;
}

/* ---- trace ---- */

static void trace_logger(mailimap *imap, int log_type, const char *str, size_t size, void *context)
{
	(void)imap;
	tr_imap *s = context;
	if (s->trace_fn == NULL)
		return;
	switch (log_type) {
	case MAILSTREAM_LOG_TYPE_DATA_RECEIVED:
		s->trace_fn('<', str, size, s->trace_context);
		break;
	case MAILSTREAM_LOG_TYPE_DATA_SENT:
		s->trace_fn('>', str, size, s->trace_context);
		break;
	case MAILSTREAM_LOG_TYPE_DATA_SENT_PRIVATE:
		s->trace_fn('>', "<private>", 9, s->trace_context);
		break;
	default:
		break;
	}
}

/* ---- capabilities ---- */

static unsigned parse_caps(const mailimap *imap)
{
	const struct mailimap_capability_data *data =
		imap->imap_connection_info != NULL ? imap->imap_connection_info->imap_capability : NULL;
	unsigned caps = 0;
	if (data == NULL || data->cap_list == NULL)
		return 0;
	for (clistiter *it = clist_begin(data->cap_list); it != NULL; it = clist_next(it)) {
		const struct mailimap_capability *cap = clist_content(it);
		const char *name = cap->cap_type == MAILIMAP_CAPABILITY_NAME ? cap->cap_data.cap_name : NULL;
		if (name == NULL)
			continue;
		if (g_ascii_strcasecmp(name, "IDLE") == 0)
			caps |= TR_IMAP_CAP_IDLE;
		else if (g_ascii_strcasecmp(name, "MOVE") == 0)
			caps |= TR_IMAP_CAP_MOVE;
		else if (g_ascii_strcasecmp(name, "UIDPLUS") == 0)
			caps |= TR_IMAP_CAP_UIDPLUS;
		else if (g_ascii_strcasecmp(name, "STARTTLS") == 0)
			caps |= TR_IMAP_CAP_STARTTLS;
		else if (g_ascii_strcasecmp(name, "LOGINDISABLED") == 0)
			caps |= TR_IMAP_CAP_LOGINDISABLED;
	}
	return caps;
}

/* Ask CAPABILITY (capabilities change after STARTTLS and after LOGIN). */
static bool refresh_caps(tr_imap *s, unsigned *caps_r, GError **error)
{
	struct mailimap_capability_data *data = NULL;
	int r = mailimap_capability(s->imap, &data);
	if (r != MAILIMAP_NO_ERROR) {
		command_failed(s, r, TR_IMAP_ERROR_NETWORK, error, "CAPABILITY");
		drop_connection(s);
		return false;
	}
	mailimap_capability_data_free(data);
	*caps_r = parse_caps(s->imap);
	return true;
}

static bool keyword_storable(const tr_imap *s)
{
	const struct mailimap_selection_info *sel = s->imap->imap_selection_info;
	if (sel == NULL || sel->sel_perm_flags == NULL)
		return false;
	for (clistiter *it = clist_begin(sel->sel_perm_flags); it != NULL; it = clist_next(it)) {
		const struct mailimap_flag_perm *perm = clist_content(it);
		if (perm->fl_type == MAILIMAP_FLAG_PERM_ALL)
			return true;
		const struct mailimap_flag *flag = perm->fl_flag;
		if (flag != NULL && flag->fl_type == MAILIMAP_FLAG_KEYWORD && flag->fl_data.fl_keyword != NULL &&
		    g_ascii_strcasecmp(flag->fl_data.fl_keyword, s->config.keyword) == 0)
			return true;
	}
	return false;
}

/* ---- connect ---- */

static bool open_stream(tr_imap *s, mailstream **stream_r, GError **error)
{
	char *why = NULL;
	int fd = tcp_connect(s->config.host, s->port, s->config.limits.timeout, &why);
	if (fd < 0) {
		fail(s, error, TR_IMAP_ERROR_NETWORK, "cannot connect: %s", why);
		g_free(why);
		return false;
	}
	mailstream *stream;
	if (s->config.security == TR_IMAP_SECURITY_IMPLICIT) {
		stream = mailstream_ssl_open_with_callback_timeout(fd, (time_t)s->config.limits.timeout,
		                                                   tls_setup, s);
		if (stream == NULL) {
			close(fd);
			fail(s, error, TR_IMAP_ERROR_NETWORK, "TLS handshake failed");
			return false;
		}
		/* Before the greeting is even read: nothing is said to a peer
		 * that is not who it claims to be. */
		if (!verify_certificate(s, stream, error)) {
			mailstream_close(stream);
			return false;
		}
	} else {
		stream = mailstream_socket_open_timeout(fd, (time_t)s->config.limits.timeout);
		if (stream == NULL) {
			close(fd);
			fail(s, error, TR_IMAP_ERROR_NETWORK, "cannot set up the stream");
			return false;
		}
	}
	*stream_r = stream;
	return true;
}

static bool start_tls(tr_imap *s, unsigned caps, GError **error)
{
	if ((caps & TR_IMAP_CAP_STARTTLS) == 0) {
		fail(s, error, TR_IMAP_ERROR_CONFIG, "the server does not offer STARTTLS (security = starttls)");
		drop_connection(s);
		return false;
	}
	int r = mailimap_starttls(s->imap);
	/* Bytes already read past the tagged OK would later pass for data
	 * that came over TLS (the CVE-2020-15953 class of attack): refuse
	 * such a server before the handshake.  (Debian's libetpan has the
	 * upstream fix and fails STARTTLS itself in that case; we check
	 * either way.) */
	mailstream *stream = s->imap->imap_stream;
	if (stream != NULL && stream->read_buffer_len != 0) {
		fail(s, error, TR_IMAP_ERROR_CERTIFICATE,
		     "the server sent data after agreeing to STARTTLS (injection attempt?)");
		drop_connection(s);
		return false;
	}
	if (r != MAILIMAP_NO_ERROR) {
		command_failed(s, r, TR_IMAP_ERROR_CONFIG, error, "STARTTLS");
		drop_connection(s);
		return false;
	}
	/* What mailimap_socket_starttls_with_callback() does, after our check. */
	mailstream_low *plain = mailstream_get_low(stream);
	int fd = mailstream_low_get_fd(plain);
	mailstream_low *tls = fd < 0 ? NULL :
		mailstream_low_tls_open_with_callback_timeout(fd, (time_t)s->config.limits.timeout, tls_setup, s);
	if (tls == NULL) {
		fail(s, error, TR_IMAP_ERROR_NETWORK, "TLS handshake after STARTTLS failed");
		drop_connection(s);
		return false;
	}
	mailstream_low_free(plain);
	mailstream_set_low(stream, tls);
	/* Before anything else goes over the new channel, LOGIN least of all. */
	if (!verify_certificate(s, stream, error)) {
		drop_connection(s);
		return false;
	}
	return true;
}

static bool select_folder(tr_imap *s, GError **error)
{
	s->selecting = true;
	int r = mailimap_select(s->imap, s->config.folder);
	if (r != MAILIMAP_NO_ERROR) {
		command_failed(s, r, TR_IMAP_ERROR_MAILBOX, error, "SELECT");
		drop_connection(s);
		return false;
	}
	struct mailimap_selection_info *sel = s->imap->imap_selection_info;
	if (sel == NULL || sel->sel_uidvalidity == 0) {
		fail(s, error, TR_IMAP_ERROR_MAILBOX, "SELECT gave no UIDVALIDITY");
		drop_connection(s);
		return false;
	}
	if (sel->sel_perm != MAILIMAP_MAILBOX_READWRITE) {
		fail(s, error, TR_IMAP_ERROR_MAILBOX, "the folder is read-only for user '%s'", s->config.user);
		drop_connection(s);
		return false;
	}
	s->mailbox.uidvalidity = sel->sel_uidvalidity;
	s->mailbox.uidnext = sel->sel_uidnext;
	s->mailbox.exists = sel->sel_exists;
	s->mailbox.keywords_storable = keyword_storable(s);
	if ((s->config.mark & TR_IMAP_MARK_KEYWORD) && !s->mailbox.keywords_storable) {
		fail(s, error, TR_IMAP_ERROR_CONFIG,
		     "the folder cannot store the keyword %s (PERMANENTFLAGS); use mark = seen or move:FOLDER",
		     s->config.keyword);
		drop_connection(s);
		return false;
	}
	/* Everything already there counts as "seen by a search" only once a
	 * search ran: until then, waiting reports new mail at once. */
	s->exists_at_search = UINT32_MAX;
	return true;
}

bool tr_imap_connect(tr_imap *s, uint32_t known_uidvalidity, tr_imap_mailbox *mailbox_r, GError **error)
{
	tr_imap_disconnect(s);
	memset(&s->mailbox, 0, sizeof(s->mailbox));
	if (s->config.host == NULL || s->config.user == NULL || s->config.password == NULL) {
		fail(s, error, TR_IMAP_ERROR_CONFIG, "host, user and password are required");
		return false;
	}
	if (s->config.security == TR_IMAP_SECURITY_PLAIN && !s->config.allow_plain) {
		fail(s, error, TR_IMAP_ERROR_CONFIG,
		     "security = plain would send the password unencrypted and allow_plain is not set");
		return false;
	}
	mailstream *stream = NULL;
	if (!open_stream(s, &stream, error))
		return false;
	s->imap = mailimap_new(0, NULL);
	if (s->imap == NULL)
		g_error("out of memory (mailimap_new)");
	mailimap_set_timeout(s->imap, (time_t)s->config.limits.timeout);
	mailimap_set_logger(s->imap, trace_logger, s);
	int r = mailimap_connect(s->imap, stream);
	if (r == MAILIMAP_ERROR_DONT_ACCEPT_CONNECTION) {
		char *text = server_text(s);
		fail(s, error, TR_IMAP_ERROR_NETWORK, "the server refused the connection (BYE): %s", text);
		g_free(text);
		drop_connection(s);
		return false;
	}
	if (r != MAILIMAP_NO_ERROR_NON_AUTHENTICATED && r != MAILIMAP_NO_ERROR_AUTHENTICATED) {
		fail(s, error, TR_IMAP_ERROR_NETWORK, "no IMAP greeting (%s)",
		     transport_failure(r) ? transport_reason(r) : "refused");
		drop_connection(s);
		return false;
	}
	bool preauth = r == MAILIMAP_NO_ERROR_AUTHENTICATED;
	unsigned caps = 0;
	if (!refresh_caps(s, &caps, error))
		return false;
	if (s->config.security == TR_IMAP_SECURITY_STARTTLS) {
		if (preauth) {
			/* RFC 2595: no STARTTLS in the authenticated state. */
			fail(s, error, TR_IMAP_ERROR_CONFIG, "the server pre-authenticated the plain connection "
			     "(PREAUTH), so STARTTLS is impossible");
			drop_connection(s);
			return false;
		}
		if (!start_tls(s, caps, error) || !refresh_caps(s, &caps, error))
			return false;
	}
	if (!preauth) {
		if (caps & TR_IMAP_CAP_LOGINDISABLED) {
			fail(s, error, TR_IMAP_ERROR_CONFIG, "the server refuses LOGIN on this connection "
			     "(LOGINDISABLED): use security = imaps or starttls");
			drop_connection(s);
			return false;
		}
		r = mailimap_login(s->imap, s->config.user, s->config.password);
		if (r != MAILIMAP_NO_ERROR) {
			if (transport_failure(r)) {
				fail(s, error, TR_IMAP_ERROR_NETWORK, "LOGIN: %s", transport_reason(r));
			} else {
				char *text = server_text(s);
				fail(s, error, TR_IMAP_ERROR_AUTH, "login as '%s' refused: %s", s->config.user, text);
				g_free(text);
			}
			drop_connection(s);
			return false;
		}
		if (!refresh_caps(s, &caps, error))
			return false;
	}
	s->mailbox.caps = caps & ~(s->config.ignore_caps & (TR_IMAP_CAP_IDLE | TR_IMAP_CAP_MOVE | TR_IMAP_CAP_UIDPLUS));
	if (!select_folder(s, error))
		return false;
	s->connected = true;
	if (mailbox_r != NULL)
		*mailbox_r = s->mailbox;
	if (known_uidvalidity != 0 && known_uidvalidity != s->mailbox.uidvalidity) {
		fail(s, error, TR_IMAP_ERROR_UIDVALIDITY, "UIDVALIDITY is %u, was %u: every stored UID is void",
		     s->mailbox.uidvalidity, known_uidvalidity);
		return false;
	}
	return true;
}

void tr_imap_disconnect(tr_imap *s)
{
	if (s->imap != NULL && s->imap->imap_stream != NULL && s->connected) {
		/* A polite LOGOUT, but do not hang on a dying server. */
		mailstream_low_set_timeout(mailstream_get_low(s->imap->imap_stream), 5);
		mailimap_logout(s->imap);
	}
	drop_connection(s);
}

/* ---- search ---- */

static struct mailimap_search_key *flag_key(int type)
{
	return mailimap_search_key_new(type, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
	                               NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL, NULL, NULL, NULL,
	                               NULL, 0, NULL, NULL, NULL);
}

static int compare_uid(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

bool tr_imap_search(tr_imap *s, tr_imap_search_kind kind, uint32_t min_uid, GArray **uids_r,
                    GError **error)
{
	*uids_r = NULL;
	if (!require_connection(s, error))
		return false;
	struct mailimap_search_key *key = mailimap_search_key_new_multiple_empty();
	mailimap_search_key_multiple_add(key, flag_key(MAILIMAP_SEARCH_KEY_UNDELETED));
	if (min_uid > 1)
		mailimap_search_key_multiple_add(key, mailimap_search_key_new_uid(mailimap_set_new_interval(min_uid, 0)));
	if (kind == TR_IMAP_SEARCH_PENDING && (s->config.mark & TR_IMAP_MARK_KEYWORD))
		mailimap_search_key_multiple_add(key, mailimap_search_key_new_unkeyword(strdup(s->config.keyword)));
	else if (kind == TR_IMAP_SEARCH_TRIAGED)
		mailimap_search_key_multiple_add(key, mailimap_search_key_new_keyword(strdup(s->config.keyword)));
	uint32_t exists = s->imap->imap_selection_info != NULL ? s->imap->imap_selection_info->sel_exists : 0;
	clist *result = NULL;
	int r = mailimap_uid_search(s->imap, NULL, key, &result);
	mailimap_search_key_free(key);
	if (r != MAILIMAP_NO_ERROR) {
		command_failed(s, r, TR_IMAP_ERROR_MAILBOX, error, "UID SEARCH");
		return false;
	}
	/* The count before the command: what arrives while it runs is news. */
	s->exists_at_search = exists;
	GArray *uids = g_array_new(FALSE, FALSE, sizeof(uint32_t));
	for (clistiter *it = clist_begin(result); it != NULL; it = clist_next(it)) {
		uint32_t uid = *(uint32_t *)clist_content(it);
		/* "n:*" always matches the last message, even when its UID < n */
		if (uid >= min_uid)
			g_array_append_val(uids, uid);
	}
	mailimap_search_result_free(result);
	g_array_sort(uids, compare_uid);
	if (!check_uidvalidity(s, error)) {
		g_array_unref(uids);
		return false;
	}
	*uids_r = uids;
	return true;
}

/* ---- fetch ---- */

static unsigned flags_of(const tr_imap *s, const struct mailimap_msg_att_dynamic *dyn, GPtrArray *keywords)
{
	unsigned flags = 0;
	if (dyn == NULL || dyn->att_list == NULL)
		return 0;
	for (clistiter *it = clist_begin(dyn->att_list); it != NULL; it = clist_next(it)) {
		const struct mailimap_flag_fetch *ff = clist_content(it);
		if (ff->fl_type != MAILIMAP_FLAG_FETCH_OTHER || ff->fl_flag == NULL)
			continue;
		const struct mailimap_flag *f = ff->fl_flag;
		switch (f->fl_type) {
		case MAILIMAP_FLAG_SEEN: flags |= TR_IMAP_FLAG_SEEN; break;
		case MAILIMAP_FLAG_ANSWERED: flags |= TR_IMAP_FLAG_ANSWERED; break;
		case MAILIMAP_FLAG_FLAGGED: flags |= TR_IMAP_FLAG_FLAGGED; break;
		case MAILIMAP_FLAG_DELETED: flags |= TR_IMAP_FLAG_DELETED; break;
		case MAILIMAP_FLAG_DRAFT: flags |= TR_IMAP_FLAG_DRAFT; break;
		case MAILIMAP_FLAG_KEYWORD:
			if (f->fl_data.fl_keyword == NULL)
				break;
			if (g_ascii_strcasecmp(f->fl_data.fl_keyword, s->config.keyword) == 0)
				flags |= TR_IMAP_FLAG_TRIAGED;
			if (keywords != NULL)
				g_ptr_array_add(keywords, g_strdup(f->fl_data.fl_keyword));
			break;
		default:
			break;
		}
	}
	return flags;
}

typedef struct {
	bool found;
	bool have_size;
	uint32_t size;
	unsigned flags;
	const char *body;      /* points into the fetch result */
	size_t body_len;
} fetch_item;

/* Pick the FETCH response for uid out of result (a server may add
 * unsolicited FETCH responses for other messages, e.g. flag changes). */
static void fetch_result_for(const tr_imap *s, clist *result, uint32_t uid, fetch_item *item,
                             GPtrArray *keywords)
{
	memset(item, 0, sizeof(*item));
	for (clistiter *it = clist_begin(result); it != NULL; it = clist_next(it)) {
		const struct mailimap_msg_att *att = clist_content(it);
		fetch_item cur;
		memset(&cur, 0, sizeof(cur));
		uint32_t this_uid = 0;
		const struct mailimap_msg_att_dynamic *dyn = NULL;
		for (clistiter *a = clist_begin(att->att_list); a != NULL; a = clist_next(a)) {
			const struct mailimap_msg_att_item *ai = clist_content(a);
			if (ai->att_type == MAILIMAP_MSG_ATT_ITEM_DYNAMIC) {
				dyn = ai->att_data.att_dyn;
			} else if (ai->att_type == MAILIMAP_MSG_ATT_ITEM_STATIC && ai->att_data.att_static != NULL) {
				const struct mailimap_msg_att_static *st = ai->att_data.att_static;
				if (st->att_type == MAILIMAP_MSG_ATT_UID) {
					this_uid = st->att_data.att_uid;
				} else if (st->att_type == MAILIMAP_MSG_ATT_RFC822_SIZE) {
					cur.have_size = true;
					cur.size = st->att_data.att_rfc822_size;
				} else if (st->att_type == MAILIMAP_MSG_ATT_BODY_SECTION &&
				           st->att_data.att_body_section != NULL) {
					cur.body = st->att_data.att_body_section->sec_body_part;
					cur.body_len = st->att_data.att_body_section->sec_length;
				}
			}
		}
		if (this_uid != uid)
			continue;
		cur.found = true;
		cur.flags = flags_of(s, dyn, keywords);
		*item = cur;
		return;
	}
}

static bool uid_fetch(tr_imap *s, uint32_t uid, struct mailimap_fetch_type *type, clist **result_r,
                      GError **error)
{
	struct mailimap_set *set = mailimap_set_new_single(uid);
	int r = mailimap_uid_fetch(s->imap, set, type, result_r);
	mailimap_set_free(set);
	mailimap_fetch_type_free(type);
	if (r != MAILIMAP_NO_ERROR) {
		char what[48];
		snprintf(what, sizeof(what), "UID FETCH %u", uid);
		command_failed(s, r, TR_IMAP_ERROR_MESSAGE, error, what);
		return false;
	}
	return true;
}

static bool fetch_meta(tr_imap *s, uint32_t uid, fetch_item *item, GPtrArray *keywords, GError **error)
{
	struct mailimap_fetch_type *type = mailimap_fetch_type_new_fetch_att_list_empty();
	mailimap_fetch_type_new_fetch_att_list_add(type, mailimap_fetch_att_new_uid());
	mailimap_fetch_type_new_fetch_att_list_add(type, mailimap_fetch_att_new_flags());
	mailimap_fetch_type_new_fetch_att_list_add(type, mailimap_fetch_att_new_rfc822_size());
	clist *result = NULL;
	if (!uid_fetch(s, uid, type, &result, error))
		return false;
	fetch_result_for(s, result, uid, item, keywords);
	mailimap_fetch_list_free(result);
	if (!item->found) {
		fail(s, error, TR_IMAP_ERROR_GONE, "UID %u: no such message (expunged?)", uid);
		return false;
	}
	return check_uidvalidity(s, error);
}

bool tr_imap_fetch_flags(tr_imap *s, uint32_t uid, unsigned *flags_r, GError **error)
{
	if (!require_connection(s, error))
		return false;
	fetch_item item;
	if (!fetch_meta(s, uid, &item, NULL, error))
		return false;
	*flags_r = item.flags;
	return true;
}

bool tr_imap_fetch(tr_imap *s, uint32_t uid, tr_imap_message **message_r, GError **error)
{
	*message_r = NULL;
	if (!require_connection(s, error))
		return false;
	GPtrArray *keywords = g_ptr_array_new_with_free_func(g_free);
	fetch_item meta;
	if (!fetch_meta(s, uid, &meta, keywords, error)) {
		g_ptr_array_unref(keywords);
		return false;
	}
	uint64_t limit = (uint64_t)s->config.limits.message_bytes;
	if (meta.have_size && meta.size > limit) {
		fail(s, error, TR_IMAP_ERROR_TOO_BIG, "UID %u: message of %u bytes exceeds message_bytes = %" G_GUINT64_FORMAT,
		     uid, meta.size, limit);
		g_ptr_array_unref(keywords);
		return false;
	}
	/* BODY.PEEK[]<0.limit+1>: never more than the limit (plus one byte to
	 * notice a server that understated the size) is transferred. */
	struct mailimap_fetch_type *type = mailimap_fetch_type_new_fetch_att_list_empty();
	mailimap_fetch_type_new_fetch_att_list_add(type, mailimap_fetch_att_new_uid());
	mailimap_fetch_type_new_fetch_att_list_add(type,
		mailimap_fetch_att_new_body_peek_section_partial(mailimap_section_new(NULL), 0,
		                                                 (uint32_t)MIN(limit + 1, (uint64_t)UINT32_MAX)));
	clist *result = NULL;
	if (!uid_fetch(s, uid, type, &result, error)) {
		g_ptr_array_unref(keywords);
		return false;
	}
	fetch_item body;
	fetch_result_for(s, result, uid, &body, NULL);
	bool ok = false;
	if (!body.found || body.body == NULL) {
		fail(s, error, TR_IMAP_ERROR_GONE, "UID %u: the server returned no message body (expunged?)", uid);
	} else if (body.body_len > limit) {
		fail(s, error, TR_IMAP_ERROR_TOO_BIG, "UID %u: message exceeds message_bytes = %" G_GUINT64_FORMAT
		     " (the server announced %u bytes)", uid, limit, meta.size);
	} else {
		tr_imap_message *m = g_new0(tr_imap_message, 1);
		m->uid = uid;
		m->size = meta.have_size ? meta.size : body.body_len;
		m->len = body.body_len;
		m->data = g_malloc(body.body_len + 1);
		memcpy(m->data, body.body, body.body_len);
		m->data[body.body_len] = '\0';
		m->flags = meta.flags;
		g_ptr_array_add(keywords, NULL);
		m->keywords = (char **)g_ptr_array_free(keywords, FALSE);
		keywords = NULL;
		*message_r = m;
		ok = true;
	}
	mailimap_fetch_list_free(result);
	if (keywords != NULL)
		g_ptr_array_unref(keywords);
	if (ok && !check_uidvalidity(s, error)) {
		tr_imap_message_free(message_r);
		return false;
	}
	return ok;
}

void tr_imap_message_free(tr_imap_message **mp)
{
	tr_imap_message *m = *mp;
	if (m == NULL)
		return;
	*mp = NULL;
	g_free(m->data);
	g_strfreev(m->keywords);
	g_free(m);
}

/* ---- flags, folders, move ---- */

static bool uid_store(tr_imap *s, uint32_t uid, struct mailimap_flag_list *list, GError **error)
{
	struct mailimap_set *set = mailimap_set_new_single(uid);
	struct mailimap_store_att_flags *att = mailimap_store_att_flags_new_add_flags_silent(list);
	int r = mailimap_uid_store(s->imap, set, att);
	mailimap_store_att_flags_free(att);
	mailimap_set_free(set);
	if (r != MAILIMAP_NO_ERROR) {
		char what[48];
		snprintf(what, sizeof(what), "UID STORE %u", uid);
		command_failed(s, r, TR_IMAP_ERROR_MESSAGE, error, what);
		return false;
	}
	return check_uidvalidity(s, error);
}

bool tr_imap_add_flags(tr_imap *s, uint32_t uid, unsigned flags, GError **error)
{
	if (!require_connection(s, error))
		return false;
	struct mailimap_flag_list *list = mailimap_flag_list_new_empty();
	if (flags & TR_IMAP_FLAG_TRIAGED)
		mailimap_flag_list_add(list, mailimap_flag_new_flag_keyword(strdup(s->config.keyword)));
	if (flags & TR_IMAP_FLAG_SEEN)
		mailimap_flag_list_add(list, mailimap_flag_new_seen());
	if (flags & TR_IMAP_FLAG_DELETED)
		mailimap_flag_list_add(list, mailimap_flag_new_deleted());
	if (clist_count(list->fl_list) == 0) {
		mailimap_flag_list_free(list);
		return true;
	}
	return uid_store(s, uid, list, error);
}

static bool folder_listed(tr_imap *s, const char *folder, bool *listed_r, GError **error)
{
	clist *result = NULL;
	int r = mailimap_list(s->imap, "", folder, &result);
	if (r != MAILIMAP_NO_ERROR) {
		command_failed(s, r, TR_IMAP_ERROR_MAILBOX, error, "LIST");
		return false;
	}
	bool listed = false;
	for (clistiter *it = clist_begin(result); it != NULL; it = clist_next(it)) {
		const struct mailimap_mailbox_list *mb = clist_content(it);
		if (mb->mb_name != NULL && strcmp(mb->mb_name, folder) == 0)
			listed = true;
	}
	if (result != NULL)
		mailimap_list_result_free(result);
	*listed_r = listed;
	return true;
}

bool tr_imap_ensure_folder(tr_imap *s, const char *folder, GError **error)
{
	if (!require_connection(s, error))
		return false;
	const char *why;
	if (!tr_imap_folder_name_valid(folder, &why)) {
		fail(s, error, TR_IMAP_ERROR_CONFIG, "folder '%s': %s", folder, why);
		return false;
	}
	if (g_hash_table_contains(s->folders_seen, folder))
		return true;
	bool listed;
	if (!folder_listed(s, folder, &listed, error))
		return false;
	if (!listed) {
		int r = mailimap_create(s->imap, folder);
		if (r != MAILIMAP_NO_ERROR) {
			if (transport_failure(r)) {
				command_failed(s, r, TR_IMAP_ERROR_MAILBOX, error, "CREATE");
				return false;
			}
			/* Another client may have created it meanwhile. */
			char *text = server_text(s);
			if (!folder_listed(s, folder, &listed, error)) {
				g_free(text);
				return false;
			}
			if (!listed) {
				fail(s, error, TR_IMAP_ERROR_MAILBOX, "CREATE %s refused: %s", folder, text);
				g_free(text);
				return false;
			}
			g_free(text);
		}
	}
	g_hash_table_add(s->folders_seen, g_strdup(folder));
	return check_uidvalidity(s, error);
}

bool tr_imap_move(tr_imap *s, uint32_t uid, const char *folder, GError **error)
{
	if (!tr_imap_ensure_folder(s, folder, error))
		return false;
	char what[64];
	struct mailimap_set *set = mailimap_set_new_single(uid);
	int r;
	if (s->mailbox.caps & TR_IMAP_CAP_MOVE) {
		r = mailimap_uid_move(s->imap, set, folder);
		snprintf(what, sizeof(what), "UID MOVE %u", uid);
	} else {
		r = mailimap_uid_copy(s->imap, set, folder);
		snprintf(what, sizeof(what), "UID COPY %u", uid);
	}
	if (r != MAILIMAP_NO_ERROR) {
		mailimap_set_free(set);
		command_failed(s, r, TR_IMAP_ERROR_MESSAGE, error, what);
		/* The folder may have been deleted meanwhile: look again next time. */
		g_hash_table_remove(s->folders_seen, folder);
		return false;
	}
	if ((s->mailbox.caps & TR_IMAP_CAP_MOVE) == 0) {
		if (!tr_imap_add_flags(s, uid, TR_IMAP_FLAG_DELETED, error)) {
			mailimap_set_free(set);
			return false;
		}
		if (s->mailbox.caps & TR_IMAP_CAP_UIDPLUS) {
			r = mailimap_uid_expunge(s->imap, set);
			if (r != MAILIMAP_NO_ERROR) {
				mailimap_set_free(set);
				snprintf(what, sizeof(what), "UID EXPUNGE %u", uid);
				command_failed(s, r, TR_IMAP_ERROR_MESSAGE, error, what);
				return false;
			}
		}
	}
	mailimap_set_free(set);
	return check_uidvalidity(s, error);
}

bool tr_imap_quarantine(tr_imap *s, uint32_t uid, GError **error)
{
	return tr_imap_move(s, uid, s->config.quarantine, error);
}

bool tr_imap_mark(tr_imap *s, uint32_t uid, GError **error)
{
	unsigned flags = 0;
	if (s->config.mark & TR_IMAP_MARK_KEYWORD)
		flags |= TR_IMAP_FLAG_TRIAGED;
	if (s->config.mark & TR_IMAP_MARK_SEEN)
		flags |= TR_IMAP_FLAG_SEEN;
	/* Flags first: if the MOVE then fails, the message is at least known
	 * as triaged (TR_IMAP_SEARCH_TRIAGED finds it for another try). */
	if (flags != 0 && !tr_imap_add_flags(s, uid, flags, error))
		return false;
	if ((s->config.mark & TR_IMAP_MARK_MOVE) && s->config.move_to != NULL)
		return tr_imap_move(s, uid, s->config.move_to, error);
	return true;
}

/* ---- NOOP, IDLE, polling ---- */

bool tr_imap_noop(tr_imap *s, bool *new_mail_r, GError **error)
{
	if (new_mail_r != NULL)
		*new_mail_r = false;
	if (!require_connection(s, error))
		return false;
	exists_park(s);
	int r = mailimap_noop(s->imap);
	bool news = exists_unpark(s);
	if (r != MAILIMAP_NO_ERROR) {
		command_failed(s, r, TR_IMAP_ERROR_NETWORK, error, "NOOP");
		return false;
	}
	if (new_mail_r != NULL)
		*new_mail_r = news;
	return check_uidvalidity(s, error);
}

/* Take a pending interrupt (true) or nothing. */
static bool take_interrupt(tr_imap *s)
{
	g_mutex_lock(&s->lock);
	bool pending = s->interrupt_pending;
	s->interrupt_pending = false;
	g_mutex_unlock(&s->lock);
	return pending;
}

void tr_imap_interrupt(tr_imap *s)
{
	g_mutex_lock(&s->lock);
	s->interrupt_pending = true;
	if (s->idling && s->imap != NULL && s->imap->imap_stream != NULL)
		mailstream_interrupt_idle(s->imap->imap_stream);
	g_cond_broadcast(&s->wakeup);
	g_mutex_unlock(&s->lock);
}

/* One IDLE command of at most seconds.  *news_r: an EXISTS arrived. */
static bool idle_once(tr_imap *s, int seconds, bool *news_r, GError **error)
{
	*news_r = false;
	exists_park(s);
	int r = mailimap_idle(s->imap);
	if (r != MAILIMAP_NO_ERROR) {
		exists_unpark(s);
		command_failed(s, r, TR_IMAP_ERROR_NETWORK, error, "IDLE");
		return false;
	}
	mailstream *stream = s->imap->imap_stream;
	g_mutex_lock(&s->lock);
	bool ready = mailstream_setup_idle(stream) == 0;
	s->idling = ready;
	bool pending = s->interrupt_pending;
	g_mutex_unlock(&s->lock);
	int w = MAILSTREAM_IDLE_ERROR;
	if (ready) {
		/* A reply already buffered would not wake select(). */
		if (pending)
			w = MAILSTREAM_IDLE_INTERRUPTED;
		else if (stream->read_buffer_len > 0)
			w = MAILSTREAM_IDLE_HASDATA;
		else
			w = mailstream_wait_idle(stream, seconds);
		g_mutex_lock(&s->lock);
		s->idling = false;
		mailstream_unsetup_idle(stream);
		g_mutex_unlock(&s->lock);
	}
	r = mailimap_idle_done(s->imap);
	*news_r = exists_unpark(s);
	if (r != MAILIMAP_NO_ERROR) {
		command_failed(s, r, TR_IMAP_ERROR_NETWORK, error, "IDLE (DONE)");
		return false;
	}
	if (w == MAILSTREAM_IDLE_ERROR || w == MAILSTREAM_IDLE_CANCELLED) {
		fail(s, error, TR_IMAP_ERROR_NETWORK, "waiting in IDLE failed");
		drop_connection(s);
		return false;
	}
	return check_uidvalidity(s, error);
}

/* Sleep until the deadline (monotonic, µs) or an interrupt. */
static void sleep_interruptible(tr_imap *s, gint64 until)
{
	g_mutex_lock(&s->lock);
	while (!s->interrupt_pending && g_get_monotonic_time() < until)
		g_cond_wait_until(&s->wakeup, &s->lock, until);
	g_mutex_unlock(&s->lock);
}

tr_imap_wait_result tr_imap_wait(tr_imap *s, int seconds, GError **error)
{
	if (!require_connection(s, error))
		return TR_IMAP_WAIT_ERROR;
	gint64 deadline = g_get_monotonic_time() + (gint64)MAX(seconds, 0) * G_USEC_PER_SEC;
	for (;;) {
		if (take_interrupt(s))
			return TR_IMAP_WAIT_INTERRUPTED;
		const struct mailimap_selection_info *sel = s->imap->imap_selection_info;
		if (sel != NULL && sel->sel_exists != s->exists_at_search)
			return TR_IMAP_WAIT_NEW_MAIL;
		gint64 left = deadline - g_get_monotonic_time();
		if (left <= 0)
			return TR_IMAP_WAIT_TIMEOUT;
		bool news = false;
		if (s->mailbox.caps & TR_IMAP_CAP_IDLE) {
			/* whole seconds, rounded up: never a busy loop of 0 s IDLEs */
			gint64 secs = (left + G_USEC_PER_SEC - 1) / G_USEC_PER_SEC;
			secs = MIN(secs, s->config.limits.idle_restart);
			if (!idle_once(s, (int)secs, &news, error))
				return TR_IMAP_WAIT_ERROR;
		} else {
			gint64 poll_at = g_get_monotonic_time() + s->config.limits.poll_interval * G_USEC_PER_SEC;
			sleep_interruptible(s, MIN(poll_at, deadline));
			g_mutex_lock(&s->lock);
			bool pending = s->interrupt_pending;
			g_mutex_unlock(&s->lock);
			if (pending)
				continue;
			if (!tr_imap_noop(s, &news, error))
				return TR_IMAP_WAIT_ERROR;
		}
		if (news)
			return TR_IMAP_WAIT_NEW_MAIL;
	}
}
