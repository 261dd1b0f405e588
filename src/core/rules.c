/* rules.c — rule files, validation, prefilter and matching; see rules.h */
#include "core/rules.h"

#include <glib.h>
#include <stddef.h>
#include <string.h>
#include <tre/tre.h>

#include "core/acmatch.h"
#include "core/fold.h"

#define KiB 1024

const tr_conftab tr_rules_limits_table[] = {
	{ "pattern_bytes", 512, 8, 8192, TR_UNIT_BYTES,
	  offsetof(tr_rules_limits, pattern_bytes), "longest regex, phrase or approximate phrase" },
	{ "phrases_per_rule", 500, 1, 100000, TR_UNIT_COUNT,
	  offsetof(tr_rules_limits, phrases_per_rule), "phrases in one rule" },
	{ "repeat_max", 50, 1, 255, TR_UNIT_COUNT,
	  offsetof(tr_rules_limits, repeat_max), "largest {m,n} repetition bound in a regex" },
	{ "max_cost", 3, 1, 5, TR_UNIT_COUNT,
	  offsetof(tr_rules_limits, max_cost), "largest edit cost of an approximate phrase" },
	{ "rules_max", 20000, 1, 1000000, TR_UNIT_COUNT,
	  offsetof(tr_rules_limits, rules_max), "rules in all rule files together" },
	{ "match_chars", 32 * KiB, 256, 4 * 1024 * KiB, TR_UNIT_CHARS,
	  offsetof(tr_rules_limits, match_chars), "characters of each field that rules look at" },
	{ NULL, 0, 0, 0, TR_UNIT_COUNT, 0, NULL },
};

static const char *const field_names[TR_FIELD_COUNT] = {
	"subject", "new", "quoted", "signature", "sender", "sender_domain", "header",
};
static const char *const level_names[] = { "none", "low", "medium", "high" };
static const char *const trigger_names[TR_TRIGGER_COUNT] = {
	"escalation_request", "complaint", "legal", "security", "outage", "data_loss",
	"churn", "vip", "negative_sentiment", "repeat_contact", "mass_incident",
};

const char *tr_field_name(tr_field field)
{
	return (unsigned)field < TR_FIELD_COUNT ? field_names[field] : "unknown";
}

const char *tr_level_name(tr_level level)
{
	return (unsigned)level < G_N_ELEMENTS(level_names) ? level_names[level] : "unknown";
}

bool tr_level_parse(const char *text, tr_level *level_r)
{
	for (unsigned i = 1; i < G_N_ELEMENTS(level_names); i++) {
		if (g_ascii_strcasecmp(text, level_names[i]) == 0) {
			*level_r = (tr_level)i;
			return true;
		}
	}
	return false;
}

const char *tr_trigger_name(tr_trigger trigger)
{
	return (unsigned)trigger < TR_TRIGGER_COUNT ? trigger_names[trigger] : "unknown";
}

bool tr_trigger_parse(const char *text, tr_trigger *trigger_r)
{
	for (unsigned i = 0; i < TR_TRIGGER_COUNT; i++) {
		if (g_ascii_strcasecmp(text, trigger_names[i]) == 0) {
			*trigger_r = (tr_trigger)i;
			return true;
		}
	}
	return false;
}

/* ------------------------------------------------------------------ model */

typedef enum { KIND_PHRASES, KIND_REGEX, KIND_APPROX } rule_kind;

typedef struct {
	char *text;    /* folded, without a trailing '*' */
	size_t len;
	bool prefix;   /* "refund*": matches refunds, refunded */
} phrase;

struct tr_rule {
	char *name;
	unsigned index;
	rule_kind kind;
	uint32_t fields;      /* bit (1 << tr_field) */
	char *header;         /* header name for TR_FIELD_HEADER */
	char **langs;         /* NULL: every language */
	phrase *phrases;
	unsigned n_phrases;
	char *pattern;        /* folded regex, or the folded approximate phrase */
	size_t pattern_len;
	regex_t re;
	bool re_compiled;
	bool unfiltered;      /* regex without a literal: runs on every text */
	int max_cost;         /* approximate: edits allowed (a transposition is one) */
	gunichar *approx_chars;
	size_t approx_n;      /* characters in the approximate phrase */
	bool negatable;
	tr_rule_effect effect;
	tr_rule_category *categories;
};

/* One use of a prefilter literal by a rule. */
enum { USE_PHRASE, USE_REGEX, USE_APPROX };
typedef struct {
	uint32_t rule;
	uint16_t role;
	uint16_t aux;   /* phrase index, or byte offset of an approximate piece */
} literal_use;

struct tr_rules {
	tr_rule **rules;
	unsigned n;
	tr_ac *ac;
	uint32_t *use_start;   /* per literal id: first use in uses[], n_literals + 1 entries */
	literal_use *uses;
	unsigned *unfiltered;  /* rule indexes */
	unsigned n_unfiltered;
	unsigned *header_rules;
	unsigned n_header_rules;
	uint32_t fields_read;  /* bit (1 << tr_field): some rule looks there */
	char **categories;
	tr_rules_limits limits;
};

static void rule_free(tr_rule *r)
{
	if (r == NULL)
		return;
	g_free(r->name);
	g_free(r->header);
	g_strfreev(r->langs);
	for (unsigned i = 0; i < r->n_phrases; i++)
		g_free(r->phrases[i].text);
	g_free(r->phrases);
	g_free(r->pattern);
	if (r->re_compiled)
		tre_regfree(&r->re);
	g_free(r->approx_chars);
	for (unsigned i = 0; i < r->effect.n_categories; i++)
		g_free((char *)r->categories[i].name);
	g_free(r->categories);
	g_free(r);
}

void tr_rules_free(tr_rules **rulesp)
{
	tr_rules *rules = *rulesp;
	if (rules == NULL)
		return;
	*rulesp = NULL;
	for (unsigned i = 0; i < rules->n; i++)
		rule_free(rules->rules[i]);
	g_free(rules->rules);
	tr_ac_free(&rules->ac);
	g_free(rules->use_start);
	g_free(rules->uses);
	g_free(rules->unfiltered);
	g_free(rules->header_rules);
	g_strfreev(rules->categories);
	g_free(rules);
}

unsigned tr_rules_count(const tr_rules *rules)
{
	return rules->n;
}

const char *const *tr_rules_categories(const tr_rules *rules)
{
	return (const char *const *)rules->categories;
}

unsigned tr_rules_unfiltered(const tr_rules *rules)
{
	return rules->n_unfiltered;
}

const char *tr_rule_name(const tr_rule *rule)
{
	return rule->name;
}

const tr_rule_effect *tr_rule_get_effect(const tr_rule *rule)
{
	return &rule->effect;
}

