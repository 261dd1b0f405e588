/* sentiment.c — VADER port, see sentiment.h
 *
 * One call: emojis are replaced by their descriptions (only if the text
 * has one), the text is split into words exactly as the reference's
 * SentiText does (Python's str.split(), then ASCII punctuation stripped
 * unless that leaves two characters or fewer), each word is lowercased and
 * looked up once in an open-addressing table that holds the lexicon, the
 * booster words, the negations and the words the rules test by name, and
 * what the rules need is copied from the entry's template into a 16-byte
 * token record.  The rules then run over the lexicon items only (no other
 * word can carry a valence) with the neighbours read from the records.
 *
 * Speed: most words are short printable ASCII followed by a space; those
 * take fast_token(), which does the splitting, stripping, case tests and
 * hashing on one 8-byte load (SWAR).  Everything else takes add_token().
 * Both produce identical records; build with -DTR_SENTIMENT_NO_FAST_PATH
 * for the general path alone (tests/fuzz/fuzz_sentiment.c compares them).
 * Scratch memory is one block per call, on the stack for short texts.
 */
#include "core/sentiment.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* Empirical constants of the reference. */
#define B_INCR 0.293
#define B_DECR (-0.293)
#define C_INCR 0.733
#define N_SCALAR (-0.74)
#define NORMALIZE_ALPHA 15.0

/* Longest lexicon key and longest lowercased token we look up. */
#define KEY_MAX 255
/* Most words in one domain phrase. */
#define PHRASE_WORDS_MAX 8
/* How far the cut of an over-long text may back up to find a space. */
#define CUT_BACKUP_MAX 256
/* Scratch bytes a call may keep on the stack before it allocates. */
#define SCRATCH_STACK 8192
/* Comparisons the "but" rule may spend per token in its value search
 * before it stops emulating the reference's list.index() quirk. */
#define BUT_SCAN_PER_TOKEN 16

/* Words the rules test by name.  Keep in step with word_names[]. */
enum word_id {
	W_NONE = 0,
	W_NO, W_BUT, W_KIND, W_OF, W_LEAST, W_AT, W_VERY, W_NEVER, W_SO, W_THIS,
	W_WITHOUT, W_DOUBT, W_OR, W_NOR,
	/* words of SPECIAL_CASES and of the two-word boosters */
	W_THE, W_SHIT, W_BOMB, W_BAD, W_ASS, W_BUS, W_STOP, W_YEAH, W_RIGHT,
	W_KISS, W_DEATH, W_TO, W_DIE, W_FOR, W_BEATING, W_HEART, W_BROKEN,
	W_JUST, W_ENOUGH, W_SORT,
	W_COUNT
};

static const char *const word_names[W_COUNT] = {
	NULL,
	"no", "but", "kind", "of", "least", "at", "very", "never", "so", "this",
	"without", "doubt", "or", "nor",
	"the", "shit", "bomb", "bad", "ass", "bus", "stop", "yeah", "right",
	"kiss", "death", "to", "die", "for", "beating", "heart", "broken",
	"just", "enough", "sort",
};

/* NEGATE of the reference. */
static const char *const negate_words[] = {
	"aint", "arent", "cannot", "cant", "couldnt", "darent", "didnt", "doesnt",
	"ain't", "aren't", "can't", "couldn't", "daren't", "didn't", "doesn't",
	"dont", "hadnt", "hasnt", "havent", "isnt", "mightnt", "mustnt", "neither",
	"don't", "hadn't", "hasn't", "haven't", "isn't", "mightn't", "mustn't",
	"neednt", "needn't", "never", "none", "nope", "nor", "not", "nothing", "nowhere",
	"oughtnt", "shant", "shouldnt", "uhuh", "wasnt", "werent",
	"oughtn't", "shan't", "shouldn't", "uh-uh", "wasn't", "weren't",
	"without", "wont", "wouldnt", "won't", "wouldn't", "rarely", "seldom", "despite",
};

/* Single-word entries of BOOSTER_DICT; the two-word ones ("just enough",
 * "kind of", "sort of") are matched by word id in special_idioms(). */
static const char *const booster_incr[] = {
	"absolutely", "amazingly", "awfully", "completely", "considerable", "considerably",
	"decidedly", "deeply", "effing", "enormous", "enormously", "entirely", "especially",
	"exceptional", "exceptionally", "extreme", "extremely", "fabulously", "flipping",
	"flippin", "frackin", "fracking", "fricking", "frickin", "frigging", "friggin",
	"fully", "fuckin", "fucking", "fuggin", "fugging", "greatly", "hella", "highly",
	"hugely", "incredible", "incredibly", "intensely", "major", "majorly", "more",
	"most", "particularly", "purely", "quite", "really", "remarkably", "so",
	"substantially", "thoroughly", "total", "totally", "tremendous", "tremendously",
	"uber", "unbelievably", "unusually", "utter", "utterly", "very",
};
static const char *const booster_decr[] = {
	"almost", "barely", "hardly", "kinda", "kindof", "kind-of", "less", "little",
	"marginal", "marginally", "occasional", "occasionally", "partly", "scarce",
	"scarcely", "slight", "slightly", "somewhat", "sorta", "sortof", "sort-of",
};

/* SPECIAL_CASES of the reference with two or three words ("badass" is a key
 * there too, but the rule only ever compares multi-word sequences). */
struct idiom {
	uint8_t words[3]; /* W_NONE-terminated when two words */
	double valence;
};
static const struct idiom idioms[] = {
	{ { W_THE, W_SHIT, W_NONE }, 3.0 },
	{ { W_THE, W_BOMB, W_NONE }, 3.0 },
	{ { W_BAD, W_ASS, W_NONE }, 1.5 },
	{ { W_BUS, W_STOP, W_NONE }, 0.0 },
	{ { W_YEAH, W_RIGHT, W_NONE }, -2.0 },
	{ { W_KISS, W_OF, W_DEATH }, -1.5 },
	{ { W_TO, W_DIE, W_FOR }, 3.0 },
	{ { W_BEATING, W_HEART, W_NONE }, 3.1 },
	{ { W_BROKEN, W_HEART, W_NONE }, -2.9 },
};

/* token flags */
#define T_LEX        0x01u /* a lexicon item (or part of a matched phrase) */
#define T_NEG        0x02u /* a negation word or contains "n't" */
#define T_UPPER      0x04u /* str.isupper() */
#define T_MEMBER     0x08u /* second or later word of a matched phrase */
#define T_LEAD_PUNCT 0x10u /* the raw word began with punctuation */
#define T_TRAIL_PUNCT 0x20u /* the raw word ended with punctuation */
#define T_PHRASE_HEAD 0x40u /* a domain phrase may start here */

/* What the rules need of one word, 16 bytes. */
struct token {
	double valence;  /* T_LEX */
	uint32_t core;   /* entry + 1 of the punctuation-stripped word, 0 = none */
	uint8_t flags;
	uint8_t word_id;
	int8_t booster;  /* +1 B_INCR, -1 B_DECR, 0 none */
};

/* entry flags */
#define E_LEXICON 0x01u
#define E_BOOSTER 0x02u
#define E_NEGATE  0x04u

struct entry {
	struct token tmpl;  /* what a word matching this entry starts as */
	uint64_t key8;      /* first 8 bytes of the zero-padded key */
	uint64_t hash;
	uint32_t key_off;   /* into keys, 8-aligned, zero-padded */
	uint32_t key_len;
	double valence;     /* E_LEXICON */
	int32_t phrase;     /* first domain phrase starting with this word, -1 */
	uint8_t flags;
	uint8_t word_id;
	int8_t booster;     /* E_BOOSTER: +1 B_INCR, -1 B_DECR */
};

struct slot {
	uint32_t tag;       /* high half of the hash */
	uint32_t entry;     /* index + 1; 0 = empty */
};

struct phrase {
	double valence;
	uint32_t first_word; /* into phrase_words */
	uint32_t n_words;
	int32_t next;        /* next phrase with the same first word, not longer */
};

struct emoji_slot {
	uint32_t cp;         /* 0 = empty */
	uint32_t desc_off;   /* into emoji_text */
	uint32_t desc_len;
};

struct tr_sentiment {
	struct entry *entries;
	size_t n_entries;
	uint8_t *keys;
	struct slot *slots;
	uint32_t slot_mask;
	size_t max_key_len;     /* longer words cannot be in the table */
	/* One bit per tag value modulo PRESENT_BITS, set for every key: most
	 * words of a text are in no lexicon, and this 16 KB answers "no" for
	 * nearly all of them without touching the slots (128 KB and more,
	 * rarely in cache by the time a message's text is scored). */
	uint64_t *present;

