/* quote.c — new text / quoted history / signature, see quote.h
 *
 * One forward pass over the lines classifies each as new or quoted and
 * records runs ("ranges") of the input; an attribution recognised on its
 * second or third line takes back the lines already counted as new.  A
 * cut ends the pass: the rest is one quoted range.  The signature is then
 * looked for by walking a bounded number of lines back from the end of
 * the new text.  Expensive checks (folding case into a small buffer,
 * table look-ups) run only on lines that pass a one-byte test: first byte
 * '-', '_', '=' or '*' (separators), last byte ':' (attributions), first
 * byte of a From header name.
 */
#include "core/quote.h"

#include <glib.h>
#include <string.h>

#define NONE ((size_t)-1)
#define FOLD_MAX 512          /* folded copies of short lines */
#define ATTRIBUTION_LINE_MAX 200
#define SIG_DELIM_TAIL 40     /* non-blank lines after "-- " */
#define SIG_BARE_DELIM_TAIL 15 /* ... after "--" */
#define SIGNOFF_TAIL 5        /* non-blank lines after a sign-off */
#define SIGNOFF_LINE_MAX 60
#define SIG_SHORT_LINE 100
#define QUOTE_INDENT_MAX 4    /* blanks allowed before '>' */
#define BLANKS_BEFORE_QUOTE 3 /* blank lines between attribution and '>' */

enum { R_NEW = 0, R_QUOTED = 1 };

struct range {
	size_t start, end;
	int kind;
};

struct line {
	size_t start, end, next; /* [start, end) without '\n'; next line */
	size_t first, last;      /* non-blank part [first, last) */
	gboolean blank;
};

struct splitter {
	const char *text;
	size_t len;
	GArray *ranges;
	size_t new_ranges;  /* R_NEW ranges in ranges */
	const char *marker;
};

static const char MARK_ATTRIBUTION[] = "attribution";
static const char MARK_ORIGINAL[] = "original-message";
static const char MARK_OUTLOOK[] = "outlook-header";
static const char MARK_FORWARD[] = "forward";
static const char MARK_PREFIX[] = "quote-prefix";

/* ---- lines and bytes ---- */

static gboolean is_hspace(unsigned char b)
{
	return b == ' ' || b == '\t' || b == '\r' || b == '\f' || b == '\v';
}

static gboolean is_nbsp(const char *t, size_t i, size_t end)
{
	return i + 1 < end && (unsigned char)t[i] == 0xC2 && (unsigned char)t[i + 1] == 0xA0;
}

static size_t skip_blank_forward(const char *t, size_t i, size_t end)
{
	for (;;) {
		if (i < end && is_hspace((unsigned char)t[i]))
			i++;
		else if (is_nbsp(t, i, end))
			i += 2;
		else
			return i;
	}
}

static size_t skip_blank_back(const char *t, size_t start, size_t i)
{
	for (;;) {
		if (i > start && is_hspace((unsigned char)t[i - 1]))
			i--;
		else if (i >= start + 2 && is_nbsp(t, i - 2, i))
			i -= 2;
		else
			return i;
	}
}

static void read_line(const char *t, size_t len, size_t pos, struct line *l)
{
	const char *nl = memchr(t + pos, '\n', len - pos);
	l->start = pos;
	l->end = nl != NULL ? (size_t)(nl - t) : len;
	l->next = nl != NULL ? l->end + 1 : len;
	l->first = skip_blank_forward(t, pos, l->end);
	l->blank = l->first == l->end;
	l->last = l->blank ? l->first : skip_blank_back(t, l->first, l->end);
}

static gboolean is_quote_line(const char *t, const struct line *l)
{
	return !l->blank && t[l->first] == '>' && l->first - l->start <= QUOTE_INDENT_MAX;
}

/* Does the line at pos (after at most max_blank blank lines) start with
 * '>'?  Looks only at leading blanks, never scans a whole long line. */
static gboolean quote_follows(const char *t, size_t len, size_t pos, unsigned max_blank)
{
	unsigned blanks = 0;
	while (pos < len) {
		size_t line_start = pos;
		pos = skip_blank_forward(t, pos, len);
		if (pos < len && t[pos] == '\n') {
			if (++blanks > max_blank)
				return FALSE;
			pos++;
			continue;
		}
		return pos < len && t[pos] == '>' && pos - line_start <= QUOTE_INDENT_MAX;
	}
	return FALSE;
}

