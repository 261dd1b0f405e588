/* cmd_classify.c — `triage classify`: what the pipeline makes of messages */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/json.h"

/* One input: mapped file or stdin bytes. */
typedef struct {
	GMappedFile *mapped;
	GString *buffer;
	const char *data;
	size_t len;
} input;

static gboolean input_open(const char *path, size_t stdin_cap, input *in, GError **error)
{
	memset(in, 0, sizeof(*in));
	if (strcmp(path, "-") == 0) {
		in->buffer = g_string_new(NULL);
		char chunk[65536];
		size_t n;
		while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0) {
			if (in->buffer->len < stdin_cap)
				g_string_append_len(in->buffer, chunk, (gssize)n);
		}
		if (ferror(stdin)) {
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "read error: %s", g_strerror(errno));
			g_string_free(in->buffer, TRUE);
			in->buffer = NULL;
			return FALSE;
		}
		in->data = in->buffer->str;
		in->len = in->buffer->len;
		return TRUE;
	}
	if (g_file_test(path, G_FILE_TEST_IS_DIR)) {
		g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_ISDIR, "is a directory");
		return FALSE;
	}
	in->mapped = g_mapped_file_new(path, FALSE, error);
	if (in->mapped == NULL)
		return FALSE;
	in->data = g_mapped_file_get_contents(in->mapped);
	in->len = g_mapped_file_get_length(in->mapped);
	if (in->data == NULL)
		in->data = "";
	return TRUE;
}

static void input_close(input *in)
{
	if (in->mapped != NULL)
		g_mapped_file_unref(in->mapped);
	if (in->buffer != NULL)
		g_string_free(in->buffer, TRUE);
	memset(in, 0, sizeof(*in));
}

static void print_json_error(const char *file, const char *message)
{
	JsonBuilder *b = json_builder_new();
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "file");
	json_builder_add_string_value(b, file);
	json_builder_set_member_name(b, "error");
	json_builder_add_string_value(b, message);
	json_builder_end_object(b);
	char *line = tr_json_to_line(b);
	printf("%s\n", line);
	g_free(line);
	g_object_unref(b);
}

static void print_json(const char *file, const tr_msg *msg, const tr_decision *decision)
{
	JsonBuilder *b = json_builder_new();
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "file");
	json_builder_add_string_value(b, file);
	tr_json_msg(b, msg);
	tr_json_decision(b, decision, msg->pool);
	json_builder_end_object(b);
	char *line = tr_json_to_line(b);
	printf("%s\n", line);
	g_free(line);
	g_object_unref(b);
}

static unsigned count_lines(const char *text)
{
	if (*text == '\0')
		return 0;
	unsigned n = 1;
	for (const char *p = text; *p != '\0'; p++)
		n += *p == '\n';
	return n;
}

static void print_bits(const char *label, unsigned bits, unsigned count, const char *(*name)(unsigned))
{
	if (bits == 0)
		return;
	printf("%-12s", label);
	const char *sep = "";
	for (unsigned i = 0; i < count; i++) {
		if (bits & (1u << i)) {
			printf("%s%s", sep, name(i));
			sep = ", ";
		}
	}
	printf("\n");
}

static void print_minutes(const char *label, int64_t minutes, bool business, int64_t due)
{
	char *due_text = due > 0 && due < G_MAXINT64 ? tr_json_time(due, 0) : g_strdup("never");
	if (minutes % 1440 == 0 && minutes >= 1440 && !business)
		printf("%s %" G_GINT64_FORMAT " d", label, minutes / 1440);
	else if (minutes % 60 == 0 && minutes >= 60)
		printf("%s %" G_GINT64_FORMAT " h", label, minutes / 60);
	else
		printf("%s %" G_GINT64_FORMAT " min", label, minutes);
	printf("%s (due %s)", business ? " business" : "", due_text);
	g_free(due_text);
}