	struct phrase *phrases;
	size_t n_phrases;
	uint32_t *phrase_words; /* entry indices */
	size_t domain_size;

	struct emoji_slot *emoji;
	uint32_t emoji_mask;    /* 0 = no emoji table */
	char *emoji_text;
};

/* ------------------------------------------------------------------ */
/* Characters                                                          */

#define CP_INVALID 0xFFFFFFFFu

enum { C_SPACE = 1, C_PUNCT = 2, C_UPPER = 4, C_LOWER = 8, C_HIGH = 16 };

/* Byte classes as Python sees ASCII: str.isspace(), string.punctuation,
 * cased letters; C_HIGH is every byte of a multi-byte (or invalid)
 * sequence. */
static const uint8_t char_class[256] = {
	['\t' ... '\r'] = C_SPACE, [0x1c ... ' '] = C_SPACE,
	['!' ... '/'] = C_PUNCT,
	[':' ... '@'] = C_PUNCT, ['[' ... '`'] = C_PUNCT, ['{' ... '~'] = C_PUNCT,
	['A' ... 'Z'] = C_UPPER, ['a' ... 'z'] = C_LOWER,
	[0x80 ... 0xFF] = C_HIGH,
};

/* ASCII lowercase without a branch: C_UPPER << 3 is 32. */
static inline uint8_t lower_byte(uint8_t c)
{
	return (uint8_t)(c + ((char_class[c] & C_UPPER) << 3));
}

static inline bool is_cont(uint8_t c)
{
	return (c & 0xC0u) == 0x80u;
}

/* Decode one character at p (n >= 1 bytes available).  Strict UTF-8: an
 * overlong form, a surrogate, a value past U+10FFFF or a truncated
 * sequence yields CP_INVALID for its first byte alone. */
static size_t utf8_next(const uint8_t *p, size_t n, uint32_t *cp)
{
	uint8_t c = p[0];
	if (c < 0x80u) {
		*cp = c;
		return 1;
	}
	if (c >= 0xC2u && c <= 0xDFu) {
		if (n >= 2 && is_cont(p[1])) {
			*cp = ((uint32_t)(c & 0x1Fu) << 6) | (p[1] & 0x3Fu);
			return 2;
		}
	} else if (c >= 0xE0u && c <= 0xEFu) {
		if (n >= 3 && is_cont(p[1]) && is_cont(p[2])) {
			uint32_t v = ((uint32_t)(c & 0x0Fu) << 12) | ((uint32_t)(p[1] & 0x3Fu) << 6) |
			             (p[2] & 0x3Fu);
			if (v >= 0x800u && (v < 0xD800u || v > 0xDFFFu)) {
				*cp = v;
				return 3;
			}
		}
	} else if (c >= 0xF0u && c <= 0xF4u) {
		if (n >= 4 && is_cont(p[1]) && is_cont(p[2]) && is_cont(p[3])) {
			uint32_t v = ((uint32_t)(c & 0x07u) << 18) | ((uint32_t)(p[1] & 0x3Fu) << 12) |
			             ((uint32_t)(p[2] & 0x3Fu) << 6) | (p[3] & 0x3Fu);
			if (v >= 0x10000u && v <= 0x10FFFFu) {
				*cp = v;
				return 4;
			}
		}
	}
	*cp = CP_INVALID;
	return 1;
}

/* Python's str.isspace() beyond ASCII. */
static bool is_unicode_space(uint32_t cp)
{
	switch (cp) {
	case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029:
	case 0x202F: case 0x205F: case 0x3000:
		return true;
	default:
		return cp >= 0x2000u && cp <= 0x200Au;
	}
}

#define PRESENT_BITS (1u << 17)

/* Room for a lowercased key and the zero padding the hash and the
 * compare read: keys are hashed and compared 8 bytes at a time. */
#define KEY_BUF (KEY_MAX + 9)

static inline uint64_t load64(const uint8_t *p)
{
	uint64_t w;
	memcpy(&w, p, sizeof(w));
	return w;
}

/* Hash of len bytes at p, which is zero-padded to a multiple of 8. */
static inline uint64_t key_hash(const uint8_t *p, size_t len)
{
	uint64_t h = 0x9E3779B97F4A7C15ull ^ len;
	for (size_t i = 0; i < len; i += 8) {
		h = (h ^ load64(p + i)) * 0xbf58476d1ce4e5b9ull;
		h ^= h >> 31;
	}
	return h;
}

/* Equality of two zero-padded keys of the same length. */
static inline bool key_equal(const uint8_t *a, const uint8_t *b, size_t len)
{
	for (size_t i = 0; i < len; i += 8) {
		if (load64(a + i) != load64(b + i))
			return false;
	}
	return true;
}

/*
 * Lowercase n bytes at p into out (KEY_BUF bytes) the way Python's
 * str.lower() does for the text we meet (simple case mapping; an invalid
 * byte is kept as it is, so it can never match a valid key), zero-pad it
 * and hash it.  len is SIZE_MAX when the result exceeds KEY_MAX (then
 * nothing can match).  upper is str.isupper(): at least one cased
 * character and no lowercase or titlecase one; has_nt: the lowercase form
 * contains "n't".
 */
struct lowered {
	size_t len;
	uint64_t hash;
	bool upper;
	bool has_nt;
};

static void lower_token(const uint8_t *p, size_t n, uint8_t *out, struct lowered *r)
{
	size_t o = 0;
	bool has_upper = false, has_lower = false, fits = true, nt = false;
	uint8_t prev1 = 0, prev2 = 0;
	size_t i = 0;

	while (i < n) {
		uint8_t c = p[i];
		uint8_t buf[6];
		size_t blen;
		if (c < 0x80u) {
			uint8_t cls = char_class[c];
			has_upper |= (cls & C_UPPER) != 0;
			has_lower |= (cls & C_LOWER) != 0;
			buf[0] = lower_byte(c);
			blen = 1;
			i++;
		} else {
			uint32_t cp;
			size_t l = utf8_next(p + i, n - i, &cp);
			if (cp == CP_INVALID) {
				buf[0] = c;
				blen = 1;
			} else {
				if (g_unichar_islower(cp) || g_unichar_istitle(cp))
					has_lower = true;
				else if (g_unichar_isupper(cp))
					has_upper = true;
				blen = (size_t)g_unichar_to_utf8(g_unichar_tolower(cp), (char *)buf);
			}
			i += l;
		}
		for (size_t k = 0; k < blen; k++) {
			uint8_t b = buf[k];
			if (b == 't' && prev1 == '\'' && prev2 == 'n')
				nt = true;
			prev2 = prev1;
			prev1 = b;
			if (o < KEY_MAX)
				out[o++] = b;
			else
				fits = false;
		}
	}
	memset(out + o, 0, 8);
	r->len = fits ? o : SIZE_MAX;
	r->hash = fits ? key_hash(out, o) : 0;
	r->upper = has_upper && !has_lower;
	r->has_nt = nt;
}

/* ------------------------------------------------------------------ */
/* Tables                                                              */

static inline __attribute__((always_inline)) const struct entry *
lookup(const tr_sentiment *s, uint64_t key8, const uint8_t *key, size_t len, uint64_t hash)
{
	uint32_t tag = (uint32_t)(hash >> 32);
	uint32_t bit = tag & (PRESENT_BITS - 1);
	if (!((s->present[bit / 64] >> (bit % 64)) & 1))
		return NULL;
	uint32_t i = (uint32_t)hash & s->slot_mask;
	for (;;) {
		const struct slot *sl = &s->slots[i];
		if (sl->entry == 0)
			return NULL;
		if (sl->tag == tag) {
			const struct entry *e = &s->entries[sl->entry - 1];
			if (e->key_len == len && e->key8 == key8 &&
			    (len <= 8 || key_equal(s->keys + e->key_off + 8, key + 8, len - 8)))
				return e;
		}
		i = (i + 1) & s->slot_mask;
	}
}

static const struct emoji_slot *emoji_lookup(const tr_sentiment *s, uint32_t cp)
{
	uint32_t i = (cp * 2654435761u) & s->emoji_mask;
	for (;;) {
		const struct emoji_slot *sl = &s->emoji[i];
		if (sl->cp == 0)
			return NULL;
		if (sl->cp == cp)
			return sl;
		i = (i + 1) & s->emoji_mask;
	}
}

/* Load-time builder: entries are collected in a GArray with a GHashTable
 * for de-duplication, then frozen into the open-addressing table. */