/* Lowercase ASCII and Latin-1 capitals (UTF-8 C3 80..C3 9E), turn runs of
 * blanks into one space, trim.  Writes at most cap-1 bytes and a NUL. */
static size_t fold(const char *s, size_t n, char *out, size_t cap)
{
	size_t o = 0;
	gboolean space = FALSE;
	for (size_t i = 0; i < n && o + 4 < cap; i++) {
		unsigned char b = (unsigned char)s[i];
		if (is_hspace(b) || b == '\n') {
			space = TRUE;
			continue;
		}
		if (is_nbsp(s, i, n)) {
			space = TRUE;
			i++;
			continue;
		}
		if (space && o > 0)
			out[o++] = ' ';
		space = FALSE;
		if (b >= 'A' && b <= 'Z') {
			out[o++] = (char)(b + 32);
		} else if (b == 0xC3 && i + 1 < n) {
			unsigned char c = (unsigned char)s[++i];
			if (c >= 0x80 && c <= 0x9E && c != 0x97)
				c += 0x20;
			out[o++] = (char)b;
			out[o++] = (char)c;
		} else {
			out[o++] = (char)b;
		}
	}
	out[o] = '\0';
	return o;
}

/* Table words carry their length: the look-ups run on every candidate
 * line and must not strlen() a hundred entries each time. */
struct word {
	const char *s;
	size_t n;
};
#define W(literal) { literal, sizeof(literal) - 1 }

static gboolean in_table(const struct word *table, size_t n, const char *s, size_t m)
{
	for (size_t i = 0; i < n; i++) {
		if (table[i].n == m && table[i].s[0] == s[0] && memcmp(table[i].s, s, m) == 0)
			return TRUE;
	}
	return FALSE;
}

static gboolean starts_with_any(const struct word *table, size_t n, const char *s, size_t m)
{
	for (size_t i = 0; i < n; i++) {
		if (m >= table[i].n && table[i].s[0] == s[0] && memcmp(table[i].s, s, table[i].n) == 0)
			return TRUE;
	}
	return FALSE;
}

static gboolean starts_with(const char *s, size_t m, const char *prefix)
{
	size_t p = strlen(prefix);
	return m >= p && memcmp(s, prefix, p) == 0;
}

/* Ends with word w, preceded by a space or at the start. */
static gboolean ends_with_word(const char *s, size_t m, const struct word *w)
{
	size_t p = w->n;
	return m >= p && memcmp(s + m - p, w->s, p) == 0 && (m == p || s[m - p - 1] == ' ');
}

static gboolean contains(const char *s, size_t m, const char *needle)
{
	return memmem(s, m, needle, strlen(needle)) != NULL;
}

/* ---- ranges ---- */

static void add_range(struct splitter *sp, size_t start, size_t end, int kind, const char *marker)
{
	if (start >= end)
		return;
	if (kind == R_QUOTED && sp->marker == NULL)
		sp->marker = marker;
	if (sp->ranges->len > 0) {
		struct range *last = &g_array_index(sp->ranges, struct range, sp->ranges->len - 1);
		if (last->kind == kind && last->end == start) {
			last->end = end;
			return;
		}
	}
	struct range r = { start, end, kind };
	g_array_append_val(sp->ranges, r);
	if (kind == R_NEW)
		sp->new_ranges++;
}

/* A blank line belongs to whatever run it is in; leading ones to none. */
static void add_blank(struct splitter *sp, size_t start, size_t end)
{
	if (sp->ranges->len == 0)
		return;
	struct range *last = &g_array_index(sp->ranges, struct range, sp->ranges->len - 1);
	add_range(sp, start, end, last->kind, NULL);
}

/* Take back everything from offset on (lines already counted). */
static void retract(struct splitter *sp, size_t offset)
{
	while (sp->ranges->len > 0) {
		struct range *last = &g_array_index(sp->ranges, struct range, sp->ranges->len - 1);
		if (last->end <= offset)
			return;
		if (last->start >= offset) {
			if (last->kind == R_NEW)
				sp->new_ranges--;
			g_array_set_size(sp->ranges, sp->ranges->len - 1);
		} else {
			last->end = offset;
			return;
		}
	}
}

/* ---- separators ---- */

static const struct word original_names[] = {
	W("original message"), W("ursprüngliche nachricht"), W("original-nachricht"),
	W("originalnachricht"), W("mensaje original"), W("message d'origine"),
	W("message d’origine"), W("mensagem original"), W("messaggio originale"),
	W("oorspronkelijk bericht"), W("oorspronkelijk e-mailbericht"),
};

