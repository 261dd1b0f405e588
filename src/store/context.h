/*
 * context.h — what a template sees for one outbox action (tr_context_*)
 *
 * Reads the ticket, the message the action is about, its decision, the
 * thread and the people involved, and builds the JSON context whose
 * variables are listed in tr_outbound_known_variables, plus what the mail
 * composer needs (threading ids, the original for forwards).
 */
#ifndef TR_CONTEXT_H
#define TR_CONTEXT_H

#include <json-glib/json-glib.h>

#include "core/engine.h"
#include "store/outbox.h"
#include "store/store.h"

typedef struct {
	JsonNode *context;    /* owned */
	char *lang;           /* reply language */
	char *in_reply_to;    /* the customer's Message-ID, or NULL */
	char **references;    /* NULL-terminated, or NULL */
	char *attach;         /* the original message (forwards, incidents), or NULL */
	size_t attach_len;
	char *recipient_name; /* display name of the recipient, or NULL */
} tr_context;

/* Build the context of one action; false with *error when its ticket or
 * message is gone (the action cannot be rendered). */
bool tr_context_for_action(tr_store *store, const tr_engine *engine, const tr_outbox_row *row, int64_t now,
                           tr_context *out, GError **error);
void tr_context_clear(tr_context *ctx);

/*
 * Render one action as it goes out: for smtp rows the whole composed mail
 * (RFC 5322, CRLF) with From, To, threading and loop headers; for xmpp
 * rows the chat text.  g_free the result; NULL with *error.
 */
char *tr_context_render(tr_store *store, const tr_engine *engine, const tr_outbox_row *row, int64_t now,
                        size_t *len_r, GError **error);

#endif
