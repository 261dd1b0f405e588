/* engine.c — config to pipeline; see engine.h */
#include "core/engine.h"

#include <string.h>

#include "core/lang.h"

#define TEXTCAT_MODELS "/usr/share/libexttextcat"

struct tr_engine {
	gint refs;
	tr_conf *conf;
	tr_lang *lang;
	tr_norm *norm;
	tr_norm_limits limits;
	tr_rules_limits rules_limits;
	tr_rules *rules;
	tr_sentiment *sentiment;
	tr_policy *policy;
	tr_outbound *outbound;
	tr_classifier classifier;
};

static const char *const triage_keys[] = {
	"language_fingerprints", "language_models", "trusted_authserv_id", "rules",
	"sentiment_lexicon", "emoji_lexicon", "support_lexicon", "policy", "teams",
	"calendars", "customers", NULL,
};

static void load_sentiment(tr_engine *engine, tr_diag *diag)
{
	const tr_conf *conf = engine->conf;
	char *vader = tr_conf_file_path(conf, "triage", "sentiment_lexicon", "sentiment/vader_lexicon.txt");
	char *emoji = tr_conf_file_path(conf, "triage", "emoji_lexicon", NULL);
	char *support = tr_conf_file_path(conf, "triage", "support_lexicon", NULL);
	GError *error = NULL;
	engine->sentiment = tr_sentiment_load(vader, emoji, support, &error);
	if (engine->sentiment == NULL) {
		tr_conf_error(conf, diag, "triage", "sentiment_lexicon", "%s", error->message);
		g_clear_error(&error);
	}
	g_free(vader);
	g_free(emoji);
	g_free(support);
}

tr_engine *tr_engine_load(const char *config_path, tr_diag *diag)
{
	unsigned errors_before = tr_diag_error_count(diag);
	tr_conf *conf = tr_conf_load(config_path, diag);
	if (conf == NULL)
		return NULL;
	tr_engine *engine = g_new0(tr_engine, 1);
	engine->refs = 1;
	engine->conf = conf;

	if (!g_key_file_has_group(tr_conf_keyfile(conf), "triage"))
		tr_diag_warning(diag, tr_conf_path(conf), 0, "no [triage] group: using defaults");
	tr_conf_check_keys(conf, diag, "triage", triage_keys);
	tr_conftab_load(tr_norm_limits_table, conf, diag, "limits", &engine->limits);

	char *fingerprints = tr_conf_file_path(conf, "triage", "language_fingerprints", NULL);
	char *models = tr_conf_string(conf, "triage", "language_models", TEXTCAT_MODELS);
	GError *error = NULL;
	engine->lang = tr_lang_new(fingerprints, models, &error);
	if (engine->lang == NULL) {
		tr_conf_error(conf, diag, "triage", "language_fingerprints", "%s", error->message);
		g_clear_error(&error);
	}
	g_free(fingerprints);
	g_free(models);

	char *authserv = tr_conf_string(conf, "triage", "trusted_authserv_id", NULL);
	if (authserv != NULL && *authserv == '\0')
		g_clear_pointer(&authserv, g_free);
	engine->norm = tr_norm_new(&engine->limits, engine->lang, authserv);
	g_free(authserv);

	tr_conftab_load(tr_rules_limits_table, conf, diag, "rules", &engine->rules_limits);
	char *rules_path = tr_conf_file_path(conf, "triage", "rules", "rules.d");
	engine->rules = tr_rules_load(rules_path, &engine->rules_limits, diag);
	g_free(rules_path);
	load_sentiment(engine, diag);
	engine->policy = tr_policy_load(conf, engine->rules != NULL ? tr_rules_categories(engine->rules) : NULL, diag);
	engine->outbound = tr_outbound_load(conf, diag);
	engine->classifier.rules = engine->rules;
	engine->classifier.sentiment = engine->sentiment;
	engine->classifier.policy = engine->policy;

	if (tr_diag_error_count(diag) > errors_before)
		tr_engine_free(&engine);
	return engine;
}

