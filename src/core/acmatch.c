/* acmatch.c — Aho–Corasick over byte classes; see acmatch.h */
#include "core/acmatch.h"

#include <glib.h>
#include <string.h>

struct tr_ac {
	GHashTable *ids;       /* literal (GBytes) -> id + 1, while building */
	GPtrArray *literals;   /* GBytes*, by id */
	bool compiled;
	uint8_t byte_class[256];
	unsigned n_classes;
	uint32_t n_states;     /* numbered breadth-first: the root is 0 */
	/* n_states * n_classes transitions: 16-bit state numbers when they
	 * fit (the shipped rules: ~30,000 states), which halves the table. */
	uint16_t *next16;
	uint32_t *next32;      /* when there are more than 65,536 states */
	uint8_t *has_output;   /* match >= 0 or output_link >= 0: one byte to test */
	size_t max_len;        /* longest literal */
	int32_t *match;        /* literal id ending at the state, or -1 */
	int32_t *output_link;  /* nearest state on the fail chain with a match, or -1 */
};

tr_ac *tr_ac_new(void)
{
	tr_ac *ac = g_new0(tr_ac, 1);
	ac->ids = g_hash_table_new(g_bytes_hash, g_bytes_equal);
	ac->literals = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	return ac;
}

void tr_ac_free(tr_ac **acp)
{
	tr_ac *ac = *acp;
	if (ac == NULL)
		return;
	*acp = NULL;
	if (ac->ids != NULL)
		g_hash_table_destroy(ac->ids);
	g_ptr_array_unref(ac->literals);
	g_free(ac->next16);
	g_free(ac->next32);
	g_free(ac->has_output);
	g_free(ac->match);
	g_free(ac->output_link);
	g_free(ac);
}

unsigned tr_ac_add(tr_ac *ac, const char *literal, size_t len)
{
	g_assert(!ac->compiled && len > 0);
	GBytes *key = g_bytes_new(literal, len);
	gpointer found = g_hash_table_lookup(ac->ids, key);
	if (found != NULL) {
		g_bytes_unref(key);
		return GPOINTER_TO_UINT(found) - 1;
	}
	unsigned id = ac->literals->len;
	g_ptr_array_add(ac->literals, key);
	g_hash_table_insert(ac->ids, key, GUINT_TO_POINTER(id + 1));
	return id;
}

unsigned tr_ac_count(const tr_ac *ac)
{
	return ac->literals->len;
}

size_t tr_ac_literal_len(const tr_ac *ac, unsigned id)
{
	return g_bytes_get_size(g_ptr_array_index(ac->literals, id));
}

size_t tr_ac_memory(const tr_ac *ac)
{
	size_t entry = ac->next16 != NULL ? sizeof(uint16_t) : sizeof(uint32_t);
	return (size_t)ac->n_states * (ac->n_classes * entry + 2 * sizeof(int32_t) + 1);
}