struct builder {
	GArray *entries;     /* struct entry */
	GString *keys;
	GHashTable *index;   /* key (owned) -> entry index + 1 */
	GArray *phrases;     /* struct phrase */
	GArray *phrase_words;
	GString *emoji_text;
	GArray *emoji;       /* struct emoji_slot, unhashed */
	GHashTable *emoji_seen;
	size_t domain_size;
};

static struct entry *builder_entry(struct builder *b, const char *key, size_t len)
{
	char *k = g_strndup(key, len);
	guint idx = GPOINTER_TO_UINT(g_hash_table_lookup(b->index, k));
	if (idx != 0) {
		g_free(k);
		return &g_array_index(b->entries, struct entry, idx - 1);
	}
	uint8_t padded[KEY_BUF] = { 0 };
	g_assert(len <= KEY_MAX);
	memcpy(padded, key, len);
	struct entry e = {
		.hash = key_hash(padded, len),
		.key_off = (uint32_t)b->keys->len,
		.key_len = (uint32_t)len,
		.phrase = -1,
	};
	/* each key 8-aligned and zero-padded to the next multiple of 8 */
	g_string_append_len(b->keys, (const char *)padded, (gssize)((len + 8) & ~(size_t)7));
	g_array_append_val(b->entries, e);
	g_hash_table_insert(b->index, k, GUINT_TO_POINTER(b->entries->len));
	return &g_array_index(b->entries, struct entry, b->entries->len - 1);
}

static uint32_t pow2_at_least(size_t n)
{
	uint32_t p = 16;
	while (p < n)
		p <<= 1;
	return p;
}

static void builder_freeze(struct builder *b, tr_sentiment *s)
{
	s->n_entries = b->entries->len;
	s->entries = (struct entry *)g_array_free(b->entries, FALSE);
	s->keys = (uint8_t *)g_string_free(b->keys, FALSE);
	b->entries = NULL;
	b->keys = NULL;

	uint32_t size = pow2_at_least(s->n_entries * 2);
	s->slots = g_new0(struct slot, size);
	s->slot_mask = size - 1;
	s->present = g_new0(uint64_t, PRESENT_BITS / 64);
	for (size_t i = 0; i < s->n_entries; i++) {
		uint64_t h = s->entries[i].hash;
		uint32_t bit = (uint32_t)(h >> 32) & (PRESENT_BITS - 1);
		s->present[bit / 64] |= (uint64_t)1 << (bit % 64);
		uint32_t j = (uint32_t)h & s->slot_mask;
		while (s->slots[j].entry != 0)
			j = (j + 1) & s->slot_mask;
		s->slots[j].tag = (uint32_t)(h >> 32);
		s->slots[j].entry = (uint32_t)i + 1;
		struct entry *e = &s->entries[i];
		e->key8 = load64(s->keys + e->key_off);
		e->tmpl = (struct token){
			.valence = (e->flags & E_LEXICON) ? e->valence : 0.0,
			.core = (uint32_t)i + 1,
			.flags = (uint8_t)(((e->flags & E_LEXICON) ? T_LEX : 0) |
			                   ((e->flags & E_NEGATE) ? T_NEG : 0) |
			                   (e->phrase >= 0 ? T_PHRASE_HEAD : 0)),
			.word_id = e->word_id,
			.booster = (e->flags & E_BOOSTER) ? e->booster : 0,
		};
		if (s->entries[i].key_len > s->max_key_len)
			s->max_key_len = s->entries[i].key_len;
	}

	s->n_phrases = b->phrases->len;
	s->phrases = (struct phrase *)g_array_free(b->phrases, FALSE);
	s->phrase_words = (uint32_t *)g_array_free(b->phrase_words, FALSE);
	b->phrases = NULL;
	b->phrase_words = NULL;
	s->domain_size = b->domain_size;

	if (b->emoji->len > 0) {
		size = pow2_at_least(b->emoji->len * 2);
		s->emoji = g_new0(struct emoji_slot, size);
		s->emoji_mask = size - 1;
		for (guint i = 0; i < b->emoji->len; i++) {
			const struct emoji_slot *e = &g_array_index(b->emoji, struct emoji_slot, i);
			uint32_t j = (e->cp * 2654435761u) & s->emoji_mask;
			while (s->emoji[j].cp != 0)
				j = (j + 1) & s->emoji_mask;
			s->emoji[j] = *e;
		}
	}
	s->emoji_text = g_string_free(b->emoji_text, FALSE);
	b->emoji_text = NULL;
}

static void builder_clear(struct builder *b)
{
	if (b->entries != NULL)
		g_array_free(b->entries, TRUE);
	if (b->keys != NULL)
		g_string_free(b->keys, TRUE);
	if (b->phrases != NULL)
		g_array_free(b->phrases, TRUE);
	if (b->phrase_words != NULL)
		g_array_free(b->phrase_words, TRUE);
	if (b->emoji_text != NULL)
		g_string_free(b->emoji_text, TRUE);
	g_array_free(b->emoji, TRUE);
	g_hash_table_destroy(b->index);
	g_hash_table_destroy(b->emoji_seen);
}

static void add_static_words(struct builder *b)
{
	for (size_t i = 1; i < W_COUNT; i++)
		builder_entry(b, word_names[i], strlen(word_names[i]))->word_id = (uint8_t)i;
	for (size_t i = 0; i < G_N_ELEMENTS(negate_words); i++)
		builder_entry(b, negate_words[i], strlen(negate_words[i]))->flags |= E_NEGATE;
	for (size_t i = 0; i < G_N_ELEMENTS(booster_incr); i++) {
		struct entry *e = builder_entry(b, booster_incr[i], strlen(booster_incr[i]));
		e->flags |= E_BOOSTER;
		e->booster = 1;
	}
	for (size_t i = 0; i < G_N_ELEMENTS(booster_decr); i++) {
		struct entry *e = builder_entry(b, booster_decr[i], strlen(booster_decr[i]));
		e->flags |= E_BOOSTER;
		e->booster = -1;
	}
}

/* ------------------------------------------------------------------ */
/* Loading files                                                       */

static bool read_utf8_file(const char *path, char **data_r, gsize *len_r, GError **error)
{
	GError *err = NULL;
	if (!g_file_get_contents(path, data_r, len_r, &err)) {
		g_set_error(error, G_FILE_ERROR, err->code, "%s: %s", path, err->message);
		g_error_free(err);
		return false;
	}
	const char *bad = NULL;
	if (!g_utf8_validate(*data_r, (gssize)*len_r, &bad)) {
		size_t line = 1;
		for (const char *p = *data_r; p < bad; p++)
			line += *p == '\n';
		g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
		            "%s:%zu: not valid UTF-8", path, line);
		g_free(*data_r);
		*data_r = NULL;
		return false;
	}
	return true;
}

/* Next line of data (without its '\n'); false at the end. */
static bool next_line(char **cursor, char *end, char **line_r, size_t *len_r)
{
	char *p = *cursor;
	if (p >= end)
		return false;
	char *nl = memchr(p, '\n', (size_t)(end - p));
	char *stop = nl != NULL ? nl : end;
	*line_r = p;
	*len_r = (size_t)(stop - p);
	*cursor = nl != NULL ? nl + 1 : end;
	return true;
}

/* Trim ASCII whitespace (what Python's strip() removes from these files). */
static void trim(char **p, size_t *len)
{
	while (*len > 0 && g_ascii_isspace(**p)) {
		(*p)++;
		(*len)--;
	}
	while (*len > 0 && g_ascii_isspace((*p)[*len - 1]))
		(*len)--;
}

static bool parse_double(const char *p, size_t len, double *v)
{
	char buf[64];
	char *end;
	if (len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, p, len);
	buf[len] = '\0';
	*v = g_ascii_strtod(buf, &end);
	return end == buf + len && isfinite(*v);
}

static bool load_vader(struct builder *b, const char *path, GError **error)
{
	char *data, *cursor, *line;
	gsize size;
	size_t len, lineno = 0;
	if (!read_utf8_file(path, &data, &size, error))
		return false;
	cursor = data;
	while (next_line(&cursor, data + size, &line, &len)) {
		lineno++;
		trim(&line, &len);
		if (len == 0)
			continue;
		char *tab = memchr(line, '\t', len);
		if (tab == NULL || tab == line) {
			g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
			            "%s:%zu: expected token TAB valence", path, lineno);
			g_free(data);
			return false;
		}
		size_t key_len = (size_t)(tab - line);
		char *val = tab + 1;
		char *tab2 = memchr(val, '\t', len - key_len - 1);
		size_t val_len = tab2 != NULL ? (size_t)(tab2 - val) : len - key_len - 1;
		double v;
		if (key_len > KEY_MAX || !parse_double(val, val_len, &v)) {
			g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
			            "%s:%zu: %s", path, lineno,
			            key_len > KEY_MAX ? "token too long" : "bad valence");
			g_free(data);
			return false;
		}
		/* Keys are kept as written: the reference looks up lowercased
		 * words, so entries with capitals (":D", "XD") never match. */
		struct entry *e = builder_entry(b, line, key_len);
		e->flags |= E_LEXICON;
		e->valence = v; /* a later duplicate wins, as in a Python dict */
	}
	g_free(data);
	return true;
}

