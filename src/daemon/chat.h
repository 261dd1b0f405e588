/*
 * chat.h — the daemon's XMPP side (tr_chat_*): the outbox worker for xmpp
 * rows, chat-ops in the escalation rooms, chat intake
 *
 * One thread, the sibling of the mail outbox worker (deliver.h).  It owns
 * one store connection and reads the events of a tr_xmpp connection that
 * the daemon started early (see xmpp.h on file descriptors):
 *
 * Outbox.  Due xmpp rows (room posts of escalations and of the SLA
 * ladder, acknowledgments and breach notices to chat customers) are
 * claimed, rendered (store/context.h: templates/chat/NAME.LANG.tmpl) and
 * handed to the connection with "outbox:ROW" as the message id.  The row
 * stays 'sending' until the connection reports the one result of that
 * message:
 *   ok         sent (a room echoed the post; the server routed the chat);
 *   failed     never written, or refused: retried with exponential backoff
 *              from [xmpp] outbox_retry to outbox_retry_max, failed (an
 *              event for the operator) once older than outbox_give_up;
 *   uncertain  written, unconfirmed (the connection broke): like SMTP's
 *              ambiguous outcome — one retry after ambiguous_delay, marked
 *              "(resent ...)" in the text, and if that is uncertain too the
 *              row stops for a human (`triage outbox --failed`).
 * Rows a killed daemon left 'sending' are recovered at start as one
 * ambiguous retry.  Nothing is sent twice behind the outbox's back: the
 * connection never re-sends by itself, a row has at most one message in
 * flight, and its result is recorded exactly once (a store write that
 * fails is kept and retried, never dropped).
 *
 * Chat-ops.  A room message that parses as a command (channels/chatcmd.h)
 * runs when its sender is allowed (daemon/chatops.h), and the answer is
 * posted straight to the room, not through the outbox: it answers a
 * person who is waiting now, the command's effect is already committed,
 * and an answer re-sent after a restart would be stale.  Unauthorized
 * senders get "not allowed" (at most 3 answers per sender and minute, so
 * they cannot use up the room's post rate) and nothing changes.
 * Operators and [person]s may also send commands in a 1:1 chat; the
 * answer comes back in that chat, and their other chats are no tickets.
 *
 * Chat intake.  A 1:1 chat from anyone else is a customer message:
 * tr_ingest_message() with the bare JID, the text, the message's id and
 * [xmpp] chat_thread_window (follow-ups thread onto the open chat ticket).
 * The acknowledgment ingest queues (channel xmpp) goes out through the
 * outbox above.  A chat cannot be confirmed to its source: one that
 * arrives while the store is unavailable is retried for a minute, then
 * logged as lost.
 */
#ifndef TR_CHAT_H
#define TR_CHAT_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "channels/xmpp.h"
#include "core/engine.h"
#include "store/outbox.h"
#include "store/store.h"

typedef struct tr_chat tr_chat;

typedef struct {
	tr_xmpp *xmpp;                       /* borrowed; the worker closes it when it stops */
	const tr_xmpp_config *xmpp_config;   /* copied: operators, chat and outbox limits */
	const tr_store_settings *store;      /* copied: the thread opens its own connection */
	tr_engine_slot *engines;             /* borrowed: the engine in force */
	const tr_outbox_options *outbox;     /* copied */
	int64_t poll_interval;               /* seconds between looks for due retries (default 5) */
	int64_t drain_ms;                    /* at stop, wait this long for results in flight (default 3000) */
	/* Called after an intake committed actions (wakes the mail worker). */
	void (*on_commit)(void *user_data);
	void *user_data;
} tr_chat_options;

/* Start the thread. */
tr_chat *tr_chat_start(const tr_chat_options *options);
/* New outbox work may be due: look now.  Any thread, never blocks. */
void tr_chat_notify(tr_chat *chat);
/* Ask the thread to stop; returns at once. */
void tr_chat_stop(tr_chat *chat);
/* Stop: no new claims, wait up to drain_ms for the results in flight,
 * close the connection (bounded), record what it reports, end the thread;
 * then free.  Sets *chat to NULL. */
void tr_chat_free(tr_chat **chat);

typedef struct {
	unsigned posted, sent, retried, ambiguous, failed, render_failed;
	unsigned commands, refused, intake, intake_lost;
	unsigned inflight;
} tr_chat_stats;

void tr_chat_get_stats(tr_chat *chat, tr_chat_stats *stats);

#endif