static const struct word forward_names[] = {
	W("forwarded message"), W("forwarded message follows"), W("mensaje reenviado"),
	W("weitergeleitete nachricht"), W("message transféré"), W("message transfere"),
	W("mensagem encaminhada"), W("mensagem reencaminhada"), W("messaggio inoltrato"),
	W("doorgestuurd bericht"), W("e-mail reenviado"),
};

static gboolean is_rule_byte(char b)
{
	return b == '-' || b == '_' || b == '=' || b == '*' || b == ' ' || b == '\t';
}

/* "-----Original Message-----" and friends: marker, or NULL. */
static const char *separator_marker(const char *t, const struct line *l)
{
	size_t a = l->first, b = l->last;
	unsigned rule = 0;
	while (a < b && is_rule_byte(t[a])) {
		if (t[a] != ' ' && t[a] != '\t')
			rule++;
		a++;
	}
	while (b > a && is_rule_byte(t[b - 1]))
		b--;
	if (rule < 2 || a == b || b - a > 60)
		return NULL;
	char f[FOLD_MAX];
	size_t m = fold(t + a, b - a, f, sizeof(f));
	if (in_table(original_names, G_N_ELEMENTS(original_names), f, m))
		return MARK_ORIGINAL;
	if (in_table(forward_names, G_N_ELEMENTS(forward_names), f, m) ||
	    starts_with(f, m, "forwarded by "))
		return MARK_FORWARD;
	return NULL;
}

static gboolean is_underscore_line(const char *t, const struct line *l)
{
	if (l->last - l->first < 8)
		return FALSE;
	for (size_t i = l->first; i < l->last; i++) {
		if (t[i] != '_')
			return FALSE;
	}
	return TRUE;
}

/* ---- Outlook header blocks ---- */

static const struct word from_names[] = {
	W("from"), W("de"), W("von"), W("van"), W("da"), W("od"), W("från"), W("fra"),
};

static const struct word header_names[] = {
	W("sent"), W("date"), W("to"), W("cc"), W("bcc"), W("subject"), W("reply-to"), W("importance"),
	W("enviado"), W("enviado el"), W("fecha"), W("para"), W("asunto"), W("cco"),
	W("gesendet"), W("datum"), W("an"), W("betreff"), W("kopie"),
	W("envoyé"), W("envoye"), W("à"), W("a"), W("objet"), W("répondre à"),
	W("enviada em"), W("enviado em"), W("data"), W("assunto"), W("cópia"),
	W("inviato"), W("oggetto"), W("verzonden"), W("aan"), W("onderwerp"),
	W("sendt"), W("emne"), W("til"), W("skickat"), W("ämne"), W("till"),
};

/* The folded name of a "Name: value" line ("*Name:*" too), or FALSE. */
static gboolean header_name(const char *t, const struct line *l, char *out, size_t cap, size_t *m_r)
{
	size_t a = l->first;
	while (a < l->last && t[a] == '*')
		a++;
	size_t window = l->last - a < 24 ? l->last - a : 24;
	const char *colon = memchr(t + a, ':', window);
	if (colon == NULL)
		return FALSE;
	size_t b = (size_t)(colon - t);
	while (b > a && (t[b - 1] == '*' || is_hspace((unsigned char)t[b - 1])))
		b--;
	if (b == a)
		return FALSE;
	*m_r = fold(t + a, b - a, out, cap);
	return TRUE;
}

static gboolean may_start_from_header(unsigned char c)
{
	switch (c) {
	case 'F': case 'f': case 'D': case 'd': case 'V': case 'v': case 'O': case 'o': case '*':
		return TRUE;
	default:
		return FALSE;
	}
}

static gboolean is_from_header(const char *t, const struct line *l)
{
	char f[64];
	size_t m;
	return header_name(t, l, f, sizeof(f), &m) &&
	       in_table(from_names, G_N_ELEMENTS(from_names), f, m);
}

static gboolean is_known_header(const char *t, const struct line *l)
{
	char f[64];
	size_t m;
	return header_name(t, l, f, sizeof(f), &m) &&
	       (in_table(header_names, G_N_ELEMENTS(header_names), f, m) ||
	        in_table(from_names, G_N_ELEMENTS(from_names), f, m));
}

