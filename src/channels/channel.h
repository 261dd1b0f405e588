/*
 * channel.h — what the mail channels share (tr_channel_*)
 *
 * The seams between a channel (LMTP listener, milter, and later IMAP and
 * XMPP) and whoever owns the ticket store:
 *
 *   tr_channel_ingest_fn  "commit this message": normalize/classify result,
 *                         ticket, events and outbox rows in one store
 *                         transaction.  A channel confirms a message to
 *                         its source (LMTP 250, milter accept) only after
 *                         this returned COMMITTED or DUPLICATE.
 *   tr_channel_reply_fn   "an agent answered ticket T" (first response).
 *
 * Both are plain function pointers with a context, set by the daemon or
 * the CLI; a channel works without them (classification only).  They are
 * called from the channel's connection threads, concurrently: an
 * implementation must be thread-safe (e.g. one store connection per
 * thread).
 *
 * And the small pieces every channel writes the same way: the X-Triage-*
 * headers made from a decision, subject tags, listen addresses.
 */
#ifndef TR_CHANNEL_H
#define TR_CHANNEL_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/conf.h"
#include "core/msg.h"
#include "core/policy.h"
#include "core/pool.h"

/* ---- the ingest hook ---- */

typedef enum {
	/* The ticket (or a thread event) and its outbox rows are committed. */
	TR_CHANNEL_INGEST_COMMITTED = 0,
	/* Committed earlier (same Message-ID or content hash): nothing new;
	 * confirm the message again. */
	TR_CHANNEL_INGEST_DUPLICATE,
	/* Nothing committed (store busy, I/O error, deadline): retry later. */
	TR_CHANNEL_INGEST_TEMPFAIL,
	/* Nothing committed, the disk is full. */
	TR_CHANNEL_INGEST_FULL,
} tr_channel_ingest_status;

/* What a channel hands over; everything is borrowed for the call only. */
typedef struct {
	tr_channel channel;
	const char *envelope_from;        /* "" for the null sender, NULL unknown */
	const char *const *envelope_to;   /* the recipients this copy is for */
	size_t envelope_to_count;
	const char *queue_id;             /* the MTA's queue id or session id, NULL unknown */
	const char *data;                 /* the message as received (CRLF lines); may be
	                                   * truncated to the channel's body limit */
	size_t len;
	bool truncated;                   /* data is a prefix of a longer message */
	const tr_msg *msg;                /* normalized (envelope filled in) */
	const tr_decision *decision;      /* the decision made for msg */
	const tr_decide_input *input;     /* arrival time etc. used for it */
	int64_t deadline;                 /* g_get_monotonic_time() by which to return */
} tr_channel_ingest_request;

typedef struct {
	char ticket[64];                  /* public ticket id ("TKT-000123"), or "" */
	int priority;                     /* 1..4 when the store changed the priority
	                                   * (history: repeat contact...), else 0 */
} tr_channel_ingest_result;

/*
 * Commit one message.  Must not return COMMITTED/DUPLICATE unless the
 * transaction is durable.  On TEMPFAIL/FULL, *error (may be NULL) says why;
 * result->ticket is then ignored.  Never blocks past request->deadline.
 */
typedef tr_channel_ingest_status tr_channel_ingest_fn(void *context,
                                                      const tr_channel_ingest_request *request,
                                                      tr_channel_ingest_result *result, GError **error);

typedef struct {
	tr_channel_ingest_fn *ingest;     /* NULL: classification only */
	void *context;
} tr_channel_ingest_hook;

/* ---- the agent-reply hook (first response) ---- */

typedef struct {
	tr_channel channel;
	const char *agent;                /* the agent's address (From, else envelope) */
	const char *ticket;               /* the tag found in the subject, "TKT-000123" */
	const char *message_id;           /* without <>, NULL when absent */
	const char *subject;              /* decoded */
	const char *const *recipients;    /* envelope recipients (the customer) */
	size_t recipients_count;
	int64_t time;                     /* Unix seconds */
	int64_t deadline;                 /* g_get_monotonic_time() by which to return */
} tr_channel_reply;

