/*
 * milter.h — triage inside the MTA's SMTP session (tr_milter_*)
 *
 * A libmilter filter for Postfix (smtpd_milters) and Sendmail
 * (INPUT_MAIL_FILTER).  For mail to the recipients [milter] selects, at
 * end of message it classifies with the engine and:
 *   - removes every X-Triage-* header that came from outside (by index),
 *   - adds X-Triage-Priority, -Category, -Tier, -Team, -Sentiment,
 *     -Escalate (when escalating), -Ticket (when the store made one)
 *     and -Rules,
 *   - optionally tags the subject ("[P1] ", "[TKT-000042] "), adds the
 *     team's escalation mailbox as a recipient, quarantines.
 * Other mail passes untouched (the filter says ACCEPT after the headers).
 * An agent's reply (sender domain in agent_domains, a ticket tag in the
 * subject) is stored on its ticket (first response).
 *
 * Fail-safe (DESIGN.md invariant 5): an internal error, a failing or slow
 * hook gives the configured on_error action — accept (the message passes
 * without triage headers; forged X-Triage-* headers are still removed) or
 * tempfail (the MTA answers 4xx and the client retries) — and a log line.
 * The filter never rejects or discards.
 *
 * Two layers: tr_milter_msg is one message's state and the decision of
 * what to change — pure, no libmilter, unit-tested; tr_milter_run() binds
 * it to libmilter's callbacks.  libmilter is process-global: one running
 * milter per process.
 *
 * Settings: group [milter] of triage.conf; docs/mta.md.
 */
#ifndef TR_MILTER_H
#define TR_MILTER_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/conf.h"
#include "core/engine.h"
#include "store/ingest.h"

/* ---- settings ---- */

/* Named limits, [milter]; see tr_milter_limits_table. */
typedef struct {
	int64_t body_bytes;         /* body bytes kept and classified; the rest is skipped */
	int64_t header_bytes;       /* header bytes kept and classified */
	int64_t timeout;            /* libmilter: seconds to wait for the MTA */
	int64_t hook_timeout;       /* seconds the ingest and reply hooks may take */
	int64_t rules_header_bytes; /* characters of the X-Triage-Rules list */
} tr_milter_limits;

extern const tr_conftab tr_milter_limits_table[];

typedef enum {
	TR_MILTER_ON_ERROR_ACCEPT = 0,  /* pass without triage headers (the default) */
	TR_MILTER_ON_ERROR_TEMPFAIL,    /* 4xx: the client retries later */
} tr_milter_on_error;

typedef struct {
	char *listen;                  /* "inet:10030@127.0.0.1", "unix:/run/triage/milter" */
	char **recipients;             /* "support@example.test" or "@support.example.test" */
	char **agent_domains;          /* [milter] agent_domains, else [tickets] agent_domains */
	char *ticket_prefix;           /* [tickets] prefix, "TKT" */
	tr_milter_on_error on_error;
	unsigned tag_priorities;       /* bit (1 << priority): subject gets "[Pn] " */
	bool tag_ticket;               /* subject gets "[TKT-000042] " */
	bool escalation_recipient;     /* add the team mailbox when escalating */
	uint32_t quarantine_triggers;  /* bit (1 << tr_trigger) */
	char **quarantine_categories;
	GHashTable *team_mailboxes;    /* team name -> mailbox, from teams.conf */
	tr_milter_limits limits;
} tr_milter_settings;

void tr_milter_settings_default(tr_milter_settings *settings);
/* Read [milter] (and [tickets] prefix/agent_domains, the teams' mailboxes);
 * listen_override (--listen) wins over [milter] listen. */
void tr_milter_settings_load(tr_milter_settings *settings, const tr_conf *conf,
                             const char *listen_override, tr_diag *diag);
void tr_milter_settings_clear(tr_milter_settings *settings);

/* True when rcpt (with or without <>) is one of the selected recipients. */
bool tr_milter_selected(const tr_milter_settings *settings, const char *rcpt);

/* ---- the ticket store behind the filter ---- */