static bool load_emoji(struct builder *b, const char *path, GError **error)
{
	char *data, *cursor, *line;
	gsize size;
	size_t len, lineno = 0;
	if (!read_utf8_file(path, &data, &size, error))
		return false;
	cursor = data;
	while (next_line(&cursor, data + size, &line, &len)) {
		lineno++;
		trim(&line, &len);
		if (len == 0)
			continue;
		char *tab = memchr(line, '\t', len);
		if (tab == NULL || tab == line) {
			g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
			            "%s:%zu: expected emoji TAB description", path, lineno);
			g_free(data);
			return false;
		}
		char *desc = tab + 1;
		char *tab2 = memchr(desc, '\t', len - (size_t)(desc - line));
		size_t desc_len = tab2 != NULL ? (size_t)(tab2 - desc) : len - (size_t)(desc - line);
		/* The reference replaces character by character, so a sequence
		 * of several code points (ZWJ, skin tone, flags) never matches. */
		if (g_utf8_strlen(line, tab - line) != 1)
			continue;
		uint32_t cp = g_utf8_get_char(line);
		struct emoji_slot e = {
			.cp = cp,
			.desc_off = (uint32_t)b->emoji_text->len,
			.desc_len = (uint32_t)desc_len,
		};
		g_string_append_len(b->emoji_text, desc, (gssize)desc_len);
		gpointer seen = g_hash_table_lookup(b->emoji_seen, GUINT_TO_POINTER(cp));
		if (seen != NULL) {
			g_array_index(b->emoji, struct emoji_slot, GPOINTER_TO_UINT(seen) - 1) = e;
		} else {
			g_array_append_val(b->emoji, e);
			g_hash_table_insert(b->emoji_seen, GUINT_TO_POINTER(cp),
			                    GUINT_TO_POINTER(b->emoji->len));
		}
	}
	g_free(data);
	return true;
}

/*
 * Domain lexicon: one entry a line, "words... valence"; the valence is the
 * last whitespace-separated field, the words before it form the phrase.
 * Words are lowercased and stripped of surrounding ASCII punctuation.
 */
static bool load_domain(struct builder *b, const char *path, GError **error)
{
	char *data, *cursor, *line;
	gsize size;
	size_t len, lineno = 0;
	GHashTable *seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	bool ok = false;

	if (!read_utf8_file(path, &data, &size, error)) {
		g_hash_table_destroy(seen);
		return false;
	}
	cursor = data;
	while (next_line(&cursor, data + size, &line, &len)) {
		lineno++;
		trim(&line, &len);
		if (len == 0 || line[0] == '#')
			continue;

		size_t val_start = len;
		while (val_start > 0 && !g_ascii_isspace(line[val_start - 1]))
			val_start--;
		double v;
		const char *why = NULL;
		if (val_start == 0)
			why = "expected words then a valence";
		else if (!parse_double(line + val_start, len - val_start, &v))
			why = "bad valence";
		else if (v < -4.0 || v > 4.0)
			why = "valence outside -4..4";

		uint32_t words[PHRASE_WORDS_MAX];
		size_t n_words = 0;
		GString *norm = g_string_new(NULL);
		size_t i = 0;
		while (why == NULL && i < val_start) {
			while (i < val_start && g_ascii_isspace(line[i]))
				i++;
			size_t w = i;
			while (i < val_start && !g_ascii_isspace(line[i]))
				i++;
			if (w == i)
				break;
			size_t a = w, z = i;
			while (a < z && char_class[(uint8_t)line[a]] & C_PUNCT)
				a++;
			while (z > a && char_class[(uint8_t)line[z - 1]] & C_PUNCT)
				z--;
			uint8_t low[KEY_BUF];
			struct lowered lw;
			lower_token((const uint8_t *)line + a, z - a, low, &lw);
			if (a == z)
				why = "a word is only punctuation";
			else if (lw.len == SIZE_MAX)
				why = "word too long";
			else if (n_words == PHRASE_WORDS_MAX)
				why = "too many words (at most 8)";
			if (why != NULL)
				break;
			struct entry *e = builder_entry(b, (const char *)low, lw.len);
			words[n_words++] = (uint32_t)(e - &g_array_index(b->entries, struct entry, 0));
			if (norm->len > 0)
				g_string_append_c(norm, ' ');
			g_string_append_len(norm, (const char *)low, (gssize)lw.len);
		}
		if (why == NULL && n_words == 0)
			why = "expected words then a valence";
		if (why == NULL && g_hash_table_contains(seen, norm->str))
			why = "duplicate entry";
		if (why != NULL) {
			g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
			            "%s:%zu: %s", path, lineno, why);
			g_string_free(norm, TRUE);
			goto out;
		}
		g_hash_table_add(seen, g_string_free(norm, FALSE));
		b->domain_size++;

		struct entry *head = &g_array_index(b->entries, struct entry, words[0]);
		if (n_words == 1) {
			/* 0 takes a word out of the lexicon: it is not a sentiment
			 * word in this domain ("support", "please", "urgent"). */
			if (v == 0) {
				head->flags &= (uint8_t)~E_LEXICON;
			} else {
				head->flags |= E_LEXICON;
				head->valence = v;
			}
			continue;
		}
		struct phrase ph = {
			.valence = v,
			.first_word = b->phrase_words->len,
			.n_words = (uint32_t)n_words,
			.next = -1,
		};
		g_array_append_vals(b->phrase_words, words, (guint)n_words);
		/* Chain phrases of the same first word longest first, so the
		 * longest match wins. */
		int32_t idx = (int32_t)b->phrases->len;
		int32_t prev = -1, cur = head->phrase;
		while (cur >= 0 && g_array_index(b->phrases, struct phrase, cur).n_words >= n_words) {
			prev = cur;
			cur = g_array_index(b->phrases, struct phrase, cur).next;
		}
		ph.next = cur;
		g_array_append_val(b->phrases, ph);
		if (prev < 0)
			head->phrase = idx;
		else
			g_array_index(b->phrases, struct phrase, prev).next = idx;
	}
	ok = true;
out:
	g_hash_table_destroy(seen);
	g_free(data);
	return ok;
}

tr_sentiment *tr_sentiment_load(const char *vader_lexicon_path,
                                const char *emoji_lexicon_path,
                                const char *domain_lexicon_path,
                                GError **error)
{
	struct builder b = {
		.entries = g_array_new(FALSE, TRUE, sizeof(struct entry)),
		.keys = g_string_new(NULL),
		.index = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL),
		.phrases = g_array_new(FALSE, TRUE, sizeof(struct phrase)),
		.phrase_words = g_array_new(FALSE, TRUE, sizeof(uint32_t)),
		.emoji_text = g_string_new(NULL),
		.emoji = g_array_new(FALSE, TRUE, sizeof(struct emoji_slot)),
		.emoji_seen = g_hash_table_new(g_direct_hash, g_direct_equal),
	};

	g_return_val_if_fail(vader_lexicon_path != NULL, NULL);
	add_static_words(&b);
	if (!load_vader(&b, vader_lexicon_path, error) ||
	    (emoji_lexicon_path != NULL && !load_emoji(&b, emoji_lexicon_path, error)) ||
	    (domain_lexicon_path != NULL && !load_domain(&b, domain_lexicon_path, error))) {
		builder_clear(&b);
		return NULL;
	}
	tr_sentiment *s = g_new0(tr_sentiment, 1);
	builder_freeze(&b, s);
	builder_clear(&b);
	return s;
}

void tr_sentiment_free(tr_sentiment **sp)
{
	if (sp == NULL || *sp == NULL)
		return;
	tr_sentiment *s = *sp;
	g_free(s->entries);
	g_free(s->keys);
	g_free(s->slots);
	g_free(s->present);
	g_free(s->phrases);
	g_free(s->phrase_words);
	g_free(s->emoji);
	g_free(s->emoji_text);
	g_free(s);
	*sp = NULL;
}

size_t tr_sentiment_domain_size(const tr_sentiment *s)
{
	return s != NULL ? s->domain_size : 0;
}

