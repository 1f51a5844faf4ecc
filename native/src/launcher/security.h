/* What the launcher applies to a container's process before exec: masked and read-only
 * /proc paths, rlimits, the capability bounding set, no_new_privs and a seccomp filter.
 * Used by both `run` (the container's init) and `exec` (a process joining it). The
 * defaults are the safe ones; each can be named on the command line. */
#ifndef MD_SECURITY_H
#define MD_SECURITY_H

#include <stdint.h>
#include <sys/types.h>

#include "error.h"

struct md_security
{
  int no_new_privs;     /* default 1 */
  uint64_t cap_keep;    /* bounding/effective/permitted set kept, bit N = capability N */
  int seccomp;          /* default 1: Docker's default profile semantics */
  unsigned long nofile; /* RLIMIT_NOFILE, default 1024 */
  int mask_paths;       /* default 1: runc's masked and read-only /proc paths */

  /* What --cap-add/--cap-drop said, kept so that their order does not matter (Docker's
   * rule): cap_keep = (base | cap_add) & ~cap_drop, where base is every capability
   * after "--cap-add ALL", none after "--cap-drop ALL", else cap_base. cap_keep is
   * recomputed after each option; read it, not these. */
  uint64_t cap_base; /* md_security_defaults' set */
  uint64_t cap_add;
  uint64_t cap_drop;
  int cap_add_all;
  int cap_drop_all;
};

/* parse.c, with the other options. */
void md_security_defaults (struct md_security *sec);

/* Parses one launcher option ("--cap-add", "--seccomp", ...) with its value (NULL when it
 * takes none). Returns 1 when consumed, 0 when not a security option, -1 on error. */
int md_security_parse_option (struct md_security *sec, const char *opt, const char *value, md_error_t *err);

/* Called in the container's mount namespace after pivot_root (cwd = new /), with /proc
 * and /sys mounted: masks and remounts read-only what runc does. */
int md_security_mask_paths (const struct md_security *sec, md_error_t *err);

/* Makes the calling process non-dumpable again, and checks that it is. A change of
 * uid, gid or fsuid (setresuid, setresgid), or a gain of permitted capabilities, sets
 * dumpability to fs.suid_dumpable, which an administrator may have set to 1: from
 * then until execve, a process of the container with the same ids could open the
 * launcher child's /proc/PID/mem, environ and fd/ (CVE-2016-9962's family). Called after
 * every credential change (setresgid, setgroups, setresuid, capset), whatever the
 * sysctl says. */
int md_stay_undumpable (md_error_t *err);

/* Called last before execve: rlimits, capabilities, no_new_privs, seccomp. Keeps fd
 * error_fd open (it is O_CLOEXEC) so a failure can still be reported. Once it returns,
 * the seccomp filter is in force: only ordinary calls (write, close, rt_sigaction,
 * rt_sigprocmask, execve) should follow. */
int md_security_apply (const struct md_security *sec, md_error_t *err);

#endif
