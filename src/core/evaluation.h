/*
 * evaluation.h — classification quality figures (tr_eval_*)
 *
 * Feed (expected, predicted) label pairs; get accuracy, per-class
 * precision, recall and F1, macro-F1 and the confusion matrix, as text or
 * JSON.  Classes are every label seen on either side, sorted by name.
 */
#ifndef TR_EVALUATION_H
#define TR_EVALUATION_H

#include <glib.h>
#include <json-glib/json-glib.h>

typedef struct tr_eval tr_eval;

typedef struct {
	const char *label;
	unsigned support;      /* expected count */
	unsigned predicted;    /* predicted count */
	unsigned correct;
	double precision, recall, f1;
} tr_eval_class;

tr_eval *tr_eval_new(void);
void tr_eval_free(tr_eval **eval);
void tr_eval_add(tr_eval *eval, const char *expected, const char *predicted);

unsigned tr_eval_total(const tr_eval *eval);
double tr_eval_accuracy(const tr_eval *eval);
/* Mean F1 over the classes that occur as expected labels. */
double tr_eval_macro_f1(const tr_eval *eval);
/* Classes sorted by label; *n_r their number.  Owned by eval, valid until
 * the next tr_eval_add(). */
const tr_eval_class *tr_eval_classes(tr_eval *eval, unsigned *n_r);
/* Count of expected=a predicted=b. */
unsigned tr_eval_confusion(const tr_eval *eval, const char *expected, const char *predicted);

/* The report a human reads (g_free). */
char *tr_eval_report(tr_eval *eval);
/* The same as a JSON object. */
JsonNode *tr_eval_json(tr_eval *eval);

#endif
