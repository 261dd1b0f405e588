/* test_acmatch.c — the Aho–Corasick prefilter against a naive search */
#include "testutil.h"
#include "core/acmatch.h"

#include <string.h>

typedef struct {
	unsigned id;
	size_t end;
} hit;

static int compare_hits(const void *a, const void *b)
{
	const hit *x = a, *y = b;
	if (x->end != y->end)
		return x->end < y->end ? -1 : 1;
	return (x->id > y->id) - (x->id < y->id);
}

/* A set of literals and the automaton built from them. */
typedef struct {
	tr_ac *ac;
	GPtrArray *literals;  /* distinct, by id */
} fixture;

static void fixture_add(fixture *f, const char *literal)
{
	unsigned id = tr_ac_add(f->ac, literal, strlen(literal));
	if (id == f->literals->len)
		g_ptr_array_add(f->literals, g_strdup(literal));
	assert_true(id < f->literals->len);
	assert_string_equal(g_ptr_array_index(f->literals, id), literal);
}

/* Every (id, end) the automaton reports is an occurrence of a literal,
 * every occurrence is reported once, and ends come in order. */
static void check_scan(const fixture *f, const char *text, size_t len)
{
	GArray *want = g_array_new(FALSE, FALSE, sizeof(hit));
	for (unsigned id = 0; id < f->literals->len; id++) {
		const char *literal = g_ptr_array_index(f->literals, id);
		size_t l = strlen(literal);
		for (size_t end = l; end <= len; end++) {
			if (memcmp(text + end - l, literal, l) == 0) {
				hit h = { id, end };
				g_array_append_val(want, h);
			}
		}
	}
	GArray *got = g_array_new(FALSE, FALSE, sizeof(hit));
	tr_ac_iter it;
	tr_ac_iter_init(&it, f->ac, text, len);
	hit h;
	size_t last_end = 0;
	while (tr_ac_iter_next(&it, &h.id, &h.end)) {
		assert_true(h.end >= last_end);
		assert_int_equal(tr_ac_literal_len(f->ac, h.id), strlen(g_ptr_array_index(f->literals, h.id)));
		last_end = h.end;
		g_array_append_val(got, h);
	}
	assert_false(tr_ac_iter_next(&it, &h.id, &h.end));
	g_array_sort(want, compare_hits);
	g_array_sort(got, compare_hits);
	assert_int_equal(got->len, want->len);
	for (guint i = 0; i < want->len; i++) {
		assert_int_equal(g_array_index(got, hit, i).id, g_array_index(want, hit, i).id);
		assert_int_equal(g_array_index(got, hit, i).end, g_array_index(want, hit, i).end);
	}
	g_array_free(want, TRUE);
	g_array_free(got, TRUE);
}

static void random_word(GRand *rand, const char *alphabet, int min_len, int max_len, char *out)
{
	int len = g_rand_int_range(rand, min_len, max_len + 1);
	size_t n = strlen(alphabet);
	for (int i = 0; i < len; i++)
		out[i] = alphabet[g_rand_int_range(rand, 0, (gint32)n)];
	out[len] = '\0';
}

static void run_random(unsigned n_literals, int min_len, int max_len, unsigned texts,
                       size_t min_memory, size_t max_memory)
{
	GRand *rand = g_rand_new_with_seed(n_literals);
	fixture f = { tr_ac_new(), g_ptr_array_new_with_free_func(g_free) };
	const char *alphabet = "abcde fghij'-\xc3\xa9";
	char word[64];
	for (unsigned i = 0; i < n_literals; i++) {
		random_word(rand, alphabet, min_len, max_len, word);
		fixture_add(&f, word);
	}
	/* Overlaps, prefixes and suffixes of each other. */
	fixture_add(&f, "a");
	fixture_add(&f, "ab");
	fixture_add(&f, "bab");
	fixture_add(&f, "abab");
	tr_ac_compile(f.ac);
	assert_int_equal(tr_ac_count(f.ac), f.literals->len);
	assert_true(tr_ac_memory(f.ac) >= min_memory);
	assert_true(tr_ac_memory(f.ac) <= max_memory);
	char text[4096];
	for (unsigned t = 0; t < texts; t++) {
		/* Short texts (one lane), long ones (four lanes, several windows). */
		random_word(rand, alphabet, 0, t % 4 == 0 ? 3000 : 300, text);
		/* Plant some literals whole. */
		for (int k = 0; k < 8 && f.literals->len > 0; k++) {
			const char *lit = g_ptr_array_index(f.literals, g_rand_int_range(rand, 0, (gint32)f.literals->len));
			if (strlen(text) + strlen(lit) < sizeof(text))
				strcat(text, lit);
		}
		check_scan(&f, text, strlen(text));
	}
	check_scan(&f, "", 0);
	tr_ac_free(&f.ac);
	assert_null(f.ac);
	g_ptr_array_unref(f.literals);
	g_rand_free(rand);
}

/* A few hundred states: 16-bit transitions. */
static void test_small_automaton(void **state)
{
	(void)state;
	run_random(60, 1, 6, 200, 1, 1 << 20);
}

/* More than 65,536 states: 32-bit transitions. */
static void test_large_automaton(void **state)
{
	(void)state;
	/* 14 classes x 4 bytes for each of > 65,536 states */
	run_random(12000, 8, 12, 6, (size_t)65537 * 14 * 4, (size_t)1 << 30);
}

/* A match at every offset: across the pieces of a window and across
 * windows (TR_AC_WINDOW), where the scan hands its state on. */
static void test_every_offset(void **state)
{
	(void)state;
	fixture f = { tr_ac_new(), g_ptr_array_new_with_free_func(g_free) };
	fixture_add(&f, "abcdefgh");
	fixture_add(&f, "hij");
	fixture_add(&f, "j");
	fixture_add(&f, "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz");
	tr_ac_compile(f.ac);
	enum { LEN = TR_AC_WINDOW + 300 };
	char *text = g_malloc(LEN + 1);
	for (size_t at = 0; at + 10 <= LEN; at++) {
		memset(text, at % 3 == 0 ? 'z' : 'y', LEN);
		text[LEN] = '\0';
		memcpy(text + at, "abcdefghij", 10);
		check_scan(&f, text, LEN);
	}
	g_free(text);
	tr_ac_free(&f.ac);
	g_ptr_array_unref(f.literals);
}

static void test_no_literals(void **state)
{
	(void)state;
	fixture f = { tr_ac_new(), g_ptr_array_new_with_free_func(g_free) };
	tr_ac_compile(f.ac);
	check_scan(&f, "nothing to find", 15);
	tr_ac_free(&f.ac);
	g_ptr_array_unref(f.literals);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_small_automaton),
		cmocka_unit_test(test_large_automaton),
		cmocka_unit_test(test_every_offset),
		cmocka_unit_test(test_no_literals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
