/* fuzz_sentiment.c — libFuzzer target for tr_sentiment_text()
 *
 * Arbitrary bytes (invalid UTF-8, NULs, emoji, phrase fragments) are scored
 * with the shipped lexicons, loaded once from $TR_TOP/conf/sentiment (or
 * ./conf/sentiment).  The first byte picks the scorer: VADER alone or
 * VADER + the support lexicon.
 *
 * Differential check: sentiment.c scores most words on a SWAR fast path
 * and the rest on a general path.  This file compiles sentiment.c a second
 * time with the fast path off and its public names renamed (slow_*), so
 * every input is scored both ways; the scores must be bit-identical, and
 * in range.
 */
#define TR_SENTIMENT_NO_FAST_PATH 1
#define tr_sentiment_load slow_sentiment_load
#define tr_sentiment_free slow_sentiment_free
#define tr_sentiment_text slow_sentiment_text
#define tr_sentiment_domain_size slow_sentiment_domain_size
#include "core/sentiment.c"
#undef tr_sentiment_load
#undef tr_sentiment_free
#undef tr_sentiment_text
#undef tr_sentiment_domain_size
/* the library's build, under the real names (the header is already in,
 * with the names renamed) */
tr_sentiment *tr_sentiment_load(const char *vader_lexicon_path, const char *emoji_lexicon_path,
                                const char *domain_lexicon_path, GError **error);
tr_sentiment_score tr_sentiment_text(const tr_sentiment *s, const char *utf8, size_t len);

#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct scorers {
	tr_sentiment *fast, *slow;
};

static void load(const char *top, bool domain, struct scorers *sc)
{
	char *vader = g_build_filename(top, "conf/sentiment/vader_lexicon.txt", NULL);
	char *emoji = g_build_filename(top, "conf/sentiment/emoji_utf8_lexicon.txt", NULL);
	char *support = g_build_filename(top, "conf/sentiment/support_lexicon.txt", NULL);
	GError *error = NULL;
	sc->fast = tr_sentiment_load(vader, emoji, domain ? support : NULL, &error);
	if (sc->fast != NULL)
		sc->slow = slow_sentiment_load(vader, emoji, domain ? support : NULL, &error);
	if (sc->fast == NULL || sc->slow == NULL) {
		fprintf(stderr, "fuzz_sentiment: %s (set TR_TOP to the source tree)\n", error->message);
		abort();
	}
	g_free(vader);
	g_free(emoji);
	g_free(support);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct scorers plain, domain;
	if (plain.fast == NULL) {
		const char *top = getenv("TR_TOP");
		load(top != NULL ? top : ".", false, &plain);
		load(top != NULL ? top : ".", true, &domain);
	}
	const struct scorers *sc = size > 0 && (data[0] & 1) ? &domain : &plain;
	tr_sentiment_score r = tr_sentiment_text(sc->fast, (const char *)data, size);
	tr_sentiment_score check = slow_sentiment_text(sc->slow, (const char *)data, size);
	if (memcmp(&r, &check, sizeof(r)) != 0) {
		fprintf(stderr, "fast path %.17g %.17g %.17g %.17g != general path %.17g %.17g %.17g %.17g\n",
		        r.compound, r.pos, r.neu, r.neg, check.compound, check.pos, check.neu, check.neg);
		abort();
	}
	double sum = r.pos + r.neu + r.neg;
	if (!(r.compound >= -1.0 && r.compound <= 1.0) || !(r.pos >= 0 && r.neu >= 0 && r.neg >= 0) ||
	    !(sum == 0 || fabs(sum - 1.0) < 1e-9))
		abort();
	return 0;
}
