/*
 * similar.h — near-duplicate detection for mass incidents (tr_similar_*)
 *
 * A MinHash sketch over word 3-shingles of a ticket's folded subject and
 * new text: two sketches agree in about the same share of slots as the two
 * texts share shingles (Jaccard similarity).  Sketches are fixed-size byte
 * arrays, stored with the ticket and compared in microseconds.
 */
#ifndef TR_SIMILAR_H
#define TR_SIMILAR_H

#include <stddef.h>
#include <stdint.h>

#include "core/msg.h"

#define TR_SIMILAR_SLOTS 48
#define TR_SIMILAR_BYTES (TR_SIMILAR_SLOTS * 4)
/* Characters of new text that go into a sketch. */
#define TR_SIMILAR_TEXT_CHARS 1500

typedef struct {
	uint32_t slot[TR_SIMILAR_SLOTS];
	unsigned shingles;   /* 0: nothing to compare (empty text) */
} tr_similar;

/* The sketch of a message (subject + new text). */
void tr_similar_of_msg(const tr_msg *msg, tr_similar *out);
/* The sketch of any text. */
void tr_similar_of_text(const char *text, size_t len, tr_similar *out);
/* Estimated Jaccard similarity 0..1; 0 when either is empty. */
double tr_similar_compare(const tr_similar *a, const tr_similar *b);

/* Serialise to TR_SIMILAR_BYTES bytes (little-endian) and back; false when
 * the bytes have the wrong length. */
void tr_similar_pack(const tr_similar *s, uint8_t out[TR_SIMILAR_BYTES]);
int tr_similar_unpack(const void *bytes, size_t len, tr_similar *out);

#endif
