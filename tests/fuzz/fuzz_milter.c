/*
 * fuzz_milter.c — libFuzzer target: what an MTA hands the milter, from any
 * bytes.  Input lines until the first empty line are the envelope and the
 * headers: "R:ADDR" a recipient, "NAME:VALUE" a header (as libmilter gives
 * it, raw), anything else the MAIL FROM; the rest is the body, given in
 * chunks.  The shipped configuration with every milter option on.
 * Invariants: the per-message state is freed whatever happens; every
 * header we add or change has no line break but folds (no injection into
 * the message); what we add is valid UTF-8 and only ours or the subject;
 * no X-Triage-* header from outside survives.
 */
#include <glib.h>
#include <locale.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channels/milter.h"
#include "core/engine.h"
#include "core/xtriage.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static tr_engine_slot *engines;
static tr_milter_settings settings;
static tr_milter *milter;

static void setup(void)
{
	setlocale(LC_CTYPE, "C.UTF-8");
	const char *top = g_getenv("TR_TOP");
	char *path = g_build_filename(top != NULL ? top : ".", "conf", "triage.conf", NULL);
	tr_diag *diag = tr_diag_new();
	tr_engine *engine = tr_engine_load(path, diag);
	if (engine == NULL)
		abort();  /* run from the top of the tree, or set TR_TOP */
	static const char extra[] = "[milter]\nrecipients = support@example.test, @support.example.test\n"
	                            "agent_domains = example.test\ntag_priority = P1, P2, P3\ntag_ticket = yes\n"
	                            "escalation_recipient = yes\nquarantine_triggers = security\nbody_bytes = 4K\n";
	char *name = g_build_filename(top != NULL ? top : ".", "conf", "milter-fuzz.conf", NULL);
	tr_conf *conf = tr_conf_load_data(name, extra, sizeof(extra) - 1, diag);
	tr_milter_settings_load(&settings, conf, NULL, diag);
	if (tr_diag_error_count(diag) > 0)
		abort();
	tr_conf_free(&conf);
	tr_diag_free(&diag);
	g_free(name);
	g_free(path);
	engines = tr_engine_slot_new(engine);
	milter = tr_milter_new(engines, &settings, NULL);
}

/* A header value we hand to libmilter: no CR, and every LF a fold
 * (followed by a blank): no new header line.  (A tagged subject keeps the
 * customer's raw bytes, whatever they are.) */
static bool clean(const char *s)
{
	if (s == NULL)
		return true;
	if (strchr(s, '\r') != NULL)
		return false;
	for (const char *nl = strchr(s, '\n'); nl != NULL; nl = strchr(nl + 1, '\n')) {
		if (nl[1] != ' ' && nl[1] != '\t')
			return false;
	}
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (milter == NULL)
		setup();
	char *text = g_strndup((const char *)data, size);  /* stops at a NUL, as C strings do */
	char *body = strstr(text, "\n\n");
	if (body != NULL) {
		*body = '\0';
		body += 2;
	}
	char **lines = g_strsplit(text, "\n", 200);
	tr_milter_msg *msg = NULL;
	unsigned headers = 0, outside_triage = 0;
	for (char **l = lines; *l != NULL; l++) {
		char *colon = strchr(*l, ':');
		if (msg == NULL) {
			msg = tr_milter_msg_new(milter, colon == NULL ? *l : "<customer@example.org>");
			tr_milter_msg_rcpt(msg, "<support@example.test>");
		}
		if (g_str_has_prefix(*l, "R:")) {
			tr_milter_msg_rcpt(msg, *l + 2);
		} else if (colon != NULL && colon > *l) {
			*colon = '\0';
			tr_milter_msg_header(msg, *l, colon + 1);
			headers++;
			outside_triage += tr_xtriage_is_header(*l, strlen(*l));
		}
	}
	if (msg == NULL) {
		msg = tr_milter_msg_new(milter, "<>");
		tr_milter_msg_rcpt(msg, "<support@example.test>");
	}
	if (tr_milter_msg_eoh(msg) == TR_MILTER_CONTINUE) {
		size_t left = body != NULL ? strlen(body) : 0;
		for (const char *p = body; left > 0;) {
			size_t n = MIN(left, (size_t)(1 + (unsigned char)*p % 97));
			tr_milter_msg_body(msg, p, n);
			p += n;
			left -= n;
		}
		const tr_milter_action *actions = NULL;
		size_t n = 0;
		if (tr_milter_msg_eom(msg, "QFUZZ", &actions, &n) == TR_MILTER_CONTINUE) {
			unsigned deleted = 0;
			for (size_t i = 0; i < n; i++) {
				const tr_milter_action *a = &actions[i];
				/* (A deletion names the header as the MTA gave it.) */
				if ((a->kind != TR_MILTER_DELETE_HEADER && !clean(a->name)) || !clean(a->value)) {
					fprintf(stderr, "unclean action %d %s: %s\n", a->kind, a->name ? a->name : "-",
					        a->value ? a->value : "-");
					abort();  /* header injection */
				}
				if (a->kind == TR_MILTER_DELETE_HEADER)
					deleted++;
				if (a->kind == TR_MILTER_ADD_HEADER && a->value != NULL && !g_utf8_validate(a->value, -1, NULL))
					abort();  /* our own headers are valid UTF-8 */
				if (a->kind == TR_MILTER_ADD_HEADER && a->name != NULL &&
				    !tr_xtriage_is_header(a->name, strlen(a->name)) && strcmp(a->name, "Subject") != 0)
					{ fprintf(stderr, "added %s\n", a->name); abort(); }  /* we add only our own headers */
			}
			if (deleted < outside_triage)
				abort();  /* a forged X-Triage-* header survived */
		}
	}
	tr_milter_msg_free(&msg);
	g_strfreev(lines);
	g_free(text);
	(void)headers;
	return 0;
}