/* ------------------------------------------------------------------ regex checks */

/* Fold a regex: letters outside escapes are folded, "\X" stays as written. */
static char *fold_regex(const char *pattern)
{
	GString *out = g_string_new(NULL);
	tr_pool *pool = tr_pool_new(0);
	const char *p = pattern;
	while (*p != '\0') {
		const char *esc = strchr(p, '\\');
		size_t seg = esc != NULL ? (size_t)(esc - p) : strlen(p);
		g_string_append(out, tr_fold(pool, p, seg, NULL));
		p += seg;
		if (*p == '\\') {
			g_string_append_c(out, '\\');
			p++;
			if (*p != '\0') {
				const char *next = g_utf8_next_char(p);
				g_string_append_len(out, p, next - p);
				p = next;
			}
		}
	}
	tr_pool_free(&pool);
	return g_string_free(out, FALSE);
}

/* The longest literal run of one alternative so far. */
typedef struct {
	GString *run, *best;
	size_t last_char_at;   /* start of the last character in run */
} literal_scan;

static void run_end(literal_scan *ls)
{
	if (ls->run->len > ls->best->len)
		g_string_assign(ls->best, ls->run->str);
	g_string_truncate(ls->run, 0);
}

/*
 * Refuse what can blow up (back-references, nested or large repetition,
 * deep nesting) and collect, per top-level alternative, the longest
 * literal that every match must contain.  Returns false with *error.
 * *literals_r gets one literal per alternative, or NULL when some
 * alternative has none of at least 3 bytes (the rule is unfiltered).
 */
static bool scan_regex(const char *p, const tr_rules_limits *limits, GPtrArray **literals_r,
                       char **error)
{
	enum { ATOM_NONE, ATOM_CHAR, ATOM_OTHER, ATOM_GROUP } atom = ATOM_NONE;
	bool frame_quant[33] = { false };  /* a repetition inside frame i */
	bool atom_group_quant = false;      /* the group just closed contains one */
	int depth = 0;
	bool usable = true;
	literal_scan ls = { g_string_new(NULL), g_string_new(NULL), 0 };
	GPtrArray *literals = g_ptr_array_new_with_free_func(g_free);
	const char *s = p;
	*error = NULL;
	while (*s != '\0' && *error == NULL) {
		char c = *s;
		if (c == '\\') {
			char n = s[1];
			if (n >= '1' && n <= '9') {
				*error = g_strdup_printf("back-reference '\\%c' (exponential matching)", n);
				break;
			}
			if (n == '\0') {
				*error = g_strdup("trailing backslash");
				break;
			}
			if (g_ascii_isalnum(n) || n == '<' || n == '>') {
				/* \w \s \d \b \< \> ...: a class or an anchor */
				if (depth == 0)
					run_end(&ls);
				atom = ATOM_OTHER;
				s += 2;
			} else {
				if (depth == 0) {
					ls.last_char_at = ls.run->len;
					g_string_append_c(ls.run, n);
				}
				atom = ATOM_CHAR;
				s += 2;
			}
			continue;
		}
		if (c == '[') {
			const char *q = s + 1;
			if (*q == '^')
				q++;
			if (*q == ']')
				q++;
			while (*q != '\0' && *q != ']') {
				if (*q == '[' && (q[1] == ':' || q[1] == '.' || q[1] == '=')) {
					const char *close = strstr(q + 2, (char[]){ q[1], ']', '\0' });
					q = close != NULL ? close + 2 : q + strlen(q);
				} else {
					q++;
				}
			}
			if (*q != ']') {
				*error = g_strdup("unbalanced '['");
				break;
			}
			if (depth == 0)
				run_end(&ls);
			atom = ATOM_OTHER;
			s = q + 1;
			continue;
		}
		if (c == '(') {
			if (depth == 32) {
				*error = g_strdup("groups nested more than 32 deep");
				break;
			}
			if (depth == 0)
				run_end(&ls);
			depth++;
			frame_quant[depth] = false;
			atom = ATOM_NONE;
			s++;
			continue;
		}
		if (c == ')') {
			if (depth == 0) {
				*error = g_strdup("unbalanced ')'");
				break;
			}
			atom_group_quant = frame_quant[depth];
			depth--;
			if (atom_group_quant)
				frame_quant[depth] = true;
			atom = ATOM_GROUP;
			s++;
			continue;
		}
		if (c == '|') {
			if (depth == 0) {
				run_end(&ls);
				if (ls.best->len >= 3)
					g_ptr_array_add(literals, g_strdup(ls.best->str));
				else
					usable = false;
				g_string_truncate(ls.best, 0);
			}
			atom = ATOM_NONE;
			s++;
			continue;
		}
		if (c == '*' || c == '+' || c == '?' || c == '{') {
			long lo = 0, hi = -1;
			const char *after = s + 1;
			if (c == '{') {
				char *end = NULL;
				lo = strtol(s + 1, &end, 10);
				hi = lo;
				if (end != NULL && *end == ',') {
					char *end2 = NULL;
					hi = strtol(end + 1, &end2, 10);
					if (end2 == end + 1)
						hi = -1;  /* {n,} */
					end = end2;
				}
				if (end == NULL || *end != '}' || end == s + 1) {
					*error = g_strdup("malformed '{m,n}' repetition");
					break;
				}
				if (lo > limits->repeat_max || hi > limits->repeat_max) {
					*error = g_strdup_printf("repetition bound over %" G_GINT64_FORMAT " (limit repeat_max)",
					                         (gint64)limits->repeat_max);
					break;
				}
				after = end + 1;
			} else if (c == '+') {
				lo = 1;
			}
			if (atom == ATOM_NONE) {
				*error = g_strdup_printf("repetition '%c' with nothing to repeat", c);
				break;
			}
			if (atom == ATOM_GROUP && atom_group_quant) {
				*error = g_strdup("nested repetition (a repeated group that repeats inside)");
				break;
			}
			frame_quant[depth] = true;
			if (depth == 0) {
				if (atom == ATOM_CHAR && lo == 0)
					g_string_truncate(ls.run, ls.last_char_at);  /* optional char */
				run_end(&ls);
			}
			/* A lazy/possessive modifier right after is not another repetition. */
			atom = ATOM_NONE;
			s = after;
			if (*s == '?')
				s++;
			continue;
		}
		if (c == '.' || c == '^' || c == '$') {
			if (depth == 0)
				run_end(&ls);
			atom = ATOM_OTHER;
			s++;
			continue;
		}
		/* A literal character (possibly multi-byte). */
		const char *next = g_utf8_next_char(s);
		if (depth == 0) {
			ls.last_char_at = ls.run->len;
			g_string_append_len(ls.run, s, next - s);
		}
		atom = ATOM_CHAR;
		s = next;
	}
	if (*error == NULL && depth != 0)
		*error = g_strdup("unbalanced '('");
	if (*error == NULL) {
		run_end(&ls);
		if (ls.best->len >= 3)
			g_ptr_array_add(literals, g_strdup(ls.best->str));
		else
			usable = false;
	}
	g_string_free(ls.run, TRUE);
	g_string_free(ls.best, TRUE);
	if (*error != NULL || !usable) {
		g_ptr_array_unref(literals);
		*literals_r = NULL;
	} else {
		*literals_r = literals;
	}
	return *error == NULL;
}

