/* test_pool.c — the per-message arena */
#include "testutil.h"
#include "core/pool.h"

#include <stdint.h>
#include <string.h>

static void test_alloc_is_zeroed_and_aligned(void **state)
{
	(void)state;
	tr_pool *pool = tr_pool_new(0);
	for (int i = 1; i < 200; i++) {
		unsigned char *p = tr_pool_alloc(pool, (size_t)i);
		assert_int_equal((uintptr_t)p % 16, 0);
		for (int j = 0; j < i; j++)
			assert_int_equal(p[j], 0);
		memset(p, 0xAA, (size_t)i);
	}
	tr_pool_free(&pool);
	assert_null(pool);
}

static void test_large_allocation_grows(void **state)
{
	(void)state;
	tr_pool *pool = tr_pool_new(64);
	char *big = tr_pool_alloc(pool, 1 << 20);
	big[(1 << 20) - 1] = 'x';
	char *s = tr_pool_strdup(pool, "after");
	assert_string_equal(s, "after");
	assert_true(tr_pool_used(pool) >= (1u << 20));
	tr_pool_clear(pool);
	assert_int_equal(tr_pool_used(pool), 0);
	assert_string_equal(tr_pool_strdup(pool, "again"), "again");
	tr_pool_free(&pool);
}

static void test_alloc_uninit(void **state)
{
	(void)state;
	tr_pool *pool = tr_pool_new(64);
	for (int i = 1; i < 300; i++) {
		char *p = tr_pool_alloc_uninit(pool, (size_t)i);
		assert_int_equal((uintptr_t)p % 16, 0);
		memset(p, 'x', (size_t)i);
	}
	/* tr_pool_alloc still zero-fills what an uninitialised one left. */
	tr_pool_clear(pool);
	memset(tr_pool_alloc_uninit(pool, 100), 0xAA, 100);
	tr_pool_clear(pool);
	unsigned char *z = tr_pool_alloc(pool, 100);
	for (int j = 0; j < 100; j++)
		assert_int_equal(z[j], 0);
	assert_string_equal(tr_pool_printf(pool, "%0*d", 5000, 7) + 4995, "00007");
	tr_pool_free(&pool);
}

static void test_strings(void **state)
{
	(void)state;
	tr_pool *pool = tr_pool_new(0);
	assert_null(tr_pool_strdup(pool, NULL));
	assert_string_equal(tr_pool_strndup(pool, "abcdef", 3), "abc");
	assert_string_equal(tr_pool_printf(pool, "%s-%06d", "TKT", 42), "TKT-000042");
	tr_pool_free(&pool);
	tr_pool_free(&pool); /* second free is a no-op on NULL */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alloc_is_zeroed_and_aligned),
		cmocka_unit_test(test_large_allocation_grows),
		cmocka_unit_test(test_alloc_uninit),
		cmocka_unit_test(test_strings),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
