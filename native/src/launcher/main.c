/* mdocker-init: the launcher. Parses its arguments (exactly what to set up, as bwrap's
 * do), then runs a new container or executes a process in a running one. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>

#include "launcher.h"

#define DEFAULT_LAYER_SIZE_BYTES (256ULL * 1024 * 1024)

static void
usage (FILE *out)
{
  fputs ("usage: mdocker-init run [--image DIR --layer-dir DIR | --rootfs DIR --layer-dir DIR] [OPTIONS] -- CMD [ARG...]\n"
         "       mdocker-init exec --pid PID [OPTIONS] -- CMD [ARG...]\n"
         "options: --id ID --hostname NAME --layer-size BYTES --cgroup DIR --env K=V --workdir DIR --tty\n"
         "         --pid-file PATH --error-fd N --error-file PATH --exit-file PATH --cleanup-dir DIR\n"
         "         --die-with-parent\n"
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
        return md_make_error_code (err, "INVALID_ARGUMENT", "exec joins a container: no --image, --rootfs, --layer-dir or --hostname");
    }
  if (opts->workdir && opts->workdir[0] != '/')
    return md_make_error_code (err, "INVALID_ARGUMENT", "--workdir must be absolute: %s", opts->workdir);
  if (opts->tty && !isatty (STDIN_FILENO))
    return md_make_error_code (err, "INVALID_ARGUMENT", "--tty given but stdin is not a terminal");
  return 0;
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
  md_security_defaults (&opts.sec);

  if (argc < 2 || strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0)
    {
      usage (argc < 2 ? stderr : stdout);
      return argc < 2 ? 125 : 0;
    }
  verb = argv[1];
  if (strcmp (verb, "run") != 0 && strcmp (verb, "exec") != 0)
    {
      md_make_error_code (&err, "INVALID_ARGUMENT", "unknown verb %s (run or exec)", verb);
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
