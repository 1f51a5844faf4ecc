/* The containers' seccomp filter, compiled at build time (native/src/seccomp-gen). */
#ifndef MD_SECCOMP_H
#define MD_SECCOMP_H

#include <stdint.h>

#include "error.h"

/* Loads the filter for a process keeping the capabilities cap_keep (bit N = capability
 * N). Needs no_new_privs or SYS_ADMIN in the effective set, as seccomp(2) does. */
int md_seccomp_load (uint64_t cap_keep, md_error_t *err);

#endif