/* At least two more header lines follow, before a blank line, among the
 * next TR_QUOTE_HEADER_LOOKAHEAD lines. */
static gboolean header_run_follows(const char *t, size_t len, size_t pos)
{
	unsigned found = 0;
	for (unsigned i = 0; i < TR_QUOTE_HEADER_LOOKAHEAD && pos < len; i++) {
		struct line l;
		read_line(t, len, pos, &l);
		if (l.blank)
			break;
		char f[64];
		size_t m;
		if (header_name(t, &l, f, sizeof(f), &m) &&
		    in_table(header_names, G_N_ELEMENTS(header_names), f, m) && ++found >= 2)
			return TRUE;
		pos = l.next;
	}
	return FALSE;
}

/* ---- attributions ---- */

enum strength { A_NONE = 0, A_WEAK, A_STRONG, A_FORWARD };

static const struct word forward_intros[] = {
	W("begin forwarded message:"), W("anfang der weitergeleiteten nachricht:"),
	W("inicio del mensaje reenviado:"), W("comienzo del mensaje reenviado:"),
	W("début du message réexpédié :"), W("début du message réexpédié:"),
	W("début du message transféré :"), W("début du message transféré:"),
	W("início da mensagem reencaminhada:"), W("início da mensagem encaminhada:"),
	W("inizio messaggio inoltrato:"), W("begin doorgestuurd bericht:"),
};

static const struct word verbs_at_end[] = {
	W("wrote"), W("escribió"), W("écrit"), W("escreveu"), W("scritto"), W("schrieb"), W("schreef"), W("skrev"),
};

static const struct word openers[] = {
	W("on "), W("el "), W("am "), W("le "), W("em "), W("op "), W("il "), W("den "),
};

static gboolean has_digit(const char *s, size_t m)
{
	for (size_t i = 0; i < m; i++) {
		if (s[i] >= '0' && s[i] <= '9')
			return TRUE;
	}
	return FALSE;
}

/* f: folded candidate ending in ':'.  *opener_r: starts with an opener. */
static enum strength attribution_strength(const char *f, size_t m, gboolean *opener_r)
{
	*opener_r = FALSE;
	if (in_table(forward_intros, G_N_ELEMENTS(forward_intros), f, m))
		return A_FORWARD;
	if (m == 0 || f[m - 1] != ':')
		return A_NONE;
	m--;
	while (m > 0 && f[m - 1] == ' ')
		m--;
	if (m < 5)
		return A_NONE;
	gboolean opener = FALSE;
	opener = starts_with_any(openers, G_N_ELEMENTS(openers), f, m);
	gboolean verb = FALSE;
	for (size_t i = 0; i < G_N_ELEMENTS(verbs_at_end) && !verb; i++)
		verb = ends_with_word(f, m, &verbs_at_end[i]);
	gboolean schrieb_am = contains(f, m, " schrieb am ");
	if (!verb)
		verb = schrieb_am || (starts_with(f, m, "am ") && contains(f, m, " schrieb ")) ||
		       (starts_with(f, m, "op ") && contains(f, m, " schreef "));
	if (!verb)
		return A_NONE;
	*opener_r = opener;
	gboolean digit = has_digit(f, m);
	if ((opener && digit) || memchr(f, '@', m) != NULL || (schrieb_am && digit))
		return A_STRONG;
	return m <= ATTRIBUTION_LINE_MAX ? A_WEAK : A_NONE;
}

static char sp_last_byte(const char *t, const struct line *l)
{
	return l->last > l->first ? t[l->last - 1] : '\0';
}

/* Try the line alone, then joined with the one or two unquoted lines just
 * above it (clients wrap long attributions).  Prefer a strong candidate
 * that starts with an opener, then any strong one, then a weak one. */
