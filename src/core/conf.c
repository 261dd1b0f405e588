/* conf.c — INI files, line lookup, diagnostics, named settings; see conf.h */
#include "core/conf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

struct tr_diag {
	GPtrArray *messages;
	unsigned errors, warnings;
};

struct tr_conf {
	char *path;
	char *text;
	gsize text_len;
	GKeyFile *kf;
};

tr_diag *tr_diag_new(void)
{
	tr_diag *diag = g_new0(tr_diag, 1);
	diag->messages = g_ptr_array_new_with_free_func(g_free);
	return diag;
}

void tr_diag_free(tr_diag **diagp)
{
	tr_diag *diag = *diagp;
	if (diag == NULL)
		return;
	*diagp = NULL;
	g_ptr_array_unref(diag->messages);
	g_free(diag);
}

static void diag_add(tr_diag *diag, const char *kind, const char *file, int line,
                     const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));

static void diag_add(tr_diag *diag, const char *kind, const char *file, int line,
                     const char *fmt, va_list ap)
{
	char *text = g_strdup_vprintf(fmt, ap);
	char *msg;
	if (file != NULL && line > 0)
		msg = g_strdup_printf("%s:%d: %s: %s", file, line, kind, text);
	else if (file != NULL)
		msg = g_strdup_printf("%s: %s: %s", file, kind, text);
	else
		msg = g_strdup_printf("%s: %s", kind, text);
	g_free(text);
	if (!g_utf8_validate(msg, -1, NULL)) {
		/* A name quoted from a file in another encoding: shown, repaired. */
		char *valid = g_utf8_make_valid(msg, -1);
		g_free(msg);
		msg = valid;
	}
	g_ptr_array_add(diag->messages, msg);
}

void tr_diag_error(tr_diag *diag, const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	diag_add(diag, "error", file, line, fmt, ap);
	va_end(ap);
	diag->errors++;
}

void tr_diag_warning(tr_diag *diag, const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	diag_add(diag, "warning", file, line, fmt, ap);
	va_end(ap);
	diag->warnings++;
}

unsigned tr_diag_error_count(const tr_diag *diag)
{
	return diag->errors;
}

unsigned tr_diag_warning_count(const tr_diag *diag)
{
	return diag->warnings;
}

const GPtrArray *tr_diag_messages(const tr_diag *diag)
{
	return diag->messages;
}

char *tr_diag_join(const tr_diag *diag)
{
	GString *out = g_string_new(NULL);
	for (guint i = 0; i < diag->messages->len; i++) {
		if (i > 0)
			g_string_append_c(out, '\n');
		g_string_append(out, g_ptr_array_index(diag->messages, i));
	}
	return g_string_free(out, FALSE);
}

/* GKeyFile's messages carry no line number; find the offending line by
 * re-reading the text the way GKeyFile does (group, key=value, comment). */
static int first_bad_line(const char *text)
{
	int lineno = 0;
	const char *p = text;
	while (*p != '\0') {
		const char *end = strchr(p, '\n');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
		lineno++;
		const char *s = p;
		while (s < p + len && (*s == ' ' || *s == '\t'))
			s++;
		size_t rest = len - (size_t)(s - p);
		while (rest > 0 && (s[rest - 1] == '\r' || s[rest - 1] == ' ' || s[rest - 1] == '\t'))
			rest--;
		bool ok = rest == 0 || *s == '#' ||
		          (*s == '[' && s[rest - 1] == ']') ||
		          (memchr(s, '=', rest) != NULL && *s != '=');
		if (!ok)
			return lineno;
		if (end == NULL)
			break;
		p = end + 1;
	}
	return 0;
}

/* GKeyFile silently merges a group written twice; a config author almost
 * always meant two different things, so say so. */
