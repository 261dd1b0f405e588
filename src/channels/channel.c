/* channel.c — what the mail channels share; see channel.h */
#include "channels/channel.h"

#include <gio/gio.h>
#include <gmime/gmime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rules.h"

/* Folded header lines stay under this many characters (RFC 5322 2.1.1). */
#define FOLD_COLUMN 78

const char *tr_channel_ingest_status_name(tr_channel_ingest_status status)
{
	switch (status) {
	case TR_CHANNEL_INGEST_COMMITTED: return "committed";
	case TR_CHANNEL_INGEST_DUPLICATE: return "duplicate";
	case TR_CHANNEL_INGEST_TEMPFAIL: return "tempfail";
	case TR_CHANNEL_INGEST_FULL: return "full";
	}
	return "?";
}

bool tr_channel_is_triage_header(const char *name, size_t len)
{
	size_t plen = sizeof(TR_CHANNEL_HEADER_PREFIX) - 1;
	return len >= plen && g_ascii_strncasecmp(name, TR_CHANNEL_HEADER_PREFIX, plen) == 0;
}

const char *tr_channel_header_value(tr_pool *pool, const char *text)
{
	if (text == NULL)
		return "";
	size_t len = strlen(text);
	char *clean = tr_pool_alloc(pool, len + 1);
	size_t n = 0;
	bool ascii = true, space = false;
	for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f) {
			space = n > 0;
			continue;
		}
		if (*p == ' ') {
			space = n > 0;
			continue;
		}
		if (space) {
			clean[n++] = ' ';
			space = false;
		}
		if (*p >= 0x80)
			ascii = false;
		clean[n++] = (char)*p;
	}
	clean[n] = '\0';
	if (ascii)
		return clean;
	const char *valid_end = NULL;
	char *valid = NULL;
	if (!g_utf8_validate(clean, (gssize)n, &valid_end)) {
		valid = g_utf8_make_valid(clean, (gssize)n);
		clean = tr_pool_strdup(pool, valid);
		g_free(valid);
	}
	char *encoded = g_mime_utils_header_encode_text(NULL, clean, "utf-8");
	const char *result = tr_pool_strdup(pool, encoded != NULL ? encoded : "");
	g_free(encoded);
	return result;
}

/* Rule names are configuration, but they still end up in a header: keep
 * the characters a header token may hold. */
static void append_token(GString *out, const char *name)
{
	for (const unsigned char *p = (const unsigned char *)name; *p != '\0'; p++)
		g_string_append_c(out, (*p > 0x20 && *p < 0x7f && *p != ',') ? (char)*p : '_');
}

/* Comma-separated list of the rules that fired, each once, at most
 * max_bytes characters, folded with fold so no line passes FOLD_COLUMN. */
static const char *rules_value(tr_pool *pool, const tr_decision *d, size_t max_bytes,
                               const char *fold, size_t first_column)
{
	GString *out = g_string_new(NULL);
	GHashTable *seen = g_hash_table_new(g_direct_hash, g_direct_equal);
	size_t column = first_column, plain = 0;
	GString *token = g_string_new(NULL);
	bool cut = false;
	for (size_t i = 0; i < d->n_hits; i++) {
		const tr_rule_hit *hit = &d->hits[i];
		if (hit->negated || g_hash_table_contains(seen, hit->rule))
			continue;
		g_hash_table_add(seen, (gpointer)hit->rule);
		g_string_truncate(token, 0);
		append_token(token, tr_rule_name(hit->rule));
		/* Keep room for ", ..." in case a later name does not fit. */
		size_t need = (plain > 0 ? 2 : 0) + token->len;
		if (plain + need + 5 > max_bytes) {
			cut = true;
			break;
		}
		if (plain > 0) {
			g_string_append_c(out, ',');
			column++;
			if (column + 1 + token->len > FOLD_COLUMN) {
				g_string_append(out, fold);
				column = 1;
			} else {
				g_string_append_c(out, ' ');
				column++;
			}
		}
		g_string_append_len(out, token->str, (gssize)token->len);
		column += token->len;
		plain += need;
	}
	if (cut)
		g_string_append(out, plain > 0 ? ", ..." : "...");
	if (out->len == 0)
		g_string_append(out, "none");
	const char *value = tr_pool_strndup(pool, out->str, out->len);
	g_string_free(out, TRUE);
	g_string_free(token, TRUE);
	g_hash_table_destroy(seen);
	return value;
}