static void print_decision(const tr_msg *msg, const tr_decision *d)
{
	printf("Decision:   %s %s -> team %s (%s)%s%s%s\n", tr_priority_name(d->priority), d->category,
	       d->team, d->tier, d->assignee ? ", assignee " : "", d->assignee ? d->assignee : "",
	       d->escalate ? ", ESCALATE NOW" : "");
	for (size_t i = 0; i < d->n_explanation; i++)
		printf("            - %s\n", d->explanation[i]);
	printf("Sentiment:  %+.2f (pos %.2f, neu %.2f, neg %.2f)\n", d->sentiment.compound, d->sentiment.pos,
	       d->sentiment.neu, d->sentiment.neg);
	print_bits("Triggers:", d->triggers, TR_TRIGGER_COUNT, (const char *(*)(unsigned))tr_trigger_name);
	print_minutes("SLA:        first response", d->sla.first_response_minutes, d->sla.first_response_business,
	              d->sla.first_response_due);
	print_minutes(",\n            resolution", d->sla.resolution_minutes, d->sla.resolution_business,
	              d->sla.resolution_due);
	printf("\n");
	if (d->ack)
		printf("Ack:        yes, in %s\n", d->language);
	else
		printf("Ack:        no — %s\n", d->no_ack_reason);
	for (size_t i = 0; i < d->n_hits; i++) {
		const tr_rule_hit *h = &d->hits[i];
		printf("%s %s in %s%s%s: \"%s\"%s -> %s\n", i == 0 ? "Rules:     " : "           ",
		       tr_rule_name(h->rule), tr_field_name(h->field), h->header ? ":" : "",
		       h->header ? h->header : "", h->match,
		       h->cost > 0 ? tr_pool_printf(msg->pool, " (%d edit%s)", h->cost, h->cost > 1 ? "s" : "") : "",
		       h->negated ? "nothing (negated)" : tr_classify_contribution(msg->pool, h->rule));
	}
}

static void print_text(const char *file, const tr_msg *msg, const tr_decision *decision)
{
	printf("== %s\n", file);
	if (msg->from.name != NULL)
		printf("From:       %s <%s>\n", msg->from.name, msg->from.address);
	else
		printf("From:       <%s>\n", msg->from.address);
	printf("Subject:    %s\n", msg->subject);
	if (msg->date != 0) {
		char *date = tr_json_time(msg->date, msg->date_tz_minutes);
		printf("Date:       %s\n", date);
		g_free(date);
	}
	if (msg->message_id != NULL)
		printf("Message-ID: <%s>\n", msg->message_id);
	if (msg->in_reply_to != NULL)
		printf("In-Reply-To: <%s>\n", msg->in_reply_to);
	printf("Language:   %s    Size: %zu bytes, %u part%s, text from %s\n",
	       msg->language != NULL ? msg->language : "?", msg->size, msg->part_count,
	       msg->part_count == 1 ? "" : "s", msg->text_source);
	print_bits("Automatic:", msg->auto_flags, TR_AUTO_COUNT, tr_msg_auto_name);
	if (msg->auth.spf != NULL || msg->auth.dkim != NULL || msg->auth.dmarc != NULL)
		printf("Auth:       spf=%s dkim=%s dmarc=%s\n", msg->auth.spf ? msg->auth.spf : "-",
		       msg->auth.dkim ? msg->auth.dkim : "-", msg->auth.dmarc ? msg->auth.dmarc : "-");
	for (size_t i = 0; i < msg->attachments_count; i++)
		printf("Attachment: %s (%s, %zu bytes)\n",
		       msg->attachments[i].filename ? msg->attachments[i].filename : "(unnamed)",
		       msg->attachments[i].content_type, msg->attachments[i].size);
	print_bits("Flags:", msg->flags, TR_MSG_FLAG_COUNT, tr_msg_flag_name);
	printf("New text:\n");
	unsigned shown = 0;
	const char *p = msg->text_new;
	while (*p != '\0' && shown < 12) {
		size_t len = strcspn(p, "\n");
		printf("  | %.*s\n", (int)(len > 200 ? 200 : len), p);
		shown++;
		p += len;
		if (*p == '\n')
			p++;
	}
	if (*p != '\0')
		printf("  | … (%u more lines)\n", count_lines(p));
	printf("Quoted:     %u lines%s%s%s; signature: %u lines\n", count_lines(msg->text_quoted),
	       msg->quote_marker ? " (from " : "", msg->quote_marker ? msg->quote_marker : "",
	       msg->quote_marker ? ")" : "", count_lines(msg->text_signature));
	print_decision(msg, decision);
	printf("\n");
}