void tr_ac_compile(tr_ac *ac)
{
	g_assert(!ac->compiled);
	/* Byte classes: class 0 for bytes no literal uses. */
	bool used[256] = { false };
	size_t total = 0;
	for (guint i = 0; i < ac->literals->len; i++) {
		gsize len;
		const unsigned char *p = g_bytes_get_data(g_ptr_array_index(ac->literals, i), &len);
		for (gsize k = 0; k < len; k++)
			used[p[k]] = true;
		total += len;
		ac->max_len = MAX(ac->max_len, len);
	}
	ac->n_classes = 1;
	for (int b = 0; b < 256; b++)
		ac->byte_class[b] = used[b] ? (uint8_t)ac->n_classes++ : 0;
	const unsigned nc = ac->n_classes;

	/* The trie: at most one state per literal byte, plus the root. */
	uint32_t max_states = (uint32_t)total + 1;
	uint32_t *next = g_new0(uint32_t, (size_t)max_states * nc);
	int32_t *match = g_new(int32_t, max_states);
	int32_t *output_link = g_new(int32_t, max_states);
	bool *has_edge = g_new0(bool, (size_t)max_states * nc);
	uint32_t n_states = 1;
	match[0] = -1;
	for (guint i = 0; i < ac->literals->len; i++) {
		gsize len;
		const unsigned char *p = g_bytes_get_data(g_ptr_array_index(ac->literals, i), &len);
		uint32_t s = 0;
		for (gsize k = 0; k < len; k++) {
			size_t slot = (size_t)s * nc + ac->byte_class[p[k]];
			if (!has_edge[slot]) {
				has_edge[slot] = true;
				next[slot] = n_states;
				match[n_states] = -1;
				n_states++;
			}
			s = next[slot];
		}
		match[s] = (int32_t)i;
	}

	/* Breadth-first: fail links, missing transitions, output links. */
	uint32_t *fail = g_new0(uint32_t, n_states);
	uint32_t *queue = g_new(uint32_t, n_states);
	size_t head = 0, tail = 0;
	queue[tail++] = 0;
	head = 1;
	output_link[0] = -1;
	for (unsigned c = 0; c < nc; c++) {
		if (has_edge[c]) {
			uint32_t t = next[c];
			fail[t] = 0;
			output_link[t] = -1;
			queue[tail++] = t;
		} else {
			next[c] = 0;
		}
	}
	while (head < tail) {
		uint32_t s = queue[head++];
		for (unsigned c = 0; c < nc; c++) {
			size_t slot = (size_t)s * nc + c;
			if (has_edge[slot]) {
				uint32_t t = next[slot];
				uint32_t f = next[(size_t)fail[s] * nc + c];
				fail[t] = f;
				output_link[t] = match[f] >= 0 ? (int32_t)f : output_link[f];
				queue[tail++] = t;
			} else {
				next[slot] = next[(size_t)fail[s] * nc + c];
			}
		}
	}
	g_assert(tail == n_states);

	/* Renumber in breadth-first order: the states a scan spends its time
	 * in (the root and shallow ones) share a few cache lines. */
	uint32_t *renumber = fail;  /* old number -> new; fail links are done */
	for (uint32_t k = 0; k < n_states; k++)
		renumber[queue[k]] = k;
	ac->n_states = n_states;
	ac->match = g_new(int32_t, n_states);
	ac->output_link = g_new(int32_t, n_states);
	ac->has_output = g_new(uint8_t, n_states);
	if (n_states <= 65536)
		ac->next16 = g_new(uint16_t, (size_t)n_states * nc);
	else
		ac->next32 = g_new(uint32_t, (size_t)n_states * nc);
	for (uint32_t k = 0; k < n_states; k++) {
		uint32_t old = queue[k];
		ac->match[k] = match[old];
		ac->output_link[k] = output_link[old] >= 0 ? (int32_t)renumber[output_link[old]] : -1;
		ac->has_output[k] = match[old] >= 0 || output_link[old] >= 0;
		for (unsigned c = 0; c < nc; c++) {
			uint32_t target = renumber[next[(size_t)old * nc + c]];
			if (ac->next16 != NULL)
				ac->next16[(size_t)k * nc + c] = (uint16_t)target;
			else
				ac->next32[(size_t)k * nc + c] = target;
		}
	}
	g_free(renumber);
	g_free(queue);
	g_free(has_edge);
	g_free(next);
	g_free(match);
	g_free(output_link);
	g_hash_table_destroy(ac->ids);
	ac->ids = NULL;
	ac->compiled = true;
}

void tr_ac_iter_init(tr_ac_iter *it, const tr_ac *ac, const char *text, size_t len)
{
	g_assert(ac->compiled);
	it->ac = ac;
	it->text = (const unsigned char *)text;
	it->len = len;
	it->pos = 0;
	it->state = 0;
	it->window = 0;
	it->n_events = it->next_event = 0;
	it->pending = -1;
	it->pending_end = 0;
}

/*
 * One lane: steps bytes from text + from, starting in state s; output
 * states at offsets >= report (from the window start) become events.
 * A macro so that the 16- and 32-bit tables share the code.
 */
#define LANE_STEP(next, lane)                                                      \
	do {                                                                       \
		s[lane] = next[s[lane] * nc + byte_class[text[at[lane]++]]];        \
		if (has_output[s[lane]] && at[lane] > report[lane]) {               \
			end[n[lane]] = (uint32_t)(at[lane] - base);                  \
			state[n[lane]++] = s[lane];                                  \
		}                                                                  \
	} while (0)

