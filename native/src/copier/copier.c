/* mdocker-copier: copies stdin into fd 3 from inside a container's cgroups.
 *
 *   mdocker-copier --max-bytes N [CGROUP_DIR...]
 *
 * The server makes the temporary file of an upload in the container's root (as the
 * container's root user, resolved inside it) and hands it over open as fd 3. The copier
 * joins each CGROUP_DIR (one per v1 hierarchy, one for v2), then writes what arrives on
 * stdin into fd 3: the kernel charges a page of a tmpfs (or the page cache) to the memory
 * cgroup of the task that allocates it, so the bytes count against the container's
 * memory limit rather than the server's. It opens nothing of the container's: fd 3 is
 * the only file it writes besides the cgroup.procs files.
 *
 * It answers as the launcher's network verbs do: exit 0, or 1 and one JSON error line on
 * stdout (TOO_LARGE past --max-bytes). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "../launcher/error.h"

#define MD_COPIER_TARGET_FD 3
#define MD_COPIER_CHUNK (128 * 1024)
#define MD_COPIER_MAX_CGROUPS 32

static int
parse_max_bytes (const char *text, uint64_t *out, md_error_t *err)
{
  char *end = NULL;
  unsigned long long value;

  errno = 0;
  value = strtoull (text, &end, 10);
  if (text[0] < '0' || text[0] > '9' || *end != '\0' || errno != 0)
    return md_make_error_code (err, MD_E_INVALID_ARGUMENT, "--max-bytes: not a byte count: %s", text);
  *out = (uint64_t) value;
  return 0;
}

/* The OOM killer picks the task with the highest badness in the cgroup that is out of
 * memory. Pages of a tmpfs file count in no task's RSS, so without this an upload that
 * does not fit would get the container's own processes killed (its shell first) rather
 * than the copier whose writes caused it. */
static int
prefer_as_oom_victim (md_error_t *err)
{
  cleanup_close int fd = open ("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);

  if (fd < 0)
    return md_make_error (err, errno, "open", "cannot open /proc/self/oom_score_adj");
  if (md_write_all (fd, "1000", 4) < 0)
    return md_make_error (err, errno, "write", "cannot set oom_score_adj");
  return 0;
}

/* The container's state, not the request, refuses a join: UNAVAILABLE (the server answers
 * 409), with the errno in the message, never as a failed write of the file. */
static int
join_error (md_error_t *err, int errno_value, const char *dir, const char *what)
{
  if (errno_value == ENOENT || errno_value == ENOTDIR || errno_value == ENODEV)
    return md_make_error_code (err, MD_E_NOT_FOUND, "the container's cgroup %s is gone (the container stopped)", dir);
  return md_make_error_code (err, MD_E_UNAVAILABLE, "cannot join the container's cgroup %s: %s: %s", dir, what,
                             strerror (errno_value));
}

static int
join_cgroup (const char *dir, md_error_t *err)
{
  char path[4096];
  struct statfs fs;
  cleanup_close int fd = -1;

  if (dir[0] != '/' || (size_t) snprintf (path, sizeof (path), "%s/cgroup.procs", dir) >= sizeof (path))
    return md_make_error_code (err, MD_E_INVALID_ARGUMENT, "not an absolute cgroup directory: %s", dir);
  fd = open (path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    return join_error (err, errno, dir, "open");
  /* The directories come from the caller: "0" goes into no file but a cgroup's. */
  if (fstatfs (fd, &fs) < 0)
    return join_error (err, errno, dir, "fstatfs");
  if (fs.f_type != CGROUP_SUPER_MAGIC && fs.f_type != CGROUP2_SUPER_MAGIC)
    return md_make_error_code (err, MD_E_INVALID_ARGUMENT, "%s is not on a cgroup filesystem", path);
  /* "0" is the writing task itself. ENODEV: the cgroup is being removed. A container at
   * its pids limit still takes the copier: the pids controller charges a migration
   * without checking pids.max (it refuses forks only). EBUSY: a v2 cgroup that enabled
   * controllers for children of its own (only a leaf then takes a process). */
  if (md_write_all (fd, "0", 1) < 0)
    return join_error (err, errno, dir, "write");
  return 0;
}

static int
check_target (md_error_t *err)
{
  struct stat st;
  int flags = fcntl (MD_COPIER_TARGET_FD, F_GETFL);

  if (flags < 0 || fstat (MD_COPIER_TARGET_FD, &st) < 0)
    return md_make_error_code (err, MD_E_INVALID_ARGUMENT, "fd 3 is not open");
  if (!S_ISREG (st.st_mode) || (flags & O_ACCMODE) == O_RDONLY)
    return md_make_error_code (err, MD_E_INVALID_ARGUMENT, "fd 3 is not a regular file open for writing");
  return 0;
}

static int
copy_stdin (uint64_t max_bytes, md_error_t *err)
{
  char buf[MD_COPIER_CHUNK];
  uint64_t total = 0;

  for (;;)
    {
      ssize_t n = read (STDIN_FILENO, buf, sizeof (buf));
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return md_make_error (err, errno, "read", "cannot read the bytes to write");
      if (n == 0)
        return 0;
      total += (uint64_t) n;
      if (total > max_bytes)
        return md_make_error_code (err, MD_E_TOO_LARGE, "more than %" PRIu64 " bytes", max_bytes);
      if (md_write_all (MD_COPIER_TARGET_FD, buf, (size_t) n) < 0)
        return md_make_error (err, errno ? errno : EIO, "write", "cannot write the file");
    }
}

int
main (int argc, char **argv)
{
  md_error_t err;
  uint64_t max_bytes = 0;
  int i;

  if (argc < 3 || strcmp (argv[1], "--max-bytes") != 0 || argc - 3 > MD_COPIER_MAX_CGROUPS)
    md_make_error_code (&err, MD_E_INVALID_ARGUMENT, "usage: mdocker-copier --max-bytes N [CGROUP_DIR...] (at most %d)",
                        MD_COPIER_MAX_CGROUPS);
  else if (parse_max_bytes (argv[2], &max_bytes, &err) < 0 || check_target (&err) < 0
           || prefer_as_oom_victim (&err) < 0)
    ;
  else
    {
      for (i = 3; i < argc; i++)
        if (join_cgroup (argv[i], &err) < 0)
          break;
      if (i == argc && copy_stdin (max_bytes, &err) == 0)
        return 0;
    }
  md_report_error (&err, STDOUT_FILENO, 0);
  return 1;
}