/* ------------------------------------------------------------------ */
/* Scoring                                                             */

/* Where one call keeps its tokens. */
struct scratch {
	struct token *tok;
	size_t n;
	/* Only lexicon items can carry a valence: their positions, in order,
	 * and their valences.  Every other word scores 0. */
	uint32_t *lex_pos;
	double *lex_val;
	size_t n_lex;
	size_t but;            /* first "but", SIZE_MAX if none */
	uint64_t *map_key;     /* "but" rule: value -> count of seen positions */
	uint32_t *map_count;
	uint32_t map_mask;
	size_t ep, qm;         /* '!' and '?' in the text */
	size_t upper_words;
};

static inline __attribute__((always_inline)) void
set_token(struct token *t, const struct entry *e, bool upper, bool has_nt)
{
	static const struct token unknown = { 0 };
	*t = e != NULL ? e->tmpl : unknown;
	t->flags |= (uint8_t)((upper ? T_UPPER : 0) | (has_nt ? T_NEG : 0));
}

/* Number of characters in [p, p+n) as utf8_next() counts them, stopping
 * early once past limit. */
static size_t char_count(const uint8_t *p, size_t n, size_t limit)
{
	size_t chars = 0, i = 0;
	uint32_t cp;
	while (i < n && chars <= limit) {
		i += utf8_next(p + i, n - i, &cp);
		chars++;
	}
	return chars;
}

static inline void store64(uint8_t *p, uint64_t w)
{
	memcpy(p, &w, sizeof(w));
}

#define ONES  0x0101010101010101ull
#define HIGHS 0x8080808080808080ull
#define LITTLE_ENDIAN_HOST (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__)

/*
 * Lowercase, classify and hash an all-ASCII word of at most KEY_MAX bytes,
 * eight bytes at a time; false if it has a non-ASCII byte (or on a
 * big-endian machine, where lower_token() does the work).  avail is how
 * many bytes may be read from p: whole 8-byte loads are used while they
 * stay inside the text, the bytes past the word masked off.
 */
static inline __attribute__((always_inline)) bool
lower_ascii(const uint8_t *p, size_t n, size_t avail, uint8_t *out, struct lowered *r)
{
#if LITTLE_ENDIAN_HOST
	uint64_t upper = 0, lower = 0, apos = 0, high = 0;
	uint64_t h = 0x9E3779B97F4A7C15ull ^ n;
	for (size_t base = 0; base < n; base += 8) {
		size_t m = n - base < 8 ? n - base : 8;
		uint64_t w;
		if (base + 8 <= avail) {
			w = load64(p + base);
			if (m < 8)
				w &= (1ull << (8 * m)) - 1;
		} else {
			w = 0;
			for (size_t k = 0; k < m; k++)
				w |= (uint64_t)p[base + k] << (8 * k);
		}
		high |= w & HIGHS;
		/* per byte, without carries while all bytes are < 0x80:
		 * 'A'..'Z', 'a'..'z', and a zero test for '\'' */
		uint64_t up = (w + 0x3F * ONES) & ~(w + 0x25 * ONES) & HIGHS;
		uint64_t lo = (w + 0x1F * ONES) & ~(w + 0x05 * ONES) & HIGHS;
		uint64_t ap = w ^ (0x27 * ONES);
		apos |= (ap - ONES) & ~ap & HIGHS;
		upper |= up;
		lower |= lo;
		w |= up >> 2; /* 0x80 >> 2 = 0x20: to lowercase */
		store64(out + base, w);
		h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
		h ^= h >> 31;
	}
	if (high != 0)
		return false;
	r->len = n;
	r->hash = h;
	r->upper = upper != 0 && lower == 0;
	r->has_nt = false;
	if (apos != 0) {
		for (size_t i = 1; i + 1 < n; i++) {
			if (out[i] == '\'' && out[i - 1] == 'n' && out[i + 1] == 't') {
				r->has_nt = true;
				break;
			}
		}
	}
	return true;
#else
	(void)p, (void)n, (void)avail, (void)out, (void)r;
	return false;
#endif
}

static inline __attribute__((always_inline)) void
lower_any(const uint8_t *p, size_t n, size_t avail, uint8_t *out, struct lowered *r)
{
	if (n > KEY_MAX || !lower_ascii(p, n, avail, out, r))
		lower_token(p, n, out, r);
}

static inline __attribute__((always_inline)) const struct entry *
lookup_lowered(const tr_sentiment *s, const uint8_t *low, const struct lowered *lw)
{
	return lw->len <= s->max_key_len ? lookup(s, load64(low), low, lw->len, lw->hash) : NULL;
}

/* Append a word to the scratch: its template from the entry, its shape. */
static inline __attribute__((always_inline)) struct token *
push_token(struct scratch *sc, const struct entry *e, bool upper, bool has_nt)
{
	size_t index = sc->n++;
	struct token *t = &sc->tok[index];
	set_token(t, e, upper, has_nt);
	sc->upper_words += upper;
	sc->lex_pos[sc->n_lex] = (uint32_t)index;
	sc->n_lex += t->flags & T_LEX;
	if (t->word_id == W_BUT && sc->but == SIZE_MAX)
		sc->but = index;
	return t;
}

/* What phrase matching needs: punctuation around the raw word and the
 * entry of the punctuation-stripped word (core). */
static inline __attribute__((always_inline)) void
set_phrase_info(const tr_sentiment *s, struct token *t, bool lead_punct, bool trail_punct,
                const struct entry *core)
{
	t->flags &= (uint8_t)~T_PHRASE_HEAD;
	if (lead_punct)
		t->flags |= T_LEAD_PUNCT;
	if (trail_punct)
		t->flags |= T_TRAIL_PUNCT;
	t->core = core != NULL ? (uint32_t)(core - s->entries) + 1 : 0;
	if (core != NULL && core->phrase >= 0 && !trail_punct)
		t->flags |= T_PHRASE_HEAD;
}

/* The general path: any word, any bytes. */
static void add_token(const tr_sentiment *s, struct scratch *sc, const uint8_t *text,
                      size_t text_len, size_t a, size_t b)
{
	size_t lead = a, trail = b;
	while (lead < trail && (char_class[text[lead]] & C_PUNCT))
		lead++;
	while (trail > lead && (char_class[text[trail - 1]] & C_PUNCT))
		trail--;

	/* _strip_punc_if_word: keep the raw word when stripping leaves two
	 * characters or fewer (emoticons, "no.", "ok!").  An ASCII word is
	 * as many characters as bytes; only a non-ASCII one is counted. */
	size_t stripped = trail - lead;
	uint8_t low[KEY_BUF];
	struct lowered lw;
	bool keep_raw;
	if (stripped <= 2) {
		keep_raw = true;
		lower_any(text + a, b - a, text_len - a, low, &lw);
	} else if (stripped <= KEY_MAX && lower_ascii(text + lead, stripped, text_len - lead, low, &lw)) {
		keep_raw = false;
	} else {
		keep_raw = stripped <= 8 && char_count(text + lead, stripped, 2) <= 2;
		if (keep_raw)
			lower_token(text + a, b - a, low, &lw);
		else
			lower_token(text + lead, stripped, low, &lw);
	}
	const struct entry *e = lookup_lowered(s, low, &lw);
	struct token *t = push_token(sc, e, lw.upper, lw.has_nt);

	if (s->n_phrases > 0) {
		const struct entry *core = e;
		if (keep_raw && (lead > a || trail < b)) {
			struct lowered lc;
			lower_any(text + lead, trail - lead, text_len - lead, low, &lc);
			core = lc.len > 0 ? lookup_lowered(s, low, &lc) : NULL;
		}
		set_phrase_info(s, t, lead > a, trail < b, core);
	}
}

#if LITTLE_ENDIAN_HOST && !defined(TR_SENTIMENT_NO_FAST_PATH)
#define FAST_PATH 1

/* The low n bytes of a word (n <= 8). */
static inline uint64_t bytes_below(size_t n)
{
	return n >= 8 ? ~0ull : (1ull << (8 * n)) - 1;
}

/* 0x80 in each byte of x within lo..hi; every byte of x must be < 0x80. */
static inline uint64_t in_range(uint64_t x, unsigned lo, unsigned hi)
{
	return (x + (uint64_t)(0x80 - lo) * ONES) & ~(x + (uint64_t)(0x7F - hi) * ONES) & HIGHS;
}

/* 0x80 in each zero byte of x, exactly. */
static inline uint64_t zero_bytes(uint64_t x)
{
	uint64_t y = (x & 0x7F7F7F7F7F7F7F7Full) + 0x7F7F7F7F7F7F7F7Full;
	return ~(y | x | 0x7F7F7F7F7F7F7F7Full);
}

