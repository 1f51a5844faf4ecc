/* What starting a process costs the parent, by the parent's size: fork+exec (what
 * node-pty's forkpty and libuv's spawn do on Linux) against posix_spawn (glibc: a
 * vfork-style clone that shares the parent's memory, so its cost does not grow with it).
 *
 *   spawn-cost MIB...     e.g. spawn-cost 50 250 650
 *
 * For each size: touch that much heap, then time 30 of each, to the child's exit; prints
 * medians in ms. Profile evidence for bench/PROFILE.md, not part of `npm run bench`. */
#define _GNU_SOURCE
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double
now_ms (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (double) ts.tv_sec * 1e3 + (double) ts.tv_nsec / 1e6;
}

static int
cmp (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return x < y ? -1 : x > y;
}

#define RUNS 30

int
main (int argc, char **argv)
{
  char *child_argv[] = { (char *) "/bin/true", NULL };
  size_t held = 0;
  int i, a;

  for (a = 1; a < argc; a++)
    {
      size_t want = (size_t) strtoul (argv[a], NULL, 10) << 20;
      double t_fork[RUNS], t_spawn[RUNS];
      if (want > held)
        {
          char *p = malloc (want - held);
          if (p == NULL)
            return 1;
          memset (p, 1, want - held); /* resident, as a heap is */
          held = want;
        }
      for (i = 0; i < RUNS; i++)
        {
          double t0 = now_ms ();
          pid_t pid = fork ();
          if (pid == 0)
            {
              execve (child_argv[0], child_argv, environ);
              _exit (127);
            }
          double t1 = now_ms ();
          waitpid (pid, NULL, 0);
          t_fork[i] = t1 - t0;
          t0 = now_ms ();
          if (posix_spawn (&pid, child_argv[0], NULL, NULL, child_argv, environ) != 0)
            return 1;
          t1 = now_ms ();
          waitpid (pid, NULL, 0);
          t_spawn[i] = t1 - t0;
        }
      qsort (t_fork, RUNS, sizeof (double), cmp);
      qsort (t_spawn, RUNS, sizeof (double), cmp);
      printf ("parent %4zu MiB resident: the parent is blocked %.2f ms in fork(), %.2f ms in posix_spawn() (medians of %d)\n",
              held >> 20, t_fork[RUNS / 2], t_spawn[RUNS / 2], RUNS);
    }
  return 0;
}
