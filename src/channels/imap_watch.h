/*
 * imap_watch.h — the IMAP channel: one thread watching one folder
 * (tr_imap_watch_*)
 *
 * Catch-up on start, then IDLE (or polling): every message that is not
 * yet triaged — whether a human read it or not — is fetched with
 * BODY.PEEK[], ingested in batches (one transaction per batch), and only
 * after the commit marked as configured (keyword $Triaged, \Seen, MOVE).
 * A message that cannot be ingested (empty, over the size limit, refused
 * by the server) goes to the quarantine folder and the rest flow on.
 * UIDVALIDITY is checkpointed in the store; a change means a rescan, which
 * the store's dedup makes harmless.  Network errors reconnect with
 * exponential backoff; authentication and certificate failures are logged
 * loudly and retried slowly.
 */
#ifndef TR_IMAP_WATCH_H
#define TR_IMAP_WATCH_H

#include "channels/imap.h"
#include "core/engine.h"
#include "store/outbox.h"
#include "store/store.h"

typedef struct tr_imap_watch tr_imap_watch;

typedef struct {
	const tr_imap_config *imap;            /* copied */
	const tr_store_settings *store;        /* copied: the thread opens its own connection */
	tr_engine_slot *engines;               /* borrowed: the engine in force */
	const tr_outbox_options *outbox;       /* copied */
	unsigned batch;                        /* messages per transaction (default 32) */
	/* Called after a commit that queued actions (wake the outbox worker). */
	void (*on_commit)(void *user_data);
	void *user_data;
} tr_imap_watch_options;

/* Start the thread. */
tr_imap_watch *tr_imap_watch_start(const tr_imap_watch_options *options);
/* Ask it to stop (wakes an IDLE); returns at once. */
void tr_imap_watch_stop(tr_imap_watch *watch);
/* Stop and wait for the thread (it finishes the batch in hand and marks
 * what was committed), then free; sets *watch to NULL. */
void tr_imap_watch_free(tr_imap_watch **watch);

typedef struct {
	unsigned ingested, duplicates, quarantined, connects, errors;
	bool connected;
} tr_imap_watch_stats;

void tr_imap_watch_get_stats(tr_imap_watch *watch, tr_imap_watch_stats *stats);

#endif
