/* html.c — HTML to text with libxml2's SAX HTML parser, see html.h
 *
 * Why SAX and not htmlReadMemory's tree: a tree costs ~160 bytes per
 * element (5 MB of "<p>x" is 400 MB of nodes) and libxml2's tree builder
 * silently stops at depth 256, dropping everything after.  The SAX events
 * give us the same parse with memory bounded by our own depth cap, and we
 * can stop the parser as soon as max_bytes of text exist.
 *
 * The converter is a small line-oriented writer: text is written lazily,
 * block boundaries only raise the number of newlines wanted before the next
 * piece of text ("pending_breaks"), so nothing ever has to be taken back,
 * and the quote prefix, list indent and bullet are written when a line
 * gets its first text.
 */
#include "core/html.h"

#include <limits.h>
#include <stdint.h>
#include <string.h>

#include <libxml/HTMLparser.h>
#include <libxml/parser.h>

enum kind {
	K_INLINE = 0,
	K_SKIP,       /* dropped with its content */
	K_BLOCK,      /* own line */
	K_PARA,       /* own paragraph (blank line around) */
	K_BR,
	K_HR,
	K_LIST,
	K_OLIST,
	K_LI,
	K_TABLE,
	K_ROW,
	K_CELL,
	K_PRE,
	K_BLOCKQUOTE,
	K_IMG,
	K_A,
};

struct tag {
	const char *name;
	enum kind kind;
};

/* Sorted by name (strcmp): looked up with bsearch.  Unknown tags
 * (including Word's o:p) are inline. */
static const struct tag tags[] = {
	{ "a", K_A },
	{ "address", K_BLOCK },
	{ "applet", K_SKIP },
	{ "article", K_BLOCK },
	{ "aside", K_BLOCK },
	{ "audio", K_SKIP },
	{ "blockquote", K_BLOCKQUOTE },
	{ "body", K_BLOCK },
	{ "br", K_BR },
	{ "canvas", K_SKIP },
	{ "caption", K_BLOCK },
	{ "center", K_BLOCK },
	{ "dd", K_BLOCK },
	{ "details", K_BLOCK },
	{ "dialog", K_BLOCK },
	{ "dir", K_LIST },
	{ "div", K_BLOCK },
	{ "dl", K_BLOCK },
	{ "dt", K_BLOCK },
	{ "embed", K_SKIP },
	{ "fieldset", K_BLOCK },
	{ "figcaption", K_BLOCK },
	{ "figure", K_BLOCK },
	{ "footer", K_BLOCK },
	{ "form", K_BLOCK },
	{ "frameset", K_SKIP },
	{ "h1", K_PARA },
	{ "h2", K_PARA },
	{ "h3", K_PARA },
	{ "h4", K_PARA },
	{ "h5", K_PARA },
	{ "h6", K_PARA },
	{ "head", K_SKIP },
	{ "header", K_BLOCK },
	{ "hgroup", K_BLOCK },
	{ "hr", K_HR },
	{ "iframe", K_SKIP },
	{ "img", K_IMG },
	{ "legend", K_BLOCK },
	{ "li", K_LI },
	{ "listing", K_PRE },
	{ "main", K_BLOCK },
	{ "math", K_SKIP },
	{ "menu", K_LIST },
	{ "nav", K_BLOCK },
	{ "noembed", K_SKIP },
	{ "noframes", K_SKIP },
	{ "noscript", K_SKIP },
	{ "object", K_SKIP },
	{ "ol", K_OLIST },
	{ "p", K_PARA },
	{ "plaintext", K_PRE },
	{ "pre", K_PRE },
	{ "script", K_SKIP },
	{ "section", K_BLOCK },
	{ "select", K_SKIP },
	{ "style", K_SKIP },
	{ "summary", K_BLOCK },
	{ "svg", K_SKIP },
	{ "table", K_TABLE },
	{ "td", K_CELL },
	{ "template", K_SKIP },
	{ "textarea", K_PRE },
	{ "th", K_CELL },
	{ "title", K_SKIP },
	{ "tr", K_ROW },
	{ "ul", K_LIST },
	{ "video", K_SKIP },
	{ "xmp", K_PRE },
};

/* frame flags */
#define F_LEVEL 0x01u    /* opened a quote level */
#define F_SIG 0x02u      /* marked signature block */
#define F_LIST 0x04u     /* counted in list_depth */
#define F_LI 0x08u       /* is li_top */
#define F_PRE 0x10u      /* counted in pre_depth */

