/*
 * policy.h — from signals to a decision (tr_policy_*)
 *
 * The support organisation's tables, as configuration:
 *   policy.conf    [classifier] defaults, [priority] urgency x impact
 *                  matrix, [trigger NAME] what each trigger does,
 *                  [sla TIER] targets per priority, [route NAME] routing
 *   teams.conf     [team NAME], [person NAME], [oncall NAME] rotations
 *   calendars.conf [calendar NAME] business hours (calendar.h)
 * and the customer directory (customers.h).
 *
 * tr_policy_decide() is pure: the same message, signals and clock give the
 * same decision, except round-robin member choice, which advances a
 * counter.  A policy is otherwise read-only and may be shared by threads.
 */
#ifndef TR_POLICY_H
#define TR_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include "core/calendar.h"
#include "core/conf.h"
#include "core/customers.h"
#include "core/msg.h"
#include "core/rules.h"

#define TR_PRIORITY_COUNT 4   /* P1 (most urgent) .. P4 */

typedef struct {
	double compound, pos, neu, neg;
} tr_sentiment_values;

/* What the classifier found in the message. */
typedef struct {
	tr_rule_hit *hits;
	size_t n_hits;
	tr_sentiment_values sentiment;
} tr_signals;

/* What the caller knows beyond the message. */
typedef struct {
	int64_t now;              /* arrival time, Unix seconds */
	uint32_t extra_triggers;  /* from history: repeat_contact, mass_incident */
	/* Open tickets of a person, for least-loaded assignment; NULL when
	 * unknown (round-robin is used instead). */
	int (*member_load)(void *user_data, const char *person);
	void *member_load_data;
} tr_decide_input;

typedef struct {
	int64_t first_response_minutes;  /* target length (business minutes if business) */
	int64_t resolution_minutes;
	bool first_response_business;
	bool resolution_business;
	const char *calendar;            /* calendar for business time, NULL = 24x7 */
	int64_t first_response_due;      /* Unix time */
	int64_t resolution_due;
} tr_sla;

typedef struct {
	const char *name;
	double score;
} tr_category_score;

/* The decision; strings live in the message pool or the policy. */
typedef struct {
	const char *category;
	tr_category_score *category_scores;  /* descending, only scores > 0 */
	size_t n_category_scores;
	tr_level urgency, impact;
	int priority;                        /* 1..4 */
	uint32_t triggers;                   /* bit (1 << tr_trigger) */
	tr_sentiment_values sentiment;
	double score;                        /* sum of rule scores */

	const tr_customer *customer;
	const char *tier;                    /* L1, L2, L3, specialist... */
	const char *team;
	const char *route;                   /* the [route NAME] that matched */
	const char *assignee;                /* a person, or NULL */
	const char *oncall_primary;          /* for P1 and L3: who is paged now */
	const char *oncall_secondary;
	const char *language;                /* for the reply */

	bool escalate;
	const char **escalate_reasons;
	size_t n_escalate_reasons;
	bool ack;
	const char *no_ack_reason;           /* why not, when ack is false */
	tr_sla sla;

	tr_rule_hit *hits;
	size_t n_hits;
	const char **explanation;            /* lines a support lead can read */
	size_t n_explanation;
} tr_decision;

typedef struct tr_policy tr_policy;

/*
 * Load the policy files named in the main config ([triage] policy, teams,
 * calendars, customers), relative to it.  categories: every category the
 * rules know (routes may only name those and the default).  Reports every
 * error into diag; NULL when there was one.
 */
tr_policy *tr_policy_load(const tr_conf *main, const char *const *categories, tr_diag *diag);
void tr_policy_free(tr_policy **policy);

/* Decide for msg; the decision is filled in, strings in msg->pool. */
void tr_policy_decide(const tr_policy *policy, const tr_msg *msg, const tr_signals *signals,
                      const tr_decide_input *input, tr_decision *decision);

const tr_customers *tr_policy_customers(const tr_policy *policy);
/* The calendar of that name, or NULL. */
const tr_calendar *tr_policy_calendar(const tr_policy *policy, const char *name);
/* Who is on call for a team at time t; false when the team has no rotation. */
bool tr_policy_oncall(const tr_policy *policy, const char *team, int64_t t,
                      const char **primary_r, const char **secondary_r);
/* A team as configured in teams.conf (strings owned by the policy). */
typedef struct {
	const char *name;
	const char *mailbox;     /* escalation mailbox or NULL */
	const char *room;        /* XMPP MUC room JID or NULL */
	const char *lead, *manager, *director;  /* person names or NULL */
} tr_team_info;

/* A person (teams.conf [person NAME]). */
typedef struct {
	const char *name;        /* the key */
	const char *display;     /* "Ana Lima" or the key */
	const char *email;       /* or NULL */
	const char *jid;         /* or NULL */
} tr_person_info;

/* NULL when unknown. */
const tr_team_info *tr_policy_team(const tr_policy *policy, const char *team);
const tr_person_info *tr_policy_person(const tr_policy *policy, const char *name);
/* The person whose email or jid is address (lowercase), or NULL. */
const tr_person_info *tr_policy_person_by_address(const tr_policy *policy, const char *address);
/* Seconds an escalation of this priority may go unacknowledged before it
 * goes to the secondary on-call (twice that: the manager).  [escalation]
 * ack_timeout_P1..P4 in policy.conf; defaults 5m, 15m, 1h, 4h. */
int64_t tr_policy_ack_timeout(const tr_policy *policy, int priority);
/* Is address one of ours ([classifier] our_addresses)? */
bool tr_policy_is_our_address(const tr_policy *policy, const char *address);

/* The threshold below which sentiment is a trigger. */
double tr_policy_negative_sentiment(const tr_policy *policy);

/* "P1".."P4" (static). */
const char *tr_priority_name(int priority);
bool tr_priority_parse(const char *text, int *priority_r);

#endif
