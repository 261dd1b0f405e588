/* normalize.c — raw message to tr_msg; see normalize.h */
#include "core/normalize.h"

#include <gmime/gmime.h>
#include <iconv.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/html.h"
#include "core/quote.h"

#define KiB 1024
#define MiB (1024 * 1024)

const tr_conftab tr_norm_limits_table[] = {
	{ "message_bytes", 25 * MiB, 1 * KiB, 1024 * MiB, TR_UNIT_BYTES,
	  offsetof(tr_norm_limits, message_bytes), "raw message bytes parsed; the rest is ignored" },
	{ "header_bytes", 256 * KiB, 1 * KiB, 64 * MiB, TR_UNIT_BYTES,
	  offsetof(tr_norm_limits, header_bytes), "header block bytes; fields past it are dropped" },
	{ "mime_depth", 20, 1, 1000, TR_UNIT_COUNT,
	  offsetof(tr_norm_limits, mime_depth), "MIME nesting levels walked" },
	{ "mime_parts", 500, 1, 100000, TR_UNIT_COUNT,
	  offsetof(tr_norm_limits, mime_parts), "MIME parts examined" },
	{ "text_chars", 64 * KiB, 256, 16 * MiB, TR_UNIT_CHARS,
	  offsetof(tr_norm_limits, text_chars), "characters of normalized body text kept and classified" },
	{ "html_bytes", 2 * MiB, 1 * KiB, 256 * MiB, TR_UNIT_BYTES,
	  offsetof(tr_norm_limits, html_bytes), "HTML bytes converted to text" },
	{ "header_count", 500, 16, 100000, TR_UNIT_COUNT,
	  offsetof(tr_norm_limits, header_count), "decoded header fields kept for header rules" },
	{ "address_count", 200, 1, 100000, TR_UNIT_COUNT,
	  offsetof(tr_norm_limits, address_count), "addresses kept per To, Cc and Reply-To" },
	{ "reference_count", 100, 1, 10000, TR_UNIT_COUNT,
	  offsetof(tr_norm_limits, reference_count), "References message ids kept (the newest)" },
	{ NULL, 0, 0, 0, TR_UNIT_COUNT, 0, NULL },
};

struct tr_norm {
	tr_norm_limits limits;
	tr_lang *lang;
	char *trusted_authserv_id;
	GMimeParserOptions *options;
};

/*
 * glibc loads a gconv module on iconv_open() and unloads it when its last
 * descriptor closes, so converting message after message in ISO-8859-1
 * costs a dlopen()/dlclose() pair each time.  Keeping one descriptor of
 * each common charset open for the life of the process pins its module.
 */
static iconv_t pinned_converters[16];

/* At exit the pinned descriptors are closed.  Nothing else reads the
 * array, so without this the compiler drops the stores and the
 * descriptors (and the gconv steps behind them) are lost for good: a
 * definite leak per process under valgrind and LeakSanitizer. */
static void unpin_gconv_modules(void)
{
	for (size_t i = 0; i < G_N_ELEMENTS(pinned_converters); i++) {
		if (pinned_converters[i] != NULL && pinned_converters[i] != (iconv_t)-1)
			iconv_close(pinned_converters[i]);
		pinned_converters[i] = NULL;
	}
}

static void pin_gconv_modules(void)
{
	static const char *const charsets[] = {
		"ISO-8859-1", "ISO-8859-2", "ISO-8859-15", "WINDOWS-1250", "WINDOWS-1251",
		"WINDOWS-1252", "KOI8-R", "ISO-2022-JP", "SHIFT_JIS", "EUC-JP", "GB18030",
		"BIG5", "EUC-KR", "UTF-16", "UTF-7",
	};
	G_STATIC_ASSERT(G_N_ELEMENTS(charsets) <= G_N_ELEMENTS(pinned_converters));
	for (size_t i = 0; i < G_N_ELEMENTS(charsets); i++)
		pinned_converters[i] = iconv_open("UTF-8", charsets[i]);
	atexit(unpin_gconv_modules);
}

void tr_norm_global_init(void)
{
	static gsize once = 0;
	if (g_once_init_enter(&once)) {
		g_mime_init();
		pin_gconv_modules();
		g_once_init_leave(&once, 1);
	}
}

tr_norm *tr_norm_new(const tr_norm_limits *limits, tr_lang *lang, const char *trusted_authserv_id)
{
	tr_norm_global_init();
	tr_norm *norm = g_new0(tr_norm, 1);
	if (limits != NULL)
		norm->limits = *limits;
	else
		tr_conftab_defaults(tr_norm_limits_table, &norm->limits);
	norm->lang = lang;
	norm->trusted_authserv_id = g_strdup(trusted_authserv_id);
	norm->options = g_mime_parser_options_new();
	/* Undeclared 8-bit text: try UTF-8 first, then the Windows superset of
	 * Latin-1, which maps every byte — the text is never lost. */
	const char *fallback[] = { "utf-8", "windows-1252", NULL };
	g_mime_parser_options_set_fallback_charsets(norm->options, fallback);
	g_mime_parser_options_set_rfc2047_compliance_mode(norm->options, GMIME_RFC_COMPLIANCE_LOOSE);
	g_mime_parser_options_set_address_compliance_mode(norm->options, GMIME_RFC_COMPLIANCE_LOOSE);
	g_mime_parser_options_set_parameter_compliance_mode(norm->options, GMIME_RFC_COMPLIANCE_LOOSE);
	return norm;
}

void tr_norm_free(tr_norm **normp)
{
	tr_norm *norm = *normp;
	if (norm == NULL)
		return;
	*normp = NULL;
	g_mime_parser_options_free(norm->options);
	g_free(norm->trusted_authserv_id);
	g_free(norm);
}

const tr_norm_limits *tr_norm_get_limits(const tr_norm *norm)
{
	return &norm->limits;
}

/* ---------------------------------------------------------------- text */

/* Characters that render as a plain space. */
static bool is_unicode_space(gunichar c)
{
	return c == 0x00A0 || (c >= 0x2000 && c <= 0x200A) || c == 0x202F ||
	       c == 0x205F || c == 0x3000 || c == 0x1680;
}

/* Characters with no visible effect that only get in the way of matching. */
static bool is_invisible(gunichar c)
{
	return (c >= 0x200B && c <= 0x200F) || c == 0x2060 || c == 0xFEFF ||
	       c == 0x00AD || (c >= 0x80 && c < 0xA0) || (c >= 0x202A && c <= 0x202E) ||
	       (c >= 0x2066 && c <= 0x2069);
}