/* Record that an agent answered.  Returns false (with *error) when it
 * could not be recorded now; an unknown ticket is not an error. */
typedef bool tr_channel_reply_fn(void *context, const tr_channel_reply *reply, GError **error);

typedef struct {
	tr_channel_reply_fn *record;      /* NULL: agent replies are not tracked */
	void *context;
} tr_channel_reply_hook;

const char *tr_channel_ingest_status_name(tr_channel_ingest_status status);

/* ---- X-Triage-* headers ---- */

#define TR_CHANNEL_HEADER_PREFIX "X-Triage-"
/* Headers tr_channel_triage_headers() produces, at most. */
#define TR_CHANNEL_HEADERS_MAX 8

typedef struct {
	const char *name;    /* static: "X-Triage-Priority", ... */
	const char *value;   /* in the pool; printable ASCII, folded with fold */
} tr_channel_header;

/* True when name (a header field name) starts with "X-Triage-", any case. */
bool tr_channel_is_triage_header(const char *name, size_t len);

/*
 * The X-Triage-* headers for a decision: Priority, Category, Tier, Team,
 * Sentiment, Ticket (only when ticket is non-empty), Rules (the names of the
 * rules that fired, once each, at most rules_bytes characters, "..." when
 * cut).  Values are printable ASCII (anything else is RFC 2047-encoded), no
 * CR/LF except the folding sequence fold ("\n\t" for libmilter, "\r\n\t"
 * in a message), lines kept under 78 characters.  Returns the number of
 * headers written to out (at most TR_CHANNEL_HEADERS_MAX); values in pool.
 */
size_t tr_channel_triage_headers(tr_pool *pool, const tr_decision *decision, const char *ticket,
                                 size_t rules_bytes, const char *fold, tr_channel_header *out);

/*
 * One header value made safe: CR, LF and other controls become spaces,
 * runs of them collapse, and non-ASCII text is RFC 2047-encoded (UTF-8).
 * Result in pool.
 */
const char *tr_channel_header_value(tr_pool *pool, const char *text);

/*
 * Find a ticket tag "[PREFIX-digits]" (PREFIX compared without case) in a
 * subject; copies "PREFIX-digits" into buf and returns true when found.
 */
bool tr_channel_find_ticket(const char *subject, const char *prefix, char *buf, size_t size);

/* ---- listen addresses ---- */

typedef enum { TR_CHANNEL_LISTEN_INET, TR_CHANNEL_LISTEN_UNIX } tr_channel_listen_family;

typedef struct {
	tr_channel_listen_family family;
	char host[256];      /* inet: name or address, "" = any; IPv6 without [] */
	char port[16];       /* inet: number or service */
	char path[108];      /* unix: socket path */
} tr_channel_listen;

/*
 * Parse "inet:HOST:PORT", "inet:PORT@HOST" (the milter form), "inet:PORT",
 * "inet6:PORT@HOST", "[v6]:PORT" forms and "unix:PATH" (also "local:PATH").
 * False with *error when malformed.
 */
bool tr_channel_listen_parse(const char *spec, tr_channel_listen *addr, GError **error);
/* The same address in libmilter's form ("inet:PORT@HOST", "unix:PATH"), g_free. */
char *tr_channel_listen_milter_spec(const tr_channel_listen *addr);
/* "HOST:PORT" or "unix:PATH" for log lines, g_free. */
char *tr_channel_listen_describe(const tr_channel_listen *addr);

/* ---- small shared helpers ---- */

/*
 * Split a list setting ("a, b c") into lowercased, trimmed words;
 * NULL or "" gives an empty vector.  g_strfreev.
 */
char **tr_channel_split_list(const char *text);

/* The address inside "<...>" (or the text itself), trimmed; pool. */
const char *tr_channel_strip_brackets(tr_pool *pool, const char *text);

/*
 * tr_conftab_load() for a group that also has keys outside the table:
 * loads and range-checks the rows of tab present in group, then warns
 * about keys that are neither rows nor in extra_keys (NULL-terminated).
 */
void tr_channel_conf_load(const tr_conftab *tab, const tr_conf *conf, tr_diag *diag,
                          const char *group, void *target, const char *const *extra_keys);

#endif
