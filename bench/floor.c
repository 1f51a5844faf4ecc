/* The floor of a container start: the syscalls every peer must make and nothing else.
 * clone into new PID, UTS, IPC, network and mount namespaces; in the child, make the
 * mounts private, bind the root onto itself (pivot_root wants a mount point), mount
 * /proc, pivot_root, detach the old root, exec. No cgroups, no /dev, no error JSON.
 *
 *   floor ROOTFS COMMAND [ARG...]
 *
 * Exits with the command's status (128+N if killed by signal N, 125 on a setup failure
 * with one line on stderr). */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void __attribute__ ((noreturn)) die (const char *what)
{
  fprintf (stderr, "floor: %s: %s\n", what, strerror (errno));
  _exit (125);
}

static void __attribute__ ((noreturn)) child (const char *root, char **argv)
{
  char proc[PATH_MAX];

  if (mount (NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
    die ("mount / private");
  if (mount (root, root, NULL, MS_BIND | MS_REC, NULL) < 0)
    die ("bind root");
  snprintf (proc, sizeof (proc), "%s/proc", root);
  if (mount ("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
    die ("mount proc");
  if (chdir (root) < 0)
    die ("chdir root");
  if (syscall (SYS_pivot_root, ".", ".") < 0)
    die ("pivot_root");
  if (umount2 (".", MNT_DETACH) < 0)
    die ("umount old root");
  if (chdir ("/") < 0)
    die ("chdir /");
  execv (argv[0], argv);
  die ("execv");
}

int
main (int argc, char **argv)
{
  int status;
  pid_t pid;

  if (argc < 3)
    {
      fprintf (stderr, "usage: floor ROOTFS COMMAND [ARG...]\n");
      return 2;
    }
  /* A raw clone acts as fork while entering the namespaces (no stack to manage). */
  pid = (pid_t) syscall (SYS_clone, CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWNS | SIGCHLD,
                         NULL, NULL, NULL, NULL);
  if (pid < 0)
    die ("clone");
  if (pid == 0)
    child (argv[1], argv + 2);
  while (waitpid (pid, &status, 0) < 0)
    if (errno != EINTR)
      die ("waitpid");
  if (WIFEXITED (status))
    return WEXITSTATUS (status);
  if (WIFSIGNALED (status))
    return 128 + WTERMSIG (status);
  return 125;
}
