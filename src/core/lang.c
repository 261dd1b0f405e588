/* lang.c — function-word language guess with a libexttextcat fallback */
#include "core/lang.h"

#include <libexttextcat/textcat.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* Languages of the function-word lists: bit i of a word's mask = codes[i]. */
static const char *const codes[] = { "en", "es", "de", "fr", "pt", "it", "nl" };
#define N_LANGS G_N_ELEMENTS(codes)

/* Frequent words that are rare in the other languages of the list.  Words
 * shared by several languages (e.g. "de", "la") count for each of them. */
static const char *const words[N_LANGS] = {
	/* en */ "the and is are was were you your have has with this that not for from our we "
	         "can please thanks thank would could will be it my i of to in on at an been there "
	         "what when which they them but or if do does did any all been since still just "
	         "about again because before done get got hello hi here how into know like more "
	         "need now only out should some sure than then these those too tried try up very "
	         "want who why working works",
	/* es */ "el la los las es en y que de por para con una del mi su pero muy está están esto "
	         "este esta hola gracias no se lo como mis puedo tengo hace desde sigue ayuda favor "
	         "cuenta hay ya también usted",
	/* de */ "der die das und ist nicht ich sie wir mit ein eine zu auf für den dem des von es "
	         "bitte danke kann haben habe wird sind mein meine uns auch noch seit aber oder wenn "
	         "hallo funktioniert geht ihr ihnen",
	/* fr */ "le la les et est je vous nous une un des du pour pas que qui dans sur avec mon ma "
	         "mes ce cette sont merci bonjour ne plus mais ou il elle votre au aux depuis toujours "
	         "être fonctionne",
	/* pt */ "os as é não que um uma do da dos das em no na para com por meu minha está "
	         "obrigado obrigada olá você vocês mas ou se ao seu sua isso este esta tenho conta "
	         "ainda desde também favor consigo estou preciso pelo pela nosso nossa",
	/* it */ "il lo la gli le è non che di un una per con mi mio sono ho grazie buongiorno "
	         "ciao questo della del nel anche ma ancora funziona",
	/* nl */ "de het een en is niet ik je u we wij van voor met op dat die zijn ben heb hebben "
	         "bedankt alstublieft graag maar ook nog werkt",
};

/* The function words in an open-addressing table (a word is looked up for
 * every word of a mail's first kilobyte; most are not there).  A slot holds
 * the word as two 8-byte keys: compared, and hashed, in a few operations. */
#define WORD_SLOTS 1024u  /* a power of two, well above the word count */
#define WORD_MAX 14       /* longest function word ("funktioniert" is 12) */

typedef struct {
	uint64_t head;  /* bytes 0..7 of the word, zero-padded */
	uint64_t tail;  /* bytes 8..13, the length (byte 14), the mask (byte 15) */
} word_slot;        /* 16 bytes: the table is 16 KB */
#define TAIL_KEY 0x00FFFFFFFFFFFFFFull  /* the tail without the mask */
G_STATIC_ASSERT(N_LANGS <= 8);

/* What a byte is to the word scan (see tr_lang_detect): one table look-up
 * instead of a chain of tests per byte. */
enum {
	BYTE_SPACE = 1,  /* g_ascii_isspace(): ends a chunk */
	BYTE_WORD = 2,   /* is_word_byte(): part of a word */
	BYTE_SKIP = 4,   /* '@' or '/': an address, URL or path */
	BYTE_W = 8,      /* 'w': the chunk may hold "www." */
};

struct tr_lang {
	word_slot slots[WORD_SLOTS];
	uint8_t byte_kind[256];
	size_t longest;          /* longest function word, bytes */
	void *textcat;           /* NULL when no fingerprints */
	GMutex textcat_lock;
};

/* "FILE:LINE: model M not found in DIR" for the first model of the
 * fingerprint list that is not a readable file, NULL when all are. */
static char *missing_model(const char *fingerprints, const char *model_dir)
{
	char *text = NULL;
	if (!g_file_get_contents(fingerprints, &text, NULL, NULL))
		return g_strdup_printf("%s: cannot read the language fingerprint list", fingerprints);
	char *problem = NULL;
	char **lines = g_strsplit(text, "\n", -1);
	for (unsigned i = 0; lines[i] != NULL && problem == NULL; i++) {
		char *line = g_strstrip(lines[i]);
		if (*line == '\0' || *line == '#')
			continue;
		char *model = g_strndup(line, strcspn(line, " \t"));
		char *path = g_build_filename(model_dir, model, NULL);
		if (!g_file_test(path, G_FILE_TEST_IS_REGULAR))
			problem = g_strdup_printf("%s:%u: language model '%s' not found in %s", fingerprints, i + 1,
			                          model, model_dir);
		g_free(path);
		g_free(model);
	}
	g_strfreev(lines);
	g_free(text);
	return problem;
}

