/* status.h - the enums several layers share: how an attempt ended (the
 * invocations table's status) and what kind of failure it was. Config,
 * storage and execution all include this small header rather than each
 * other's. */
#ifndef SLUICE_STATUS_H
#define SLUICE_STATUS_H

#include <string.h>

enum inv_status { INV_OK, INV_ERROR, INV_TIMEOUT, INV_CRASHED };

/* What an error type (Lambda's errorType) means to sluice; compared as
 * this enum, never as strings, once it has been read. */
enum error_kind {
    ERROR_NONE,
    ERROR_HANDLER,              /* the handler's own error */
    ERROR_INIT,                 /* Runtime.InitError: the code could not start */
    ERROR_TIMEOUT,              /* Sandbox.Timedout */
};

static inline enum error_kind error_kind_of(const char *error_type)
{
    if (!error_type)
        return ERROR_NONE;
    if (strcmp(error_type, "Runtime.InitError") == 0)
        return ERROR_INIT;
    if (strcmp(error_type, "Sandbox.Timedout") == 0)
        return ERROR_TIMEOUT;
    return ERROR_HANDLER;
}

#endif
