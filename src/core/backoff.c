/* backoff.c — reconnect delays; see backoff.h */
#include "core/backoff.h"

#include <math.h>

const tr_backoff_policy tr_backoff_network = { 1000, 5 * 60 * 1000, 2.0, 0.5 };
const tr_backoff_policy tr_backoff_slow = { 60 * 1000, 60 * 60 * 1000, 2.0, 0.2 };

/* splitmix64: tiny, fast, and good enough to spread reconnects apart. */
static uint64_t next_random(uint64_t *state)
{
	uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15));
	z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

static tr_backoff_policy clamp_policy(const tr_backoff_policy *in)
{
	tr_backoff_policy p = *in;
	if (p.initial_ms < 1)
		p.initial_ms = 1;
	if (p.max_ms < p.initial_ms)
		p.max_ms = p.initial_ms;
	if (!(p.factor >= 1.0))      /* also catches NaN */
		p.factor = 1.0;
	if (!(p.jitter >= 0.0))
		p.jitter = 0.0;
	if (p.jitter > 1.0)
		p.jitter = 1.0;
	return p;
}

void tr_backoff_init(tr_backoff *backoff, const tr_backoff_policy *policy, uint64_t seed)
{
	backoff->policy = clamp_policy(policy);
	backoff->failures = 0;
	backoff->rng = seed;
}

int64_t tr_backoff_base(const tr_backoff_policy *policy, unsigned n)
{
	tr_backoff_policy p = clamp_policy(policy);
	if (n <= 1)
		return p.initial_ms;
	/* In floating point: factor^(n-1) overflows to +inf, which the cap
	 * absorbs; no integer overflow whatever n is. */
	double base = (double)p.initial_ms * pow(p.factor, (double)(n - 1));
	if (!(base < (double)p.max_ms))
		return p.max_ms;
	return (int64_t)base;
}

int64_t tr_backoff_next(tr_backoff *backoff)
{
	if (backoff->failures < UINT32_MAX)
		backoff->failures++;
	int64_t base = tr_backoff_base(&backoff->policy, backoff->failures);
	/* 53 random bits -> u in [0, 1) */
	double u = (double)(next_random(&backoff->rng) >> 11) * (1.0 / 9007199254740992.0);
	int64_t delay = base - (int64_t)((double)base * backoff->policy.jitter * u);
	if (delay < 1)
		delay = 1;
	if (delay > base)
		delay = base;
	return delay;
}

void tr_backoff_reset(tr_backoff *backoff)
{
	backoff->failures = 0;
}
