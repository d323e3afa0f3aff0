#ifndef HOOKGATE_CSQLITE_SHIM_H
#define HOOKGATE_CSQLITE_SHIM_H
/* SQLite as Swift sees it (the ledger store). Macros become tiny inline functions; no logic. */
#include <sqlite3.h>

/* sqlite3_db_config is variadic, which Swift cannot call. */
static inline int hg_sqlite_no_checkpoint_on_close(sqlite3 *db) {
    return sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)0);
}

/* SQLITE_TRANSIENT is a cast of -1 to a function pointer, which Swift cannot spell. */
static inline int hg_sqlite_bind_text(sqlite3_stmt *statement, int index, const char *text, int bytes) {
    return sqlite3_bind_text(statement, index, text, bytes, SQLITE_TRANSIENT);
}
#endif
