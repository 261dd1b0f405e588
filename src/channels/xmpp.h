/*
 * xmpp.h — the XMPP connection: escalation rooms, chat-ops, chat intake
 * (tr_xmpp_*)
 *
 * One tr_xmpp is one client session (libstrophe) run by its own thread,
 * which owns the libstrophe context and nothing else touches it.  The rest
 * of the program talks to it through a thread-safe queue in each
 * direction:
 *
 *   out:  tr_xmpp_post_room() / tr_xmpp_send_chat() enqueue a message and
 *         return at once.  The thread sends it when the session is up and,
 *         for a room, joined; rooms are rate-limited (room_rate per minute).
 *   in:   tr_xmpp_next_event() hands out events in order: connected,
 *         disconnected, joined, left, room message, chat message, and one
 *         send result per enqueued message, keyed by the caller's id.
 *
 *     tr_xmpp *x = tr_xmpp_start(&cfg, &error);
 *     tr_xmpp_post_room(x, "oncall@conference.example.org", text, "outbox-42", &error);
 *     tr_xmpp_event *ev;
 *     while (tr_xmpp_next_event(x, 1000, &ev)) { ...; tr_xmpp_event_free(&ev); }
 *     tr_xmpp_stop(&x);
 *
 * What "sent" means (TR_XMPP_SEND_OK), per message:
 *   room post  the room reflected it back to us (our own echo, matched by
 *              stanza id or XEP-0359 origin-id): the room accepted it and
 *              passed it to every occupant.  confirmation = ECHO.
 *   chat       our server answered an XEP-0199 ping written after the
 *              message, and no error bounce for the message came before
 *              that answer: the server has read and routed it (a server
 *              answers a session's stanzas in order).  confirmation =
 *              SERVER.  A bounce from a remote domain may still come later;
 *              it is logged, not reported (the result went out already).
 * TR_XMPP_SEND_FAILED: never written (send_timeout passed while we were
 *   not connected or not in the room, or the connection was closed by
 *   tr_xmpp_stop before it was written), or refused by the server or room
 *   (an error reply naming the message).  Safe to retry.
 * TR_XMPP_SEND_UNCERTAIN: written, but the connection broke (or
 *   echo_timeout passed) before the confirmation: it may or may not have
 *   been delivered.  The outbox decides whether to repeat it (DESIGN.md,
 *   invariant 2).  Messages are never re-sent behind the caller's back, so
 *   a message is reported exactly once and delivered at most once by us.
 *
 * Rooms: the configured rooms are joined after every (re)connect, without
 * history (<history maxstanzas='0'/>); a room that is posted to but not
 * configured is joined on first use.  Status 110 marks our own presence;
 * status 201 means we just created the room: with create_rooms = yes we
 * submit the default (empty) muc#owner form and the join completes when
 * the room accepts it; with create_rooms = no we leave again (a typo in a
 * room name must not create a room nobody reads) and retry with backoff.
 * After a kick, ban, room shutdown or join error the room is retried with
 * backoff (reconnect_backoff .. reconnect_backoff_max).  Posts for a room
 * wait in its queue until it is joined, or fail at send_timeout.
 *
 * Incoming: room messages are reported only after the join completed, not
 * from ourselves (echoes confirm our posts instead), not when delayed
 * (urn:xmpp:delay = history), not without a body (subjects, chat states).
 * An occupant's real JID is reported when the room shows it to us: in a
 * non-anonymous room, or in a semi-anonymous room where we are a moderator
 * (we own the rooms we create).  The nick alone is not an identity: chat-ops
 * must check the real JID (DESIGN.md, invariant 7).  Chat messages are
 * type chat/normal with a body from a user JID (node@domain), including
 * offline messages the server stored while we were away (delayed = true);
 * private messages through a room and messages from our own account are
 * ignored.  Bodies are valid UTF-8 (the XML parser guarantees it), cut to
 * incoming_max bytes (truncated = true).
 *
 * Liveness: an XEP-0199 ping every ping_interval; no answer within
 * ping_timeout closes the connection; reconnects back off exponentially
 * (core/backoff) from reconnect_backoff to reconnect_backoff_max, or on
 * tr_backoff_slow after failures a human must fix (untrusted certificate,
 * socket beyond FD_SETSIZE), and reset once a session is up.  libstrophe's stream management (XEP-0198) is
 * disabled: it would resend stanzas on its own and break the accounting
 * above.  Each connection attempt uses a fresh xmpp_conn_t.
 *
 * File descriptors: libstrophe waits with select(), which cannot watch an
 * fd >= FD_SETSIZE (1024).  A socket with such a number is refused (the
 * connection attempt fails with an error saying so) instead of corrupting
 * memory; start the XMPP connection early in the daemon, before the fd
 * table fills up.
 *
 * Threading: every function below may be called from any thread, except
 * that tr_xmpp_stop() must not race with other calls on the same object.
 * The connection thread only copies what libstrophe hands to its callbacks
 * and queues it; all processing happens in its own loop
 * (xmpp_run_once with a 50 ms timeout, so a queued message goes out within
 * ~50 ms).
 */
