/* mdocker-init: the launcher. Parses its arguments (exactly what to set up, as bwrap's
 * do), then runs a new container or executes a process in a running one. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>

#include "launcher.h"

#define DEFAULT_LAYER_SIZE_BYTES (256ULL * 1024 * 1024)

/* The default user namespace pool, for direct use (launcher.ts always names one): 16384
 * slots of 65536 ids from 2^28 up, far above any login or /etc/subuid range a distro
 * hands out, and below 2^32-1, which is no id. */
#define DEFAULT_USERNS_POOL_BASE 0x10000000UL
#define DEFAULT_USERNS_POOL_SLOTS 16384UL
#define DEFAULT_USERNS_LOCK_DIR "/run/mdocker/userns"
#define MD_ID_LIMIT 0xffffffffUL /* (uid_t) -1 means "no change" to the kernel */

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif
#ifndef F_SEAL_EXEC
#define F_SEAL_EXEC 0x0020
#endif

extern char **environ;

static void
usage (FILE *out)
{
  fputs (
      "usage: mdocker-init run [--image DIR --layer-dir DIR | --rootfs DIR --layer-dir DIR] [OPTIONS] -- CMD [ARG...]\n"
      "       mdocker-init exec --pid PID [OPTIONS] -- CMD [ARG...]\n"
      "       mdocker-init check-idmap DIR\n"
      "options: --id ID --hostname NAME --layer-size BYTES --cgroup DIR --env K=V --workdir DIR --tty\n"
      "         --pid-file PATH --error-fd N --error-file PATH --exit-file PATH --cleanup-dir DIR\n"
      "         --die-with-parent --userns host|private --userns-map UID:GID:COUNT\n"
      "         --userns-pool UID:GID:SLOTS --userns-lock-dir DIR\n"
      "         --cap-add CAP --cap-drop CAP --seccomp default|unconfined --no-new-privs 0|1 --nofile N\n"
      "see native/README.md\n",
      out);
}

static int
parse_ull (const char *s, unsigned long long *out)
{
  char *end;
  errno = 0;
  if (s == NULL || *s == '\0' || *s == '-')
    return -1;
  *out = strtoull (s, &end, 10);
  return (errno || *end) ? -1 : 0;
}

/* "A:B:C", three decimal numbers. */
static int
parse_triple (const char *s, unsigned long *a, unsigned long *b, unsigned long *c)
{
  unsigned long long v[3];
  char buf[96], *part, *save = NULL;
  int i = 0;

  if (strlen (s) >= sizeof (buf))
    return -1;
  snprintf (buf, sizeof (buf), "%s", s);
  for (part = strtok_r (buf, ":", &save); part != NULL; part = strtok_r (NULL, ":", &save))
    if (i >= 3 || parse_ull (part, &v[i++]) < 0 || v[i - 1] > MD_ID_LIMIT)
      return -1;
  if (i != 3)
    return -1;
  *a = (unsigned long) v[0];
  *b = (unsigned long) v[1];
  *c = (unsigned long) v[2];
  return 0;
}

/* A range of host ids that holds no root and stays below (uid_t) -1. */
static int
host_range_ok (unsigned long first, unsigned long count)
{
  return first >= 1 && count >= 1 && count <= MD_ID_LIMIT - first;
}

/* Options that take no value. */
static int
is_flag (const char *opt)
{
  return strcmp (opt, "--tty") == 0 || strcmp (opt, "--die-with-parent") == 0;
}

