/*
 * ticket.h — tickets, their messages and events (tr_ticket_*)
 *
 * A ticket row carries the decision that opened it (category, priority,
 * team, ...), its SLA clocks and its state: open, waiting (for the
 * customer: clocks paused), paused (explicitly), resolved.  Every change is
 * also an event (the audit trail) with a time and an actor.
 *
 * State changes (ack, assign, pause, resume, resolve) run in their own
 * transaction when called outside one, and inside the caller's otherwise.
 * Strings in a tr_ticket are g_malloc'd; tr_ticket_clear() frees them.
 */
#ifndef TR_TICKET_H
#define TR_TICKET_H

#include <stdbool.h>
#include <stdint.h>

#include "core/policy.h"
#include "store/store.h"

typedef struct {
	int64_t id;
	char public_id[40];
	char *status, *channel, *requester, *requester_domain, *account, *subject, *language;
	char *category, *urgency, *impact, *tier, *team, *assignee, *customer_tier, *triggers;
	int priority;
	double sentiment;
	bool escalated, is_incident;
	int64_t escalated_at, escalation_acked_at;
	int64_t parent_id;
	char *reference;
	int64_t created_at, updated_at, first_response_at, resolved_at;
	int reopened;
	char *calendar;
	int64_t fr_target, fr_consumed, fr_due;
	int64_t res_target, res_consumed, res_due;
	bool fr_business, res_business;
	int64_t clock_since;   /* 0 while the clocks are paused */
	int64_t next_check_at;
} tr_ticket;

void tr_ticket_clear(tr_ticket *t);

/* Load a ticket; false with TR_STORE_ERROR_NOT_FOUND when there is none. */
bool tr_ticket_get(tr_store *store, int64_t id, tr_ticket *out, GError **error);

/* Append an event (inside the caller's transaction). detail may be NULL. */
bool tr_ticket_event(tr_store *store, int64_t ticket, int64_t at, const char *kind,
                     const char *actor, const char *detail, GError **error);

/* ---- what agents do (triage ack|assign|pause|resume|resolve, !ack ...) ---- */

/* First response and escalation acknowledged (idempotent: a second ack
 * only adds an event). */
bool tr_ticket_ack(tr_store *store, const tr_policy *policy, int64_t id, const char *by,
                   int64_t now, GError **error);
bool tr_ticket_assign(tr_store *store, int64_t id, const char *assignee, const char *by,
                      int64_t now, GError **error);
/* waiting: paused because we wait for the customer (a reply resumes). */
bool tr_ticket_pause(tr_store *store, const tr_policy *policy, int64_t id, bool waiting,
                     const char *by, int64_t now, GError **error);
bool tr_ticket_resume(tr_store *store, const tr_policy *policy, int64_t id, const char *by,
                      int64_t now, GError **error);
bool tr_ticket_resolve(tr_store *store, const tr_policy *policy, int64_t id, const char *by,
                       int64_t now, GError **error);

/* ---- listing ---- */

typedef struct {
	bool open_only;        /* status other than resolved */
	int priority;          /* 0: any */
	const char *team;      /* NULL: any */
	int64_t since;         /* created at or after; 0: any */
	unsigned limit;        /* 0: no limit */
} tr_ticket_filter;

typedef struct tr_ticket_iter tr_ticket_iter;
tr_ticket_iter *tr_ticket_list_init(tr_store *store, const tr_ticket_filter *filter);
/* Fills *out (clear it with tr_ticket_clear after use). */
bool tr_ticket_list_next(tr_ticket_iter *it, tr_ticket *out);
void tr_ticket_list_deinit(tr_ticket_iter **it);

typedef struct {
	int64_t at;
	char *kind, *actor, *detail;
} tr_ticket_event_row;

typedef struct {
	int64_t id, at, size;
	char *direction, *channel, *message_id, *sender, *subject, *excerpt, *decision;
} tr_ticket_message_row;

/* Events and messages of one ticket, oldest first; arrays and strings are
 * g_malloc'd: free with the *_free functions. */
tr_ticket_event_row *tr_ticket_events(tr_store *store, int64_t id, size_t *n_r);
void tr_ticket_events_free(tr_ticket_event_row *rows, size_t n);
tr_ticket_message_row *tr_ticket_messages(tr_store *store, int64_t id, size_t *n_r);
void tr_ticket_messages_free(tr_ticket_message_row *rows, size_t n);
/* The original bytes of a stored inbound message (g_malloc'd), or NULL. */
char *tr_ticket_raw_message(tr_store *store, int64_t message_row, size_t *len_r);

/* Open tickets assigned to a person (least-loaded assignment). */
int tr_ticket_open_count(tr_store *store, const char *assignee);

/* subject without "[PREFIX-123]" ticket tags (anywhere), g_malloc'd: the
 * acknowledgment adds the right one, a customer's stale or foreign tag
 * would only confuse. */
char *tr_ticket_strip_tags(const char *subject, const char *prefix);

#endif
