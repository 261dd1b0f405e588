/* test_backoff.c — reconnect delays: exponential, capped, jittered, reset */
#include "testutil.h"
#include "core/backoff.h"

#include <math.h>
#include <stdint.h>

static void test_bounds_every_step(void **state)
{
	(void)state;
	const tr_backoff_policy *policies[] = { &tr_backoff_network, &tr_backoff_slow };
	for (size_t p = 0; p < G_N_ELEMENTS(policies); p++) {
		for (uint64_t seed = 0; seed < 50; seed++) {
			tr_backoff b;
			tr_backoff_init(&b, policies[p], seed);
			int64_t previous_base = 0;
			for (unsigned n = 1; n <= 40; n++) {
				int64_t delay = tr_backoff_next(&b);
				int64_t base = tr_backoff_base(policies[p], n);
				assert_int_equal(b.failures, n);
				/* never above the base, never below base * (1 - jitter) */
				assert_true(delay <= base);
				assert_true((double)delay >= floor((double)base * (1.0 - policies[p]->jitter)));
				assert_true(delay >= 1 && delay <= policies[p]->max_ms);
				/* the base grows monotonically up to the cap */
				assert_true(base >= previous_base);
				previous_base = base;
			}
			assert_int_equal(previous_base, policies[p]->max_ms);
		}
	}
}

static void test_network_schedule(void **state)
{
	(void)state;
	/* 1 s, 2 s, 4 s, ... capped at 5 min */
	static const int64_t want[] = { 1000, 2000, 4000, 8000, 16000, 32000, 64000, 128000, 256000, 300000, 300000 };
	for (unsigned i = 0; i < G_N_ELEMENTS(want); i++)
		assert_int_equal(tr_backoff_base(&tr_backoff_network, i + 1), want[i]);
	/* the slow schedule starts at a minute and stops at an hour */
	assert_int_equal(tr_backoff_base(&tr_backoff_slow, 1), 60000);
	assert_int_equal(tr_backoff_base(&tr_backoff_slow, 2), 120000);
	assert_int_equal(tr_backoff_base(&tr_backoff_slow, 7), 3600000);
	assert_int_equal(tr_backoff_base(&tr_backoff_slow, 1000000), 3600000);
	for (unsigned n = 1; n < 30; n++)
		assert_true(tr_backoff_base(&tr_backoff_slow, n) >= tr_backoff_base(&tr_backoff_network, n));
}

static void test_reset_after_success(void **state)
{
	(void)state;
	tr_backoff b;
	tr_backoff_init(&b, &tr_backoff_network, 7);
	for (int i = 0; i < 12; i++)
		tr_backoff_next(&b);
	assert_true(tr_backoff_next(&b) > 100000);
	tr_backoff_reset(&b);
	assert_int_equal(b.failures, 0);
	int64_t first = tr_backoff_next(&b);
	assert_true(first <= 1000 && first >= 500);
}

static void test_jitter_spreads_and_is_deterministic(void **state)
{
	(void)state;
	/* same seed, same sequence */
	tr_backoff a, b;
	tr_backoff_init(&a, &tr_backoff_network, 42);
	tr_backoff_init(&b, &tr_backoff_network, 42);
	for (int i = 0; i < 20; i++)
		assert_int_equal(tr_backoff_next(&a), tr_backoff_next(&b));
	/* 200 gateways restarted together do not come back in lock-step:
	 * their 6th delays (base 32 s) spread over the jitter window */
	int64_t lo = INT64_MAX, hi = 0;
	GHashTable *distinct = g_hash_table_new(g_int64_hash, g_int64_equal);
	int64_t *values = g_new(int64_t, 200);
	for (uint64_t seed = 0; seed < 200; seed++) {
		tr_backoff g;
		tr_backoff_init(&g, &tr_backoff_network, seed * 2654435761u);
		int64_t d = 0;
		for (int i = 0; i < 6; i++)
			d = tr_backoff_next(&g);
		values[seed] = d;
		g_hash_table_add(distinct, &values[seed]);
		lo = MIN(lo, d);
		hi = MAX(hi, d);
	}
	assert_true(g_hash_table_size(distinct) > 150);
	assert_true(lo >= 16000 && hi <= 32000);
	assert_true(hi - lo > 12000);
	g_hash_table_destroy(distinct);
	g_free(values);
}

static void test_odd_policies_are_clamped(void **state)
{
	(void)state;
	tr_backoff_policy odd = { -5, -10, 0.5, 7.0 };
	tr_backoff b;
	tr_backoff_init(&b, &odd, 1);
	for (int i = 0; i < 10; i++) {
		int64_t d = tr_backoff_next(&b);
		assert_true(d >= 1 && d <= 1);
	}
	tr_backoff_policy nan_policy = { 100, 1000, NAN, NAN };
	tr_backoff_init(&b, &nan_policy, 1);
	assert_int_equal(tr_backoff_next(&b), 100);
	assert_int_equal(tr_backoff_next(&b), 100);
	tr_backoff_policy huge = { 1, INT64_MAX, 1e308, 0.0 };
	assert_int_equal(tr_backoff_base(&huge, 3), INT64_MAX);
	/* failure counts never wrap */
	tr_backoff_init(&b, &tr_backoff_network, 3);
	b.failures = UINT32_MAX;
	assert_true(tr_backoff_next(&b) <= 300000);
	assert_int_equal(b.failures, UINT32_MAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bounds_every_step),
		cmocka_unit_test(test_network_schedule),
		cmocka_unit_test(test_reset_after_success),
		cmocka_unit_test(test_jitter_spreads_and_is_deterministic),
		cmocka_unit_test(test_odd_policies_are_clamped),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
