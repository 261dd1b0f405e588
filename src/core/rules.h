/*
 * rules.h — classification rules: loading, validation, matching (tr_rules_*)
 *
 * Rules are data (files conf/rules.d/NN-name.conf, INI groups "[rule NAME]"); see
 * docs/rules.md for the format.  Each rule says where it looks (subject,
 * new text, quoted text, signature, whole body, sender address or domain,
 * a header), what it looks for (phrases, a TRE regex, or an approximate
 * phrase with a maximum edit cost) and what a match contributes (category
 * weights, urgency, impact, triggers, an escalation score).
 *
 * Matching works on folded text (fold.h: lowercase, accents removed,
 * single spaces).  One Aho–Corasick pass per field finds the literals every
 * rule needs; phrase rules are decided by that pass alone, TRE regexes run
 * only when their required literals occur, and approximate phrases run
 * only on short windows around an exact piece of the phrase (with k edits
 * allowed, one of k+1 pieces must occur unchanged).
 *
 * A tr_rules set is read-only after loading and may be shared by threads.
 */
#ifndef TR_RULES_H
#define TR_RULES_H

#include <stdbool.h>
#include <stdint.h>

#include "core/conf.h"
#include "core/msg.h"
#include "core/pool.h"

typedef enum { TR_LEVEL_NONE = 0, TR_LEVEL_LOW, TR_LEVEL_MEDIUM, TR_LEVEL_HIGH } tr_level;

/* Where a rule looks. */
typedef enum {
	TR_FIELD_SUBJECT = 0,
	TR_FIELD_NEW,
	TR_FIELD_QUOTED,
	TR_FIELD_SIGNATURE,
	TR_FIELD_SENDER,         /* the From address */
	TR_FIELD_SENDER_DOMAIN,  /* the domain of the From address */
	TR_FIELD_HEADER,         /* the header named by the rule */
	TR_FIELD_COUNT
} tr_field;

/* Escalation triggers.  REPEAT_CONTACT and MASS_INCIDENT are set by the
 * store (history), VIP and NEGATIVE_SENTIMENT by the classifier. */
typedef enum {
	TR_TRIGGER_ESCALATION_REQUEST = 0,
	TR_TRIGGER_COMPLAINT,
	TR_TRIGGER_LEGAL,
	TR_TRIGGER_SECURITY,
	TR_TRIGGER_OUTAGE,
	TR_TRIGGER_DATA_LOSS,
	TR_TRIGGER_CHURN,
	TR_TRIGGER_VIP,
	TR_TRIGGER_NEGATIVE_SENTIMENT,
	TR_TRIGGER_REPEAT_CONTACT,
	TR_TRIGGER_MASS_INCIDENT,
	TR_TRIGGER_COUNT
} tr_trigger;

/* Named limits, group [rules] of triage.conf. */
typedef struct {
	int64_t pattern_bytes;    /* longest pattern or phrase */
	int64_t phrases_per_rule;
	int64_t repeat_max;       /* largest {n,m} bound in a regex */
	int64_t max_cost;         /* largest edit cost of an approximate rule */
	int64_t rules_max;        /* rules in all files together */
	int64_t match_chars;      /* characters of each field that are matched */
} tr_rules_limits;

extern const tr_conftab tr_rules_limits_table[];

typedef struct tr_rules tr_rules;
typedef struct tr_rule tr_rule;

typedef struct {
	const char *name;   /* category name, owned by the rule set */
	double weight;
} tr_rule_category;

/* What one rule contributes when it fires (owned by the rule set). */
typedef struct {
	const tr_rule_category *categories;
	unsigned n_categories;
	tr_level urgency, impact;
	uint32_t triggers;   /* bit (1 << tr_trigger) */
	double score;
} tr_rule_effect;

/* One rule that matched one field of one message (in the message pool). */
typedef struct {
	const tr_rule *rule;
	tr_field field;
	const char *header;  /* header name when field is TR_FIELD_HEADER */
	const char *match;   /* the matched folded text */
	int cost;            /* edit cost of an approximate match, else 0 */
	bool negated;        /* a negation word came right before: no effect */
} tr_rule_hit;

/*
 * Load every *.conf in dir (sorted by name), or one file.  Every error is
 * reported into diag with file, line and rule name; returns NULL when
 * there was one.  limits: NULL for the defaults.
 */
tr_rules *tr_rules_load(const char *path, const tr_rules_limits *limits, tr_diag *diag);
/* Rules from one buffer (tests, fuzzing); name is used in messages. */
tr_rules *tr_rules_load_data(const char *name, const char *data, size_t len,
                             const tr_rules_limits *limits, tr_diag *diag);
void tr_rules_free(tr_rules **rules);

unsigned tr_rules_count(const tr_rules *rules);
/* Every category name any rule contributes to (NULL-terminated, owned). */
const char *const *tr_rules_categories(const tr_rules *rules);
/* Rules whose regex has no usable literal and runs on every message. */
unsigned tr_rules_unfiltered(const tr_rules *rules);

const char *tr_rule_name(const tr_rule *rule);
const tr_rule_effect *tr_rule_get_effect(const tr_rule *rule);

/*
 * Match every rule against msg.  Hits are allocated in msg->pool; *n_hits_r
 * their number.  A rule fires at most once per field.  Rules with a
 * language list only run when msg->language is in it or unknown.
 */
tr_rule_hit *tr_rules_match(const tr_rules *rules, const tr_msg *msg, size_t *n_hits_r);

/* Names for fields, levels and triggers (static strings) and parsing. */
const char *tr_field_name(tr_field field);
const char *tr_level_name(tr_level level);
bool tr_level_parse(const char *text, tr_level *level_r);
const char *tr_trigger_name(tr_trigger trigger);
bool tr_trigger_parse(const char *text, tr_trigger *trigger_r);

#endif
