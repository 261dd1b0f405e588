/*
 * classify.h — rules + sentiment + policy: one decision (tr_classify_*)
 *
 * tr_classify() runs the rules over the message, scores the sentiment of
 * what the customer just wrote, and lets the policy decide.  The decision
 * (policy.h) and everything it points to live in the message's pool.
 */
#ifndef TR_CLASSIFY_H
#define TR_CLASSIFY_H

#include "core/policy.h"
#include "core/rules.h"
#include "core/sentiment.h"

typedef struct {
	const tr_rules *rules;
	const tr_sentiment *sentiment;  /* NULL: sentiment 0 */
	const tr_policy *policy;
} tr_classifier;

/* Characters of subject + new text given to the sentiment scorer. */
#define TR_CLASSIFY_SENTIMENT_CHARS 4096

void tr_classify(const tr_classifier *classifier, const tr_msg *msg, const tr_decide_input *input,
                 tr_decision *decision);

/* The two halves of tr_classify(): what the message says (rules, sentiment;
 * in msg->pool), and the decision from it.  The store decides twice when
 * history adds triggers (repeat contact, mass incident), matching once. */
void tr_classify_signals(const tr_classifier *classifier, const tr_msg *msg, tr_signals *signals);
void tr_classify_decide(const tr_classifier *classifier, const tr_msg *msg, const tr_signals *signals,
                        const tr_decide_input *input, tr_decision *decision);

/* "category billing +3, urgency high, trigger churn" for a rule (in pool). */
const char *tr_classify_contribution(tr_pool *pool, const tr_rule *rule);

#endif
