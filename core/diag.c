/* diag.c - collects validation problems (see diag.h). Out of memory while
 * recording a problem still counts it, so a check never passes by accident. */
#include "diag.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static void diag_addv(struct diag *d, enum diag_severity sev, const char *file,
                      const char *fmt, va_list ap)
{
    if (sev == DIAG_ERROR)
        d->errors++;
    else
        d->warnings++;
    char msg[1536];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t len = strlen(file) + strlen(msg) + 16;
    char *text = malloc(len);
    if (!text)
        return;
    snprintf(text, len, "%s: %s%s", file, sev == DIAG_WARNING ? "warning: " : "", msg);
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        struct diag_item *items = realloc(d->items, cap * sizeof *items);
        if (!items) {
            free(text);
            return;
        }
        d->items = items;
        d->cap = cap;
    }
    d->items[d->n].severity = sev;
    d->items[d->n].text = text;
    d->n++;
}

void diag_error(struct diag *d, const char *file, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag_addv(d, DIAG_ERROR, file, fmt, ap);
    va_end(ap);
}

void diag_warning(struct diag *d, const char *file, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag_addv(d, DIAG_WARNING, file, fmt, ap);
    va_end(ap);
}

void diag_print(const struct diag *d, FILE *out)
{
    for (size_t i = 0; i < d->n; i++)
        fprintf(out, "%s\n", d->items[i].text);
}

void diag_free(struct diag *d)
{
    for (size_t i = 0; i < d->n; i++)
        free(d->items[i].text);
    free(d->items);
    memset(d, 0, sizeof *d);
}
