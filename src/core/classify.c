/* classify.c — the classification step; see classify.h */
#include "core/classify.h"

#include <glib.h>
#include <string.h>

static tr_sentiment_values score_sentiment(const tr_sentiment *sentiment, const tr_msg *msg)
{
	tr_sentiment_values v = { 0, 0, 1, 0 };
	if (sentiment == NULL)
		return v;
	/* What the customer just wrote, headed by the subject; bounded. */
	const char *text = *msg->text_new != '\0' ? msg->text_new : msg->text_quoted;
	size_t subject_len = strlen(msg->subject), text_len = strlen(text);
	size_t cap = TR_CLASSIFY_SENTIMENT_CHARS;
	if (text_len > cap) {
		text_len = cap;
		while (text_len > 0 && ((unsigned char)text[text_len] & 0xC0) == 0x80)
			text_len--;
	}
	char *joined = tr_pool_alloc_uninit(msg->pool, subject_len + text_len + 3);
	memcpy(joined, msg->subject, subject_len);
	size_t o = subject_len;
	if (subject_len > 0)
		joined[o++] = '\n';
	memcpy(joined + o, text, text_len);
	o += text_len;
	joined[o] = '\0';
	tr_sentiment_score s = tr_sentiment_text(sentiment, joined, o);
	v.compound = s.compound;
	v.pos = s.pos;
	v.neu = s.neu;
	v.neg = s.neg;
	return v;
}

void tr_classify_signals(const tr_classifier *classifier, const tr_msg *msg, tr_signals *signals)
{
	memset(signals, 0, sizeof(*signals));
	if (classifier->rules != NULL)
		signals->hits = tr_rules_match(classifier->rules, msg, &signals->n_hits);
	signals->sentiment = score_sentiment(classifier->sentiment, msg);
}

void tr_classify_decide(const tr_classifier *classifier, const tr_msg *msg, const tr_signals *signals,
                        const tr_decide_input *input, tr_decision *decision)
{
	tr_policy_decide(classifier->policy, msg, signals, input, decision);
}

void tr_classify(const tr_classifier *classifier, const tr_msg *msg, const tr_decide_input *input,
                 tr_decision *decision)
{
	tr_signals signals;
	tr_classify_signals(classifier, msg, &signals);
	tr_classify_decide(classifier, msg, &signals, input, decision);
}

const char *tr_classify_contribution(tr_pool *pool, const tr_rule *rule)
{
	const tr_rule_effect *e = tr_rule_get_effect(rule);
	GString *out = g_string_new(NULL);
	for (unsigned i = 0; i < e->n_categories; i++)
		g_string_append_printf(out, "%scategory %s +%g", out->len ? ", " : "", e->categories[i].name,
		                       e->categories[i].weight);
	if (e->urgency != TR_LEVEL_NONE)
		g_string_append_printf(out, "%surgency %s", out->len ? ", " : "", tr_level_name(e->urgency));
	if (e->impact != TR_LEVEL_NONE)
		g_string_append_printf(out, "%simpact %s", out->len ? ", " : "", tr_level_name(e->impact));
	for (int t = 0; t < TR_TRIGGER_COUNT; t++) {
		if (e->triggers & (1u << t))
			g_string_append_printf(out, "%strigger %s", out->len ? ", " : "", tr_trigger_name((tr_trigger)t));
	}
	if (e->score != 0)
		g_string_append_printf(out, "%sscore %+g", out->len ? ", " : "", e->score);
	char *s = tr_pool_strdup(pool, out->str);
	g_string_free(out, TRUE);
	return s;
}
