/*
 * engine.h — the configured pipeline (tr_engine_*)
 *
 * Reads triage.conf and everything it names, and holds the read-only parts
 * of the pipeline built from it: language detector and normalizer (and, as
 * they land, rules, classifier and policy).  The daemon, the milter, the
 * LMTP listener and `triage classify` all run messages through the same
 * engine, so a decision seen on the command line is the decision the daemon
 * makes.
 *
 * An engine is immutable after tr_engine_load() and may be shared by
 * threads; a config reload builds a new engine and swaps it.
 */
#ifndef TR_ENGINE_H
#define TR_ENGINE_H

#include "core/classify.h"
#include "core/conf.h"
#include "core/msg.h"
#include "core/normalize.h"
#include "core/outbound.h"

typedef struct tr_engine tr_engine;

/*
 * Load config_path and the files it refers to.  Every problem is reported
 * into diag; returns NULL when there was at least one error.  Relative
 * paths inside the config are relative to its directory.
 */
tr_engine *tr_engine_load(const char *config_path, tr_diag *diag);
/* Engines are reference counted: ref takes one more, free drops one and
 * releases the engine with the last (sets *engine to NULL). */
tr_engine *tr_engine_ref(tr_engine *engine);
void tr_engine_free(tr_engine **engine);

/*
 * The engine in force, swappable while threads use it (config reload).
 * get returns a reference the caller drops with tr_engine_free() when done
 * with one message; set installs a new engine (takes the caller's
 * reference) — the old one lives until its last user lets go.
 */
typedef struct tr_engine_slot tr_engine_slot;
tr_engine_slot *tr_engine_slot_new(tr_engine *engine);
tr_engine *tr_engine_slot_get(tr_engine_slot *slot);
void tr_engine_slot_set(tr_engine_slot *slot, tr_engine *engine);
/* How many times set was called (a reload counter, for logs and tests). */
unsigned tr_engine_slot_generation(tr_engine_slot *slot);
void tr_engine_slot_free(tr_engine_slot **slot);

/* Borrowed views, valid while the engine lives. */
const tr_conf *tr_engine_conf(const tr_engine *engine);
const tr_norm *tr_engine_norm(const tr_engine *engine);
const tr_classifier *tr_engine_classifier(const tr_engine *engine);
const tr_policy *tr_engine_policy(const tr_engine *engine);
const tr_outbound *tr_engine_outbound(const tr_engine *engine);

/* The halves of tr_engine_decide (see classify.h). */
void tr_engine_signals(const tr_engine *engine, const tr_msg *msg, tr_signals *signals);
void tr_engine_decide_signals(const tr_engine *engine, const tr_msg *msg, const tr_signals *signals,
                              const tr_decide_input *input, tr_decision *decision);

/* Classify and decide for msg (see classify.h). */
void tr_engine_decide(const tr_engine *engine, const tr_msg *msg, const tr_decide_input *input,
                      tr_decision *decision);

/* The effective settings, one "group.key = value  # doc" per line (g_free). */
char *tr_engine_describe(const tr_engine *engine);

#endif
