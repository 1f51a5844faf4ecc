/* `mdocker-init exec`: a new process in a running container. Joins the container's
 * cgroups and namespaces, then forks, since joining a PID namespace takes effect for
 * children only.
 *
 * The container is named by its init's pid and start time, and the init is pinned by a
 * pidfd before anything is read of it: a pid alone may by then belong to any process of
 * the host (the init exited, the pid was reused), and joining that one's namespaces
 * would run the command on the host as root. The namespaces are joined through the
 * pidfd, all at once, so they are the pinned process's or none. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "launcher.h"

struct ns_kind
{
  const char *name;
  int flag;
};

/* The namespaces a container may have. setns(2) through the init's pidfd joins them
 * together, the user namespace first (it grants the rights to enter the others). */
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

/* Field 22 of /proc/PID/stat, the start time in clock ticks since boot. */
static int
read_start_time (pid_t pid, unsigned long long *out)
{
  char path[64], buf[1024];
  cleanup_close int fd = -1;
  ssize_t n;
  char *p;
  int field;

  snprintf (path, sizeof (path), "/proc/%d/stat", (int) pid);
  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  n = read (fd, buf, sizeof (buf) - 1);
  if (n <= 0)
    return -1;
  buf[n] = '\0';
  /* The command (field 2) may hold spaces and parentheses: count from its last ')'. */
  p = strrchr (buf, ')');
  if (p == NULL)
    return -1;
  for (field = 2; field < 22; field++)
    {
      p = strchr (p + 1, ' ');
      if (p == NULL)
        return -1;
    }
  *out = strtoull (p + 1, NULL, 10);
  return 0;
}

/* Whether the pinned init has exited. A zombie still takes signals, but its namespaces
 * went at its exit (setns through its pidfd fails with ESRCH): its state in
 * /proc/PID/stat tells, and while it is a zombie its pid cannot be reused. */
static int
init_has_exited (int init_fd, pid_t pid)
{
  char path[64], buf[512];
  cleanup_close int fd = -1;
  ssize_t n;
  char *p;

  if (syscall (SYS_pidfd_send_signal, init_fd, 0, NULL, 0) < 0)
    return errno == ESRCH;
  snprintf (path, sizeof (path), "/proc/%d/stat", (int) pid);
  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 1;
  n = read (fd, buf, sizeof (buf) - 1);
  if (n <= 0)
    return 1;
  buf[n] = '\0';
  p = strrchr (buf, ')');
  return p != NULL && (p[2] == 'Z' || p[2] == 'X');
}

/* The container's init, pinned: a pidfd of the process that has the given pid and start
 * time now. NOT_FOUND when it is gone. */
static int
pin_init (const struct md_opts *opts, md_error_t *err)
{
  unsigned long long start_time;
  int pidfd;

  pidfd = (int) syscall (SYS_pidfd_open, opts->target_pid, 0);
  if (pidfd < 0)
    {
      md_make_error (err, errno, "pidfd_open", "the container's init (pid %d) is gone", (int) opts->target_pid);
      if (errno == ESRCH)
        snprintf (err->code, sizeof (err->code), MD_E_NOT_FOUND);
      return -1;
    }
  /* The start time is read by pid: it is the pinned process's only if that one still
   * lives after the read (a live process keeps its pid). */
  if (read_start_time (opts->target_pid, &start_time) < 0 || start_time != opts->target_start_time
      || syscall (SYS_pidfd_send_signal, pidfd, 0, NULL, 0) < 0)
    {
      close (pidfd);
      return md_make_error_code (err, MD_E_NOT_FOUND, "the container's init (pid %d, start time %llu) is gone",
                                 (int) opts->target_pid, opts->target_start_time);
    }
  return pidfd;
}

int
md_exec (const struct md_opts *opts, md_error_t *err)
{
  char path[PATH_MAX], self[PATH_MAX], buf[64];
  sigset_t old_mask;
  size_t i;
  pid_t child = -1;
  cleanup_close int pid_fd = -1;
  cleanup_close int init_fd = -1;
  int alive_pipe[2] = { -1, -1 };
  int join_flags = 0;
  int joined_userns;
  int ret = -1;

  /* Paths resolve in the container once we are in its mount namespace: open now. */
  if (opts->pid_file)
    {
      pid_fd = open (opts->pid_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
      if (pid_fd < 0)
        return md_make_error (err, errno, "open", "cannot write %s", opts->pid_file);
    }

  init_fd = pin_init (opts, err);
  if (init_fd < 0)
    return -1;

  /* Which namespaces to join: those that are not ours already (setns into one's own user
   * namespace is EINVAL). A container has mount and PID namespaces of its own, always,
   * and a user namespace too unless it runs in the host's: a target that shares ours is
   * no container, and nothing is run. */
  for (i = 0; i < N_NS; i++)
    {
      snprintf (path, sizeof (path), "/proc/%d/ns/%s", (int) opts->target_pid, ns_order[i].name);
      snprintf (self, sizeof (self), "/proc/self/ns/%s", ns_order[i].name);
      if (!same_ns (path, self))
        {
          join_flags |= ns_order[i].flag;
          continue;
        }
      if (ns_order[i].flag == CLONE_NEWNS || ns_order[i].flag == CLONE_NEWPID
          || (ns_order[i].flag == CLONE_NEWUSER && !opts->target_host_userns))
        return md_make_error_code (err, MD_E_INVALID_ARGUMENT,
                                   "pid %d is not a container's init: its %s namespace is the host's",
                                   (int) opts->target_pid, ns_order[i].name);
    }
  /* Still the pinned process's namespaces: it lived after they were read. */
  if (syscall (SYS_pidfd_send_signal, init_fd, 0, NULL, 0) < 0)
    return md_make_error_code (err, MD_E_NOT_FOUND, "the container's init (pid %d) is gone", (int) opts->target_pid);

  if (opts->tty && md_give_up_tty (err) < 0)
    goto out;
  if (md_join_cgroups (opts, getpid (), err) < 0)
    goto out;
  /* A container of its own user namespace: we enter it as host root, which it does not
   * map; the child becomes the container's root before it execs. */
  joined_userns = (join_flags & CLONE_NEWUSER) != 0;
  if (setns (init_fd, join_flags) < 0)
    {
      md_make_error (err, errno, "setns", "cannot join the namespaces of the container's init (pid %d)",
                     (int) opts->target_pid);
      goto out;
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
  /* A step that failed because the init exited meanwhile (setns's ESRCH, its cgroup
   * removed, its PID namespace closed to new processes) reports that, not the step's own
   * errno. */
  if (ret < 0 && child < 0 && init_fd >= 0 && init_has_exited (init_fd, opts->target_pid))
    md_make_error_code (err, MD_E_NOT_FOUND, "the container's init (pid %d) is gone", (int) opts->target_pid);
  return ret;
}
