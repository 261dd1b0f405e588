/*
 * sla.h — SLA clocks and the escalation ladder (tr_sla_*)
 *
 * Each ticket has two clocks, first response and resolution, with a target
 * in clock or business seconds (calendar.h).  Clocks run while the ticket
 * is open and stop while it waits for the customer or is paused; time
 * consumed is kept, so a resumed clock continues where it stopped and its
 * due time moves by the pause.
 *
 * tr_sla_tick() (the daemon every few seconds, `triage sla-tick` for cron)
 * finds tickets past 50 % (warn the assignee), 75 % (team lead), 100 %
 * (breach: manager, and the customer's notice) and 125 % (director) of a
 * clock, and escalations nobody acknowledged in time (secondary on-call,
 * then manager), and queues each action exactly once — across restarts and
 * concurrent ticks — through the outbox.
 */
#ifndef TR_SLA_H
#define TR_SLA_H

#include "core/policy.h"
#include "store/outbox.h"
#include "store/store.h"
#include "store/ticket.h"

/* Seconds of target consumed at now (business seconds for business clocks). */
int64_t tr_sla_consumed(const tr_policy *policy, const tr_ticket *t, bool resolution, int64_t now);

/* Stop the running clocks at now (consumed time kept). */
bool tr_sla_stop(tr_store *store, const tr_policy *policy, int64_t id, int64_t now, GError **error);
/* Start the clocks at now; due times and the next check move accordingly. */
bool tr_sla_start(tr_store *store, const tr_policy *policy, int64_t id, int64_t now, GError **error);
/* Recompute due times and next_check_at from the row (after any change). */
bool tr_sla_reschedule(tr_store *store, const tr_policy *policy, int64_t id, int64_t now, GError **error);

typedef struct {
	unsigned checked;      /* tickets looked at */
	unsigned warnings;     /* 50 % and 75 % steps queued */
	unsigned breaches;     /* 100 % steps */
	unsigned directors;    /* 125 % steps */
	unsigned escalations;  /* unacknowledged escalations moved up */
} tr_sla_tick_result;

/* Everything due at now, in one transaction. */
bool tr_sla_tick(tr_store *store, const tr_policy *policy, const tr_outbox_options *options,
                 int64_t now, tr_sla_tick_result *result, GError **error);

#endif
