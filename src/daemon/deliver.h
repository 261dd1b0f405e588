/*
 * deliver.h — the outbox worker for mail (tr_deliver_*)
 *
 * Claims due smtp rows of the outbox, renders each (store/context.h),
 * hands it to the relay (channels/smtp.h) and records the outcome:
 * sent; temporary (retry with exponential backoff and jitter, until the
 * give-up age); permanent (failed: an event for the operator; a customer
 * address that does not exist stops further acknowledgments to it);
 * ambiguous (the relay may have it: one marked retry after a long delay,
 * then a human decides).  Rows a crashed worker left half-sent are
 * recovered as ambiguous.  Deliveries survive restarts: the outbox is the
 * queue.
 */
#ifndef TR_DELIVER_H
#define TR_DELIVER_H

#include <stdbool.h>
#include <stdint.h>

#include "channels/smtp.h"
#include "core/engine.h"
#include "store/store.h"

typedef struct tr_deliver tr_deliver;

typedef struct {
	unsigned sent, temporary, permanent, ambiguous, render_failed;
} tr_deliver_stats;

/* All borrowed; envelope_from "" means the null reverse path. */
tr_deliver *tr_deliver_new(tr_store *store, const tr_engine *engine, const tr_smtp_client *smtp,
                           const tr_smtp_limits *limits, const char *envelope_from, const char *worker);
void tr_deliver_free(tr_deliver **deliver);
void tr_deliver_set_engine(tr_deliver *deliver, const tr_engine *engine);

/* Rows left in 'sending' by a worker that died become ambiguous retries. */
int tr_deliver_recover(tr_deliver *deliver, int64_t now, GError **error);

/* Deliver due rows, at most max (0: all due).  Returns false only on a
 * store error; delivery failures are recorded, counted in stats. */
bool tr_deliver_run(tr_deliver *deliver, int64_t now, unsigned max, tr_deliver_stats *stats,
                    GError **error);

#endif
