/*
 * lmtp.h — the LMTP listener (RFC 2033) that also speaks SMTP (tr_lmtp_*)
 *
 * Four layers, each usable alone:
 *
 *   session   the protocol as a pure state machine: bytes in (any split,
 *             one byte at a time works), reply lines out.  LHLO (LMTP:
 *             one reply per accepted recipient after DATA) and EHLO/HELO
 *             (SMTP: one reply per transaction), PIPELINING, SIZE,
 *             8BITMIME, ENHANCEDSTATUSCODES; dot-unstuffing; CRLF or bare
 *             LF line ends (the message is handed on with CRLF).  No
 *             sockets, no clock, no threads.
 *   server    a listener on inet or unix sockets, one thread per
 *             connection, bounded connections, timeouts, clean shutdown.
 *   client    a minimal LMTP/SMTP client for the next hop (content-filter
 *             mode: Dovecot LMTP, or Postfix's re-injection smtpd).
 *   gateway   the delivery hook triage uses: normalize + classify with the
 *             engine, commit through the store hook (tr_lmtp_store), then
 *             pass the message with X-Triage-* headers to the next hop.
 *
 * The one rule every layer keeps (DESIGN.md invariants 1 and 5): a
 * recipient gets 250 only after the delivery hook said the message is
 * committed; anything else — store trouble, a next hop that is down, an
 * internal error, a hook that does not answer — gives 4xx, never 5xx, and
 * the client keeps the message and retries.  The only 5xx after DATA are a
 * message over the size limit (552) and a permanent verdict a hook passes
 * on explicitly (a next hop's "user unknown").
 *
 * Settings: group [lmtp] of triage.conf (tr_lmtp_limits_table and
 * tr_lmtp_settings_load); docs/mta.md.
 */
#ifndef TR_LMTP_H
#define TR_LMTP_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/conf.h"
#include "core/engine.h"
#include "core/netaddr.h"
#include "store/ingest.h"

/* ---- settings ---- */

/* Named limits, [lmtp]; see tr_lmtp_limits_table for defaults and bounds. */
typedef struct {
	int64_t message_bytes;     /* SIZE; larger messages get 552 5.3.4 */
	int64_t command_bytes;     /* a command line longer than this: 500 5.5.2 */
	int64_t address_bytes;     /* longest MAIL/RCPT address */
	int64_t recipients;        /* RCPTs per transaction; more: 452 4.5.3 */
	int64_t errors;            /* protocol errors before 421 and disconnect */
	int64_t connections;       /* concurrent connections; more: 421 */
	int64_t timeout;           /* seconds waiting for a command or a write */
	int64_t data_timeout;      /* seconds between reads inside DATA */
	int64_t shutdown_timeout;  /* seconds in-flight transactions get at shutdown */
	int64_t next_hop_timeout;  /* seconds per next-hop read or write */
	int64_t rules_header_bytes;/* length of the X-Triage-Rules list */
} tr_lmtp_limits;

extern const tr_conftab tr_lmtp_limits_table[];

typedef enum {
	TR_LMTP_ON_ERROR_ACCEPT = 0,  /* internal error: pass on untouched (needs a next hop) */
	TR_LMTP_ON_ERROR_TEMPFAIL,    /* internal error: 451, the client retries */
} tr_lmtp_on_error;

typedef struct {
	char *listen;              /* "inet:127.0.0.1:10027", "unix:/run/triage/lmtp" */
	char *hostname;            /* for the greeting and Received: */
	char *next_hop;            /* "lmtp:inet:HOST:PORT", "lmtp:unix:PATH",
	                            * "smtp:inet:HOST:PORT"; NULL or "" for none */
	bool next_hop_required;    /* 250 only after the next hop accepted too */
	bool soft_bounce;          /* a next hop's 5xx becomes 4xx (like Postfix) */
	unsigned socket_mode;      /* unix socket permissions */
	tr_lmtp_on_error on_error;
	tr_lmtp_limits limits;
} tr_lmtp_settings;

/* Defaults for everything (tests). */
void tr_lmtp_settings_default(tr_lmtp_settings *settings);
/* Read [lmtp]; every problem goes to diag.  listen_override (--listen)
 * wins over [lmtp] listen. */
