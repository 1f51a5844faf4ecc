/* --log-file PATH --log-max-bytes N: a detached container's output, kept to a size.
 * The output goes through a pipe to a small relay process of the launcher's, which
 * appends it to PATH until the file holds N bytes, then notes the cut once and drops the
 * rest, reading on so the container never blocks on a full pipe. A file the container
 * wrote directly could fill the host's /run (a tmpfs), and a size rlimit would kill the
 * writer instead. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "launcher.h"

#define RELAY_BUFFER_BYTES 65536

static void
relay (int in, int out, unsigned long long max_bytes, unsigned long long kept)
{
  char buf[RELAY_BUFFER_BYTES];
  char note[128];
  int noted = 0;

  for (;;)
    {
      ssize_t n = read (in, buf, sizeof (buf));
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return;
      if (kept < max_bytes)
        {
          size_t room = (size_t) (max_bytes - kept);
          size_t len = (size_t) n < room ? (size_t) n : room;
          if (md_write_all (out, buf, len) < 0)
            return;
          kept += len;
          if ((size_t) n <= room)
            continue;
        }
      if (!noted)
        {
          int len = snprintf (note, sizeof (note), "\n[mdocker: output past %llu bytes is not kept]\n", max_bytes);
          noted = 1;
          if (md_write_all (out, note, (size_t) len) < 0)
            return;
        }
    }
}

int
md_start_log_relay (const struct md_opts *opts, md_error_t *err)
{
  int pipe_fds[2];
  cleanup_close int out = -1;
  struct stat st;
  pid_t relay_pid;

  out = open (opts->log_file, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (out < 0)
    return md_make_error (err, errno, "open", "cannot open the log %s", opts->log_file);
  if (fstat (out, &st) < 0)
    return md_make_error (err, errno, "fstat", "%s", opts->log_file);
  if (pipe2 (pipe_fds, O_CLOEXEC) < 0)
    return md_make_error (err, errno, "pipe2", "cannot make the log's pipe");

  relay_pid = fork ();
  if (relay_pid < 0)
    {
      md_make_error (err, errno, "fork", "cannot start the log relay");
      close (pipe_fds[0]);
      close (pipe_fds[1]);
      return -1;
    }
  if (relay_pid == 0)
    {
      /* Nothing but the pipe and the file: the relay holds no other resource of the
       * launcher's, so it never keeps one alive. */
      close (pipe_fds[1]);
      if (dup2 (pipe_fds[0], 0) < 0 || dup2 (out, 1) < 0)
        _exit (1);
      syscall (SYS_close_range, 2U, ~0U, 0U);
      prctl (PR_SET_NAME, "mdocker-log", 0, 0, 0);
      relay (0, 1, opts->log_max_bytes, (unsigned long long) st.st_size);
      _exit (0);
    }
  close (pipe_fds[0]);
  /* The container inherits these as its stdout and stderr; the relay sees the end of
   * the output once the container's last process and this launcher are gone. */
  if (dup2 (pipe_fds[1], STDOUT_FILENO) < 0 || dup2 (pipe_fds[1], STDERR_FILENO) < 0)
    {
      md_make_error (err, errno, "dup2", "cannot send the output to the log relay");
      close (pipe_fds[1]);
      return -1;
    }
  close (pipe_fds[1]);
  return 0;
}