struct frame {
	uint8_t kind;
	uint8_t flags;
	int saved_list;      /* list_top (li_top) before this list (li) element */
	unsigned bullet_width; /* <li>: continuation lines are indented this much */
	unsigned counter;    /* <ol> item number */
	size_t link_mark;    /* output offset where the link text starts */
	char *href;          /* http(s) target of an <a> (pool) */
};

/* Lives in the caller's pool, like the output buffer: the converter
 * mallocs nothing itself (per-call malloc/free of these blocks made glibc
 * trim and re-grow the heap on every message). */
struct conv {
	tr_pool *pool;
	htmlParserCtxtPtr ctxt;
	/* element stack */
	struct frame stack[TR_HTML_MAX_DEPTH + 1];
	unsigned depth;
	unsigned skip_depth;        /* stack size at the skipped element, 0 = none */
	unsigned quote_levels;
	unsigned level_frame[TR_HTML_MAX_DEPTH + 1];
	gboolean level_absorbs[TR_HTML_MAX_DEPTH + 1];
	gboolean quote_rest;        /* Outlook: everything from here on is quoted */
	unsigned pre_depth;
	gboolean pre_fresh;         /* drop one newline right after <pre> */
	unsigned list_depth;
	int list_top;               /* frame index of the innermost list, -1 */
	int li_top;                 /* frame index of the innermost <li>, -1 */
	char bullet[16];
	size_t bullet_len;
	int link_waiting;           /* frame index of an <a> without text yet, -1 */
	/* output */
	char *data;
	size_t len, cap, max;
	size_t line_start;          /* offset of the current line */
	size_t content_start;       /* ... and of its text, after prefix/bullet */
	unsigned nl_run;            /* newlines at the end of data */
	unsigned pending_breaks;    /* newlines wanted before the next text */
	gboolean pending_space, pending_sep, pending_sig;
	gboolean stopped, truncated;
};

enum byte_class { BC_TEXT = 0, BC_SPACE, BC_DROP, BC_SPECIAL };

/* Bytes that need a second look: ASCII whitespace collapses, other C0
 * controls and DEL are dropped, and these UTF-8 lead bytes may start a
 * space-like or zero-width character. */
static uint8_t byte_class(unsigned char b)
{
	if (b == ' ' || b == '\t' || b == '\n' || b == '\r' || b == '\f' || b == '\v')
		return BC_SPACE;
	if (b < 0x20 || b == 0x7f)
		return BC_DROP;
	if (b == 0xC2 || b == 0xCD || b == 0xE2 || b == 0xE3 || b == 0xEF)
		return BC_SPECIAL;
	return BC_TEXT;
}

static uint8_t byte_classes[256];

static void init_tables(void)
{
	for (unsigned i = 0; i < 256; i++)
		byte_classes[i] = byte_class((unsigned char)i);
	for (size_t i = 1; i < G_N_ELEMENTS(tags); i++) {
		if (strcmp(tags[i - 1].name, tags[i].name) >= 0)
			g_error("html.c: tag table not sorted at %s", tags[i].name);
	}
}

void tr_html_init(void)
{
	static gsize once = 0;
	if (g_once_init_enter(&once)) {
		xmlInitParser();
		init_tables();
		g_once_init_leave(&once, 1);
	}
}

/* What a multi-byte character at s is: BC_SPACE, BC_DROP or BC_TEXT;
 * *n_r is how many bytes it covers (1 for "ordinary", let the caller
 * continue byte by byte). */
