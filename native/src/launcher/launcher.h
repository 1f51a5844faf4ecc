/* The launcher's options and its two verbs. main.c parses, run.c and exec.c act,
 * mounts.c builds the container's filesystem, proc.c holds what both verbs share:
 * supervision of the child, cgroup joining, files written atomically. */
#ifndef MD_LAUNCHER_H
#define MD_LAUNCHER_H

#include <signal.h>
#include <stddef.h>
#include <sys/types.h>

#include "error.h"
#include "security.h"

#define MD_MAX_CGROUPS 16
#define MD_MAX_ENV 256

struct md_opts
{
  const char *id;
  const char *hostname;
  const char *image;     /* read-only lower dir (run) */
  const char *rootfs;    /* plain read-write dir (run) */
  const char *layer_dir; /* where the layer tmpfs goes, inside the container's mount ns */
  unsigned long long layer_size_bytes;
  const char *cgroups[MD_MAX_CGROUPS];
  size_t n_cgroups;
  const char *env[MD_MAX_ENV];
  size_t n_env;
  const char *workdir;
  int tty;
  int error_fd;
  const char *pid_file;
  const char *exit_file;
  const char *cleanup_dir; /* removed (recursively) after the container is gone: --rm */
  int die_with_parent;
  pid_t target_pid; /* exec */
  char **argv;      /* the command */
  struct md_security sec;
};

int md_run (const struct md_opts *opts, md_error_t *err);
int md_exec (const struct md_opts *opts, md_error_t *err);

/* mounts.c: in the child, in its new mount namespace; ends inside the new root. */
int md_setup_rootfs (const struct md_opts *opts, md_error_t *err);
int md_loopback_up (md_error_t *err);

/* proc.c */
int md_join_cgroups (const struct md_opts *opts, pid_t pid, md_error_t *err);
void md_remove_cgroups (const struct md_opts *opts);
void md_remove_tree (const char *dir);
int md_write_file_atomic (const char *path, const char *content, md_error_t *err);
int md_give_up_tty (md_error_t *err);
int md_block_forwarded_signals (sigset_t *old_mask, md_error_t *err);
/* Waits for child, forwarding signals to it; returns Docker's exit code for it. */
int md_supervise (pid_t child, md_error_t *err);
/* In the child, last steps: session, terminal, signals, fds, security, env, exec.
 * Never returns: exits 126/127 with a reported error when exec fails. */
__attribute__ ((noreturn)) void md_exec_command (const struct md_opts *opts, const sigset_t *old_mask);
/* Reports err on the error fd and exits 125: for the child, whose failures end it. */
__attribute__ ((noreturn)) void md_child_fail (const struct md_opts *opts, const md_error_t *err);

#endif
