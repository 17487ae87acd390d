/* uuid.h - time-ordered UUIDv7 (RFC 9562) request ids: random bits from
 * getrandom, the first 48 bits a millisecond timestamp, so ids sort by time
 * and append to B-tree indexes instead of scattering writes. */
#ifndef SLUICE_UUID_H
#define SLUICE_UUID_H

#define UUID_STR_LEN 37 /* 36 characters and the NUL */

/* Write a new UUIDv7 in canonical lower-case form. Returns 0, or -1 if the
 * kernel's random source failed. */
int uuid_v7(char out[UUID_STR_LEN]);

#endif
