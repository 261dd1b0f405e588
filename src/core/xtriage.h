/*
 * xtriage.h — how the mail path marks a message (tr_xtriage_*)
 *
 * The X-Triage-* headers the milter and the LMTP listener add for a
 * decision, header values made safe, and the ticket tags ("[TKT-000123]")
 * found in subjects.  Pure: no I/O.
 *
 * Every X-Triage-* header is ours: the channels remove any that arrive
 * from outside before adding these, so nobody can forge a priority.
 */
#ifndef TR_XTRIAGE_H
#define TR_XTRIAGE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/policy.h"
#include "core/pool.h"

#define TR_XTRIAGE_PREFIX "X-Triage-"
/* Headers tr_xtriage_headers() produces, at most. */
#define TR_XTRIAGE_HEADERS_MAX 8

typedef struct {
	const char *name;    /* static: "X-Triage-Priority", ... */
	const char *value;   /* in the pool; printable ASCII, folded with fold */
} tr_xtriage_header;

/* True when name (a header field name, len bytes) starts with "X-Triage-", any case. */
bool tr_xtriage_is_header(const char *name, size_t len);

/*
 * The X-Triage-* headers for a decision: Priority, Category, Tier, Team,
 * Sentiment, Escalate (only when escalating), Ticket (only when ticket is
 * non-empty), Rules (the rules that fired, once each, at most rules_bytes
 * characters, ", ..." when cut).  Values are printable ASCII (anything
 * else is RFC 2047-encoded), with no CR/LF except the folding sequence
 * fold ("\n\t" for libmilter, "\r\n\t" inside a message), lines under 78
 * characters.  Returns how many were written to out (at most
 * TR_XTRIAGE_HEADERS_MAX); values live in pool.
 */
size_t tr_xtriage_headers(tr_pool *pool, const tr_decision *decision, const char *ticket,
                          size_t rules_bytes, const char *fold, tr_xtriage_header *out);

/*
 * One header value made safe: CR, LF and other controls become spaces,
 * runs of spaces collapse, invalid UTF-8 is repaired and non-ASCII text is
 * RFC 2047-encoded.  NULL gives "".  Result in pool.
 */
const char *tr_xtriage_value(tr_pool *pool, const char *text);

/*
 * Find a ticket tag "[PREFIX-digits]" (PREFIX compared without case) in a
 * decoded subject; copies "PREFIX-digits" as written into buf and returns
 * true when one fits.
 */
bool tr_xtriage_find_ticket(const char *subject, const char *prefix, char *buf, size_t size);

#endif