/* key_hash() of a key of 1..8 bytes held in a register. */
static inline uint64_t key_hash_word(uint64_t w, size_t len)
{
	uint64_t h = (0x9E3779B97F4A7C15ull ^ len ^ w) * 0xbf58476d1ce4e5b9ull;
	return h ^ (h >> 31);
}

/*
 * The common case, done on one 8-byte load: a word of 1..7 bytes, all in
 * 0x21..0x7E/0x7F (printable ASCII), followed by a space; w holds the 8
 * bytes from the word's start.  Computes exactly what add_token() does:
 * the punctuation to strip, the two-character rule (bytes are characters
 * here), case, "n't", the lowercase key and its hash.
 */
static inline __attribute__((always_inline)) void
fast_token(const tr_sentiment *s, struct scratch *sc, uint64_t w, size_t len)
{
	uint64_t tok = w & bytes_below(len);
	uint64_t valid = HIGHS & bytes_below(len);
	uint64_t up = in_range(tok, 'A', 'Z'), lo = in_range(tok, 'a', 'z');
	size_t lead = 0, trail = len;
	if ((up | lo) != valid) {
		/* not only letters: string.punctuation is every printable byte
		 * but letters and digits; DEL is not printable */
		uint64_t nonpunct = (up | lo | in_range(tok, '0', '9') |
		                     zero_bytes(tok ^ (0x7F * ONES))) & valid;
		lead = trail = len;
		if (nonpunct != 0) {
			lead = (size_t)__builtin_ctzll(nonpunct) / 8;
			trail = (size_t)(63 - __builtin_clzll(nonpunct)) / 8 + 1;
		}
	}
	size_t stripped = trail - lead;
	bool keep_raw = stripped <= 2;
	uint64_t word = tok, word_up = up, word_lo = lo;
	size_t word_len = len;
	if (!keep_raw) {
		uint64_t m = bytes_below(stripped);
		word = (tok >> (8 * lead)) & m;
		word_up = (up >> (8 * lead)) & m;
		word_lo = (lo >> (8 * lead)) & m;
		word_len = stripped;
	}
	uint64_t lower = word | (word_up >> 2); /* 0x80 >> 2 = 0x20 */
	bool upper = word_up != 0 && word_lo == 0;
	bool has_nt = false;
	uint64_t word_valid = HIGHS & bytes_below(word_len);
	uint64_t apos = zero_bytes(lower ^ (0x27 * ONES)) & word_valid;
	if (apos != 0) {
		uint64_t n = zero_bytes(lower ^ (0x6E * ONES)) & word_valid;
		uint64_t t = zero_bytes(lower ^ (0x74 * ONES)) & word_valid;
		has_nt = (n & (apos >> 8) & (t >> 16)) != 0;
	}
	const struct entry *e = word_len <= s->max_key_len ?
	        lookup(s, lower, NULL, word_len, key_hash_word(lower, word_len)) : NULL;
	struct token *t = push_token(sc, e, upper, has_nt);

	if (s->n_phrases > 0) {
		const struct entry *core = e;
		if (keep_raw && (lead > 0 || trail < len)) {
			core = NULL;
			if (stripped > 0) {
				uint64_t m = bytes_below(stripped);
				uint64_t c = ((tok >> (8 * lead)) & m) | (((up >> (8 * lead)) & m) >> 2);
				core = lookup(s, c, NULL, stripped, key_hash_word(c, stripped));
			}
		}
		set_phrase_info(s, t, lead > 0, trail < len, core);
	}
}
#else
#define FAST_PATH 0
#endif

static size_t count_byte(const uint8_t *text, size_t n, uint8_t c)
{
	size_t count = 0;
	const uint8_t *p = text, *end = text + n;
	while (p < end && (p = memchr(p, c, (size_t)(end - p))) != NULL) {
		count++;
		p++;
	}
	return count;
}

/* Split as Python's str.split() does and count '!' and '?'. */
static void tokenize(const tr_sentiment *s, struct scratch *sc, const uint8_t *text, size_t n)
{
	size_t i = 0;
	uint32_t cp;
	while (i < n) {
		uint8_t cl = char_class[text[i]];
		if (cl & C_SPACE) {
			i++;
			continue;
		}
		if (cl & C_HIGH) {
			size_t l = utf8_next(text + i, n - i, &cp);
			if (is_unicode_space(cp)) {
				i += l;
				continue;
			}
		}
#if FAST_PATH
		else if (i + 8 <= n) {
			/* a short printable-ASCII word followed by a space */
			uint64_t w = load64(text + i);
			uint64_t stop = ((w - 0x21 * ONES) & ~w & HIGHS) | (w & HIGHS);
			if (stop != 0) {
				size_t len = (size_t)__builtin_ctzll(stop) / 8;
				if (len > 0 && (char_class[text[i + len]] & C_SPACE)) {
					fast_token(s, sc, w, len);
					i += len;
					continue;
				}
			}
		}
#endif
		size_t a = i;
		while (i < n) {
			/* find the next byte that may end the word (< 0x21 or
			 * >= 0x80) eight bytes at a time: the lowest flagged byte
			 * of the subtraction trick is exact */
			if (i + 8 <= n && LITTLE_ENDIAN_HOST) {
				uint64_t w = load64(text + i);
				uint64_t stop = ((w - 0x21 * ONES) & ~w & HIGHS) | (w & HIGHS);
				if (stop == 0) {
					i += 8;
					continue;
				}
				i += (size_t)__builtin_ctzll(stop) / 8;
			}
			cl = char_class[text[i]];
			if (cl & C_SPACE)
				break;
			if (cl & C_HIGH) {
				size_t l = utf8_next(text + i, n - i, &cp);
				if (is_unicode_space(cp))
					break;
				i += l;
			} else {
				i++;
			}
		}
		add_token(s, sc, text, n, a, i);
	}
	sc->ep = count_byte(text, n, '!');
	sc->qm = count_byte(text, n, '?');
}

/* Mark domain phrases, greedily from the left, longest first; true if
 * any matched. */
static bool match_phrases(const tr_sentiment *s, struct scratch *sc)
{
	struct token *t = sc->tok;
	bool matched = false;
	for (size_t i = 0; i < sc->n; i++) {
		if (!(t[i].flags & T_PHRASE_HEAD))
			continue;
		const struct entry *head = &s->entries[t[i].core - 1];
		for (int32_t p = head->phrase; p >= 0; p = s->phrases[p].next) {
			const struct phrase *ph = &s->phrases[p];
			if (i + ph->n_words > sc->n)
				continue;
			const uint32_t *w = s->phrase_words + ph->first_word;
			bool match = true, upper = (t[i].flags & T_UPPER) != 0;
			for (size_t k = 1; k < ph->n_words && match; k++) {
				const struct token *tk = &t[i + k];
				match = tk->core == w[k] + 1 && !(tk->flags & T_LEAD_PUNCT) &&
				        (k == ph->n_words - 1 || !(tk->flags & T_TRAIL_PUNCT));
				upper = upper && (tk->flags & T_UPPER);
			}
			if (!match)
				continue;
			/* The phrase becomes one lexicon item at its first word;
			 * its words lose their own roles (negation, booster, "no",
			 * "but", idiom words).  A phrase of valence 0 ("kind
			 * regards") only neutralises its words. */
			t[i].valence = ph->valence;
			t[i].booster = 0;
			t[i].word_id = W_NONE;
			t[i].flags = T_LEX | (upper ? T_UPPER : 0) | (ph->valence == 0 ? T_MEMBER : 0);
			for (size_t k = 1; k < ph->n_words; k++) {
				t[i + k].valence = 0;
				t[i + k].booster = 0;
				t[i + k].word_id = W_NONE;
				t[i + k].flags = T_LEX | T_MEMBER;
			}
			i += ph->n_words - 1;
			matched = true;
			break;
		}
	}
	return matched;
}

static inline bool is_so_or_this(uint8_t w)
{
	return w == W_SO || w == W_THIS;
}

/* scalar_inc_dec of the reference */
static double booster_scalar(const struct token *t, double valence, bool cap_diff)
{
	if (t->booster == 0)
		return 0.0;
	double scalar = t->booster > 0 ? B_INCR : B_DECR;
	if (valence < 0)
		scalar *= -1;
	if ((t->flags & T_UPPER) && cap_diff) {
		if (valence > 0)
			scalar += C_INCR;
		else
			scalar -= C_INCR;
	}
	return scalar;
}