#define SCAN_WINDOW(next)                                                          \
	do {                                                                       \
		for (size_t k = 0; k < steps; k++) {                               \
			LANE_STEP(next, 0);                                        \
			LANE_STEP(next, 1);                                        \
			LANE_STEP(next, 2);                                        \
			LANE_STEP(next, 3);                                        \
		}                                                                  \
		for (size_t k = 0; k < tail; k++)                                  \
			LANE_STEP(next, 3);                                        \
	} while (0)

#define SCAN_ONE(next)                                                             \
	do {                                                                       \
		for (size_t k = 0; k < steps; k++)                                 \
			LANE_STEP(next, 0);                                        \
	} while (0)

/* Scan the next window: fill the events, advance pos and state. */
static void fill_window(tr_ac_iter *it)
{
	const tr_ac *ac = it->ac;
	const unsigned char *text = it->text;
	const uint8_t *byte_class = ac->byte_class, *has_output = ac->has_output;
	const size_t nc = ac->n_classes;
	size_t base = it->pos;
	size_t n_bytes = MIN(it->len - base, (size_t)TR_AC_WINDOW);
	size_t warm = ac->max_len > 0 ? ac->max_len - 1 : 0;
	uint32_t *end = it->event_end, *state = it->event_state;
	size_t at[TR_AC_LANES], report[TR_AC_LANES];
	uint32_t s[TR_AC_LANES];
	unsigned n[TR_AC_LANES];
	G_STATIC_ASSERT(TR_AC_LANES == 4);
	it->window = base;
	/*
	 * Lane 0 goes on from the carried state; lane j > 0 starts at the
	 * root warm bytes before its piece, which is enough to be in the
	 * state a scan from the start would be in (no state is deeper than
	 * the longest literal).  All lanes take the same number of steps;
	 * the 0..3 bytes left over go to the last one.
	 */
	size_t steps = (n_bytes + 3 * warm) / 4;
	if (warm <= TR_AC_MAX_WARMUP && steps >= warm + 16) {
		size_t tail = n_bytes + 3 * warm - 4 * steps;
		for (unsigned j = 0; j < TR_AC_LANES; j++) {
			at[j] = base + j * (steps - warm);
			report[j] = j == 0 ? base : at[j] + warm;
			s[j] = j == 0 ? it->state : 0;
			n[j] = (unsigned)(j * steps);  /* each lane's own stretch of events */
		}
		if (ac->next16 != NULL)
			SCAN_WINDOW(ac->next16);
		else
			SCAN_WINDOW(ac->next32);
		/* Events of lanes 1..3 moved up behind those of lane 0. */
		unsigned total = n[0];
		for (unsigned j = 1; j < TR_AC_LANES; j++) {
			unsigned first = (unsigned)(j * steps), count = n[j] - first;
			memmove(end + total, end + first, count * sizeof(*end));
			memmove(state + total, state + first, count * sizeof(*state));
			total += count;
		}
		it->n_events = total;
		it->state = s[3];
	} else {
		steps = n_bytes;
		at[0] = base;
		report[0] = base;
		s[0] = it->state;
		n[0] = 0;
		if (ac->next16 != NULL)
			SCAN_ONE(ac->next16);
		else
			SCAN_ONE(ac->next32);
		it->n_events = n[0];
		it->state = s[0];
	}
	it->next_event = 0;
	it->pos = base + n_bytes;
}

bool tr_ac_iter_next(tr_ac_iter *it, unsigned *id_r, size_t *end_r)
{
	const tr_ac *ac = it->ac;
	if (it->pending >= 0) {
		uint32_t s = (uint32_t)it->pending;
		*id_r = (unsigned)ac->match[s];
		*end_r = it->pending_end;
		it->pending = ac->output_link[s];
		return true;
	}
	while (it->next_event >= it->n_events) {
		if (it->pos >= it->len)
			return false;
		fill_window(it);
	}
	unsigned e = it->next_event++;
	uint32_t s = it->event_state[e];
	if (ac->match[s] < 0)
		s = (uint32_t)ac->output_link[s];
	*id_r = (unsigned)ac->match[s];
	*end_r = it->pending_end = it->window + it->event_end[e];
	it->pending = ac->output_link[s];
	return true;
}