static uint8_t special_char(const unsigned char *s, const unsigned char *end, size_t *n_r)
{
	size_t avail = (size_t)(end - s);
	*n_r = 1;
	if (s[0] == 0xC2 && avail >= 2) {
		if (s[1] == 0xA0) {                   /* U+00A0 no-break space */
			*n_r = 2;
			return BC_SPACE;
		}
		if (s[1] == 0xAD) {                   /* U+00AD soft hyphen */
			*n_r = 2;
			return BC_DROP;
		}
	} else if (s[0] == 0xCD && avail >= 2 && s[1] == 0x8F) { /* U+034F */
		*n_r = 2;
		return BC_DROP;
	} else if (s[0] == 0xE2 && avail >= 3) {
		if (s[1] == 0x80) {
			if (s[2] >= 0x8B && s[2] <= 0x8D) { /* U+200B..U+200D zero width */
				*n_r = 3;
				return BC_DROP;
			}
			if (s[2] <= 0x8A || s[2] == 0xA8 || s[2] == 0xA9 || s[2] == 0xAF) {
				*n_r = 3;                     /* U+2000..200A, 2028, 2029, 202F */
				return BC_SPACE;
			}
		} else if (s[1] == 0x81 && s[2] == 0xA0) { /* U+2060 word joiner */
			*n_r = 3;
			return BC_DROP;
		}
	} else if (s[0] == 0xE3 && avail >= 3 && s[1] == 0x80 && s[2] == 0x80) {
		*n_r = 3;                             /* U+3000 ideographic space */
		return BC_SPACE;
	} else if (s[0] == 0xEF && avail >= 3 && s[1] == 0xBB && s[2] == 0xBF) {
		*n_r = 3;                             /* U+FEFF */
		return BC_DROP;
	}
	return BC_TEXT;
}

/* ---- output ---- */

static void stop(struct conv *c)
{
	c->stopped = TRUE;
	c->truncated = TRUE;
	xmlStopParser(c->ctxt);
}

/* Room for need bytes and a NUL.  Old buffers stay in the pool; with
 * doubling they add up to less than the final size. */
static void grow(struct conv *c, size_t need)
{
	size_t cap = c->cap != 0 ? c->cap : 1024;
	while (cap < need + 1)
		cap *= 2;
	if (c->max < SIZE_MAX && cap > c->max + 1)
		cap = c->max + 1;
	char *data = tr_pool_alloc(c->pool, cap);
	if (c->len > 0)
		memcpy(data, c->data, c->len);
	c->data = data;
	c->cap = cap;
}

/* Append n bytes, or as many as fit under max (cut on a character
 * boundary) and stop the conversion. */
static gboolean out_put(struct conv *c, const void *p, size_t n)
{
	const char *s = p;
	if (c->stopped)
		return FALSE;
	gboolean fits = n <= c->max - c->len;
	if (!fits) {
		size_t fit = c->max - c->len;
		while (fit > 0 && ((unsigned char)s[fit] & 0xC0) == 0x80)
			fit--;
		n = fit;
	}
	if (n > 0) {
		if (c->len + n + 1 > c->cap)
			grow(c, c->len + n);
		memcpy(c->data + c->len, s, n);
		c->len += n;
	}
	if (!fits)
		stop(c);
	return fits;
}

static void want_break(struct conv *c, unsigned n)
{
	if (c->pending_breaks < n)
		c->pending_breaks = n;
}

static unsigned quote_depth(const struct conv *c)
{
	return c->quote_levels + (c->quote_rest ? 1u : 0u);
}

/* Is the line before the current (empty) line a "-- " delimiter? */
static gboolean previous_line_is_sig_delimiter(const struct conv *c)
{
	if (c->nl_run != 1 || c->len < 3)
		return FALSE;
	size_t end = c->len - 1;
	size_t start = end;
	while (start > 0 && c->data[start - 1] != '\n')
		start--;
	size_t n = end - start;
	return (n == 2 || n == 3) && memcmp(c->data + start, "-- ", n) == 0;
}

static gboolean write_line_start(struct conv *c)
{
	static const char prefix[] =
		"> > > > > > > > > > > > > > > > ";
	G_STATIC_ASSERT(sizeof(prefix) - 1 >= 2 * TR_HTML_MAX_QUOTE_PREFIX);
	static const char spaces[2 * TR_HTML_MAX_INDENT + 2] =
		"                  ";

	if (c->pending_sig) {
		c->pending_sig = FALSE;
		if (!previous_line_is_sig_delimiter(c)) {
			if (!out_put(c, "-- \n", 4))
				return FALSE;
			c->nl_run = 1;
		}
	}
	c->line_start = c->len;
	unsigned q = quote_depth(c);
	if (q > TR_HTML_MAX_QUOTE_PREFIX)
		q = TR_HTML_MAX_QUOTE_PREFIX;
	if (q > 0 && !out_put(c, prefix, 2 * q))
		return FALSE;
	if (c->list_depth > 0) {
		unsigned lv = c->list_depth < TR_HTML_MAX_INDENT ? c->list_depth : TR_HTML_MAX_INDENT;
		size_t indent = 2 * (lv - 1);
		if (c->bullet_len == 0 && c->li_top >= 0)
			indent += c->stack[c->li_top].bullet_width;
		if (indent > 0 && !out_put(c, spaces, indent))
			return FALSE;
	}
	if (c->bullet_len > 0) {
		size_t n = c->bullet_len;
		c->bullet_len = 0;
		if (!out_put(c, c->bullet, n))
			return FALSE;
	}
	c->content_start = c->len;
	return TRUE;
}

