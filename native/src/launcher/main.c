/* mdocker-init: the launcher. Parses its arguments (exactly what to set up, as bwrap's
 * do; parse.c), then runs a new container or executes a process in a running one. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>

#include "launcher.h"
#include "netinfo.h"
#include "parse.h"

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
      "usage: mdocker-init run [--image DIR | --image-layer DIR... | --rootfs DIR] --layer-dir DIR [OPTIONS]\n"
      "         -- CMD [ARG...]\n"
      "       mdocker-init exec --pid PID [OPTIONS] -- CMD [ARG...]\n"
      "       mdocker-init check-idmap DIR\n"
      "       mdocker-init netinfo NETNS_PATH...\n"
      "       mdocker-init network-create NETNS_PATH [--gateway A.B.C.D/LEN --uplink NAME --uplink-host A.B.C.D/30\n"
      "         --uplink-peer A.B.C.D/30] | network-remove NETNS_PATH\n"
      "options: --id ID --hostname NAME --layer-size BYTES --cgroup DIR --env K=V --workdir DIR --user UID:GID --tty\n"
      "         --pid-file PATH --error-fd N --error-file PATH --exit-file PATH --cleanup-dir DIR\n"
      "         --die-with-parent --userns host|private --userns-map UID:GID:COUNT\n"
      "         --userns-pool UID:GID:SLOTS --userns-lock-dir DIR\n"
      "         --cap-add CAP --cap-drop CAP --seccomp default|unconfined --no-new-privs 0|1 --nofile N\n"
      "         --network-netns PATH --network-address A.B.C.D/LEN --network-hosts FILE\n"
      "         --network-gateway A.B.C.D --network-dns A.B.C.D[,A.B.C.D...]\n"
      "see native/README.md\n",
      out);
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

  md_opts_defaults (&opts);

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
        md_make_error_code (&err, MD_E_INVALID_ARGUMENT, "usage: mdocker-init check-idmap DIR");
      else if (geteuid () != 0)
        md_make_error_code (&err, MD_E_NOT_ROOT, "mdocker-init must run as root");
      else if (md_check_idmap (argv[2], &err) == 0)
        return 0;
      md_report_error (&err, STDOUT_FILENO, 0);
      return 1;
    }
  if (strcmp (verb, "network-create") == 0 || strcmp (verb, "network-remove") == 0)
    {
      /* Answers as check-idmap does: exit 0, or 1 and the error's JSON line on stdout. */
      struct md_egress egress = { 0 };
      int egress_args = argc == 11 && verb[8] == 'c';

      if ((argc != 3 && !egress_args) || argv[2][0] != '/')
        md_make_error_code (&err, MD_E_INVALID_ARGUMENT,
                            "usage: mdocker-init %s NETNS_PATH [--gateway A.B.C.D/LEN --uplink NAME "
                            "--uplink-host A.B.C.D/30 --uplink-peer A.B.C.D/30]",
                            verb);
      else if (egress_args && md_parse_egress (argv + 3, &egress, &err) < 0)
        ;
      else if (geteuid () != 0)
        md_make_error_code (&err, MD_E_NOT_ROOT, "mdocker-init must run as root");
      else if (verb[8] == 'r')
        {
          md_network_remove (argv[2]);
          return 0;
        }
      else if (md_network_create (argv[2], egress_args ? &egress : NULL, &err) == 0)
        return 0;
      md_report_error (&err, STDOUT_FILENO, 0);
      return 1;
    }
  if (strcmp (verb, "netinfo") == 0)
    {
      /* Answers on stdout: the JSON array and exit 0, or 1 and the error's JSON line. */
      int i, bad = argc < 3 || argc > 10;
      for (i = 2; i < argc; i++)
        bad |= argv[i][0] != '/';
      if (bad)
        md_make_error_code (&err, MD_E_INVALID_ARGUMENT, "usage: mdocker-init netinfo NETNS_PATH... (1 to 8)");
      else if (geteuid () != 0)
        md_make_error_code (&err, MD_E_NOT_ROOT, "mdocker-init must run as root");
      else if (md_netinfo (argc - 2, argv + 2, &err) == 0)
        return 0;
      md_report_error (&err, STDOUT_FILENO, 0);
      return 1;
    }
  if (strcmp (verb, "run") != 0 && strcmp (verb, "exec") != 0)
    {
      md_make_error_code (&err, MD_E_INVALID_ARGUMENT, "unknown verb %s (run or exec)", verb);
      md_report_error (&err, -1, 1);
      return 125;
    }

  if (run_from_sealed_copy (argv, &err) < 0)
    {
      md_report_error (&err, -1, 1);
      return 125;
    }
  /* One name in ps and /proc/PID/comm however it was started: its exec named it after
   * the memfd (execveat), or "3" (the server's posix_spawn of /proc/self/fd/3). */
  prctl (PR_SET_NAME, "mdocker-init", 0, 0, 0);

  /* While the launcher holds host resources (open directories of the host, the
   * cgroup files) nothing in the container may ptrace it or open its /proc files; the
   * child inherits this until its execve. */
  prctl (PR_SET_DUMPABLE, 0, 0, 0, 0);

  if (md_parse_args (argc, argv, &opts, &err) < 0 || md_check_opts (verb, &opts, &err) < 0)
    {
      md_report_error (&err, opts.error_fd, opts.error_fd < 0);
      return 125;
    }
  if (geteuid () != 0)
    {
      md_make_error_code (&err, MD_E_NOT_ROOT, "mdocker-init must run as root");
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

  if (opts.log_file)
    {
      if (opts.log_max_bytes == 0)
        opts.log_max_bytes = 8ULL * 1024 * 1024;
      if (md_start_log_relay (&opts, &err) < 0)
        {
          md_report_error (&err, opts.error_fd, opts.error_fd < 0);
          return 125;
        }
    }
  ret = strcmp (verb, "run") == 0 ? md_run (&opts, &err) : md_exec (&opts, &err);
  if (ret < 0)
    {
      md_report_error (&err, opts.error_fd, opts.error_fd < 0);
      return 125;
    }
  return ret;
}
