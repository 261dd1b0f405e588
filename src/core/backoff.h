/*
 * backoff.h — reconnect delays: exponential, capped, jittered (tr_backoff_*)
 *
 * A channel that loses its peer calls tr_backoff_next() after each failed
 * attempt and sleeps the delay it returns; after a success it calls
 * tr_backoff_reset() so the next outage starts small again.
 *
 * Delay after the n-th consecutive failure (n = 1, 2, ...):
 *
 *     base(n)  = min(max_ms, initial_ms * factor^(n-1))
 *     delay(n) = base(n) * (1 - jitter * u),   u uniform in [0, 1)
 *
 * so every delay lies in (base * (1 - jitter), base] and never exceeds
 * max_ms.  Jitter keeps many gateways (or many accounts of one gateway)
 * from reconnecting to a restarted server in lock-step; the upper bound
 * keeps the schedule predictable for operators.
 *
 * Two schedules ship: tr_backoff_network for transient failures (peer
 * down, timeout, connection reset) and tr_backoff_slow for failures a
 * human has to fix (wrong password, untrusted certificate, missing
 * mailbox), where hammering the server only fills its logs or locks the
 * account.
 *
 * Pure: no clock, no I/O.  Randomness comes from a small generator seeded
 * by the caller, so tests are deterministic.  A tr_backoff is a plain
 * value owned by its user (one per connection); not thread-safe.
 */
#ifndef TR_BACKOFF_H
#define TR_BACKOFF_H

#include <stdint.h>

typedef struct {
	int64_t initial_ms;  /* delay after the first failure (>= 1) */
	int64_t max_ms;      /* cap (>= initial_ms) */
	double factor;       /* growth per further failure (>= 1) */
	double jitter;       /* 0 = none .. 1 = anywhere in (0, base] */
} tr_backoff_policy;

/* 1 s, doubling, capped at 5 min, up to 50 % jitter. */
extern const tr_backoff_policy tr_backoff_network;
/* 1 min, doubling, capped at 1 h, up to 20 % jitter. */
extern const tr_backoff_policy tr_backoff_slow;

typedef struct {
	tr_backoff_policy policy;
	unsigned failures;   /* consecutive failures since the last reset */
	uint64_t rng;        /* generator state */
} tr_backoff;

/* Start a schedule (no failures yet).  policy is copied; out-of-range
 * fields are clamped to the documented bounds.  Equal seeds give equal
 * delay sequences; pass something per connection (e.g. a hash of the
 * account name mixed with the time) in production. */
void tr_backoff_init(tr_backoff *backoff, const tr_backoff_policy *policy, uint64_t seed);
/* Record one more failure and return the delay (ms) to wait before the
 * next attempt: always in [1, policy.max_ms]. */
int64_t tr_backoff_next(tr_backoff *backoff);
/* A success: the next failure starts from initial_ms again. */
void tr_backoff_reset(tr_backoff *backoff);
/* The upper bound base(n) for the n-th failure (n >= 1), without jitter. */
int64_t tr_backoff_base(const tr_backoff_policy *policy, unsigned n);

#endif
