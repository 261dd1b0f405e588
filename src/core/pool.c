/* pool.c — bump allocator, see pool.h */
#include "core/pool.h"

#include <glib.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define TR_POOL_ALIGN 16u
#define TR_POOL_MIN_BLOCK 4096u

struct block {
	struct block *next;
	size_t size;  /* usable bytes in data[] */
	size_t used;
	_Alignas(TR_POOL_ALIGN) unsigned char data[];
};

struct tr_pool {
	struct block *head;   /* current block, newest first */
	struct block *first;  /* kept by tr_pool_clear() */
	size_t used_total;
};

static struct block *block_new(size_t size)
{
	struct block *b = g_malloc(sizeof(*b) + size);
	b->next = NULL;
	b->size = size;
	b->used = 0;
	return b;
}

tr_pool *tr_pool_new(size_t initial_size)
{
	tr_pool *pool = g_new0(tr_pool, 1);
	if (initial_size < TR_POOL_MIN_BLOCK)
		initial_size = TR_POOL_MIN_BLOCK;
	pool->first = pool->head = block_new(initial_size);
	return pool;
}

static void free_blocks_until(struct block *b, const struct block *stop)
{
	while (b != NULL && b != stop) {
		struct block *next = b->next;
		g_free(b);
		b = next;
	}
}

void tr_pool_free(tr_pool **poolp)
{
	tr_pool *pool = *poolp;
	if (pool == NULL)
		return;
	*poolp = NULL;
	free_blocks_until(pool->head, NULL);
	g_free(pool);
}

void tr_pool_clear(tr_pool *pool)
{
	free_blocks_until(pool->head, pool->first);
	pool->head = pool->first;
	pool->first->next = NULL;
	pool->first->used = 0;
	pool->used_total = 0;
}

void *tr_pool_alloc_uninit(tr_pool *pool, size_t size)
{
	size_t rounded = (size + TR_POOL_ALIGN - 1) & ~(size_t)(TR_POOL_ALIGN - 1);
	if (rounded < size)
		g_error("tr_pool_alloc: size overflow (%zu)", size);
	struct block *b = pool->head;
	if (b->size - b->used < rounded) {
		size_t want = b->size * 2;
		if (want < rounded)
			want = rounded;
		struct block *nb = block_new(want);
		nb->next = b;
		pool->head = b = nb;
	}
	void *p = b->data + b->used;
	b->used += rounded;
	pool->used_total += rounded;
	return p;
}

void *tr_pool_alloc(tr_pool *pool, size_t size)
{
	void *p = tr_pool_alloc_uninit(pool, size);
	memset(p, 0, size);
	return p;
}

void *tr_pool_alloc_array(tr_pool *pool, size_t n, size_t size)
{
	if (size != 0 && n > SIZE_MAX / size)
		g_error("tr_pool_alloc_array: %zu x %zu overflows", n, size);
	return tr_pool_alloc(pool, n * size);
}

void *tr_pool_memdup(tr_pool *pool, const void *p, size_t len)
{
	void *copy = tr_pool_alloc_uninit(pool, len);
	if (len > 0)
		memcpy(copy, p, len);
	return copy;
}

char *tr_pool_strndup(tr_pool *pool, const char *s, size_t len)
{
	if (s == NULL)
		return NULL;
	if (len == SIZE_MAX)
		g_error("tr_pool_strndup: length overflow");
	char *copy = tr_pool_alloc_uninit(pool, len + 1);
	memcpy(copy, s, len);
	copy[len] = '\0';
	return copy;
}

char *tr_pool_strdup(tr_pool *pool, const char *s)
{
	return s == NULL ? NULL : tr_pool_strndup(pool, s, strlen(s));
}

char *tr_pool_vprintf(tr_pool *pool, const char *fmt, va_list ap)
{
	/* Format straight into the free end of the current block: one pass
	 * when it fits (almost always), a second into a new block when not. */
	struct block *b = pool->head;
	char *free_end = (char *)b->data + b->used;
	size_t avail = b->size - b->used;
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(free_end, avail, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		g_error("tr_pool_vprintf: bad format '%s'", fmt);
	size_t size = (size_t)n + 1;
	size_t rounded = (size + TR_POOL_ALIGN - 1) & ~(size_t)(TR_POOL_ALIGN - 1);
	if (size <= avail) {
		b->used += MIN(rounded, avail);
		pool->used_total += rounded;
		return free_end;
	}
	char *s = tr_pool_alloc_uninit(pool, size);
	vsnprintf(s, size, fmt, ap);
	return s;
}

char *tr_pool_printf(tr_pool *pool, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = tr_pool_vprintf(pool, fmt, ap);
	va_end(ap);
	return s;
}

size_t tr_pool_used(const tr_pool *pool)
{
	return pool->used_total;
}