#ifndef TR_XMPP_H
#define TR_XMPP_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/conf.h"

/* ---- configuration: the [xmpp] group ---- */

typedef struct {
	int64_t port;                  /* 0: 5222 with host, else DNS SRV of the JID domain */
	int64_t ping_interval;         /* seconds between XEP-0199 pings; 0 = none */
	int64_t ping_timeout;          /* seconds a ping may stay unanswered */
	int64_t connect_timeout;       /* seconds for TCP + TLS + login + bind */
	int64_t join_timeout;          /* seconds for a room to answer our join */
	int64_t reconnect_backoff;     /* seconds before the first retry */
	int64_t reconnect_backoff_max; /* seconds between retries, at most */
	int64_t room_rate;             /* posts per minute per room (burst as large); 0 = no limit */
	int64_t send_timeout;          /* seconds a message may wait to be written */
	int64_t echo_timeout;          /* seconds a room post may wait for its echo */
	int64_t queue_max;             /* messages waiting or unconfirmed, at most */
	int64_t body_max;              /* bytes of one outgoing body */
	int64_t incoming_max;          /* bytes of an incoming body kept */
	int64_t event_queue_max;       /* unread events; beyond it messages are dropped */
	/* Read here, used by the daemon's XMPP worker (daemon/chat.h), not by
	 * the connection: */
	int64_t chat_thread_window;    /* seconds a chat follow-up threads onto its open ticket; 0 = never */
	int64_t outbox_retry;          /* seconds before retrying a failed post; doubles per attempt */
	int64_t outbox_retry_max;      /* longest wait between retries */
	int64_t outbox_give_up;        /* a post still failing this long after it was queued is failed */
	int64_t ambiguous_delay;       /* seconds before the one marked retry of an uncertain post */
	int64_t outbox_inflight;       /* outbox rows handed to the connection and unconfirmed, at most */
} tr_xmpp_limits;

extern const tr_conftab tr_xmpp_limits_table[];

typedef enum {
	TR_XMPP_TLS_REQUIRED,   /* STARTTLS, refuse a server without it (default) */
	TR_XMPP_TLS_DIRECT,     /* TLS from the first byte (XEP-0368, port 5223) */
	TR_XMPP_TLS_OPTIONAL,   /* STARTTLS when offered: loopback tests only */
} tr_xmpp_tls_mode;

typedef struct {
	bool enabled;           /* an [xmpp] group with a jid exists */
	char *jid;              /* bare (or full) JID of the bot account */
	char *password;         /* from password or password_file */
	char *host;             /* NULL: the JID domain */
	tr_xmpp_tls_mode tls;
	char *ca_file;          /* NULL: the system trust store */
	bool verify;            /* refuse an untrusted certificate (default) */
	char *nick;             /* room nick, "triage" */
	char **rooms;           /* NULL-terminated room JIDs, lower case */
	bool create_rooms;      /* configure rooms we create (status 201); default no */
	/* Chat-ops authorization (the daemon's, daemon/chat.h): */
	char **operators;       /* NULL-terminated bare JIDs, lower case; may be empty */
	char **operators_by_nick; /* NULL-terminated room nicks trusted where a room hides real
	                           * JIDs (weaker: anyone may take a free nick); may be empty */
	tr_xmpp_limits limits;
} tr_xmpp_config;

/* Defaults: disabled, no JID, tls required, verify, nick "triage". */
void tr_xmpp_config_default(tr_xmpp_config *cfg);
/* Read [xmpp] into cfg (defaults first).  Every problem goes to diag with
 * file:line; returns false when there was an error.  No [xmpp] group:
 * enabled = false, true. */
