/*
 * normalize.h — any RFC 5322 / MIME message to one tr_msg (tr_norm_*)
 *
 * GMime parses, libxml2 turns HTML into text, quote.c sets quoted history
 * and signatures apart, lang.c guesses the language.  The normalizer never
 * drops a message: broken MIME, unknown charsets, missing headers and
 * oversized input all still give a tr_msg, truncated and flagged (msg->flags)
 * where a named limit was reached.
 *
 * Call tr_norm_global_init() once, before any thread starts (GMime needs it).
 * A tr_norm is read-only after creation and may be shared between threads.
 */
#ifndef TR_NORMALIZE_H
#define TR_NORMALIZE_H

#include <glib.h>
#include <stdint.h>

#include "core/conf.h"
#include "core/lang.h"
#include "core/msg.h"

/* Named limits, group [limits] of triage.conf; see tr_norm_limits_table. */
typedef struct {
	int64_t message_bytes;   /* input beyond this is not parsed */
	int64_t header_bytes;    /* header block beyond this is dropped */
	int64_t mime_depth;      /* nesting beyond this is not walked */
	int64_t mime_parts;      /* parts beyond this are not examined */
	int64_t text_chars;      /* normalized text kept and classified */
	int64_t html_bytes;      /* HTML given to the HTML-to-text converter */
	int64_t header_count;    /* decoded headers kept for header rules */
	int64_t address_count;   /* addresses kept per To/Cc/Reply-To */
	int64_t reference_count; /* References ids kept (the newest) */
} tr_norm_limits;

extern const tr_conftab tr_norm_limits_table[];

typedef struct tr_norm tr_norm;

void tr_norm_global_init(void);

/*
 * limits: NULL for the defaults.  lang: the language detector to use, or
 * NULL for none (msg->language stays NULL); borrowed, must outlive the
 * normalizer.  trusted_authserv_id: when set, only Authentication-Results
 * headers with this authserv-id are read; otherwise only the topmost one.
 */
tr_norm *tr_norm_new(const tr_norm_limits *limits, tr_lang *lang, const char *trusted_authserv_id);
void tr_norm_free(tr_norm **norm);
const tr_norm_limits *tr_norm_get_limits(const tr_norm *norm);

/*
 * Normalize one raw message.  Returns a new tr_msg (free with tr_msg_free)
 * — even for garbage input, which becomes a text-only message flagged
 * no_headers.  Returns NULL with *error set only for empty input.
 */
tr_msg *tr_norm_parse(const tr_norm *norm, tr_channel channel, const char *data, size_t len,
                      GError **error);

/*
 * Normalize plain text (e.g. a chat message): whitespace, quotes,
 * signature, language; no MIME.  from_address may be NULL.
 */
tr_msg *tr_norm_text(const tr_norm *norm, tr_channel channel, const char *from_address,
                     const char *text, size_t len);

/*
 * Whitespace normalization used for every text: CRLF/CR to LF, Unicode
 * spaces to ' ', zero-width and control characters removed, runs of spaces
 * collapsed, lines trimmed, at most one blank line in a row, no leading or
 * trailing blank lines.  Input must be valid UTF-8.  Result in pool.
 */
char *tr_norm_whitespace(tr_pool *pool, const char *text, size_t len, size_t *len_r);

#endif
