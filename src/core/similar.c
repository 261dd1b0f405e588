/* similar.c — MinHash over word shingles; see similar.h */
#include "core/similar.h"

#include <glib.h>
#include <string.h>

#include "core/fold.h"

/* splitmix64: a fast, well-mixed hash step for seeds and shingles. */
static uint64_t mix(uint64_t x)
{
	x += 0x9E3779B97F4A7C15ull;
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
	return x ^ (x >> 31);
}

static uint64_t word_hash(const char *w, size_t len)
{
	uint64_t h = 1469598103934665603ull;  /* FNV-1a */
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)w[i];
		h *= 1099511628211ull;
	}
	return h;
}

static void add_shingle(tr_similar *out, const uint64_t window[3])
{
	uint64_t sh = mix(window[0] ^ mix(window[1] ^ mix(window[2])));
	out->shingles++;
	for (unsigned k = 0; k < TR_SIMILAR_SLOTS; k++) {
		uint32_t v = (uint32_t)(mix(sh ^ (0xA5A5A5A5ull * (k + 1))) >> 32);
		if (v < out->slot[k])
			out->slot[k] = v;
	}
}

void tr_similar_of_text(const char *text, size_t len, tr_similar *out)
{
	for (unsigned i = 0; i < TR_SIMILAR_SLOTS; i++)
		out->slot[i] = UINT32_MAX;
	out->shingles = 0;
	tr_pool *pool = tr_pool_new(len * 2 + 64);
	size_t flen;
	const char *f = tr_fold(pool, text, len, &flen);
	uint64_t window[3] = { 0, 0, 0 };
	unsigned words = 0;
	size_t i = 0;
	while (i < flen) {
		while (i < flen && !tr_fold_is_word_byte((unsigned char)f[i]))
			i++;
		size_t start = i;
		while (i < flen && tr_fold_is_word_byte((unsigned char)f[i]))
			i++;
		if (i == start)
			break;
		window[0] = window[1];
		window[1] = window[2];
		window[2] = word_hash(f + start, i - start);
		if (++words >= 3)
			add_shingle(out, window);
	}
	if (words > 0 && words < 3)
		add_shingle(out, window);  /* a one- or two-word text is one shingle */
	tr_pool_free(&pool);
}

void tr_similar_of_msg(const tr_msg *msg, tr_similar *out)
{
	const char *text = *msg->text_new != '\0' ? msg->text_new : msg->text;
	size_t tlen = strlen(text);
	if (tlen > TR_SIMILAR_TEXT_CHARS) {
		tlen = TR_SIMILAR_TEXT_CHARS;
		while (tlen > 0 && ((unsigned char)text[tlen] & 0xC0) == 0x80)
			tlen--;
	}
	/* Reply prefixes say nothing about the content. */
	const char *subject = msg->subject;
	while (g_ascii_strncasecmp(subject, "re:", 3) == 0 || g_ascii_strncasecmp(subject, "fw:", 3) == 0 ||
	       g_ascii_strncasecmp(subject, "fwd:", 4) == 0 || *subject == ' ')
		subject += *subject == ' ' ? 1 : (subject[2] == ':' ? 3 : 4);
	GString *all = g_string_new(subject);
	g_string_append_c(all, '\n');
	g_string_append_len(all, text, (gssize)tlen);
	tr_similar_of_text(all->str, all->len, out);
	g_string_free(all, TRUE);
}

double tr_similar_compare(const tr_similar *a, const tr_similar *b)
{
	if (a->shingles == 0 || b->shingles == 0)
		return 0;
	unsigned same = 0;
	for (unsigned k = 0; k < TR_SIMILAR_SLOTS; k++)
		same += a->slot[k] == b->slot[k];
	return (double)same / TR_SIMILAR_SLOTS;
}

void tr_similar_pack(const tr_similar *s, uint8_t out[TR_SIMILAR_BYTES])
{
	for (unsigned k = 0; k < TR_SIMILAR_SLOTS; k++) {
		uint32_t v = s->slot[k];
		out[4 * k] = (uint8_t)v;
		out[4 * k + 1] = (uint8_t)(v >> 8);
		out[4 * k + 2] = (uint8_t)(v >> 16);
		out[4 * k + 3] = (uint8_t)(v >> 24);
	}
}

int tr_similar_unpack(const void *bytes, size_t len, tr_similar *out)
{
	if (bytes == NULL || len != TR_SIMILAR_BYTES)
		return 0;
	const uint8_t *b = bytes;
	out->shingles = 0;
	for (unsigned k = 0; k < TR_SIMILAR_SLOTS; k++) {
		out->slot[k] = (uint32_t)b[4 * k] | (uint32_t)b[4 * k + 1] << 8 |
		               (uint32_t)b[4 * k + 2] << 16 | (uint32_t)b[4 * k + 3] << 24;
		if (out->slot[k] != UINT32_MAX)
			out->shingles = 1;
	}
	return 1;
}

unsigned tr_similar_bands(const tr_similar *s, int64_t bands[TR_SIMILAR_BANDS])
{
	G_STATIC_ASSERT(TR_SIMILAR_BANDS * 3 == TR_SIMILAR_SLOTS);
	if (s->shingles == 0)
		return 0;
	for (unsigned b = 0; b < TR_SIMILAR_BANDS; b++) {
		uint64_t h = mix(b + 1);
		for (unsigned k = 0; k < 3; k++)
			h = mix(h ^ s->slot[3 * b + k]);
		bands[b] = (int64_t)(h >> 1);  /* fits an SQLite INTEGER */
	}
	return TR_SIMILAR_BANDS;
}
