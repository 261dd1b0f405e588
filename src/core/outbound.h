/*
 * outbound.h — what we send: templates, help articles, composed mail
 * (tr_outbound_*)
 *
 * Templates live in one directory ([outbound] templates):
 *   mail/NAME.LANG.tmpl   header section + body (template.h file format)
 *   chat/NAME.LANG.tmpl   one body (XMPP posts and chat replies)
 * A template is looked up in the reply language, then in English.  Every
 * template is compiled and checked against the variables the renderer
 * provides (tr_outbound_known_variables) when the configuration loads: an
 * unknown variable is a check-config error, not an empty string at run
 * time.
 *
 * Composed mail: From (the support address), To, Subject with the ticket
 * tag, Date, Message-ID (stable per outbox action), In-Reply-To and
 * References to the customer's message, Auto-Submitted, X-Auto-Response-
 * Suppress: All, our loop marker X-Triage-Loop, Precedence: bulk on
 * acknowledgments, text/plain UTF-8 in quoted-printable, CRLF line ends,
 * 7-bit clean; forwards carry the original as message/rfc822 (the bytes
 * as received — never re-serialised from a parse).
 *
 * A loaded tr_outbound is read-only and may be shared by threads.
 */
#ifndef TR_OUTBOUND_H
#define TR_OUTBOUND_H

#include <glib.h>
#include <json-glib/json-glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/conf.h"

typedef struct tr_outbound tr_outbound;

/* Template names the product renders (mail and chat). */
extern const char *const tr_outbound_mail_templates[];
extern const char *const tr_outbound_chat_templates[];
/* Every variable a template may read (dotted, "[]" for list items). */
extern const char *const tr_outbound_known_variables[];

/*
 * Load templates and articles named by the main config: [outbound]
 * templates (directory), articles (file, optional), from, name.  Every
 * template problem goes to diag with file:line:col.  NULL on error.
 */
tr_outbound *tr_outbound_load(const tr_conf *main, tr_diag *diag);
void tr_outbound_free(tr_outbound **outbound);

/* "Support <support@example.test>" as configured. */
const char *tr_outbound_from(const tr_outbound *outbound);
const char *tr_outbound_from_address(const tr_outbound *outbound);

/*
 * Help articles for a decision: those mapped to the rules that fired
 * (first) and to the category, at most max, in the reply language when a
 * translated title exists.  Returns a JSON array node ([{title, url}]).
 */
JsonNode *tr_outbound_articles(const tr_outbound *outbound, const char *category,
                               const char *const *rules, const char *lang, unsigned max);

typedef struct {
	const char *template_name;   /* "ack", "escalation", ... */
	const char *lang;            /* reply language; NULL = "en" */
	const char *to;              /* recipient address */
	const char *message_id;      /* ours, without <> */
	const char *in_reply_to;     /* the customer's Message-ID, without <>, or NULL */
	const char *const *references; /* oldest first, without <> (NULL-terminated), or NULL */
	const char *auto_submitted;  /* "auto-replied" (acks) or "auto-generated" */
	bool bulk;                   /* Precedence: bulk */
	const char *attach;          /* original message for message/rfc822, or NULL */
	size_t attach_len;
	int64_t date;                /* Unix time of the Date header */
} tr_outbound_mail;

/* Render and compose: the message as RFC 5322 bytes with CRLF (g_free);
 * NULL with *error when the template fails (limit) or is missing. */
char *tr_outbound_compose(const tr_outbound *outbound, JsonNode *context, const tr_outbound_mail *mail,
                          size_t *len_r, GError **error);

/* Render a chat text (g_free), NULL with *error. */
char *tr_outbound_chat(const tr_outbound *outbound, const char *template_name, const char *lang,
                       JsonNode *context, GError **error);

/* Is there a template of that kind (mail or chat) in any language? */
bool tr_outbound_has(const tr_outbound *outbound, bool chat, const char *template_name);

#endif
