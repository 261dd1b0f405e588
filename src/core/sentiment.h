/*
 * sentiment.h — lexicon sentiment scorer, a port of VADER (tr_sentiment_*)
 *
 * A faithful C port of the VADER rules of vaderSentiment 3.3.2 (Hutto &
 * Gilbert, ICWSM 2014; MIT licensed, see conf/sentiment/LICENSE.vader):
 * valence lexicon, negations (incl. "n't"), booster and dampener words, the
 * contrastive "but", ALL-CAPS emphasis when only some words are capitalised,
 * "!" and "?" amplification, "least", "never so/this", "without doubt",
 * special idioms, "kind of", "no" as negator or as a word of its own, and
 * the compound normalisation x / sqrt(x² + 15).  Emojis are replaced by
 * their description from the emoji lexicon, as the reference does.
 *
 * On top of VADER an optional domain lexicon (support mail:
 * conf/sentiment/support_lexicon.txt) adds words and multi-word phrases.
 * A phrase that matches is scored as one lexicon item placed at its first
 * word: negations, boosters and CAPS before it apply to the whole phrase,
 * and the words inside it neither score on their own nor act as modifiers
 * of the words after it.  Without a domain lexicon the scores are VADER's.
 *
 * The whole text is scored as one unit, as the reference scores whatever it
 * is given.  Only the first TR_SENTIMENT_MAX_INPUT bytes are scored (cut at
 * a whitespace or character boundary); the cost is linear in the text.
 *
 * Thread safety: a loaded tr_sentiment is read-only; any number of threads
 * may call tr_sentiment_text() on it at once.
 */
#ifndef TR_SENTIMENT_H
#define TR_SENTIMENT_H

#include <glib.h>
#include <stddef.h>

/* Bytes of text scored at most; the rest of a longer text is ignored. */
#define TR_SENTIMENT_MAX_INPUT (64u * 1024u)

typedef struct tr_sentiment tr_sentiment;

/*
 * Scores as the reference computes them, but not rounded (the reference
 * rounds compound to 4 and the proportions to 3 decimals for display).
 *   compound  normalised sum of valences, -1 (most negative) .. +1;
 *             >= 0.05 is commonly read as positive, <= -0.05 as negative.
 *   pos, neu, neg  proportions of the text's words that are positive,
 *             neutral, negative (they sum to 1; all 0 for a text without
 *             words).
 */
typedef struct {
	double compound, pos, neu, neg;
} tr_sentiment_score;

/*
 * Load the lexicons.
 *   vader_lexicon_path  vader_lexicon.txt: token TAB mean-valence TAB ...
 *                       (required).
 *   emoji_lexicon_path  emoji_utf8_lexicon.txt: emoji TAB description, or
 *                       NULL for no emoji replacement.  As in the reference,
 *                       only entries of a single code point take effect.
 *   domain_lexicon_path phrases and words with a valence (format in
 *                       conf/sentiment/support_lexicon.txt), or NULL.
 * Returns a new scorer, freed with tr_sentiment_free(); NULL when a file
 * cannot be read or is malformed, with *error (if error is not NULL) naming
 * the file and, for a bad line, the line number.
 */
tr_sentiment *tr_sentiment_load(const char *vader_lexicon_path,
                                const char *emoji_lexicon_path,
                                const char *domain_lexicon_path,
                                GError **error);

/* Free the scorer and set *s to NULL.  s or *s NULL is a no-op. */
void tr_sentiment_free(tr_sentiment **s);

/*
 * Score len bytes of text (no NUL terminator needed; NUL bytes are ordinary
 * characters).  The text should be UTF-8; an invalid byte is treated as one
 * character that is neither a letter, a space nor punctuation.  utf8 may be
 * NULL when len is 0.  Uses up to 8 KB of stack; a text of more than about
 * a hundred words also allocates one scratch block for the call, nothing
 * that outlives it.  Cost is linear: a few microseconds per KB.
 */
tr_sentiment_score tr_sentiment_text(const tr_sentiment *s, const char *utf8, size_t len);

/* Number of entries loaded from the domain lexicon (words + phrases). */
size_t tr_sentiment_domain_size(const tr_sentiment *s);

#endif
