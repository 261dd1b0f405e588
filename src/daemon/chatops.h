/*
 * chatops.h — chat-ops: who may run a command typed in a room or a chat,
 * and what it does to the store (tr_chatops_*)
 *
 * The parser (channels/chatcmd.h) turns a message into a typed command;
 * this module decides whether its sender may run it and runs it.  Pure
 * store work, no network: the daemon's XMPP worker (daemon/chat.h) posts
 * the answer.  Every command that names a ticket leaves a chat_command
 * event on it with the actor, in the same transaction as its effect (the
 * operation's own event, e.g. acked or assigned, carries the actor too);
 * !open and !help change nothing and are only logged.
 *
 *   !ack TKT        tr_ticket_ack: first response recorded, the escalation
 *                   acknowledged (no reminders to the secondary on-call or
 *                   the manager; the resolution clock runs on)
 *   !claim TKT      assign to the sender's own [person]
 *   !assign TKT P   assign to [person] P of teams.conf
 *   !resolve TKT    tr_ticket_resolve (clocks stop, no more ladder steps)
 *   !pause / !resume TKT   stop / restart the SLA clocks
 *   !show TKT       a three-line summary with both SLA clocks
 *   !open [P1|TEAM] the open tickets, most urgent first (at most 10)
 *   !help [CMD]     the command list
 */
#ifndef TR_CHATOPS_H
#define TR_CHATOPS_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include "channels/chatcmd.h"
#include "channels/xmpp.h"
#include "core/engine.h"
#include "store/store.h"

typedef struct {
	char *name;     /* for events and logs: the [person] name, else the bare JID, else "ROOM/NICK" */
	char *person;   /* the [person] of teams.conf, or NULL */
	char *display;  /* "Ana Lima", or name */
} tr_chatops_actor;

void tr_chatops_actor_clear(tr_chatops_actor *actor);

/*
 * Is the sender of a command allowed to run it?  jid: the real JID the
 * room showed (or the chat's sender), NULL when hidden; nick: the room
 * nick, NULL in a 1:1 chat; room: the room's JID or NULL.
 *   - with a JID: allowed when its bare form is in [xmpp] operators or is
 *     the jid of a [person] in teams.conf; the nick plays no part.
 *   - without one: allowed only when the nick is in [xmpp]
 *     operators_by_nick (weaker: anyone can take a free nick).
 * Fills *actor either way (clear it after use).
 */
bool tr_chatops_authorize(const tr_xmpp_config *config, const tr_policy *policy, const char *jid,
                          const char *nick, const char *room, tr_chatops_actor *actor);

/*
 * Run an allowed command against the store and write the answer (plain
 * text, possibly several lines) to reply.  where: "ROOM" or "chat", for
 * the event.  Every command that names a ticket leaves a chat_command
 * event on it with the actor, in the same transaction as its effect.
 * Returns true when the command did what it says (false: refused, e.g.
 * no such ticket, or the store failed; the reply says why).
 */
bool tr_chatops_execute(tr_store *store, const tr_engine *engine, const tr_chatcmd *cmd,
                        const tr_chatops_actor *actor, const char *where, int64_t now, GString *reply);

#endif
