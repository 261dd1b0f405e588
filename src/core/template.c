/* template.c — a small, safe template language, see template.h */
#include "core/template.h"
#include "core/pool.h"

#include <errno.h>
#include <gmime/gmime.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

/* ------------------------------------------------------------------ */
/* Limits                                                               */

#define MAX_SOURCE       65536u     /* bytes of source, a file as a whole */
#define MAX_DEPTH        16         /* nested if/for blocks */
#define MAX_EXPR_NODES   64         /* parts of one expression */
#define MAX_EXPR_NESTING 32         /* nested parentheses / not */
#define MAX_FILTERS      16         /* filters on one value */
#define MAX_PATH         16         /* segments of one dotted path */
#define MAX_NAME         64         /* bytes of one name */
#define MAX_OUTPUT       65536u     /* default for max_bytes == 0 */
#define MAX_WORK         4000000u   /* render work units */
#define MAX_HEADERS      16         /* header lines of a template file */
#define MAX_TRUNCATE     100000
#define MAX_INDENT       64
#define MAX_FIRST_LINES  10000
#define MAX_CHECK_ERRORS 20

static const tr_tmpl_limit limit_table[] = {
	{ "template_max_source", MAX_SOURCE, 1024, 1048576,
	  "bytes of template source (a template file as a whole)" },
	{ "template_max_depth", MAX_DEPTH, 1, 64,
	  "if/for blocks nested in one another" },
	{ "template_max_expr_nodes", MAX_EXPR_NODES, 8, 1024,
	  "parts (values, operators, filters) of one expression" },
	{ "template_max_expr_nesting", MAX_EXPR_NESTING, 4, 256,
	  "parentheses and 'not' nested in one expression" },
	{ "template_max_filters", MAX_FILTERS, 1, 64,
	  "filters chained on one value" },
	{ "template_max_path", MAX_PATH, 1, 64,
	  "segments of one dotted variable path" },
	{ "template_max_output", MAX_OUTPUT, 64, 16777216,
	  "bytes of rendered output when the caller passes max_bytes = 0" },
	{ "template_max_work", MAX_WORK, 1000, 1000000000,
	  "render work units: one per node and loop turn, one per byte a filter reads" },
	{ "template_max_headers", MAX_HEADERS, 1, 64,
	  "header lines in a template file" },
	{ NULL, 0, 0, 0, NULL },
};

const tr_tmpl_limit *tr_tmpl_limits(void)
{
	return limit_table;
}

G_DEFINE_QUARK(tr-tmpl-error-quark, tr_tmpl_error)

/* ------------------------------------------------------------------ */
/* The compiled form                                                    */

enum root_kind { ROOT_CONTEXT, ROOT_LOOPVAR, ROOT_LOOPMETA };
enum loop_meta { META_INDEX, META_INDEX0, META_FIRST, META_LAST, META_LENGTH };

struct segment {
	const char *name; /* NULL for an index */
	gint64 index;
};

struct path {
	enum root_kind root;
	int scope;            /* loop depth for ROOT_LOOPVAR / ROOT_LOOPMETA */
	enum loop_meta meta;
	int n_segments;
	struct segment *segments;
	const char *canonical; /* "articles[].title", for tr_tmpl_check() */
};

enum filter_id {
	F_UPPER, F_LOWER, F_DEFAULT, F_TRUNCATE, F_QUOTE, F_INDENT, F_JOIN,
	F_FIRST_LINES, F_DURATION, F_DATE,
};

struct filter_def {
	const char *name;
	enum filter_id id;
	int min_args;
	int max_args;
};

static const struct filter_def filter_table[] = {
	{ "upper", F_UPPER, 0, 0 },
	{ "lower", F_LOWER, 0, 0 },
	{ "default", F_DEFAULT, 1, 1 },
	{ "truncate", F_TRUNCATE, 1, 1 },
	{ "quote", F_QUOTE, 0, 0 },
	{ "indent", F_INDENT, 1, 1 },
	{ "join", F_JOIN, 0, 1 },
	{ "first_lines", F_FIRST_LINES, 1, 1 },
	{ "duration", F_DURATION, 0, 0 },
	{ "date", F_DATE, 0, 2 },
};

enum expr_kind {
	E_STRING, E_INT, E_BOOL, E_PATH, E_NOT, E_AND, E_OR, E_EQ, E_NE, E_FILTER,
};

struct expr {
	enum expr_kind kind;
	size_t off;
	union {
		struct {
			const char *s;
			size_t len;
		} str;
		gint64 num;
		gboolean boolean;
		struct path *path;
		struct {
			struct expr *a, *b;
		} bin;
		struct {
			const struct filter_def *def;
			struct expr *operand;
			struct expr *args[2];
			int n_args;
			gint64 n;          /* truncate, indent, first_lines */
			const char *text;  /* join separator, date format */
			GTimeZone *zone;   /* date: a literal zone, owned by the template */
		} filter;
	} u;
};

enum node_kind { N_TEXT, N_OUTPUT, N_IF, N_FOR };

struct branch {
	struct expr *cond;
	struct node *body;
	struct branch *next;
};

struct node {
	enum node_kind kind;
	size_t off;
	struct node *next;
	union {
		struct {
			const char *s;
			size_t len;
		} text;
		struct expr *output;
		struct {
			struct branch *branches;
			struct node *else_body;
		} cond;
		struct {
			struct path *seq;
			int depth;
			struct node *body;
			struct node *else_body;
		} loop;
	} u;
};

struct ref {
	size_t off;
	const char *path;
};

struct tr_tmpl {
	tr_pool *pool;
	const char *name;
	const char *src;
	size_t len;
	int base_line;
	int base_col;
	gboolean header_only;
	struct node *root;
	GArray *refs;     /* struct ref */
	GPtrArray *zones; /* GTimeZone, for date:"…","Zone/Name" */
};

/* ------------------------------------------------------------------ */
/* Positions and errors                                                 */

static void locate(const tr_tmpl *t, size_t off, int *line_r, int *col_r)
{
	int line = 0;
	size_t line_start = 0;
	if (off > t->len)
		off = t->len;
	for (size_t i = 0; i < off; i++) {
		if (t->src[i] == '\n') {
			line++;
			line_start = i + 1;
		}
	}
	int chars = 0;
	for (size_t i = line_start; i < off; i++)
		if (((unsigned char)t->src[i] & 0xC0) != 0x80)
			chars++;
	*line_r = t->base_line + line;
	*col_r = (line == 0 ? t->base_col : 1) + chars;
}

static void tmpl_error(const tr_tmpl *t, GError **error, int code, size_t off,
                       const char *fmt, ...) G_GNUC_PRINTF(5, 6);
static void tmpl_error(const tr_tmpl *t, GError **error, int code, size_t off,
                       const char *fmt, ...)
{
	int line, col;
	va_list ap;
	locate(t, off, &line, &col);
	va_start(ap, fmt);
	char *msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	g_set_error(error, TR_TMPL_ERROR, code, "%s:%d:%d: %s", t->name, line, col, msg);
	g_free(msg);
}

/* ------------------------------------------------------------------ */
/* Lexer and parser                                                     */

enum tok_kind {
	TK_END, TK_CLOSE, TK_IDENT, TK_STRING, TK_INT, TK_DOT, TK_PIPE, TK_COLON,
	TK_COMMA, TK_LPAREN, TK_RPAREN, TK_EQ, TK_NE,
};

struct token {
	enum tok_kind kind;
	size_t off;
	size_t len;
	const char *str; /* TK_STRING: unescaped, NUL-terminated, in the pool */
	size_t str_len;
	gint64 num;
	gboolean trim;   /* TK_CLOSE: "-%}" */
};

enum elem_kind { EL_EOF, EL_TEXT, EL_OUTPUT, EL_IF, EL_ELIF, EL_ELSE, EL_ENDIF, EL_FOR, EL_ENDFOR };
#define BIT(k) (1u << (k))

struct elem {
	enum elem_kind kind;
	size_t off;
	const char *text;
	size_t len;
	struct expr *expr;
	const char *var;
	struct path *seq;
};

typedef struct {
	tr_tmpl *t;
	GError **error;
	gboolean failed;
	size_t pos;
	const char *closer; /* "}}" or "%}" while inside a tag */
	size_t tag_off;
	struct token tok;
	gboolean trim_next;
	int expr_nodes;
	int expr_nesting;
	int n_scopes;
	struct {
		const char *var;
		const char *canonical;
	} scopes[MAX_DEPTH];
	int n_open;
	struct {
		const char *what;
		size_t off;
	} open[MAX_DEPTH];
} parser;

static void fail(parser *p, int code, size_t off, const char *fmt, ...) G_GNUC_PRINTF(4, 5);
static void fail(parser *p, int code, size_t off, const char *fmt, ...)
{
	if (p->failed)
		return;
	p->failed = TRUE;
	va_list ap;
	va_start(ap, fmt);
	char *msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	tmpl_error(p->t, p->error, code, off, "%s", msg);
	g_free(msg);
}

static gboolean is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static gboolean is_ident_start(char c)
{
	return g_ascii_isalpha(c) || c == '_';
}

static gboolean is_ident_char(char c)
{
	return g_ascii_isalnum(c) || c == '_';
}

static gboolean tok_is(const parser *p, const char *word)
{
	size_t n = strlen(word);
	return p->tok.kind == TK_IDENT && p->tok.len == n &&
	       memcmp(p->t->src + p->tok.off, word, n) == 0;
}

static gboolean is_keyword(const char *s, size_t n)
{
	static const char *const words[] = { "and", "or", "not", "in", "true", "false", NULL };
	for (int i = 0; words[i] != NULL; i++)
		if (strlen(words[i]) == n && memcmp(words[i], s, n) == 0)
			return TRUE;
	return FALSE;
}

/* A short description of the current token for messages, in the pool. */
static const char *tok_desc(parser *p)
{
	const struct token *tk = &p->tok;
	switch (tk->kind) {
	case TK_END:
		return "the end of the template";
	case TK_STRING:
		return "a string";
	case TK_INT:
		return "a number";
	default:
		break;
	}
	size_t n = tk->len > 32 ? 32 : tk->len;
	return tr_pool_printf(p->t->pool, "'%.*s'", (int)n, p->t->src + tk->off);
}

static gboolean starts_with(const char *s, size_t len, const char *prefix)
{
	size_t n = strlen(prefix);
	return len >= n && memcmp(s, prefix, n) == 0;
}

