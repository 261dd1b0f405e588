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
	uint32_t n_states;
	uint32_t *next;        /* n_states * n_classes */
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
	g_free(ac->next);
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
	return (size_t)ac->n_states * (ac->n_classes * sizeof(uint32_t) + 2 * sizeof(int32_t));
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
	}
	ac->n_classes = 1;
	for (int b = 0; b < 256; b++)
		ac->byte_class[b] = used[b] ? (uint8_t)ac->n_classes++ : 0;
	const unsigned nc = ac->n_classes;

	/* The trie: at most one state per literal byte, plus the root. */
	uint32_t max_states = (uint32_t)total + 1;
	ac->next = g_new0(uint32_t, (size_t)max_states * nc);
	ac->match = g_new(int32_t, max_states);
	ac->output_link = g_new(int32_t, max_states);
	bool *has_edge = g_new0(bool, (size_t)max_states * nc);
	ac->n_states = 1;
	ac->match[0] = -1;
	for (guint i = 0; i < ac->literals->len; i++) {
		gsize len;
		const unsigned char *p = g_bytes_get_data(g_ptr_array_index(ac->literals, i), &len);
		uint32_t s = 0;
		for (gsize k = 0; k < len; k++) {
			size_t slot = (size_t)s * nc + ac->byte_class[p[k]];
			if (!has_edge[slot]) {
				has_edge[slot] = true;
				ac->next[slot] = ac->n_states;
				ac->match[ac->n_states] = -1;
				ac->n_states++;
			}
			s = ac->next[slot];
		}
		ac->match[s] = (int32_t)i;
	}

	/* Breadth-first: fail links, missing transitions, output links. */
	uint32_t *fail = g_new0(uint32_t, ac->n_states);
	uint32_t *queue = g_new(uint32_t, ac->n_states);
	size_t head = 0, tail = 0;
	ac->output_link[0] = -1;
	for (unsigned c = 0; c < nc; c++) {
		if (has_edge[c]) {
			uint32_t t = ac->next[c];
			fail[t] = 0;
			ac->output_link[t] = -1;
			queue[tail++] = t;
		} else {
			ac->next[c] = 0;
		}
	}
	while (head < tail) {
		uint32_t s = queue[head++];
		for (unsigned c = 0; c < nc; c++) {
			size_t slot = (size_t)s * nc + c;
			if (has_edge[slot]) {
				uint32_t t = ac->next[slot];
				uint32_t f = ac->next[(size_t)fail[s] * nc + c];
				fail[t] = f;
				ac->output_link[t] = ac->match[f] >= 0 ? (int32_t)f : ac->output_link[f];
				queue[tail++] = t;
			} else {
				ac->next[slot] = ac->next[(size_t)fail[s] * nc + c];
			}
		}
	}
	g_free(queue);
	g_free(fail);
	g_free(has_edge);
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
	it->pending = -1;
}

bool tr_ac_iter_next(tr_ac_iter *it, unsigned *id_r, size_t *end_r)
{
	const tr_ac *ac = it->ac;
	if (it->pending >= 0) {
		uint32_t s = (uint32_t)it->pending;
		*id_r = (unsigned)ac->match[s];
		*end_r = it->pos;
		it->pending = ac->output_link[s];
		return true;
	}
	const unsigned nc = ac->n_classes;
	while (it->pos < it->len) {
		uint32_t s = ac->next[(size_t)it->state * nc + ac->byte_class[it->text[it->pos]]];
		it->state = s;
		it->pos++;
		if (ac->match[s] >= 0) {
			*id_r = (unsigned)ac->match[s];
			*end_r = it->pos;
			it->pending = ac->output_link[s];
			return true;
		}
		if (ac->output_link[s] >= 0) {
			uint32_t o = (uint32_t)ac->output_link[s];
			*id_r = (unsigned)ac->match[o];
			*end_r = it->pos;
			it->pending = ac->output_link[o];
			return true;
		}
	}
	return false;
}
