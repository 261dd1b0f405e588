/* fold.c — lowercase and accent folding for matching; see fold.h */
#include "core/fold.h"

#include <glib.h>
#include <string.h>

/* ASCII spelling of U+00C0..U+017F (Latin-1 letters, Latin Extended-A);
 * NULL keeps the character (× and ÷). Generated from Unicode NFD. */
static const char *const latin_fold[0x180 - 0xC0] = {
	/* 00C0 */ "a", "a", "a", "a", "a", "a", "ae", "c",
	/* 00C8 */ "e", "e", "e", "e", "i", "i", "i", "i",
	/* 00D0 */ "d", "n", "o", "o", "o", "o", "o", NULL,
	/* 00D8 */ "o", "u", "u", "u", "u", "y", "th", "ss",
	/* 00E0 */ "a", "a", "a", "a", "a", "a", "ae", "c",
	/* 00E8 */ "e", "e", "e", "e", "i", "i", "i", "i",
	/* 00F0 */ "d", "n", "o", "o", "o", "o", "o", NULL,
	/* 00F8 */ "o", "u", "u", "u", "u", "y", "th", "y",
	/* 0100 */ "a", "a", "a", "a", "a", "a", "c", "c",
	/* 0108 */ "c", "c", "c", "c", "c", "c", "d", "d",
	/* 0110 */ "d", "d", "e", "e", "e", "e", "e", "e",
	/* 0118 */ "e", "e", "e", "e", "g", "g", "g", "g",
	/* 0120 */ "g", "g", "g", "g", "h", "h", "h", "h",
	/* 0128 */ "i", "i", "i", "i", "i", "i", "i", "i",
	/* 0130 */ "i", "i", "ij", "ij", "j", "j", "k", "k",
	/* 0138 */ "k", "l", "l", "l", "l", "l", "l", "l",
	/* 0140 */ "l", "l", "l", "n", "n", "n", "n", "n",
	/* 0148 */ "n", "n", "n", "n", "o", "o", "o", "o",
	/* 0150 */ "o", "o", "oe", "oe", "r", "r", "r", "r",
	/* 0158 */ "r", "r", "s", "s", "s", "s", "s", "s",
	/* 0160 */ "s", "s", "t", "t", "t", "t", "t", "t",
	/* 0168 */ "u", "u", "u", "u", "u", "u", "u", "u",
	/* 0170 */ "u", "u", "u", "u", "w", "w", "y", "y",
	/* 0178 */ "y", "z", "z", "z", "z", "z", "z", "s",
};

/* Punctuation that customers' mail clients make typographic. */
static const char *punct_fold(gunichar c)
{
	switch (c) {
	case 0x2018: case 0x2019: case 0x201B: case 0x2032: case 0x00B4: case 0x0060:
		return "'";
	case 0x201C: case 0x201D: case 0x201E: case 0x00AB: case 0x00BB:
		return "\"";
	case 0x2010: case 0x2011: case 0x2012: case 0x2013: case 0x2014: case 0x2212:
		return "-";
	case 0x2026:
		return "...";
	default:
		return NULL;
	}
}

char *tr_fold(tr_pool *pool, const char *text, size_t len, size_t *len_r)
{
	/* Lowercasing can lengthen a few characters (U+023A: 2 -> 3 bytes). */
	char *out = tr_pool_alloc_uninit(pool, len * 2 + 1);
	size_t o = 0;
	const char *p = text, *end = text + len;
	while (p < end) {
		unsigned char c = (unsigned char)*p;
		if (c < 0x80) {
			out[o++] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : (char)c;
			p++;
			continue;
		}
		gunichar u = g_utf8_get_char_validated(p, end - p);
		if (u == (gunichar)-1 || u == (gunichar)-2) {
			p++;  /* invalid byte: dropped (callers pass valid UTF-8) */
			continue;
		}
		const char *next = g_utf8_next_char(p);
		const char *ascii = NULL;
		if (u >= 0xC0 && u < 0x180)
			ascii = latin_fold[u - 0xC0];
		else
			ascii = punct_fold(u);
		if (ascii != NULL) {
			size_t alen = strlen(ascii);
			memcpy(out + o, ascii, alen);
			o += alen;
		} else {
			o += (size_t)g_unichar_to_utf8(g_unichar_tolower(u), out + o);
		}
		p = next;
	}
	out[o] = '\0';
	if (len_r != NULL)
		*len_r = o;
	return out;
}

char *tr_fold_dup(const char *text)
{
	tr_pool *pool = tr_pool_new(strlen(text) * 2 + 64);
	char *folded = g_strdup(tr_fold(pool, text, strlen(text), NULL));
	tr_pool_free(&pool);
	return folded;
}