static gboolean lex_string(parser *p, size_t i)
{
	const char *s = p->t->src;
	size_t len = p->t->len;
	char quote = s[i];
	size_t j, out_len = 0;
	for (j = i + 1; j < len && s[j] != quote; j++) {
		if (s[j] == '\n')
			break;
		if (s[j] == '\\') {
			if (j + 1 >= len || strchr("nt\\\"'", s[j + 1]) == NULL || s[j + 1] == '\0') {
				fail(p, TR_TMPL_ERROR_SYNTAX, j, "unknown escape in string (use \\n \\t \\\\ \\\" \\')");
				return FALSE;
			}
			j++;
		}
		out_len++;
	}
	if (j >= len || s[j] != quote) {
		fail(p, TR_TMPL_ERROR_SYNTAX, i, "unterminated string");
		return FALSE;
	}
	char *out = tr_pool_alloc(p->t->pool, out_len + 1);
	size_t o = 0;
	for (size_t k = i + 1; k < j; k++) {
		char c = s[k];
		if (c == '\\') {
			k++;
			c = s[k] == 'n' ? '\n' : s[k] == 't' ? '\t' : s[k];
		}
		out[o++] = c;
	}
	p->tok.kind = TK_STRING;
	p->tok.str = out;
	p->tok.str_len = o;
	p->tok.len = j + 1 - i;
	p->pos = j + 1;
	return TRUE;
}

/* Read the next token inside a tag into p->tok. */
static gboolean lex(parser *p)
{
	const char *s = p->t->src;
	size_t len = p->t->len;
	size_t i = p->pos;
	while (i < len && is_space(s[i]))
		i++;
	struct token *tk = &p->tok;
	memset(tk, 0, sizeof(*tk));
	tk->off = i;
	if (i >= len) {
		tk->kind = TK_END;
		p->pos = i;
		return TRUE;
	}
	char c = s[i];
	if (c == '-' && starts_with(s + i + 1, len - i - 1, p->closer)) {
		tk->kind = TK_CLOSE;
		tk->trim = TRUE;
		tk->len = 3;
		p->pos = i + 3;
		return TRUE;
	}
	if (starts_with(s + i, len - i, p->closer)) {
		tk->kind = TK_CLOSE;
		tk->len = 2;
		p->pos = i + 2;
		return TRUE;
	}
	if (is_ident_start(c)) {
		size_t j = i + 1;
		while (j < len && is_ident_char(s[j]))
			j++;
		if (j - i > MAX_NAME) {
			fail(p, TR_TMPL_ERROR_LIMIT, i, "name longer than %d bytes", MAX_NAME);
			return FALSE;
		}
		tk->kind = TK_IDENT;
		tk->len = j - i;
		p->pos = j;
		return TRUE;
	}
	if (g_ascii_isdigit(c) || (c == '-' && i + 1 < len && g_ascii_isdigit(s[i + 1]))) {
		size_t j = i + (c == '-');
		gint64 v = 0;
		while (j < len && g_ascii_isdigit(s[j])) {
			if (v > (G_MAXINT64 - 9) / 10) {
				fail(p, TR_TMPL_ERROR_SYNTAX, i, "number too large");
				return FALSE;
			}
			v = v * 10 + (s[j] - '0');
			j++;
		}
		if (j < len && is_ident_char(s[j])) {
			fail(p, TR_TMPL_ERROR_SYNTAX, i, "a number cannot run into a name");
			return FALSE;
		}
		tk->kind = TK_INT;
		tk->num = c == '-' ? -v : v;
		tk->len = j - i;
		p->pos = j;
		return TRUE;
	}
	if (c == '"' || c == '\'')
		return lex_string(p, i);
	tk->len = 1;
	switch (c) {
	case '.': tk->kind = TK_DOT; break;
	case '|': tk->kind = TK_PIPE; break;
	case ':': tk->kind = TK_COLON; break;
	case ',': tk->kind = TK_COMMA; break;
	case '(': tk->kind = TK_LPAREN; break;
	case ')': tk->kind = TK_RPAREN; break;
	case '=':
	case '!':
		if (i + 1 < len && s[i + 1] == '=') {
			tk->kind = c == '=' ? TK_EQ : TK_NE;
			tk->len = 2;
			break;
		}
		/* fall through */
	default:
		if (c > 0x20 && c < 0x7f)
			fail(p, TR_TMPL_ERROR_SYNTAX, i, "unexpected character '%c'", c);
		else
			fail(p, TR_TMPL_ERROR_SYNTAX, i, "unexpected character U+%04X",
			     (unsigned)g_utf8_get_char_validated(s + i, (gssize)(len - i)));
		return FALSE;
	}
	p->pos = i + tk->len;
	return TRUE;
}

static struct expr *new_expr(parser *p, enum expr_kind kind, size_t off)
{
	if (++p->expr_nodes > MAX_EXPR_NODES) {
		fail(p, TR_TMPL_ERROR_LIMIT, off, "expression has more than %d parts", MAX_EXPR_NODES);
		return NULL;
	}
	struct expr *e = tr_pool_alloc(p->t->pool, sizeof(*e));
	e->kind = kind;
	e->off = off;
	return e;
}

/* Resolve a path against the loop scopes and record it for checking. */
static struct path *parse_path(parser *p)
{
	size_t off = p->tok.off;
	struct segment segs[MAX_PATH];
	int n = 0;
	segs[n].name = tr_pool_strndup(p->t->pool, p->t->src + p->tok.off, p->tok.len);
	segs[n++].index = -1;
	if (!lex(p))
		return NULL;
	while (p->tok.kind == TK_DOT) {
		if (!lex(p))
			return NULL;
		if (n >= MAX_PATH) {
			fail(p, TR_TMPL_ERROR_LIMIT, off, "path has more than %d parts", MAX_PATH);
			return NULL;
		}
		if (p->tok.kind == TK_IDENT) {
			segs[n].name = tr_pool_strndup(p->t->pool, p->t->src + p->tok.off, p->tok.len);
			segs[n++].index = -1;
		} else if (p->tok.kind == TK_INT && p->tok.num >= 0) {
			segs[n].name = NULL;
			segs[n++].index = p->tok.num;
		} else {
			fail(p, TR_TMPL_ERROR_SYNTAX, p->tok.off, "expected a name or an index after '.', found %s",
			     tok_desc(p));
			return NULL;
		}
		if (!lex(p))
			return NULL;
	}

	struct path *pa = tr_pool_alloc(p->t->pool, sizeof(*pa));
	int first = 1;
	GString *canon = g_string_new(NULL);
	if (strcmp(segs[0].name, "loop") == 0) {
		static const char *const metas[] = { "index", "index0", "first", "last", "length" };
		if (p->n_scopes == 0) {
			fail(p, TR_TMPL_ERROR_SYNTAX, off, "'loop' is only defined inside a for loop");
			g_string_free(canon, TRUE);
			return NULL;
		}
		int m = -1;
		if (n == 2 && segs[1].name != NULL)
			for (int i = 0; i < 5; i++)
				if (strcmp(segs[1].name, metas[i]) == 0)
					m = i;
		if (m < 0) {
			fail(p, TR_TMPL_ERROR_SYNTAX, off,
			     "use loop.index, loop.index0, loop.first, loop.last or loop.length");
			g_string_free(canon, TRUE);
			return NULL;
		}
		pa->root = ROOT_LOOPMETA;
		pa->scope = p->n_scopes - 1;
		pa->meta = (enum loop_meta)m;
		g_string_free(canon, TRUE);
		return pa;
	}
	pa->root = ROOT_CONTEXT;
	for (int s = p->n_scopes - 1; s >= 0; s--) {
		if (strcmp(p->scopes[s].var, segs[0].name) == 0) {
			pa->root = ROOT_LOOPVAR;
			pa->scope = s;
			g_string_append(canon, p->scopes[s].canonical);
			g_string_append(canon, "[]");
			break;
		}
	}
	if (pa->root == ROOT_CONTEXT) {
		g_string_append(canon, segs[0].name);
	}
	for (int i = first; i < n; i++) {
		if (segs[i].name != NULL) {
			g_string_append_c(canon, '.');
			g_string_append(canon, segs[i].name);
		} else {
			g_string_append(canon, "[]");
		}
	}
	/* the loop variable itself is the first segment: walk from the item */
	pa->n_segments = pa->root == ROOT_CONTEXT ? n : n - 1;
	pa->segments = tr_pool_memdup(p->t->pool, pa->root == ROOT_CONTEXT ? segs : segs + 1,
	                              sizeof(segs[0]) * (size_t)(pa->n_segments > 0 ? pa->n_segments : 1));
	pa->canonical = tr_pool_strndup(p->t->pool, canon->str, canon->len);
	g_string_free(canon, TRUE);
	struct ref r = { off, pa->canonical };
	g_array_append_val(p->t->refs, r);
	return pa;
}

static struct expr *parse_or(parser *p);

static struct expr *parse_value_path(parser *p)
{
	size_t off = p->tok.off;
	if (is_keyword(p->t->src + p->tok.off, p->tok.len)) {
		fail(p, TR_TMPL_ERROR_SYNTAX, off, "expected a value, found %s", tok_desc(p));
		return NULL;
	}
	struct expr *e = new_expr(p, E_PATH, off);
	if (e == NULL)
		return NULL;
	e->u.path = parse_path(p);
	return e->u.path != NULL ? e : NULL;
}

static struct expr *parse_primary(parser *p)
{
	struct expr *e;
	size_t off = p->tok.off;
	switch (p->tok.kind) {
	case TK_STRING:
		if ((e = new_expr(p, E_STRING, off)) == NULL)
			return NULL;
		e->u.str.s = p->tok.str;
		e->u.str.len = p->tok.str_len;
		return lex(p) ? e : NULL;
	case TK_INT:
		if ((e = new_expr(p, E_INT, off)) == NULL)
			return NULL;
		e->u.num = p->tok.num;
		return lex(p) ? e : NULL;
	case TK_LPAREN:
		if (++p->expr_nesting > MAX_EXPR_NESTING) {
			fail(p, TR_TMPL_ERROR_LIMIT, off, "expression nested deeper than %d", MAX_EXPR_NESTING);
			return NULL;
		}
		if (!lex(p) || (e = parse_or(p)) == NULL)
			return NULL;
		if (p->tok.kind != TK_RPAREN) {
			fail(p, TR_TMPL_ERROR_SYNTAX, p->tok.off, "expected ')', found %s", tok_desc(p));
			return NULL;
		}
		p->expr_nesting--;
		return lex(p) ? e : NULL;
	case TK_IDENT:
		if (tok_is(p, "true") || tok_is(p, "false")) {
			if ((e = new_expr(p, E_BOOL, off)) == NULL)
				return NULL;
			e->u.boolean = tok_is(p, "true");
			return lex(p) ? e : NULL;
		}
		return parse_value_path(p);
	default:
		fail(p, TR_TMPL_ERROR_SYNTAX, off, "expected a value, found %s", tok_desc(p));
		return NULL;
	}
}

static gboolean date_format_ok(parser *p, const struct expr *arg)
{
	const char *f = arg->u.str.s;
	for (size_t i = 0; i < arg->u.str.len; i++) {
		if (f[i] != '%')
			continue;
		if (i + 1 >= arg->u.str.len || strchr("aAbBdemYyHMSZz%", f[i + 1]) == NULL || f[i + 1] == '\0') {
			fail(p, TR_TMPL_ERROR_SYNTAX, arg->off,
			     "date format: unknown conversion (use %%a %%A %%b %%B %%d %%e %%m %%Y %%y %%H %%M %%S %%Z %%z %%%%)");
			return FALSE;
		}
		i++;
	}
	return TRUE;
}

