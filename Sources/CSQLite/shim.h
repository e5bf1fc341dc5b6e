#ifndef SATCHEL_CSQLITE_SHIM_H
#define SATCHEL_CSQLITE_SHIM_H
#include <sqlite3.h>

/* SQLITE_TRANSIENT is a macro casting -1 to a destructor pointer, which Swift cannot import.
   These wrappers ask SQLite to copy the bytes, so Swift's temporary buffers may go away. */
static inline int satchel_sqlite3_bind_text_copy(sqlite3_stmt *stmt, int index, const char *text, int length) {
    return sqlite3_bind_text(stmt, index, text, length, SQLITE_TRANSIENT);
}

static inline int satchel_sqlite3_bind_blob_copy(sqlite3_stmt *stmt, int index, const void *bytes, int length) {
    return sqlite3_bind_blob(stmt, index, bytes, length, SQLITE_TRANSIENT);
}

/* An open file of Store's encrypted VFS (Store/PageEncryption.swift): SQLite allocates
   szOsFile bytes and hands them to xOpen; the base comes first, as every VFS "subclass" does,
   and the underlying VFS's own file lives in the same allocation right after this struct. */
typedef struct satchel_encrypted_file {
    sqlite3_file base;
    sqlite3_file *real;
    void *cipher;
    int kind;
} satchel_encrypted_file;
#endif