static enum strength find_attribution(const char *t, const struct line *cur,
                                      const struct line *prev1, const struct line *prev2,
                                      size_t *start_r)
{
	const struct line *parts[3] = { cur, prev1, prev2 };
	int lines = 0;
	size_t total = 0;
	for (int n = 1; n <= 3; n++) {
		const struct line *top = parts[n - 1];
		if (top == NULL || top->blank)
			break;
		size_t piece = top->last - top->first;
		/* a wrapped attribution breaks mid-sentence, never after one */
		char end = sp_last_byte(t, top);
		if (n > 1 && (piece > ATTRIBUTION_LINE_MAX || end == '.' || end == '!' || end == '?'))
			break;
		total += piece + 1;
		if (total > TR_QUOTE_MAX_ATTRIBUTION)
			break;
		lines = n;
	}
	/* Fold the longest candidate once; the shorter ones are its suffixes
	 * (folding trims each piece and joins with one space either way). */
	char f[FOLD_MAX];
	size_t offset[3] = { 0, 0, 0 };
	size_t m = 0;
	for (int i = lines - 1; i >= 0; i--) {
		if (m > 0)
			f[m++] = ' ';
		offset[i] = m;
		m += fold(t + parts[i]->first, parts[i]->last - parts[i]->first, f + m, sizeof(f) - m);
	}

	enum strength best = A_NONE;
	int best_rank = 0;
	for (int n = 1; n <= lines; n++) {
		gboolean opener;
		enum strength s = attribution_strength(f + offset[n - 1], m - offset[n - 1], &opener);
		if (s == A_FORWARD) {
			if (n == 1) {
				*start_r = cur->start;
				return A_FORWARD;
			}
			continue;
		}
		int rank = s == A_STRONG ? (opener ? 3 : 2) : s == A_WEAK ? 1 : 0;
		if (rank > best_rank) {
			best_rank = rank;
			best = s;
			*start_r = parts[n - 1]->start;
		}
		if (rank == 3)
			break;
	}
	return best;
}

/* ---- the pass ---- */

static gboolean is_mbox_from(const char *t, const struct line *l)
{
	return l->last - l->first >= 6 && memcmp(t + l->first, ">From ", 6) == 0;
}

static void split_lines(struct splitter *sp)
{
	const char *t = sp->text;
	size_t len = sp->len, pos = 0;
	struct line prev1, prev2;
	gboolean have_prev1 = FALSE, have_prev2 = FALSE;
	size_t underscore = NONE;     /* "____" line with only blanks since */
	gboolean prev_quoted = FALSE; /* last non-blank line was quoted */

	while (pos < len) {
		struct line l;
		read_line(t, len, pos, &l);
		pos = l.next;
		if (l.blank) {
			add_blank(sp, l.start, l.next);
			have_prev1 = have_prev2 = FALSE;
			continue;
		}
		if (is_quote_line(t, &l) &&
		    !(is_mbox_from(t, &l) && !prev_quoted && !quote_follows(t, len, l.next, 0))) {
			add_range(sp, l.start, l.next, R_QUOTED, MARK_PREFIX);
			have_prev1 = have_prev2 = FALSE;
			underscore = NONE;
			prev_quoted = TRUE;
			continue;
		}
		prev_quoted = FALSE;

		unsigned char first = (unsigned char)t[l.first];
		unsigned char last = (unsigned char)t[l.last - 1];
		size_t cut = NONE;
		const char *marker = NULL;
		if (first == '-' || first == '_' || first == '=' || first == '*') {
			marker = separator_marker(t, &l);
			if (marker != NULL)
				cut = l.start;
		}
		if (cut == NONE && last == ':' && l.last - l.first <= TR_QUOTE_MAX_ATTRIBUTION) {
			size_t start = l.start;
			enum strength s = find_attribution(t, &l, have_prev1 ? &prev1 : NULL,
			                                   have_prev1 && have_prev2 ? &prev2 : NULL, &start);
			if (s == A_FORWARD) {
				cut = start;
				marker = MARK_FORWARD;
			} else if (s != A_NONE && quote_follows(t, len, l.next, BLANKS_BEFORE_QUOTE)) {
				retract(sp, start);
				add_range(sp, start, l.next, R_QUOTED, MARK_ATTRIBUTION);
				have_prev1 = have_prev2 = FALSE;
				underscore = NONE;
				continue;
			} else if (s == A_STRONG) {
				cut = start;
				marker = MARK_ATTRIBUTION;
			}
		}
		if (cut == NONE && may_start_from_header(first) && is_from_header(t, &l) &&
		    header_run_follows(t, len, l.next)) {
			cut = underscore != NONE ? underscore : l.start;
			marker = MARK_OUTLOOK;
		}
		if (cut != NONE) {
			retract(sp, cut);
			if (sp->new_ranges > 0) {
				add_range(sp, cut, len, R_QUOTED, marker);
				return;
			}
			/* Nothing new above the cut: the answer may be below it
			 * (bottom posting, a forward without comment).  Quote the
			 * cut's own block — the attribution, or the separator and
			 * its header lines up to a blank line — and go on. */
			size_t block_end = l.next;
			if (marker != MARK_ATTRIBUTION) {
				while (block_end < len) {
					struct line h;
					read_line(t, len, block_end, &h);
					if (h.blank || !is_known_header(t, &h))
						break;
					block_end = h.next;
				}
			}
			add_range(sp, cut, block_end, R_QUOTED, marker);
			pos = block_end;
			have_prev1 = have_prev2 = FALSE;
			underscore = NONE;
			continue;
		}
		add_range(sp, l.start, l.next, R_NEW, NULL);
		underscore = is_underscore_line(t, &l) ? l.start : NONE;
		prev2 = prev1;
		have_prev2 = have_prev1;
		prev1 = l;
		have_prev1 = TRUE;
	}
}