/* Only IANA-style names: no absolute paths, no "..", nothing GLib would
 * read as a file outside the zoneinfo directory. */
static gboolean zone_name_ok(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > 64 || !g_ascii_isalpha(name[0]))
		return FALSE;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!(g_ascii_isalnum(c) || c == '_' || c == '+' || c == '-' || c == '/'))
			return FALSE;
	}
	return TRUE;
}

/*
 * Loading a zone reads and parses its zoneinfo file (~170 µs); GLib keeps
 * a zone only while someone holds a reference.  So valid zones are kept
 * here for the life of the process, at most MAX_ZONES of them (there are
 * about 600 names; hostile names never get this far).
 */
#define MAX_ZONES 128
static GMutex zone_lock;
static GHashTable *zone_cache; /* name → GTimeZone */

static GTimeZone *zone_lookup(const char *name)
{
	if (name == NULL || !zone_name_ok(name))
		return NULL;
	g_mutex_lock(&zone_lock);
	if (zone_cache == NULL)
		zone_cache = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
		                                   (GDestroyNotify)g_time_zone_unref);
	GTimeZone *zone = g_hash_table_lookup(zone_cache, name);
	if (zone != NULL)
		zone = g_time_zone_ref(zone);
	g_mutex_unlock(&zone_lock);
	if (zone != NULL)
		return zone;
	zone = g_time_zone_new_identifier(name);
	if (zone == NULL)
		return NULL;
	g_mutex_lock(&zone_lock);
	if (g_hash_table_size(zone_cache) < MAX_ZONES && !g_hash_table_contains(zone_cache, name))
		g_hash_table_insert(zone_cache, g_strdup(name), g_time_zone_ref(zone));
	g_mutex_unlock(&zone_lock);
	return zone;
}

static gboolean check_filter_args(parser *p, struct expr *f, size_t name_off)
{
	const struct filter_def *def = f->u.filter.def;
	int n = f->u.filter.n_args;
	if (n < def->min_args || n > def->max_args) {
		if (def->max_args == 0)
			fail(p, TR_TMPL_ERROR_SYNTAX, name_off, "filter '%s' takes no argument", def->name);
		else if (def->min_args == def->max_args)
			fail(p, TR_TMPL_ERROR_SYNTAX, name_off, "filter '%s' takes %d argument%s", def->name,
			     def->min_args, def->min_args == 1 ? "" : "s");
		else
			fail(p, TR_TMPL_ERROR_SYNTAX, name_off, "filter '%s' takes at most %d arguments",
			     def->name, def->max_args);
		return FALSE;
	}
	struct expr *a0 = n > 0 ? f->u.filter.args[0] : NULL;
	struct expr *a1 = n > 1 ? f->u.filter.args[1] : NULL;
	gint64 lo = 0, hi = 0;
	switch (def->id) {
	case F_TRUNCATE: lo = 1; hi = MAX_TRUNCATE; break;
	case F_INDENT: lo = 0; hi = MAX_INDENT; break;
	case F_FIRST_LINES: lo = 1; hi = MAX_FIRST_LINES; break;
	case F_JOIN:
		if (a0 != NULL && a0->kind != E_STRING) {
			fail(p, TR_TMPL_ERROR_SYNTAX, a0->off, "filter 'join' needs a string separator");
			return FALSE;
		}
		f->u.filter.text = a0 != NULL ? a0->u.str.s : ", ";
		return TRUE;
	case F_DEFAULT:
		if (a0->kind != E_STRING && a0->kind != E_INT && a0->kind != E_PATH && a0->kind != E_BOOL) {
			fail(p, TR_TMPL_ERROR_SYNTAX, a0->off, "filter 'default' needs a string, a number or a variable");
			return FALSE;
		}
		return TRUE;
	case F_DATE:
		f->u.filter.text = "%A %H:%M %Z";
		if (a0 != NULL) {
			if (a0->kind != E_STRING) {
				fail(p, TR_TMPL_ERROR_SYNTAX, a0->off, "filter 'date' needs a format string");
				return FALSE;
			}
			if (!date_format_ok(p, a0))
				return FALSE;
			f->u.filter.text = a0->u.str.s;
		}
		if (a1 != NULL) {
			if (a1->kind == E_STRING) {
				GTimeZone *zone = zone_lookup(a1->u.str.s);
				if (zone == NULL) {
					fail(p, TR_TMPL_ERROR_SYNTAX, a1->off, "unknown time zone \"%s\"", a1->u.str.s);
					return FALSE;
				}
				g_ptr_array_add(p->t->zones, zone);
				f->u.filter.zone = zone;
			} else if (a1->kind != E_PATH) {
				fail(p, TR_TMPL_ERROR_SYNTAX, a1->off, "filter 'date' needs a time zone name or variable");
				return FALSE;
			}
		}
		return TRUE;
	default:
		return TRUE;
	}
	if (a0->kind != E_INT || a0->u.num < lo || a0->u.num > hi) {
		fail(p, TR_TMPL_ERROR_SYNTAX, a0->off, "filter '%s' needs a whole number from %" G_GINT64_FORMAT
		     " to %" G_GINT64_FORMAT, def->name, lo, hi);
		return FALSE;
	}
	f->u.filter.n = a0->u.num;
	return TRUE;
}

static struct expr *parse_filter_arg(parser *p)
{
	switch (p->tok.kind) {
	case TK_STRING:
	case TK_INT:
	case TK_IDENT:
		return parse_primary(p);
	default:
		fail(p, TR_TMPL_ERROR_SYNTAX, p->tok.off, "expected a filter argument, found %s", tok_desc(p));
		return NULL;
	}
}

static struct expr *parse_filtered(parser *p)
{
	struct expr *e = parse_primary(p);
	int n_filters = 0;
	while (e != NULL && p->tok.kind == TK_PIPE) {
		if (!lex(p))
			return NULL;
		if (p->tok.kind != TK_IDENT) {
			fail(p, TR_TMPL_ERROR_SYNTAX, p->tok.off, "expected a filter name after '|', found %s",
			     tok_desc(p));
			return NULL;
		}
		size_t name_off = p->tok.off;
		const struct filter_def *def = NULL;
		for (size_t i = 0; i < G_N_ELEMENTS(filter_table); i++)
			if (strlen(filter_table[i].name) == p->tok.len &&
			    memcmp(filter_table[i].name, p->t->src + p->tok.off, p->tok.len) == 0)
				def = &filter_table[i];
		if (def == NULL) {
			fail(p, TR_TMPL_ERROR_UNKNOWN_FILTER, name_off, "unknown filter %s", tok_desc(p));
			return NULL;
		}
		if (++n_filters > MAX_FILTERS) {
			fail(p, TR_TMPL_ERROR_LIMIT, name_off, "more than %d filters on one value", MAX_FILTERS);
			return NULL;
		}
		struct expr *f = new_expr(p, E_FILTER, name_off);
		if (f == NULL || !lex(p))
			return NULL;
		f->u.filter.def = def;
		f->u.filter.operand = e;
		if (p->tok.kind == TK_COLON) {
			do {
				if (!lex(p))
					return NULL;
				if (f->u.filter.n_args >= 2) {
					fail(p, TR_TMPL_ERROR_SYNTAX, p->tok.off, "too many arguments for filter '%s'",
					     def->name);
					return NULL;
				}
				struct expr *arg = parse_filter_arg(p);
				if (arg == NULL)
					return NULL;
				f->u.filter.args[f->u.filter.n_args++] = arg;
			} while (p->tok.kind == TK_COMMA);
		}
		if (!check_filter_args(p, f, name_off))
			return NULL;
		e = f;
	}
	return e;
}

static struct expr *parse_compare(parser *p)
{
	struct expr *a = parse_filtered(p);
	if (a == NULL || (p->tok.kind != TK_EQ && p->tok.kind != TK_NE))
		return a;
	struct expr *e = new_expr(p, p->tok.kind == TK_EQ ? E_EQ : E_NE, p->tok.off);
	if (e == NULL || !lex(p))
		return NULL;
	e->u.bin.a = a;
	if ((e->u.bin.b = parse_filtered(p)) == NULL)
		return NULL;
	if (p->tok.kind == TK_EQ || p->tok.kind == TK_NE) {
		fail(p, TR_TMPL_ERROR_SYNTAX, p->tok.off, "comparisons cannot be chained; use 'and'");
		return NULL;
	}
	return e;
}

static struct expr *parse_not(parser *p)
{
	if (!tok_is(p, "not"))
		return parse_compare(p);
	struct expr *e = new_expr(p, E_NOT, p->tok.off);
	if (e == NULL)
		return NULL;
	if (++p->expr_nesting > MAX_EXPR_NESTING) {
		fail(p, TR_TMPL_ERROR_LIMIT, e->off, "expression nested deeper than %d", MAX_EXPR_NESTING);
		return NULL;
	}
	if (!lex(p) || (e->u.bin.a = parse_not(p)) == NULL)
		return NULL;
	p->expr_nesting--;
	return e;
}

static struct expr *parse_and(parser *p)
{
	struct expr *a = parse_not(p);
	while (a != NULL && tok_is(p, "and")) {
		struct expr *e = new_expr(p, E_AND, p->tok.off);
		if (e == NULL || !lex(p))
			return NULL;
		e->u.bin.a = a;
		if ((e->u.bin.b = parse_not(p)) == NULL)
			return NULL;
		a = e;
	}
	return a;
}

static struct expr *parse_or(parser *p)
{
	struct expr *a = parse_and(p);
	while (a != NULL && tok_is(p, "or")) {
		struct expr *e = new_expr(p, E_OR, p->tok.off);
		if (e == NULL || !lex(p))
			return NULL;
		e->u.bin.a = a;
		if ((e->u.bin.b = parse_and(p)) == NULL)
			return NULL;
		a = e;
	}
	return a;
}

static struct expr *parse_expression(parser *p)
{
	p->expr_nodes = 0;
	p->expr_nesting = 0;
	return parse_or(p);
}

static const char *opener_name(const parser *p)
{
	return strcmp(p->closer, "}}") == 0 ? "{{" : "{%";
}

static gboolean expect_close(parser *p)
{
	if (p->tok.kind == TK_CLOSE) {
		p->trim_next = p->tok.trim;
		p->closer = NULL;
		return TRUE;
	}
	if (p->tok.kind == TK_END)
		fail(p, TR_TMPL_ERROR_SYNTAX, p->tag_off, "'%s' is not closed", opener_name(p));
	else
		fail(p, TR_TMPL_ERROR_SYNTAX, p->tok.off, "expected '%s', found %s", p->closer, tok_desc(p));
	return FALSE;
}

