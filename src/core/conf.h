/*
 * conf.h — INI configuration files and diagnostics (tr_conf_*, tr_diag_*)
 *
 * Files are parsed with GLib's GKeyFile (no hand-written parser).  GKeyFile
 * forgets where a key was written, so tr_conf keeps the text too and can
 * name the line of any group or key: every diagnostic says file:line.
 *
 * Loading never stops at the first problem: loaders report into a tr_diag
 * and go on, so `triage check-config` can print every error at once.
 *
 * Named limits: a module describes its integer settings in a table of
 * tr_conftab rows (name, default, min, max, unit, doc).  The same table sets
 * defaults, validates the config, prints the effective values and feeds the
 * documentation (STYLE.md rule 6).
 */
#ifndef TR_CONF_H
#define TR_CONF_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

/* ---- diagnostics ---- */

typedef struct tr_diag tr_diag;

tr_diag *tr_diag_new(void);
void tr_diag_free(tr_diag **diag);
/* Record an error.  file may be NULL; line 0 means "no line". */
void tr_diag_error(tr_diag *diag, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void tr_diag_warning(tr_diag *diag, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
unsigned tr_diag_error_count(const tr_diag *diag);
unsigned tr_diag_warning_count(const tr_diag *diag);
/* Every message in order, "file:line: error: text" — owned by diag. */
const GPtrArray *tr_diag_messages(const tr_diag *diag);
/* All messages joined by newlines (g_free), for a GError or a log line. */
char *tr_diag_join(const tr_diag *diag);

/* ---- one INI file ---- */

typedef struct tr_conf tr_conf;

/* Parse path.  On a syntax error returns NULL and reports file:line. */
tr_conf *tr_conf_load(const char *path, tr_diag *diag);
/* Parse text already in memory (tests, fuzzing); name is used in messages. */
tr_conf *tr_conf_load_data(const char *name, const char *data, size_t len, tr_diag *diag);
void tr_conf_free(tr_conf **conf);

const char *tr_conf_path(const tr_conf *conf);
GKeyFile *tr_conf_keyfile(const tr_conf *conf);
/* Line of "[group]" or of "key =" inside it; 0 when not found. */
int tr_conf_line(const tr_conf *conf, const char *group, const char *key);
/* Report an error located at group/key. */
void tr_conf_error(const tr_conf *conf, tr_diag *diag, const char *group, const char *key,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Warn about keys of group that are not in known (NULL-terminated). */
void tr_conf_check_keys(const tr_conf *conf, tr_diag *diag, const char *group,
                        const char *const *known);

/* Typed getters: the default when the key is absent, an error when the
 * value is malformed.  Strings are g_malloc'd (g_free). */
char *tr_conf_string(const tr_conf *conf, const char *group, const char *key, const char *def);
bool tr_conf_bool(const tr_conf *conf, tr_diag *diag, const char *group, const char *key, bool def);
/* A path relative to the directory of the config file (g_free). */
char *tr_conf_file_path(const tr_conf *conf, const char *group, const char *key, const char *def);
/* Resolve rel against the directory of the config file (g_free). */
char *tr_conf_resolve(const tr_conf *conf, const char *rel);

/* ---- named integer settings ---- */

typedef enum {
	TR_UNIT_COUNT,    /* plain integer */
	TR_UNIT_BYTES,    /* accepts k, M, G suffixes (powers of 1024) */
	TR_UNIT_SECONDS,  /* accepts s, m, h, d suffixes */
	TR_UNIT_MINUTES,  /* accepts m, h, d suffixes; plain numbers are minutes */
	TR_UNIT_CHARS,    /* characters of text */
} tr_unit;

typedef struct {
	const char *name;
	int64_t def, min, max;
	tr_unit unit;
	size_t offset;     /* offsetof() an int64_t field in the target struct */
	const char *doc;
} tr_conftab;

/* Tables end with a row whose name is NULL. */
void tr_conftab_defaults(const tr_conftab *tab, void *target);
/* Read every row present in group; out-of-range values are errors; any
 * other key in the group is warned about as unknown. */
void tr_conftab_load(const tr_conftab *tab, const tr_conf *conf, tr_diag *diag,
                     const char *group, void *target);
/* The same for a group that also has keys outside the table: keys that are
 * neither rows nor in extra_keys (NULL-terminated) are warned about. */
void tr_conftab_load_keys(const tr_conftab *tab, const tr_conf *conf, tr_diag *diag,
                          const char *group, void *target, const char *const *extra_keys);
/* "name = value  # doc (default D, min..max)" lines, for `check-config -v`. */
void tr_conftab_print(const tr_conftab *tab, const void *target, GString *out);
/* The rows as a Markdown table (name, default, range, meaning) for docs. */
void tr_conftab_markdown(const tr_conftab *tab, const char *group, GString *out);
/* Parse one value with its unit's suffixes; false when malformed. */
bool tr_conf_parse_int(const char *text, tr_unit unit, int64_t *value_r);

#endif