/*
 * Length of the plain stretch at p (which must be a visible ASCII byte):
 * visible ASCII (0x21..0x7E) and single spaces between two such bytes,
 * i.e. what whitespace normalization leaves as it is.  Eight bytes at a
 * time while they qualify, then byte by byte.
 */
static size_t plain_run(const unsigned char *p, const unsigned char *end)
{
	const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
	const unsigned char *q = p;
	while (end - q >= 9) {
		uint64_t v;
		memcpy(&v, q, sizeof(v));
		uint64_t below_space = (v - 0x20 * ones) & ~v & highs;      /* < 0x20 */
		uint64_t above = (((v & ~highs) + ones) | v) & highs;       /* >= 0x7F */
		uint64_t x = v ^ (0x20 * ones);                             /* spaces: 0 */
		uint64_t spaces = ~((((x & ~highs) + ~highs) | x) | ~highs); /* exact */
		/* no control or non-ASCII byte, no two spaces in a row, no space
		 * before the next chunk's first byte unless that one is visible */
		if ((below_space | above) != 0 || (spaces & (spaces >> 8)) != 0)
			break;
		if ((spaces >> 56) != 0 && !(q[8] > 0x20 && q[8] < 0x7F))
			break;
		q += 8;
	}
	while (q < end) {
		if (*q > 0x20 && *q < 0x7F)
			q++;
		else if (*q == ' ' && q + 1 < end && q[1] > 0x20 && q[1] < 0x7F)
			q += 2;
		else
			break;
	}
	return (size_t)(q - p);
}

char *tr_norm_whitespace(tr_pool *pool, const char *text, size_t len, size_t *len_r)
{
	char *out = tr_pool_alloc_uninit(pool, len + 1);
	size_t o = 0, line_len = 0;
	unsigned newlines_pending = 0;
	bool pending_space = false, any_text = false;
	const unsigned char *p = (const unsigned char *)text, *end = p + len;
	while (p < end) {
		unsigned char c = *p;
		if (c > 0x20 && c < 0x7F) {
			/* Fast path: a run of visible ASCII is copied as it is,
			 * after the separator that a space or newline left. */
			if (newlines_pending > 0) {
				while (newlines_pending > 0) {
					out[o++] = '\n';
					newlines_pending--;
				}
			} else if (pending_space && line_len > 0) {
				out[o++] = ' ';
			}
			pending_space = false;
			size_t run = plain_run(p, end);
			memcpy(out + o, p, run);
			o += run;
			p += run;
			line_len += run;
			any_text = true;
			continue;
		}
		size_t clen = 1;
		int kind; /* 0 visible, 1 space, 2 newline, 3 drop */
		if (c < 0x80) {
			if (c == '\n' || c == '\r') {
				if (c == '\r' && p + 1 < end && p[1] == '\n')
					clen = 2;
				kind = 2;
			} else if (c == ' ' || c == '\t' || c == '\f' || c == '\v') {
				kind = 1;
			} else if (c < 0x20 || c == 0x7F) {
				kind = 3;
			} else {
				kind = 0;
			}
		} else {
			gunichar u = g_utf8_get_char_validated((const char *)p, end - p);
			if (u == (gunichar)-1 || u == (gunichar)-2) {
				kind = 3;  /* caller promised UTF-8; stay safe anyway */
			} else {
				clen = (size_t)g_unichar_to_utf8(u, NULL);
				if (u == 0x2028 || u == 0x2029 || u == 0x0085)
					kind = 2;
				else if (is_unicode_space(u))
					kind = 1;
				else if (is_invisible(u))
					kind = 3;
				else
					kind = 0;
			}
		}
		if (kind == 2) {
			if (line_len > 0)
				newlines_pending = 1;
			else if (any_text && newlines_pending < 2)
				newlines_pending++;
			line_len = 0;
			pending_space = false;
		} else if (kind == 1) {
			pending_space = true;
		} else if (kind == 0) {
			if (newlines_pending > 0) {
				while (newlines_pending > 0) {
					out[o++] = '\n';
					newlines_pending--;
				}
			} else if (pending_space && line_len > 0) {
				out[o++] = ' ';
			}
			pending_space = false;
			memcpy(out + o, p, clen);
			o += clen;
			line_len++;
			any_text = true;
		}
		p += clen;
	}
	out[o] = '\0';
	if (len_r != NULL)
		*len_r = o;
	return out;
}

/*
 * g_utf8_validate(s, len, NULL), faster on mostly-ASCII text: runs of ASCII
 * without NUL are checked eight bytes at a time, and only each run of
 * non-ASCII bytes is handed to GLib.  Cutting the text right before an
 * ASCII byte does not change the verdict: a sequence cut short there is
 * invalid either way, so GLib keeps the last word on what is valid.
 */
static bool utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;
	const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
	while (p < end) {
		if (end - p >= 8) {
			uint64_t v;
			memcpy(&v, p, sizeof(v));
			if (((v | ((v - ones) & ~v)) & highs) == 0) {
				p += 8;  /* eight ASCII bytes, none NUL */
				continue;
			}
		}
		if (*p == '\0')
			return false;
		if (*p < 0x80) {
			p++;
			continue;
		}
		const unsigned char *run = p;
		while (p < end && *p >= 0x80)
			p++;
		if (!g_utf8_validate((const char *)run, p - run, NULL))
			return false;
	}
	return true;
}

/* Make text valid UTF-8 (into the pool). */
static char *valid_utf8(tr_pool *pool, const char *s, size_t len, bool *repaired_r)
{
	if (utf8_valid(s, len))
		return tr_pool_strndup(pool, s, len);
	*repaired_r = true;
	char *fixed = g_utf8_make_valid(s, (gssize)len);
	char *copy = tr_pool_strdup(pool, fixed);
	g_free(fixed);
	return copy;
}

/* One line, valid UTF-8, control characters replaced: safe to print. */
static char *one_line(tr_pool *pool, const char *s)
{
	if (s == NULL)
		return NULL;
	/* Most values (header names, addresses, ids) are printable ASCII
	 * words with single spaces: already what the slow path would make. */
	size_t n = 0;
	bool plain = s[0] != ' ';
	for (; plain && s[n] != '\0'; n++) {
		unsigned char c = (unsigned char)s[n];
		plain = (c > 0x20 && c < 0x7F) || (c == ' ' && s[n + 1] != ' ' && s[n + 1] != '\0');
	}
	if (plain)
		return tr_pool_strndup(pool, s, n);
	bool repaired = false;
	char *v = valid_utf8(pool, s, strlen(s), &repaired);
	size_t len;
	char *line = tr_norm_whitespace(pool, v, strlen(v), &len);
	for (char *q = line; *q != '\0'; q++) {
		if (*q == '\n')
			*q = ' ';
	}
	return line;
}

