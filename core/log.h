/* log.h - the daemon's own log: timestamped lines on stderr (never syslog).
 * Handlers' lines go to the database instead (invlog_line). */
#ifndef SLUICE_LOG_H
#define SLUICE_LOG_H

#include <stddef.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_level(enum log_level min);
/* One line; control characters in the message are escaped (log_escape). */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Copy in to out (cap bytes, NUL-terminated, cut before an escape or a
 * character that does not fit), writing \n \r \t \\ and \xNN for the
 * other control characters, DEL and bytes that are not UTF-8. Well-formed
 * UTF-8 passes unchanged. Returns the length. */
size_t log_escape(const char *in, char *out, size_t cap);

#endif