/* The keys of a word of 1..WORD_MAX bytes, lowercased (ASCII). */
static void word_key(const char *w, size_t len, uint64_t *head_r, uint64_t *tail_r)
{
	unsigned char buf[16] = { 0 };
	for (size_t c = 0; c < len; c++) {
		char ch = w[c];
		buf[c] = (unsigned char)(ch >= 'A' && ch <= 'Z' ? ch + ('a' - 'A') : ch);
	}
	buf[WORD_MAX] = (unsigned char)len;
	memcpy(head_r, buf, 8);
	memcpy(tail_r, buf + 8, 8);
}

static inline bool is_word_byte(unsigned char c)
{
	return g_ascii_isalpha(c) || c >= 0x80;
}

static word_slot *word_find(word_slot *slots, uint64_t head, uint64_t tail)
{
	uint64_t h = (head ^ (tail * 0x9E3779B97F4A7C15ull)) * 0xbf58476d1ce4e5b9ull;
	for (uint32_t i = (uint32_t)(h >> 40);; i++) {
		word_slot *slot = &slots[i & (WORD_SLOTS - 1)];
		if ((slot->tail & TAIL_KEY) == 0 || (slot->head == head && (slot->tail & TAIL_KEY) == tail))
			return slot;
	}
}

tr_lang *tr_lang_new(const char *fingerprints, const char *model_dir, GError **error)
{
	tr_lang *lang = g_new0(tr_lang, 1);
	unsigned n_words = 0;
	for (unsigned i = 0; i < N_LANGS; i++) {
		char **list = g_strsplit(words[i], " ", -1);
		for (char **w = list; *w != NULL; w++) {
			size_t len = strlen(*w);
			if (len == 0)
				continue;
			g_assert(len <= WORD_MAX);
			uint64_t head, tail;
			word_key(*w, len, &head, &tail);
			word_slot *slot = word_find(lang->slots, head, tail);
			if ((slot->tail & TAIL_KEY) == 0) {
				g_assert(++n_words < WORD_SLOTS / 2);
				slot->head = head;
				slot->tail = tail;
				lang->longest = MAX(lang->longest, len);
			}
			slot->tail |= (uint64_t)(1u << i) << 56;
		}
		g_strfreev(list);
	}
	for (unsigned c = 0; c < 256; c++) {
		lang->byte_kind[c] = (uint8_t)((g_ascii_isspace(c) ? BYTE_SPACE : 0) |
		                               (is_word_byte((unsigned char)c) ? BYTE_WORD : 0) |
		                               (c == '@' || c == '/' ? BYTE_SKIP : 0) | (c == 'w' ? BYTE_W : 0));
	}
	g_mutex_init(&lang->textcat_lock);
	if (fingerprints != NULL) {
		/* libexttextcat leaks what it loaded when a model is missing:
		 * check every model first, and name the missing one. */
		char *missing = missing_model(fingerprints, model_dir);
		if (missing != NULL) {
			g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT, "%s", missing);
			g_free(missing);
			tr_lang_free(&lang);
			return NULL;
		}
		char *prefix = g_str_has_suffix(model_dir, "/") ? g_strdup(model_dir)
		                                                 : g_strconcat(model_dir, "/", NULL);
		lang->textcat = special_textcat_Init(fingerprints, prefix);
		g_free(prefix);
		if (lang->textcat == NULL) {
			g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED,
			            "%s: cannot load language fingerprints (models in %s)",
			            fingerprints, model_dir);
			tr_lang_free(&lang);
			return NULL;
		}
	}
	return lang;
}

void tr_lang_free(tr_lang **langp)
{
	tr_lang *lang = *langp;
	if (lang == NULL)
		return;
	*langp = NULL;
	if (lang->textcat != NULL)
		textcat_Done(lang->textcat);
	g_mutex_clear(&lang->textcat_lock);
	g_free(lang);
}

/* libexttextcat's verdict; with several candidates, the first one when it
 * agrees with the function-word leader (hint). */