int tr_cli_classify(int argc, char **argv)
{
	char *config = NULL;
	gboolean json = FALSE;
	char *channel_name = NULL;
	char *now_text = NULL;
	GOptionEntry entries[] = {
		{ "now", 0, 0, G_OPTION_ARG_STRING, &now_text,
		  "arrival time for SLA deadlines (ISO 8601 or Unix seconds; default: now)", "TIME" },
		{ "config", 'c', 0, G_OPTION_ARG_FILENAME, &config, "configuration file", "CONFIG" },
		{ "json", 0, 0, G_OPTION_ARG_NONE, &json, "one JSON object per message per line", NULL },
		{ "channel", 0, 0, G_OPTION_ARG_STRING, &channel_name,
		  "channel to report (file, imap, lmtp, milter, xmpp; default file)", "NAME" },
		{ NULL, 0, 0, 0, NULL, NULL, NULL },
	};
	if (!tr_cli_parse("classify", "[FILE...]",
	                  "Normalize and classify each message (stdin when no FILE or '-').\n"
	                  "Exit status: 0 all inputs read, 1 some input failed, 2 usage/config error.",
	                  entries, &argc, &argv))
		return TR_EXIT_USAGE;
	tr_channel channel = TR_CHANNEL_FILE;
	if (channel_name != NULL && !tr_channel_parse(channel_name, &channel)) {
		fprintf(stderr, "triage classify: unknown channel '%s'\n", channel_name);
		return TR_EXIT_USAGE;
	}
	tr_decide_input decide = { .now = g_get_real_time() / G_USEC_PER_SEC };
	if (now_text != NULL && !tr_cli_parse_time(now_text, &decide.now)) {
		fprintf(stderr, "triage classify: --now '%s' is not ISO 8601 or Unix seconds\n", now_text);
		return TR_EXIT_USAGE;
	}
	tr_engine *engine = tr_cli_engine(tr_cli_config_path(config));
	if (engine == NULL)
		return TR_EXIT_USAGE;
	const tr_norm *norm = tr_engine_norm(engine);
	size_t stdin_cap = (size_t)tr_norm_get_limits(norm)->message_bytes + 1;

	char *stdin_only[] = { (char *)"-", NULL };
	char **files = argc > 1 ? argv + 1 : stdin_only;
	int status = TR_EXIT_OK;
	for (char **f = files; *f != NULL; f++) {
		input in;
		GError *error = NULL;
		tr_msg *msg = NULL;
		if (input_open(*f, stdin_cap, &in, &error)) {
			msg = tr_norm_parse(norm, channel, in.data, in.len, &error);
			input_close(&in);
		}
		if (msg == NULL) {
			if (json)
				print_json_error(*f, error->message);
			else
				fprintf(stderr, "triage classify: %s: %s\n", *f, error->message);
			g_clear_error(&error);
			status = TR_EXIT_FAIL;
			continue;
		}
		tr_decision decision;
		tr_engine_decide(engine, msg, &decide, &decision);
		if (json)
			print_json(*f, msg, &decision);
		else
			print_text(*f, msg, &decision);
		tr_msg_free(&msg);
	}
	fflush(stdout);
	tr_engine_free(&engine);
	g_free(config);
	g_free(channel_name);
	g_free(now_text);
	return status;
}