static gboolean parse_tag(parser *p, struct elem *el)
{
	static const struct {
		const char *word;
		enum elem_kind kind;
	} tags[] = {
		{ "if", EL_IF }, { "elif", EL_ELIF }, { "else", EL_ELSE }, { "endif", EL_ENDIF },
		{ "for", EL_FOR }, { "endfor", EL_ENDFOR },
	};
	if (p->tok.kind == TK_CLOSE || p->tok.kind == TK_END) {
		if (p->tok.kind == TK_END)
			fail(p, TR_TMPL_ERROR_SYNTAX, p->tag_off, "'{%%' is not closed");
		else
			fail(p, TR_TMPL_ERROR_SYNTAX, p->tok.off, "expected a tag name (if, elif, else, endif, for, endfor)");
		return FALSE;
	}
	int found = -1;
	for (size_t i = 0; i < G_N_ELEMENTS(tags); i++)
		if (tok_is(p, tags[i].word))
			found = (int)i;
	if (found < 0) {
		fail(p, TR_TMPL_ERROR_SYNTAX, p->tok.off, "unknown tag %s (use if, elif, else, endif, for, endfor)",
		     tok_desc(p));
		return FALSE;
	}
	el->kind = tags[found].kind;
	if (!lex(p))
		return FALSE;
	switch (el->kind) {
	case EL_IF:
	case EL_ELIF:
		if ((el->expr = parse_expression(p)) == NULL)
			return FALSE;
		break;
	case EL_FOR:
		if (p->tok.kind != TK_IDENT || is_keyword(p->t->src + p->tok.off, p->tok.len) || tok_is(p, "loop")) {
			fail(p, TR_TMPL_ERROR_SYNTAX, p->tok.off, "expected a loop variable name, found %s", tok_desc(p));
			return FALSE;
		}
		el->var = tr_pool_strndup(p->t->pool, p->t->src + p->tok.off, p->tok.len);
		if (!lex(p))
			return FALSE;
		if (!tok_is(p, "in")) {
			fail(p, TR_TMPL_ERROR_SYNTAX, p->tok.off, "expected 'in', found %s", tok_desc(p));
			return FALSE;
		}
		if (!lex(p))
			return FALSE;
		if (p->tok.kind != TK_IDENT || is_keyword(p->t->src + p->tok.off, p->tok.len)) {
			fail(p, TR_TMPL_ERROR_SYNTAX, p->tok.off, "expected a list variable, found %s", tok_desc(p));
			return FALSE;
		}
		size_t seq_off = p->tok.off;
		if ((el->seq = parse_path(p)) == NULL)
			return FALSE;
		if (el->seq->root == ROOT_LOOPMETA) {
			fail(p, TR_TMPL_ERROR_SYNTAX, seq_off, "cannot loop over loop.*");
			return FALSE;
		}
		break;
	default:
		break;
	}
	return expect_close(p);
}

static size_t find_opener(const char *s, size_t len, size_t from)
{
	size_t i = from;
	while (i + 1 < len) {
		const char *hit = memchr(s + i, '{', len - 1 - i);
		if (hit == NULL)
			return len;
		i = (size_t)(hit - s);
		char n = s[i + 1];
		if (n == '{' || n == '%' || n == '#')
			return i;
		i++;
	}
	return len;
}

/* The next text run, output tag or block tag; comments are skipped. */
static gboolean next_element(parser *p, struct elem *el)
{
	const char *s = p->t->src;
	size_t len = p->t->len;
	memset(el, 0, sizeof(*el));
	for (;;) {
		size_t open = find_opener(s, len, p->pos);
		size_t tb = p->pos, te = open;
		if (p->trim_next)
			while (tb < te && is_space(s[tb]))
				tb++;
		p->trim_next = FALSE;
		if (open + 2 < len && s[open + 2] == '-')
			while (te > tb && is_space(s[te - 1]))
				te--;
		p->pos = open;
		if (te > tb) {
			el->kind = EL_TEXT;
			el->off = tb;
			el->text = s + tb;
			el->len = te - tb;
			return TRUE;
		}
		if (open >= len) {
			el->kind = EL_EOF;
			el->off = len;
			return TRUE;
		}
		char kind = s[open + 1];
		size_t body = open + 2;
		if (body < len && s[body] == '-')
			body++;
		p->tag_off = open;
		el->off = open;
		if (kind == '#') {
			const char *end = body < len ? g_strstr_len(s + body, (gssize)(len - body), "#}") : NULL;
			if (end == NULL) {
				fail(p, TR_TMPL_ERROR_SYNTAX, open, "'{#' is not closed");
				return FALSE;
			}
			size_t e = (size_t)(end - s);
			if (e > body && s[e - 1] == '-')
				p->trim_next = TRUE;
			p->pos = e + 2;
			continue;
		}
		p->pos = body;
		p->closer = kind == '{' ? "}}" : "%}";
		if (!lex(p))
			return FALSE;
		if (kind == '%')
			return parse_tag(p, el);
		el->kind = EL_OUTPUT;
		if (p->tok.kind == TK_CLOSE) {
			fail(p, TR_TMPL_ERROR_SYNTAX, open, "empty '{{ }}'");
			return FALSE;
		}
		if ((el->expr = parse_expression(p)) == NULL)
			return FALSE;
		return expect_close(p);
	}
}

static const char *elem_word(enum elem_kind k)
{
	switch (k) {
	case EL_IF: return "if";
	case EL_ELIF: return "elif";
	case EL_ELSE: return "else";
	case EL_ENDIF: return "endif";
	case EL_FOR: return "for";
	case EL_ENDFOR: return "endfor";
	default: return "?";
	}
}

static struct node *new_node(parser *p, enum node_kind kind, size_t off)
{
	struct node *n = tr_pool_alloc(p->t->pool, sizeof(*n));
	n->kind = kind;
	n->off = off;
	return n;
}

static gboolean push_block(parser *p, const char *what, size_t off)
{
	if (p->n_open >= MAX_DEPTH) {
		fail(p, TR_TMPL_ERROR_LIMIT, off, "blocks nested deeper than %d", MAX_DEPTH);
		return FALSE;
	}
	p->open[p->n_open].what = what;
	p->open[p->n_open].off = off;
	p->n_open++;
	return TRUE;
}

static struct node *parse_body(parser *p, unsigned stops, struct elem *end);

static void fail_unclosed(parser *p, const char *what, size_t off)
{
	fail(p, TR_TMPL_ERROR_SYNTAX, off, "'%s' is not closed (missing '{%% end%s %%}')", what, what);
}

static struct node *parse_if(parser *p, const struct elem *start)
{
	struct node *n = new_node(p, N_IF, start->off);
	struct branch **tail = &n->u.cond.branches;
	struct elem el = *start;
	if (!push_block(p, "if", start->off))
		return NULL;
	for (;;) {
		struct branch *b = tr_pool_alloc(p->t->pool, sizeof(*b));
		b->cond = el.expr;
		*tail = b;
		tail = &b->next;
		b->body = parse_body(p, BIT(EL_ELIF) | BIT(EL_ELSE) | BIT(EL_ENDIF), &el);
		if (p->failed)
			return NULL;
		if (el.kind != EL_ELIF)
			break;
	}
	if (el.kind == EL_ELSE) {
		n->u.cond.else_body = parse_body(p, BIT(EL_ENDIF), &el);
		if (p->failed)
			return NULL;
	}
	if (el.kind != EL_ENDIF) {
		fail_unclosed(p, "if", start->off);
		return NULL;
	}
	p->n_open--;
	return n;
}

static struct node *parse_for(parser *p, const struct elem *start)
{
	struct node *n = new_node(p, N_FOR, start->off);
	struct elem el;
	if (!push_block(p, "for", start->off))
		return NULL;
	n->u.loop.seq = start->seq;
	n->u.loop.depth = p->n_scopes;
	p->scopes[p->n_scopes].var = start->var;
	p->scopes[p->n_scopes].canonical = start->seq->canonical;
	p->n_scopes++;
	n->u.loop.body = parse_body(p, BIT(EL_ELSE) | BIT(EL_ENDFOR), &el);
	p->n_scopes--;
	if (p->failed)
		return NULL;
	if (el.kind == EL_ELSE) {
		n->u.loop.else_body = parse_body(p, BIT(EL_ENDFOR), &el);
		if (p->failed)
			return NULL;
	}
	if (el.kind != EL_ENDFOR) {
		fail_unclosed(p, "for", start->off);
		return NULL;
	}
	p->n_open--;
	return n;
}

/* Nodes up to EOF or an element in stops (returned in *end). */
static struct node *parse_body(parser *p, unsigned stops, struct elem *end)
{
	struct node *head = NULL, **tail = &head;
	for (;;) {
		struct elem el;
		struct node *n = NULL;
		if (!next_element(p, &el))
			return NULL;
		if (el.kind == EL_EOF || (stops & BIT(el.kind)) != 0) {
			*end = el;
			return head;
		}
		switch (el.kind) {
		case EL_TEXT:
			n = new_node(p, N_TEXT, el.off);
			n->u.text.s = el.text;
			n->u.text.len = el.len;
			break;
		case EL_OUTPUT:
			n = new_node(p, N_OUTPUT, el.off);
			n->u.output = el.expr;
			break;
		case EL_IF:
			n = parse_if(p, &el);
			break;
		case EL_FOR:
			n = parse_for(p, &el);
			break;
		default:
			if (p->n_open > 0) {
				int line, col;
				locate(p->t, p->open[p->n_open - 1].off, &line, &col);
				fail(p, TR_TMPL_ERROR_SYNTAX, el.off, "unexpected '%s': the '%s' at %d:%d is still open",
				     elem_word(el.kind), p->open[p->n_open - 1].what, line, col);
			} else if (el.kind == EL_ENDFOR) {
				fail(p, TR_TMPL_ERROR_SYNTAX, el.off, "'endfor' without 'for'");
			} else if (el.kind == EL_ELSE) {
				fail(p, TR_TMPL_ERROR_SYNTAX, el.off, "'else' outside 'if' or 'for'");
			} else {
				fail(p, TR_TMPL_ERROR_SYNTAX, el.off, "'%s' without 'if'", elem_word(el.kind));
			}
			return NULL;
		}
		if (n == NULL)
			return NULL;
		*tail = n;
		tail = &n->next;
	}
}

static tr_tmpl *compile_at(const char *name, const char *src, size_t len, int base_line,
                           int base_col, gboolean header_only, GError **error)
{
	g_return_val_if_fail(src != NULL || len == 0, NULL);
	tr_pool *pool = tr_pool_new(len * 4 + 1024);
	tr_tmpl *t = tr_pool_alloc(pool, sizeof(*t));
	t->pool = pool;
	t->name = tr_pool_strdup(pool, name != NULL ? name : "template");
	t->base_line = base_line;
	t->base_col = base_col;
	t->header_only = header_only;
	t->refs = g_array_new(FALSE, FALSE, sizeof(struct ref));
	t->zones = g_ptr_array_new_with_free_func((GDestroyNotify)g_time_zone_unref);

	if (len > MAX_SOURCE) {
		t->src = "";
		tmpl_error(t, error, TR_TMPL_ERROR_LIMIT, 0, "template is %zu bytes, the limit is %u",
		           len, MAX_SOURCE);
		tr_tmpl_free(&t);
		return NULL;
	}
	t->src = tr_pool_strndup(pool, src != NULL ? src : "", len);
	t->len = len;
	const char *bad = NULL;
	if (!g_utf8_validate_len(t->src, len, &bad)) {
		tmpl_error(t, error, TR_TMPL_ERROR_SYNTAX, (size_t)(bad - t->src),
		           "not valid UTF-8 (or a NUL byte)");
		tr_tmpl_free(&t);
		return NULL;
	}

	parser p = { .t = t, .error = error };
	struct elem end;
	t->root = parse_body(&p, 0, &end);
	if (p.failed) {
		tr_tmpl_free(&t);
		return NULL;
	}
	return t;
}