/* ---- output ---- */

/* Shrink [*start, *end) to drop leading blank lines and trailing
 * whitespace. */
static void trim_block(const char *t, size_t *start, size_t *end)
{
	size_t s = *start, e = *end;
	for (;;) {
		size_t p = skip_blank_forward(t, s, e);
		if (p < e && t[p] == '\n')
			s = p + 1;
		else
			break;
	}
	for (;;) {
		size_t p = skip_blank_back(t, s, e);
		if (p > s && t[p - 1] == '\n')
			e = p - 1;
		else {
			e = p;
			break;
		}
	}
	if (e < s)
		e = s;
	*start = s;
	*end = e;
}

/* All runs of one kind, trimmed, joined with a blank line. */
static char *join_ranges(tr_pool *pool, struct splitter *sp, int kind, size_t *len_r)
{
	size_t total = 0;
	for (guint i = 0; i < sp->ranges->len; i++) {
		struct range *r = &g_array_index(sp->ranges, struct range, i);
		if (r->kind != kind)
			continue;
		trim_block(sp->text, &r->start, &r->end);
		if (r->end > r->start)
			total += (total > 0 ? 2 : 0) + (r->end - r->start);
	}
	char *out = tr_pool_alloc_uninit(pool, total + 1);
	size_t o = 0;
	for (guint i = 0; i < sp->ranges->len; i++) {
		const struct range *r = &g_array_index(sp->ranges, struct range, i);
		if (r->kind != kind || r->end == r->start)
			continue;
		if (o > 0) {
			memcpy(out + o, "\n\n", 2);
			o += 2;
		}
		memcpy(out + o, sp->text + r->start, r->end - r->start);
		o += r->end - r->start;
	}
	out[o] = '\0';
	*len_r = o;
	return out;
}

/* ---- signature ---- */

static const struct word signoffs[] = {
	/* English */
	W("best regards"), W("kind regards"), W("warm regards"), W("warmest regards"), W("regards"),
	W("with best regards"), W("with kind regards"), W("best wishes"), W("all the best"),
	W("thanks"), W("thank you"), W("thanks a lot"), W("thanks again"), W("thanks in advance"),
	W("thank you in advance"), W("thank you very much"), W("many thanks"), W("thx"), W("cheers"),
	W("sincerely"), W("yours sincerely"), W("sincerely yours"), W("yours truly"), W("best"), W("br"),
	W("kr"), W("rgds"),
	/* Spanish */
	W("saludos"), W("un saludo"), W("saludos cordiales"), W("un cordial saludo"), W("atentamente"),
	W("gracias"), W("muchas gracias"), W("gracias de antemano"), W("un abrazo"), W("cordialmente"),
	/* German */
	W("mit freundlichen grüßen"), W("mit freundlichen grüssen"), W("mit freundlichem gruß"),
	W("mit freundlichem gruss"), W("freundliche grüße"), W("freundliche grüsse"),
	W("viele grüße"), W("viele grüsse"), W("beste grüße"), W("beste grüsse"), W("liebe grüße"),
	W("liebe grüsse"), W("herzliche grüße"), W("herzliche grüsse"), W("schöne grüße"), W("grüße"),
	W("grüsse"), W("gruß"), W("gruss"), W("mfg"), W("vg"), W("lg"), W("danke"), W("vielen dank"), W("besten dank"),
	/* French */
	W("cordialement"), W("bien cordialement"), W("bien à vous"), W("merci"), W("merci beaucoup"),
	W("merci d'avance"), W("merci d’avance"), W("salutations"), W("sincères salutations"),
	W("meilleures salutations"), W("amicalement"), W("bonne journée"),
	/* Portuguese */
	W("atenciosamente"), W("obrigado"), W("obrigada"), W("muito obrigado"), W("muito obrigada"),
	W("abraços"), W("abraço"), W("um abraço"), W("att"), W("cumprimentos"), W("melhores cumprimentos"),
	/* Italian, Dutch */
	W("cordiali saluti"), W("distinti saluti"), W("saluti"), W("grazie"), W("grazie mille"),
	W("met vriendelijke groet"), W("vriendelijke groeten"), W("groeten"), W("bedankt"),
};

