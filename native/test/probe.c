/* mdocker-probe: a static payload for the escape suite. It makes, one after another,
 * the calls a container must not be able to make (and a few it must), and prints one
 * line per call:
 *
 *   NAME ret=R errno=E (STRERROR)
 *   NAME killed by signal N (DESCRIPTION)
 *
 * Each call runs in a child of its own, so that one that succeeds (unconfined) cannot
 * change what the next one sees, and one the filter kills cannot end the probe. Every
 * call is chosen to be harmless if it does succeed: bogus arguments past the permission
 * checks, paths that do not exist, objects closed at once. Exit status 0.
 *
 * `mdocker-probe stop-and-look ANCESTOR STOPFILE` instead watches other processes until
 * STOPFILE exists: every new process (a descendant of pid ANCESTOR, or any but itself
 * and pid 1 when ANCESTOR is 0) is stopped with SIGSTOP again and again until it has
 * exec'd, and each time, while it is stopped, the probe prints what another process
 * sees of it, then lets it go on:
 *
 *   look pid=P uid=UID name=NAME owner=UID environ=ok|ERRNO mem=ok|ERRNO
 *
 * uid is its real uid (/proc/P/status), owner the owner of /proc/P/status (the kernel
 * gives a non-dumpable process's files to root of the user namespace its memory belongs
 * to, a dumpable one's to its euid), environ and mem what opening those files of it
 * gave. The escape suite uses it to catch launcher processes between their credential
 * change and their execve. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
#ifndef AF_ALG
#define AF_ALG 38
#endif

/* From <linux/keyctl.h>, <linux/sched.h> and <linux/io_uring.h>, spelled out because
 * those headers clash with libc's or may be missing. */
#define PROBE_KEYCTL_GET_KEYRING_ID 0
#define PROBE_KEY_SPEC_PROCESS_KEYRING (-2)
#define PROBE_KEY_SPEC_SESSION_KEYRING (-3)
#define PROBE_CLONE_NEWUSER 0x10000000UL
#define PROBE_CLONE_NEWPID 0x20000000UL
#define PROBE_ADDR_NO_RANDOMIZE 0x0040000UL

struct probe_clone_args /* CLONE_ARGS_SIZE_VER0 */
{
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
};

struct probe_io_uring_params /* struct io_uring_params, 120 bytes */
{
  uint32_t sq_entries, cq_entries, flags, sq_thread_cpu, sq_thread_idle, features, wq_fd, resv[3];
  uint64_t sq_off[5];
  uint64_t cq_off[5];
};

static void
print_line (const char *name, long ret, int err)
{
  char line[256];
  int n = snprintf (line, sizeof (line), "%s ret=%ld errno=%d (%s)\n", name, ret, ret < 0 ? err : 0,
                    strerror (ret < 0 ? err : 0));

  if (n > 0)
    (void) !write (STDOUT_FILENO, line, (size_t) n < sizeof (line) ? (size_t) n : sizeof (line) - 1);
}

/* A call that returned a file descriptor gets it closed. */
static long
close_if_fd (long ret)
{
  if (ret >= 0)
    close ((int) ret);
  return ret;
}

/* For the clone family: the child of a successful clone leaves at once. */
static long
reap_if_child (long ret)
{
  if (ret == 0)
    _exit (0);
  if (ret > 0)
    waitpid ((pid_t) ret, NULL, __WALL);
  return ret;
}

static long
probe_keyctl (void)
{
  return syscall (SYS_keyctl, PROBE_KEYCTL_GET_KEYRING_ID, PROBE_KEY_SPEC_SESSION_KEYRING, 0);
}

static long
probe_add_key (void)
{
  /* Into the process keyring, which dies with this child. */
  return syscall (SYS_add_key, "user", "mdocker-probe", "x", (size_t) 1, PROBE_KEY_SPEC_PROCESS_KEYRING);
}

static long
probe_request_key (void)
{
  return syscall (SYS_request_key, "user", "mdocker-probe-missing", NULL, PROBE_KEY_SPEC_PROCESS_KEYRING);
}