void tr_lmtp_settings_load(tr_lmtp_settings *settings, const tr_conf *conf,
                           const char *listen_override, tr_diag *diag);
void tr_lmtp_settings_clear(tr_lmtp_settings *settings);

/* ---- the delivery hook ---- */

typedef enum {
	TR_LMTP_DEFER = 0,     /* 451 4.3.0: not committed, retry later (the default) */
	TR_LMTP_DEFER_FULL,    /* 452 4.3.1: not committed, out of disk */
	TR_LMTP_DELIVERED,     /* 250 2.0.0: committed */
	TR_LMTP_REJECT,        /* 550 5.x.x: a permanent verdict; never for an internal error */
} tr_lmtp_result;

/* One recipient's outcome.  The session sets every recipient to
 * TR_LMTP_DEFER before calling the hook, so a hook that fails to answer
 * gives a temporary failure. */
typedef struct {
	tr_lmtp_result result;
	int code;              /* 0: the default code of result; else one of its class */
	char text[240];        /* "": default; else "5.1.1 user unknown" (an enhanced
	                        * status code first is kept, else one is added) */
} tr_lmtp_rcpt_status;

/* One received message.  Everything is borrowed for the hook call. */
typedef struct {
	bool lmtp;                     /* LHLO (per-recipient replies) vs EHLO/HELO */
	const char *session_id;        /* for log lines */
	const char *helo;              /* the client's LHLO/EHLO/HELO argument */
	const char *client;            /* peer address, "unix" or "test" */
	const char *mail_from;         /* without <>, "" for the null sender */
	bool body_8bit;                /* MAIL ... BODY=8BITMIME */
	const char *const *rcpts;      /* accepted recipients, without <> */
	size_t rcpts_count;
	const char *data;              /* dot-unstuffed message, CRLF line ends */
	size_t len;
} tr_lmtp_envelope;

/* Fill status[0 .. envelope->rcpts_count - 1].  Called in the connection's
 * thread; may block (store commit, next hop) within its own time limits. */
typedef void tr_lmtp_deliver_fn(void *context, const tr_lmtp_envelope *envelope,
                                tr_lmtp_rcpt_status *status);

typedef struct {
	tr_lmtp_deliver_fn *deliver;   /* NULL: every message gets 451 */
	void *context;
} tr_lmtp_hook;

/* ---- session: the protocol state machine ---- */

typedef struct tr_lmtp_session tr_lmtp_session;

/*
 * A new session.  settings and hook are borrowed and must outlive it;
 * client and session_id are copied (NULL: "test" and "-").
 */
tr_lmtp_session *tr_lmtp_session_new(const tr_lmtp_settings *settings, const tr_lmtp_hook *hook,
                                     const char *client, const char *session_id);
void tr_lmtp_session_free(tr_lmtp_session **session);

/* Append the 220 greeting to out. */
void tr_lmtp_session_greet(tr_lmtp_session *session, GString *out);
/*
 * Consume len bytes from the client; the replies they cause are appended
 * to out, in order.  A complete message (final ".") calls the hook before
 * this returns.  After the session closed (QUIT, 421), input is ignored.
 */
void tr_lmtp_session_feed(tr_lmtp_session *session, const void *data, size_t len, GString *out);
/* The client was silent too long: 421 4.4.2, closed. */
void tr_lmtp_session_timeout(tr_lmtp_session *session, GString *out);
/* The server is stopping: 421 4.3.2, closed. */
void tr_lmtp_session_shutdown(tr_lmtp_session *session, GString *out);
/* The connection ended (EOF): an unfinished transaction is dropped. */
void tr_lmtp_session_eof(tr_lmtp_session *session);

bool tr_lmtp_session_closed(const tr_lmtp_session *session);
/* A transaction (MAIL .. end of DATA) is under way: let it finish. */
bool tr_lmtp_session_busy(const tr_lmtp_session *session);
/* Receiving message text (the data timeout applies). */
bool tr_lmtp_session_in_data(const tr_lmtp_session *session);

/* Short reply-text defaults, for tests and log lines: "451 4.3.0". */
const char *tr_lmtp_result_name(tr_lmtp_result result);

