/*
 * fold.h — text folding for matching (tr_fold_*)
 *
 * Rules and text are compared in one folded form: lowercase, accents
 * removed from Latin letters (é→e, ñ→n, ü→u, ß→ss, œ→oe), typographic
 * apostrophes and dashes made ASCII (’→', –→-).  Customers type "atencion"
 * as often as "atención"; folding both sides matches either.
 *
 * Folded text is valid UTF-8; characters outside the Latin ranges are only
 * lowercased.  Positions in folded text do not map back to the original.
 */
#ifndef TR_FOLD_H
#define TR_FOLD_H

#include <stddef.h>

#include "core/pool.h"

/* Fold len bytes of valid UTF-8 into a new pool string; *len_r its length. */
char *tr_fold(tr_pool *pool, const char *text, size_t len, size_t *len_r);

/* Same into a g_malloc'd string (for long-lived patterns). */
char *tr_fold_dup(const char *text);

/* Is byte c part of a word (letters, digits, any UTF-8 byte)? */
static inline int tr_fold_is_word_byte(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c >= 0x80 || c == '_';
}

#endif