/*
 * ingest: commit the message — tr_ingest_message() with a context instead
 * of a tr_ingest (it is called from every MTA connection's thread at once;
 * src/daemon/mailstore.h keeps one store connection per concurrent
 * caller).  True when committed (a new ticket, a reply, a duplicate of
 * one committed before) with *result filled in; false with *error when
 * nothing was committed.
 *
 * reply: an agent's answer to ticket (the tag found in its subject) passed
 * through: record it on that ticket (first response).  True with
 * *recorded_r false when there is no such ticket (nothing to do); false
 * with *error on store trouble.
 */
typedef bool tr_milter_ingest_fn(void *context, const tr_ingest_input *input, tr_ingest_result *result,
                                 GError **error);
typedef bool tr_milter_reply_fn(void *context, const char *ticket, const tr_ingest_input *input,
                                bool *recorded_r, GError **error);

typedef struct {
	tr_milter_ingest_fn *ingest;   /* NULL: classification only */
	tr_milter_reply_fn *reply;     /* NULL: agent replies are not recorded */
	void *context;
} tr_milter_store;

/* ---- the filter ---- */

typedef struct tr_milter tr_milter;

/* engines (the engine in force, swapped on reload), settings and store
 * are borrowed and must outlive it; store may be NULL. */
tr_milter *tr_milter_new(tr_engine_slot *engines, const tr_milter_settings *settings,
                         const tr_milter_store *store);
void tr_milter_free(tr_milter **milter);
/* TEST ONLY: make every classification fail as an internal error would. */
void tr_milter_fail_classify(tr_milter *milter, bool fail);

/*
 * Register with libmilter on settings->listen and serve until SIGTERM,
 * SIGINT or SIGHUP (libmilter's own handling) or tr_milter_stop().
 * False with *error when libmilter could not be set up.
 */
bool tr_milter_run(tr_milter *milter, GError **error);
void tr_milter_stop(void);

/* ---- one message (what the libmilter callbacks drive) ---- */

typedef struct tr_milter_msg tr_milter_msg;

typedef enum {
	TR_MILTER_CONTINUE = 0,  /* apply the actions, then accept */
	TR_MILTER_ACCEPT,        /* accept as is, no more callbacks */
	TR_MILTER_TEMPFAIL,      /* 4xx */
} tr_milter_verdict;

typedef enum {
	TR_MILTER_DELETE_HEADER,  /* smfi_chgheader(name, index, NULL) */
	TR_MILTER_CHANGE_HEADER,  /* smfi_chgheader(name, index, value) */
	TR_MILTER_ADD_HEADER,     /* smfi_addheader(name, value) */
	TR_MILTER_ADD_RCPT,       /* smfi_addrcpt(value) */
	TR_MILTER_QUARANTINE,     /* smfi_quarantine(value) */
} tr_milter_action_kind;

typedef struct {
	tr_milter_action_kind kind;
	const char *name;
	int index;                /* 1-based among headers of that name */
	const char *value;
} tr_milter_action;

/* State for one message, allocated at MAIL FROM (the caller frees it at
 * end of message, abort and close).  from: the MAIL FROM argument. */
tr_milter_msg *tr_milter_msg_new(tr_milter *milter, const char *from);
void tr_milter_msg_free(tr_milter_msg **msg);
void tr_milter_msg_rcpt(tr_milter_msg *msg, const char *rcpt);
/* One header as libmilter gives it: raw (RFC 2047-encoded), folded with LF. */
void tr_milter_msg_header(tr_milter_msg *msg, const char *name, const char *value);
/* After the headers: ACCEPT when nothing is to be done for this message
 * (no selected recipient, not an agent reply), else CONTINUE. */
tr_milter_verdict tr_milter_msg_eoh(tr_milter_msg *msg);
/* A body chunk; bytes past body_bytes are counted, not kept. */
void tr_milter_msg_body(tr_milter_msg *msg, const void *data, size_t len);
/*
 * End of message: classify, call the hooks, decide the changes.  The
 * actions (in the message's pool) are in *actions_r; apply them in order
 * when the verdict is CONTINUE.  queue_id may be NULL.
 */
tr_milter_verdict tr_milter_msg_eom(tr_milter_msg *msg, const char *queue_id,
                                    const tr_milter_action **actions_r, size_t *n_actions_r);
/* The verdict the on_error setting gives (for failures while applying). */
tr_milter_verdict tr_milter_on_error_verdict(const tr_milter *milter);

#endif