bool tr_xmpp_config_load(tr_xmpp_config *cfg, const tr_conf *conf, tr_diag *diag);
/* Deep copy (the connection keeps its own). */
void tr_xmpp_config_copy(tr_xmpp_config *dst, const tr_xmpp_config *src);
/* Free the strings (the password is wiped first) and reset to defaults. */
void tr_xmpp_config_clear(tr_xmpp_config *cfg);
/* The effective settings as "key = value" lines, the password hidden. */
void tr_xmpp_config_print(const tr_xmpp_config *cfg, GString *out);

/* ---- JIDs ---- */

/* node@domain[/resource] with sane parts: lengths per RFC 7622 (1023),
 * no whitespace, control characters or the characters "&'/:<>@ in the
 * node, a domain of letters, digits, '-', '.', or non-ASCII (IDN).
 * need_node: a node is required; resource: a resource may follow. */
bool tr_xmpp_jid_valid(const char *jid, bool need_node, bool resource);
/* Lower-case the node and domain, keep the resource (g_free). */
char *tr_xmpp_jid_normalize(const char *jid);
/* The bare JID (g_free); NULL for NULL. */
char *tr_xmpp_jid_bare(const char *jid);
/* Pointer to the resource inside jid, or NULL. */
const char *tr_xmpp_jid_resource(const char *jid);

/* ---- the connection ---- */

typedef struct tr_xmpp tr_xmpp;

#define TR_XMPP_ERROR (tr_xmpp_error_quark())
GQuark tr_xmpp_error_quark(void);
typedef enum {
	TR_XMPP_ERROR_CONFIG,    /* start: the configuration cannot work */
	TR_XMPP_ERROR_INVALID,   /* enqueue: bad JID, id or body */
	TR_XMPP_ERROR_FULL,      /* enqueue: queue_max messages outstanding */
	TR_XMPP_ERROR_STOPPED,   /* enqueue after tr_xmpp_close() */
} tr_xmpp_error_code;

/* Start the connection thread; it connects in the background (watch for
 * TR_XMPP_EVENT_CONNECTED).  cfg is copied.  NULL + error when cfg is
 * unusable (no JID, no password, ...). */
tr_xmpp *tr_xmpp_start(const tr_xmpp_config *cfg, GError **error);

/* Stop enqueueing, leave the rooms, close the stream and end the thread,
 * in at most timeout_ms (<= 0: 2000).  Every message still outstanding
 * gets its result event first (FAILED when never written, UNCERTAIN when
 * written and unconfirmed).  The events stay readable; calling it again
 * does nothing.  Returns false when the thread did not finish in time (it
 * is blocked in a library call: DNS lookup or TLS handshake). */
bool tr_xmpp_close(tr_xmpp *x, int timeout_ms);
/* tr_xmpp_close(x, 0) and free everything, unread events included; sets
 * *x = NULL.  A thread that did not finish in time is detached and frees
 * its own state when the blocking call returns, so this returns in ~2 s
 * at most.  The process may exit while such a thread is still inside
 * OpenSSL: tr_xmpp_start() initialises OpenSSL without its exit handler
 * (OPENSSL_INIT_NO_ATEXIT), which would otherwise free OpenSSL's global
 * state under the thread.  Only the first initialisation in a process
 * counts, so a program that uses OpenSSL before tr_xmpp_start() must do
 * the same first (triage's main() does). */
void tr_xmpp_stop(tr_xmpp **x);

/* Enqueue a groupchat message to room (a bare room JID) or a chat message
 * to jid (node@domain[/resource]).  id is the caller's key for the send
 * result (1..200 printable bytes; not sent on the wire).  text is copied;
 * invalid UTF-8 is repaired and characters XML cannot carry are dropped.
 * false + TR_XMPP_ERROR_* when refused; nothing is reported for it then. */
bool tr_xmpp_post_room(tr_xmpp *x, const char *room, const char *text, const char *id,
                       GError **error);
bool tr_xmpp_send_chat(tr_xmpp *x, const char *jid, const char *text, const char *id,
                       GError **error);

/* ---- events ---- */