/* Cut text to at most max_chars characters; true when something was cut. */
static bool cut_chars(char *text, size_t *len, int64_t max_chars)
{
	if ((int64_t)*len <= max_chars)
		return false;
	const char *end = text + *len;
	const char *p = text;
	for (int64_t i = 0; i < max_chars && p < end; i++)
		p = g_utf8_next_char(p);
	if (p >= end)
		return false;
	*len = (size_t)(p - text);
	text[*len] = '\0';
	return true;
}

/* ---------------------------------------------------------------- raw input */

/* Length of a header field starting at p (including continuation lines). */
static size_t field_length(const char *p, const char *end)
{
	const char *q = p;
	for (;;) {
		const char *nl = memchr(q, '\n', (size_t)(end - q));
		if (nl == NULL)
			return (size_t)(end - p);
		q = nl + 1;
		if (q >= end || (*q != ' ' && *q != '\t'))
			return (size_t)(q - p);
	}
}

static bool is_blank_line(const char *p, const char *end)
{
	return p < end && (*p == '\n' || (*p == '\r' && p + 1 < end && p[1] == '\n'));
}

/* Does the input start like a header block ("Name: value")? */
static bool looks_like_headers(const char *p, size_t len)
{
	size_t i = 0;
	while (i < len && i < 100 && p[i] > 32 && p[i] < 127 && p[i] != ':')
		i++;
	return i > 0 && i < len && p[i] == ':';
}

/*
 * Apply the byte limits before GMime sees the data: skip an mbox "From "
 * line, stop at message_bytes, replace NUL bytes, drop header fields that
 * do not fit header_bytes.  Returns the bytes to parse (data itself or a
 * pool copy) and whether a header block is present.
 */
static const char *prepare_raw(const tr_norm *norm, tr_msg *msg, const char *data, size_t len,
                               size_t *len_r, bool *has_headers_r)
{
	const char *end = data + len;
	if (len >= 5 && memcmp(data, "From ", 5) == 0) {
		const char *nl = memchr(data, '\n', len);
		data = nl != NULL ? nl + 1 : end;
	}
	while (data < end && (*data == '\n' || *data == '\r'))
		data++;
	len = (size_t)(end - data);
	if ((int64_t)len > norm->limits.message_bytes) {
		size_t cut = (size_t)norm->limits.message_bytes;
		const char *nl = g_strrstr_len(data, (gssize)cut, "\n");
		if (nl != NULL && (size_t)(nl - data) > cut / 2)
			cut = (size_t)(nl - data) + 1;
		len = cut;
		end = data + len;
		msg->flags |= TR_MSG_TRUNCATED_SIZE;
	}
	char *copy = NULL;
	if (memchr(data, '\0', len) != NULL) {
		copy = tr_pool_memdup(msg->pool, data, len);
		for (size_t i = 0; i < len; i++) {
			if (copy[i] == '\0')
				copy[i] = ' ';
		}
		data = copy;
		end = data + len;
		msg->flags |= TR_MSG_NUL_BYTES;
	}
	*has_headers_r = looks_like_headers(data, len);
	if (!*has_headers_r || (int64_t)len <= norm->limits.header_bytes) {
		/* A header block cannot be longer than the whole input. */
		*len_r = len;
		return data;
	}
	/* Measure the header block. */
	const char *p = data;
	while (p < end && !is_blank_line(p, end))
		p += field_length(p, end);
	size_t header_len = (size_t)(p - data);
	if ((int64_t)header_len <= norm->limits.header_bytes) {
		*len_r = len;
		return data;
	}
	/* Too big: keep the fields that fit, in order, and the whole body. */
	msg->flags |= TR_MSG_TRUNCATED_HEADERS;
	size_t body_len = (size_t)(end - p);
	char *out = tr_pool_alloc(msg->pool, (size_t)norm->limits.header_bytes + body_len + 2);
	size_t o = 0;
	for (const char *f = data; f < p;) {
		size_t flen = field_length(f, p);
		if ((int64_t)(o + flen) <= norm->limits.header_bytes) {
			memcpy(out + o, f, flen);
			o += flen;
		}
		f += flen;
	}
	if (o > 0 && out[o - 1] != '\n')
		out[o++] = '\n';
	memcpy(out + o, p, body_len);
	o += body_len;
	*len_r = o;
	return out;
}

/* ---------------------------------------------------------------- headers */

static bool has_prefix_ci(const char *s, const char *prefix)
{
	return g_ascii_strncasecmp(s, prefix, strlen(prefix)) == 0;
}

/* Case-insensitive substring test for ASCII needles in a lowercased haystack. */
static bool contains_any(const char *lower, const char *const *needles)
{
	for (const char *const *n = needles; *n != NULL; n++) {
		if (strstr(lower, *n) != NULL)
			return true;
	}
	return false;
}

static void sender_indicators(tr_msg *msg, const char *address)
{
	if (address == NULL)
		return;
	if (*address == '\0') {
		msg->auto_flags |= TR_AUTO_NULL_SENDER;
		return;
	}
	const char *at = strchr(address, '@');
	size_t local_len = at != NULL ? (size_t)(at - address) : strlen(address);
	char local[128];
	if (local_len >= sizeof(local))
		local_len = sizeof(local) - 1;
	for (size_t i = 0; i < local_len; i++)
		local[i] = g_ascii_tolower(address[i]);
	local[local_len] = '\0';
	if (strcmp(local, "mailer-daemon") == 0 || strcmp(local, "postmaster") == 0 ||
	    strcmp(local, "mail-daemon") == 0)
		msg->auto_flags |= TR_AUTO_SYSTEM_SENDER;
	static const char *const noreply[] = {
		"noreply", "no-reply", "no_reply", "no.reply", "donotreply", "do-not-reply",
		"do_not_reply", "do.not.reply", NULL,
	};
	if (contains_any(local, noreply) || has_prefix_ci(local, "bounce") ||
	    has_prefix_ci(local, "mailer-daemon"))
		msg->auto_flags |= TR_AUTO_NOREPLY_SENDER;
}