/* ------------------------------------------------------------------ loading */

typedef struct {
	tr_rules *rules;
	GPtrArray *list;          /* tr_rule* */
	GHashTable *names;        /* name -> "file:line" of the first definition */
	GHashTable *categories;   /* name set */
	GArray *lit_rule;         /* per added literal: literal_use, with literal id */
	GArray *lit_id;
	const tr_rules_limits *limits;
} loader;

static void add_use(loader *ld, const char *literal, size_t len, uint32_t rule, uint16_t role,
                    uint16_t aux)
{
	unsigned id = tr_ac_add(ld->rules->ac, literal, len);
	literal_use use = { rule, role, aux };
	g_array_append_val(ld->lit_rule, use);
	g_array_append_val(ld->lit_id, id);
}

static char **split_list(const char *value)
{
	char **items = g_strsplit_set(value, ";,", -1);
	GPtrArray *out = g_ptr_array_new();
	for (char **it = items; *it != NULL; it++) {
		g_strstrip(*it);
		if (**it != '\0')
			g_ptr_array_add(out, g_strdup(*it));
	}
	g_strfreev(items);
	g_ptr_array_add(out, NULL);
	return (char **)g_ptr_array_free(out, FALSE);
}

/* Phrases are separated by ';' only (they may contain commas). */
static char **split_phrases(const char *value)
{
	char **items = g_strsplit(value, ";", -1);
	GPtrArray *out = g_ptr_array_new();
	for (char **it = items; *it != NULL; it++) {
		g_strstrip(*it);
		if (**it != '\0')
			g_ptr_array_add(out, g_strdup(*it));
	}
	g_strfreev(items);
	g_ptr_array_add(out, NULL);
	return (char **)g_ptr_array_free(out, FALSE);
}

/* Collapse whitespace to single spaces, as in the text being matched. */
static char *single_spaces(const char *s)
{
	char *out = g_malloc(strlen(s) + 1);
	size_t o = 0;
	bool space = false;
	for (const char *p = s; *p != '\0'; p++) {
		if (g_ascii_isspace(*p)) {
			space = o > 0;
			continue;
		}
		if (space)
			out[o++] = ' ';
		space = false;
		out[o++] = *p;
	}
	out[o] = '\0';
	return out;
}

static const char *const rule_keys[] = {
	"in", "phrases", "regex", "approx", "max_cost", "lang", "category", "urgency", "impact",
	"trigger", "score", "negatable", "description", NULL,
};

static bool parse_fields(const tr_conf *conf, tr_diag *diag, const char *group, tr_rule *r)
{
	char *value = tr_conf_string(conf, group, "in", "subject, new");
	char **items = split_list(value);
	bool ok = true;
	for (char **it = items; *it != NULL; it++) {
		bool known = false;
		if (g_ascii_strncasecmp(*it, "header:", 7) == 0 && (*it)[7] != '\0') {
			if (r->header != NULL) {
				tr_conf_error(conf, diag, group, "in", "only one header per rule");
				ok = false;
				continue;
			}
			r->header = g_strdup(*it + 7);
			r->fields |= 1u << TR_FIELD_HEADER;
			continue;
		}
		if (g_ascii_strcasecmp(*it, "body") == 0) {
			r->fields |= 1u << TR_FIELD_NEW | 1u << TR_FIELD_QUOTED | 1u << TR_FIELD_SIGNATURE;
			continue;
		}
		for (unsigned f = 0; f < TR_FIELD_HEADER; f++) {
			if (g_ascii_strcasecmp(*it, field_names[f]) == 0) {
				r->fields |= 1u << f;
				known = true;
			}
		}
		if (!known) {
			tr_conf_error(conf, diag, group, "in",
			              "unknown field '%s' (subject, new, quoted, signature, body, sender, "
			              "sender_domain, header:NAME)", *it);
			ok = false;
		}
	}
	g_strfreev(items);
	g_free(value);
	return ok;
}

static bool parse_effect(loader *ld, const tr_conf *conf, tr_diag *diag, const char *group, tr_rule *r)
{
	bool ok = true;
	char *value = tr_conf_string(conf, group, "category", NULL);
	if (value != NULL) {
		char **items = split_list(value);
		guint n = g_strv_length(items);
		r->categories = g_new0(tr_rule_category, n);
		for (guint i = 0; i < n; i++) {
			char *colon = strchr(items[i], ':');
			double weight = 1.0;
			if (colon != NULL) {
				*colon = '\0';
				char *end = NULL;
				weight = g_ascii_strtod(colon + 1, &end);
				if (end == colon + 1 || *end != '\0' || weight <= 0 || weight > 100) {
					tr_conf_error(conf, diag, group, "category",
					              "weight '%s' is not a number in 0..100", colon + 1);
					ok = false;
				}
			}
			char *name = g_ascii_strdown(g_strstrip(items[i]), -1);
			if (*name == '\0' || strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_-") != strlen(name)) {
				tr_conf_error(conf, diag, group, "category", "bad category name '%s'", name);
				ok = false;
			}
			g_hash_table_add(ld->categories, g_strdup(name));
			r->categories[r->effect.n_categories].name = name;
			r->categories[r->effect.n_categories].weight = weight;
			r->effect.n_categories++;
		}
		r->effect.categories = r->categories;
		g_strfreev(items);
		g_free(value);
	}
	const char *level_keys[] = { "urgency", "impact" };
	tr_level *levels[] = { &r->effect.urgency, &r->effect.impact };
	for (int i = 0; i < 2; i++) {
		value = tr_conf_string(conf, group, level_keys[i], NULL);
		if (value != NULL && !tr_level_parse(value, levels[i])) {
			tr_conf_error(conf, diag, group, level_keys[i], "'%s' is not low, medium or high", value);
			ok = false;
		}
		g_free(value);
	}
	value = tr_conf_string(conf, group, "trigger", NULL);
	if (value != NULL) {
		char **items = split_list(value);
		for (char **it = items; *it != NULL; it++) {
			tr_trigger t;
			if (!tr_trigger_parse(*it, &t) || t == TR_TRIGGER_REPEAT_CONTACT ||
			    t == TR_TRIGGER_MASS_INCIDENT || t == TR_TRIGGER_NEGATIVE_SENTIMENT ||
			    t == TR_TRIGGER_VIP) {
				tr_conf_error(conf, diag, group, "trigger",
				              "'%s' is not a rule trigger (escalation_request, complaint, legal, "
				              "security, outage, data_loss, churn)", *it);
				ok = false;
				continue;
			}
			r->effect.triggers |= 1u << t;
		}
		g_strfreev(items);
		g_free(value);
	}
	value = tr_conf_string(conf, group, "score", NULL);
	if (value != NULL) {
		char *end = NULL;
		r->effect.score = g_ascii_strtod(value, &end);
		if (end == value || *end != '\0' || r->effect.score < -100 || r->effect.score > 100) {
			tr_conf_error(conf, diag, group, "score", "'%s' is not a number in -100..100", value);
			ok = false;
		}
		g_free(value);
	}
	if (r->effect.n_categories == 0 && r->effect.urgency == TR_LEVEL_NONE &&
	    r->effect.impact == TR_LEVEL_NONE && r->effect.triggers == 0 && r->effect.score == 0) {
		tr_conf_error(conf, diag, group, NULL,
		              "contributes nothing (set category, urgency, impact, trigger or score)");
		ok = false;
	}
	/* Urgency, impact and trigger words are negation-aware unless told
	 * otherwise; low-urgency phrases ("no rush") are negations themselves. */
	bool def = r->effect.urgency != TR_LEVEL_LOW &&
	           (r->effect.urgency != TR_LEVEL_NONE || r->effect.impact != TR_LEVEL_NONE ||
	            r->effect.triggers != 0);
	r->negatable = tr_conf_bool(conf, diag, group, "negatable", def);
	return ok;
}