/* _negation_check of the reference; start is 0, 1 or 2 and i > start. */
static double negation_check(double valence, const struct token *t, int start, size_t i)
{
	switch (start) {
	case 0:
		if (t[i - 1].flags & T_NEG)
			valence *= N_SCALAR;
		break;
	case 1:
		if (t[i - 2].word_id == W_NEVER && is_so_or_this(t[i - 1].word_id))
			valence *= 1.25;
		else if (t[i - 2].word_id == W_WITHOUT && t[i - 1].word_id == W_DOUBT)
			;
		else if (t[i - 2].flags & T_NEG)
			valence *= N_SCALAR;
		break;
	default:
		/* sic: "or" binds the last clause alone, as in the reference */
		if ((t[i - 3].word_id == W_NEVER && is_so_or_this(t[i - 2].word_id)) ||
		    is_so_or_this(t[i - 1].word_id))
			valence *= 1.25;
		else if (t[i - 3].word_id == W_WITHOUT &&
		         (t[i - 2].word_id == W_DOUBT || t[i - 1].word_id == W_DOUBT))
			;
		else if (t[i - 3].flags & T_NEG)
			valence *= N_SCALAR;
		break;
	}
	return valence;
}

static bool idiom_value(uint8_t a, uint8_t b, uint8_t c, double *v)
{
	if (a == W_NONE || b == W_NONE)
		return false;
	for (size_t k = 0; k < G_N_ELEMENTS(idioms); k++) {
		if (idioms[k].words[0] == a && idioms[k].words[1] == b && idioms[k].words[2] == c) {
			*v = idioms[k].valence;
			return true;
		}
	}
	return false;
}

static bool is_two_word_booster(uint8_t a, uint8_t b)
{
	return (a == W_JUST && b == W_ENOUGH) || (a == W_KIND && b == W_OF) ||
	       (a == W_SORT && b == W_OF);
}

/* _special_idioms_check of the reference; i >= 3. */
static double special_idioms(double valence, const struct token *t, size_t n, size_t i)
{
	uint8_t w0 = t[i].word_id, w1 = t[i - 1].word_id, w2 = t[i - 2].word_id,
	        w3 = t[i - 3].word_id;
	double v;
	/* onezero, twoonezero, twoone, threetwoone, threetwo: first hit wins */
	if ((w0 != W_NONE && idiom_value(w1, w0, W_NONE, &v)) ||
	    (w0 != W_NONE && w2 != W_NONE && idiom_value(w2, w1, w0, &v)) ||
	    idiom_value(w2, w1, W_NONE, &v) ||
	    (w3 != W_NONE && w1 != W_NONE && idiom_value(w3, w2, w1, &v)) ||
	    idiom_value(w3, w2, W_NONE, &v))
		valence = v;
	if (n - 1 > i && w0 != W_NONE && idiom_value(w0, t[i + 1].word_id, W_NONE, &v))
		valence = v;
	if (n - 1 > i + 1 && w0 != W_NONE && t[i + 2].word_id != W_NONE &&
	    idiom_value(w0, t[i + 1].word_id, t[i + 2].word_id, &v))
		valence = v;
	/* two-word dampeners ("kind of") before the word */
	if (is_two_word_booster(w3, w2))
		valence += B_DECR;
	if (is_two_word_booster(w2, w1))
		valence += B_DECR;
	return valence;
}

/* _least_check of the reference */
static double least_check(double valence, const struct token *t, size_t i)
{
	if (i > 1 && !(t[i - 1].flags & T_LEX) && t[i - 1].word_id == W_LEAST) {
		if (t[i - 2].word_id != W_AT && t[i - 2].word_id != W_VERY)
			valence *= N_SCALAR;
	} else if (i > 0 && !(t[i - 1].flags & T_LEX) && t[i - 1].word_id == W_LEAST) {
		valence *= N_SCALAR;
	}
	return valence;
}

/* polarity_scores' per-word step and sentiment_valence of the reference. */
static double word_valence(const struct token *t, size_t n, size_t i, bool cap_diff)
{
	const struct token *w = &t[i];
	if (w->booster != 0 || (w->flags & T_MEMBER))
		return 0.0;
	if (w->word_id == W_KIND && i + 1 < n && t[i + 1].word_id == W_OF)
		return 0.0;
	if (!(w->flags & T_LEX))
		return 0.0;

	double valence = w->valence;
	/* "no" before a lexicon word negates it rather than scoring itself */
	if (w->word_id == W_NO && i != n - 1 && (t[i + 1].flags & T_LEX))
		valence = 0.0;
	if ((i > 0 && t[i - 1].word_id == W_NO) || (i > 1 && t[i - 2].word_id == W_NO) ||
	    (i > 2 && t[i - 3].word_id == W_NO &&
	     (t[i - 1].word_id == W_OR || t[i - 1].word_id == W_NOR)))
		valence = w->valence * N_SCALAR;

	if ((w->flags & T_UPPER) && cap_diff) {
		if (valence > 0)
			valence += C_INCR;
		else
			valence -= C_INCR;
	}

	for (int start = 0; start < 3; start++) {
		size_t back = (size_t)start + 1;
		if (i > (size_t)start && !(t[i - back].flags & T_LEX)) {
			double s = booster_scalar(&t[i - back], valence, cap_diff);
			if (start == 1 && s != 0)
				s = s * 0.95;
			if (start == 2 && s != 0)
				s = s * 0.9;
			valence = valence + s;
			valence = negation_check(valence, t, start, i);
			if (start == 2)
				valence = special_idioms(valence, t, n, i);
		}
	}
	return least_check(valence, t, i);
}

static inline uint32_t map_slot(const struct scratch *sc, uint64_t key)
{
	key ^= key >> 33;
	key *= 0xff51afd7ed558ccdull;
	key ^= key >> 33;
	return (uint32_t)key & sc->map_mask;
}

/* Count of seen positions holding value v, adjusted by delta. */
static uint32_t map_add(struct scratch *sc, double v, int delta)
{
	uint64_t key;
	memcpy(&key, &v, sizeof(key));
	uint32_t i = map_slot(sc, key);
	while (sc->map_count[i] != UINT32_MAX && sc->map_key[i] != key)
		i = (i + 1) & sc->map_mask;
	if (sc->map_count[i] == UINT32_MAX) {
		if (delta <= 0)
			return 0;
		sc->map_key[i] = key;
		sc->map_count[i] = 0;
	}
	sc->map_count[i] = (uint32_t)((int64_t)sc->map_count[i] + delta);
	return sc->map_count[i];
}

/*
 * _but_check of the reference: words before the first "but" count half,
 * words after it one and a half.  The reference walks the list and finds
 * each value's position with list.index(), i.e. the FIRST position holding
 * an equal value, which may be an earlier, already scaled word: that word
 * is then scaled again and the current one left alone.  We reproduce this
 * exactly (it changes the score of a few percent of texts that contain
 * "but"), in linear time on ordinary text: a count of seen values says
 * whether an earlier equal value exists at all, and only then are the
 * earlier nonzero positions scanned.  Past a scan budget the quirk is no
 * longer emulated and each word is scaled where it stands.
 */
static void but_check(struct scratch *sc)
{
	const uint32_t *pos = sc->lex_pos;
	double *val = sc->lex_val;
	size_t bi = sc->but;
	size_t budget = sc->n * BUT_SCAN_PER_TOKEN;
	for (size_t i = 0; i <= sc->map_mask; i++)
		sc->map_count[i] = UINT32_MAX;

	for (size_t k = 0; k < sc->n_lex; k++) {
		double v = val[k];
		if (v == 0)
			continue; /* 0 scaled is 0: no effect wherever it lands */
		size_t j = k;
		if (map_add(sc, v, 0) > 0) {
			for (size_t q = 0; q < k && budget > 0; q++, budget--) {
				if (val[q] == v) {
					j = q;
					break;
				}
			}
		}
		double scaled = pos[j] < bi ? v * 0.5 : pos[j] > bi ? v * 1.5 : v;
		if (j != k) {
			map_add(sc, v, -1);
			val[j] = scaled;
			if (scaled != 0)
				map_add(sc, scaled, +1);
			map_add(sc, v, +1); /* position k keeps its value */
		} else {
			val[k] = scaled;
			if (scaled != 0)
				map_add(sc, scaled, +1);
		}
	}
}

static double normalize(double score)
{
	double norm = score / sqrt(score * score + NORMALIZE_ALPHA);
	if (norm < -1.0)
		return -1.0;
	if (norm > 1.0)
		return 1.0;
	return norm;
}