static void subject_indicators(tr_msg *msg)
{
	if (*msg->subject == '\0')
		return;
	/* Most subjects are ASCII: lowercased here, as g_utf8_strdown() does
	 * them in the C.UTF-8 locale the programs set, without its UCS-4 round
	 * trip. */
	size_t len = 0;
	while ((unsigned char)msg->subject[len] - 1u < 0x7Fu)
		len++;
	char *lower, *converted = NULL;
	if (msg->subject[len] == '\0') {
		lower = tr_pool_alloc_uninit(msg->pool, len + 1);
		for (size_t i = 0; i <= len; i++)
			lower[i] = g_ascii_tolower(msg->subject[i]);
	} else {
		lower = converted = g_utf8_strdown(msg->subject, -1);
	}
	static const char *const autoreply[] = {
		"out of office", "out of the office", "automatic reply", "auto-reply", "autoreply",
		"auto reply", "abwesenheitsnotiz", "automatische antwort", "respuesta automática",
		"fuera de la oficina", "réponse automatique", "absence du bureau", "resposta automática",
		"ausência do escritório", "vacation reply", "i am on vacation", NULL,
	};
	static const char *const bounce[] = {
		"undeliverable", "undelivered mail", "delivery status notification",
		"mail delivery failed", "returned mail", "delivery failure", "failure notice",
		"mail delivery subsystem", "unzustellbar", "non remis", "no se puede entregar", NULL,
	};
	if (contains_any(lower, autoreply))
		msg->auto_flags |= TR_AUTO_AUTOREPLY_SUBJECT;
	if (contains_any(lower, bounce))
		msg->auto_flags |= TR_AUTO_BOUNCE;
	g_free(converted);
}

/* "spf=pass" style results from one Authentication-Results value. */
static void parse_auth_results(tr_msg *msg, const char *value, const char *trusted_id)
{
	char **items = g_strsplit(value, ";", 32);
	if (items[0] == NULL) {
		g_strfreev(items);
		return;
	}
	if (trusted_id != NULL) {
		char *id = g_strstrip(g_strdup(items[0]));
		char *space = strpbrk(id, " \t");
		if (space != NULL)
			*space = '\0';  /* drop an optional version */
		bool trusted = g_ascii_strcasecmp(id, trusted_id) == 0;
		g_free(id);
		if (!trusted) {
			g_strfreev(items);
			return;
		}
	}
	for (char **it = items + 1; *it != NULL; it++) {
		char *item = g_strstrip(*it);
		const char **slot = NULL;
		if (has_prefix_ci(item, "spf="))
			slot = &msg->auth.spf;
		else if (has_prefix_ci(item, "dkim="))
			slot = &msg->auth.dkim;
		else if (has_prefix_ci(item, "dmarc="))
			slot = &msg->auth.dmarc;
		if (slot == NULL)
			continue;
		const char *result = strchr(item, '=') + 1;
		size_t rlen = strcspn(result, " \t(");
		if (rlen == 0 || rlen > 16)
			continue;
		char *verdict = g_ascii_strdown(result, (gssize)rlen);
		/* Several DKIM signatures: one pass is enough. */
		if (*slot == NULL || strcmp(verdict, "pass") == 0)
			*slot = tr_pool_strdup(msg->pool, verdict);
		g_free(verdict);
	}
	g_strfreev(items);
}

/*
 * A header's value: unfolded, decoded, one line of valid UTF-8.  Most
 * values are plain ASCII without encoded words: those are only unfolded
 * and trimmed here; the rest go through GMime's RFC 2047 decoder.
 */
static const char *header_value(const tr_norm *norm, tr_pool *pool, const char *raw)
{
	size_t len = strlen(raw);
	char *out = tr_pool_alloc_uninit(pool, len + 1);
	size_t o = 0;
	bool plain = true, space = false;
	const unsigned char *p = (const unsigned char *)raw, *end = p + len;
	while (p < end) {
		unsigned char c = *p;
		if (c <= 0x20 || c == 0x7F) {
			space = o > 0;  /* folding, blanks and controls: one space */
			p++;
			continue;
		}
		if (space)
			out[o++] = ' ';
		space = false;
		if (c >= 0x80) {
			plain = false;
			out[o++] = (char)*p++;
			continue;
		}
		/* A plain stretch as it is; an encoded word ("=?") lies inside
		 * one, since '?' is plain too. */
		size_t run = plain_run(p, end);
		for (const unsigned char *eq = p; plain && (eq = memchr(eq, '=', run - (size_t)(eq - p))) != NULL; eq++) {
			if ((size_t)(eq - p) + 1 < run && eq[1] == '?')
				plain = false;
		}
		memcpy(out + o, p, run);
		o += run;
		p += run;
	}
	out[o] = '\0';
	if (plain)
		return out;
	char *decoded = g_mime_utils_header_decode_text(norm->options, out);
	const char *line = one_line(pool, decoded);
	g_free(decoded);
	return line;
}

static void read_headers(const tr_norm *norm, tr_msg *msg, GMimeObject *top)
{
	GMimeHeaderList *list = g_mime_object_get_header_list(top);
	int count = g_mime_header_list_get_count(list);
	size_t keep = (size_t)count < (size_t)norm->limits.header_count ? (size_t)count
	                                                                : (size_t)norm->limits.header_count;
	msg->headers = tr_pool_alloc_array(msg->pool, keep, sizeof(*msg->headers));
	bool auth_seen = false;
	for (int i = 0; i < count; i++) {
		GMimeHeader *h = g_mime_header_list_get_header_at(list, i);
		const char *name = g_mime_header_get_name(h);
		const char *raw = g_mime_header_get_raw_value(h);
		if (name == NULL || raw == NULL)
			continue;
		const char *value = header_value(norm, msg->pool, raw);
		if (msg->headers_count < keep) {
			msg->headers[msg->headers_count].name = one_line(msg->pool, name);
			msg->headers[msg->headers_count].value = value;
			msg->headers_count++;
		}
		/* Only names starting with these letters mean something below;
		 * lengths are compared before the names. */
		if (strchr("AaPpLlXxFfRr", name[0]) == NULL || name[0] == '\0')
			continue;
		size_t name_len = strlen(name);
#define NAME_IS(literal) (name_len == sizeof(literal) - 1 && g_ascii_strcasecmp(name, literal) == 0)
		if (NAME_IS("Auto-Submitted")) {
			if (g_ascii_strncasecmp(value, "no", 2) != 0 || (value[2] != '\0' && value[2] != ' ' && value[2] != ';'))
				msg->auto_flags |= TR_AUTO_SUBMITTED;
		} else if (NAME_IS("Precedence")) {
			if (has_prefix_ci(value, "bulk") || has_prefix_ci(value, "junk") ||
			    has_prefix_ci(value, "list") || has_prefix_ci(value, "auto_reply"))
				msg->auto_flags |= TR_AUTO_PRECEDENCE;
		} else if (has_prefix_ci(name, "List-")) {
			msg->auto_flags |= TR_AUTO_LIST;
		} else if (NAME_IS("X-Auto-Response-Suppress")) {
			msg->auto_flags |= TR_AUTO_SUPPRESS;
		} else if (NAME_IS("X-Autoreply") ||
		           NAME_IS("X-Autorespond") ||
		           NAME_IS("X-Autogenerated") ||
		           NAME_IS("X-AutoReply-From") ||
		           NAME_IS("X-Mail-Autoreply")) {
			msg->auto_flags |= TR_AUTO_AUTOREPLY_HEADER;
		} else if (NAME_IS("Feedback-ID") ||
		           NAME_IS("X-Campaign") ||
		           NAME_IS("X-Mailchimp-Campaign")) {
			msg->auto_flags |= TR_AUTO_FEEDBACK;
		} else if (NAME_IS("Return-Path")) {
			const char *v = value;
			while (*v == ' ')
				v++;
			char *addr = g_strdup(v);
			g_strstrip(addr);
			if (strcmp(addr, "<>") == 0 || *addr == '\0')
				msg->envelope_from = msg->envelope_from != NULL ? msg->envelope_from : "";
			else if (msg->envelope_from == NULL && msg->channel == TR_CHANNEL_FILE) {
				char *a = addr[0] == '<' ? addr + 1 : addr;
				char *gt = strchr(a, '>');
				if (gt != NULL)
					*gt = '\0';
				msg->envelope_from = tr_pool_strdup(msg->pool, g_strstrip(a));
			}
			g_free(addr);
		} else if (NAME_IS("Authentication-Results")) {
			if (norm->trusted_authserv_id != NULL || !auth_seen)
				parse_auth_results(msg, value, norm->trusted_authserv_id);
			auth_seen = true;
		}
#undef NAME_IS
	}
}