static const char *textcat_guess(tr_lang *lang, const char *text, size_t len, const char *hint)
{
	if (lang->textcat == NULL || len < 24)
		return NULL;
	g_mutex_lock(&lang->textcat_lock);
	const char *guess = textcat_Classify(lang->textcat, text, len);
	const char *result = NULL;
	/* "[xx]" is a verdict; "[xx][yy]..." one only when xx agrees with the
	 * word count; SHORT and UNKNOWN are none. */
	if (guess != NULL && guess[0] == '[') {
		const char *close = strchr(guess, ']');
		if (close != NULL) {
			char *code = g_strndup(guess + 1, (size_t)(close - guess - 1));
			if (close[1] == '\0' || (hint != NULL && strcmp(code, hint) == 0))
				result = g_intern_string(code);
			g_free(code);
		}
	}
	g_mutex_unlock(&lang->textcat_lock);
	return result;
}

/* The leading language of score (-1 when none scored) and the two highest
 * scores. */
static int leader(const double score[N_LANGS], double *best_r, double *second_r)
{
	double best = 0, second = 0;
	int best_lang = -1;
	for (unsigned l = 0; l < N_LANGS; l++) {
		if (score[l] > best) {
			second = best;
			best = score[l];
			best_lang = (int)l;
		} else if (score[l] > second) {
			second = score[l];
		}
	}
	*best_r = best;
	*second_r = second;
	return best_lang;
}

/* A lead of at least LEAD_EARLY function words and LEAD_EARLY_RATIO times
 * the runner-up's. */
#define LEAD_EARLY 8.0
#define LEAD_EARLY_RATIO 4.0

static bool overwhelming(const double score[N_LANGS])
{
	double best, second;
	leader(score, &best, &second);
	return best >= LEAD_EARLY && best >= second * LEAD_EARLY_RATIO;
}

const char *tr_lang_detect(tr_lang *lang, const char *text, size_t len)
{
	if (len > TR_LANG_SAMPLE_BYTES) {
		len = TR_LANG_SAMPLE_BYTES;
		while (len > 0 && ((unsigned char)text[len] & 0xC0) == 0x80)
			len--;  /* do not cut a UTF-8 sequence */
	}
	/* A word shared by n languages gives each of them 1/n. */
	double score[N_LANGS] = { 0 };
	unsigned total_words = 0, hits = 0;
	bool done = false;
	size_t i = 0;
	const unsigned char *bytes = (const unsigned char *)text;
	const uint8_t *kind = lang->byte_kind;
	while (i < len && !done) {
		/* Whitespace-separated chunks; URLs, addresses and paths say
		 * nothing about the language and are skipped whole. */
		while (i < len && (kind[bytes[i]] & BYTE_SPACE))
			i++;
		size_t chunk = i;
		unsigned seen = 0;
		while (i < len && !(kind[bytes[i]] & BYTE_SPACE))
			seen |= kind[bytes[i++]];
		size_t chunk_len = i - chunk;
		if (chunk_len == 0)
			break;
		if ((seen & BYTE_SKIP) || !(seen & BYTE_WORD))
			continue;
		if ((seen & BYTE_W) && chunk_len >= 4 && memmem(text + chunk, chunk_len, "www.", 4) != NULL)
			continue;
		for (size_t k = chunk; k < i;) {
			while (k < i && !(kind[bytes[k]] & BYTE_WORD))
				k++;
			size_t start = k;
			while (k < i && (kind[bytes[k]] & BYTE_WORD))
				k++;
			size_t wlen = k - start;
			if (wlen == 0)
				break;
			total_words++;
			if (wlen > lang->longest)
				continue;  /* no function word is that long */
			uint64_t head, tail;
			word_key(text + start, wlen, &head, &tail);
			guint mask = (guint)(word_find(lang->slots, head, tail)->tail >> 56);
			if (mask == 0)
				continue;
			double share = 1.0 / __builtin_popcount(mask);
			for (unsigned l = 0; mask != 0; l++, mask >>= 1) {
				if (mask & 1u)
					score[l] += share;
			}
			/* Every eighth function word: stop reading once one
			 * language leads overwhelmingly (the rest of the
			 * sample cannot change the verdict in practice). */
			if ((++hits & 7) == 0 && overwhelming(score)) {
				done = true;
				break;
			}
		}
	}
	double best, second;
	int best_lang = leader(score, &best, &second);
	/* Decisive: enough evidence and a clear lead over the runner-up. */
	if (best_lang >= 0 && best >= 2 && best >= second * 1.5)
		return codes[best_lang];
	if (total_words < 4)
		return best_lang >= 0 && best >= 1.5 && second == 0 ? codes[best_lang] : NULL;
	return textcat_guess(lang, text, len, best_lang >= 0 && best > second ? codes[best_lang] : NULL);
}