static bool parse_phrases(loader *ld, const tr_conf *conf, tr_diag *diag, const char *group,
                          tr_rule *r, const char *value)
{
	char **items = split_phrases(value);
	guint n = g_strv_length(items);
	bool ok = true;
	if (n == 0) {
		tr_conf_error(conf, diag, group, "phrases", "empty");
		ok = false;
	} else if ((int64_t)n > ld->limits->phrases_per_rule) {
		tr_conf_error(conf, diag, group, "phrases", "%u phrases, more than phrases_per_rule %" G_GINT64_FORMAT,
		              n, (gint64)ld->limits->phrases_per_rule);
		ok = false;
	}
	r->phrases = g_new0(phrase, n);
	for (guint i = 0; i < n && ok; i++) {
		char *spaced = single_spaces(items[i]);
		char *folded = tr_fold_dup(spaced);
		g_free(spaced);
		size_t len = strlen(folded);
		bool prefix = len > 0 && folded[len - 1] == '*';
		if (prefix)
			folded[--len] = '\0';
		if (len == 0 || strchr(folded, '*') != NULL) {
			tr_conf_error(conf, diag, group, "phrases",
			              "'%s': '*' only at the end of a phrase, after at least one letter", items[i]);
			ok = false;
			g_free(folded);
			break;
		}
		if ((int64_t)len > ld->limits->pattern_bytes) {
			tr_conf_error(conf, diag, group, "phrases", "'%.40s…' longer than pattern_bytes", items[i]);
			ok = false;
			g_free(folded);
			break;
		}
		r->phrases[r->n_phrases++] = (phrase){ folded, len, prefix };
		add_use(ld, folded, len, r->index, USE_PHRASE, (uint16_t)MIN(i, G_MAXUINT16));
	}
	g_strfreev(items);
	return ok;
}

static bool compile_tre(const tr_conf *conf, tr_diag *diag, const char *group, const char *key,
                        tr_rule *r, const char *pattern)
{
	int rc = tre_regncomp(&r->re, pattern, strlen(pattern), REG_EXTENDED);
	if (rc != REG_OK) {
		char buf[256];
		tre_regerror(rc, &r->re, buf, sizeof(buf));
		tr_conf_error(conf, diag, group, key, "%s in '%s'", buf, pattern);
		return false;
	}
	r->re_compiled = true;
	if (tre_have_backrefs(&r->re)) {
		tr_conf_error(conf, diag, group, key, "back-references are refused");
		return false;
	}
	return true;
}

static bool parse_regex(loader *ld, const tr_conf *conf, tr_diag *diag, const char *group,
                        tr_rule *r, const char *value)
{
	if ((int64_t)strlen(value) > ld->limits->pattern_bytes) {
		tr_conf_error(conf, diag, group, "regex", "%zu bytes, longer than pattern_bytes %" G_GINT64_FORMAT,
		              strlen(value), (gint64)ld->limits->pattern_bytes);
		return false;
	}
	r->pattern = fold_regex(value);
	r->pattern_len = strlen(r->pattern);
	GPtrArray *literals = NULL;
	char *error = NULL;
	if (!scan_regex(r->pattern, ld->limits, &literals, &error)) {
		tr_conf_error(conf, diag, group, "regex", "refused: %s", error);
		g_free(error);
		return false;
	}
	if (!compile_tre(conf, diag, group, "regex", r, r->pattern)) {
		if (literals != NULL)
			g_ptr_array_unref(literals);
		return false;
	}
	if (literals == NULL) {
		r->unfiltered = true;
		tr_diag_warning(diag, tr_conf_path(conf), tr_conf_line(conf, group, "regex"),
		                "[%s] regex has no literal of 3+ characters in every alternative: "
		                "it runs on every message (slow)", group);
		return true;
	}
	for (guint i = 0; i < literals->len; i++) {
		const char *lit = g_ptr_array_index(literals, i);
		add_use(ld, lit, strlen(lit), r->index, USE_REGEX, 0);
	}
	g_ptr_array_unref(literals);
	return true;
}

