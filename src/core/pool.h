/*
 * pool.h — one arena per message (tr_pool_*)
 *
 * A bump allocator: everything built while one message is handled is
 * allocated here and released by a single tr_pool_free().  Nothing in a
 * pool is freed piecemeal.  Allocation never fails: out of memory aborts
 * (GLib's policy), so callers do not check for NULL.
 *
 * Ownership: memory returned by tr_pool_* belongs to the pool and lives
 * until tr_pool_free() or tr_pool_clear().  A pool is not thread-safe;
 * use one per thread or per message.
 */
#ifndef TR_POOL_H
#define TR_POOL_H

#include <stdarg.h>
#include <stddef.h>

typedef struct tr_pool tr_pool;

/* A new pool whose first block holds at least initial_size bytes. */
tr_pool *tr_pool_new(size_t initial_size);
/* Release every allocation and the pool itself; sets *pool to NULL. */
void tr_pool_free(tr_pool **pool);
/* Release every allocation but keep the first block for reuse. */
void tr_pool_clear(tr_pool *pool);

/* size bytes aligned for any type; zero-filled. */
void *tr_pool_alloc(tr_pool *pool, size_t size);
/* The same, not zero-filled: for a buffer the caller writes at once (a
 * copy, a converted text).  Its contents are undefined until written. */
void *tr_pool_alloc_uninit(tr_pool *pool, size_t size);
/* An array of n elements of size bytes each, zero-filled (overflow aborts). */
void *tr_pool_alloc_array(tr_pool *pool, size_t n, size_t size);
/* NUL-terminated copies.  NULL in gives NULL out. */
char *tr_pool_strdup(tr_pool *pool, const char *s);
char *tr_pool_strndup(tr_pool *pool, const char *s, size_t len);
/* Copy len bytes (not NUL-terminated unless the source is). */
void *tr_pool_memdup(tr_pool *pool, const void *p, size_t len);
char *tr_pool_printf(tr_pool *pool, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
char *tr_pool_vprintf(tr_pool *pool, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

/* Bytes handed out since the last clear (for limits and benchmarks). */
size_t tr_pool_used(const tr_pool *pool);

#endif