/* ---- server: the listener ---- */

typedef struct tr_lmtp_server tr_lmtp_server;

/*
 * Bind settings->listen (a stale unix socket file is replaced).  settings
 * and hook are borrowed and must outlive the server.  NULL with *error
 * when the address is malformed or cannot be bound.
 */
tr_lmtp_server *tr_lmtp_server_new(const tr_lmtp_settings *settings, const tr_lmtp_hook *hook,
                                   GError **error);
/* "127.0.0.1:10027" or "unix:/path" (owned by the server). */
const char *tr_lmtp_server_address(const tr_lmtp_server *server);
/*
 * Accept connections until tr_lmtp_server_stop(); then stop accepting,
 * tell idle connections 421, give transactions under way up to
 * shutdown_timeout seconds to finish, close the rest, and return once
 * every connection thread is gone.
 */
void tr_lmtp_server_run(tr_lmtp_server *server);
/* Ask run() to return.  Async-signal-safe; any thread. */
void tr_lmtp_server_stop(tr_lmtp_server *server);
/* Connections open now. */
unsigned tr_lmtp_server_connections(tr_lmtp_server *server);
void tr_lmtp_server_free(tr_lmtp_server **server);

/* ---- client: the next hop ---- */

typedef struct {
	bool lmtp;                   /* LHLO and per-recipient replies, else EHLO */
	tr_netaddr addr;
} tr_lmtp_next_hop;

/* Parse "lmtp:inet:HOST:PORT", "lmtp:unix:PATH", "smtp:inet:HOST:PORT"
 * ("inet:"/"unix:" alone mean LMTP). */
bool tr_lmtp_next_hop_parse(const char *spec, tr_lmtp_next_hop *hop, GError **error);

/*
 * Deliver data (CRLF lines, not dot-stuffed) from envelope->mail_from to
 * envelope->rcpts at the next hop; one status per recipient: 2xx
 * DELIVERED, 4xx DEFER, 5xx REJECT (DEFER when soft_bounce), with the
 * next hop's reply text.  A connection failure or timeout gives DEFER for
 * every recipient not yet answered.
 */
void tr_lmtp_client_deliver(const tr_lmtp_next_hop *hop, const char *helo, int64_t timeout,
                            bool soft_bounce, const tr_lmtp_envelope *envelope,
                            const char *data, size_t len, tr_lmtp_rcpt_status *status);

/* ---- gateway: triage's delivery hook ---- */

/*
 * The ticket store behind the gateway: tr_ingest_message() with a context
 * instead of a tr_ingest, because it is called from every connection
 * thread at once (src/daemon/mailstore.h keeps one store connection per
 * concurrent caller).  True when the message is committed — a new ticket,
 * a reply, an agent's message or a duplicate of one committed before —
 * with *result filled in; false with *error when nothing was committed
 * (TR_STORE_ERROR_FULL: out of disk).
 */
typedef bool tr_lmtp_ingest_fn(void *context, const tr_ingest_input *input, tr_ingest_result *result,
                               GError **error);

typedef struct {
	tr_lmtp_ingest_fn *ingest;     /* NULL: classification only */
	void *context;
} tr_lmtp_store;

typedef struct tr_lmtp_gateway tr_lmtp_gateway;

/*
 * engines (the engine in force, swapped on reload), settings and store are
 * borrowed.  store may be NULL (or have a NULL function): classification
 * only, which needs a next hop — with neither, nothing would keep the
 * message, and this returns NULL with *error.
 */
tr_lmtp_gateway *tr_lmtp_gateway_new(tr_engine_slot *engines, const tr_lmtp_settings *settings,
                                     const tr_lmtp_store *store, GError **error);
void tr_lmtp_gateway_free(tr_lmtp_gateway **gateway);
/* The hook to give to tr_lmtp_session_new / tr_lmtp_server_new. */
tr_lmtp_hook tr_lmtp_gateway_hook(tr_lmtp_gateway *gateway);
/* TEST ONLY: make every classification fail as an internal error would. */
void tr_lmtp_gateway_fail_classify(tr_lmtp_gateway *gateway, bool fail);

#endif