static long
probe_bpf (void)
{
  union bpf_attr attr;

  memset (&attr, 0, sizeof (attr));
  attr.map_type = BPF_MAP_TYPE_ARRAY;
  attr.key_size = 4;
  attr.value_size = 4;
  attr.max_entries = 1;
  return close_if_fd (syscall (SYS_bpf, BPF_MAP_CREATE, &attr, sizeof (attr)));
}

static long
probe_perf_event_open (void)
{
  struct perf_event_attr attr;

  memset (&attr, 0, sizeof (attr));
  attr.size = sizeof (attr);
  attr.type = PERF_TYPE_SOFTWARE;
  attr.config = PERF_COUNT_SW_CPU_CLOCK;
  attr.disabled = 1;
  attr.exclude_kernel = 1;
  attr.exclude_hv = 1;
  return close_if_fd (syscall (SYS_perf_event_open, &attr, 0, -1, -1, 0UL));
}

static long
probe_userfaultfd (void)
{
  return close_if_fd (syscall (SYS_userfaultfd, O_CLOEXEC));
}

static long
probe_io_uring_setup (void)
{
  struct probe_io_uring_params params;

  memset (&params, 0, sizeof (params));
  return close_if_fd (syscall (SYS_io_uring_setup, 1U, &params));
}

