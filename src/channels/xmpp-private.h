/*
 * xmpp-private.h — the parts of xmpp.c that unit tests check without a
 * server: stanza parsing into typed structs, message classification, the
 * per-room rate limiter, JID and body checks.  Not for other
 * modules.
 */
#ifndef TR_XMPP_PRIVATE_H
#define TR_XMPP_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>
#include <strophe.h>

#define TR_XMPP_MAX_STATUS 8

typedef enum {
	TR_XMPP_IN_MESSAGE,
	TR_XMPP_IN_PRESENCE,
	TR_XMPP_IN_IQ,
	TR_XMPP_IN_CONN,      /* a connection event, not a stanza */
} tr_xmpp_in_kind;

/* Everything we use from one incoming stanza, copied out of libstrophe's
 * tree (g_malloc'd strings; NULL when absent). */
typedef struct {
	tr_xmpp_in_kind kind;
	char *type, *from, *id;
	/* message */
	char *body;
	bool truncated;          /* body cut to body_max */
	bool subject;            /* has <subject/> */
	bool delayed;            /* urn:xmpp:delay (or legacy jabber:x:delay) */
	bool invite;             /* a MUC invitation (muc#user or jabber:x:conference) */
	char *origin_id;         /* XEP-0359 origin-id */
	char *stanza_id;         /* XEP-0359 stanza-id (by = sender's bare JID or ours) */
	/* presence: muc#user */
	bool muc_user;
	int status[TR_XMPP_MAX_STATUS];
	unsigned n_status;
	char *item_jid, *item_nick, *item_role, *item_affiliation, *item_reason;
	bool destroyed;
	/* type=error */
	char *error_condition, *error_text;
	/* iq */
	char *payload_name, *payload_ns;
	/* TR_XMPP_IN_CONN */
	int conn_event;          /* xmpp_conn_event_t */
	int conn_error;          /* errno-like, 0 when none */
	char *conn_text;         /* stream error condition and text */
} tr_xmpp_in;

/* Copy what we need out of stanza; bodies longer than body_max are cut at
 * a character boundary.  own_bare: our bare JID (to pick our stanza-id). */
tr_xmpp_in *tr_xmpp_in_parse(xmpp_stanza_t *stanza, size_t body_max, const char *own_bare);
void tr_xmpp_in_free(tr_xmpp_in **in);
bool tr_xmpp_in_has_status(const tr_xmpp_in *in, int code);

typedef enum {
	TR_XMPP_MSG_IGNORE,      /* headline, no sender, server notices, own account, invitations */
	TR_XMPP_MSG_ERROR,       /* type=error: may fail an outstanding message */
	TR_XMPP_MSG_ROOM,        /* an occupant said something: report */
	TR_XMPP_MSG_ECHO,        /* our own post, reflected: confirms it */
	TR_XMPP_MSG_HISTORY,     /* delayed groupchat: ignored */
	TR_XMPP_MSG_EARLY,       /* groupchat before our join completed: ignored */
	TR_XMPP_MSG_ROOM_OTHER,  /* subject, room notices, no body: ignored */
	TR_XMPP_MSG_CHAT,        /* 1:1 message with a body: report */
	TR_XMPP_MSG_MUC_PRIVATE, /* private message through a room: ignored */
} tr_xmpp_msg_class;

/* room_nick: our nick in the room the sender's bare JID names, NULL when
 * it is not one of our rooms; joined: that room's join has completed. */
tr_xmpp_msg_class tr_xmpp_classify_message(const tr_xmpp_in *in, const char *room_nick,
                                           bool joined, const char *own_bare);
const char *tr_xmpp_msg_class_name(tr_xmpp_msg_class c);

/* Token bucket: per_minute tokens, refilled continuously, starts full. */
typedef struct {
	double tokens;
	gint64 last;             /* monotonic microseconds; 0 = never used */
} tr_xmpp_bucket;
/* Take a token at now (microseconds): true when one was there.
 * per_minute <= 0: no limit. */
bool tr_xmpp_bucket_take(tr_xmpp_bucket *b, int64_t per_minute, gint64 now);
/* Microseconds from now until a token is there (0: now). */
gint64 tr_xmpp_bucket_wait(const tr_xmpp_bucket *b, int64_t per_minute, gint64 now);

/* JID checks: tr_xmpp_jid_valid() and friends are in xmpp.h. */

/* Text fit for an XML body (g_free): invalid UTF-8 repaired, CR LF and
 * lone CR turned into LF, characters XML 1.0 forbids dropped (C0 controls
 * except TAB and LF, U+FFFE, U+FFFF). */
char *tr_xmpp_body_clean(const char *text);

#endif