static bool parse_approx(loader *ld, const tr_conf *conf, tr_diag *diag, const char *group,
                         tr_rule *r, const char *value)
{
	char *spaced = single_spaces(value);
	r->pattern = tr_fold_dup(spaced);
	g_free(spaced);
	r->pattern_len = strlen(r->pattern);
	glong n_chars = 0;
	r->approx_chars = g_utf8_to_ucs4(r->pattern, -1, NULL, &n_chars, NULL);
	r->approx_n = r->approx_chars != NULL ? (size_t)n_chars : 0;
	char *cost_text = tr_conf_string(conf, group, "max_cost", "1");
	int64_t cost = 0;
	if (!tr_conf_parse_int(cost_text, TR_UNIT_COUNT, &cost) || cost < 1 || cost > ld->limits->max_cost) {
		tr_conf_error(conf, diag, group, "max_cost", "'%s' is not in 1..%" G_GINT64_FORMAT " (limit max_cost)",
		              cost_text, (gint64)ld->limits->max_cost);
		g_free(cost_text);
		return false;
	}
	g_free(cost_text);
	r->max_cost = (int)cost;
	if (r->approx_n > 64 || (int64_t)r->pattern_len > ld->limits->pattern_bytes) {
		tr_conf_error(conf, diag, group, "approx", "longer than 64 characters");
		return false;
	}
	/* Pigeonhole prefilter: with k edits, one of k+1 pieces occurs
	 * unchanged — except a transposition across a piece boundary, which
	 * breaks two; with 2k+1 pieces even that is covered.  Pieces shorter
	 * than 3 characters ("re", "nd") occur everywhere and would send TRE to
	 * work on every line, so 2k+1 pieces are used only when they are at
	 * least 3 characters long, else k+1. */
	size_t pieces = (size_t)(2 * r->max_cost + 1);
	if (r->approx_n < pieces * 3)
		pieces = (size_t)(r->max_cost + 1);
	if (r->approx_n < pieces * 3) {
		tr_conf_error(conf, diag, group, "approx",
		              "'%s' is too short for max_cost %d (needs %zu characters; use phrases)",
		              value, r->max_cost, pieces * 3);
		return false;
	}
	for (size_t i = 0; i < r->approx_n; i++) {
		if (strchr(".[]()*+?{}|^$\\", (int)r->approx_chars[i]) != NULL && r->approx_chars[i] < 128) {
			tr_conf_error(conf, diag, group, "approx", "plain words only (no regex characters)");
			return false;
		}
	}
	if (!compile_tre(conf, diag, group, "approx", r, r->pattern))
		return false;
	/* Pieces by characters, added as byte literals with their byte offset. */
	for (size_t k = 0; k < pieces; k++) {
		size_t from = r->approx_n * k / pieces, to = r->approx_n * (k + 1) / pieces;
		const char *start = g_utf8_offset_to_pointer(r->pattern, (glong)from);
		const char *end = g_utf8_offset_to_pointer(r->pattern, (glong)to);
		add_use(ld, start, (size_t)(end - start), r->index, USE_APPROX,
		        (uint16_t)(start - r->pattern));
	}
	return true;
}

static void load_rule(loader *ld, const tr_conf *conf, tr_diag *diag, const char *group)
{
	const char *name = group + 5;
	while (*name == ' ')
		name++;
	int line = tr_conf_line(conf, group, NULL);
	if (*name == '\0' || strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != strlen(name)) {
		tr_diag_error(diag, tr_conf_path(conf), line, "[%s]: rule names are letters, digits, '_', '-', '.'", group);
		return;
	}
	const char *first = g_hash_table_lookup(ld->names, name);
	if (first != NULL) {
		tr_diag_error(diag, tr_conf_path(conf), line, "rule '%s' already defined at %s", name, first);
		return;
	}
	g_hash_table_insert(ld->names, g_strdup(name), g_strdup_printf("%s:%d", tr_conf_path(conf), line));
	if ((int64_t)ld->list->len >= ld->limits->rules_max) {
		tr_diag_error(diag, tr_conf_path(conf), line, "more than rules_max %" G_GINT64_FORMAT " rules",
		              (gint64)ld->limits->rules_max);
		return;
	}
	tr_conf_check_keys(conf, diag, group, rule_keys);
	tr_rule *r = g_new0(tr_rule, 1);
	r->name = g_strdup(name);
	r->index = ld->list->len;
	bool ok = parse_fields(conf, diag, group, r);
	ok = parse_effect(ld, conf, diag, group, r) && ok;
	char *lang = tr_conf_string(conf, group, "lang", NULL);
	if (lang != NULL) {
		r->langs = split_list(lang);
		for (char **l = r->langs; *l != NULL; l++) {
			if (strlen(*l) != 2 || !g_ascii_isalpha((*l)[0]) || !g_ascii_isalpha((*l)[1])) {
				tr_conf_error(conf, diag, group, "lang", "'%s' is not a two-letter language code", *l);
				ok = false;
			}
		}
		g_free(lang);
	}
	const char *kinds[] = { "phrases", "regex", "approx" };
	char *values[3];
	int given = 0;
	for (int i = 0; i < 3; i++) {
		values[i] = tr_conf_string(conf, group, kinds[i], NULL);
		given += values[i] != NULL;
	}
	if (given != 1) {
		tr_conf_error(conf, diag, group, NULL, "needs exactly one of phrases, regex or approx");
		ok = false;
	} else if (ok) {
		if (values[0] != NULL) {
			r->kind = KIND_PHRASES;
			ok = parse_phrases(ld, conf, diag, group, r, values[0]);
		} else if (values[1] != NULL) {
			r->kind = KIND_REGEX;
			ok = parse_regex(ld, conf, diag, group, r, values[1]);
		} else {
			r->kind = KIND_APPROX;
			ok = parse_approx(ld, conf, diag, group, r, values[2]);
		}
	}
	if (values[2] == NULL && g_key_file_has_key(tr_conf_keyfile(conf), group, "max_cost", NULL)) {
		tr_conf_error(conf, diag, group, "max_cost", "only for approx rules");
		ok = false;
	}
	for (int i = 0; i < 3; i++)
		g_free(values[i]);
	if (!ok) {
		rule_free(r);
		return;
	}
	g_ptr_array_add(ld->list, r);
}

static void load_file(loader *ld, const char *path, const char *data, size_t len, tr_diag *diag)
{
	tr_conf *conf = data != NULL ? tr_conf_load_data(path, data, len, diag) : tr_conf_load(path, diag);
	if (conf == NULL)
		return;
	gsize n = 0;
	char **groups = g_key_file_get_groups(tr_conf_keyfile(conf), &n);
	for (gsize i = 0; i < n; i++) {
		if (strncmp(groups[i], "rule ", 5) == 0)
			load_rule(ld, conf, diag, groups[i]);
		else
			tr_diag_error(diag, path, tr_conf_line(conf, groups[i], NULL),
			              "[%s]: unknown group (rule files hold [rule NAME] groups)", groups[i]);
	}
	g_strfreev(groups);
	tr_conf_free(&conf);
}