/* An address lowercased, on one line.  Nearly all are printable ASCII
 * without spaces: lowercased here, as g_utf8_strdown() would. */
static const char *lower_address(tr_pool *pool, const char *addr)
{
	size_t len = 0;
	while (addr[len] > 0x20 && addr[len] < 0x7F)
		len++;
	if (addr[len] == '\0') {
		char *out = tr_pool_alloc_uninit(pool, len + 1);
		for (size_t i = 0; i <= len; i++)
			out[i] = g_ascii_tolower(addr[i]);
		return out;
	}
	char *lower = g_utf8_strdown(addr, -1);
	const char *line = one_line(pool, lower);
	g_free(lower);
	return line;
}

static void add_addresses(const tr_norm *norm, tr_msg *msg, InternetAddressList *list,
                          GPtrArray *scratch, int depth)
{
	if (list == NULL || depth > 2)
		return;
	int n = internet_address_list_length(list);
	for (int i = 0; i < n && (int64_t)scratch->len < norm->limits.address_count; i++) {
		InternetAddress *ia = internet_address_list_get_address(list, i);
		if (INTERNET_ADDRESS_IS_GROUP(ia)) {
			add_addresses(norm, msg, internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia)),
			              scratch, depth + 1);
			continue;
		}
		if (!INTERNET_ADDRESS_IS_MAILBOX(ia))
			continue;
		tr_addr *a = tr_pool_alloc(msg->pool, sizeof(*a));
		const char *addr = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia));
		a->address = lower_address(msg->pool, addr != NULL ? addr : "");
		const char *name = internet_address_get_name(ia);
		a->name = name != NULL && *name != '\0' ? one_line(msg->pool, name) : NULL;
		g_ptr_array_add(scratch, a);
	}
}

static void read_address_list(const tr_norm *norm, tr_msg *msg, InternetAddressList *list,
                              tr_addr_list *out)
{
	GPtrArray *scratch = g_ptr_array_new();
	add_addresses(norm, msg, list, scratch, 0);
	out->count = scratch->len;
	out->items = tr_pool_alloc_array(msg->pool, scratch->len, sizeof(tr_addr));
	for (guint i = 0; i < scratch->len; i++)
		out->items[i] = *(tr_addr *)g_ptr_array_index(scratch, i);
	g_ptr_array_free(scratch, TRUE);
}

static char *strip_angle(tr_pool *pool, const char *id)
{
	if (id == NULL)
		return NULL;
	while (*id == ' ' || *id == '<')
		id++;
	size_t len = strcspn(id, ">");
	while (len > 0 && id[len - 1] == ' ')
		len--;
	if (len == 0)
		return NULL;
	return one_line(pool, tr_pool_strndup(pool, id, len));
}

static void read_threading(const tr_norm *norm, tr_msg *msg, GMimeMessage *message)
{
	msg->message_id = strip_angle(msg->pool, g_mime_message_get_message_id(message));
	const char *irt = g_mime_object_get_header(GMIME_OBJECT(message), "In-Reply-To");
	if (irt != NULL) {
		GMimeReferences *refs = g_mime_references_parse(norm->options, irt);
		if (refs != NULL && g_mime_references_length(refs) > 0)
			msg->in_reply_to = strip_angle(msg->pool, g_mime_references_get_message_id(refs, 0));
		if (refs != NULL)
			g_mime_references_free(refs);
	}
	const char *refs_header = g_mime_object_get_header(GMIME_OBJECT(message), "References");
	GMimeReferences *refs = refs_header != NULL ? g_mime_references_parse(norm->options, refs_header) : NULL;
	if (refs != NULL) {
		int n = g_mime_references_length(refs);
		int first = n > norm->limits.reference_count ? n - (int)norm->limits.reference_count : 0;
		msg->references = tr_pool_alloc_array(msg->pool, (size_t)(n - first), sizeof(char *));
		for (int i = first; i < n; i++) {
			char *id = strip_angle(msg->pool, g_mime_references_get_message_id(refs, i));
			if (id != NULL)
				msg->references[msg->references_count++] = id;
		}
		g_mime_references_free(refs);
	}
}

/* ---------------------------------------------------------------- MIME walk */

struct walk {
	const tr_norm *norm;
	tr_msg *msg;
	GPtrArray *bounced;
	GString *plain;     /* text/plain of the message itself */
	GString *html;      /* text/html of the message itself */
	GString *embedded;  /* text of the first attached message, last resort */
	GPtrArray *attachments;
	unsigned parts;
	bool stopped;       /* part limit reached */
	bool repaired;
};

static bool is_utf8_compatible(const char *charset)
{
	return charset == NULL || g_ascii_strcasecmp(charset, "utf-8") == 0 ||
	       g_ascii_strcasecmp(charset, "utf8") == 0 || g_ascii_strcasecmp(charset, "us-ascii") == 0 ||
	       g_ascii_strcasecmp(charset, "ascii") == 0;
}