tr_tmpl *tr_tmpl_compile(const char *name, const char *src, size_t len, GError **error)
{
	return compile_at(name, src, len, 1, 1, FALSE, error);
}

void tr_tmpl_free(tr_tmpl **tp)
{
	tr_tmpl *t = *tp;
	if (t == NULL)
		return;
	*tp = NULL;
	g_array_free(t->refs, TRUE);
	g_ptr_array_free(t->zones, TRUE);
	tr_pool *pool = t->pool;
	tr_pool_free(&pool);
}

const char *tr_tmpl_name(const tr_tmpl *t)
{
	return t->name;
}

/* ------------------------------------------------------------------ */
/* Check                                                                */

static gboolean path_known(const char *path, const char *const *known)
{
	size_t n = strlen(path);
	for (size_t i = 0; known != NULL && known[i] != NULL; i++) {
		const char *k = known[i];
		if (strncmp(k, path, n) == 0 && (k[n] == '\0' || k[n] == '.' || k[n] == '['))
			return TRUE;
	}
	return FALSE;
}

static int check_into(const tr_tmpl *t, const char *const *known, GString *msg, int reported)
{
	int unknown = 0;
	for (guint i = 0; i < t->refs->len; i++) {
		const struct ref *r = &g_array_index(t->refs, struct ref, i);
		if (path_known(r->path, known))
			continue;
		unknown++;
		if (reported + unknown > MAX_CHECK_ERRORS)
			continue;
		int line, col;
		locate(t, r->off, &line, &col);
		if (msg->len > 0)
			g_string_append_c(msg, '\n');
		g_string_append_printf(msg, "%s:%d:%d: unknown variable '%s'", t->name, line, col, r->path);
	}
	return unknown;
}

static gboolean check_finish(GString *msg, int unknown, GError **error)
{
	if (unknown > MAX_CHECK_ERRORS)
		g_string_append_printf(msg, "\n… and %d more unknown variables", unknown - MAX_CHECK_ERRORS);
	if (unknown > 0)
		g_set_error_literal(error, TR_TMPL_ERROR, TR_TMPL_ERROR_UNKNOWN_VARIABLE, msg->str);
	g_string_free(msg, TRUE);
	return unknown == 0;
}

gboolean tr_tmpl_check(const tr_tmpl *t, const char *const *known, GError **error)
{
	GString *msg = g_string_new(NULL);
	return check_finish(msg, check_into(t, known, msg, 0), error);
}

/* ------------------------------------------------------------------ */
/* Languages                                                            */

struct lang {
	const char *code;
	const char *units[3][2]; /* minute, hour, day × singular, plural */
	gboolean zero_is_singular;
	const char *weekdays[7]; /* Monday first */
	const char *weekdays_abbr[7];
	const char *months[12];
	const char *months_abbr[12];
};

