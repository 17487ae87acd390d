/* err.h - the caller-owned error message every fallible function fills.
 *
 * Functions return 0 on success and a negative value on failure; on failure
 * they write what failed, where, and how to fix it into the struct err the
 * caller passed last. The caller that can act decides what to print.
 */
#ifndef SLUICE_ERR_H
#define SLUICE_ERR_H

#include <stddef.h>

struct err {
    char msg[1024];
};

/* Format a message into e (NULL is allowed and ignored). Returns -1 so that
 * callers can write `return err_set(e, ...);`. */
int err_set(struct err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prefix the message already in e with "prefix: ". */
void err_prefix(struct err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
