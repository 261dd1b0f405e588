/* xtriage.c — X-Triage-* headers and ticket tags; see xtriage.h */
#include "core/xtriage.h"

#include <glib.h>
#include <gmime/gmime.h>
#include <string.h>

#include "core/rules.h"

/* Folded header lines stay under this many characters (RFC 5322 2.1.1). */
#define FOLD_COLUMN 78

bool tr_xtriage_is_header(const char *name, size_t len)
{
	size_t plen = sizeof(TR_XTRIAGE_PREFIX) - 1;
	return len >= plen && g_ascii_strncasecmp(name, TR_XTRIAGE_PREFIX, plen) == 0;
}

const char *tr_xtriage_value(tr_pool *pool, const char *text)
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
	if (!g_utf8_validate(clean, (gssize)n, NULL)) {
		char *valid = g_utf8_make_valid(clean, (gssize)n);
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

size_t tr_xtriage_headers(tr_pool *pool, const tr_decision *d, const char *ticket,
                                 size_t rules_bytes, const char *fold, tr_xtriage_header *out)
{
	size_t n = 0;
	out[n++] = (tr_xtriage_header){ "X-Triage-Priority", tr_priority_name(d->priority) };
	out[n++] = (tr_xtriage_header){ "X-Triage-Category", tr_xtriage_value(pool, d->category) };
	out[n++] = (tr_xtriage_header){ "X-Triage-Tier", tr_xtriage_value(pool, d->tier) };
	out[n++] = (tr_xtriage_header){ "X-Triage-Team", tr_xtriage_value(pool, d->team) };
	out[n++] = (tr_xtriage_header){ "X-Triage-Sentiment", sentiment_value(pool, d->sentiment.compound) };
	if (d->escalate)
		out[n++] = (tr_xtriage_header){ "X-Triage-Escalate", "yes" };
	if (ticket != NULL && *ticket != '\0')
		out[n++] = (tr_xtriage_header){ "X-Triage-Ticket", tr_xtriage_value(pool, ticket) };
	out[n++] = (tr_xtriage_header){
		"X-Triage-Rules",
		rules_value(pool, d, rules_bytes, fold, sizeof("X-Triage-Rules: ") - 1),
	};
	return n;
}

bool tr_xtriage_find_ticket(const char *subject, const char *prefix, char *buf, size_t size)
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
