/*
 * store-private.h — what the modules of src/store share; nothing outside
 * src/store includes this.
 */
#ifndef TR_STORE_PRIVATE_H
#define TR_STORE_PRIVATE_H

#include <sqlite3.h>

#include "store/store.h"

sqlite3 *tr_store_db(tr_store *store);
/* A prepared statement for sql, cached per connection by the address of
 * the string (use string literals); reset, bindings cleared. */
sqlite3_stmt *tr_store_stmt(tr_store *store, const char *sql);
/* Set *error from the connection's last error (rc is the failing code). */
void tr_store_error(tr_store *store, GError **error, int rc, const char *what);
/* Step a statement that returns no rows; false with *error otherwise. */
bool tr_store_exec_stmt(tr_store *store, sqlite3_stmt *st, const char *what, GError **error);
/* Run sql with no parameters (schema, pragmas). */
bool tr_store_exec(tr_store *store, const char *sql, GError **error);
/* Text column as a g_malloc'd string (NULL for SQL NULL). */
char *tr_store_column_dup(sqlite3_stmt *st, int col);

#endif
