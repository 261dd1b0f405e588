/*
 * template.h — a small, safe template language (tr_tmpl_*)
 *
 * Acknowledgments, escalation handoffs, SLA notices and chat posts are
 * rendered from templates written in a Jinja-like subset (the reference is
 * docs/templates.md):
 *
 *     {{ ticket.id }}   {{ subject | truncate:60 }}   {{ due | date:"%A %H:%M %Z" }}
 *     {% if customer.tier == "enterprise" and not muted %}…{% elif x %}…{% else %}…{% endif %}
 *     {% for a in articles %}{{ loop.index }}. {{ a.title }}{% else %}none{% endfor %}
 *     {# comment #}      {%- trims whitespace before, -%} trims after
 *
 * The language cannot run code, read files or loop without bound: a
 * template only reads the JSON context it is given, every construct has a
 * named limit (tr_tmpl_limits()), and rendering stops with an error when
 * the output or the work budget is exhausted.
 *
 * Values come from customer mail and are hostile.  In TR_TMPL_TEXT mode
 * substituted values lose control characters other than TAB and LF.  In
 * TR_TMPL_HEADER mode the whole rendered value becomes one line with no
 * control characters, and it is RFC 2047-encoded when it is not plain
 * printable ASCII or when it contains something a reader would decode
 * ("=?"), so nothing from a message can reach a header unescaped.
 *
 * Errors: expected failures return NULL/FALSE and set a GError in
 * TR_TMPL_ERROR whose message starts with "NAME:LINE:COL: " (the template
 * name, 1-based line, 1-based column counted in characters).
 *
 * Threads: a compiled tr_tmpl is immutable; one may be rendered from
 * several threads at once.  Header mode needs GMime, which this module
 * initialises itself (once, g_once) if the caller has not.  Time zones
 * used by `date` are loaded once and kept for the life of the process
 * (at most 128, behind a mutex): GLib re-reads the zoneinfo file for
 * every unreferenced zone, ~170 µs a time.
 */
#ifndef TR_TEMPLATE_H
#define TR_TEMPLATE_H

#include <glib.h>
#include <json-glib/json-glib.h>
#include <stddef.h>

typedef struct tr_tmpl tr_tmpl;
typedef struct tr_tmpl_file tr_tmpl_file;

typedef enum {
	TR_TMPL_TEXT,   /* mail body, chat post: newlines kept */
	TR_TMPL_HEADER, /* one header value: one line, RFC 2047 when needed */
} tr_tmpl_mode;

#define TR_TMPL_ERROR (tr_tmpl_error_quark())
typedef enum {
	TR_TMPL_ERROR_SYNTAX,           /* compile: malformed template */
	TR_TMPL_ERROR_UNKNOWN_FILTER,   /* compile: filter name not in the language */
	TR_TMPL_ERROR_UNKNOWN_VARIABLE, /* check: a path not in the known list */
	TR_TMPL_ERROR_LIMIT,            /* compile or render: a named limit hit */
	TR_TMPL_ERROR_FILE,             /* file: unreadable, bad header section */
} tr_tmpl_error_code;

GQuark tr_tmpl_error_quark(void);

/*
 * Named limits, one table (name, value, min, max, what it bounds).  The
 * values are fixed at build time; the table exists so that
 * `triage check-config` and the docs print what is in force.
 */
typedef struct {
	const char *name;
	size_t value;
	size_t min;
	size_t max;
	const char *doc;
} tr_tmpl_limit;

/* The limit table, terminated by an entry whose name is NULL.  Static. */
const tr_tmpl_limit *tr_tmpl_limits(void);

/*
 * Compile src (len bytes; need not be NUL-terminated; must be UTF-8) into
 * a template.  name is only used in error messages ("name:LINE:COL: …")
 * and is copied.  Syntax errors, unknown filters, bad filter arguments,
 * `loop.*` outside a loop and exceeded limits (source size, nesting depth,
 * filter chain length) are reported here.
 * Returns a template to release with tr_tmpl_free(), or NULL and *error.
 */
tr_tmpl *tr_tmpl_compile(const char *name, const char *src, size_t len, GError **error);

