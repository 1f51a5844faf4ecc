/* `mdocker-init exec`: a new process in a running container. Joins the container's
 * cgroups and namespaces, then forks, since joining a PID namespace takes effect for
 * children only. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "launcher.h"

struct ns_kind
{
  const char *name;
  int flag;
};

/* The mount namespace goes last: entering it changes what /proc paths resolve to.
 * The user namespace goes first: it grants the rights to enter the others. */
static const struct ns_kind ns_order[] = {
  { "user", CLONE_NEWUSER }, { "cgroup", CLONE_NEWCGROUP }, { "ipc", CLONE_NEWIPC }, { "uts", CLONE_NEWUTS },
  { "net", CLONE_NEWNET },   { "pid", CLONE_NEWPID },       { "mnt", CLONE_NEWNS },
};
#define N_NS (sizeof (ns_order) / sizeof (ns_order[0]))

static int
same_ns (const char *a, const char *b)
{
  struct stat sa, sb;
  if (stat (a, &sa) < 0 || stat (b, &sb) < 0)
    return 0;
  return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int
md_exec (const struct md_opts *opts, md_error_t *err)
{
  int fds[N_NS];
  char path[PATH_MAX], self[PATH_MAX], buf[64];
  sigset_t old_mask;
  size_t i;
  pid_t child;
  cleanup_close int pid_fd = -1;
  int alive_pipe[2] = { -1, -1 };
  int joined_userns;
  int ret = -1;

  for (i = 0; i < N_NS; i++)
    fds[i] = -1;

  /* Paths resolve in the container once we are in its mount namespace: open now. */
  if (opts->pid_file)
    {
      pid_fd = open (opts->pid_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
      if (pid_fd < 0)
        return md_make_error (err, errno, "open", "cannot write %s", opts->pid_file);
    }

  /* Open every namespace before joining any: once in the container's mount namespace
   * the host's /proc is out of reach. */
  for (i = 0; i < N_NS; i++)
    {
      snprintf (path, sizeof (path), "/proc/%d/ns/%s", (int) opts->target_pid, ns_order[i].name);
      snprintf (self, sizeof (self), "/proc/self/ns/%s", ns_order[i].name);
      if (same_ns (path, self))
        continue; /* setns into one's own user namespace is EINVAL */
      fds[i] = open (path, O_RDONLY | O_CLOEXEC);
      if (fds[i] < 0)
        {
          md_make_error (err, errno, "open", "cannot open namespace %s of pid %d", ns_order[i].name,
                         (int) opts->target_pid);
          if (errno == ENOENT)
            snprintf (err->code, sizeof (err->code), MD_E_NOT_FOUND);
          goto out;
        }
    }

  if (opts->tty && md_give_up_tty (err) < 0)
    goto out;
  if (md_join_cgroups (opts, getpid (), err) < 0)
    goto out;
  /* A container of its own user namespace: we enter it as host root, which it does not
   * map; the child becomes the container's root before it execs. */
  joined_userns = fds[0] >= 0;
  for (i = 0; i < N_NS; i++)
    if (fds[i] >= 0 && setns (fds[i], ns_order[i].flag) < 0)
      {
        md_make_error (err, errno, "setns", "cannot join the %s namespace of pid %d", ns_order[i].name,
                       (int) opts->target_pid);
        goto out;
      }
  for (i = 0; i < N_NS; i++)
    if (fds[i] >= 0)
      {
        close (fds[i]);
        fds[i] = -1;
      }

  if (md_block_forwarded_signals (&old_mask, err) < 0)
    goto out;
  /* Its write end stays with us: the child polls the read end to know we are alive. */
  if (pipe2 (alive_pipe, O_CLOEXEC) < 0)
    {
      md_make_error (err, errno, "pipe2", "cannot create a pipe");
      goto out;
    }
  child = fork ();
  if (child < 0)
    {
      md_make_error (err, errno, "fork", "cannot start the process");
      goto out;
    }
  if (child == 0)
    {
      md_error_t child_err;

      /* The container's init died between our setns and now: nothing to join. */
      if (prctl (PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
        _exit (125);
      close (alive_pipe[1]);
      if (joined_userns && md_become_container_root (alive_pipe[0], &child_err) < 0)
        md_child_fail (opts, &child_err);
      close (alive_pipe[0]);
      md_exec_command (opts, &old_mask);
    }
  if (pid_fd >= 0)
    {
      int len = snprintf (buf, sizeof (buf), "%d\n", (int) child);
      if (md_write_all (pid_fd, buf, (size_t) len) < 0)
        {
          md_make_error (err, errno, "write", "cannot write %s", opts->pid_file);
          kill (child, SIGKILL);
          waitpid (child, NULL, 0);
          goto out;
        }
    }
  close (alive_pipe[0]);
  alive_pipe[0] = -1;
  ret = md_supervise (child, err);

out:
  for (i = 0; i < 2; i++)
    if (alive_pipe[i] >= 0)
      close (alive_pipe[i]);
  for (i = 0; i < N_NS; i++)
    if (fds[i] >= 0)
      close (fds[i]);
  return ret;
}