static const struct lang langs[] = {
	{ "en", { { "minute", "minutes" }, { "hour", "hours" }, { "day", "days" } }, FALSE,
	  { "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday" },
	  { "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun" },
	  { "January", "February", "March", "April", "May", "June", "July", "August",
	    "September", "October", "November", "December" },
	  { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" } },
	{ "es", { { "minuto", "minutos" }, { "hora", "horas" }, { "día", "días" } }, FALSE,
	  { "lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo" },
	  { "lun", "mar", "mié", "jue", "vie", "sáb", "dom" },
	  { "enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto",
	    "septiembre", "octubre", "noviembre", "diciembre" },
	  { "ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sept", "oct", "nov", "dic" } },
	{ "de", { { "Minute", "Minuten" }, { "Stunde", "Stunden" }, { "Tag", "Tage" } }, FALSE,
	  { "Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag" },
	  { "Mo", "Di", "Mi", "Do", "Fr", "Sa", "So" },
	  { "Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August",
	    "September", "Oktober", "November", "Dezember" },
	  { "Jan", "Feb", "Mär", "Apr", "Mai", "Jun", "Jul", "Aug", "Sep", "Okt", "Nov", "Dez" } },
	{ "fr", { { "minute", "minutes" }, { "heure", "heures" }, { "jour", "jours" } }, TRUE,
	  { "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche" },
	  { "lun.", "mar.", "mer.", "jeu.", "ven.", "sam.", "dim." },
	  { "janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
	    "septembre", "octobre", "novembre", "décembre" },
	  { "janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.", "déc." } },
	{ "pt", { { "minuto", "minutos" }, { "hora", "horas" }, { "dia", "dias" } }, FALSE,
	  { "segunda-feira", "terça-feira", "quarta-feira", "quinta-feira", "sexta-feira", "sábado", "domingo" },
	  { "seg", "ter", "qua", "qui", "sex", "sáb", "dom" },
	  { "janeiro", "fevereiro", "março", "abril", "maio", "junho", "julho", "agosto",
	    "setembro", "outubro", "novembro", "dezembro" },
	  { "jan", "fev", "mar", "abr", "mai", "jun", "jul", "ago", "set", "out", "nov", "dez" } },
};

static const struct lang *lang_find(const char *code)
{
	if (code == NULL || !g_ascii_isalpha(code[0]) || !g_ascii_isalpha(code[1]) ||
	    (code[2] != '\0' && code[2] != '-' && code[2] != '_'))
		return &langs[0];
	for (size_t i = 0; i < G_N_ELEMENTS(langs); i++)
		if (g_ascii_tolower(code[0]) == langs[i].code[0] && g_ascii_tolower(code[1]) == langs[i].code[1])
			return &langs[i];
	return &langs[0];
}

/* ------------------------------------------------------------------ */
/* Render                                                               */

enum value_kind { V_NULL, V_BOOL, V_INT, V_DOUBLE, V_STRING, V_ARRAY, V_OBJECT };

typedef struct {
	enum value_kind kind;
	gboolean boolean;
	gint64 i;
	double d;
	const char *s; /* V_STRING: valid UTF-8, NUL-terminated */
	size_t len;
	JsonArray *array;
	JsonObject *object;
} value;

typedef struct {
	const tr_tmpl *t;
	JsonObject *root;
	const struct lang *lang;
	gboolean header;
	GString *out;
	size_t max_out;
	size_t work;
	tr_pool *scratch; /* cleared after every node's expression */
	GError **error;
	gboolean failed;
	struct {
		JsonArray *array;
		guint index;
		guint length;
	} frames[MAX_DEPTH];
} render;

static void render_fail(render *r, int code, size_t off, const char *fmt, ...) G_GNUC_PRINTF(4, 5);
static void render_fail(render *r, int code, size_t off, const char *fmt, ...)
{
	if (r->failed)
		return;
	r->failed = TRUE;
	va_list ap;
	va_start(ap, fmt);
	char *msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	tmpl_error(r->t, r->error, code, off, "%s", msg);
	g_free(msg);
}

static gboolean spend(render *r, size_t units, size_t off)
{
	r->work += units;
	if (r->work > MAX_WORK) {
		render_fail(r, TR_TMPL_ERROR_LIMIT, off, "render work limit exceeded (%u units)", MAX_WORK);
		return FALSE;
	}
	return TRUE;
}

static void set_string(value *v, const char *s, size_t len)
{
	memset(v, 0, sizeof(*v));
	v->kind = V_STRING;
	v->s = s;
	v->len = len;
}

static void set_bool(value *v, gboolean b)
{
	memset(v, 0, sizeof(*v));
	v->kind = V_BOOL;
	v->boolean = b;
}

/* Take a GLib-allocated string into the scratch pool. */
static void set_owned(render *r, value *v, char *s, size_t len)
{
	set_string(v, tr_pool_strndup(r->scratch, s, len), len);
	g_free(s);
}

static void node_value(render *r, JsonNode *n, value *v)
{
	memset(v, 0, sizeof(*v));
	if (n == NULL)
		return;
	switch (JSON_NODE_TYPE(n)) {
	case JSON_NODE_OBJECT:
		v->kind = V_OBJECT;
		v->object = json_node_get_object(n);
		return;
	case JSON_NODE_ARRAY:
		v->kind = V_ARRAY;
		v->array = json_node_get_array(n);
		return;
	case JSON_NODE_NULL:
		return;
	case JSON_NODE_VALUE:
		break;
	}
	GType type = json_node_get_value_type(n);
	if (type == G_TYPE_STRING) {
		const char *s = json_node_get_string(n);
		if (s == NULL)
			return;
		size_t len = strlen(s);
		if (!g_utf8_validate_len(s, len, NULL)) {
			char *valid = g_utf8_make_valid(s, (gssize)len);
			set_owned(r, v, valid, strlen(valid));
			return;
		}
		set_string(v, s, len);
	} else if (type == G_TYPE_INT64 || type == G_TYPE_INT) {
		v->kind = V_INT;
		v->i = json_node_get_int(n);
	} else if (type == G_TYPE_DOUBLE || type == G_TYPE_FLOAT) {
		v->kind = V_DOUBLE;
		v->d = json_node_get_double(n);
	} else if (type == G_TYPE_BOOLEAN) {
		v->kind = V_BOOL;
		v->boolean = json_node_get_boolean(n);
	}
}

static void resolve(render *r, const struct path *pa, value *v)
{
	JsonNode *n = NULL;
	memset(v, 0, sizeof(*v));
	if (pa->root == ROOT_LOOPMETA) {
		guint index = r->frames[pa->scope].index, length = r->frames[pa->scope].length;
		switch (pa->meta) {
		case META_INDEX: v->kind = V_INT; v->i = index + 1; break;
		case META_INDEX0: v->kind = V_INT; v->i = index; break;
		case META_FIRST: set_bool(v, index == 0); break;
		case META_LAST: set_bool(v, index + 1 == length); break;
		case META_LENGTH: v->kind = V_INT; v->i = length; break;
		}
		return;
	}
	int i = 0;
	if (pa->root == ROOT_LOOPVAR) {
		n = json_array_get_element(r->frames[pa->scope].array, r->frames[pa->scope].index);
	} else {
		if (r->root == NULL)
			return;
		n = json_object_get_member(r->root, pa->segments[0].name);
		i = 1;
	}
	for (; i < pa->n_segments && n != NULL; i++) {
		const struct segment *seg = &pa->segments[i];
		if (seg->name != NULL) {
			n = JSON_NODE_HOLDS_OBJECT(n) ? json_object_get_member(json_node_get_object(n), seg->name) : NULL;
		} else if (JSON_NODE_HOLDS_ARRAY(n)) {
			JsonArray *a = json_node_get_array(n);
			n = seg->index < (gint64)json_array_get_length(a) ? json_array_get_element(a, (guint)seg->index)
			                                                   : NULL;
		} else {
			n = NULL;
		}
	}
	node_value(r, n, v);
}

static gboolean truthy(const value *v)
{
	switch (v->kind) {
	case V_NULL: return FALSE;
	case V_BOOL: return v->boolean;
	case V_INT: return v->i != 0;
	case V_DOUBLE: return v->d != 0.0;
	case V_STRING: return v->len > 0;
	case V_ARRAY: return json_array_get_length(v->array) > 0;
	case V_OBJECT: return json_object_get_size(v->object) > 0;
	}
	return FALSE;
}

static gboolean is_empty(const value *v)
{
	return v->kind == V_NULL || (v->kind == V_STRING && v->len == 0) ||
	       (v->kind == V_ARRAY && json_array_get_length(v->array) == 0);
}

static const char *scalar_text(render *r, const value *v, size_t *len_r)
{
	const char *s = "";
	char buf[G_ASCII_DTOSTR_BUF_SIZE];
	switch (v->kind) {
	case V_STRING:
		*len_r = v->len;
		return v->s;
	case V_BOOL:
		s = v->boolean ? "true" : "false";
		break;
	case V_INT: {
		/* no printf: comparisons in loops turn many numbers into text */
		char digits[24];
		size_t i = sizeof(digits);
		guint64 u = v->i < 0 ? (guint64)0 - (guint64)v->i : (guint64)v->i;
		do {
			digits[--i] = (char)('0' + u % 10);
			u /= 10;
		} while (u > 0);
		if (v->i < 0)
			digits[--i] = '-';
		*len_r = sizeof(digits) - i;
		return tr_pool_strndup(r->scratch, digits + i, *len_r);
	}
	case V_DOUBLE:
		if (isfinite(v->d) && v->d == floor(v->d) && fabs(v->d) < 1e15)
			s = tr_pool_printf(r->scratch, "%.0f", v->d);
		else
			s = tr_pool_strdup(r->scratch, g_ascii_dtostr(buf, sizeof(buf), v->d));
		break;
	default:
		break;
	}
	*len_r = strlen(s);
	return s;
}

static gboolean join_array(render *r, JsonArray *a, const char *sep, size_t off, value *out)
{
	GString *g = g_string_new(NULL);
	guint n = json_array_get_length(a);
	size_t sep_len = strlen(sep);
	for (guint i = 0; i < n; i++) {
		value item;
		size_t len;
		node_value(r, json_array_get_element(a, i), &item);
		if (item.kind == V_ARRAY || item.kind == V_OBJECT || item.kind == V_NULL)
			continue;
		const char *s = scalar_text(r, &item, &len);
		if (!spend(r, 1 + len + sep_len, off)) {
			g_string_free(g, TRUE);
			return FALSE;
		}
		if (g->len > 0)
			g_string_append_len(g, sep, (gssize)sep_len);
		g_string_append_len(g, s, (gssize)len);
	}
	size_t len = g->len;
	set_owned(r, out, g_string_free(g, FALSE), len);
	return TRUE;
}

/* Any value as text (arrays joined with ", ", objects empty). */
static gboolean to_text(render *r, value *v, size_t off)
{
	if (v->kind == V_STRING)
		return TRUE;
	if (v->kind == V_ARRAY)
		return join_array(r, v->array, ", ", off, v);
	size_t len;
	const char *s = v->kind == V_OBJECT ? "" : scalar_text(r, v, &len);
	if (v->kind == V_OBJECT)
		len = 0;
	set_string(v, s, len);
	return TRUE;
}

/* A whole number from a number or a numeric string; FALSE otherwise. */
static gboolean to_int(const value *v, gboolean round_half, gint64 *out)
{
	double d;
	switch (v->kind) {
	case V_INT:
		*out = v->i;
		return TRUE;
	case V_DOUBLE:
		d = v->d;
		break;
	case V_STRING: {
		char *end = NULL;
		const char *s = v->s;
		while (*s == ' ')
			s++;
		if (*s == '\0')
			return FALSE;
		errno = 0;
		gint64 i = g_ascii_strtoll(s, &end, 10);
		if (errno == 0 && end != s && *end == '\0') {
			*out = i;
			return TRUE;
		}
		d = g_ascii_strtod(s, &end);
		if (end == s || *end != '\0')
			return FALSE;
		break;
	}
	default:
		return FALSE;
	}
	if (!isfinite(d) || fabs(d) > 1e15)
		return FALSE;
	*out = (gint64)(round_half ? llround(d) : floor(d));
	return TRUE;
}

static void append_unit(GString *g, const struct lang *l, int unit, guint64 n)
{
	gboolean singular = n == 1 || (n == 0 && l->zero_is_singular);
	if (g->len > 0 && g->str[g->len - 1] != '-')
		g_string_append_c(g, ' ');
	g_string_append_printf(g, "%" G_GUINT64_FORMAT " %s", n, l->units[unit][singular ? 0 : 1]);
}

static void filter_duration(render *r, value *v)
{
	gint64 minutes;
	if (!to_int(v, TRUE, &minutes))
		return;
	GString *g = g_string_new(NULL);
	guint64 m = minutes < 0 ? (guint64)(-(minutes + 1)) + 1 : (guint64)minutes;
	if (minutes < 0)
		g_string_append_c(g, '-');
	guint64 days = m / 1440, hours = (m % 1440) / 60, mins = m % 60;
	if (days > 0)
		append_unit(g, r->lang, 2, days);
	if (hours > 0)
		append_unit(g, r->lang, 1, hours);
	if (mins > 0 || m == 0)
		append_unit(g, r->lang, 0, mins);
	size_t len = g->len;
	set_owned(r, v, g_string_free(g, FALSE), len);
}

static gboolean filter_date(render *r, const struct expr *f, value *v)
{
	gint64 t;
	if (!to_int(v, FALSE, &t))
		return TRUE;
	GDateTime *utc = g_date_time_new_from_unix_utc(t);
	if (utc == NULL)
		return TRUE;
	GTimeZone *zone = NULL;
	if (f->u.filter.zone != NULL) {
		zone = g_time_zone_ref(f->u.filter.zone);
	} else {
		value name = { 0 };
		if (f->u.filter.n_args > 1) {
			resolve(r, f->u.filter.args[1]->u.path, &name);
		} else if (r->root != NULL) {
			node_value(r, json_object_get_member(r->root, "tz"), &name);
		}
		if (name.kind == V_STRING)
			zone = zone_lookup(name.s);
		if (zone == NULL)
			zone = g_time_zone_new_utc();
	}
	GDateTime *dt = g_date_time_to_timezone(utc, zone);
	g_time_zone_unref(zone);
	g_date_time_unref(utc);
	if (dt == NULL)
		return TRUE;
	const struct lang *l = r->lang;
	GString *g = g_string_new(NULL);
	int wday = g_date_time_get_day_of_week(dt) - 1, month = g_date_time_get_month(dt) - 1;
	for (const char *c = f->u.filter.text; *c != '\0'; c++) {
		if (*c != '%' || c[1] == '\0') {
			g_string_append_c(g, *c);
			continue;
		}
		c++;
		switch (*c) {
		case 'a': g_string_append(g, l->weekdays_abbr[wday]); break;
		case 'A': g_string_append(g, l->weekdays[wday]); break;
		case 'b': g_string_append(g, l->months_abbr[month]); break;
		case 'B': g_string_append(g, l->months[month]); break;
		case 'd': g_string_append_printf(g, "%02d", g_date_time_get_day_of_month(dt)); break;
		case 'e': g_string_append_printf(g, "%d", g_date_time_get_day_of_month(dt)); break;
		case 'm': g_string_append_printf(g, "%02d", month + 1); break;
		case 'Y': g_string_append_printf(g, "%04d", g_date_time_get_year(dt)); break;
		case 'y': g_string_append_printf(g, "%02d", g_date_time_get_year(dt) % 100); break;
		case 'H': g_string_append_printf(g, "%02d", g_date_time_get_hour(dt)); break;
		case 'M': g_string_append_printf(g, "%02d", g_date_time_get_minute(dt)); break;
		case 'S': g_string_append_printf(g, "%02d", g_date_time_get_second(dt)); break;
		case 'Z': g_string_append(g, g_date_time_get_timezone_abbreviation(dt)); break;
		case 'z': {
			gint64 off = g_date_time_get_utc_offset(dt) / G_TIME_SPAN_MINUTE;
			g_string_append_printf(g, "%c%02d%02d", off < 0 ? '-' : '+',
			                       (int)(ABS(off) / 60), (int)(ABS(off) % 60));
			break;
		}
		default: g_string_append_c(g, *c); break;
		}
	}
	g_date_time_unref(dt);
	size_t len = g->len;
	set_owned(r, v, g_string_free(g, FALSE), len);
	return TRUE;
}

/* Keep at most n characters, the last one "…"; never split a character
 * from the combining marks that follow it. */
static void filter_truncate(render *r, value *v, gint64 n)
{
	const char *s = v->s, *end = v->s + v->len, *p = s;
	gint64 count = 0;
	while (p < end && count < n) {
		p = g_utf8_next_char(p);
		count++;
	}
	if (p >= end)
		return;
	/* more than n characters: keep n - 1 and the ellipsis */
	const char *cut = s;
	for (gint64 i = 0; i < n - 1; i++)
		cut = g_utf8_next_char(cut);
	while (cut > s && g_unichar_ismark(g_utf8_get_char(cut)))
		cut = g_utf8_prev_char(cut);
	while (cut > s && is_space(cut[-1]))
		cut--;
	size_t keep = (size_t)(cut - s);
	char *out = tr_pool_alloc(r->scratch, keep + 4);
	memcpy(out, s, keep);
	memcpy(out + keep, "\xE2\x80\xA6", 4);
	set_string(v, out, keep + 3);
}

/* Prefix every line (lines end in LF; a final LF ends the last line). */
static void prefix_lines(render *r, value *v, const char *prefix, const char *empty_prefix)
{
	GString *g = g_string_sized_new(v->len + v->len / 8 + 16);
	const char *p = v->s, *end = v->s + v->len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *line_end = nl != NULL ? nl : end;
		gboolean blank = line_end == p || (line_end == p + 1 && *p == '\r');
		g_string_append(g, blank ? empty_prefix : prefix);
		g_string_append_len(g, p, line_end - p);
		if (nl == NULL)
			break;
		g_string_append_c(g, '\n');
		p = nl + 1;
	}
	size_t len = g->len;
	set_owned(r, v, g_string_free(g, FALSE), len);
}

static void filter_first_lines(render *r, value *v, gint64 n)
{
	const char *p = v->s, *end = v->s + v->len;
	for (gint64 i = 0; i < n && p < end; i++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			return;
		if (i == n - 1) {
			size_t len = (size_t)(nl - v->s);
			if (len > 0 && v->s[len - 1] == '\r')
				len--;
			set_string(v, tr_pool_strndup(r->scratch, v->s, len), len);
			return;
		}
		p = nl + 1;
	}
}

static gboolean eval(render *r, const struct expr *e, value *v);

static gboolean apply_filter(render *r, const struct expr *f, value *v)
{
	size_t off = f->off;
	enum filter_id id = f->u.filter.def->id;
	if (id == F_DEFAULT) {
		if (!spend(r, 1, off))
			return FALSE;
		return is_empty(v) ? eval(r, f->u.filter.args[0], v) : TRUE;
	}
	if (id == F_JOIN && v->kind == V_ARRAY)
		return join_array(r, v->array, f->u.filter.text, off, v);
	if (id == F_DURATION || id == F_DATE) {
		if (!spend(r, 1 + (v->kind == V_STRING ? v->len : 0), off))
			return FALSE;
		if (id == F_DURATION) {
			filter_duration(r, v);
			return TRUE;
		}
		return filter_date(r, f, v);
	}
	if (!to_text(r, v, off) || !spend(r, 1 + v->len, off))
		return FALSE;
	char *s;
	switch (id) {
	case F_UPPER:
		s = g_utf8_strup(v->s, (gssize)v->len);
		set_owned(r, v, s, strlen(s));
		break;
	case F_LOWER:
		s = g_utf8_strdown(v->s, (gssize)v->len);
		set_owned(r, v, s, strlen(s));
		break;
	case F_TRUNCATE:
		filter_truncate(r, v, f->u.filter.n);
		break;
	case F_QUOTE:
		prefix_lines(r, v, "> ", ">");
		break;
	case F_INDENT: {
		char spaces[MAX_INDENT + 1];
		memset(spaces, ' ', (size_t)f->u.filter.n);
		spaces[f->u.filter.n] = '\0';
		prefix_lines(r, v, spaces, "");
		break;
	}
	case F_FIRST_LINES:
		filter_first_lines(r, v, f->u.filter.n);
		break;
	default: /* join on a non-list: the value as text */
		break;
	}
	return TRUE;
}

static gboolean eval(render *r, const struct expr *e, value *v)
{
	value a, b;
	size_t la, lb;
	memset(v, 0, sizeof(*v));
	switch (e->kind) {
	case E_STRING:
		set_string(v, e->u.str.s, e->u.str.len);
		return TRUE;
	case E_INT:
		v->kind = V_INT;
		v->i = e->u.num;
		return TRUE;
	case E_BOOL:
		set_bool(v, e->u.boolean);
		return TRUE;
	case E_PATH:
		if (!spend(r, 1 + (size_t)e->u.path->n_segments, e->off))
			return FALSE;
		resolve(r, e->u.path, v);
		if (v->kind == V_STRING)
			return spend(r, v->len / 16, e->off);
		return TRUE;
	case E_NOT:
		if (!eval(r, e->u.bin.a, &a))
			return FALSE;
		set_bool(v, !truthy(&a));
		return TRUE;
	case E_AND:
	case E_OR:
		if (!eval(r, e->u.bin.a, &a))
			return FALSE;
		if (truthy(&a) == (e->kind == E_OR)) {
			set_bool(v, e->kind == E_OR);
			return TRUE;
		}
		if (!eval(r, e->u.bin.b, &b))
			return FALSE;
		set_bool(v, truthy(&b));
		return TRUE;
	case E_EQ:
	case E_NE:
		if (!eval(r, e->u.bin.a, &a) || !to_text(r, &a, e->off) ||
		    !eval(r, e->u.bin.b, &b) || !to_text(r, &b, e->off))
			return FALSE;
		la = a.len;
		lb = b.len;
		if (!spend(r, 1 + MIN(la, lb), e->off))
			return FALSE;
		set_bool(v, (la == lb && memcmp(a.s, b.s, la) == 0) == (e->kind == E_EQ));
		return TRUE;
	case E_FILTER:
		if (!eval(r, e->u.filter.operand, v))
			return FALSE;
		return apply_filter(r, e, v);
	}
	return FALSE;
}

static gboolean emit(render *r, const char *s, size_t len, size_t off)
{
	if (len > r->max_out - r->out->len) {
		render_fail(r, TR_TMPL_ERROR_LIMIT, off, "output exceeds %zu bytes", r->max_out);
		return FALSE;
	}
	g_string_append_len(r->out, s, (gssize)len);
	return TRUE;
}

/* A substituted value in text mode: TAB and LF stay, CRLF and a lone CR
 * become LF, other C0/C1 controls and DEL become spaces.  (Header mode
 * cleans the whole value afterwards, see header_clean().) */
static gboolean emit_value(render *r, const char *s, size_t len, size_t off)
{
	if (r->header)
		return emit(r, s, len, off);
	size_t start = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		const char *repl;
		size_t skip = 1;
		if (c == '\r') {
			if (i + 1 < len && s[i + 1] == '\n')
				repl = "";
			else
				repl = "\n";
		} else if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7f) {
			repl = " ";
		} else if (c == 0xC2 && i + 1 < len && (unsigned char)s[i + 1] >= 0x80 &&
		           (unsigned char)s[i + 1] <= 0x9f) {
			repl = " ";
			skip = 2;
		} else {
			continue;
		}
		if (!emit(r, s + start, i - start, off) || !emit(r, repl, strlen(repl), off))
			return FALSE;
		i += skip - 1;
		start = i + 1;
	}
	return emit(r, s + start, len - start, off);
}