/* score_valence of the reference */
static tr_sentiment_score score_valence(const struct scratch *sc)
{
	tr_sentiment_score r = { 0, 0, 0, 0 };
	if (sc->n == 0)
		return r;
	/* The reference sums all words' valences, then sifts them; the words
	 * left out here are all 0, which changes neither sum, so the same
	 * additions happen in the same order. */
	double sum = 0.0, pos_sum = 0.0, neg_sum = 0.0;
	size_t nonzero = 0;
	for (size_t i = 0; i < sc->n_lex; i++) {
		double v = sc->lex_val[i];
		sum += v;
		if (v > 0)
			pos_sum += v + 1;
		else if (v < 0)
			neg_sum += v - 1;
		nonzero += v != 0;
	}
	double neu_count = (double)(sc->n - nonzero);

	size_t ep = sc->ep > 4 ? 4 : sc->ep;
	double amp = (double)ep * 0.292;
	if (sc->qm > 1)
		amp += sc->qm <= 3 ? (double)sc->qm * 0.18 : 0.96;
	if (sum > 0)
		sum += amp;
	else if (sum < 0)
		sum -= amp;
	r.compound = normalize(sum);

	if (pos_sum > fabs(neg_sum))
		pos_sum += amp;
	else if (pos_sum < fabs(neg_sum))
		neg_sum -= amp;
	double total = pos_sum + fabs(neg_sum) + neu_count;
	r.pos = fabs(pos_sum / total);
	r.neg = fabs(neg_sum / total);
	r.neu = fabs(neu_count / total);
	return r;
}

/* Where an over-long text is cut: at most TR_SENTIMENT_MAX_INPUT bytes,
 * preferably at whitespace, never inside a UTF-8 sequence. */
static size_t cut_length(const uint8_t *text, size_t len)
{
	if (len <= TR_SENTIMENT_MAX_INPUT)
		return len;
	size_t cut = TR_SENTIMENT_MAX_INPUT;
	for (size_t k = cut; k > TR_SENTIMENT_MAX_INPUT - CUT_BACKUP_MAX; k--) {
		if (char_class[text[k]] & C_SPACE)
			return k;
	}
	while (cut > TR_SENTIMENT_MAX_INPUT - 4 && is_cont(text[cut]))
		cut--;
	return cut;
}

/* Bytes of the text once emojis are replaced by their descriptions, or 0
 * when it holds none.  Mirrors the reference's loop: a description is
 * preceded by a space unless the previous character was one, and the next
 * character follows it directly. */
static size_t emoji_expand(const tr_sentiment *s, const uint8_t *text, size_t n, uint8_t *out)
{
	size_t i = 0, o = 0;
	bool prev_space = true, found = false;
	while (i < n) {
		uint8_t c = text[i];
		if (c < 0xC2u) {
			if (out != NULL)
				out[o] = c;
			o++;
			prev_space = c == ' ';
			i++;
			continue;
		}
		uint32_t cp;
		size_t l = utf8_next(text + i, n - i, &cp);
		const struct emoji_slot *e = cp != CP_INVALID ? emoji_lookup(s, cp) : NULL;
		if (e != NULL) {
			found = true;
			if (!prev_space) {
				if (out != NULL)
					out[o] = ' ';
				o++;
			}
			if (out != NULL)
				memcpy(out + o, s->emoji_text + e->desc_off, e->desc_len);
			o += e->desc_len;
			prev_space = false;
		} else {
			if (out != NULL)
				memcpy(out + o, text + i, l);
			o += l;
			prev_space = false;
		}
		i += l;
	}
	return found ? o : 0;
}

static bool has_emoji(const tr_sentiment *s, const uint8_t *text, size_t n)
{
	if (s->emoji_mask == 0)
		return false;
	size_t i = 0;
	while (i < n) {
		/* skip ASCII eight bytes at a time */
		while (i + 8 <= n && (load64(text + i) & 0x8080808080808080ull) == 0)
			i += 8;
		if (i >= n)
			break;
		if (text[i] < 0xC2u) {
			i++;
			continue;
		}
		uint32_t cp;
		size_t l = utf8_next(text + i, n - i, &cp);
		if (cp != CP_INVALID && emoji_lookup(s, cp) != NULL)
			return true;
		i += l;
	}
	return false;
}

/* The scratch block of a text too long for the stack, kept per thread and
 * grown, never shrunk (TR_SENTIMENT_MAX_INPUT bounds it at about 2 MB):
 * a long mail then costs no malloc, no fastbin consolidation and no
 * fresh pages on every call.  Freed when the thread ends. */
struct heap_scratch {
	size_t cap;
	uint8_t *data;
};

static void heap_scratch_free(gpointer p)
{
	struct heap_scratch *h = p;
	g_free(h->data);
	g_free(h);
}

static GPrivate heap_scratch_key = G_PRIVATE_INIT(heap_scratch_free);

static uint8_t *heap_scratch(size_t bytes)
{
	struct heap_scratch *h = g_private_get(&heap_scratch_key);
	if (h == NULL) {
		h = g_new0(struct heap_scratch, 1);
		g_private_set(&heap_scratch_key, h);
	}
	if (h->cap < bytes) {
		g_free(h->data);
		h->cap = pow2_at_least(bytes);
		h->data = g_malloc(h->cap);
	}
	return h->data;
}

tr_sentiment_score tr_sentiment_text(const tr_sentiment *s, const char *utf8, size_t len)
{
	tr_sentiment_score none = { 0, 0, 0, 0 };
	if (s == NULL || utf8 == NULL || len == 0)
		return none;

	const uint8_t *text = (const uint8_t *)utf8;
	size_t n = cut_length(text, len);
	size_t expanded = has_emoji(s, text, n) ? emoji_expand(s, text, n, NULL) : 0;
	size_t text_len = expanded > 0 ? expanded : n;

	/* One scratch block: the expanded text, then per-token arrays sized
	 * for the most tokens the text can hold (a token and the space after
	 * it take at least two bytes).  The "but" rule's value map comes out
	 * of the same block and needs at most one key per lexicon word. */
	size_t max_tok = text_len / 2 + 1;
	size_t text_bytes = (expanded + 7) & ~(size_t)7;
	size_t map_max = pow2_at_least(max_tok * 2);
	size_t bytes = text_bytes +
	               max_tok * (sizeof(struct token) + sizeof(double) + sizeof(uint32_t)) +
	               map_max * (sizeof(uint64_t) + sizeof(uint32_t));
	/* short texts (chat lines, subjects, tweets) stay on the stack */
	_Alignas(16) uint8_t stack_block[SCRATCH_STACK];
	uint8_t *block = bytes <= sizeof(stack_block) ? stack_block : heap_scratch(bytes);

	struct scratch sc = { .but = SIZE_MAX };
	uint8_t *p = block;
	if (expanded > 0) {
		emoji_expand(s, text, n, p);
		text = p;
		p += text_bytes;
	}
	/* 8-byte arrays first, then the 4-byte ones: all stay aligned */
	sc.tok = (struct token *)p;
	p += max_tok * sizeof(struct token);
	sc.lex_val = (double *)p;
	p += max_tok * sizeof(double);
	sc.map_key = (uint64_t *)p;
	p += map_max * sizeof(uint64_t);
	sc.lex_pos = (uint32_t *)p;
	p += max_tok * sizeof(uint32_t);
	sc.map_count = (uint32_t *)p;

	tokenize(s, &sc, text, text_len);
	if (s->n_phrases > 0 && match_phrases(s, &sc)) {
		/* phrases changed which words are lexicon items and may have
		 * swallowed a "but": list them again */
		sc.n_lex = 0;
		sc.but = SIZE_MAX;
		for (size_t i = 0; i < sc.n; i++) {
			sc.lex_pos[sc.n_lex] = (uint32_t)i;
			sc.n_lex += sc.tok[i].flags & T_LEX;
			if (sc.tok[i].word_id == W_BUT && sc.but == SIZE_MAX)
				sc.but = i;
		}
	}

	/* allcap_differential: some but not all words in capitals */
	bool cap_diff = sc.upper_words > 0 && sc.upper_words < sc.n;
	size_t nonzero = 0;
	for (size_t q = 0; q < sc.n_lex; q++) {
		double v = word_valence(sc.tok, sc.n, sc.lex_pos[q], cap_diff);
		sc.lex_val[q] = v;
		nonzero += v != 0;
	}
	if (sc.but != SIZE_MAX && nonzero > 0) {
		/* the map needs one key per nonzero valence, at most half full;
		 * map_max reserved room for the most there can be */
		sc.map_mask = pow2_at_least(nonzero * 2) - 1;
		but_check(&sc);
	}

	return score_valence(&sc);
}