static const struct word mobile_footers[] = {
	W("sent from my "), W("sent from outlook"), W("sent from mail for "), W("sent from yahoo mail"),
	W("sent with "), W("get outlook for "), W("enviado desde mi "), W("enviado desde outlook"),
	W("enviado do meu "), W("enviado do outlook"), W("von meinem "), W("gesendet von meinem "),
	W("gesendet von outlook"), W("envoyé de mon "), W("envoyé depuis mon "), W("envoyé à partir de "),
	W("inviato da "), W("verzonden vanaf "), W("verstuurd vanaf "), W("obtener outlook para "),
	W("baixe o outlook para "), W("outlook für ios"), W("outlook für android"),
	W("télécharger outlook pour "),
};

static gboolean is_signoff_punct(char c)
{
	return c == ' ' || c == ',' || c == '.' || c == '!' || c == ':' || c == ';' || c == '-' ||
	       c == '~';
}

/* f: a folded line or line prefix. */
static gboolean is_signoff_phrase(const char *f, size_t m)
{
	while (m > 0 && is_signoff_punct(f[m - 1]))
		m--;
	return m > 0 && in_table(signoffs, G_N_ELEMENTS(signoffs), f, m);
}

/* "John", "Anna-Lena M.", "The Acme Team": one to three capitalised words. */
static gboolean is_name(const char *s, size_t n)
{
	while (n > 0 && (s[n - 1] == '!' || s[n - 1] == '.' || is_hspace((unsigned char)s[n - 1])))
		n--;
	if (n == 0 || n > 40)
		return FALSE;
	unsigned words = 0;
	size_t i = 0;
	while (i < n) {
		while (i < n && s[i] == ' ')
			i++;
		if (i >= n)
			break;
		unsigned char c = (unsigned char)s[i];
		if (!((c >= 'A' && c <= 'Z') || c >= 0xC3))
			return FALSE;
		if (++words > 3)
			return FALSE;
		while (i < n && s[i] != ' ') {
			c = (unsigned char)s[i];
			if (!(g_ascii_isalpha(c) || c >= 0x80 || c == '.' || c == '-' || c == '\''))
				return FALSE;
			i++;
		}
	}
	return words > 0;
}

/* The raw line t[a, b) and its folded copy f. */
static gboolean is_signoff(const char *t, size_t a, size_t b, const char *f, size_t m)
{
	if (b - a > SIGNOFF_LINE_MAX)
		return FALSE;
	if (is_signoff_phrase(f, m))
		return TRUE;
	/* "Thanks, John" / "Cheers - Bob" */
	for (size_t i = a; i < b; i++) {
		size_t rest;
		if (t[i] == ',')
			rest = i + 1;
		else if (t[i] == ' ' && i + 2 < b && t[i + 1] == '-' && t[i + 2] == ' ')
			rest = i + 3;
		else
			continue;
		char g[SIGNOFF_LINE_MAX + 8];
		size_t k = fold(t + a, i - a, g, sizeof(g));
		return is_signoff_phrase(g, k) && is_name(t + rest, b - rest);
	}
	return FALSE;
}

static gboolean is_mobile_footer(const char *t, size_t b, const char *f, size_t m)
{
	return m > 0 && t[b - 1] != '?' &&
	       starts_with_any(mobile_footers, G_N_ELEMENTS(mobile_footers), f, m);
}

static gboolean is_postscript(const char *f, size_t m)
{
	return starts_with(f, m, "p.s") || starts_with(f, m, "ps:") || starts_with(f, m, "ps ") ||
	       starts_with(f, m, "p.d.") || starts_with(f, m, "pd:");
}

/* A sentence of five or more words ending in . ! ?, or any question:
 * customer text, not signature. */
static gboolean is_sentence(const char *t, size_t a, size_t b)
{
	char end = t[b - 1];
	if (end == '?')
		return TRUE;
	if (end != '.' && end != '!')
		return FALSE;
	unsigned words = 1;
	for (size_t i = a; i < b; i++) {
		if (t[i] == ' ' && i + 1 < b && t[i + 1] != ' ')
			words++;
	}
	return words >= 5;
}