static long
probe_setns (void)
{
  /* Our own network namespace: joining it changes nothing if it is allowed. */
  int fd = open ("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  long r;

  if (fd < 0)
    return syscall (SYS_setns, -1, 0);
  r = syscall (SYS_setns, fd, 0);
  close (fd);
  return r;
}

static long
probe_unshare_user (void)
{
  return syscall (SYS_unshare, PROBE_CLONE_NEWUSER);
}

static long
probe_clone_newpid (void)
{
  /* A NULL stack makes clone fork-like: the child runs on a copy of ours. */
  return reap_if_child (syscall (SYS_clone, PROBE_CLONE_NEWPID | SIGCHLD, NULL, NULL, NULL, 0UL));
}

static long
probe_clone (void)
{
  return reap_if_child (syscall (SYS_clone, (unsigned long) SIGCHLD, NULL, NULL, NULL, 0UL));
}

static long
probe_clone3 (void)
{
  struct probe_clone_args args;

  memset (&args, 0, sizeof (args));
  args.exit_signal = SIGCHLD;
  return reap_if_child (syscall (SYS_clone3, &args, sizeof (args)));
}

static long
probe_mount (void)
{
  struct stat st;
  const char *target = stat ("/mnt", &st) == 0 && S_ISDIR (st.st_mode) ? "/mnt" : "/tmp";
  long r = syscall (SYS_mount, "none", target, "tmpfs", 0UL, NULL);

  if (r == 0)
    umount2 (target, MNT_DETACH);
  return r;
}

static long
probe_umount2 (void)
{
  return syscall (SYS_umount2, "/nonexistent-mdocker-probe", 0);
}

static long
probe_pivot_root (void)
{
  return syscall (SYS_pivot_root, "/nonexistent-mdocker-probe-a", "/nonexistent-mdocker-probe-b");
}

static long
probe_fsopen (void)
{
  return close_if_fd (syscall (SYS_fsopen, "tmpfs", 0U));
}

static long
probe_kexec_load (void)
{
  /* Flags no kernel accepts: EINVAL once past the capability check. */
  return syscall (SYS_kexec_load, 0UL, 0UL, NULL, 0xdead0000UL);
}

static long
probe_init_module (void)
{
  return syscall (SYS_init_module, NULL, 0UL, "");
}

static long
probe_finit_module (void)
{
  return syscall (SYS_finit_module, -1, "", 0);
}

static long
probe_delete_module (void)
{
  return syscall (SYS_delete_module, "mdocker_probe_no_such_module", O_NONBLOCK);
}

static long
probe_open_by_handle_at (void)
{
  struct
  {
    unsigned int handle_bytes;
    int handle_type;
    unsigned char f_handle[8];
  } handle = { 8, 1, { 0 } };

  return close_if_fd (syscall (SYS_open_by_handle_at, AT_FDCWD, &handle, O_RDONLY));
}

static long
probe_ptrace (void)
{
  return syscall (SYS_ptrace, 0L /* PTRACE_TRACEME */, 0L, NULL, NULL);
}

static long
probe_acct (void)
{
  return syscall (SYS_acct, "/nonexistent-mdocker-probe");
}

static long
probe_reboot (void)
{
  /* Wrong magic numbers: EINVAL once allowed. */
  return syscall (SYS_reboot, 0, 0, 0, NULL);
}

static long
probe_clock_settime (void)
{
  struct timespec ts = { 0, 0 };

  /* The monotonic clock cannot be set: EINVAL once allowed. */
  return syscall (SYS_clock_settime, CLOCK_MONOTONIC, &ts);
}

static long
probe_syslog (void)
{
  return syscall (SYS_syslog, 10 /* SYSLOG_ACTION_SIZE_BUFFER */, NULL, 0);
}

static long
probe_swapon (void)
{
  return syscall (SYS_swapon, "/nonexistent-mdocker-probe", 0);
}

static long
probe_personality (void)
{
  long r = syscall (SYS_personality, PROBE_ADDR_NO_RANDOMIZE);

  return r < 0 ? r : 0;
}

static long
probe_socket_vsock (void)
{
  return close_if_fd (syscall (SYS_socket, AF_VSOCK, SOCK_STREAM, 0));
}

static long
socket_of (int family, int type, int protocol)
{
  return close_if_fd (syscall (SYS_socket, family, type, protocol));
}

static long
probe_socket_unix (void)
{
  return socket_of (AF_UNIX, SOCK_STREAM, 0);
}

static long
probe_socket_inet (void)
{
  return socket_of (AF_INET, SOCK_STREAM, 0);
}

static long
probe_socket_inet6 (void)
{
  return socket_of (AF_INET6, SOCK_DGRAM, 0);
}

static long
probe_socket_netlink (void)
{
  return socket_of (AF_NETLINK, SOCK_RAW, 0 /* NETLINK_ROUTE */);
}

static long
probe_socket_packet (void)
{
  return socket_of (AF_PACKET, SOCK_DGRAM, 0);
}

static long
probe_socket_bluetooth (void)
{
  return socket_of (AF_BLUETOOTH, SOCK_STREAM, 0);
}

static long
probe_socket_key (void)
{
  return socket_of (AF_KEY, SOCK_RAW, 2 /* PF_KEY_V2 */);
}

static long
probe_socket_alg (void)
{
  return socket_of (AF_ALG, SOCK_SEQPACKET, 0);
}

static long
probe_socket_inet_high_bits (void)
{
  /* The kernel reads an int: this is AF_INET to it, but not to a 64-bit comparison. */
  return close_if_fd (syscall (SYS_socket, (1L << 32) | AF_INET, SOCK_STREAM, 0));
}

static long
socketpair_of (int family)
{
  int sv[2];
  long r = syscall (SYS_socketpair, family, SOCK_STREAM, 0, sv);

  if (r == 0)
    {
      close (sv[0]);
      close (sv[1]);
    }
  return r;
}

static long
probe_socketpair_unix (void)
{
  return socketpair_of (AF_UNIX);
}

static long
probe_socketpair_inet (void)
{
  return socketpair_of (AF_INET);
}

static long
probe_socketpair_alg (void)
{
  return socketpair_of (AF_ALG);
}

static long
probe_socket_raw (void)
{
  return close_if_fd (syscall (SYS_socket, AF_INET, SOCK_RAW, 1 /* IPPROTO_ICMP */));
}

static long
probe_mknod (void)
{
  static const char path[] = "/tmp/mdocker-probe-null";
  long r = syscall (SYS_mknodat, AT_FDCWD, path, S_IFCHR | 0600, makedev (1, 3));

  if (r == 0)
    unlink (path);
  return r;
}

static long
probe_chroot (void)
{
  return syscall (SYS_chroot, "/");
}

static long
probe_sethostname (void)
{
  char name[256];

  /* The current name again: a change of nothing, if it is allowed. */
  if (gethostname (name, sizeof (name)) < 0)
    return -1;
  name[sizeof (name) - 1] = '\0';
  return syscall (SYS_sethostname, name, strlen (name));
}

static long
probe_x32_getpid (void)
{
#if defined(__x86_64__)
  /* The x32 ABI: the same syscall table's numbers with bit 30 set. */
  return syscall (0x40000000L | SYS_getpid);
#else
  errno = ENOSYS;
  return -1;
#endif
}

static long
probe_int80_getpid (void)
{
#if defined(__x86_64__)
  /* The i386 ABI through int 0x80: getpid is 20 there. Another audit architecture,
   * which the filter kills, or SIGSEGV where IA32 emulation is off. */
  long ret = 20;

  __asm__ volatile("int $0x80" : "+a"(ret) : : "r8", "r9", "r10", "r11", "cc", "memory");
  if (ret < 0 && ret > -4096)
    {
      errno = (int) -ret;
      return -1;
    }
  return ret;
#else
  errno = ENOSYS;
  return -1;
#endif
}

struct probe
{
  const char *name;
  long (*fn) (void);
};

static const struct probe probes[] = {
  { "keyctl", probe_keyctl },
  { "add_key", probe_add_key },
  { "request_key", probe_request_key },
  { "bpf", probe_bpf },
  { "perf_event_open", probe_perf_event_open },
  { "userfaultfd", probe_userfaultfd },
  { "io_uring_setup", probe_io_uring_setup },
  { "setns", probe_setns },
  { "unshare(CLONE_NEWUSER)", probe_unshare_user },
  { "clone(CLONE_NEWPID)", probe_clone_newpid },
  { "clone", probe_clone },
  { "clone3", probe_clone3 },
  { "mount", probe_mount },
  { "umount2", probe_umount2 },
  { "pivot_root", probe_pivot_root },
  { "fsopen", probe_fsopen },
  { "kexec_load", probe_kexec_load },
  { "init_module", probe_init_module },
  { "finit_module", probe_finit_module },
  { "delete_module", probe_delete_module },
  { "open_by_handle_at", probe_open_by_handle_at },
  { "ptrace(PTRACE_TRACEME)", probe_ptrace },
  { "acct", probe_acct },
  { "reboot", probe_reboot },
  { "clock_settime", probe_clock_settime },
  { "syslog", probe_syslog },
  { "swapon", probe_swapon },
  { "personality(ADDR_NO_RANDOMIZE)", probe_personality },
  { "socket(AF_UNIX)", probe_socket_unix },
  { "socket(AF_INET)", probe_socket_inet },
  { "socket(AF_INET6)", probe_socket_inet6 },
  { "socket(AF_NETLINK)", probe_socket_netlink },
  { "socket(AF_PACKET)", probe_socket_packet },
  { "socket(AF_VSOCK)", probe_socket_vsock },
  { "socket(AF_BLUETOOTH)", probe_socket_bluetooth },
  { "socket(AF_KEY)", probe_socket_key },
  { "socket(AF_ALG)", probe_socket_alg },
  { "socket(1<<32|AF_INET)", probe_socket_inet_high_bits },
  { "socketpair(AF_UNIX)", probe_socketpair_unix },
  { "socketpair(AF_INET)", probe_socketpair_inet },
  { "socketpair(AF_ALG)", probe_socketpair_alg },
  { "socket(AF_INET,SOCK_RAW)", probe_socket_raw },
  { "mknod(c 1:3)", probe_mknod },
  { "chroot", probe_chroot },
  { "sethostname", probe_sethostname },
  { "x32 getpid", probe_x32_getpid },
  { "int80 getpid", probe_int80_getpid },
};

static void
run_probe (const struct probe *p)
{
  char line[256];
  int status, n;
  pid_t pid = fork ();

  if (pid < 0)
    {
      print_line (p->name, -1, errno);
      return;
    }
  if (pid == 0)
    {
      long ret;

      errno = 0;
      ret = p->fn ();
      print_line (p->name, ret, errno);
      _exit (0);
    }
  while (waitpid (pid, &status, 0) < 0)
    if (errno != EINTR)
      return;
  if (WIFSIGNALED (status))
    {
      n = snprintf (line, sizeof (line), "%s killed by signal %d (%s)\n", p->name, WTERMSIG (status),
                    strsignal (WTERMSIG (status)));
      if (n > 0)
        (void) !write (STDOUT_FILENO, line, (size_t) n < sizeof (line) ? (size_t) n : sizeof (line) - 1);
    }
}

/* ---- stop-and-look ---------------------------------------------------------- */

#define LOOK_MAX_PIDS (1 << 22) /* pid_max's ceiling on 64-bit */
#define LOOK_MAX_TRACKED 256    /* processes being looked at, at once */
#define LOOK_MAX_SAMPLES 2000   /* per process, in case one never execs */

struct look_tracked
{
  pid_t pid;
  char name[32]; /* at first sight: once it differs, the process has exec'd */
  int samples;
};

/* Processes done with, or not descendants of the ancestor: never looked at again. */
static unsigned char look_ignored[LOOK_MAX_PIDS / 8];

static int
look_is_ignored (pid_t pid)
{
  return pid <= 0 || pid >= LOOK_MAX_PIDS || (look_ignored[pid / 8] & (1U << (pid % 8)));
}

static void
look_ignore (pid_t pid)
{
  if (pid > 0 && pid < LOOK_MAX_PIDS)
    look_ignored[pid / 8] |= (unsigned char) (1U << (pid % 8));
}

static ssize_t
read_small_file (const char *path, char *buf, size_t size)
{
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  ssize_t n;

  if (fd < 0)
    return -1;
  n = read (fd, buf, size - 1);
  close (fd);
  if (n < 0)
    return -1;
  buf[n] = '\0';
  return n;
}

/* The value of "KEY:\t..." in /proc/PID/status up to the first tab or newline. */
static int
status_value (pid_t pid, const char *key, char *out, size_t size)
{
  char path[64], buf[4096];
  size_t klen = strlen (key), n = 0;
  char *p;

  snprintf (path, sizeof (path), "/proc/%d/status", (int) pid);
  if (read_small_file (path, buf, sizeof (buf)) < 0)
    return -1;
  for (p = buf; p != NULL && *p != '\0'; p = strchr (p, '\n') ? strchr (p, '\n') + 1 : NULL)
    if (strncmp (p, key, klen) == 0 && p[klen] == ':')
      {
        p += klen + 1;
        while (*p == '\t' || *p == ' ')
          p++;
        while (p[n] != '\0' && p[n] != '\t' && p[n] != '\n' && n + 1 < size)
          {
            out[n] = p[n];
            n++;
          }
        out[n] = '\0';
        return 0;
      }
  return -1;
}

static int
descends_from (pid_t pid, pid_t ancestor)
{
  char value[32];
  int depth;

  if (ancestor == 0)
    return 1;
  for (depth = 0; depth < 64 && pid > 1; depth++)
    {
      if (status_value (pid, "PPid", value, sizeof (value)) < 0)
        return 0;
      pid = (pid_t) atoi (value);
      if (pid == ancestor)
        return 1;
    }
  return 0;
}

/* The state letter of /proc/PID/stat, or 0 when it is gone. */
static char
process_state (pid_t pid)
{
  char path[64], buf[1024];
  char *p;

  snprintf (path, sizeof (path), "/proc/%d/stat", (int) pid);
  if (read_small_file (path, buf, sizeof (buf)) < 0)
    return 0;
  p = strrchr (buf, ')');
  return p != NULL && p[1] == ' ' ? p[2] : 0;
}

static const char *
open_result (pid_t pid, const char *file)
{
  char path[64];
  int fd;

  snprintf (path, sizeof (path), "/proc/%d/%s", (int) pid, file);
  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return strerrorname_np (errno) ? strerrorname_np (errno) : "error";
  close (fd);
  return "ok";
}

/* Stops pid, prints what it looks like, lets it go on. Returns 0 while it should be
 * looked at again, -1 once it is gone or has exec'd. */
static int
look_at (struct look_tracked *t)
{
  char name[32], uid[32], path[64], line[512];
  const char *environ_result, *mem_result;
  struct timespec pause = { 0, 20 * 1000 };
  struct stat st;
  int tries, n, r = 0;

  if (kill (t->pid, SIGSTOP) < 0)
    return -1;
  for (tries = 0; tries < 20000; tries++)
    {
      char state = process_state (t->pid);

      if (state == 'T')
        break;
      if (state == 0 || state == 'Z' || state == 'X')
        return -1;
    }
  snprintf (path, sizeof (path), "/proc/%d/status", (int) t->pid);
  if (process_state (t->pid) == 'T' && status_value (t->pid, "Name", name, sizeof (name)) == 0
      && status_value (t->pid, "Uid", uid, sizeof (uid)) == 0 && stat (path, &st) == 0)
    {
      environ_result = open_result (t->pid, "environ");
      mem_result = open_result (t->pid, "mem");
      n = snprintf (line, sizeof (line), "look pid=%d uid=%s name=%s owner=%u environ=%s mem=%s\n", (int) t->pid, uid,
                    name, (unsigned) st.st_uid, environ_result, mem_result);
      if (n > 0)
        (void) !write (STDOUT_FILENO, line, (size_t) n < sizeof (line) ? (size_t) n : sizeof (line) - 1);
      if (t->name[0] == '\0')
        snprintf (t->name, sizeof (t->name), "%s", name);
      else if (strcmp (name, t->name) != 0)
        r = -1;
    }
  kill (t->pid, SIGCONT);
  nanosleep (&pause, NULL); /* let it run a little before the next look */
  if (++t->samples >= LOOK_MAX_SAMPLES)
    r = -1;
  return r;
}

static void
look_track_new (pid_t ancestor, struct look_tracked *tracked)
{
  DIR *proc = opendir ("/proc");
  struct dirent *e;
  size_t i;

  if (proc == NULL)
    return;
  while ((e = readdir (proc)) != NULL)
    {
      pid_t pid;

      if (!isdigit ((unsigned char) e->d_name[0]))
        continue;
      pid = (pid_t) atoi (e->d_name);
      if (look_is_ignored (pid))
        continue;
      for (i = 0; i < LOOK_MAX_TRACKED && tracked[i].pid != pid; i++)
        ;
      if (i < LOOK_MAX_TRACKED)
        continue; /* already tracked */
      if (!descends_from (pid, ancestor))
        {
          look_ignore (pid);
          continue;
        }
      for (i = 0; i < LOOK_MAX_TRACKED && tracked[i].pid != 0; i++)
        ;
      if (i == LOOK_MAX_TRACKED)
        break; /* full: tracked once another is done */
      memset (&tracked[i], 0, sizeof (tracked[i]));
      tracked[i].pid = pid;
    }
  closedir (proc);
}

static int
stop_and_look (pid_t ancestor, const char *stop_file)
{
  static struct look_tracked tracked[LOOK_MAX_TRACKED];
  size_t i;
  int pass;

  look_ignore (getpid ());
  look_ignore (1);
  while (access (stop_file, F_OK) != 0)
    {
      look_track_new (ancestor, tracked);
      /* A few looks at each before the next scan, which on the host's /proc is slow
       * next to the few milliseconds a launcher child lives. */
      for (pass = 0; pass < 8; pass++)
        for (i = 0; i < LOOK_MAX_TRACKED; i++)
          if (tracked[i].pid != 0 && look_at (&tracked[i]) < 0)
            {
              look_ignore (tracked[i].pid);
              tracked[i].pid = 0;
            }
    }
  return 0;
}

int
main (int argc, char **argv)
{
  size_t i;

  if (argc == 4 && strcmp (argv[1], "stop-and-look") == 0)
    return stop_and_look ((pid_t) atoi (argv[2]), argv[3]);
  if (argc != 1)
    {
      fputs ("usage: mdocker-probe [stop-and-look ANCESTOR_PID STOPFILE]\n", stderr);
      return 2;
    }
  for (i = 0; i < sizeof (probes) / sizeof (probes[0]); i++)
    run_probe (&probes[i]);
  return 0;
}