static int compare_strings(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static tr_rules *finish(loader *ld, tr_diag *diag, unsigned errors_before)
{
	tr_rules *rules = ld->rules;
	rules->n = ld->list->len;
	rules->rules = (tr_rule **)g_ptr_array_free(ld->list, FALSE);
	tr_ac_compile(rules->ac);
	/* Uses grouped by literal id (counting sort). */
	unsigned n_lit = tr_ac_count(rules->ac);
	rules->use_start = g_new0(uint32_t, n_lit + 1);
	for (guint i = 0; i < ld->lit_id->len; i++)
		rules->use_start[g_array_index(ld->lit_id, unsigned, i) + 1]++;
	for (unsigned i = 0; i < n_lit; i++)
		rules->use_start[i + 1] += rules->use_start[i];
	rules->uses = g_new(literal_use, ld->lit_id->len + 1);
	uint32_t *fill = g_memdup2(rules->use_start, sizeof(uint32_t) * (n_lit + 1));
	for (guint i = 0; i < ld->lit_id->len; i++) {
		unsigned id = g_array_index(ld->lit_id, unsigned, i);
		rules->uses[fill[id]++] = g_array_index(ld->lit_rule, literal_use, i);
	}
	g_free(fill);
	rules->unfiltered = g_new(unsigned, rules->n + 1);
	rules->header_rules = g_new(unsigned, rules->n + 1);
	for (unsigned i = 0; i < rules->n; i++) {
		tr_rule *r = rules->rules[i];
		r->index = i;
		if (r->unfiltered)
			rules->unfiltered[rules->n_unfiltered++] = i;
		if (r->fields & (1u << TR_FIELD_HEADER))
			rules->header_rules[rules->n_header_rules++] = i;
		rules->fields_read |= r->fields;
	}
	GPtrArray *cats = g_ptr_array_new();
	GHashTableIter it;
	gpointer key;
	g_hash_table_iter_init(&it, ld->categories);
	while (g_hash_table_iter_next(&it, &key, NULL))
		g_ptr_array_add(cats, g_strdup(key));
	if (cats->len > 1)
		qsort(cats->pdata, cats->len, sizeof(char *), compare_strings);
	g_ptr_array_add(cats, NULL);
	rules->categories = (char **)g_ptr_array_free(cats, FALSE);
	g_hash_table_destroy(ld->names);
	g_hash_table_destroy(ld->categories);
	g_array_free(ld->lit_rule, TRUE);
	g_array_free(ld->lit_id, TRUE);
	if (tr_diag_error_count(diag) > errors_before)
		tr_rules_free(&rules);
	return rules;
}

static void loader_init(loader *ld, const tr_rules_limits *limits)
{
	tr_rules *rules = g_new0(tr_rules, 1);
	if (limits != NULL)
		rules->limits = *limits;
	else
		tr_conftab_defaults(tr_rules_limits_table, &rules->limits);
	ld->rules = rules;
	ld->limits = &rules->limits;
	ld->list = g_ptr_array_new();
	ld->names = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	ld->categories = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	ld->lit_rule = g_array_new(FALSE, FALSE, sizeof(literal_use));
	ld->lit_id = g_array_new(FALSE, FALSE, sizeof(unsigned));
	rules->ac = tr_ac_new();
}

tr_rules *tr_rules_load(const char *path, const tr_rules_limits *limits, tr_diag *diag)
{
	unsigned errors_before = tr_diag_error_count(diag);
	loader ld;
	loader_init(&ld, limits);
	if (g_file_test(path, G_FILE_TEST_IS_DIR)) {
		GError *error = NULL;
		GDir *dir = g_dir_open(path, 0, &error);
		if (dir == NULL) {
			tr_diag_error(diag, path, 0, "%s", error->message);
			g_error_free(error);
		} else {
			GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
			const char *name;
			while ((name = g_dir_read_name(dir)) != NULL) {
				if (g_str_has_suffix(name, ".conf") && name[0] != '.')
					g_ptr_array_add(names, g_build_filename(path, name, NULL));
			}
			g_dir_close(dir);
			if (names->len > 1)
				qsort(names->pdata, names->len, sizeof(char *), compare_strings);
			if (names->len == 0)
				tr_diag_warning(diag, path, 0, "no *.conf rule files");
			for (guint i = 0; i < names->len; i++)
				load_file(&ld, g_ptr_array_index(names, i), NULL, 0, diag);
			g_ptr_array_unref(names);
		}
	} else {
		load_file(&ld, path, NULL, 0, diag);
	}
	return finish(&ld, diag, errors_before);
}

tr_rules *tr_rules_load_data(const char *name, const char *data, size_t len,
                             const tr_rules_limits *limits, tr_diag *diag)
{
	unsigned errors_before = tr_diag_error_count(diag);
	loader ld;
	loader_init(&ld, limits);
	load_file(&ld, name, data, len, diag);
	return finish(&ld, diag, errors_before);
}

/* ------------------------------------------------------------------ matching */

/* Folded negation words; a negator within three words before a match (in
 * the same clause) cancels it: "not urgent", "kein Notfall", "pas urgent". */
static const char *const negators[] = {
	"not", "no", "never", "isn't", "isnt", "don't", "dont", "doesn't", "doesnt", "didn't",
	"didnt", "wasn't", "wasnt", "aren't", "arent", "won't", "wont", "without", "hardly",
	"nothing", "nor", "neither", "nunca", "sin", "ni", "tampoco", "nada", "nicht", "nichts",
	"kein", "keine", "keinen", "keinem", "keiner", "nie", "ohne", "pas", "non", "sans",
	"jamais", "aucun", "aucune", "rien", "nao", "sem", "nem", "nenhum", "nenhuma", "niet",
	"niets", "geen", "nooit", "zonder", "senza", "mai", "niente", NULL,
};

static bool is_negator(const char *w, size_t len)
{
	for (const char *const *n = negators; *n != NULL; n++) {
		if (strlen(*n) == len && memcmp(*n, w, len) == 0)
			return true;
	}
	return false;
}

static bool is_clause_break(char c)
{
	return c == '.' || c == '!' || c == '?' || c == ';' || c == ':' || c == ',' || c == '\n';
}

static bool negated_before(const char *text, size_t start)
{
	size_t i = start;
	for (int words = 0; words < 3 && i > 0; words++) {
		while (i > 0 && !tr_fold_is_word_byte((unsigned char)text[i - 1]) && text[i - 1] != '\'') {
			if (is_clause_break(text[i - 1]))
				return false;
			i--;
		}
		size_t end = i;
		while (i > 0 && (tr_fold_is_word_byte((unsigned char)text[i - 1]) || text[i - 1] == '\''))
			i--;
		if (end == i)
			return false;
		size_t wlen = end - i;
		if (is_negator(text + i, wlen))
			return true;
		static const char *const contrast[] = { "but", "pero", "aber", "mais", "mas", "maar", "ma" };
		for (size_t k = 0; k < G_N_ELEMENTS(contrast); k++) {
			if (strlen(contrast[k]) == wlen && memcmp(contrast[k], text + i, wlen) == 0)
				return false;
		}
	}
	return false;
}

/* Per-message matching state. */
enum { STATE_NONE = 0, STATE_CANDIDATE, STATE_FIRED };

typedef struct {
	uint32_t rule;
	size_t start, end;
} approx_window;

typedef struct {
	const tr_rules *rules;
	const tr_msg *msg;
	uint8_t *state;        /* per rule, reset per field */
	GArray *hits;          /* tr_rule_hit */
	GArray *regex_candidates;
	GArray *windows;
} match_ctx;

static bool rule_language_ok(const tr_rule *r, const tr_msg *msg)
{
	if (r->langs == NULL || msg->language == NULL)
		return true;
	for (char **l = r->langs; *l != NULL; l++) {
		if (strcmp(*l, msg->language) == 0)
			return true;
	}
	return false;
}

static void fire(match_ctx *ctx, const tr_rule *r, tr_field field, const char *header,
                 const char *text, size_t start, size_t end, int cost)
{
	if (ctx->state[r->index] == STATE_FIRED)
		return;
	bool negated = r->negatable && negated_before(text, start);
	tr_rule_hit hit = {
		.rule = r, .field = field, .header = header, .cost = cost, .negated = negated,
		.match = tr_pool_strndup(ctx->msg->pool, text + start, MIN(end - start, 80)),
	};
	/* A negated occurrence is kept for the explanation; a later plain one
	 * still fires. */
	if (!negated)
		ctx->state[r->index] = STATE_FIRED;
	for (guint i = 0; i < ctx->hits->len; i++) {
		tr_rule_hit *h = &g_array_index(ctx->hits, tr_rule_hit, i);
		if (h->rule == r && h->field == field && h->negated) {
			if (!negated)
				*h = hit;
			return;
		}
	}
	g_array_append_val(ctx->hits, hit);
}

/* Optimal string alignment distance (Levenshtein plus adjacent
 * transposition), on characters; both sides at most 96 characters. */
static int osa_distance(const gunichar *a, size_t n, const gunichar *b, size_t m)
{
	int d[97][97];
	if (n > 96 || m > 96)
		return 1000;
	for (size_t i = 0; i <= n; i++)
		d[i][0] = (int)i;
	for (size_t j = 0; j <= m; j++)
		d[0][j] = (int)j;
	for (size_t i = 1; i <= n; i++) {
		for (size_t j = 1; j <= m; j++) {
			int cost = a[i - 1] == b[j - 1] ? 0 : 1;
			int v = MIN(MIN(d[i - 1][j] + 1, d[i][j - 1] + 1), d[i - 1][j - 1] + cost);
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
				v = MIN(v, d[i - 2][j - 2] + 1);
			d[i][j] = v;
		}
	}
	return d[n][m];
}

static void run_approx(match_ctx *ctx, const tr_rule *r, tr_field field, const char *header,
                       const char *text, size_t len, size_t ws, size_t we)
{
	regaparams_t params;
	tre_regaparams_default(&params);
	params.max_cost = 2 * r->max_cost;  /* TRE counts a transposition as two */
	params.max_err = 2 * r->max_cost;
	regmatch_t pm[1];
	regamatch_t am = { .nmatch = 1, .pmatch = pm };
	if (tre_reganexec(&r->re, text + ws, we - ws, &am, params, 0) != REG_OK)
		return;
	/* Widen to whole words and judge the edit distance ourselves. */
	size_t s = ws + (size_t)pm[0].rm_so, e = ws + (size_t)pm[0].rm_eo;
	while (s > 0 && tr_fold_is_word_byte((unsigned char)text[s - 1]))
		s--;
	while (e < len && tr_fold_is_word_byte((unsigned char)text[e]))
		e++;
	while (s < e && text[s] == ' ')
		s++;
	while (e > s && text[e - 1] == ' ')
		e--;
	if (e <= s || e - s > 4 * r->pattern_len + 16)
		return;
	glong n = 0;
	gunichar *seg = g_utf8_to_ucs4_fast(text + s, (glong)(e - s), &n);
	int dist = osa_distance(r->approx_chars, r->approx_n, seg, (size_t)n);
	g_free(seg);
	if (dist <= r->max_cost)
		fire(ctx, r, field, header, text, s, e, dist);
}

static void run_regex(match_ctx *ctx, const tr_rule *r, tr_field field, const char *header,
                      const char *text, size_t len)
{
	regmatch_t pm[1];
	if (tre_regnexec(&r->re, text, len, 1, pm, 0) == REG_OK && pm[0].rm_so >= 0)
		fire(ctx, r, field, header, text, (size_t)pm[0].rm_so, (size_t)pm[0].rm_eo, 0);
}

static bool boundary_before(const char *text, size_t pos)
{
	return pos == 0 || !tr_fold_is_word_byte((unsigned char)text[pos - 1]) ||
	       !tr_fold_is_word_byte((unsigned char)text[pos]);
}

static bool boundary_after(const char *text, size_t len, size_t pos)
{
	return pos >= len || !tr_fold_is_word_byte((unsigned char)text[pos]) ||
	       !tr_fold_is_word_byte((unsigned char)text[pos - 1]);
}

/* Text ready for matching: folded, whitespace runs (a single newline too:
 * mail is hard-wrapped) as one space, at most match_chars characters.  A
 * blank line becomes one '\n', so that a paragraph ends a negation's reach
 * (is_clause_break) and no phrase spans two paragraphs. */
static char *match_text(const match_ctx *ctx, const char *text, size_t *len_r)
{
	size_t len = strlen(text);
	int64_t max_bytes = ctx->rules->limits.match_chars * 4;
	if ((int64_t)len > max_bytes) {
		len = (size_t)max_bytes;
		while (len > 0 && ((unsigned char)text[len] & 0xC0) == 0x80)
			len--;
	}
	size_t flen;
	char *folded = tr_fold(ctx->msg->pool, text, len, &flen);
	size_t o = 0;
	bool space = false;
	int newlines = 0;
	for (size_t i = 0; i < flen; i++) {
		char c = folded[i];
		if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
			space = o > 0;
			newlines += c == '\n';
			continue;
		}
		if (space)
			folded[o++] = newlines >= 2 ? '\n' : ' ';
		space = false;
		newlines = 0;
		folded[o++] = c;
	}
	folded[o] = '\0';
	*len_r = o;
	return folded;
}

