/*
 * outbox.h — durable side effects (tr_outbox_*)
 *
 * Acknowledgments, escalation forwards, room posts and ladder notices are
 * rows with a stable action key, written in the same transaction as the
 * ticket change that caused them.  The key makes every action exactly
 * once: adding a key that exists does nothing.  A worker claims due rows,
 * delivers them and marks them sent, retried (with the next attempt time),
 * ambiguous (may have been delivered: not blindly repeated) or failed.
 */
#ifndef TR_OUTBOX_H
#define TR_OUTBOX_H

#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

/* What the producers of actions (ingest, SLA tick) need to know. */
typedef struct {
	const char *message_domain;  /* domain of our Message-IDs */
	bool rooms;                  /* XMPP configured: queue room posts */
} tr_outbox_options;

typedef struct {
	const char *action_key;    /* e.g. "ack:42", "escalate:42:mail:security" */
	int64_t ticket_id;         /* 0: none */
	const char *kind;          /* ack, forward, room_post, notify, customer_notice, incident */
	const char *channel;       /* smtp, xmpp */
	const char *recipient;     /* address, JID or room JID */
	const char *template_name; /* e.g. "ack", "escalation", "sla_warning" */
	const char *payload;       /* JSON object with what the template needs */
	const char *message_domain;/* for the stable Message-ID */
	int64_t not_before;        /* first attempt; 0 = now */
} tr_outbox_action;

/* Add once.  *inserted_r (may be NULL) is false when the key existed. */
bool tr_outbox_add(tr_store *store, const tr_outbox_action *action, int64_t now,
                   bool *inserted_r, GError **error);
/* The stable Message-ID of an action key (without <>), g_malloc'd. */
char *tr_outbox_message_id(const char *action_key, const char *domain);

typedef struct {
	int64_t id, ticket_id, next_attempt_at, created_at, sent_at;
	int attempts;
	char *action_key, *kind, *channel, *recipient, *template_name, *payload, *message_id;
	char *state, *last_error;
} tr_outbox_row;

void tr_outbox_row_clear(tr_outbox_row *row);

/* Claim the next due row of a channel (state pending or ambiguous retry,
 * next_attempt_at <= now): it becomes 'sending', claimed by worker. */
bool tr_outbox_claim(tr_store *store, const char *channel, const char *worker, int64_t now,
                     tr_outbox_row *out, bool *found_r, GError **error);
bool tr_outbox_sent(tr_store *store, int64_t id, int64_t now, GError **error);
/* A temporary failure: next attempt at next_at. */
bool tr_outbox_retry(tr_store *store, int64_t id, int64_t next_at, const char *why, GError **error);
/* May or may not have been delivered.  retry: one more attempt at
 * next_at, marked "ambiguous:" so the resend is recognisable; otherwise the
 * row stops in state ambiguous with an event for a human (no blind copy). */
bool tr_outbox_ambiguous(tr_store *store, int64_t id, bool retry, int64_t next_at, const char *why,
                         GError **error);
/* How many attempts of a row ended ambiguous so far (0 or more). */
unsigned tr_outbox_ambiguous_count(const tr_outbox_row *row);
/* A permanent failure (5xx, bad recipient): an event for the operator. */
bool tr_outbox_failed(tr_store *store, int64_t id, int64_t now, const char *why, GError **error);
/* Rows of channel (NULL: every channel) a crashed worker left in 'sending'
 * become ambiguous (they may have gone out), due at now + delay.  Each
 * worker recovers only its own channel: another channel's worker may be
 * running and have rows in flight.  Returns how many. */
int tr_outbox_recover(tr_store *store, const char *channel, int64_t now, int64_t delay, GError **error);
/* `triage outbox retry ID`: failed or ambiguous back to pending, due now. */
bool tr_outbox_requeue(tr_store *store, int64_t id, int64_t now, GError **error);

typedef struct tr_outbox_iter tr_outbox_iter;
/* Rows by id; failed_only: state failed or ambiguous. */
tr_outbox_iter *tr_outbox_list_init(tr_store *store, bool failed_only, unsigned limit);
bool tr_outbox_list_next(tr_outbox_iter *it, tr_outbox_row *out);
void tr_outbox_list_deinit(tr_outbox_iter **it);

/* Counts by state (for reports and tests). */
int tr_outbox_count(tr_store *store, const char *kind, const char *state);

#endif
