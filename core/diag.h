/* diag.h - the list of problems that config and pipeline validation find.
 *
 * Validation does not stop at the first problem: `sluice check` reports every
 * problem, one line each as "file: message". Errors make the check fail;
 * warnings (features accepted but not in force yet, say) are printed only.
 */
#ifndef SLUICE_DIAG_H
#define SLUICE_DIAG_H

#include <stddef.h>
#include <stdio.h>

enum diag_severity { DIAG_ERROR, DIAG_WARNING };

struct diag_item {
    enum diag_severity severity;
    char *text;                 /* "file: message" or "file: warning: message" */
};

struct diag {
    struct diag_item *items;
    size_t n, cap;
    int errors;
    int warnings;
};

void diag_error(struct diag *d, const char *file, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void diag_warning(struct diag *d, const char *file, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Print every item, one per line. */
void diag_print(const struct diag *d, FILE *out);
void diag_free(struct diag *d);

#endif
