/*
 * testutil.h — what every unit test includes: cmocka and small helpers.
 *
 * tr_test_path() resolves a path under the repository (tests run from the
 * top directory); tr_test_corpus() resolves under ../shared/corpus and
 * returns NULL when the corpus is absent, so a test can skip with a clear
 * message.  Returned strings are g_malloc'd: g_free them.
 *
 * tr_test_engine() loads a configuration and prints its diagnostics when
 * it is refused (the caller owns the engine; NULL then);
 * tr_test_rmtree() removes a temporary directory with everything in it
 * and frees and clears its path.
 */
#ifndef TR_TESTUTIL_H
#define TR_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <glib.h>

#include "core/engine.h"

char *tr_test_path(const char *relative);
char *tr_test_corpus(const char *relative);
/* The whole file, or a cmocka failure naming it. */
char *tr_test_read(const char *path, size_t *len_r);
tr_engine *tr_test_engine(const char *config_path);
void tr_test_rmtree(char **dirp);

#endif