static const char *sentiment_value(tr_pool *pool, double compound)
{
	/* VADER's own thresholds for the three labels. */
	const char *label = compound >= 0.05 ? "positive" : compound <= -0.05 ? "negative" : "neutral";
	char number[G_ASCII_DTOSTR_BUF_SIZE];
	g_ascii_formatd(number, sizeof(number), "%.2f", compound);
	return tr_pool_printf(pool, "%s; compound=%s", label, number);
}

size_t tr_channel_triage_headers(tr_pool *pool, const tr_decision *d, const char *ticket,
                                 size_t rules_bytes, const char *fold, tr_channel_header *out)
{
	size_t n = 0;
	out[n++] = (tr_channel_header){ "X-Triage-Priority", tr_priority_name(d->priority) };
	out[n++] = (tr_channel_header){ "X-Triage-Category", tr_channel_header_value(pool, d->category) };
	out[n++] = (tr_channel_header){ "X-Triage-Tier", tr_channel_header_value(pool, d->tier) };
	out[n++] = (tr_channel_header){ "X-Triage-Team", tr_channel_header_value(pool, d->team) };
	out[n++] = (tr_channel_header){ "X-Triage-Sentiment", sentiment_value(pool, d->sentiment.compound) };
	if (d->escalate)
		out[n++] = (tr_channel_header){ "X-Triage-Escalate", "yes" };
	if (ticket != NULL && *ticket != '\0')
		out[n++] = (tr_channel_header){ "X-Triage-Ticket", tr_channel_header_value(pool, ticket) };
	out[n++] = (tr_channel_header){
		"X-Triage-Rules",
		rules_value(pool, d, rules_bytes, fold, sizeof("X-Triage-Rules: ") - 1),
	};
	return n;
}

bool tr_channel_find_ticket(const char *subject, const char *prefix, char *buf, size_t size)
{
	if (subject == NULL || prefix == NULL || *prefix == '\0')
		return false;
	size_t plen = strlen(prefix);
	for (const char *p = strchr(subject, '['); p != NULL; p = strchr(p + 1, '[')) {
		const char *q = p + 1;
		if (g_ascii_strncasecmp(q, prefix, plen) != 0 || q[plen] != '-')
			continue;
		const char *digits = q + plen + 1, *e = digits;
		while (g_ascii_isdigit(*e))
			e++;
		if (e == digits || *e != ']' || e - digits > 18)
			continue;
		size_t len = (size_t)(e - q);
		if (len + 1 > size)
			return false;
		memcpy(buf, q, len);
		buf[len] = '\0';
		return true;
	}
	return false;
}

static bool port_ok(const char *port)
{
	if (*port == '\0' || strlen(port) > 5)
		return false;
	for (const char *p = port; *p != '\0'; p++)
		if (!g_ascii_isdigit(*p))
			return false;
	long n = strtol(port, NULL, 10);
	return n >= 0 && n <= 65535;   /* 0: any free port (tests) */
}

static bool listen_error(GError **error, const char *spec, const char *why)
{
	g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
	            "address '%s': %s (inet:HOST:PORT, inet:PORT@HOST or unix:PATH)", spec, why);
	return false;
}

bool tr_channel_listen_parse(const char *spec, tr_channel_listen *addr, GError **error)
{
	memset(addr, 0, sizeof(*addr));
	if (spec == NULL || *spec == '\0')
		return listen_error(error, "", "empty");
	const char *rest = spec;
	if (g_str_has_prefix(spec, "unix:") || g_str_has_prefix(spec, "local:")) {
		rest = strchr(spec, ':') + 1;
		if (*rest == '\0')
			return listen_error(error, spec, "no socket path");
		if (strlen(rest) >= sizeof(addr->path))
			return listen_error(error, spec, "socket path too long");
		addr->family = TR_CHANNEL_LISTEN_UNIX;
		g_strlcpy(addr->path, rest, sizeof(addr->path));
		return true;
	}
	if (g_str_has_prefix(spec, "inet:"))
		rest = spec + 5;
	else if (g_str_has_prefix(spec, "inet6:"))
		rest = spec + 6;
	else if (spec[0] == '/')
		return listen_error(error, spec, "say unix:PATH for a socket path");
	addr->family = TR_CHANNEL_LISTEN_INET;
	const char *at = strchr(rest, '@');
	const char *host, *port;
	size_t host_len, port_len;
	if (at != NULL) {             /* PORT@HOST */
		port = rest;
		port_len = (size_t)(at - rest);
		host = at + 1;
		host_len = strlen(host);
	} else {
		const char *colon = strrchr(rest, ':');
		if (colon == NULL) {  /* PORT */
			port = rest;
			port_len = strlen(rest);
			host = "";
			host_len = 0;
		} else {              /* HOST:PORT or [V6]:PORT */
			host = rest;
			host_len = (size_t)(colon - rest);
			port = colon + 1;
			port_len = strlen(port);
		}
	}
	if (host_len >= 2 && host[0] == '[' && host[host_len - 1] == ']') {
		host++;
		host_len -= 2;
	}
	if (host_len >= sizeof(addr->host) || port_len >= sizeof(addr->port))
		return listen_error(error, spec, "host or port too long");
	memcpy(addr->host, host, host_len);
	memcpy(addr->port, port, port_len);
	if (!port_ok(addr->port))
		return listen_error(error, spec, "the port must be a number from 0 to 65535");
	for (const char *p = addr->host; *p != '\0'; p++)
		if (!g_ascii_isalnum(*p) && *p != '.' && *p != '-' && *p != ':' && *p != '_')
			return listen_error(error, spec, "bad host name");
	return true;
}

