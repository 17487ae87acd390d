/* trust.h - refusing code and config that another user could have changed.
 *
 * The daemon runs what pipeline files, plugins, code folders and layers
 * say, often as root; if another user can change any of them, or any folder
 * on the way to them, that user runs code as the daemon. Like OpenSSH's
 * StrictModes, a path is trusted when, after resolving symlinks, the file
 * and every folder up to / are owned by root or by the daemon's user and
 * are writable by no one else. Two exceptions keep ordinary layouts working:
 * a folder with the sticky bit (/tmp, 1777) may be writable by all, since
 * no one can replace an entry they do not own; and a group-writable entry is
 * fine when its group holds no one but its owner (a "user private group",
 * as OpenSSH accepts). docs/isolation.md#14 and docs/configuration.md.
 */
#ifndef SLUICE_TRUST_H
#define SLUICE_TRUST_H

#include "err.h"

/* 0 if path (a file or folder) is trusted, else -1 with e naming the
 * offending path, who could change it, and the command that fixes it. */
int trust_check(const char *path, struct err *e);

#endif
