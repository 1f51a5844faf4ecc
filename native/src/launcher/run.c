/* `mdocker-init run`: a new container. The parent prepares and supervises; the child
 * is cloned into new namespaces, waits for the parent to place it in its cgroups,
 * builds its root and execs the command. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "launcher.h"

/* The cgroup namespace is unshared by the child after the parent has moved it into its
 * cgroups, so that the namespace's root is the container's own cgroup. */
#define MD_RUN_CLONE_FLAGS (CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWNET)

__attribute__ ((noreturn)) static void
child_main (const struct md_opts *opts, int sync_fd, const sigset_t *old_mask)
{
  md_error_t err;
  char go;
  ssize_t n;

  /* The container never outlives its launcher: if the launcher dies (even by SIGKILL)
   * the init is killed, and with it the whole PID namespace. */
  if (prctl (PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
    {
      md_make_error (&err, errno, "prctl", "PR_SET_PDEATHSIG");
      md_child_fail (opts, &err);
    }

  do
    n = read (sync_fd, &go, 1);
  while (n < 0 && errno == EINTR);
  if (n != 1)
    _exit (125); /* the parent is gone, or failed and has reported it */
  close (sync_fd);

  if (opts->hostname && sethostname (opts->hostname, strlen (opts->hostname)) < 0)
    {
      md_make_error (&err, errno, "sethostname", "cannot set hostname %s", opts->hostname);
      md_child_fail (opts, &err);
    }
  if (md_loopback_up (&err) < 0)
    md_child_fail (opts, &err);
  if (md_setup_rootfs (opts, &err) < 0)
    md_child_fail (opts, &err);
  if (md_security_mask_paths (&opts->sec, &err) < 0)
    md_child_fail (opts, &err);

  md_exec_command (opts, old_mask);
}

int
md_run (const struct md_opts *opts, md_error_t *err)
{
  sigset_t old_mask;
  int sync_pipe[2];
  char buf[64];
  pid_t child;
  int code;

  if (opts->tty && md_give_up_tty (err) < 0)
    return -1;
  if (md_block_forwarded_signals (&old_mask, err) < 0)
    return -1;
  if (pipe2 (sync_pipe, O_CLOEXEC) < 0)
    return md_make_error (err, errno, "pipe2", "cannot create the sync pipe");

  /* A raw clone behaves as fork (no stack to manage) while entering the namespaces. */
  child = (pid_t) syscall (SYS_clone, MD_RUN_CLONE_FLAGS | SIGCHLD, NULL, NULL, NULL, NULL);
  if (child < 0)
    {
      int saved = errno;
      close (sync_pipe[0]);
      close (sync_pipe[1]);
      return md_make_error (err, saved, "clone", "cannot create the container's namespaces");
    }
  if (child == 0)
    {
      close (sync_pipe[1]);
      child_main (opts, sync_pipe[0], &old_mask);
    }
  close (sync_pipe[0]);

  /* The container's first instruction must already run inside its limits. */
  if (md_join_cgroups (opts, child, err) < 0)
    goto fail;
  if (opts->pid_file)
    {
      snprintf (buf, sizeof (buf), "%d\n", (int) child);
      if (md_write_file_atomic (opts->pid_file, buf, err) < 0)
        goto fail;
    }
  if (md_write_all (sync_pipe[1], "g", 1) < 0)
    {
      md_make_error (err, errno, "write", "cannot release the container");
      goto fail;
    }
  close (sync_pipe[1]);

  code = md_supervise (child, err);
  md_remove_cgroups (opts);
  if (code < 0)
    return code;
  if (opts->exit_file)
    {
      md_error_t ignored;
      snprintf (buf, sizeof (buf), "{\"exitCode\":%d}\n", code);
      md_write_file_atomic (opts->exit_file, buf, &ignored);
    }
  if (opts->cleanup_dir)
    md_remove_tree (opts->cleanup_dir);
  return code;

fail:
  close (sync_pipe[1]);
  kill (child, SIGKILL);
  waitpid (child, NULL, 0);
  md_remove_cgroups (opts);
  return -1;
}