char *tr_channel_listen_milter_spec(const tr_channel_listen *addr)
{
	if (addr->family == TR_CHANNEL_LISTEN_UNIX)
		return g_strdup_printf("unix:%s", addr->path);
	if (addr->host[0] == '\0')
		return g_strdup_printf("inet:%s", addr->port);
	return g_strdup_printf("%s:%s@%s", strchr(addr->host, ':') != NULL ? "inet6" : "inet", addr->port,
	                       addr->host);
}

char *tr_channel_listen_describe(const tr_channel_listen *addr)
{
	if (addr->family == TR_CHANNEL_LISTEN_UNIX)
		return g_strdup_printf("unix:%s", addr->path);
	if (strchr(addr->host, ':') != NULL)
		return g_strdup_printf("[%s]:%s", addr->host, addr->port);
	return g_strdup_printf("%s:%s", addr->host[0] != '\0' ? addr->host : "*", addr->port);
}

char **tr_channel_split_list(const char *text)
{
	GPtrArray *out = g_ptr_array_new();
	if (text != NULL) {
		char **words = g_strsplit_set(text, ", \t;", -1);
		for (char **w = words; *w != NULL; w++) {
			if (**w != '\0')
				g_ptr_array_add(out, g_ascii_strdown(*w, -1));
		}
		g_strfreev(words);
	}
	g_ptr_array_add(out, NULL);
	return (char **)g_ptr_array_free(out, FALSE);
}

const char *tr_channel_strip_brackets(tr_pool *pool, const char *text)
{
	if (text == NULL)
		return NULL;
	while (*text == ' ' || *text == '\t')
		text++;
	const char *end = text + strlen(text);
	if (*text == '<') {
		const char *gt = strchr(text, '>');
		text++;
		end = gt != NULL ? gt : text + strlen(text);
		/* A source route "<@a,@b:user@c>" names the mailbox after the colon. */
		if (*text == '@') {
			const char *colon = memchr(text, ':', (size_t)(end - text));
			if (colon != NULL)
				text = colon + 1;
		}
	}
	while (end > text && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	return tr_pool_strndup(pool, text, (size_t)(end - text));
}

void tr_channel_conf_load(const tr_conftab *tab, const tr_conf *conf, tr_diag *diag,
                          const char *group, void *target, const char *const *extra_keys)
{
	tr_conftab_defaults(tab, target);
	if (!g_key_file_has_group(tr_conf_keyfile(conf), group))
		return;
	GPtrArray *known = g_ptr_array_new();
	for (const tr_conftab *row = tab; row->name != NULL; row++) {
		g_ptr_array_add(known, (gpointer)row->name);
		char *text = tr_conf_string(conf, group, row->name, NULL);
		if (text == NULL)
			continue;
		int64_t v;
		if (!tr_conf_parse_int(text, row->unit, &v))
			tr_conf_error(conf, diag, group, row->name, "'%s' is not a valid number", text);
		else if (v < row->min || v > row->max)
			tr_conf_error(conf, diag, group, row->name,
			              "%" G_GINT64_FORMAT " is out of range %" G_GINT64_FORMAT "..%" G_GINT64_FORMAT,
			              (gint64)v, (gint64)row->min, (gint64)row->max);
		else
			*(int64_t *)((char *)target + row->offset) = v;
		g_free(text);
	}
	for (const char *const *k = extra_keys; k != NULL && *k != NULL; k++)
		g_ptr_array_add(known, (gpointer)*k);
	g_ptr_array_add(known, NULL);
	tr_conf_check_keys(conf, diag, group, (const char *const *)known->pdata);
	g_ptr_array_free(known, TRUE);
}
