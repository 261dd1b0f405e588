/*
 * fuzz_imap_config.c — libFuzzer target for the IMAP channel's own parsing:
 * [imap NAME] groups (tr_imap_config_load: security, mark lists, folder and
 * keyword rules, limits) and the mark parser on raw bytes.
 *
 * The input is read twice: as an INI file whose [imap ...] groups (up to a
 * few) are loaded, and as a NUL-terminated mark list.  Whatever loads must
 * satisfy what imap.h promises; a broken promise traps.  No network: a
 * session is built from a loaded config but never connected.
 *
 *   make fuzz-build && build/fuzz/fuzz_imap_config -dict=tests/fuzz/imap_config.dict \
 *       -max_total_time=60 build/fuzz/corpus/imap_config tests/fuzz/seeds/imap_config
 */
#include "channels/imap.h"

#include <glib.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define FUZZ_MAX_INPUT (16 * 1024)
#define FUZZ_MAX_GROUPS 4

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok, const char *what)
{
	if (ok)
		return;
	fprintf(stderr, "invariant broken: %s\n", what);
	__builtin_trap();
}

static void check_mark(unsigned mark, const char *move_to)
{
	check(mark != 0 && (mark & ~7u) == 0, "mark bits");
	check(((mark & TR_IMAP_MARK_MOVE) != 0) == (move_to != NULL), "move_to iff MOVE");
	if (move_to != NULL)
		check(tr_imap_folder_name_valid(move_to, NULL), "move_to is a valid folder");
}

static void check_config(const tr_imap_config *c)
{
	check(c->host != NULL && *c->host != '\0', "host");
	check(c->user != NULL && *c->user != '\0', "user");
	check(c->password != NULL && *c->password != '\0', "password");
	check(c->security <= TR_IMAP_SECURITY_PLAIN, "security");
	check(c->security != TR_IMAP_SECURITY_PLAIN || c->allow_plain, "plain only when allowed");
	check_mark(c->mark, c->move_to);
	check(tr_imap_folder_name_valid(c->folder, NULL), "folder");
	check(tr_imap_folder_name_valid(c->quarantine, NULL), "quarantine");
	check(strcmp(c->quarantine, c->folder) != 0, "quarantine is not the folder");
	check(c->move_to == NULL || strcmp(c->move_to, c->folder) != 0, "move_to is not the folder");
	check(tr_imap_keyword_valid(c->keyword) && c->keyword[0] != '\\', "keyword");
	check((c->ignore_caps & ~(unsigned)(TR_IMAP_CAP_IDLE | TR_IMAP_CAP_MOVE | TR_IMAP_CAP_UIDPLUS)) == 0,
	      "ignore_caps");
	for (const tr_conftab *row = tr_imap_limits_table; row->name != NULL; row++) {
		int64_t v = *(const int64_t *)((const char *)&c->limits + row->offset);
		check(v >= row->min && v <= row->max, row->name);
	}
	tr_imap *s = tr_imap_new(c);
	check(tr_imap_peer(s) != NULL && !tr_imap_is_connected(s), "new session");
	tr_imap_free(&s);
	check(s == NULL, "free sets NULL");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > FUZZ_MAX_INPUT)
		return 0;

	/* 1. the mark parser on the raw bytes */
	char *text = g_strndup((const char *)data, size);
	unsigned mark = 0;
	char *move_to = NULL, *error = NULL;
	if (tr_imap_parse_mark(text, &mark, &move_to, &error)) {
		check(error == NULL, "no error on success");
		check_mark(mark, move_to);
	} else {
		check(error != NULL && *error != '\0' && move_to == NULL, "a refusal says why");
	}
	g_free(move_to);
	g_free(error);
	g_free(text);

	/* 2. the bytes as a configuration file */
	tr_diag *diag = tr_diag_new();
	tr_conf *conf = tr_conf_load_data("fuzz.conf", (const char *)data, size, diag);
	if (conf != NULL) {
		gsize n = 0;
		char **groups = g_key_file_get_groups(tr_conf_keyfile(conf), &n);
		unsigned tried = 0;
		for (gsize i = 0; i < n && tried < FUZZ_MAX_GROUPS; i++) {
			if (strncmp(groups[i], "imap ", 5) != 0)
				continue;
			tried++;
			unsigned errors = tr_diag_error_count(diag);
			tr_imap_config c;
			bool ok = tr_imap_config_load(&c, conf, groups[i], diag);
			check(ok == (tr_diag_error_count(diag) == errors), "result matches the diagnostics");
			if (ok)
				check_config(&c);
			tr_imap_config_clear(&c);
		}
		g_strfreev(groups);
		GPtrArray *all = tr_imap_configs_load(conf, diag);
		for (guint i = 0; i < all->len; i++)
			check_config(g_ptr_array_index(all, i));
		g_ptr_array_unref(all);
		tr_conf_free(&conf);
	}
	tr_diag_free(&diag);
	return 0;
}