/*
 * The text of a part as UTF-8 (g_free).  GMime's own conversion silently
 * drops bytes that are invalid in the declared charset, so the transfer
 * encoding is undone here and the charset handled by us: UTF-8 and ASCII
 * are validated in place; others go through iconv; whatever fails (an
 * unknown charset, invalid sequences) is decoded by GMime's 8-bit guesser
 * with the fallback charsets, so no byte is lost.
 */
static char *part_text(struct walk *w, GMimePart *part, size_t *len_r)
{
	*len_r = 0;
	GMimeDataWrapper *content = g_mime_part_get_content(part);
	if (content == NULL)
		return NULL;
	GMimeStream *mem = g_mime_stream_mem_new();
	g_mime_data_wrapper_write_to_stream(content, mem);
	GByteArray *bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
	const char *data = (const char *)bytes->data;
	size_t len = bytes->len;
	const char *charset = g_mime_object_get_content_type_parameter(GMIME_OBJECT(part), "charset");
	char *text = NULL;
	if (len == 0) {
		text = g_strdup("");
	} else if (is_utf8_compatible(charset)) {
		if (utf8_valid(data, len))  /* no NUL either */
			text = g_strndup(data, len);
	} else if (g_ascii_strcasecmp(g_mime_charset_iconv_name(charset), "iso-8859-1") == 0) {
		/* Latin-1 is U+0000..U+00FF byte for byte: what iconv makes of
		 * it, without iconv's per-character cost. */
		char *out = g_malloc(2 * len + 1);
		size_t o = 0;
		for (size_t i = 0; i < len; i++) {
			unsigned char b = (unsigned char)data[i];
			if (b < 0x80) {
				out[o++] = (char)b;
			} else {
				out[o++] = (char)(0xC0 | (b >> 6));
				out[o++] = (char)(0x80 | (b & 0x3F));
			}
		}
		out[o] = '\0';
		text = out;
		if (!utf8_valid(text, o))  /* no NUL either */
			g_clear_pointer(&text, g_free);
	} else {
		/* GMime keeps a cache of open converters: g_convert() would
		 * load and unload a gconv module for every message. */
		iconv_t cd = g_mime_iconv_open("UTF-8", g_mime_charset_iconv_name(charset));
		if (cd != (iconv_t)-1) {
			gsize written = 0;
			text = g_convert_with_iconv(data, (gssize)len, (GIConv)cd, NULL, &written, NULL);
			g_mime_iconv_close(cd);
			if (text != NULL && !utf8_valid(text, written))  /* no NUL either */
				g_clear_pointer(&text, g_free);
		}
	}
	if (text == NULL) {
		/* The 8-bit guesser stops at NUL: there must be none. */
		char *copy = g_malloc(len + 1);
		for (size_t i = 0; i < len; i++)
			copy[i] = data[i] != '\0' ? data[i] : ' ';
		copy[len] = '\0';
		text = g_mime_utils_decode_8bit(w->norm->options, copy, len);
		g_free(copy);
		w->repaired = true;
		if (!g_utf8_validate(text, -1, NULL)) {
			char *fixed = g_utf8_make_valid(text, -1);
			g_free(text);
			text = fixed;
		}
	}
	g_object_unref(mem);
	*len_r = strlen(text);
	return text;
}

static size_t decoded_size(GMimePart *part)
{
	GMimeDataWrapper *content = g_mime_part_get_content(part);
	if (content == NULL)
		return 0;
	GMimeStream *null = g_mime_stream_null_new();
	g_mime_data_wrapper_write_to_stream(content, null);
	size_t size = (size_t)GMIME_STREAM_NULL(null)->written;
	g_object_unref(null);
	return size;
}

static void add_attachment(struct walk *w, const char *filename, const char *type, size_t size)
{
	tr_attachment *a = tr_pool_alloc(w->msg->pool, sizeof(*a));
	a->filename = filename != NULL ? one_line(w->msg->pool, filename) : NULL;
	a->content_type = type;
	a->size = size;
	g_ptr_array_add(w->attachments, a);
}

static char *mime_type(tr_pool *pool, GMimeObject *obj)
{
	GMimeContentType *ct = g_mime_object_get_content_type(obj);
	const char *type = ct != NULL ? g_mime_content_type_get_media_type(ct) : NULL;
	const char *sub = ct != NULL ? g_mime_content_type_get_media_subtype(ct) : NULL;
	char *s = tr_pool_printf(pool, "%s/%s", type ? type : "text", sub ? sub : "plain");
	for (char *q = s; *q != '\0'; q++)
		*q = g_ascii_tolower(*q);
	return one_line(pool, s);
}

static void append_text(GString *buf, const char *text, size_t len, size_t cap)
{
	if (buf->len >= cap)
		return;
	if (buf->len > 0)
		g_string_append_c(buf, '\n');
	g_string_append_len(buf, text, (gssize)(len < cap - buf->len ? len : cap - buf->len));
}

static void walk(struct walk *w, GMimeObject *obj, unsigned depth, bool embedded);

/* Per-recipient blocks of a DSN (RFC 3464): permanent failures only. */
static void read_delivery_status(struct walk *w, GMimePart *part)
{
	GMimeDataWrapper *content = g_mime_part_get_content(part);
	if (content == NULL)
		return;
	GMimeStream *mem = g_mime_stream_mem_new();
	g_mime_data_wrapper_write_to_stream(content, mem);
	GByteArray *bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
	size_t len = MIN(bytes->len, (guint)65536);
	if (len == 0) {
		g_object_unref(mem);
		return;
	}
	char *text = g_strndup((const char *)bytes->data, len);
	g_object_unref(mem);
	char *recipient = NULL;
	bool failed = false, permanent = false;
	char **lines = g_strsplit(text, "\n", -1);
	for (char **l = lines;; l++) {
		char *line = *l != NULL ? g_strstrip(*l) : NULL;
		if (line == NULL || *line == '\0') {
			/* End of a block. */
			if (recipient != NULL && failed && permanent && w->bounced->len < 100)
				g_ptr_array_add(w->bounced, tr_pool_strdup(w->msg->pool, recipient));
			g_clear_pointer(&recipient, g_free);
			failed = permanent = false;
			if (line == NULL)
				break;
			continue;
		}
		if (g_ascii_strncasecmp(line, "Final-Recipient:", 16) == 0) {
			const char *v = strchr(line + 16, ';');
			v = v != NULL ? v + 1 : line + 16;
			while (*v == ' ' || *v == '<')
				v++;
			g_free(recipient);
			recipient = g_ascii_strdown(v, (gssize)strcspn(v, "> \t\r"));
			if (strchr(recipient, '@') == NULL || !g_utf8_validate(recipient, -1, NULL))
				g_clear_pointer(&recipient, g_free);
		} else if (g_ascii_strncasecmp(line, "Action:", 7) == 0) {
			failed = strstr(line + 7, "failed") != NULL;
		} else if (g_ascii_strncasecmp(line, "Status:", 7) == 0) {
			const char *v = line + 7;
			while (*v == ' ')
				v++;
			permanent = *v == '5';
		}
	}
	g_strfreev(lines);
	g_free(recipient);
	g_free(text);
}