static gboolean render_nodes(render *r, const struct node *n)
{
	for (; n != NULL && !r->failed; n = n->next) {
		if (!spend(r, 1, n->off))
			return FALSE;
		value v;
		switch (n->kind) {
		case N_TEXT:
			if (!emit(r, n->u.text.s, n->u.text.len, n->off))
				return FALSE;
			break;
		case N_OUTPUT:
			if (!eval(r, n->u.output, &v) || !to_text(r, &v, n->off) ||
			    !emit_value(r, v.s, v.len, n->off))
				return FALSE;
			tr_pool_clear(r->scratch);
			break;
		case N_IF: {
			const struct node *body = n->u.cond.else_body;
			for (const struct branch *b = n->u.cond.branches; b != NULL; b = b->next) {
				if (!eval(r, b->cond, &v))
					return FALSE;
				if (truthy(&v)) {
					body = b->body;
					break;
				}
			}
			tr_pool_clear(r->scratch);
			if (!render_nodes(r, body))
				return FALSE;
			break;
		}
		case N_FOR: {
			resolve(r, n->u.loop.seq, &v);
			guint length = v.kind == V_ARRAY ? json_array_get_length(v.array) : 0;
			tr_pool_clear(r->scratch);
			if (length == 0) {
				if (!render_nodes(r, n->u.loop.else_body))
					return FALSE;
				break;
			}
			int d = n->u.loop.depth;
			r->frames[d].array = v.array;
			r->frames[d].length = length;
			for (guint i = 0; i < length; i++) {
				r->frames[d].index = i;
				if (!spend(r, 1, n->off) || !render_nodes(r, n->u.loop.body))
					return FALSE;
			}
			break;
		}
		}
	}
	return !r->failed;
}

/* One line: controls (C0, DEL, C1, U+2028, U+2029) and runs of blanks
 * become one space; no space at either end. */
static char *header_clean(const char *s, size_t len)
{
	GString *g = g_string_sized_new(len + 1);
	gboolean pending = FALSE;
	for (size_t i = 0; i < len;) {
		unsigned char c = (unsigned char)s[i];
		size_t n = 0;
		if (c <= 0x20 || c == 0x7f)
			n = 1;
		else if (c == 0xC2 && i + 1 < len && (unsigned char)s[i + 1] >= 0x80 && (unsigned char)s[i + 1] <= 0x9f)
			n = 2;
		else if (c == 0xE2 && i + 2 < len && (unsigned char)s[i + 1] == 0x80 &&
		         ((unsigned char)s[i + 2] == 0xA8 || (unsigned char)s[i + 2] == 0xA9))
			n = 3;
		if (n > 0) {
			pending = TRUE;
			i += n;
			continue;
		}
		if (pending && g->len > 0)
			g_string_append_c(g, ' ');
		pending = FALSE;
		g_string_append_c(g, (char)c);
		i++;
	}
	return g_string_free(g, FALSE);
}

/* RFC 2047 for the whole value: UTF-8, Q encoding, words of at most 75
 * characters holding whole characters.  Q rather than B because decoders
 * (GMime among them) join adjacent B words before decoding, and base64
 * padding inside the joined text cuts it short. */
static char *encode_words(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	const size_t room = 75 - strlen("=?UTF-8?Q?") - strlen("?=");
	GString *g = g_string_new(NULL);
	GString *word = g_string_new(NULL);
	for (const char *c = s; *c != '\0';) {
		const char *next = g_utf8_next_char(c);
		char enc[4 * 3 + 1];
		size_t n = 0;
		for (const char *b = c; b < next && *b != '\0'; b++) {
			unsigned char u = (unsigned char)*b;
			if (g_ascii_isalnum(u) || u == '!' || u == '*' || u == '+' || u == '-' || u == '/') {
				enc[n++] = (char)u;
			} else if (u == ' ') {
				enc[n++] = '_';
			} else {
				enc[n++] = '=';
				enc[n++] = hex[u >> 4];
				enc[n++] = hex[u & 15];
			}
		}
		if (word->len + n > room) {
			g_string_append_printf(g, "%s=?UTF-8?Q?%s?=", g->len > 0 ? " " : "", word->str);
			g_string_truncate(word, 0);
		}
		g_string_append_len(word, enc, (gssize)n);
		c = next;
	}
	if (word->len > 0)
		g_string_append_printf(g, "%s=?UTF-8?Q?%s?=", g->len > 0 ? " " : "", word->str);
	g_string_free(word, TRUE);
	return g_string_free(g, FALSE);
}

static gpointer gmime_init_once(gpointer data)
{
	(void)data;
	g_mime_init();
	return NULL;
}

static gboolean has_long_word(const char *s, size_t max)
{
	size_t word = 0;
	for (; *s != '\0'; s++) {
		word = *s == ' ' ? 0 : word + 1;
		if (word > max)
			return TRUE;
	}
	return FALSE;
}

/*
 * GMime encodes only the words that need it, which keeps ASCII words
 * readable.  Two cases it does not cover are handled by encode_words():
 * a value holding "=?" (GMime passes encoded-word lookalikes through, and
 * readers would decode them), and a run of non-ASCII text without spaces,
 * which GMime turns into one encoded word longer than RFC 2047's 75
 * characters and so into a header line that cannot be folded.
 */
