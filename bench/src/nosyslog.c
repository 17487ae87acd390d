/* nosyslog.c - LD_PRELOAD shim that discards syslog(). These machines have
 * no syslog daemon, so glibc's syslog() falls back to the serial console,
 * which is very slow (MACHINE-NOTES.md); incrond logs every command it runs.
 * With a syslog daemon the cost would land in that daemon, not in incrond,
 * so the incron peer runs with this shim (and once without, for the record). */
#include <stdarg.h>

void openlog(const char *ident, int option, int facility)
{
    (void)ident; (void)option; (void)facility;
}

void syslog(int priority, const char *format, ...)
{
    (void)priority; (void)format;
}

void vsyslog(int priority, const char *format, va_list ap)
{
    (void)priority; (void)format; (void)ap;
}

void __syslog_chk(int priority, int flag, const char *format, ...)
{
    (void)priority; (void)flag; (void)format;
}

void __vsyslog_chk(int priority, int flag, const char *format, va_list ap)
{
    (void)priority; (void)flag; (void)format; (void)ap;
}

void closelog(void)
{
}