/* Before the newline that ends a line with text: drop its trailing blanks,
 * and the whole line when only a prefix is left (a whitespace-only line
 * in <pre>, say). */
static void end_line(struct conv *c)
{
	/* The signature delimiter keeps its space, even when whitespace
	 * collapsing left it pending ("-- <br>" in Gmail's markup). */
	if (c->len - c->content_start == 3 && memcmp(c->data + c->content_start, "-- ", 3) == 0)
		return;
	if (c->len - c->content_start == 2 && memcmp(c->data + c->content_start, "--", 2) == 0) {
		if (c->pending_space)
			out_put(c, " ", 1);
		return;
	}
	while (c->len > c->content_start &&
	       (c->data[c->len - 1] == ' ' || c->data[c->len - 1] == '\t'))
		c->len--;
	if (c->len > c->content_start)
		return;
	c->len = c->line_start;
	c->nl_run = 0;
	while (c->nl_run < c->len && c->data[c->len - 1 - c->nl_run] == '\n')
		c->nl_run++;
}

/* Called before any visible text: newlines, prefix or separator. */
static gboolean begin_content(struct conv *c)
{
	if (c->stopped)
		return FALSE;
	if (c->len > 0) {
		unsigned want = c->pending_breaks;
		if (want > 3 && c->pre_depth == 0)
			want = 3;
		if (want > 0 && c->nl_run == 0)
			end_line(c);
		while (c->nl_run < want) {
			if (!out_put(c, "\n", 1))
				return FALSE;
			c->nl_run++;
		}
	}
	c->pending_breaks = 0;
	if (c->len == 0 || c->nl_run > 0) {
		if (!write_line_start(c))
			return FALSE;
	} else if (c->pending_sep) {
		if (!out_put(c, " | ", 3))
			return FALSE;
	} else if (c->pending_space) {
		if (!out_put(c, " ", 1))
			return FALSE;
	}
	c->pending_space = c->pending_sep = FALSE;
	c->nl_run = 0;
	if (c->link_waiting >= 0) {
		c->stack[c->link_waiting].link_mark = c->len;
		c->link_waiting = -1;
	}
	return TRUE;
}

static void text_pre(struct conv *c, const unsigned char *s, const unsigned char *end)
{
	if (c->pre_fresh && s < end) {
		c->pre_fresh = FALSE;
		if (*s == '\r')
			s++;
		if (s < end && *s == '\n')
			s++;
	}
	while (s < end && !c->stopped) {
		const unsigned char *run = s;
		while (s < end && (*s >= 0x20 || *s == '\t') && *s != 0x7f)
			s++;
		if (s > run && (!begin_content(c) || !out_put(c, run, (size_t)(s - run))))
			return;
		if (s >= end)
			break;
		if (*s == '\n' && c->len > 0) {
			unsigned base = c->pending_breaks > c->nl_run ? c->pending_breaks : c->nl_run;
			c->pending_breaks = base + 1;
		}
		s++;
	}
}

static void on_text(void *ud, const xmlChar *text, int n)
{
	struct conv *c = ud;
	if (c->stopped || c->skip_depth != 0 || n <= 0)
		return;
	const unsigned char *s = text, *end = s + n;
	if (c->pre_depth > 0) {
		text_pre(c, s, end);
		return;
	}
	while (s < end) {
		const unsigned char *run = s;
		size_t clen = 0;
		uint8_t cls = BC_TEXT;
		while (s < end) {
			cls = byte_classes[*s];
			if (cls == BC_TEXT) {
				s++;
			} else if (cls == BC_SPECIAL) {
				cls = special_char(s, end, &clen);
				if (cls != BC_TEXT)
					break;
				s++;
			} else {
				clen = 1;
				break;
			}
		}
		if (s > run && (!begin_content(c) || !out_put(c, run, (size_t)(s - run))))
			return;
		if (s >= end)
			break;
		if (cls == BC_SPACE)
			c->pending_space = TRUE;
		s += clen;
	}
}

/* ---- attributes ---- */