tr_engine *tr_engine_ref(tr_engine *engine)
{
	g_atomic_int_inc(&engine->refs);
	return engine;
}

struct tr_engine_slot {
	GMutex lock;
	tr_engine *engine;
	unsigned generation;
};

tr_engine_slot *tr_engine_slot_new(tr_engine *engine)
{
	tr_engine_slot *slot = g_new0(tr_engine_slot, 1);
	g_mutex_init(&slot->lock);
	slot->engine = engine;
	return slot;
}

tr_engine *tr_engine_slot_get(tr_engine_slot *slot)
{
	g_mutex_lock(&slot->lock);
	tr_engine *e = tr_engine_ref(slot->engine);
	g_mutex_unlock(&slot->lock);
	return e;
}

void tr_engine_slot_set(tr_engine_slot *slot, tr_engine *engine)
{
	g_mutex_lock(&slot->lock);
	tr_engine *old = slot->engine;
	slot->engine = engine;
	slot->generation++;
	g_mutex_unlock(&slot->lock);
	tr_engine_free(&old);
}

unsigned tr_engine_slot_generation(tr_engine_slot *slot)
{
	g_mutex_lock(&slot->lock);
	unsigned g = slot->generation;
	g_mutex_unlock(&slot->lock);
	return g;
}

void tr_engine_slot_free(tr_engine_slot **slotp)
{
	tr_engine_slot *slot = *slotp;
	if (slot == NULL)
		return;
	*slotp = NULL;
	tr_engine_free(&slot->engine);
	g_mutex_clear(&slot->lock);
	g_free(slot);
}

void tr_engine_free(tr_engine **enginep)
{
	tr_engine *engine = *enginep;
	if (engine == NULL)
		return;
	*enginep = NULL;
	if (!g_atomic_int_dec_and_test(&engine->refs))
		return;
	tr_outbound_free(&engine->outbound);
	tr_policy_free(&engine->policy);
	tr_sentiment_free(&engine->sentiment);
	tr_rules_free(&engine->rules);
	tr_norm_free(&engine->norm);
	tr_lang_free(&engine->lang);
	tr_conf_free(&engine->conf);
	g_free(engine);
}

const tr_conf *tr_engine_conf(const tr_engine *engine)
{
	return engine->conf;
}

const tr_norm *tr_engine_norm(const tr_engine *engine)
{
	return engine->norm;
}

const tr_classifier *tr_engine_classifier(const tr_engine *engine)
{
	return &engine->classifier;
}

const tr_policy *tr_engine_policy(const tr_engine *engine)
{
	return engine->policy;
}

const tr_outbound *tr_engine_outbound(const tr_engine *engine)
{
	return engine->outbound;
}

void tr_engine_signals(const tr_engine *engine, const tr_msg *msg, tr_signals *signals)
{
	tr_classify_signals(&engine->classifier, msg, signals);
}

void tr_engine_decide_signals(const tr_engine *engine, const tr_msg *msg, const tr_signals *signals,
                              const tr_decide_input *input, tr_decision *decision)
{
	tr_classify_decide(&engine->classifier, msg, signals, input, decision);
}

void tr_engine_decide(const tr_engine *engine, const tr_msg *msg, const tr_decide_input *input,
                      tr_decision *decision)
{
	tr_classify(&engine->classifier, msg, input, decision);
}

char *tr_engine_describe(const tr_engine *engine)
{
	GString *out = g_string_new("[limits]\n");
	tr_conftab_print(tr_norm_limits_table, &engine->limits, out);
	g_string_append(out, "\n[rules]\n");
	tr_conftab_print(tr_rules_limits_table, &engine->rules_limits, out);
	g_string_append_printf(out, "\n# %u rules (%u without a prefilter literal), categories:",
	                       tr_rules_count(engine->rules), tr_rules_unfiltered(engine->rules));
	for (const char *const *c = tr_rules_categories(engine->rules); *c != NULL; c++)
		g_string_append_printf(out, " %s", *c);
	g_string_append_c(out, '\n');
	return g_string_free(out, FALSE);
}