static int compare_windows(gconstpointer a, gconstpointer b)
{
	const approx_window *x = a, *y = b;
	if (x->rule != y->rule)
		return x->rule < y->rule ? -1 : 1;
	return x->start < y->start ? -1 : x->start > y->start;
}

static void match_field(match_ctx *ctx, tr_field field, const char *header, const char *raw,
                        const unsigned *only, unsigned n_only)
{
	const tr_rules *rules = ctx->rules;
	/* A field no rule looks at is neither folded nor scanned (the shipped
	 * rules read subject and new text: quoted history and signatures,
	 * often most of a mail, cost nothing). */
	if (raw == NULL || *raw == '\0' || !(rules->fields_read & (1u << field)))
		return;
	size_t len;
	const char *text = match_text(ctx, raw, &len);
	memset(ctx->state, 0, rules->n);
	g_array_set_size(ctx->regex_candidates, 0);
	g_array_set_size(ctx->windows, 0);
	const uint32_t field_bit = 1u << field;

	/* A header pass looks only at the rules naming that header. */
	uint8_t *allowed = NULL;
	if (only != NULL) {
		allowed = tr_pool_alloc(ctx->msg->pool, rules->n);
		for (unsigned i = 0; i < n_only; i++)
			allowed[only[i]] = 1;
	}

	tr_ac_iter it;
	tr_ac_iter_init(&it, rules->ac, text, len);
	unsigned id;
	size_t end;
	while (tr_ac_iter_next(&it, &id, &end)) {
		size_t lit_len = tr_ac_literal_len(rules->ac, id);
		size_t start = end - lit_len;
		for (uint32_t u = rules->use_start[id]; u < rules->use_start[id + 1]; u++) {
			const literal_use *use = &rules->uses[u];
			const tr_rule *r = rules->rules[use->rule];
			if (!(r->fields & field_bit) || ctx->state[r->index] == STATE_FIRED)
				continue;
			if (allowed != NULL && !allowed[r->index])
				continue;
			switch (use->role) {
			case USE_PHRASE: {
				const phrase *ph = &r->phrases[use->aux];
				if (ph->len != lit_len || !boundary_before(text, start))
					break;
				if (!ph->prefix && !boundary_after(text, len, end))
					break;
				if (!rule_language_ok(r, ctx->msg))
					break;
				size_t word_end = end;
				if (ph->prefix) {
					while (word_end < len && tr_fold_is_word_byte((unsigned char)text[word_end]))
						word_end++;
				}
				fire(ctx, r, field, header, text, start, word_end, 0);
				break;
			}
			case USE_REGEX:
				if (ctx->state[r->index] == STATE_NONE) {
					ctx->state[r->index] = STATE_CANDIDATE;
					g_array_append_val(ctx->regex_candidates, r->index);
				}
				break;
			case USE_APPROX: {
				size_t slack = (size_t)(2 * r->max_cost) * 4;  /* bytes, up to 4 per character */
				size_t ws = start > use->aux + slack ? start - use->aux - slack : 0;
				size_t we = MIN(len, ws + r->pattern_len + 2 * slack);
				approx_window w = { r->index, ws, we };
				g_array_append_val(ctx->windows, w);
				break;
			}
			}
		}
	}
	for (guint i = 0; i < ctx->regex_candidates->len; i++) {
		const tr_rule *r = rules->rules[g_array_index(ctx->regex_candidates, uint32_t, i)];
		if (rule_language_ok(r, ctx->msg))
			run_regex(ctx, r, field, header, text, len);
	}
	for (unsigned i = 0; i < rules->n_unfiltered; i++) {
		const tr_rule *r = rules->rules[rules->unfiltered[i]];
		if ((r->fields & field_bit) && (allowed == NULL || allowed[r->index]) &&
		    rule_language_ok(r, ctx->msg))
			run_regex(ctx, r, field, header, text, len);
	}
	/* One TRE run per rule and stretch of text: windows of the same rule
	 * (from different pieces, interleaved with other rules) merged. */
	g_array_sort(ctx->windows, compare_windows);
	for (guint i = 0; i < ctx->windows->len;) {
		approx_window w = g_array_index(ctx->windows, approx_window, i++);
		while (i < ctx->windows->len) {
			const approx_window *next = &g_array_index(ctx->windows, approx_window, i);
			if (next->rule != w.rule || next->start > w.end)
				break;
			w.end = MAX(w.end, next->end);
			i++;
		}
		const tr_rule *r = rules->rules[w.rule];
		if (ctx->state[r->index] != STATE_FIRED && rule_language_ok(r, ctx->msg))
			run_approx(ctx, r, field, header, text, len, w.start, w.end);
	}
}

