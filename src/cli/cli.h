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

#include "core/engine.h"
#include "store/outbox.h"
#include "store/store.h"

#define TR_EXIT_OK 0
#define TR_EXIT_FAIL 1
#define TR_EXIT_USAGE 2

typedef int tr_cli_fn(int argc, char **argv);

int tr_cli_classify(int argc, char **argv);
int tr_cli_check_config(int argc, char **argv);
int tr_cli_eval(int argc, char **argv);
int tr_cli_ingest(int argc, char **argv);
int tr_cli_tickets(int argc, char **argv);
int tr_cli_show(int argc, char **argv);
int tr_cli_ticket_op(int argc, char **argv);
int tr_cli_sla_tick(int argc, char **argv);
int tr_cli_outbox(int argc, char **argv);
int tr_cli_deliver(int argc, char **argv);
int tr_cli_serve(int argc, char **argv);
int tr_cli_report(int argc, char **argv);
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
/* Open the store named by the engine's config ([store] path) or --db;
 * errors printed; NULL on error. */
tr_store *tr_cli_store(const tr_engine *engine, const char *db_override);
/* Outbox options from [outbound] and [xmpp]; *domain_r must be g_free'd. */
void tr_cli_outbox_options(const tr_engine *engine, tr_outbox_options *options, char **domain_r);
/* --by NAME, else the invoking user's name. */
const char *tr_cli_actor(const char *by);

/*
 * TEST ONLY (test_hooks.c): TRIAGE_TEST_FAULT=classify makes every
 * classification of `triage lmtp` / `triage milter` fail like an internal
 * error would (to test on_error).  False (with a message) when the
 * variable is malformed; a warning when it is set.
 */
bool tr_cli_test_fault(const char *command, bool *fail_classify);

#endif
