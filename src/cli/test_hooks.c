/* test_hooks.c — TEST-ONLY stand-ins for the ticket store, for `triage lmtp`
 * and `triage milter` run by the integration tests.
 *
 * They exist so the mail path can be tested end to end (ticket header,
 * subject tag, a store that fails) before and without the real store.
 * Nothing is active unless one of these environment variables is set, and
 * a warning says so at start-up:
 *
 *   TRIAGE_TEST_INGEST=memory     an in-memory store: the first time a
 *                                 Message-ID (else content hash) is seen it
 *                                 is COMMITTED as TKT-00000N, later DUPLICATE
 *   TRIAGE_TEST_INGEST=tempfail   every ingest fails temporarily
 *   TRIAGE_TEST_INGEST=full       every ingest fails: disk full
 *   TRIAGE_TEST_INGEST_LOG=FILE   one line per ingest call: status ticket id
 *   TRIAGE_TEST_REPLY_LOG=FILE    record agent replies: one line per reply
 *   TRIAGE_TEST_REPLY=fail        the reply hook fails
 *   TRIAGE_TEST_FAULT=classify    every classification fails (internal error)
 *
 * The daemon wires the real store instead; see docs/mta.md.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static struct {
	GMutex lock;
	GHashTable *seen;   /* Message-ID or content hash -> ticket */
	unsigned next;
	tr_channel_ingest_status fixed;   /* for tempfail / full */
	bool memory;
	char *ingest_log;
	char *reply_log;
	bool reply_fails;
} test;

static void log_line(const char *path, const char *line)
{
	if (path == NULL)
		return;
	FILE *f = fopen(path, "a");
	if (f == NULL)
		return;
	fprintf(f, "%s\n", line);
	fclose(f);
}

static tr_channel_ingest_status test_ingest(void *context, const tr_channel_ingest_request *request,
                                            tr_channel_ingest_result *result, GError **error)
{
	(void)context;
	const char *key = request->msg->message_id != NULL ? request->msg->message_id : request->msg->content_hash;
	tr_channel_ingest_status status;
	g_mutex_lock(&test.lock);
	if (test.memory) {
		const char *ticket = g_hash_table_lookup(test.seen, key);
		if (ticket != NULL) {
			status = TR_CHANNEL_INGEST_DUPLICATE;
		} else {
			char *t = g_strdup_printf("TKT-%06u", ++test.next);
			g_hash_table_insert(test.seen, g_strdup(key), t);
			ticket = t;
			status = TR_CHANNEL_INGEST_COMMITTED;
		}
		g_strlcpy(result->ticket, ticket, sizeof(result->ticket));
	} else {
		status = test.fixed;
		g_set_error(error, G_FILE_ERROR, status == TR_CHANNEL_INGEST_FULL ? G_FILE_ERROR_NOSPC : G_FILE_ERROR_IO,
		            "TRIAGE_TEST_INGEST: simulated store failure");
	}
	char *line = g_strdup_printf("%s %s %s %s %s", tr_channel_ingest_status_name(status),
	                             result->ticket[0] != '\0' ? result->ticket : "-", key,
	                             request->decision != NULL ? tr_priority_name(request->decision->priority) : "-",
	                             request->queue_id != NULL ? request->queue_id : "-");
	log_line(test.ingest_log, line);
	g_free(line);
	g_mutex_unlock(&test.lock);
	return status;
}

static bool test_reply(void *context, const tr_channel_reply *reply, GError **error)
{
	(void)context;
	if (test.reply_fails) {
		g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_IO, "TRIAGE_TEST_REPLY: simulated failure");
		return false;
	}
	char *line = g_strdup_printf("%s %s %s", reply->ticket, reply->agent,
	                             reply->message_id != NULL ? reply->message_id : "-");
	g_mutex_lock(&test.lock);
	log_line(test.reply_log, line);
	g_mutex_unlock(&test.lock);
	g_free(line);
	return true;
}

bool tr_cli_test_hooks(const char *command, tr_channel_ingest_hook *ingest, tr_channel_reply_hook *reply,
                       bool *fail_classify)
{
	memset(ingest, 0, sizeof(*ingest));
	memset(reply, 0, sizeof(*reply));
	*fail_classify = false;
	const char *mode = g_getenv("TRIAGE_TEST_INGEST");
	const char *fault = g_getenv("TRIAGE_TEST_FAULT");
	const char *reply_log = g_getenv("TRIAGE_TEST_REPLY_LOG");
	const char *reply_mode = g_getenv("TRIAGE_TEST_REPLY");
	bool active = false;
	if (mode != NULL && *mode != '\0') {
		if (strcmp(mode, "memory") == 0)
			test.memory = true;
		else if (strcmp(mode, "tempfail") == 0)
			test.fixed = TR_CHANNEL_INGEST_TEMPFAIL;
		else if (strcmp(mode, "full") == 0)
			test.fixed = TR_CHANNEL_INGEST_FULL;
		else {
			fprintf(stderr, "triage %s: TRIAGE_TEST_INGEST='%s': memory, tempfail or full\n", command, mode);
			return false;
		}
		test.seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
		test.ingest_log = g_strdup(g_getenv("TRIAGE_TEST_INGEST_LOG"));
		*ingest = (tr_channel_ingest_hook){ test_ingest, NULL };
		active = true;
	}
	if ((reply_log != NULL && *reply_log != '\0') || (reply_mode != NULL && *reply_mode != '\0')) {
		test.reply_log = g_strdup(reply_log);
		test.reply_fails = reply_mode != NULL && strcmp(reply_mode, "fail") == 0;
		*reply = (tr_channel_reply_hook){ test_reply, NULL };
		active = true;
	}
	if (fault != NULL && *fault != '\0') {
		if (strcmp(fault, "classify") != 0) {
			fprintf(stderr, "triage %s: TRIAGE_TEST_FAULT='%s': only 'classify'\n", command, fault);
			return false;
		}
		*fail_classify = true;
		active = true;
	}
	if (active)
		fprintf(stderr, "triage %s: WARNING: test hooks active (TRIAGE_TEST_*): not for production\n", command);
	return true;
}

void tr_cli_test_hooks_free(void)
{
	if (test.seen != NULL)
		g_hash_table_destroy(test.seen);
	g_free(test.ingest_log);
	g_free(test.reply_log);
	memset(&test, 0, sizeof(test));
}