static int
parse_args (int argc, char **argv, struct md_opts *opts, md_error_t *err)
{
  int i;
  unsigned long long n;

  for (i = 2; i < argc; i++)
    {
      const char *opt = argv[i];
      const char *val;
      int r;

      if (strcmp (opt, "--") == 0)
        {
          i++;
          break;
        }
      if (strncmp (opt, "--", 2) != 0)
        break;
      if (is_flag (opt))
        {
          if (strcmp (opt, "--tty") == 0)
            opts->tty = 1;
          else
            opts->die_with_parent = 1;
          continue;
        }
      if (i + 1 >= argc)
        return md_make_error_code (err, "INVALID_ARGUMENT", "option %s needs a value", opt);
      val = argv[++i];

      r = md_security_parse_option (&opts->sec, opt, val, err);
      if (r < 0)
        return r;
      if (r > 0)
        continue;

      if (strncmp (opt, "--userns", 8) == 0)
        opts->userns.given = 1;

      if (strcmp (opt, "--id") == 0)
        opts->id = val;
      else if (strcmp (opt, "--hostname") == 0)
        opts->hostname = val;
      else if (strcmp (opt, "--image") == 0)
        opts->image = val;
      else if (strcmp (opt, "--rootfs") == 0)
        opts->rootfs = val;
      else if (strcmp (opt, "--layer-dir") == 0)
        opts->layer_dir = val;
      else if (strcmp (opt, "--workdir") == 0)
        opts->workdir = val;
      else if (strcmp (opt, "--pid-file") == 0)
        opts->pid_file = val;
      else if (strcmp (opt, "--exit-file") == 0)
        opts->exit_file = val;
      else if (strcmp (opt, "--cleanup-dir") == 0)
        opts->cleanup_dir = val;
      else if (strcmp (opt, "--userns") == 0)
        {
          if (strcmp (val, "host") == 0)
            opts->userns.mode = MD_USERNS_HOST;
          else if (strcmp (val, "private") == 0)
            opts->userns.mode = MD_USERNS_POOL;
          else
            return md_make_error_code (err, "INVALID_ARGUMENT", "invalid --userns %s: host or private", val);
        }
      else if (strcmp (opt, "--userns-map") == 0)
        {
          struct md_userns *u = &opts->userns;
          if (parse_triple (val, &u->host_uid, &u->host_gid, &u->count) < 0 || !host_range_ok (u->host_uid, u->count)
              || !host_range_ok (u->host_gid, u->count))
            return md_make_error_code (err, "INVALID_ARGUMENT",
                                       "invalid --userns-map %s: UID:GID:COUNT, host ids from 1, below 2^32-1", val);
          u->mode = MD_USERNS_MAP;
        }
      else if (strcmp (opt, "--userns-pool") == 0)
        {
          struct md_userns *u = &opts->userns;
          if (parse_triple (val, &u->pool_uid, &u->pool_gid, &u->pool_slots) < 0 || u->pool_slots < 1
              || u->pool_slots > MD_ID_LIMIT / MD_USERNS_SLOT_IDS
              || !host_range_ok (u->pool_uid, u->pool_slots * MD_USERNS_SLOT_IDS)
              || !host_range_ok (u->pool_gid, u->pool_slots * MD_USERNS_SLOT_IDS))
            return md_make_error_code (err, "INVALID_ARGUMENT",
                                       "invalid --userns-pool %s: UID:GID:SLOTS of 65536 ids, from 1, below 2^32-1",
                                       val);
          u->mode = MD_USERNS_POOL;
        }
      else if (strcmp (opt, "--userns-lock-dir") == 0)
        {
          if (val[0] != '/')
            return md_make_error_code (err, "INVALID_ARGUMENT", "--userns-lock-dir must be absolute: %s", val);
          opts->userns.lock_dir = val;
        }
      else if (strcmp (opt, "--layer-size") == 0)
        {
          if (parse_ull (val, &n) < 0 || n < 1024 * 1024)
            return md_make_error_code (err, "INVALID_ARGUMENT", "invalid --layer-size %s: bytes, at least 1 MiB", val);
          opts->layer_size_bytes = n;
        }
      else if (strcmp (opt, "--pid") == 0)
        {
          if (parse_ull (val, &n) < 0 || n < 1 || n > INT_MAX)
            return md_make_error_code (err, "INVALID_ARGUMENT", "invalid --pid %s", val);
          opts->target_pid = (pid_t) n;
        }
      else if (strcmp (opt, "--error-fd") == 0)
        {
          if (parse_ull (val, &n) < 0 || n > INT_MAX || fcntl ((int) n, F_GETFD) < 0)
            return md_make_error_code (err, "INVALID_ARGUMENT", "invalid --error-fd %s: not an open fd", val);
          opts->error_fd = (int) n;
          /* It must never reach the container's command. */
          fcntl (opts->error_fd, F_SETFD, FD_CLOEXEC);
        }
      else if (strcmp (opt, "--error-file") == 0)
        {
          int fd = open (val, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
          if (fd < 0)
            return md_make_error (err, errno, "open", "cannot open --error-file %s", val);
          opts->error_fd = fd;
        }
      else if (strcmp (opt, "--cgroup") == 0)
        {
          if (opts->n_cgroups >= MD_MAX_CGROUPS)
            return md_make_error_code (err, "INVALID_ARGUMENT", "too many --cgroup options");
          opts->cgroups[opts->n_cgroups++] = val;
        }
      else if (strcmp (opt, "--env") == 0)
        {
          if (strchr (val, '=') == NULL || val[0] == '=')
            return md_make_error_code (err, "INVALID_ARGUMENT", "invalid --env %s: expected KEY=VALUE", val);
          if (opts->n_env >= MD_MAX_ENV - 1)
            return md_make_error_code (err, "INVALID_ARGUMENT", "too many --env options");
          opts->env[opts->n_env++] = val;
        }
      else
        return md_make_error_code (err, "INVALID_ARGUMENT", "unknown option %s", opt);
    }

  if (i >= argc)
    return md_make_error_code (err, "INVALID_ARGUMENT", "missing command");
  opts->argv = &argv[i];
  return 0;
}

static int
validate (const char *verb, struct md_opts *opts, md_error_t *err)
{
  if (strcmp (verb, "run") == 0)
    {
      if ((opts->image == NULL) == (opts->rootfs == NULL))
        return md_make_error_code (err, "INVALID_ARGUMENT", "run needs exactly one of --image and --rootfs");
      if (opts->layer_dir == NULL)
        return md_make_error_code (err, "INVALID_ARGUMENT", "run needs --layer-dir");
      if (opts->target_pid)
        return md_make_error_code (err, "INVALID_ARGUMENT", "--pid is for exec");
    }
  else
    {
      if (opts->target_pid == 0)
        return md_make_error_code (err, "INVALID_ARGUMENT", "exec needs --pid");
      if (opts->image || opts->rootfs || opts->layer_dir || opts->hostname)
        return md_make_error_code (err, "INVALID_ARGUMENT",
                                   "exec joins a container: no --image, --rootfs, --layer-dir or --hostname");
      if (opts->userns.given)
        return md_make_error_code (err, "INVALID_ARGUMENT",
                                   "exec joins the container's user namespace, whatever it is: no --userns options");
    }
  if (opts->workdir && opts->workdir[0] != '/')
    return md_make_error_code (err, "INVALID_ARGUMENT", "--workdir must be absolute: %s", opts->workdir);
  if (opts->tty && !isatty (STDIN_FILENO))
    return md_make_error_code (err, "INVALID_ARGUMENT", "--tty given but stdin is not a terminal");
  return 0;
}

/* CVE-2019-5736: a container that makes its own binary a "#!/proc/self/exe" script gets
 * the runtime to execute itself inside the container when it runs that binary (exec
 * does). The container then holds /proc/<pid>/exe of a runtime process and, once it has
 * exited, reopens it for writing: the host's launcher, replaced by the container's
 * payload, runs as root at the next start. As runc does since, the launcher runs from a
 * sealed memfd copy of itself: /proc/<pid>/exe of every launcher process is that copy,
 * which nobody can write (F_SEAL_WRITE) and which is not the file on disk. The user
 * namespace denies the write too (the binary is owned by an unmapped uid), but
 * --userns host must not reopen the hole. Returns only when already running the copy,
 * or with err filled. */
static int
run_from_sealed_copy (char **argv, md_error_t *err)
{
  const int seals = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;
  cleanup_close int exe = -1;
  cleanup_close int copy = -1;
  struct stat st;
  off_t done = 0;
  int r;

  exe = open ("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  if (exe < 0)
    return md_make_error (err, errno, "open", "cannot open /proc/self/exe to run from a sealed copy");
  r = fcntl (exe, F_GET_SEALS);
  if (r >= 0 && (r & seals) == seals)
    return 0;

  copy = memfd_create ("mdocker-init", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
  if (copy < 0 && errno == EINVAL) /* before 6.3, which added MFD_EXEC */
    copy = memfd_create ("mdocker-init", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (copy < 0)
    return md_make_error (err, errno, "memfd_create", "cannot copy the launcher into a sealed memfd");
  if (fstat (exe, &st) < 0)
    return md_make_error (err, errno, "fstat", "/proc/self/exe");
  while (done < st.st_size)
    {
      ssize_t n = sendfile (copy, exe, NULL, (size_t) (st.st_size - done));
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return md_make_error (err, n < 0 ? errno : EIO, "sendfile", "cannot copy the launcher into a memfd");
      done += n;
    }
  /* Nor may the copy's exec bits change (F_SEAL_EXEC, 6.3+): with the others in one
   * call, since F_SEAL_SEAL forbids any later seal; kernels that do not know it say
   * EINVAL, and get the others alone. */
  if (fcntl (copy, F_ADD_SEALS, seals | F_SEAL_EXEC) < 0 && (errno != EINVAL || fcntl (copy, F_ADD_SEALS, seals) < 0))
    return md_make_error (err, errno, "fcntl", "cannot seal the launcher's memfd copy");
  fexecve (copy, argv, environ);
  return md_make_error (err, errno, "execveat", "cannot run the launcher's sealed copy");
}

int
main (int argc, char **argv)
{
  struct md_opts opts;
  md_error_t err;
  const char *verb;
  int ret;

  memset (&opts, 0, sizeof (opts));
  opts.error_fd = -1;
  opts.layer_size_bytes = DEFAULT_LAYER_SIZE_BYTES;
  opts.userns.mode = MD_USERNS_POOL;
  opts.userns.pool_uid = DEFAULT_USERNS_POOL_BASE;
  opts.userns.pool_gid = DEFAULT_USERNS_POOL_BASE;
  opts.userns.pool_slots = DEFAULT_USERNS_POOL_SLOTS;
  opts.userns.lock_dir = DEFAULT_USERNS_LOCK_DIR;
  md_security_defaults (&opts.sec);

  if (argc < 2 || strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0)
    {
      usage (argc < 2 ? stderr : stdout);
      return argc < 2 ? 125 : 0;
    }
  verb = argv[1];
  if (strcmp (verb, "check-idmap") == 0)
    {
      /* Answers on stdout: nothing and exit 0 when supported, else the error's JSON line. */
      if (argc != 3)
        md_make_error_code (&err, "INVALID_ARGUMENT", "usage: mdocker-init check-idmap DIR");
      else if (geteuid () != 0)
        md_make_error_code (&err, "NOT_ROOT", "mdocker-init must run as root");
      else if (md_check_idmap (argv[2], &err) == 0)
        return 0;
      md_report_error (&err, STDOUT_FILENO, 0);
      return 1;
    }
  if (strcmp (verb, "run") != 0 && strcmp (verb, "exec") != 0)
    {
      md_make_error_code (&err, "INVALID_ARGUMENT", "unknown verb %s (run or exec)", verb);
      md_report_error (&err, -1, 1);
      return 125;
    }

  if (run_from_sealed_copy (argv, &err) < 0)
    {
      md_report_error (&err, -1, 1);
      return 125;
    }

  /* While the launcher holds host resources (open directories of the host, the
   * cgroup files) nothing in the container may ptrace it or open its /proc files; the
   * child inherits this until its execve. */
  prctl (PR_SET_DUMPABLE, 0, 0, 0, 0);

  if (parse_args (argc, argv, &opts, &err) < 0 || validate (verb, &opts, &err) < 0)
    {
      md_report_error (&err, opts.error_fd, opts.error_fd < 0);
      return 125;
    }
  if (geteuid () != 0)
    {
      md_make_error_code (&err, "NOT_ROOT", "mdocker-init must run as root");
      md_report_error (&err, opts.error_fd, opts.error_fd < 0);
      return 125;
    }

  /* As bwrap's --die-with-parent: the server or CLI that started us may die by
   * SIGKILL; its containers must not live on unowned. */
  if (opts.die_with_parent)
    {
      pid_t parent = getppid ();
      if (prctl (PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 || getppid () != parent || parent == 1)
        return 125;
    }

  ret = strcmp (verb, "run") == 0 ? md_run (&opts, &err) : md_exec (&opts, &err);
  if (ret < 0)
    {
      md_report_error (&err, opts.error_fd, opts.error_fd < 0);
      return 125;
    }
  return ret;
}
