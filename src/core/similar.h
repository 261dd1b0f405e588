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

/*
 * Locality-sensitive bands: 16 bands of 3 slots each.  Two texts with
 * Jaccard similarity 0.5 share at least one band with probability 0.88,
 * at 0.8 almost surely, at 0.2 with 0.12 — so a store can find the few
 * candidates to compare through an index instead of scanning every
 * recent ticket.  Returns 0 bands for an empty sketch.
 */
#define TR_SIMILAR_BANDS 16
unsigned tr_similar_bands(const tr_similar *s, int64_t bands[TR_SIMILAR_BANDS]);

/* Serialise to TR_SIMILAR_BYTES bytes (little-endian) and back; false when
 * the bytes have the wrong length. */
void tr_similar_pack(const tr_similar *s, uint8_t out[TR_SIMILAR_BYTES]);
int tr_similar_unpack(const void *bytes, size_t len, tr_similar *out);

#endif
