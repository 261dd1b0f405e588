/*
 * acmatch.h — Aho–Corasick multi-literal scanner (tr_ac_*)
 *
 * The rule prefilter: every literal that a rule needs is added once; one
 * pass over a text reports every occurrence of every literal, so the
 * expensive matchers (TRE) only run for rules whose literals occur.
 *
 * The automaton is a DFA over byte classes (bytes that occur in some
 * literal get a class each, all other bytes share one), so the scan costs
 * one table lookup per byte.  Build with tr_ac_add() then tr_ac_compile();
 * after that the automaton is read-only and may be shared by threads.
 */
#ifndef TR_ACMATCH_H
#define TR_ACMATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tr_ac tr_ac;

tr_ac *tr_ac_new(void);
void tr_ac_free(tr_ac **ac);

/* Add a literal (len > 0 bytes, compared exactly); returns its id.  The
 * same literal added twice returns the same id.  Not after compile. */
unsigned tr_ac_add(tr_ac *ac, const char *literal, size_t len);
void tr_ac_compile(tr_ac *ac);

unsigned tr_ac_count(const tr_ac *ac);          /* distinct literals */
size_t tr_ac_literal_len(const tr_ac *ac, unsigned id);
size_t tr_ac_memory(const tr_ac *ac);          /* bytes of tables */

/* Iterate over matches: ids and end offsets (one past the last byte),
 * in order of end offset.  The iterator borrows text. */
typedef struct {
	const tr_ac *ac;
	const unsigned char *text;
	size_t len, pos;
	uint32_t state;
	int32_t pending;  /* next state on the output chain, or -1 */
} tr_ac_iter;

void tr_ac_iter_init(tr_ac_iter *it, const tr_ac *ac, const char *text, size_t len);
bool tr_ac_iter_next(tr_ac_iter *it, unsigned *id_r, size_t *end_r);

#endif
