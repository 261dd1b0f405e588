/*
 * cli.h — the `triage` command line (tr_cli_*)
 *
 * main.c dispatches to one function per subcommand, each in its own file.
 * A subcommand returns the process exit status: 0 success, 1 some input or
 * operation failed, 2 usage or configuration error.
 */
#ifndef TR_CLI_H
#define TR_CLI_H

#include <glib.h>

#include "channels/channel.h"
#include "core/engine.h"

#define TR_EXIT_OK 0
#define TR_EXIT_FAIL 1
#define TR_EXIT_USAGE 2

typedef int tr_cli_fn(int argc, char **argv);

int tr_cli_classify(int argc, char **argv);
int tr_cli_check_config(int argc, char **argv);
int tr_cli_eval(int argc, char **argv);
int tr_cli_lmtp(int argc, char **argv);
int tr_cli_milter(int argc, char **argv);

/* The config path: -c value, else $TRIAGE_CONFIG, else the installed one. */
const char *tr_cli_config_path(const char *option_value);

/*
 * Parse options with GOptionContext (which gives --help); on a usage error
 * prints "triage CMD: message" and returns false.
 */
gboolean tr_cli_parse(const char *command, const char *params, const char *summary,
                      GOptionEntry *entries, int *argc, char ***argv);

/* Parse --now style times: ISO 8601 ("2026-11-16T09:00:00+01:00", "Z"
 * or offset required) or Unix seconds.  False when malformed. */
gboolean tr_cli_parse_time(const char *text, gint64 *time_r);

/* Load the engine, printing every diagnostic to stderr; NULL on error. */
tr_engine *tr_cli_engine(const char *config_path);

/*
 * TEST ONLY (test_hooks.c): stand-in store hooks and faults from the
 * TRIAGE_TEST_* environment variables; all off when none is set.  False
 * (with a message) when a variable is malformed.
 */
bool tr_cli_test_hooks(const char *command, tr_channel_ingest_hook *ingest, tr_channel_reply_hook *reply,
                       bool *fail_classify);
void tr_cli_test_hooks_free(void);

#endif