struct attrs {
	const char *class_;
	const char *id;
	const char *style;
	const char *type;
	const char *href;
	const char *alt;
	const char *width;
	const char *height;
	gboolean hidden;
};

static void read_attrs(const xmlChar **atts, struct attrs *a)
{
	memset(a, 0, sizeof(*a));
	if (atts == NULL)
		return;
	for (size_t i = 0; atts[i] != NULL; i += 2) {
		const char *name = (const char *)atts[i];
		const char *value = (const char *)atts[i + 1];
		switch (name[0]) {
		case 'a':
			if (strcmp(name, "alt") == 0)
				a->alt = value;
			break;
		case 'c':
			if (strcmp(name, "class") == 0)
				a->class_ = value;
			break;
		case 'h':
			if (strcmp(name, "href") == 0)
				a->href = value;
			else if (strcmp(name, "height") == 0)
				a->height = value;
			else if (strcmp(name, "hidden") == 0)
				a->hidden = TRUE;
			break;
		case 'i':
			if (strcmp(name, "id") == 0)
				a->id = value;
			break;
		case 's':
			if (strcmp(name, "style") == 0)
				a->style = value;
			break;
		case 't':
			if (strcmp(name, "type") == 0)
				a->type = value;
			break;
		case 'w':
			if (strcmp(name, "width") == 0)
				a->width = value;
			break;
		default:
			break;
		}
	}
}

static gboolean has_class(const char *list, const char *token)
{
	if (list == NULL)
		return FALSE;
	size_t tlen = strlen(token);
	const char *p = list;
	while (*p != '\0') {
		while (g_ascii_isspace(*p))
			p++;
		const char *start = p;
		while (*p != '\0' && !g_ascii_isspace(*p))
			p++;
		if ((size_t)(p - start) == tlen && g_ascii_strncasecmp(start, token, tlen) == 0)
			return TRUE;
	}
	return FALSE;
}

static gboolean ends_with_ci(const char *s, const char *suffix)
{
	if (s == NULL)
		return FALSE;
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && g_ascii_strcasecmp(s + n - m, suffix) == 0;
}

/* The style attribute lowercased without whitespace (first 1 KB). */
static void squeeze_style(const char *style, char *buf, size_t size)
{
	size_t n = 0;
	for (const char *p = style; *p != '\0' && n + 1 < size; p++) {
		if (!g_ascii_isspace(*p))
			buf[n++] = g_ascii_tolower(*p);
	}
	buf[n] = '\0';
}

struct style_facts {
	gboolean hidden;
	gboolean outlook_reply_header;
};

static void read_style(const char *style, struct style_facts *f)
{
	char buf[1024];
	f->hidden = f->outlook_reply_header = FALSE;
	if (style == NULL || style[0] == '\0')
		return;
	squeeze_style(style, buf, sizeof(buf));
	if (strstr(buf, "display:none") != NULL || strstr(buf, "visibility:hidden") != NULL ||
	    strstr(buf, "mso-hide:all") != NULL)
		f->hidden = TRUE;
	if (strstr(buf, "border:none") != NULL &&
	    (strstr(buf, "border-top:solid#e1e1e1") != NULL ||
	     strstr(buf, "border-top:solid#b5c4df") != NULL))
		f->outlook_reply_header = TRUE;
}

static gboolean is_tiny_dimension(const char *v)
{
	if (v == NULL)
		return FALSE;
	while (g_ascii_isspace(*v))
		v++;
	if (*v != '0' && *v != '1')
		return FALSE;
	v++;
	return *v == '\0' || g_ascii_strcasecmp(v, "px") == 0;
}

