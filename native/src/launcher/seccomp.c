/* Loads the seccomp program that native/src/seccomp-gen compiled at build time (its
 * comment holds the policy), filling in the actions that depend on the container's
 * capabilities. No libseccomp at run time: the program is ready, and one syscall
 * installs it. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "seccomp.h"

#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "seccomp-filter.h" /* generated in the build directory */

int
md_seccomp_load (uint64_t cap_keep, md_error_t *err)
{
  struct sock_filter filter[MD_SECCOMP_FILTER_LEN];
  struct sock_fprog prog = { .len = MD_SECCOMP_FILTER_LEN, .filter = filter };
  size_t i;

  memcpy (filter, md_seccomp_filter, sizeof (filter));
  for (i = 0; i < sizeof (md_seccomp_gates) / sizeof (md_seccomp_gates[0]); i++)
    {
      const struct md_seccomp_gate *g = &md_seccomp_gates[i];

      filter[g->insn].k = (cap_keep & g->caps) ? SECCOMP_RET_ALLOW : g->refused;
    }

  /* Flags 0, as libseccomp's seccomp_load passed them: no TSYNC (the launcher has one
   * thread), no LOG. prctl for kernels before 3.17, which lack seccomp(2). */
  if (syscall (SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) == 0)
    return 0;
  if (errno == ENOSYS && prctl (PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) == 0)
    return 0;
  return md_make_error (err, errno, "seccomp", "cannot load the seccomp filter");
}
