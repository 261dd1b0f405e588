/*
 * mailstore.h — the ticket store behind the mail channels (tr_mailstore_*)
 *
 * The LMTP listener and the milter commit through a function pointer with
 * a context (tr_lmtp_ingest_fn, tr_milter_ingest_fn, tr_milter_reply_fn),
 * called from many connection threads at once.  This is that context and
 * those functions: a pool of store connections, each used by one caller
 * at a time, opened on demand (a store that cannot be opened is a
 * temporary failure for that message, not a reason to stop), with the
 * engine in force taken from the slot for every message.
 *
 *   tr_mailstore *ms = tr_mailstore_new(&store_settings, engines, &outbox);
 *   tr_lmtp_store hook = { tr_mailstore_ingest, ms };
 *   tr_milter_store mhook = { tr_mailstore_ingest, tr_mailstore_reply, ms };
 *
 * Thread-safe.  Free only after every channel using it has stopped.
 */
#ifndef TR_MAILSTORE_H
#define TR_MAILSTORE_H

#include <glib.h>
#include <stdbool.h>

#include "core/engine.h"
#include "store/ingest.h"
#include "store/outbox.h"
#include "store/store.h"

typedef struct tr_mailstore tr_mailstore;

/* settings and outbox options are copied; engines is borrowed. */
tr_mailstore *tr_mailstore_new(const tr_store_settings *settings, tr_engine_slot *engines,
                               const tr_outbox_options *outbox);
void tr_mailstore_free(tr_mailstore **mailstore);

/* Called after every commit that may have queued outbox actions (wake the
 * outbox worker); from the committing thread. */
void tr_mailstore_on_commit(tr_mailstore *mailstore, void (*fn)(void *user_data), void *user_data);

/* Open one connection now: false with *error when the store cannot be
 * opened (for a start-up warning; the channels keep running). */
bool tr_mailstore_probe(tr_mailstore *mailstore, GError **error);

/* tr_ingest_message() on a pooled connection (context: the tr_mailstore). */
bool tr_mailstore_ingest(void *context, const tr_ingest_input *input, tr_ingest_result *result,
                         GError **error);

/*
 * An agent's answer on ticket: when the ticket exists and the envelope
 * sender's domain is one of the store's agent domains ([tickets]
 * agent_domains), the message is ingested (the store threads it by its
 * tag and records the first response) and *recorded_r is true; otherwise
 * nothing is recorded (true, *recorded_r false) — an agent's mail never
 * opens a ticket.
 */
bool tr_mailstore_reply(void *context, const char *ticket, const tr_ingest_input *input, bool *recorded_r,
                        GError **error);

#endif
