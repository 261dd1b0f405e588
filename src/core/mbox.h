/*
 * mbox.h — split an mbox file into messages (tr_mbox_*)
 *
 * mboxrd: a message starts at a line beginning with "From " (at the start
 * of the file or after a newline); inside a message, lines ">From ",
 * ">>From " ... lose one '>'.  The "From " separator line itself is not
 * part of the message.  A buffer that does not start with "From " is one
 * message (returned whole).
 */
#ifndef TR_MBOX_H
#define TR_MBOX_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
	const char *data;
	size_t len, pos;
	bool single;      /* not an mbox: one message, already returned? */
	char *buffer;     /* the last message, unescaped (g_malloc'd) */
} tr_mbox_iter;

/* Does the buffer look like an mbox (starts with "From ")? */
bool tr_mbox_detect(const char *data, size_t len);

void tr_mbox_iter_init(tr_mbox_iter *it, const char *data, size_t len);
/* The next message: *msg_r valid until the next call or deinit. */
bool tr_mbox_iter_next(tr_mbox_iter *it, const char **msg_r, size_t *len_r);
void tr_mbox_iter_deinit(tr_mbox_iter *it);

#endif