/* Release a template; sets *t to NULL.  NULL or *t == NULL is a no-op. */
void tr_tmpl_free(tr_tmpl **t);

/* The name given to tr_tmpl_compile() (owned by the template). */
const char *tr_tmpl_name(const tr_tmpl *t);

/*
 * Verify that every variable the template reads is in known, a
 * NULL-terminated list of dotted paths where "[]" marks the items of a
 * list: "ticket.id", "articles[].title".  A path is known when it is in
 * the list or is the parent of an entry ("articles" and "articles[]" are
 * known through "articles[].title").  Loop variables are checked through
 * their list ({% for a in articles %}{{ a.title }} reads
 * "articles[].title"); loop.* needs no entry.
 * Returns TRUE, or FALSE with one error line per unknown variable
 * ("name:LINE:COL: unknown variable 'x.y'", at most 20 lines).
 */
gboolean tr_tmpl_check(const tr_tmpl *t, const char *const *known, GError **error);

/*
 * Render t against context (a JSON object; NULL or a non-object is an
 * empty context).  lang selects the words of `duration` and `date`: "en",
 * "es", "de", "fr", "pt", also with a region ("pt-BR", "de_AT"); NULL or
 * any other language renders English.  max_bytes bounds the result (for
 * header mode: the encoded value); 0 means the table default
 * (template_max_output).  Exceeding it, or the work budget, is an error:
 * the output is never silently truncated.
 *
 * Templates that came from a template file's header section are always
 * rendered in TR_TMPL_HEADER mode, whatever mode says.
 *
 * Returns a NUL-terminated UTF-8 (header mode: ASCII) string to g_free(),
 * or NULL and *error.
 */
char *tr_tmpl_render(const tr_tmpl *t, JsonNode *context, const char *lang,
                     tr_tmpl_mode mode, size_t max_bytes, GError **error);

/*
 * Template files for mail: a header section, one blank line, the body.
 *
 *     Subject: [{{ ticket.id }}] {{ subject | truncate:60 }}
 *     X-Triage-Priority: {{ priority }}
 *
 *     Hello {{ customer.name | default:"there" }}, …
 *
 * Header lines that may appear: Subject (required), Comments, Keywords and
 * any X-* field.  Address, routing, MIME and loop-control headers (From,
 * To, Cc, Bcc, Reply-To, Sender, Message-ID, References, In-Reply-To,
 * Auto-Submitted, Content-*, MIME-Version, Date, Precedence, …) are set by
 * the mailer from the ticket and configuration, never by a template, and
 * are rejected.  A line that starts with a space or a tab continues the
 * header above it.  Each header field appears at most once.  LF or CRLF
 * line ends are accepted.
 *
 * Errors name the path and line: "PATH:LINE:COL: …".
 * Returns a file to release with tr_tmpl_file_free(), or NULL and *error.
 */
tr_tmpl_file *tr_tmpl_file_load(const char *path, GError **error);
/* The same from memory; name stands for the path in messages. */
tr_tmpl_file *tr_tmpl_file_parse(const char *name, const char *src, size_t len, GError **error);
/* Release a file and its templates; sets *f to NULL.  NULL-safe. */
void tr_tmpl_file_free(tr_tmpl_file **f);

/* Number of header templates, in file order. */
guint tr_tmpl_file_n_headers(const tr_tmpl_file *f);
/* Field name as written in the file ("Subject"), owned by f. */
const char *tr_tmpl_file_header_name(const tr_tmpl_file *f, guint i);
/* The header's template, owned by f; it always renders in header mode. */
const tr_tmpl *tr_tmpl_file_header(const tr_tmpl_file *f, guint i);
/* The template of field name (case-insensitive), or NULL when absent. */
const tr_tmpl *tr_tmpl_file_lookup(const tr_tmpl_file *f, const char *name);
/* The body template, owned by f (never NULL; may render empty). */
const tr_tmpl *tr_tmpl_file_body(const tr_tmpl_file *f);
/* tr_tmpl_check() on every header and the body; all errors in one. */
gboolean tr_tmpl_file_check(const tr_tmpl_file *f, const char *const *known, GError **error);

#endif
