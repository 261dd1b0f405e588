/*
 * json.h — JSON views of messages and decisions (tr_json_*), via json-glib
 *
 * `triage classify --json` prints one object per message per line; this
 * module adds the members.  The field names are a stable contract: new
 * fields may be added, existing ones keep their name and meaning.
 */
#ifndef TR_JSON_H
#define TR_JSON_H

#include <json-glib/json-glib.h>

#include "core/msg.h"
#include "core/policy.h"

/* Add the normalized-message members to the object being built by b
 * (between json_builder_begin_object and json_builder_end_object). */
void tr_json_msg(JsonBuilder *b, const tr_msg *msg);

/* Add the decision members (category, priority, ..., rules, explanation);
 * strings it makes live in pool. */
void tr_json_decision(JsonBuilder *b, const tr_decision *decision, tr_pool *pool);

/* The built root as one compact line, without a newline (g_free). */
char *tr_json_to_line(JsonBuilder *b);

/* ISO 8601 with the sender's offset ("2026-11-22T10:00:00+01:00"), g_free. */
char *tr_json_time(int64_t unix_time, int tz_minutes);

#endif
