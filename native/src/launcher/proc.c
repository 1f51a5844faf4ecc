/* What run and exec share: cgroup joining, supervision of the child with signal
 * forwarding, the child's last steps before execve. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <grp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>

#include "launcher.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

extern char **environ;

/* Forwarded to the container's init, as docker-init and tini do. */
static const int forwarded_signals[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT };

int
md_join_cgroups (const struct md_opts *opts, pid_t pid, md_error_t *err)
{
  char path[PATH_MAX];
  char buf[32];
  size_t i;
  int len = snprintf (buf, sizeof (buf), "%d", (int) pid);

  for (i = 0; i < opts->n_cgroups; i++)
    {
      cleanup_close int fd = -1;
      snprintf (path, sizeof (path), "%s/cgroup.procs", opts->cgroups[i]);
      fd = open (path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
      if (fd < 0)
        return md_make_error (err, errno, "open", "cannot join cgroup %s", opts->cgroups[i]);
      if (write (fd, buf, (size_t) len) != len)
        return md_make_error (err, errno, "write", "cannot move pid %d into cgroup %s", (int) pid, opts->cgroups[i]);
    }
  return 0;
}

/* After the init is gone its cgroups empty within moments (the kernel reaps the rest of
 * the PID namespace first); rmdir says EBUSY until then. */
void
md_remove_cgroups (const struct md_opts *opts)
{
  size_t i;
  int attempt;
  struct timespec pause = { 0, 5 * 1000 * 1000 };

  for (i = 0; i < opts->n_cgroups; i++)
    for (attempt = 0; attempt < 600; attempt++)
      {
        if (rmdir (opts->cgroups[i]) == 0 || errno == ENOENT)
          break;
        if (errno != EBUSY)
          break;
        nanosleep (&pause, NULL);
      }
}

static int
remove_entry (const char *path, const struct stat *st, int type, struct FTW *ftw)
{
  (void) st;
  (void) ftw;
  if (type == FTW_DP)
    rmdir (path);
  else
    unlink (path);
  return 0;
}

/* The container's state directory, for --rm: its layer dir holds nothing on the host
 * (the tmpfs was in the container's mount namespace), so this removes plain files. */
void
md_remove_tree (const char *dir)
{
  nftw (dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

int
md_write_file_atomic (const char *path, const char *content, md_error_t *err)
{
  char tmp[PATH_MAX];
  cleanup_close int fd = -1;

  if (snprintf (tmp, sizeof (tmp), "%s.tmp%d", path, (int) getpid ()) >= (int) sizeof (tmp))
    return md_make_error_code (err, MD_E_INVALID_ARGUMENT, "path too long: %s", path);
  fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0)
    return md_make_error (err, errno, "open", "cannot write %s", tmp);
  if (md_write_all (fd, content, strlen (content)) < 0)
    return md_make_error (err, errno, "write", "cannot write %s", tmp);
  if (rename (tmp, path) < 0)
    return md_make_error (err, errno, "rename", "cannot write %s", path);
  return 0;
}

/* A terminal can be the controlling terminal of one session only. node-pty makes the
 * launcher a session leader with the pty as its terminal; the container's init (in its
 * own session) can only take the terminal once the launcher lets it go, and stealing it
 * (TIOCSCTTY with force) would need CAP_SYS_ADMIN in the initial user namespace. */
int
md_give_up_tty (md_error_t *err)
{
  struct sigaction ign, old_hup, old_cont;

  if (tcgetsid (STDIN_FILENO) != getsid (0))
    return 0; /* not our controlling terminal: nothing to give up */
  if (getsid (0) != getpid ())
    return md_make_error_code (err, MD_E_INVALID_ARGUMENT,
                               "--tty: stdin is the controlling terminal of another process's session; "
                               "give the launcher a terminal of its own");
  /* A session leader's TIOCNOTTY sends SIGHUP and SIGCONT to the foreground group: us. */
  memset (&ign, 0, sizeof (ign));
  ign.sa_handler = SIG_IGN;
  sigaction (SIGHUP, &ign, &old_hup);
  sigaction (SIGCONT, &ign, &old_cont);
  if (ioctl (STDIN_FILENO, TIOCNOTTY) < 0)
    return md_make_error (err, errno, "ioctl", "TIOCNOTTY");
  sigaction (SIGHUP, &old_hup, NULL);
  sigaction (SIGCONT, &old_cont, NULL);
  return 0;
}

int
md_become_container_root (int alive_fd, md_error_t *err)
{
  const gid_t root_group = 0;
  struct pollfd alive = { .fd = alive_fd, .events = POLLIN | POLLRDHUP, .revents = 0 };

  /* Entered as host root, which the namespace does not map: until now we were its
   * overflow id, with every capability in it but owning nothing. gid first: once uid
   * changes, setgroups needs what the namespace's root has, which we keep anyway. The
   * host's supplementary groups must go: kept, they would still open host files. */
  if (setresgid (0, 0, 0) < 0)
    return md_make_error (err, errno, "setresgid", "cannot become the container's root group");
  /* Each change leaves the process as dumpable as fs.suid_dumpable says (1 would let
   * the container's root open our /proc files): made non-dumpable again at once. */
  if (md_stay_undumpable (err) < 0)
    return -1;
  if (setgroups (1, &root_group) < 0)
    return md_make_error (err, errno, "setgroups", "cannot drop the host's supplementary groups");
  if (md_stay_undumpable (err) < 0)
    return -1;
  if (setresuid (0, 0, 0) < 0)
    return md_make_error (err, errno, "setresuid", "cannot become the container's root");
  if (md_stay_undumpable (err) < 0)
    return -1;

  /* The kernel clears the parent-death signal when the credentials change. Re-arm it,
   * then make sure the parent did not die in between: it holds alive_fd's other end
   * open for its whole life. */
  if (prctl (PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
    return md_make_error (err, errno, "prctl", "PR_SET_PDEATHSIG");
  if (poll (&alive, 1, 0) < 0)
    return md_make_error (err, errno, "poll", "cannot check on the launcher");
  if (alive.revents & (POLLHUP | POLLRDHUP | POLLERR))
    return md_make_error_code (err, MD_E_RUNTIME, "the launcher exited while the container was starting");
  return 0;
}

int
md_block_forwarded_signals (sigset_t *old_mask, md_error_t *err)
{
  sigset_t mask;
  size_t i;

  sigemptyset (&mask);
  for (i = 0; i < sizeof (forwarded_signals) / sizeof (forwarded_signals[0]); i++)
    sigaddset (&mask, forwarded_signals[i]);
  sigaddset (&mask, SIGCHLD);
  sigaddset (&mask, SIGPIPE);
  sigaddset (&mask, SIGTTOU);
  sigaddset (&mask, SIGTTIN);
  sigaddset (&mask, SIGTSTP);
  if (sigprocmask (SIG_BLOCK, &mask, old_mask) < 0)
    return md_make_error (err, errno, "sigprocmask", "cannot block signals");
  return 0;
}

static int
exit_code_of (int status)
{
  if (WIFEXITED (status))
    return WEXITSTATUS (status);
  if (WIFSIGNALED (status))
    return 128 + WTERMSIG (status);
  return 125;
}

int
md_supervise (pid_t child, md_error_t *err)
{
  sigset_t mask;
  cleanup_close int sfd = -1;
  size_t i;

  sigemptyset (&mask);
  for (i = 0; i < sizeof (forwarded_signals) / sizeof (forwarded_signals[0]); i++)
    sigaddset (&mask, forwarded_signals[i]);
  sigaddset (&mask, SIGCHLD);
  sfd = signalfd (-1, &mask, SFD_CLOEXEC);
  if (sfd < 0)
    return md_make_error (err, errno, "signalfd", "cannot watch signals");

  for (;;)
    {
      struct signalfd_siginfo si;
      int status;
      pid_t r;
      ssize_t n;

      /* The child may have exited before the signalfd existed: check first. */
      r = waitpid (child, &status, WNOHANG);
      if (r == child)
        return exit_code_of (status);
      if (r < 0 && errno != EINTR)
        return md_make_error (err, errno, "waitpid", "cannot wait for the container");

      n = read (sfd, &si, sizeof (si));
      if (n < 0 && errno == EINTR)
        continue;
      if (n != (ssize_t) sizeof (si))
        return md_make_error (err, errno, "read", "signalfd");
      if (si.ssi_signo == SIGCHLD)
        continue;
      /* The init of a PID namespace only receives signals it has a handler for;
       * SIGKILL and SIGSTOP are the exceptions, and `mdocker kill` sends SIGKILL to
       * the init directly. */
      kill (child, (int) si.ssi_signo);
    }
}

__attribute__ ((noreturn)) void
md_child_fail (const struct md_opts *opts, const md_error_t *err)
{
  md_report_error (err, opts->error_fd, opts->error_fd < 0);
  _exit (125);
}

static int
env_has (const char *const *env, size_t n, const char *key)
{
  size_t i, klen = strlen (key);
  for (i = 0; i < n; i++)
    if (strncmp (env[i], key, klen) == 0 && env[i][klen] == '=')
      return 1;
  return 0;
}

/* Docker makes a run's working directory (an image's WorkingDir need not exist in its
 * layers). Called inside the container's root, as its root: what it makes lands in the
 * container's own upper layer. */
static void
make_workdir (const char *dir)
{
  char path[PATH_MAX];
  char *slash;

  if (snprintf (path, sizeof (path), "%s", dir) >= (int) sizeof (path))
    return;
  for (slash = strchr (path + 1, '/'); slash; slash = strchr (slash + 1, '/'))
    {
      *slash = '\0';
      mkdir (path, 0755);
      *slash = '/';
    }
  mkdir (path, 0755);
}

/* The image's User (or --user): after the confinement, so its capabilities and filter are
 * set as root's; a non-root uid then loses every capability at setresuid, and execve gives
 * none back (no_new_privs, no ambient set). Its groups are its own first, then --groups
 * (those of the image's /etc/group that list it, and --group-add), as initgroups(3) sets
 * them. setgroups works in the container's user namespace because the parent wrote its
 * maps as a privileged process, leaving /proc/PID/setgroups at "allow"; a gid the
 * namespace does not map is EINVAL there (the runtime refuses one before). */
static int
switch_user (const struct md_opts *opts, md_error_t *err)
{
  gid_t gid = (gid_t) opts->user_gid;
  uid_t uid = (uid_t) opts->user_uid;
  gid_t groups[MD_MAX_GROUPS + 1];
  size_t n = 0, i, k;

  groups[n++] = gid;
  for (i = 0; i < opts->n_user_groups; i++)
    {
      for (k = 0; k < n && groups[k] != (gid_t) opts->user_groups[i]; k++)
        ;
      if (k == n)
        groups[n++] = (gid_t) opts->user_groups[i];
    }
  if (setgroups (n, groups) < 0)
    return md_make_error (err, errno, "setgroups", "cannot set the groups of user %lu:%lu", opts->user_uid,
                          opts->user_gid);
  if (setresgid (gid, gid, gid) < 0)
    return md_make_error (err, errno, "setresgid", "cannot become group %lu", opts->user_gid);
  if (setresuid (uid, uid, uid) < 0)
    return md_make_error (err, errno, "setresuid", "cannot become user %lu", opts->user_uid);
  return 0;
}

__attribute__ ((noreturn)) void
md_exec_command (const struct md_opts *opts, const sigset_t *old_mask)
{
  static char path_default[] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  static char home_default[] = "HOME=/root";
  static char term_default[] = "TERM=xterm-256color";
  char hostname_env[300];
  char cwd[PATH_MAX];
  char *envp[MD_MAX_ENV + 8];
  size_t n = 0, i;
  md_error_t err;
  int saved;

  /* The init of a new session: keystrokes' signals (Ctrl-C) go to the container's
   * foreground job, never to the launcher's group. */
  if (setsid () < 0 && errno != EPERM)
    {
      md_make_error (&err, errno, "setsid", "cannot start a session");
      md_child_fail (opts, &err);
    }
  if (opts->tty && ioctl (STDIN_FILENO, TIOCSCTTY, 0) < 0)
    {
      md_make_error (&err, errno, "ioctl", "TIOCSCTTY: cannot make the terminal the container's");
      md_child_fail (opts, &err);
    }

  if (opts->workdir && opts->target_pid == 0 && chdir (opts->workdir) < 0 && errno == ENOENT)
    make_workdir (opts->workdir);
  if (opts->workdir && chdir (opts->workdir) < 0)
    {
      md_make_error (&err, errno, "chdir", "cannot enter working directory %s", opts->workdir);
      md_child_fail (opts, &err);
    }
  /* The working directory must lie inside the container's root (CVE-2024-21626: a
   * workdir of /proc/self/fd/N, N a leaked directory of the host, put runc's process in
   * the host's tree). No directory of the host is open here, and getcwd proves the rest:
   * a directory outside the root has no path from it (ENOENT, or "(unreachable)"). */
  errno = 0;
  if (getcwd (cwd, sizeof (cwd)) == NULL || cwd[0] != '/')
    {
      md_make_error (&err, errno ? errno : ENOENT, "getcwd", "working directory %s is outside the container",
                     opts->workdir ? opts->workdir : "/");
      md_child_fail (opts, &err);
    }

  for (i = 0; i < opts->n_env; i++)
    envp[n++] = (char *) opts->env[i];
  if (!env_has (opts->env, opts->n_env, "PATH"))
    envp[n++] = path_default;
  if (!env_has (opts->env, opts->n_env, "HOME"))
    envp[n++] = home_default;
  if (opts->tty && !env_has (opts->env, opts->n_env, "TERM"))
    envp[n++] = term_default;
  if (opts->hostname && !env_has (opts->env, opts->n_env, "HOSTNAME"))
    {
      snprintf (hostname_env, sizeof (hostname_env), "HOSTNAME=%s", opts->hostname);
      envp[n++] = hostname_env;
    }
  envp[n] = NULL;

  /* No host file descriptor may cross into the container (CVE-2024-21626: a leaked
   * directory fd of the host let a process walk out of its root). The error fd stays
   * usable until execve succeeds. */
  if (syscall (SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
    {
      md_make_error (&err, errno, "close_range", "cannot close host file descriptors");
      md_child_fail (opts, &err);
    }

  if (md_security_apply (&opts->sec, &err) < 0)
    md_child_fail (opts, &err);
  if (opts->user_given && switch_user (opts, &err) < 0)
    md_child_fail (opts, &err);

  for (i = 1; i < NSIG; i++)
    signal ((int) i, SIG_DFL);
  sigprocmask (SIG_SETMASK, old_mask, NULL);

  environ = envp;
  execvp (opts->argv[0], opts->argv);
  saved = errno;
  if (saved == ENOENT || saved == ENOTDIR)
    {
      md_make_error (&err, saved, "execve", "%s: executable file not found", opts->argv[0]);
      snprintf (err.code, sizeof (err.code), MD_E_COMMAND_NOT_FOUND);
      md_report_error (&err, opts->error_fd, opts->error_fd < 0);
      _exit (127);
    }
  md_make_error (&err, saved, "execve", "%s: cannot execute", opts->argv[0]);
  snprintf (err.code, sizeof (err.code), MD_E_CANNOT_EXECUTE);
  md_report_error (&err, opts->error_fd, opts->error_fd < 0);
  _exit (126);
}

/* A /proc/PID file written in one write(2): the kernel takes a uid_map or gid_map in one
 * write, and only once. */
int
md_write_proc_file (pid_t pid, const char *name, const char *content, md_error_t *err)
{
  char path[64];
  cleanup_close int fd = -1;

  snprintf (path, sizeof (path), "/proc/%d/%s", (int) pid, name);
  fd = open (path, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return md_make_error (err, errno, "open", "cannot open %s", path);
  if (write (fd, content, strlen (content)) != (ssize_t) strlen (content))
    return md_make_error (err, errno, "write", "cannot write %s", path);
  return 0;
}