static void walk_leaf(struct walk *w, GMimePart *part, bool embedded)
{
	tr_msg *msg = w->msg;
	const char *type = mime_type(msg->pool, GMIME_OBJECT(part));
	const char *disposition = g_mime_object_get_disposition(GMIME_OBJECT(part));
	const char *filename = g_mime_part_get_filename(part);
	bool is_attachment = disposition != NULL && g_ascii_strcasecmp(disposition, "attachment") == 0;
	bool is_text = strcmp(type, "text/plain") == 0 || strcmp(type, "text/html") == 0;
	if (is_text && filename != NULL && disposition == NULL)
		is_attachment = true;  /* a named text file without disposition */
	if (strcmp(type, "message/delivery-status") == 0 || strcmp(type, "message/global-delivery-status") == 0) {
		msg->auto_flags |= TR_AUTO_BOUNCE;
		read_delivery_status(w, part);
	}
	if (!is_text || is_attachment) {
		add_attachment(w, filename, type, decoded_size(part));
		return;
	}
	/* Bytes kept per buffer: enough for text_chars characters of UTF-8. */
	size_t cap = (size_t)w->norm->limits.text_chars * 4 + 16;
	size_t len;
	char *text = part_text(w, part, &len);
	if (text == NULL)
		return;
	if (embedded)
		append_text(w->embedded, text, len, cap);
	else if (strcmp(type, "text/plain") == 0)
		append_text(w->plain, text, len, cap);
	else
		append_text(w->html, text, len, (size_t)w->norm->limits.html_bytes);
	g_free(text);
}

/* Is this part a text/plain with visible content? */
static bool alternative_has_plain(struct walk *w, GMimeObject *obj)
{
	if (!GMIME_IS_PART(obj))
		return false;
	const char *type = mime_type(w->msg->pool, obj);
	if (strcmp(type, "text/plain") != 0)
		return false;
	size_t len;
	char *text = part_text(w, GMIME_PART(obj), &len);
	bool visible = false;
	for (size_t i = 0; i < len && !visible; i++)
		visible = !g_ascii_isspace(text[i]);
	g_free(text);
	return visible;
}

static void walk_multipart(struct walk *w, GMimeMultipart *mp, unsigned depth, bool embedded)
{
	GMimeContentType *ct = g_mime_object_get_content_type(GMIME_OBJECT(mp));
	const char *sub = ct != NULL ? g_mime_content_type_get_media_subtype(ct) : NULL;
	int n = g_mime_multipart_get_count(mp);
	if (sub != NULL && g_ascii_strcasecmp(sub, "report") == 0 && depth == 0 && !embedded)
		w->msg->auto_flags |= TR_AUTO_REPORT;
	if (sub != NULL && g_ascii_strcasecmp(sub, "alternative") == 0) {
		/* One view of the same content: plain text if it says anything,
		 * else the richest other part (the last one, per RFC 2046). */
		int chosen = -1;
		for (int i = 0; i < n && chosen < 0; i++) {
			if (alternative_has_plain(w, g_mime_multipart_get_part(mp, i)))
				chosen = i;
		}
		if (chosen < 0)
			chosen = n - 1;
		if (chosen >= 0)
			walk(w, g_mime_multipart_get_part(mp, chosen), depth + 1, embedded);
		return;
	}
	for (int i = 0; i < n && !w->stopped; i++)
		walk(w, g_mime_multipart_get_part(mp, i), depth + 1, embedded);
}

static void walk(struct walk *w, GMimeObject *obj, unsigned depth, bool embedded)
{
	tr_msg *msg = w->msg;
	if (obj == NULL || w->stopped)
		return;
	if ((int64_t)depth > w->norm->limits.mime_depth) {
		msg->flags |= TR_MSG_TRUNCATED_DEPTH;
		return;
	}
	if (depth > msg->mime_depth)
		msg->mime_depth = depth;
	if (GMIME_IS_MULTIPART(obj)) {
		walk_multipart(w, GMIME_MULTIPART(obj), depth, embedded);
		return;
	}
	if ((int64_t)++w->parts > w->norm->limits.mime_parts) {
		msg->flags |= TR_MSG_TRUNCATED_PARTS;
		w->stopped = true;
		return;
	}
	msg->part_count = w->parts;
	if (GMIME_IS_MESSAGE_PART(obj)) {
		GMimeMessage *inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
		const char *subject = inner != NULL ? g_mime_message_get_subject(inner) : NULL;
		add_attachment(w, subject, "message/rfc822", 0);
		if (inner != NULL)
			walk(w, g_mime_message_get_mime_part(inner), depth + 1, true);
		return;
	}
	if (GMIME_IS_PART(obj)) {
		walk_leaf(w, GMIME_PART(obj), embedded);
		return;
	}
	add_attachment(w, NULL, mime_type(msg->pool, obj), 0);  /* message/partial and the like */
}

/* ---------------------------------------------------------------- finish */

/* Text, limits, quote split, language, hash: shared by MIME and plain input. */
static void finish_text(const tr_norm *norm, tr_msg *msg, const char *raw_text, size_t raw_len)
{
	bool repaired = false;
	const char *valid = raw_text;
	if (!utf8_valid(raw_text, raw_len)) {
		char *decoded = g_mime_utils_decode_8bit(norm->options, raw_text, raw_len);
		valid = valid_utf8(msg->pool, decoded, strlen(decoded), &repaired);
		g_free(decoded);
		raw_len = strlen(valid);
		msg->flags |= TR_MSG_CHARSET_REPAIRED;
	}
	size_t len;
	char *text = tr_norm_whitespace(msg->pool, valid, raw_len, &len);
	if (cut_chars(text, &len, norm->limits.text_chars))
		msg->flags |= TR_MSG_TRUNCATED_TEXT;
	msg->text = text;
	tr_quote_parts parts;
	tr_quote_split(msg->pool, text, len, &parts);
	msg->text_new = parts.new_text;
	msg->text_quoted = parts.quoted;
	msg->text_signature = parts.signature;
	msg->quote_marker = parts.marker;
	if (norm->lang != NULL) {
		const char *sample = *msg->text_new != '\0' ? msg->text_new : msg->text;
		size_t sample_len = strlen(sample);
		if (sample_len < 40 && *msg->subject != '\0') {
			sample = tr_pool_printf(msg->pool, "%s\n%s", msg->subject, sample);
			sample_len = strlen(sample);
		}
		msg->language = tr_lang_detect(norm->lang, sample, sample_len);
	}
	tr_msg_content_hash(msg);
}