static void report_duplicate_groups(const char *name, const char *text, tr_diag *diag)
{
	GHashTable *seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	int lineno = 0;
	const char *p = text;
	while (p != NULL && *p != '\0') {
		const char *end = strchr(p, '\n');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
		lineno++;
		while (len > 0 && (*p == ' ' || *p == '\t'))
			p++, len--;
		while (len > 0 && (p[len - 1] == '\r' || p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (len > 2 && p[0] == '[' && p[len - 1] == ']') {
			char *group = g_strndup(p + 1, len - 2);
			gpointer first = g_hash_table_lookup(seen, group);
			if (first != NULL) {
				tr_diag_error(diag, name, lineno, "[%s] already defined at %s:%d", group, name,
				              GPOINTER_TO_INT(first));
				g_free(group);
			} else {
				g_hash_table_insert(seen, group, GINT_TO_POINTER(lineno));
			}
		}
		p = end != NULL ? end + 1 : NULL;
	}
	g_hash_table_destroy(seen);
}

tr_conf *tr_conf_load_data(const char *name, const char *data, size_t len, tr_diag *diag)
{
	tr_conf *conf = g_new0(tr_conf, 1);
	conf->path = g_strdup(name);
	conf->text = g_strndup(data, len);
	conf->text_len = len;
	if (memchr(data, '\0', len) != NULL) {
		tr_diag_error(diag, name, 0, "file contains NUL bytes");
		tr_conf_free(&conf);
		return NULL;
	}
	report_duplicate_groups(name, conf->text, diag);
	conf->kf = g_key_file_new();
	GError *error = NULL;
	if (!g_key_file_load_from_data(conf->kf, conf->text, len, G_KEY_FILE_NONE, &error)) {
		tr_diag_error(diag, name, first_bad_line(conf->text), "%s", error->message);
		g_error_free(error);
		tr_conf_free(&conf);
		return NULL;
	}
	return conf;
}

tr_conf *tr_conf_load(const char *path, tr_diag *diag)
{
	char *data = NULL;
	gsize len = 0;
	GError *error = NULL;
	if (!g_file_get_contents(path, &data, &len, &error)) {
		tr_diag_error(diag, path, 0, "cannot read: %s", error->message);
		g_error_free(error);
		return NULL;
	}
	tr_conf *conf = tr_conf_load_data(path, data, len, diag);
	g_free(data);
	return conf;
}

void tr_conf_free(tr_conf **confp)
{
	tr_conf *conf = *confp;
	if (conf == NULL)
		return;
	*confp = NULL;
	if (conf->kf != NULL)
		g_key_file_free(conf->kf);
	g_free(conf->path);
	g_free(conf->text);
	g_free(conf);
}

const char *tr_conf_path(const tr_conf *conf)
{
	return conf->path;
}

GKeyFile *tr_conf_keyfile(const tr_conf *conf)
{
	return conf->kf;
}

/* Compare a line (trimmed) against "[group]". */
static bool line_is_group(const char *s, size_t len, const char *group)
{
	size_t glen = strlen(group);
	return len == glen + 2 && s[0] == '[' && s[len - 1] == ']' &&
	       memcmp(s + 1, group, glen) == 0;
}

static bool line_is_key(const char *s, size_t len, const char *key)
{
	size_t klen = strlen(key);
	if (len <= klen || memcmp(s, key, klen) != 0)
		return false;
	const char *q = s + klen;
	while (q < s + len && (*q == ' ' || *q == '\t'))
		q++;
	return q < s + len && (*q == '=' || *q == '[');  /* key= or key[locale]= */
}

int tr_conf_line(const tr_conf *conf, const char *group, const char *key)
{
	int lineno = 0, group_line = 0;
	bool in_group = group == NULL;
	const char *p = conf->text;
	while (p != NULL && *p != '\0') {
		const char *end = strchr(p, '\n');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
		lineno++;
		const char *s = p;
		while (s < p + len && (*s == ' ' || *s == '\t'))
			s++;
		size_t slen = len - (size_t)(s - p);
		while (slen > 0 && (s[slen - 1] == '\r' || s[slen - 1] == ' ' || s[slen - 1] == '\t'))
			slen--;
		if (slen > 0 && *s == '[') {
			if (group != NULL && line_is_group(s, slen, group)) {
				in_group = true;
				group_line = lineno;
				if (key == NULL)
					return lineno;
			} else if (in_group && group_line > 0) {
				return group_line;  /* key not in its group */
			} else {
				in_group = false;
			}
		} else if (in_group && key != NULL && line_is_key(s, slen, key)) {
			return lineno;
		}
		p = end != NULL ? end + 1 : NULL;
	}
	return group_line;
}

void tr_conf_error(const tr_conf *conf, tr_diag *diag, const char *group, const char *key,
                   const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *text = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	int line = tr_conf_line(conf, group, key);
	if (key != NULL)
		tr_diag_error(diag, conf->path, line, "[%s] %s: %s", group, key, text);
	else
		tr_diag_error(diag, conf->path, line, "[%s]: %s", group, text);
	g_free(text);
}

void tr_conf_check_keys(const tr_conf *conf, tr_diag *diag, const char *group,
                        const char *const *known)
{
	gsize n = 0;
	char **keys = g_key_file_get_keys(conf->kf, group, &n, NULL);
	for (gsize i = 0; i < n; i++) {
		bool found = false;
		for (const char *const *k = known; *k != NULL; k++) {
			if (strcmp(keys[i], *k) == 0) {
				found = true;
				break;
			}
		}
		if (!found)
			tr_diag_warning(diag, conf->path, tr_conf_line(conf, group, keys[i]),
			                "[%s] unknown key '%s' (ignored)", group, keys[i]);
	}
	g_strfreev(keys);
}

char *tr_conf_string(const tr_conf *conf, const char *group, const char *key, const char *def)
{
	char *value = g_key_file_get_string(conf->kf, group, key, NULL);
	if (value == NULL)
		return g_strdup(def);
	g_strstrip(value);
	return value;
}

bool tr_conf_bool(const tr_conf *conf, tr_diag *diag, const char *group, const char *key, bool def)
{
	char *value = tr_conf_string(conf, group, key, NULL);
	if (value == NULL)
		return def;
	bool result = def;
	if (g_ascii_strcasecmp(value, "yes") == 0 || g_ascii_strcasecmp(value, "true") == 0 ||
	    strcmp(value, "1") == 0 || g_ascii_strcasecmp(value, "on") == 0)
		result = true;
	else if (g_ascii_strcasecmp(value, "no") == 0 || g_ascii_strcasecmp(value, "false") == 0 ||
	         strcmp(value, "0") == 0 || g_ascii_strcasecmp(value, "off") == 0)
		result = false;
	else
		tr_conf_error(conf, diag, group, key, "'%s' is not yes/no", value);
	g_free(value);
	return result;
}

char *tr_conf_resolve(const tr_conf *conf, const char *rel)
{
	if (rel == NULL)
		return NULL;
	if (g_path_is_absolute(rel))
		return g_strdup(rel);
	char *dir = g_path_get_dirname(conf->path);
	char *path = g_build_filename(dir, rel, NULL);
	g_free(dir);
	return path;
}

char *tr_conf_file_path(const tr_conf *conf, const char *group, const char *key, const char *def)
{
	char *value = tr_conf_string(conf, group, key, def);
	char *path = tr_conf_resolve(conf, value);
	g_free(value);
	return path;
}

bool tr_conf_parse_int(const char *text, tr_unit unit, int64_t *value_r)
{
	while (*text == ' ' || *text == '\t')
		text++;
	if (*text == '\0')
		return false;
	errno = 0;
	char *end = NULL;
	long long v = strtoll(text, &end, 10);
	if (errno != 0 || end == text)
		return false;
	int64_t mult = 1;
	const char *suffix = end;
	while (*suffix == ' ')
		suffix++;
	if (*suffix != '\0') {
		char c = suffix[0];
		bool one = suffix[1] == '\0' || (suffix[1] == 'B' && suffix[2] == '\0' && unit == TR_UNIT_BYTES);
		if (!one)
			return false;
		switch (unit) {
		case TR_UNIT_BYTES:
			mult = c == 'k' || c == 'K' ? 1024 : c == 'M' ? 1024 * 1024 :
			       c == 'G' ? (int64_t)1024 * 1024 * 1024 : 0;
			break;
		case TR_UNIT_SECONDS:
			mult = c == 's' ? 1 : c == 'm' ? 60 : c == 'h' ? 3600 : c == 'd' ? 86400 : 0;
			break;
		case TR_UNIT_MINUTES:
			mult = c == 'm' ? 1 : c == 'h' ? 60 : c == 'd' ? 1440 : 0;
			break;
		default:
			mult = 0;
		}
		if (mult == 0)
			return false;
	}
	if (v > INT64_MAX / mult || v < INT64_MIN / mult)
		return false;
	*value_r = (int64_t)v * mult;
	return true;
}

void tr_conftab_defaults(const tr_conftab *tab, void *target)
{
	for (const tr_conftab *row = tab; row->name != NULL; row++)
		*(int64_t *)((char *)target + row->offset) = row->def;
}

static const char *unit_hint(tr_unit unit)
{
	switch (unit) {
	case TR_UNIT_BYTES: return " (bytes; k, M, G suffixes)";
	case TR_UNIT_SECONDS: return " (seconds; s, m, h, d suffixes)";
	case TR_UNIT_MINUTES: return " (minutes; m, h, d suffixes)";
	default: return "";
	}
}

void tr_conftab_load_keys(const tr_conftab *tab, const tr_conf *conf, tr_diag *diag,
                          const char *group, void *target, const char *const *extra_keys)
{
	tr_conftab_defaults(tab, target);
	if (!g_key_file_has_group(conf->kf, group))
		return;
	GPtrArray *known = g_ptr_array_new();
	for (const tr_conftab *row = tab; row->name != NULL; row++) {
		g_ptr_array_add(known, (gpointer)row->name);
		char *text = tr_conf_string(conf, group, row->name, NULL);
		if (text == NULL)
			continue;
		int64_t v;
		if (!tr_conf_parse_int(text, row->unit, &v))
			tr_conf_error(conf, diag, group, row->name, "'%s' is not a valid number%s",
			              text, unit_hint(row->unit));
		else if (v < row->min || v > row->max)
			tr_conf_error(conf, diag, group, row->name,
			              "%" G_GINT64_FORMAT " is out of range %" G_GINT64_FORMAT "..%" G_GINT64_FORMAT,
			              (gint64)v, (gint64)row->min, (gint64)row->max);
		else
			*(int64_t *)((char *)target + row->offset) = v;
		g_free(text);
	}
	for (const char *const *k = extra_keys; k != NULL && *k != NULL; k++)
		g_ptr_array_add(known, (gpointer)*k);
	g_ptr_array_add(known, NULL);
	tr_conf_check_keys(conf, diag, group, (const char *const *)known->pdata);
	g_ptr_array_free(known, TRUE);
}

void tr_conftab_load(const tr_conftab *tab, const tr_conf *conf, tr_diag *diag,
                     const char *group, void *target)
{
	tr_conftab_load_keys(tab, conf, diag, group, target, NULL);
}

void tr_conftab_print(const tr_conftab *tab, const void *target, GString *out)
{
	for (const tr_conftab *row = tab; row->name != NULL; row++) {
		int64_t v = *(const int64_t *)((const char *)target + row->offset);
		g_string_append_printf(out, "%s = %" G_GINT64_FORMAT "  # %s (default %" G_GINT64_FORMAT
		                       ", %" G_GINT64_FORMAT "..%" G_GINT64_FORMAT ")%s\n",
		                       row->name, (gint64)v, row->doc, (gint64)row->def,
		                       (gint64)row->min, (gint64)row->max, unit_hint(row->unit));
	}
}

static void format_value(int64_t v, tr_unit unit, char *buf, size_t size)
{
	if (unit == TR_UNIT_BYTES && v >= 1024 * 1024 && v % (1024 * 1024) == 0)
		g_snprintf(buf, size, "%" G_GINT64_FORMAT "M", (gint64)v / (1024 * 1024));
	else if (unit == TR_UNIT_BYTES && v >= 1024 && v % 1024 == 0)
		g_snprintf(buf, size, "%" G_GINT64_FORMAT "K", (gint64)v / 1024);
	else if (unit == TR_UNIT_SECONDS && v >= 86400 && v % 86400 == 0)
		g_snprintf(buf, size, "%" G_GINT64_FORMAT "d", (gint64)v / 86400);
	else if (unit == TR_UNIT_SECONDS && v >= 3600 && v % 3600 == 0)
		g_snprintf(buf, size, "%" G_GINT64_FORMAT "h", (gint64)v / 3600);
	else if (unit == TR_UNIT_SECONDS && v >= 60 && v % 60 == 0)
		g_snprintf(buf, size, "%" G_GINT64_FORMAT "m", (gint64)v / 60);
	else if (unit == TR_UNIT_SECONDS)
		g_snprintf(buf, size, "%" G_GINT64_FORMAT "s", (gint64)v);
	else
		g_snprintf(buf, size, "%" G_GINT64_FORMAT, (gint64)v);
}

void tr_conftab_markdown(const tr_conftab *tab, const char *group, GString *out)
{
	for (const tr_conftab *row = tab; row->name != NULL; row++) {
		char def[32], min[32], max[32];
		format_value(row->def, row->unit, def, sizeof(def));
		format_value(row->min, row->unit, min, sizeof(min));
		format_value(row->max, row->unit, max, sizeof(max));
		const char *doc = row->doc;
		char grp[32];
		/* Tables spanning groups say "[group] ..." in their doc. */
		if (doc[0] == '[' && strchr(doc, ']') != NULL) {
			size_t n = (size_t)(strchr(doc, ']') - doc - 1);
			g_snprintf(grp, sizeof(grp), "%.*s", (int)MIN(n, sizeof(grp) - 1), doc + 1);
			doc = strchr(doc, ']') + 2;
		} else {
			g_strlcpy(grp, group, sizeof(grp));
		}
		g_string_append_printf(out, "| `[%s] %s` | %s | %s … %s | %s |\n", grp, row->name, def, min, max, doc);
	}
}