static char *header_encode(const char *clean)
{
	static GOnce once = G_ONCE_INIT;
	gboolean ascii = TRUE;
	for (const char *c = clean; *c != '\0'; c++)
		if ((unsigned char)*c >= 0x80)
			ascii = FALSE;
	if (strstr(clean, "=?") != NULL)
		return encode_words(clean);
	if (ascii && !has_long_word(clean, 75))
		return g_strdup(clean);
	g_once(&once, gmime_init_once, NULL);
	char *enc = g_mime_utils_header_encode_text(NULL, clean, "UTF-8");
	gboolean bad = has_long_word(enc, 75);
	for (const char *c = enc; *c != '\0'; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
			bad = TRUE;
	if (bad) {
		g_free(enc);
		return encode_words(clean);
	}
	return enc;
}

char *tr_tmpl_render(const tr_tmpl *t, JsonNode *context, const char *lang, tr_tmpl_mode mode,
                     size_t max_bytes, GError **error)
{
	g_return_val_if_fail(t != NULL, NULL);
	render r = {
		.t = t,
		.root = context != NULL && JSON_NODE_HOLDS_OBJECT(context) ? json_node_get_object(context) : NULL,
		.lang = lang_find(lang),
		.header = mode == TR_TMPL_HEADER || t->header_only,
		.max_out = max_bytes > 0 ? max_bytes : MAX_OUTPUT,
		.error = error,
	};
	r.out = g_string_sized_new(MIN(r.max_out, 1024) + 1);
	r.scratch = tr_pool_new(4096);
	gboolean ok = render_nodes(&r, t->root);
	tr_pool_free(&r.scratch);
	if (!ok) {
		g_string_free(r.out, TRUE);
		return NULL;
	}
	if (!r.header)
		return g_string_free(r.out, FALSE);

	char *clean = header_clean(r.out->str, r.out->len);
	g_string_free(r.out, TRUE);
	char *encoded = header_encode(clean);
	g_free(clean);
	if (strlen(encoded) > r.max_out) {
		g_set_error(error, TR_TMPL_ERROR, TR_TMPL_ERROR_LIMIT,
		            "%s:%d:%d: encoded header value exceeds %zu bytes", t->name, t->base_line,
		            t->base_col, r.max_out);
		g_free(encoded);
		return NULL;
	}
	return encoded;
}

/* ------------------------------------------------------------------ */
/* Template files                                                       */

struct tr_tmpl_file {
	char *path;
	GPtrArray *names;   /* char * */
	GPtrArray *headers; /* tr_tmpl * */
	tr_tmpl *body;
};

static void free_tmpl(gpointer p)
{
	tr_tmpl *t = p;
	tr_tmpl_free(&t);
}

static gboolean header_allowed(const char *name, size_t n)
{
	static const char *const allowed[] = { "Subject", "Comments", "Keywords", NULL };
	for (int i = 0; allowed[i] != NULL; i++)
		if (strlen(allowed[i]) == n && g_ascii_strncasecmp(allowed[i], name, n) == 0)
			return TRUE;
	return n > 2 && g_ascii_strncasecmp(name, "X-", 2) == 0;
}

static int utf8_chars(const char *s, size_t n)
{
	int chars = 0;
	for (size_t i = 0; i < n; i++)
		if (((unsigned char)s[i] & 0xC0) != 0x80)
			chars++;
	return chars;
}

static void file_error(GError **error, const char *name, int line, int col, const char *fmt, ...)
	G_GNUC_PRINTF(5, 6);
static void file_error(GError **error, const char *name, int line, int col, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	g_set_error(error, TR_TMPL_ERROR, TR_TMPL_ERROR_FILE, "%s:%d:%d: %s", name, line, col, msg);
	g_free(msg);
}

tr_tmpl_file *tr_tmpl_file_parse(const char *name, const char *src, size_t len, GError **error)
{
	struct hdr {
		size_t name_off, name_len, val_off, val_end;
		int line, col;
	} hdrs[MAX_HEADERS];
	int n_hdrs = 0;
	size_t i = 0;
	int line = 1;

	if (name == NULL)
		name = "template";
	if (len > MAX_SOURCE) {
		file_error(error, name, 1, 1, "template file is %zu bytes, the limit is %u", len, MAX_SOURCE);
		return NULL;
	}
	if (len >= 3 && memcmp(src, "\xEF\xBB\xBF", 3) == 0)
		i = 3;
	for (;;) {
		if (i >= len) {
			file_error(error, name, line, 1, "missing the blank line between the headers and the body");
			return NULL;
		}
		const char *nl = memchr(src + i, '\n', len - i);
		size_t eol = nl != NULL ? (size_t)(nl - src) : len;
		size_t next = nl != NULL ? eol + 1 : len;
		size_t content_end = eol;
		if (content_end > i && src[content_end - 1] == '\r')
			content_end--;
		if (content_end == i) {
			i = next;
			line++;
			break;
		}
		if (src[i] == ' ' || src[i] == '\t') {
			if (n_hdrs == 0) {
				file_error(error, name, line, 1, "continuation line before the first header");
				return NULL;
			}
			hdrs[n_hdrs - 1].val_end = content_end;
		} else {
			const char *colon = memchr(src + i, ':', content_end - i);
			if (colon == NULL) {
				file_error(error, name, line, 1,
				           "expected 'Name: value' or the blank line that starts the body");
				return NULL;
			}
			size_t name_len = (size_t)(colon - (src + i));
			for (size_t k = 0; k < name_len; k++) {
				unsigned char c = (unsigned char)src[i + k];
				if (c <= 0x20 || c >= 0x7f) {
					file_error(error, name, line, 1 + (int)k, "invalid character in header name");
					return NULL;
				}
			}
			if (name_len == 0 || !header_allowed(src + i, name_len)) {
				file_error(error, name, line, 1,
				           "header '%.*s' cannot come from a template (allowed: Subject, Comments, "
				           "Keywords, X-*)", (int)MIN(name_len, 64), src + i);
				return NULL;
			}
			for (int h = 0; h < n_hdrs; h++) {
				if (hdrs[h].name_len == name_len &&
				    g_ascii_strncasecmp(src + hdrs[h].name_off, src + i, name_len) == 0) {
					file_error(error, name, line, 1, "header '%.*s' appears twice (first on line %d)",
					           (int)name_len, src + i, hdrs[h].line);
					return NULL;
				}
			}
			if (n_hdrs >= MAX_HEADERS) {
				file_error(error, name, line, 1, "more than %d header lines", MAX_HEADERS);
				return NULL;
			}
			struct hdr *h = &hdrs[n_hdrs++];
			h->name_off = i;
			h->name_len = name_len;
			h->val_off = name_len + i + 1;
			h->val_end = content_end;
			h->line = line;
			h->col = utf8_chars(src + i, name_len) + 2;
		}
		i = next;
		line++;
	}

	gboolean have_subject = FALSE;
	for (int h = 0; h < n_hdrs; h++)
		if (hdrs[h].name_len == 7 && g_ascii_strncasecmp(src + hdrs[h].name_off, "Subject", 7) == 0)
			have_subject = TRUE;
	if (!have_subject) {
		file_error(error, name, 1, 1, "no Subject header");
		return NULL;
	}

	tr_tmpl_file *f = g_new0(tr_tmpl_file, 1);
	f->path = g_strdup(name);
	f->names = g_ptr_array_new_with_free_func(g_free);
	f->headers = g_ptr_array_new_with_free_func(free_tmpl);
	for (int h = 0; h < n_hdrs; h++) {
		tr_tmpl *t = compile_at(name, src + hdrs[h].val_off, hdrs[h].val_end - hdrs[h].val_off,
		                        hdrs[h].line, hdrs[h].col, TRUE, error);
		if (t == NULL) {
			tr_tmpl_file_free(&f);
			return NULL;
		}
		g_ptr_array_add(f->names, g_strndup(src + hdrs[h].name_off, hdrs[h].name_len));
		g_ptr_array_add(f->headers, t);
	}
	f->body = compile_at(name, src + i, len - i, line, 1, FALSE, error);
	if (f->body == NULL) {
		tr_tmpl_file_free(&f);
		return NULL;
	}
	return f;
}

tr_tmpl_file *tr_tmpl_file_load(const char *path, GError **error)
{
	struct stat st;
	char *data = NULL;
	gsize len = 0;
	GError *local = NULL;
	if (stat(path, &st) != 0) {
		g_set_error(error, TR_TMPL_ERROR, TR_TMPL_ERROR_FILE, "%s: %s", path, g_strerror(errno));
		return NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		g_set_error(error, TR_TMPL_ERROR, TR_TMPL_ERROR_FILE, "%s: not a regular file", path);
		return NULL;
	}
	if ((guint64)st.st_size > MAX_SOURCE) {
		g_set_error(error, TR_TMPL_ERROR, TR_TMPL_ERROR_LIMIT, "%s: %" G_GUINT64_FORMAT
		            " bytes, the limit is %u", path, (guint64)st.st_size, MAX_SOURCE);
		return NULL;
	}
	if (!g_file_get_contents(path, &data, &len, &local)) {
		g_set_error(error, TR_TMPL_ERROR, TR_TMPL_ERROR_FILE, "%s", local->message);
		g_error_free(local);
		return NULL;
	}
	tr_tmpl_file *f = tr_tmpl_file_parse(path, data, len, error);
	g_free(data);
	return f;
}

void tr_tmpl_file_free(tr_tmpl_file **fp)
{
	tr_tmpl_file *f = *fp;
	if (f == NULL)
		return;
	*fp = NULL;
	g_ptr_array_free(f->headers, TRUE);
	g_ptr_array_free(f->names, TRUE);
	tr_tmpl_free(&f->body);
	g_free(f->path);
	g_free(f);
}

guint tr_tmpl_file_n_headers(const tr_tmpl_file *f)
{
	return f->headers->len;
}

const char *tr_tmpl_file_header_name(const tr_tmpl_file *f, guint i)
{
	g_return_val_if_fail(i < f->names->len, NULL);
	return g_ptr_array_index(f->names, i);
}

const tr_tmpl *tr_tmpl_file_header(const tr_tmpl_file *f, guint i)
{
	g_return_val_if_fail(i < f->headers->len, NULL);
	return g_ptr_array_index(f->headers, i);
}

const tr_tmpl *tr_tmpl_file_lookup(const tr_tmpl_file *f, const char *name)
{
	for (guint i = 0; i < f->names->len; i++)
		if (g_ascii_strcasecmp(g_ptr_array_index(f->names, i), name) == 0)
			return g_ptr_array_index(f->headers, i);
	return NULL;
}

const tr_tmpl *tr_tmpl_file_body(const tr_tmpl_file *f)
{
	return f->body;
}

gboolean tr_tmpl_file_check(const tr_tmpl_file *f, const char *const *known, GError **error)
{
	GString *msg = g_string_new(NULL);
	int unknown = 0;
	for (guint i = 0; i < f->headers->len; i++)
		unknown += check_into(g_ptr_array_index(f->headers, i), known, msg, unknown);
	unknown += check_into(f->body, known, msg, unknown);
	return check_finish(msg, unknown, error);
}