tr_msg *tr_norm_text(const tr_norm *norm, tr_channel channel, const char *from_address,
                     const char *text, size_t len)
{
	tr_msg *msg = tr_msg_new(channel);
	msg->size = len;
	if (from_address != NULL) {
		char *lower = g_utf8_strdown(from_address, -1);
		msg->from.address = one_line(msg->pool, lower);
		g_free(lower);
		sender_indicators(msg, msg->from.address);
	}
	if ((int64_t)len > norm->limits.message_bytes) {
		len = (size_t)norm->limits.message_bytes;
		msg->flags |= TR_MSG_TRUNCATED_SIZE;
	}
	char *copy = tr_pool_strndup(msg->pool, text, len);
	if (memchr(text, '\0', len) != NULL) {
		for (size_t i = 0; i < len; i++) {
			if (copy[i] == '\0')
				copy[i] = ' ';
		}
		msg->flags |= TR_MSG_NUL_BYTES;
	}
	msg->text_source = "text/plain";
	finish_text(norm, msg, copy, len);
	return msg;
}

tr_msg *tr_norm_parse(const tr_norm *norm, tr_channel channel, const char *data, size_t len,
                      GError **error)
{
	if (len == 0) {
		g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "empty message");
		return NULL;
	}
	tr_msg *msg = tr_msg_new(channel);
	msg->size = len;
	size_t raw_len;
	bool has_headers;
	const char *raw = prepare_raw(norm, msg, data, len, &raw_len, &has_headers);

	GMimeMessage *message = NULL;
	GByteArray *borrowed = NULL;
	if (has_headers && raw_len > 0) {
		/* Let GMime read our buffer in place: no copy of a 25 MB message. */
		GByteArray *array = g_byte_array_new_take((guint8 *)raw, raw_len);
		GMimeStream *stream = g_mime_stream_mem_new_with_byte_array(array);
		g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(stream), FALSE);
		GMimeParser *parser = g_mime_parser_new_with_stream(stream);
		g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
		message = g_mime_parser_construct_message(parser, norm->options);
		g_object_unref(parser);
		g_object_unref(stream);
		/* Parts may still read the buffer through the stream: the array
		 * header is released only after the message (see the end). */
		borrowed = array;
	}
	if (message == NULL) {
		/* Not a message we can parse: keep every byte as plain text. */
		msg->flags |= TR_MSG_NO_HEADERS;
		msg->text_source = "text/plain";
		finish_text(norm, msg, raw, raw_len);
		if (borrowed != NULL)
			g_byte_array_free(borrowed, FALSE);
		return msg;
	}

	read_headers(norm, msg, GMIME_OBJECT(message));
	msg->subject = one_line(msg->pool, g_mime_message_get_subject(message));
	if (msg->subject == NULL)
		msg->subject = "";
	GDateTime *date = g_mime_message_get_date(message);
	if (date != NULL) {
		msg->date = g_date_time_to_unix(date);
		msg->date_tz_minutes = (int)(g_date_time_get_utc_offset(date) / G_TIME_SPAN_MINUTE);
	}
	tr_addr_list from = { 0 };
	read_address_list(norm, msg, g_mime_message_get_from(message), &from);
	if (from.count > 0)
		msg->from = from.items[0];
	read_address_list(norm, msg, g_mime_message_get_to(message), &msg->to);
	read_address_list(norm, msg, g_mime_message_get_cc(message), &msg->cc);
	read_address_list(norm, msg, g_mime_message_get_reply_to(message), &msg->reply_to);
	read_threading(norm, msg, message);
	if (*msg->from.address != '\0')
		sender_indicators(msg, msg->from.address);
	sender_indicators(msg, msg->envelope_from);
	subject_indicators(msg);

	struct walk w = {
		.norm = norm, .msg = msg,
		.plain = g_string_new(NULL), .html = g_string_new(NULL), .embedded = g_string_new(NULL),
		.attachments = g_ptr_array_new(), .bounced = g_ptr_array_new(),
	};
	walk(&w, g_mime_message_get_mime_part(message), 0, false);
	msg->bounced_count = w.bounced->len;
	msg->bounced = tr_pool_alloc_array(msg->pool, w.bounced->len + 1, sizeof(char *));
	for (guint i = 0; i < w.bounced->len; i++)
		msg->bounced[i] = g_ptr_array_index(w.bounced, i);
	g_ptr_array_free(w.bounced, TRUE);
	if (w.repaired)
		msg->flags |= TR_MSG_CHARSET_REPAIRED;
	msg->attachments_count = w.attachments->len;
	msg->attachments = tr_pool_alloc_array(msg->pool, w.attachments->len, sizeof(tr_attachment));
	for (guint i = 0; i < w.attachments->len; i++)
		msg->attachments[i] = *(tr_attachment *)g_ptr_array_index(w.attachments, i);

	bool plain_visible = false;
	for (gsize i = 0; i < w.plain->len && !plain_visible; i++)
		plain_visible = !g_ascii_isspace(w.plain->str[i]);
	const char *body = "";
	size_t body_len = 0;
	if (plain_visible) {
		body = w.plain->str;
		body_len = w.plain->len;
		msg->text_source = "text/plain";
	} else if (w.html->len > 0) {
		gboolean truncated = FALSE;
		body = tr_html_to_text(msg->pool, w.html->str, w.html->len,
		                       (size_t)norm->limits.text_chars * 4, &truncated);
		body_len = strlen(body);
		if (truncated || (int64_t)w.html->len >= norm->limits.html_bytes)
			msg->flags |= TR_MSG_TRUNCATED_TEXT;
		msg->flags |= TR_MSG_HTML_CONVERTED;
		msg->text_source = "text/html";
	} else if (w.embedded->len > 0) {
		body = w.embedded->str;
		body_len = w.embedded->len;
		msg->text_source = "message/rfc822";
	} else {
		msg->flags |= TR_MSG_NO_TEXT;
	}
	finish_text(norm, msg, body, body_len);

	g_string_free(w.plain, TRUE);
	g_string_free(w.html, TRUE);
	g_string_free(w.embedded, TRUE);
	g_ptr_array_free(w.attachments, TRUE);
	g_object_unref(message);
	g_byte_array_free(borrowed, FALSE);
	return msg;
}
