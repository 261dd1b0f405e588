/*
 * chatcmd.h — chat-ops commands typed in a room or a chat (tr_chatcmd_*)
 *
 * Turns one message body into a typed command, or into one line of error
 * text for the room.  Pure: no I/O, no allocation, no global state; the
 * result lives in the caller's struct.  It never executes anything and
 * never hands back raw input: every field is checked (ticket numbers are
 * integers, names and teams a small character set), so nothing typed in a
 * room reaches SQL, a template or a header unchecked.  Who may run a
 * command is not decided here: the daemon checks the sender's real JID
 * against its allow-list (DESIGN.md, invariant 7).
 *
 * Syntax (case-insensitive command names, any run of spaces or tabs
 * between words, leading and trailing blanks ignored, one command per
 * message; TKT is the configured ticket prefix):
 *
 *   !ack TKT-123             acknowledge the escalation
 *   !claim TKT-123           take the ticket yourself
 *   !assign TKT-123 NAME     give it to NAME (letters, digits, . _ - @ +)
 *   !resolve TKT-123         mark it resolved
 *   !pause TKT-123           stop its SLA clocks
 *   !resume TKT-123          start them again
 *   !show TKT-123            summary of the ticket
 *   !open [P1..P4|TEAM]      open tickets, optionally one priority or team
 *   !help [COMMAND]          the command list, or one command's usage
 *
 * A ticket is written PREFIX-NUMBER (any case, leading zeros allowed),
 * #NUMBER or NUMBER; 1 to 12 digits, not zero.
 *
 * Refused (TR_CHATCMD_INVALID with a reason): unknown commands, missing
 * or extra arguments ("usage: !assign TKT-123 NAME"), invalid UTF-8,
 * control and invisible formatting characters (C0/C1, DEL, bidi overrides,
 * zero-width characters), a line break inside the command, input longer
 * than TR_CHATCMD_INPUT_MAX bytes.  Text that does not start with '!'
 * (after blanks) is not a command at all (TR_CHATCMD_NONE): ordinary
 * conversation in the room.
 */
#ifndef TR_CHATCMD_H
#define TR_CHATCMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TR_CHATCMD_INPUT_MAX 512   /* bytes of one command message */
#define TR_CHATCMD_NAME_MAX 64     /* bytes of an !assign NAME */
#define TR_CHATCMD_TEAM_MAX 32     /* bytes of an !open TEAM */
#define TR_CHATCMD_PREFIX_MAX 16   /* ticket prefix, letters and digits */
#define TR_CHATCMD_TICKET_DIGITS 12

typedef enum {
	TR_CHATCMD_NONE,     /* not a command (no leading '!') */
	TR_CHATCMD_INVALID,  /* a command, but wrong: cmd->error says why */
	TR_CHATCMD_ACK,
	TR_CHATCMD_CLAIM,
	TR_CHATCMD_ASSIGN,
	TR_CHATCMD_RESOLVE,
	TR_CHATCMD_PAUSE,
	TR_CHATCMD_RESUME,
	TR_CHATCMD_SHOW,
	TR_CHATCMD_OPEN,
	TR_CHATCMD_HELP,
} tr_chatcmd_kind;

typedef struct {
	tr_chatcmd_kind kind;
	int64_t ticket;                        /* > 0 for commands with a ticket, else 0 */
	char ticket_text[TR_CHATCMD_PREFIX_MAX + 24]; /* "TKT-000123" */
	char name[TR_CHATCMD_NAME_MAX + 1];    /* ASSIGN: the assignee */
	int priority;                          /* OPEN: 1..4, 0 = any */
	char team[TR_CHATCMD_TEAM_MAX + 1];    /* OPEN: lower-case team, "" = any */
	tr_chatcmd_kind topic;                 /* HELP: the command asked about, NONE = all */
	char error[192];                       /* INVALID: one printable ASCII line */
} tr_chatcmd;

/*
 * Parse text (len bytes; it need not be NUL-terminated).  ticket_prefix:
 * the configured prefix ("TKT"); NULL or not 1-16 letters/digits means
 * "TKT".  Fills *cmd completely and returns cmd->kind.
 */
tr_chatcmd_kind tr_chatcmd_parse(const char *text, size_t len, const char *ticket_prefix, tr_chatcmd *cmd);

/* "ack", "claim", ... ("none", "invalid" for the others). Static. */
const char *tr_chatcmd_name(tr_chatcmd_kind kind);
/* The usage line of a command with the prefix filled in, e.g.
 * "!assign TKT-123 NAME", into buf; returns buf. */
const char *tr_chatcmd_usage(tr_chatcmd_kind kind, const char *ticket_prefix, char *buf, size_t size);
/* The reply to !help (topic NONE: every command, one per line; else that
 * command's usage and what it does), into buf; returns buf. */
const char *tr_chatcmd_help(tr_chatcmd_kind topic, const char *ticket_prefix, char *buf, size_t size);

#endif
