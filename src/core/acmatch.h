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

/*
 * Iterate over matches: ids and end offsets (one past the last byte),
 * in order of end offset.  The iterator borrows text.
 *
 * The text is scanned a window at a time.  A window is cut into four
 * pieces walked in lockstep (each piece but the first starts at the root
 * a literal's length early), so that four table look-ups are in flight at
 * once instead of one: a scan is bound by the latency of those look-ups.
 * The states where some literal ends are kept, in order, and the matches
 * handed out from them.  The iterator is about 10 KB: keep it on the stack.
 */
#define TR_AC_WINDOW 1024   /* bytes per window */
#define TR_AC_LANES 4
#define TR_AC_MAX_WARMUP 64 /* longer literals: one lane */

typedef struct {
	const tr_ac *ac;
	const unsigned char *text;
	size_t len;
	size_t pos;          /* bytes scanned: the current window ends here */
	uint32_t state;      /* the automaton's state at pos */
	size_t window;       /* offset of the current window */
	unsigned n_events, next_event;
	int32_t pending;     /* next state on the output chain, or -1 */
	size_t pending_end;
	/* Where literals end in the window: offset + 1 from window, state. */
	uint32_t event_end[TR_AC_WINDOW + TR_AC_LANES * TR_AC_MAX_WARMUP];
	uint32_t event_state[TR_AC_WINDOW + TR_AC_LANES * TR_AC_MAX_WARMUP];
} tr_ac_iter;

void tr_ac_iter_init(tr_ac_iter *it, const tr_ac *ac, const char *text, size_t len);
bool tr_ac_iter_next(tr_ac_iter *it, unsigned *id_r, size_t *end_r);

#endif
