/*
 * report.h — the figures of the support dashboard (tr_report_*)
 *
 * tr_report_build() reads the store in one read transaction (one
 * consistent snapshot) and fills a tr_report: the tickets created in a
 * window [since, now] by channel, category, priority, team and trigger;
 * the compliance of both SLA clocks per priority; escalations and their
 * reasons; reopens; first-response and resolution times; the most
 * repeated issues; mass incidents; and every escalation still open.
 * `triage report` renders it as text, JSON or HTML; docs/report.md
 * defines each figure.
 *
 * "Tickets" are customer tickets.  The parent tickets the store opens for
 * a mass incident (is_incident) are not counted with them: they appear in
 * incidents[] and, while escalated and unresolved, in open_escalations[].
 *
 * The report reads the tickets as they are now: a --now in the past is a
 * window end and the clock for open SLA clocks and ages, not a replay of
 * the store's state at that time.
 *
 * A tr_report owns everything in it: free it with tr_report_free().
 */
#ifndef TR_REPORT_H
#define TR_REPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "core/policy.h"
#include "store/store.h"

#define TR_REPORT_PRIORITIES 4      /* P1..P4: index priority - 1 */
#define TR_REPORT_ISSUE_SAMPLES 5   /* ticket ids listed per repeated issue */

typedef struct {
	int64_t since, now;            /* the window: created_at in [since, now] */
	unsigned top_issues;           /* repeated issues listed; 0: 10 */
	unsigned min_repeat;           /* tickets that make a repeated issue; 0: 2 */
	unsigned max_open_escalations; /* rows of open_escalations; 0: 200 */
} tr_report_options;

/* A name and how many tickets have it. */
typedef struct {
	char *name;
	unsigned count;
} tr_report_count;

/* Sorted by count, most first, then by name. */
typedef struct {
	tr_report_count *items;
	size_t n;
} tr_report_counts;

/*
 * One SLA clock (first response or resolution) over a set of tickets.
 * Every ticket is in exactly one of the five.  A clock is stopped by the
 * first response (resp. the resolution); a ticket resolved without a
 * recorded first response counts its resolution as the first response.
 */
typedef struct {
	unsigned met_on_time;    /* stopped within its target */
	unsigned met_late;       /* stopped after its target was reached */
	unsigned open_within;    /* not stopped; target not reached at now */
	unsigned open_breached;  /* not stopped; target reached at now */
	unsigned no_target;      /* the ticket has no target for this clock */
} tr_report_clock;

typedef struct {
	unsigned tickets;
	tr_report_clock first_response, resolution;
} tr_report_sla;

/* Wall-clock durations in seconds; median and p90 by nearest rank. */
typedef struct {
	unsigned count;
	int64_t median, p90;     /* 0 when count is 0 */
} tr_report_durations;

typedef struct {
	int64_t id;
	char ticket[40];             /* public id */
	int priority;
	char *status, *category, *team, *subject, *requester;
	char *assignee;              /* NULL when nobody */
	char *reasons;               /* why it was escalated, "" when unknown */
	bool incident;               /* a mass-incident parent */
	bool acknowledged;           /* someone acknowledged the escalation */
	unsigned moved_up;           /* ladder steps: 1 secondary on-call, 2 manager */
	int64_t created_at, escalated_at;
	int64_t age;                 /* now - escalated_at, seconds */
} tr_report_escalation;

typedef struct {
	char *category;
	char *key;                   /* the normalized subject the group shares */
	char *subject;               /* the latest ticket's subject, prefixes stripped */
	unsigned tickets, requesters, open;
	int64_t first_at, last_at;   /* created_at of the first and latest ticket */
	char samples[TR_REPORT_ISSUE_SAMPLES][40];  /* latest ticket ids first */
	unsigned n_samples;
} tr_report_issue;

typedef struct {
	int64_t id;
	char ticket[40];
	int priority;
	char *status, *subject;
	int64_t created_at;
	unsigned children, open_children;
} tr_report_incident;

typedef struct {
	int64_t since, now;

	/* Tickets created in the window, by status. */
	unsigned tickets, status_open, status_waiting, status_paused, status_resolved;

	tr_report_counts by_channel, by_category, by_team, by_trigger;
	unsigned by_priority[TR_REPORT_PRIORITIES];

	/* SLA compliance per priority (index priority - 1) and over all. */
	tr_report_sla sla[TR_REPORT_PRIORITIES];
	tr_report_sla sla_all;

	/* Escalations of the window's tickets. */
	unsigned escalated;          /* tickets escalated */
	unsigned escalation_moved_up;/* of those, not acknowledged in time (ladder) */
	tr_report_counts escalation_reasons;  /* each reason once per ticket */

	/* Reopens: tickets reopened at least once, of those resolved at least once. */
	unsigned reopened, resolved_ever, reopen_count;

	tr_report_durations first_response, resolution;

	/* Every escalated, unresolved ticket created by now (any age), most
	 * urgent first: priority, unacknowledged before acknowledged, oldest
	 * escalation first.  At most max_open_escalations rows of total. */
	tr_report_escalation *open_escalations;
	size_t n_open_escalations;
	unsigned open_escalations_total;

	/* Groups of tickets with the same category and normalized subject. */
	tr_report_issue *top_issues;
	size_t n_top_issues;

	/* Mass-incident parents created in the window, most children first. */
	tr_report_incident *incidents;
	size_t n_incidents;
} tr_report;

/*
 * Compute the report.  policy gives the business calendars of business
 * clocks (NULL: every clock counts clock time).  NULL with *error on a
 * store error.
 */
tr_report *tr_report_build(tr_store *store, const tr_policy *policy, const tr_report_options *options,
                           GError **error);
void tr_report_free(tr_report **report);

/* part / whole in percent, or -1 when whole is 0. */
double tr_report_percent(unsigned part, unsigned whole);
/* Share of decided clocks (met on time, met late, open breached) that met
 * the target on time, in percent; -1 when none is decided yet. */
double tr_report_compliance(const tr_report_clock *clock);

/*
 * The key repeated issues are grouped by: reply and forward prefixes
 * (Re:, Fwd:, AW:, ...) and leading [tags] removed, ticket tags
 * ([PREFIX-123]) removed anywhere, case folded, punctuation to single
 * spaces, runs of 4 or more digits to "#".  g_malloc'd; "" when nothing
 * is left.
 */
char *tr_report_subject_key(const char *subject, const char *ticket_prefix);
/* The subject without its leading reply/forward prefixes and [tags]
 * (for display), g_malloc'd, valid UTF-8. */
char *tr_report_subject_display(const char *subject);

#endif