tr_rule_hit *tr_rules_match(const tr_rules *rules, const tr_msg *msg, size_t *n_hits_r)
{
	match_ctx ctx = {
		.rules = rules, .msg = msg,
		.state = tr_pool_alloc(msg->pool, rules->n + 1),
		.hits = g_array_new(FALSE, FALSE, sizeof(tr_rule_hit)),
		.regex_candidates = g_array_new(FALSE, FALSE, sizeof(uint32_t)),
		.windows = g_array_new(FALSE, FALSE, sizeof(approx_window)),
	};
	match_field(&ctx, TR_FIELD_SUBJECT, NULL, msg->subject, NULL, 0);
	/* With no new text (a bare forward), the quoted text is what there is. */
	const char *new_text = *msg->text_new != '\0' ? msg->text_new : msg->text_quoted;
	match_field(&ctx, TR_FIELD_NEW, NULL, new_text, NULL, 0);
	if (*msg->text_new != '\0')
		match_field(&ctx, TR_FIELD_QUOTED, NULL, msg->text_quoted, NULL, 0);
	match_field(&ctx, TR_FIELD_SIGNATURE, NULL, msg->text_signature, NULL, 0);
	match_field(&ctx, TR_FIELD_SENDER, NULL, msg->from.address, NULL, 0);
	match_field(&ctx, TR_FIELD_SENDER_DOMAIN, NULL, tr_msg_from_domain(msg), NULL, 0);
	for (unsigned i = 0; i < rules->n_header_rules; i++) {
		const tr_rule *r = rules->rules[rules->header_rules[i]];
		for (size_t h = 0; h < msg->headers_count; h++) {
			if (g_ascii_strcasecmp(msg->headers[h].name, r->header) == 0)
				match_field(&ctx, TR_FIELD_HEADER, r->header, msg->headers[h].value,
				            &rules->header_rules[i], 1);
		}
	}
	g_array_free(ctx.regex_candidates, TRUE);
	g_array_free(ctx.windows, TRUE);
	*n_hits_r = ctx.hits->len;
	tr_rule_hit *hits = tr_pool_memdup(msg->pool, ctx.hits->data, ctx.hits->len * sizeof(tr_rule_hit));
	g_array_free(ctx.hits, TRUE);
	return hits;
}
