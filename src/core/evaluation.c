/* evaluation.c — accuracy, precision/recall/F1, confusion; see evaluation.h */
#include "core/evaluation.h"

#include <stdbool.h>
#include <string.h>

struct tr_eval {
	GHashTable *pairs;      /* "expected\x1fpredicted" -> count */
	GHashTable *labels;     /* label set */
	unsigned total, correct;
	GArray *classes;        /* tr_eval_class, rebuilt on demand */
	bool dirty;
};

tr_eval *tr_eval_new(void)
{
	tr_eval *e = g_new0(tr_eval, 1);
	e->pairs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	e->labels = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	e->classes = g_array_new(FALSE, TRUE, sizeof(tr_eval_class));
	return e;
}

void tr_eval_free(tr_eval **evalp)
{
	tr_eval *e = *evalp;
	if (e == NULL)
		return;
	*evalp = NULL;
	g_hash_table_destroy(e->pairs);
	g_hash_table_destroy(e->labels);
	g_array_free(e->classes, TRUE);
	g_free(e);
}

void tr_eval_add(tr_eval *e, const char *expected, const char *predicted)
{
	char *key = g_strdup_printf("%s\x1f%s", expected, predicted);
	guint count = GPOINTER_TO_UINT(g_hash_table_lookup(e->pairs, key));
	g_hash_table_replace(e->pairs, key, GUINT_TO_POINTER(count + 1));
	g_hash_table_add(e->labels, g_strdup(expected));
	g_hash_table_add(e->labels, g_strdup(predicted));
	e->total++;
	e->correct += strcmp(expected, predicted) == 0;
	e->dirty = true;
}

unsigned tr_eval_total(const tr_eval *e)
{
	return e->total;
}

double tr_eval_accuracy(const tr_eval *e)
{
	return e->total > 0 ? (double)e->correct / e->total : 0;
}

unsigned tr_eval_confusion(const tr_eval *e, const char *expected, const char *predicted)
{
	char *key = g_strdup_printf("%s\x1f%s", expected, predicted);
	guint count = GPOINTER_TO_UINT(g_hash_table_lookup(e->pairs, key));
	g_free(key);
	return count;
}

static int compare_labels(const void *a, const void *b)
{
	return strcmp(((const tr_eval_class *)a)->label, ((const tr_eval_class *)b)->label);
}

const tr_eval_class *tr_eval_classes(tr_eval *e, unsigned *n_r)
{
	if (e->dirty) {
		g_array_set_size(e->classes, 0);
		GHashTableIter it;
		gpointer key;
		g_hash_table_iter_init(&it, e->labels);
		while (g_hash_table_iter_next(&it, &key, NULL)) {
			tr_eval_class c = { .label = key };
			g_array_append_val(e->classes, c);
		}
		g_array_sort(e->classes, compare_labels);
		for (guint i = 0; i < e->classes->len; i++) {
			tr_eval_class *c = &g_array_index(e->classes, tr_eval_class, i);
			for (guint j = 0; j < e->classes->len; j++) {
				const char *other = g_array_index(e->classes, tr_eval_class, j).label;
				c->support += tr_eval_confusion(e, c->label, other);
				c->predicted += tr_eval_confusion(e, other, c->label);
			}
			c->correct = tr_eval_confusion(e, c->label, c->label);
			c->precision = c->predicted > 0 ? (double)c->correct / c->predicted : 0;
			c->recall = c->support > 0 ? (double)c->correct / c->support : 0;
			c->f1 = c->precision + c->recall > 0
			        ? 2 * c->precision * c->recall / (c->precision + c->recall) : 0;
		}
		e->dirty = false;
	}
	*n_r = e->classes->len;
	return (const tr_eval_class *)e->classes->data;
}

double tr_eval_macro_f1(const tr_eval *ce)
{
	tr_eval *e = (tr_eval *)ce;
	unsigned n;
	const tr_eval_class *classes = tr_eval_classes(e, &n);
	double sum = 0;
	unsigned counted = 0;
	for (unsigned i = 0; i < n; i++) {
		if (classes[i].support == 0)
			continue;
		sum += classes[i].f1;
		counted++;
	}
	return counted > 0 ? sum / counted : 0;
}

char *tr_eval_report(tr_eval *e)
{
	unsigned n;
	const tr_eval_class *classes = tr_eval_classes(e, &n);
	GString *out = g_string_new(NULL);
	g_string_append_printf(out, "messages: %u\naccuracy: %.3f\nmacro-F1: %.3f\n\n", e->total,
	                       tr_eval_accuracy(e), tr_eval_macro_f1(e));
	g_string_append_printf(out, "%-16s %9s %9s %9s %9s\n", "class", "precision", "recall", "F1", "support");
	for (unsigned i = 0; i < n; i++)
		g_string_append_printf(out, "%-16s %9.3f %9.3f %9.3f %9u\n", classes[i].label,
		                       classes[i].precision, classes[i].recall, classes[i].f1, classes[i].support);
	g_string_append(out, "\nconfusion (rows: expected, columns: predicted)\n");
	g_string_append_printf(out, "%-16s", "");
	for (unsigned j = 0; j < n; j++)
		g_string_append_printf(out, " %8.8s", classes[j].label);
	g_string_append_c(out, '\n');
	for (unsigned i = 0; i < n; i++) {
		if (classes[i].support == 0)
			continue;
		g_string_append_printf(out, "%-16s", classes[i].label);
		for (unsigned j = 0; j < n; j++)
			g_string_append_printf(out, " %8u", tr_eval_confusion(e, classes[i].label, classes[j].label));
		g_string_append_c(out, '\n');
	}
	return g_string_free(out, FALSE);
}

JsonNode *tr_eval_json(tr_eval *e)
{
	unsigned n;
	const tr_eval_class *classes = tr_eval_classes(e, &n);
	JsonBuilder *b = json_builder_new();
	json_builder_begin_object(b);
	json_builder_set_member_name(b, "messages");
	json_builder_add_int_value(b, e->total);
	json_builder_set_member_name(b, "accuracy");
	json_builder_add_double_value(b, tr_eval_accuracy(e));
	json_builder_set_member_name(b, "macro_f1");
	json_builder_add_double_value(b, tr_eval_macro_f1(e));
	json_builder_set_member_name(b, "classes");
	json_builder_begin_object(b);
	for (unsigned i = 0; i < n; i++) {
		json_builder_set_member_name(b, classes[i].label);
		json_builder_begin_object(b);
		json_builder_set_member_name(b, "precision");
		json_builder_add_double_value(b, classes[i].precision);
		json_builder_set_member_name(b, "recall");
		json_builder_add_double_value(b, classes[i].recall);
		json_builder_set_member_name(b, "f1");
		json_builder_add_double_value(b, classes[i].f1);
		json_builder_set_member_name(b, "support");
		json_builder_add_int_value(b, classes[i].support);
		json_builder_set_member_name(b, "predicted_as");
		json_builder_begin_object(b);
		for (unsigned j = 0; j < n; j++) {
			unsigned count = tr_eval_confusion(e, classes[i].label, classes[j].label);
			if (count == 0)
				continue;
			json_builder_set_member_name(b, classes[j].label);
			json_builder_add_int_value(b, count);
		}
		json_builder_end_object(b);
		json_builder_end_object(b);
	}
	json_builder_end_object(b);
	json_builder_end_object(b);
	JsonNode *root = json_builder_get_root(b);
	g_object_unref(b);
	return root;
}