static gboolean is_sig_delimiter(const char *t, size_t a, size_t e, gboolean *exact_r)
{
	/* [a, e) is the raw line */
	if (e - a < 2 || t[a] != '-' || t[a + 1] != '-')
		return FALSE;
	for (size_t i = a + 2; i < e; i++) {
		if (!is_hspace((unsigned char)t[i]))
			return FALSE;
	}
	*exact_r = e - a >= 3 && t[a + 2] == ' ';
	return TRUE;
}

/* Offset in t[0, n) where the signature starts, or n. */
static size_t find_signature(const char *t, size_t n)
{
	size_t region_end = n;

	/* 1. the topmost "-- " / "--" delimiter with a short enough tail */
	unsigned nonblank = 0;
	size_t line_end = n;
	for (;;) {
		const char *nl = line_end > 0 ? memrchr(t, '\n', line_end) : NULL;
		size_t line_start = nl != NULL ? (size_t)(nl - t) + 1 : 0;
		size_t first = skip_blank_forward(t, line_start, line_end);
		if (first < line_end) {
			gboolean exact;
			if (nonblank > 0 && is_sig_delimiter(t, line_start, line_end, &exact) &&
			    nonblank <= (exact ? SIG_DELIM_TAIL : SIG_BARE_DELIM_TAIL))
				region_end = line_start;
			if (++nonblank > SIG_DELIM_TAIL)
				break;
		}
		if (line_start == 0)
			break;
		line_end = line_start - 1;
	}

	/* 2. a sign-off or mobile footer above it */
	size_t sig = region_end;
	if (region_end > 0) {
		nonblank = 0;
		line_end = region_end == n ? n : region_end - 1;
		for (;;) {
			const char *nl = line_end > 0 ? memrchr(t, '\n', line_end) : NULL;
			size_t line_start = nl != NULL ? (size_t)(nl - t) + 1 : 0;
			size_t a = skip_blank_forward(t, line_start, line_end);
			if (a < line_end) {
				size_t b = skip_blank_back(t, a, line_end);
				if (b - a > SIG_SHORT_LINE)
					break;
				char f[SIG_SHORT_LINE + 8];
				size_t m = fold(t + a, b - a, f, sizeof(f));
				if (is_signoff(t, a, b, f, m) || is_mobile_footer(t, b, f, m))
					sig = line_start;
				else if (is_postscript(f, m) || is_sentence(t, a, b))
					break;
				if (++nonblank > SIGNOFF_TAIL)
					break;
			}
			if (line_start == 0)
				break;
			line_end = line_start - 1;
		}
	}

	/* 3. never the whole message */
	for (size_t i = 0; i < sig; i++) {
		if (is_nbsp(t, i, sig)) {
			i++;
			continue;
		}
		if (t[i] != '\n' && !is_hspace((unsigned char)t[i]))
			return sig;
	}
	return n;
}

void tr_quote_split(tr_pool *pool, const char *text, size_t len, tr_quote_parts *out)
{
	memset(out, 0, sizeof(*out));
	if (text == NULL)
		len = 0;
	struct splitter sp = { text, len, g_array_new(FALSE, FALSE, sizeof(struct range)), 0, NULL };
	if (len > 0)
		split_lines(&sp);

	size_t new_len, quoted_len;
	char *new_text = join_ranges(pool, &sp, R_NEW, &new_len);
	char *quoted = join_ranges(pool, &sp, R_QUOTED, &quoted_len);
	g_array_free(sp.ranges, TRUE);

	size_t sig = find_signature(new_text, new_len);
	if (sig < new_len) {
		size_t s = sig, e = new_len;
		trim_block(new_text, &s, &e);
		out->signature = tr_pool_strndup(pool, new_text + s, e - s);
		out->signature_len = e - s;
		s = 0;
		e = sig;
		trim_block(new_text, &s, &e);
		/* s is 0: new_text had no leading blank lines */
		new_text[e] = '\0';
		new_len = e;
	} else {
		out->signature = tr_pool_strdup(pool, "");
	}
	out->new_text = new_text;
	out->new_len = new_len;
	out->quoted = quoted;
	out->quoted_len = quoted_len;
	out->marker = quoted_len > 0 ? sp.marker : NULL;
}