static gboolean looks_like_file_name(const char *s, size_t n)
{
	static const char *const ext[] = { ".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".svg" };
	for (size_t i = 0; i < G_N_ELEMENTS(ext); i++) {
		size_t m = strlen(ext[i]);
		if (n >= m && g_ascii_strncasecmp(s + n - m, ext[i], m) == 0)
			return TRUE;
	}
	return FALSE;
}

static void trim(const char **s, size_t *n)
{
	while (*n > 0 && g_ascii_isspace((*s)[0])) {
		(*s)++;
		(*n)--;
	}
	while (*n > 0 && g_ascii_isspace((*s)[*n - 1]))
		(*n)--;
}

static gboolean has_prefix_ci(const char *s, size_t n, const char *prefix)
{
	size_t m = strlen(prefix);
	return n >= m && g_ascii_strncasecmp(s, prefix, m) == 0;
}

/* An http(s) URL we are willing to show: no whitespace, no brackets. */
static char *acceptable_href(tr_pool *pool, const char *href)
{
	if (href == NULL)
		return NULL;
	size_t n = strlen(href);
	trim(&href, &n);
	if (n > TR_HTML_MAX_LINK_URL || n < 8)
		return NULL;
	if (!has_prefix_ci(href, n, "http://") && !has_prefix_ci(href, n, "https://"))
		return NULL;
	for (size_t i = 0; i < n; i++) {
		unsigned char b = (unsigned char)href[i];
		if (b <= 0x20 || b == 0x7f || b == '<' || b == '>')
			return NULL;
	}
	return tr_pool_strndup(pool, href, n);
}

/* The comparable core of a URL or link text: no scheme, "www.", or
 * trailing slash. */
static void url_core(const char **s, size_t *n)
{
	trim(s, n);
	static const char *const schemes[] = { "https://", "http://", "mailto:" };
	for (size_t i = 0; i < G_N_ELEMENTS(schemes); i++) {
		size_t m = strlen(schemes[i]);
		if (has_prefix_ci(*s, *n, schemes[i])) {
			*s += m;
			*n -= m;
			break;
		}
	}
	if (has_prefix_ci(*s, *n, "www.")) {
		*s += 4;
		*n -= 4;
	}
	while (*n > 0 && (*s)[*n - 1] == '/')
		(*n)--;
}

static void finish_link(struct conv *c, struct frame *f)
{
	if (f->href == NULL || f->link_mark == SIZE_MAX || f->link_mark > c->len)
		return;
	const char *text = c->data + f->link_mark;
	size_t text_len = c->len - f->link_mark;
	const char *url = f->href;
	size_t url_len = strlen(url);
	url_core(&text, &text_len);
	url_core(&url, &url_len);
	if (text_len == 0 || (text_len == url_len && g_ascii_strncasecmp(text, url, url_len) == 0))
		return;
	c->pending_space = TRUE;
	if (begin_content(c) && out_put(c, "<", 1) && out_put(c, f->href, strlen(f->href)))
		out_put(c, ">", 1);
}

static void put_alt(struct conv *c, const struct attrs *a)
{
	const char *alt = a->alt;
	if (alt == NULL || is_tiny_dimension(a->width) || is_tiny_dimension(a->height))
		return;
	size_t n = strlen(alt);
	trim(&alt, &n);
	if (n == 0 || n > TR_HTML_MAX_ALT || looks_like_file_name(alt, n))
		return;
	on_text(c, (const xmlChar *)alt, (int)n);
}

static enum kind lookup_kind(const char *name)
{
	size_t lo = 0, hi = G_N_ELEMENTS(tags);
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int cmp = strcmp(name, tags[mid].name);
		if (cmp == 0)
			return tags[mid].kind;
		if (cmp < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return K_INLINE;
}

static gboolean starts_quote_rest(const struct attrs *a, const struct style_facts *sf, enum kind kind)
{
	if (a->id != NULL && (ends_with_ci(a->id, "appendonsend") || ends_with_ci(a->id, "divRplyFwdMsg") ||
	                      ends_with_ci(a->id, "OLK_SRC_BODY_SECTION")))
		return TRUE;
	return kind == K_BLOCK && sf->outlook_reply_header;
}

static void open_level(struct conv *c, struct frame *f, unsigned index, gboolean absorbs)
{
	c->level_frame[c->quote_levels] = index;
	c->level_absorbs[c->quote_levels] = absorbs;
	c->quote_levels++;
	f->flags |= F_LEVEL;
	want_break(c, 1);
}

static void on_start(void *ud, const xmlChar *xname, const xmlChar **atts)
{
	struct conv *c = ud;
	if (c->stopped)
		return;
	if (c->depth >= TR_HTML_MAX_DEPTH) {
		stop(c);
		return;
	}
	unsigned index = c->depth++;
	struct frame *f = &c->stack[index];
	memset(f, 0, sizeof(*f));
	f->link_mark = SIZE_MAX;
	if (c->skip_depth != 0)
		return;

	const char *name = (const char *)xname;
	enum kind kind = lookup_kind(name);
	f->kind = (uint8_t)kind;
	struct attrs a;
	read_attrs(atts, &a);
	struct style_facts sf;
	read_style(a.style, &sf);
	if (kind == K_SKIP || a.hidden || sf.hidden) {
		c->skip_depth = c->depth;
		return;
	}

	if (!c->quote_rest && starts_quote_rest(&a, &sf, kind)) {
		c->quote_rest = TRUE;
		want_break(c, 1);
	}
	if (kind == K_BLOCKQUOTE) {
		gboolean absorbed = FALSE;
		if (c->quote_levels > 0 && c->level_absorbs[c->quote_levels - 1]) {
			unsigned opener = c->level_frame[c->quote_levels - 1];
			absorbed = opener + 1 == index || has_class(a.class_, "gmail_quote") ||
			           has_class(a.class_, "protonmail_quote");
		}
		if (!absorbed)
			open_level(c, f, index, FALSE);
	} else if (a.class_ != NULL) {
		if (has_class(a.class_, "gmail_quote") || has_class(a.class_, "protonmail_quote") ||
		    has_class(a.class_, "yahoo_quoted"))
			open_level(c, f, index, TRUE);
		else if (has_class(a.class_, "moz-cite-prefix"))
			open_level(c, f, index, FALSE);
	}
	if ((has_class(a.class_, "gmail_signature") ||
	     (a.id != NULL && g_ascii_strcasecmp(a.id, "Signature") == 0)) &&
	    quote_depth(c) == 0) {
		f->flags |= F_SIG;
		c->pending_sig = TRUE;
		want_break(c, 1);
	}

	switch (kind) {
	case K_BLOCK:
	case K_TABLE:
	case K_ROW:
	case K_BLOCKQUOTE:
		want_break(c, 1);
		break;
	case K_PARA:
		want_break(c, 2);
		break;
	case K_PRE:
		want_break(c, 2);
		c->pre_depth++;
		c->pre_fresh = TRUE;
		f->flags |= F_PRE;
		break;
	case K_BR:
		if (c->len > 0) {
			unsigned base = c->pending_breaks > c->nl_run ? c->pending_breaks : c->nl_run;
			c->pending_breaks = base + 1 < 3 ? base + 1 : 3;
		}
		break;
	case K_HR:
		want_break(c, 1);
		if (begin_content(c))
			out_put(c, "---", 3);
		want_break(c, 1);
		break;
	case K_LIST:
	case K_OLIST:
		want_break(c, c->list_depth == 0 ? 2 : 1);
		c->list_depth++;
		f->flags |= F_LIST;
		f->saved_list = c->list_top;
		c->list_top = (int)index;
		break;
	case K_LI:
		want_break(c, 1);
		f->flags |= F_LI;
		if (c->list_top >= 0 && c->stack[c->list_top].kind == K_OLIST) {
			unsigned number = ++c->stack[c->list_top].counter;
			c->bullet_len = (size_t)g_snprintf(c->bullet, sizeof(c->bullet), "%u. ", number);
		} else {
			memcpy(c->bullet, "- ", 2);
			c->bullet_len = 2;
		}
		f->bullet_width = (unsigned)c->bullet_len;
		f->saved_list = c->li_top;
		c->li_top = (int)index;
		break;
	case K_CELL:
		if (c->len > 0 && c->nl_run == 0 && c->pending_breaks == 0)
			c->pending_sep = TRUE;
		break;
	case K_IMG:
		put_alt(c, &a);
		break;
	case K_A:
		f->href = acceptable_href(c->pool, a.href);
		if (f->href != NULL)
			c->link_waiting = (int)index;
		break;
	default:
		break;
	}
}

static void on_end(void *ud, const xmlChar *name)
{
	struct conv *c = ud;
	(void)name;
	if (c->depth == 0)
		return;
	unsigned index = --c->depth;
	struct frame *f = &c->stack[index];
	if (c->skip_depth != 0) {
		if (c->skip_depth == index + 1)
			c->skip_depth = 0;
		return;
	}
	if (c->link_waiting == (int)index)
		c->link_waiting = -1;
	if (c->stopped)
		return;
	switch ((enum kind)f->kind) {
	case K_BLOCK:
	case K_TABLE:
	case K_ROW:
	case K_BLOCKQUOTE:
		want_break(c, 1);
		break;
	case K_PARA:
		want_break(c, 2);
		break;
	case K_PRE:
		want_break(c, 2);
		break;
	case K_LIST:
	case K_OLIST:
		want_break(c, c->list_depth <= 1 ? 2 : 1);
		break;
	case K_LI:
		want_break(c, 1);
		c->bullet_len = 0;
		break;
	case K_A:
		finish_link(c, f);
		break;
	default:
		break;
	}
	if (f->flags & F_PRE)
		c->pre_depth--;
	if (f->flags & F_LIST) {
		c->list_depth--;
		c->list_top = f->saved_list;
	}
	if (f->flags & F_LI) {
		c->li_top = f->saved_list;
	}
	if (f->flags & F_LEVEL) {
		c->quote_levels--;
		want_break(c, 1);
	}
	if (f->flags & F_SIG)
		c->pending_sig = FALSE;
}

/* Drop trailing whitespace and a last line that is only a quote prefix
 * (left over when max_bytes cut right after it). */
static void trim_tail(struct conv *c)
{
	for (;;) {
		while (c->len > 0 && g_ascii_isspace(c->data[c->len - 1]))
			c->len--;
		size_t start = c->len;
		while (start > 0 && c->data[start - 1] != '\n')
			start--;
		if (start == c->len || !c->truncated)
			return;
		for (size_t i = start; i < c->len; i++) {
			if (c->data[i] != '>' && c->data[i] != ' ')
				return;
		}
		c->len = start;
	}
}

char *tr_html_to_text(tr_pool *pool, const char *html, size_t len,
                      size_t max_bytes, gboolean *truncated_r)
{
	tr_html_init();
	if (truncated_r != NULL)
		*truncated_r = FALSE;
	if (html == NULL || len == 0)
		return tr_pool_strdup(pool, "");

	gboolean input_cut = FALSE;
	if (len > TR_HTML_MAX_INPUT || len > INT_MAX) {
		len = TR_HTML_MAX_INPUT < INT_MAX ? TR_HTML_MAX_INPUT : INT_MAX;
		input_cut = TRUE;
	}
	/* libxml2 passes invalid bytes through and treats NUL as a space or
	 * the end: repair first (one validation pass on good input). */
	char *repaired = NULL;
	if (!g_utf8_validate_len(html, len, NULL)) {
		repaired = g_utf8_make_valid(html, (gssize)len);
		html = repaired;
		len = strlen(repaired);
		if (len > INT_MAX)
			len = INT_MAX;
	}

	struct conv *c = tr_pool_alloc(pool, sizeof(*c));
	c->pool = pool;
	c->max = max_bytes;
	c->list_top = -1;
	c->li_top = -1;
	c->link_waiting = -1;
	c->ctxt = htmlNewParserCtxt();
	if (c->ctxt == NULL)
		g_error("tr_html_to_text: out of memory");
	xmlSAXHandler sax;
	memset(&sax, 0, sizeof(sax));
	sax.startElement = on_start;
	sax.endElement = on_end;
	sax.characters = on_text;
	sax.ignorableWhitespace = on_text;
	sax.cdataBlock = on_text;
	*c->ctxt->sax = sax;
	c->ctxt->userData = c;

	xmlDocPtr doc = htmlCtxtReadMemory(c->ctxt, html, (int)len, NULL, "UTF-8",
	                                   HTML_PARSE_RECOVER | HTML_PARSE_NOERROR |
	                                   HTML_PARSE_NOWARNING | HTML_PARSE_NONET |
	                                   HTML_PARSE_COMPACT);
	if (doc != NULL)
		xmlFreeDoc(doc);
	htmlFreeParserCtxt(c->ctxt);
	c->ctxt = NULL;

	if (c->len > 0 && c->nl_run == 0)
		end_line(c);
	trim_tail(c);
	char *result;
	if (c->len == 0) {
		result = tr_pool_strdup(pool, "");
	} else if (g_utf8_validate_len(c->data, c->len, NULL)) {
		c->data[c->len] = '\0';
		result = c->data;
	} else {
		/* Not expected from valid input; never hand out bad UTF-8. */
		char *valid = g_utf8_make_valid(c->data, (gssize)c->len);
		size_t n = strlen(valid);
		if (n > max_bytes) {
			n = max_bytes;
			while (n > 0 && ((unsigned char)valid[n] & 0xC0) == 0x80)
				n--;
			c->truncated = TRUE;
		}
		result = tr_pool_strndup(pool, valid, n);
		g_free(valid);
	}
	if (truncated_r != NULL)
		*truncated_r = c->truncated || input_cut;
	g_free(repaired);
	return result;
}
