/* customers.c — address/domain -> account; see customers.h */
#include "core/customers.h"

#include <glib.h>
#include <string.h>

static const char *const tier_names[TR_CUSTOMER_TIER_COUNT] = {
	"enterprise", "professional", "starter", "free",
};

struct tr_customers {
	GPtrArray *entries;   /* tr_customer*, strings g_malloc'd */
	GHashTable *by_key;   /* lowercase address or domain -> tr_customer* */
	tr_customer fallback;
	char *path;
};

const char *tr_customer_tier_name(tr_customer_tier tier)
{
	return (unsigned)tier < TR_CUSTOMER_TIER_COUNT ? tier_names[tier] : "unknown";
}

bool tr_customer_tier_parse(const char *text, tr_customer_tier *tier_r)
{
	for (unsigned i = 0; i < TR_CUSTOMER_TIER_COUNT; i++) {
		if (g_ascii_strcasecmp(text, tier_names[i]) == 0) {
			*tier_r = (tr_customer_tier)i;
			return true;
		}
	}
	return false;
}

static void entry_free(gpointer p)
{
	tr_customer *c = p;
	g_free((char *)c->account);
	g_free((char *)c->language);
	g_free((char *)c->account_manager);
	g_free((char *)c->calendar);
	g_free((char *)c->timezone);
	g_free(c);
}

static const char *const customer_keys[] = {
	"match", "tier", "vip", "language", "account_manager", "calendar", "timezone", NULL,
};

static char *nonempty(char *s)
{
	if (s != NULL && *s == '\0')
		g_clear_pointer(&s, g_free);
	return s;
}

static void read_entry(const tr_conf *conf, tr_diag *diag, const char *group, tr_customer *c,
                       tr_customer_tier def_tier)
{
	c->tier = def_tier;
	char *tier = tr_conf_string(conf, group, "tier", NULL);
	if (tier != NULL && !tr_customer_tier_parse(tier, &c->tier))
		tr_conf_error(conf, diag, group, "tier", "'%s' is not enterprise, professional, starter or free", tier);
	g_free(tier);
	c->vip = tr_conf_bool(conf, diag, group, "vip", false);
	c->language = nonempty(tr_conf_string(conf, group, "language", NULL));
	c->account_manager = nonempty(tr_conf_string(conf, group, "account_manager", NULL));
	c->calendar = nonempty(tr_conf_string(conf, group, "calendar", NULL));
	c->timezone = nonempty(tr_conf_string(conf, group, "timezone", NULL));
	if (c->timezone != NULL) {
		GTimeZone *tz = g_time_zone_new_identifier(c->timezone);
		if (tz == NULL)
			tr_conf_error(conf, diag, group, "timezone", "unknown time zone '%s'", c->timezone);
		else
			g_time_zone_unref(tz);
	}
}

tr_customers *tr_customers_load(const char *path, tr_diag *diag)
{
	tr_customers *dir = g_new0(tr_customers, 1);
	dir->entries = g_ptr_array_new_with_free_func(entry_free);
	dir->by_key = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	dir->fallback.tier = TR_CUSTOMER_FREE;
	if (path == NULL)
		return dir;
	unsigned errors_before = tr_diag_error_count(diag);
	tr_conf *conf = tr_conf_load(path, diag);
	if (conf == NULL) {
		tr_customers_free(&dir);
		return NULL;
	}
	dir->path = g_strdup(path);
	if (g_key_file_has_group(tr_conf_keyfile(conf), "default")) {
		static const char *const default_keys[] = { "tier", "vip", "language", "calendar", "timezone", NULL };
		tr_conf_check_keys(conf, diag, "default", default_keys);
		read_entry(conf, diag, "default", &dir->fallback, TR_CUSTOMER_FREE);
		dir->fallback.account = NULL;
	}
	gsize n = 0;
	char **groups = g_key_file_get_groups(tr_conf_keyfile(conf), &n);
	for (gsize i = 0; i < n; i++) {
		const char *group = groups[i];
		if (strcmp(group, "default") == 0)
			continue;
		if (strncmp(group, "customer ", 9) != 0) {
			tr_diag_error(diag, path, tr_conf_line(conf, group, NULL),
			              "[%s]: unknown group ([customer NAME] or [default])", group);
			continue;
		}
		tr_conf_check_keys(conf, diag, group, customer_keys);
		tr_customer *c = g_new0(tr_customer, 1);
		c->account = g_strstrip(g_strdup(group + 9));
		c->line = tr_conf_line(conf, group, NULL);
		read_entry(conf, diag, group, c, dir->fallback.tier);
		g_ptr_array_add(dir->entries, c);
		char *match = tr_conf_string(conf, group, "match", NULL);
		if (match == NULL) {
			tr_conf_error(conf, diag, group, NULL, "no 'match' (addresses or domains)");
			continue;
		}
		char **keys = g_strsplit_set(match, ",; ", -1);
		for (char **k = keys; *k != NULL; k++) {
			if (**k == '\0')
				continue;
			char *key = g_ascii_strdown(**k == '@' ? *k + 1 : *k, -1);
			tr_customer *other = g_hash_table_lookup(dir->by_key, key);
			if (other != NULL) {
				tr_conf_error(conf, diag, group, "match", "'%s' already belongs to customer %s",
				              key, other->account);
				g_free(key);
			} else {
				g_hash_table_insert(dir->by_key, key, c);
			}
		}
		g_strfreev(keys);
		g_free(match);
	}
	g_strfreev(groups);
	tr_conf_free(&conf);
	if (tr_diag_error_count(diag) > errors_before)
		tr_customers_free(&dir);
	return dir;
}

void tr_customers_free(tr_customers **customersp)
{
	tr_customers *dir = *customersp;
	if (dir == NULL)
		return;
	*customersp = NULL;
	g_hash_table_destroy(dir->by_key);
	g_ptr_array_unref(dir->entries);
	g_free((char *)dir->fallback.language);
	g_free((char *)dir->fallback.calendar);
	g_free((char *)dir->fallback.timezone);
	g_free((char *)dir->fallback.account_manager);
	g_free(dir->path);
	g_free(dir);
}

const char *tr_customers_path(const tr_customers *dir)
{
	return dir->path;
}

const tr_customer *tr_customers_lookup(const tr_customers *dir, const char *address)
{
	if (address == NULL || *address == '\0')
		return &dir->fallback;
	tr_customer *c = g_hash_table_lookup(dir->by_key, address);
	if (c != NULL)
		return c;
	const char *domain = strrchr(address, '@');
	domain = domain != NULL ? domain + 1 : address;
	while (domain != NULL && *domain != '\0') {
		c = g_hash_table_lookup(dir->by_key, domain);
		if (c != NULL)
			return c;
		domain = strchr(domain, '.');
		if (domain != NULL)
			domain++;
		if (domain != NULL && strchr(domain, '.') == NULL)
			break;  /* never match a bare top-level domain */
	}
	return &dir->fallback;
}

unsigned tr_customers_count(const tr_customers *dir)
{
	return dir->entries->len;
}

const tr_customer *tr_customers_get(const tr_customers *dir, unsigned index)
{
	return index < dir->entries->len ? g_ptr_array_index(dir->entries, index) : NULL;
}