typedef enum {
	TR_XMPP_EVENT_CONNECTED,     /* session up; jid = our bound full JID */
	TR_XMPP_EVENT_DISCONNECTED,  /* session gone (or an attempt failed); text = why */
	TR_XMPP_EVENT_JOINED,        /* room joined; created = we created it */
	TR_XMPP_EVENT_LEFT,          /* out of room (left_reason, text); rejoin follows */
	TR_XMPP_EVENT_ROOM_MESSAGE,  /* room, nick, jid (real JID or NULL), body, stanza_id */
	TR_XMPP_EVENT_CHAT_MESSAGE,  /* jid (sender's full JID), body, stanza_id, delayed */
	TR_XMPP_EVENT_SEND_RESULT,   /* id, send_status, confirmation, text */
} tr_xmpp_event_type;

typedef enum {
	TR_XMPP_LEFT_CONNECTION,     /* the connection went down */
	TR_XMPP_LEFT_KICKED,         /* 307 */
	TR_XMPP_LEFT_BANNED,         /* 301 */
	TR_XMPP_LEFT_REMOVED,        /* 321/322: affiliation change, members-only */
	TR_XMPP_LEFT_SHUTDOWN,       /* 332 or the room was destroyed */
	TR_XMPP_LEFT_JOIN_FAILED,    /* error reply to the join, or join_timeout */
	TR_XMPP_LEFT_NOT_FOUND,      /* the room did not exist and create_rooms = no */
	TR_XMPP_LEFT_OTHER,
} tr_xmpp_left_reason;

typedef enum {
	TR_XMPP_SEND_OK,
	TR_XMPP_SEND_FAILED,
	TR_XMPP_SEND_UNCERTAIN,
} tr_xmpp_send_status;

typedef enum {
	TR_XMPP_CONFIRMED_NONE,      /* not sent, or uncertain */
	TR_XMPP_CONFIRMED_ECHO,      /* the room reflected our post */
	TR_XMPP_CONFIRMED_SERVER,    /* the server answered a ping written after it */
} tr_xmpp_confirmation;

/* Every string is owned by the event (NULL when not applicable). */
typedef struct {
	tr_xmpp_event_type type;
	gint64 time;                 /* g_get_real_time() when queued, microseconds */
	char *room;                  /* JOINED, LEFT, ROOM_MESSAGE; SEND_RESULT of a post */
	char *nick;                  /* ROOM_MESSAGE: the occupant's nick */
	char *jid;                   /* ROOM_MESSAGE: real JID or NULL; CHAT_MESSAGE: sender;
	                              * CONNECTED: our full JID; SEND_RESULT of a chat: recipient */
	char *body;                  /* ROOM_MESSAGE, CHAT_MESSAGE */
	char *stanza_id;             /* XEP-0359 stanza-id set by the room/server, else the id attribute */
	char *id;                    /* SEND_RESULT: the caller's id */
	char *text;                  /* DISCONNECTED, LEFT, SEND_RESULT: human-readable reason */
	bool created;                /* JOINED */
	bool delayed;                /* CHAT_MESSAGE: stored offline by the server */
	bool truncated;              /* body cut to incoming_max */
	tr_xmpp_left_reason left_reason;
	tr_xmpp_send_status send_status;
	tr_xmpp_confirmation confirmation;
} tr_xmpp_event;

/* Wait up to timeout_ms (0: do not wait, < 0: forever) for the next event.
 * true and *event (free with tr_xmpp_event_free) when there is one; false
 * and *event = NULL on timeout, or at once when the thread has ended and
 * the queue is empty. */
bool tr_xmpp_next_event(tr_xmpp *x, int timeout_ms, tr_xmpp_event **event);
void tr_xmpp_event_free(tr_xmpp_event **event);
/* A file descriptor that is readable while events are waiting, for a
 * poll() loop (owned by x; do not read or close it). */
int tr_xmpp_event_fd(const tr_xmpp *x);

const char *tr_xmpp_event_type_name(tr_xmpp_event_type type);
const char *tr_xmpp_left_reason_name(tr_xmpp_left_reason reason);
const char *tr_xmpp_send_status_name(tr_xmpp_send_status status);

/* A snapshot for logs and tests. */
typedef struct {
	bool connected;
	unsigned rooms_joined;
	unsigned outstanding;        /* enqueued messages without a result yet */
	uint64_t connects;           /* sessions established */
	uint64_t sent, failed, uncertain;
	uint64_t dropped_events;     /* incoming messages dropped: event queue full */
} tr_xmpp_stats;
void tr_xmpp_get_stats(tr_xmpp *x, tr_xmpp_stats *stats);

#endif
