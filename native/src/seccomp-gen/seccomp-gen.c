/* mdocker-seccomp-gen OUTPUT.h: compiles the containers' seccomp policy to classic BPF
 * with libseccomp, once, at build time, and writes it as a C header that mdocker-init
 * loads with seccomp(2) itself (native/src/launcher/seccomp.c): libseccomp would resolve
 * some 400 names and generate the program in user space on every container start, and
 * its shared object cost the dynamic loader as much again (bench/PROFILE.md §4). Run by
 * node-gyp (native/binding.gyp); the header lives in the build directory only, made for
 * the architecture this builds for.
 *
 * The policy depends on one runtime input, the capabilities the container keeps: some
 * calls are allowed only with the capability that makes them useful (Docker's
 * "includes: caps"). 2^14 capability combinations are too many programs to build, so
 * the program is built once with a placeholder action, SECCOMP_RET_TRACE with a marker
 * number in its data, wherever the answer depends on capabilities. A marker names a
 * capability mask and the refusal (EPERM or ENOSYS); the header lists every return
 * instruction holding a marker, and the launcher rewrites each to ALLOW when the
 * container keeps any capability of its mask, else to the refusal. Only the returned
 * action changes, never a jump, so the patched program decides exactly as one built by
 * libseccomp with those actions. The policy has no SECCOMP_RET_TRACE of its own, so a
 * marker cannot be confused with a real action. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CAP_BIT(c) (UINT64_C (1) << (c))

/* The filter follows Docker's default profile: an allowlist. Three answers:
 *   - allowed: what a program in a busybox image calls, listed below by purpose;
 *   - EPERM: every dangerous call by name (below), as Docker answers, so a refused call
 *     reads "Operation not permitted", and some calls allowed only when the capability
 *     that makes them useful was added (Docker's "includes: caps"): --cap-add SYS_TIME
 *     lets `date -s` through, as it would in Docker;
 *   - ENOSYS for every other number, the default action (as Podman's profile does):
 *     to a libc a syscall newer than this list looks absent, and it falls back to an
 *     older one (glibc's clone3 -> clone, faccessat2 -> faccessat, fchmodat2 ->
 *     fchmodat), where EPERM would be a hard failure. A denylist would instead let
 *     every syscall a future kernel adds through unreviewed.
 * The filter holds only the native architecture: a call through another ABI (int 0x80
 * for i386, or x32's number | 0x40000000, which libseccomp checks for) kills the
 * process with SIGSYS, so no rule can be sidestepped by the same call's other number. */

/* Calls at or above 424 (pidfd_send_signal, Linux 5.1) share their number on every
 * architecture but alpha, mips and ia64: when the installed libseccomp does not know a
 * name yet, that number is used instead. */
#if defined(__x86_64__) || defined(__aarch64__) || (defined(__riscv) && __riscv_xlen == 64) || defined(__s390x__)      \
    || defined(__powerpc64__)
#define UNIFIED(nr) (nr)
#else
#define UNIFIED(nr) (-1)
#endif

struct syscall_name
{
  const char *name;
  int fallback_nr; /* used when libseccomp cannot resolve name; -1 for none */
};

/* The tables below are laid out by hand, grouped by purpose. */
/* clang-format off */
#define SC(name) { name, -1 }
#define SCN(name, nr) { name, UNIFIED (nr) }

static const struct syscall_name allowed_syscalls[] = {
  /* Processes and threads. clone, clone3 and personality have rules of their own. */
  SC ("arch_prctl"), SC ("brk"), SC ("capget"), SC ("capset"), SC ("execve"), SC ("execveat"), SC ("exit"),
  SC ("exit_group"), SC ("fork"), SC ("vfork"), SC ("getpid"), SC ("getppid"), SC ("gettid"), SC ("getpgid"),
  SC ("getpgrp"), SC ("getsid"), SC ("setpgid"), SC ("setsid"), SC ("get_robust_list"), SC ("set_robust_list"),
  SC ("set_tid_address"), SC ("get_thread_area"), SC ("set_thread_area"), SC ("rseq"), SC ("prctl"),
  SC ("seccomp"), SC ("wait4"), SC ("waitid"), SC ("kill"), SC ("tgkill"), SC ("tkill"), SCN ("pidfd_open", 434),
  SCN ("pidfd_send_signal", 424), SCN ("process_mrelease", 448), SC ("getrusage"), SC ("times"), SC ("getrlimit"),
  SC ("setrlimit"), SC ("prlimit64"), SC ("getpriority"), SC ("setpriority"), SC ("ioprio_get"), SC ("ioprio_set"),
  SC ("sched_yield"), SC ("sched_getaffinity"), SC ("sched_setaffinity"), SC ("sched_getattr"),
  SC ("sched_setattr"), SC ("sched_getparam"), SC ("sched_setparam"), SC ("sched_getscheduler"),
  SC ("sched_setscheduler"), SC ("sched_get_priority_max"), SC ("sched_get_priority_min"),
  SC ("sched_rr_get_interval"), SC ("getcpu"), SC ("membarrier"), SCN ("map_shadow_stack", 453), SC ("uname"),
  SC ("sysinfo"), SC ("umask"), SCN ("landlock_create_ruleset", 444), SCN ("landlock_add_rule", 445),
  SCN ("landlock_restrict_self", 446),
  /* Credentials. Changing them still needs SETUID/SETGID. */
  SC ("getuid"), SC ("geteuid"), SC ("getgid"), SC ("getegid"), SC ("getresuid"), SC ("getresgid"),
  SC ("getgroups"), SC ("setuid"), SC ("setgid"), SC ("setreuid"), SC ("setregid"), SC ("setresuid"),
  SC ("setresgid"), SC ("setfsuid"), SC ("setfsgid"), SC ("setgroups"),
  /* Signals. */
  SC ("rt_sigaction"), SC ("rt_sigprocmask"), SC ("rt_sigreturn"), SC ("rt_sigsuspend"), SC ("rt_sigpending"),
  SC ("rt_sigtimedwait"), SC ("rt_sigqueueinfo"), SC ("rt_tgsigqueueinfo"), SC ("sigaltstack"), SC ("pause"),
  SC ("alarm"), SC ("restart_syscall"), SC ("signalfd"), SC ("signalfd4"),
  /* Time, read only; setting the clock is SYS_TIME's (below). */
  SC ("clock_gettime"), SC ("clock_getres"), SC ("clock_nanosleep"), SC ("nanosleep"), SC ("gettimeofday"),
  SC ("time"), SC ("getitimer"), SC ("setitimer"), SC ("timer_create"), SC ("timer_settime"),
  SC ("timer_gettime"), SC ("timer_getoverrun"), SC ("timer_delete"), SC ("timerfd_create"),
  SC ("timerfd_settime"), SC ("timerfd_gettime"),
  /* Memory. */
  SC ("mmap"), SC ("munmap"), SC ("mprotect"), SC ("mremap"), SC ("madvise"), SC ("mincore"), SC ("msync"),
  SC ("mlock"), SC ("mlock2"), SC ("munlock"), SC ("mlockall"), SC ("munlockall"), SC ("remap_file_pages"),
  SC ("memfd_create"), SCN ("memfd_secret", 447), SC ("pkey_alloc"), SC ("pkey_free"), SC ("pkey_mprotect"),
  SCN ("mseal", 462), SCN ("cachestat", 451), SC ("futex"), SCN ("futex_waitv", 449), SCN ("futex_wake", 454),
  SCN ("futex_wait", 455), SCN ("futex_requeue", 456),
  /* Files. mknod is here for FIFOs: device nodes need MKNOD, which is dropped. */
  SC ("open"), SC ("openat"), SCN ("openat2", 437), SC ("creat"), SC ("close"), SCN ("close_range", 436),
  SC ("read"), SC ("write"), SC ("readv"), SC ("writev"), SC ("pread64"), SC ("pwrite64"), SC ("preadv"),
  SC ("pwritev"), SC ("preadv2"), SC ("pwritev2"), SC ("lseek"), SC ("dup"), SC ("dup2"), SC ("dup3"),
  SC ("fcntl"), SC ("flock"), SC ("ioctl"), SC ("pipe"), SC ("pipe2"), SC ("stat"), SC ("fstat"), SC ("lstat"),
  SC ("newfstatat"), SC ("statx"), SC ("statfs"), SC ("fstatfs"), SC ("access"), SC ("faccessat"),
  SCN ("faccessat2", 439), SC ("readlink"), SC ("readlinkat"), SC ("getdents"), SC ("getdents64"),
  SC ("getcwd"), SC ("chdir"), SC ("fchdir"), SC ("mkdir"), SC ("mkdirat"), SC ("rmdir"), SC ("rename"),
  SC ("renameat"), SC ("renameat2"), SC ("link"), SC ("linkat"), SC ("symlink"), SC ("symlinkat"),
  SC ("unlink"), SC ("unlinkat"), SC ("mknod"), SC ("mknodat"), SC ("chmod"), SC ("fchmod"), SC ("fchmodat"),
  SCN ("fchmodat2", 452), SC ("chown"), SC ("fchown"), SC ("lchown"), SC ("fchownat"), SC ("truncate"),
  SC ("ftruncate"), SC ("fallocate"), SC ("fadvise64"), SC ("readahead"), SC ("fsync"), SC ("fdatasync"),
  SC ("sync"), SC ("syncfs"), SC ("sync_file_range"), SC ("utime"), SC ("utimes"), SC ("utimensat"),
  SC ("futimesat"), SC ("sendfile"), SC ("splice"), SC ("tee"), SC ("vmsplice"), SC ("copy_file_range"),
  SC ("getxattr"), SC ("lgetxattr"), SC ("fgetxattr"), SC ("setxattr"), SC ("lsetxattr"), SC ("fsetxattr"),
  SC ("listxattr"), SC ("llistxattr"), SC ("flistxattr"), SC ("removexattr"), SC ("lremovexattr"),
  SC ("fremovexattr"), SCN ("setxattrat", 463), SCN ("getxattrat", 464), SCN ("listxattrat", 465),
  SCN ("removexattrat", 466), SCN ("file_getattr", 468), SCN ("file_setattr", 469), SC ("inotify_init"),
  SC ("inotify_init1"), SC ("inotify_add_watch"), SC ("inotify_rm_watch"), SC ("fanotify_mark"),
  /* Waiting for events. */
  SC ("select"), SC ("pselect6"), SC ("poll"), SC ("ppoll"), SC ("epoll_create"), SC ("epoll_create1"),
  SC ("epoll_ctl"), SC ("epoll_wait"), SC ("epoll_pwait"), SCN ("epoll_pwait2", 441), SC ("eventfd"),
  SC ("eventfd2"),
  /* POSIX AIO (not io_uring, refused below). */
  SC ("io_setup"), SC ("io_destroy"), SC ("io_submit"), SC ("io_cancel"), SC ("io_getevents"),
  SC ("io_pgetevents"),
  /* System V and POSIX IPC, private to the container's IPC namespace. */
  SC ("shmget"), SC ("shmat"), SC ("shmdt"), SC ("shmctl"), SC ("semget"), SC ("semop"), SC ("semtimedop"),
  SC ("semctl"), SC ("msgget"), SC ("msgsnd"), SC ("msgrcv"), SC ("msgctl"), SC ("mq_open"), SC ("mq_unlink"),
  SC ("mq_timedsend"), SC ("mq_timedreceive"), SC ("mq_notify"), SC ("mq_getsetattr"),
  /* Sockets, in the container's network namespace. socket and socketpair have rules
   * of their own. */
  SC ("bind"), SC ("connect"), SC ("listen"), SC ("accept"), SC ("accept4"),
  SC ("getsockname"), SC ("getpeername"), SC ("sendto"), SC ("recvfrom"), SC ("sendmsg"), SC ("recvmsg"),
  SC ("sendmmsg"), SC ("recvmmsg"), SC ("shutdown"), SC ("setsockopt"), SC ("getsockopt"),
};
/* clang-format on */

struct gated_syscall
{
  const char *name;
  int fallback_nr;
  uint64_t caps; /* allowed when any of these is kept, else EPERM */
};

/* clang-format off */
#define GATE(name, caps) { name, -1, caps }
#define GATEN(name, nr, caps) { name, UNIFIED (nr), caps }

#define C_ADMIN CAP_BIT (CAP_SYS_ADMIN)
#define C_PTRACE CAP_BIT (CAP_SYS_PTRACE)

/* Refused with EPERM unless the capability the kernel would check anyway is kept: the
 * filter then adds nothing to what that capability already allows (Docker's rule).
 * With the defaults every one of these is refused. Why each matters:
 *   mount family, pivot_root   remounting or stacking mounts over the masked paths,
 *                              rearranging the container's root;
 *   unshare, setns             new namespaces are new kernel attack surface (user
 *                              namespaces above all: most kernel exploits of the last
 *                              years start with unshare(CLONE_NEWUSER)); setns would
 *                              enter a namespace through an fd that leaked in;
 *   bpf, perf_event_open       large kernel attack surface, and host-wide visibility;
 *   syslog                     the host's kernel log (addresses, other containers);
 *   ptrace, process_vm_*,      another process's memory: the way to attack a runtime
 *   kcmp, pidfd_getfd,         process that joins the container (`exec`) before it is
 *   process_madvise            confined (CVE-2016-9962, CVE-2019-5736's family). Docker
 *                              allows ptrace on kernels >= 4.8; refused here because no
 *                              lesson needs it (busybox has no strace or gdb);
 *   userfaultfd                stalls kernel copies at will: the standard tool for
 *                              winning kernel races in exploits;
 *   open_by_handle_at,         open any inode of a filesystem by handle, bypassing the
 *   name_to_handle_at          mount tree: the "shocker" escape (2014);
 *   module calls, reboot,      the host's kernel and power (reboot in a PID namespace
 *   acct, clock setting,       only ends it, but needs no exception), process
 *   quotactl, lookup_dcookie,  accounting, the host's clock, host-wide quota and
 *   fanotify_init, sethostname profiling state;
 *   NUMA memory policy         moving memory between nodes affects other tenants;
 *   iopl, ioperm, vhangup      raw port I/O; hanging up terminals. */
static const struct gated_syscall gated_syscalls[] = {
  GATE ("mount", C_ADMIN), GATE ("umount2", C_ADMIN), GATE ("pivot_root", C_ADMIN),
  GATEN ("open_tree", 428, C_ADMIN), GATEN ("move_mount", 429, C_ADMIN), GATEN ("fsopen", 430, C_ADMIN),
  GATEN ("fsconfig", 431, C_ADMIN), GATEN ("fsmount", 432, C_ADMIN), GATEN ("fspick", 433, C_ADMIN),
  GATEN ("mount_setattr", 442, C_ADMIN), GATEN ("open_tree_attr", 467, C_ADMIN),
  GATE ("unshare", C_ADMIN), GATE ("setns", C_ADMIN),
  GATE ("sethostname", C_ADMIN), GATE ("setdomainname", C_ADMIN),
  GATE ("quotactl", C_ADMIN), GATEN ("quotactl_fd", 443, C_ADMIN), GATE ("lookup_dcookie", C_ADMIN),
  GATE ("fanotify_init", C_ADMIN),
  GATE ("bpf", C_ADMIN | CAP_BIT (CAP_BPF)),
  GATE ("perf_event_open", C_ADMIN | CAP_BIT (CAP_PERFMON)),
  GATE ("syslog", C_ADMIN | CAP_BIT (CAP_SYSLOG)),
  GATE ("ptrace", C_PTRACE), GATE ("process_vm_readv", C_PTRACE), GATE ("process_vm_writev", C_PTRACE),
  GATE ("kcmp", C_PTRACE), GATEN ("pidfd_getfd", 438, C_PTRACE), GATEN ("process_madvise", 440, C_PTRACE),
  GATE ("userfaultfd", C_PTRACE),
  GATE ("open_by_handle_at", CAP_BIT (CAP_DAC_READ_SEARCH)),
  GATE ("name_to_handle_at", CAP_BIT (CAP_DAC_READ_SEARCH)),
  GATE ("init_module", CAP_BIT (CAP_SYS_MODULE)), GATE ("finit_module", CAP_BIT (CAP_SYS_MODULE)),
  GATE ("delete_module", CAP_BIT (CAP_SYS_MODULE)),
  GATE ("reboot", CAP_BIT (CAP_SYS_BOOT)),
  GATE ("acct", CAP_BIT (CAP_SYS_PACCT)),
  GATE ("settimeofday", CAP_BIT (CAP_SYS_TIME)), GATE ("clock_settime", CAP_BIT (CAP_SYS_TIME)),
  GATE ("adjtimex", CAP_BIT (CAP_SYS_TIME)), GATE ("clock_adjtime", CAP_BIT (CAP_SYS_TIME)),
  GATE ("mbind", CAP_BIT (CAP_SYS_NICE)), GATE ("set_mempolicy", CAP_BIT (CAP_SYS_NICE)),
  GATE ("get_mempolicy", CAP_BIT (CAP_SYS_NICE)), GATE ("migrate_pages", CAP_BIT (CAP_SYS_NICE)),
  GATE ("move_pages", CAP_BIT (CAP_SYS_NICE)), GATEN ("set_mempolicy_home_node", 450, CAP_BIT (CAP_SYS_NICE)),
  GATE ("iopl", CAP_BIT (CAP_SYS_RAWIO)), GATE ("ioperm", CAP_BIT (CAP_SYS_RAWIO)),
  GATE ("vhangup", CAP_BIT (CAP_SYS_TTY_CONFIG)),
  GATE ("chroot", CAP_BIT (CAP_SYS_CHROOT)),
};
/* clang-format on */

/* Refused with EPERM whatever the capabilities: no container has a use for them.
 *   keyctl, add_key, request_key   the kernel keyrings are not namespaced: a container
 *                                  would see and fill the host's (and the keyring code
 *                                  has had its share of use-after-frees);
 *   kexec_load, kexec_file_load    boot another kernel;
 *   io_uring_*                     a second syscall interface that seccomp cannot see
 *                                  into, and the source of many 2021-2023 privilege
 *                                  escalations; Docker refuses it since 25.0;
 *   swapon, swapoff                host-wide swap;
 *   modify_ldt                     16-bit segments, only for DOSEMU and old Wine, with
 *                                  a history of kernel bugs (CVE-2015-5157, -8830);
 *   uselib, nfsservctl, _sysctl    obsolete interfaces, gone or unused. */
/* clang-format off */
static const struct syscall_name refused_syscalls[] = {
  SC ("keyctl"),         SC ("add_key"),    SC ("request_key"),       SC ("kexec_load"),
  SC ("kexec_file_load"), SCN ("io_uring_setup", 425), SCN ("io_uring_enter", 426), SCN ("io_uring_register", 427),
  SC ("swapon"),         SC ("swapoff"),    SC ("modify_ldt"),        SC ("uselib"),
  SC ("nfsservctl"),     SC ("_sysctl"),
};
/* clang-format on */

/* Every CLONE_NEW* flag clone() accepts (CLONE_NEWTIME exists only in clone3 and
 * unshare: in clone() its bit is part of the exit signal). */
static const uint64_t clone_new_flags[] = {
  0x00020000, /* CLONE_NEWNS */
  0x02000000, /* CLONE_NEWCGROUP */
  0x04000000, /* CLONE_NEWUTS */
  0x08000000, /* CLONE_NEWIPC */
  0x10000000, /* CLONE_NEWUSER */
  0x20000000, /* CLONE_NEWPID */
  0x40000000, /* CLONE_NEWNET */
};

/* personality(2) values Docker allows: PER_LINUX, PER_LINUX32, with UNAME26, and the
 * 0xffffffff query. The rest (ADDR_NO_RANDOMIZE above all: turning off ASLR to make an
 * exploit reliable) match no rule and get the default ENOSYS. */
static const uint64_t personality_allowed[] = { 0x0, 0x8, 0x20000, 0x20008, 0xffffffff };

#define MD_SECCOMP_DEFAULT SCMP_ACT_ERRNO (ENOSYS)

/* ---- markers: actions that depend on the kept capabilities ---------------------- */

struct marker
{
  uint64_t caps;    /* allowed when the container keeps any of these */
  uint32_t refused; /* the action otherwise */
};

/* At most 0x10000 markers fit in SECCOMP_RET_DATA; the policy needs a handful. */
#define MAX_MARKERS 32

struct markers
{
  struct marker list[MAX_MARKERS];
  size_t n;
};

/* The placeholder action for "ALLOW if any of caps is kept, else refused". */
static int
marker_action (struct markers *m, uint64_t caps, uint32_t refused, uint32_t *action)
{
  size_t i;

  for (i = 0; i < m->n; i++)
    if (m->list[i].caps == caps && m->list[i].refused == refused)
      break;
  if (i == m->n)
    {
      if (m->n == MAX_MARKERS)
        {
          fprintf (stderr, "mdocker-seccomp-gen: more than %d capability-dependent actions\n", MAX_MARKERS);
          return -1;
        }
      m->list[m->n].caps = caps;
      m->list[m->n].refused = refused;
      m->n++;
    }
  *action = SCMP_ACT_TRACE ((uint32_t) i);
  return 0;
}

/* ---- rules ---------------------------------------------------------------------- */

static int
resolve_syscall (const char *name, int fallback_nr)
{
  int nr = seccomp_syscall_resolve_name (name);

  if (nr == __NR_SCMP_ERROR)
    nr = fallback_nr;
  return nr; /* negative: no such call on this architecture */
}

static int
add_rule (scmp_filter_ctx ctx, uint32_t action, const char *name, int nr, unsigned int n_args,
          const struct scmp_arg_cmp *args)
{
  int r;

  /* libseccomp refuses a rule that repeats the default action (EACCES): the default
   * already says it. */
  if (nr < 0 || action == MD_SECCOMP_DEFAULT)
    return 0;
  r = seccomp_rule_add_array (ctx, action, nr, n_args, args);
  if (r < 0)
    {
      fprintf (stderr, "mdocker-seccomp-gen: cannot add the seccomp rule for %s: %s\n", name, strerror (-r));
      return -1;
    }
  return 0;
}

static int
add_named (scmp_filter_ctx ctx, uint32_t action, const char *name, int fallback_nr)
{
  return add_rule (ctx, action, name, resolve_syscall (name, fallback_nr), 0, NULL);
}

/* s390 swaps clone's first two arguments; every other architecture has flags first. */
#if defined(__s390__) || defined(__s390x__)
#define CLONE_FLAGS_ARG 1
#else
#define CLONE_FLAGS_ARG 0
#endif

/* Without SYS_ADMIN: clone with any CLONE_NEW* flag is refused (EPERM), clone without
 * them allowed; clone3 passes its flags in a struct in memory, which seccomp cannot
 * read, so it gets ENOSYS, not EPERM, for glibc (pthread_create, posix_spawn) to fall
 * back to clone. With SYS_ADMIN both are allowed whatever the flags. The refusals are
 * markers for SYS_ADMIN: kept, every clone rule answers ALLOW, which is the
 * unconditional allow of a filter built for SYS_ADMIN (the rules' conditions, "some
 * flag set" and "no flag set", cover every call). */
static int
add_clone_rules (scmp_filter_ctx ctx, struct markers *m)
{
  uint64_t all_new = 0;
  uint32_t refuse_new, clone3_action;
  size_t i;
  int nr = resolve_syscall ("clone", -1);

  if (marker_action (m, C_ADMIN, SCMP_ACT_ERRNO (EPERM), &refuse_new) < 0
      || marker_action (m, C_ADMIN, SCMP_ACT_ERRNO (ENOSYS), &clone3_action) < 0)
    return -1;

  for (i = 0; i < sizeof (clone_new_flags) / sizeof (clone_new_flags[0]); i++)
    {
      struct scmp_arg_cmp cmp = SCMP_CMP (CLONE_FLAGS_ARG, SCMP_CMP_MASKED_EQ, clone_new_flags[i], clone_new_flags[i]);

      all_new |= clone_new_flags[i];
      if (add_rule (ctx, refuse_new, "clone", nr, 1, &cmp) < 0)
        return -1;
    }
  {
    struct scmp_arg_cmp cmp = SCMP_CMP (CLONE_FLAGS_ARG, SCMP_CMP_MASKED_EQ, all_new, 0);

    if (add_rule (ctx, SCMP_ACT_ALLOW, "clone", nr, 1, &cmp) < 0)
      return -1;
  }
  return add_named (ctx, clone3_action, "clone3", 435);
}

/* Socket families: socket(2) and socketpair(2) create a socket of any of the 45
 * families the kernel knows, and for one not built in the kernel loads its module
 * ("net-pf-N") on behalf of whoever asks. Each family is a protocol stack of its own,
 * with its own history of bugs (AF_PACKET CVE-2016-8655 and CVE-2020-14386, AF_VSOCK
 * CVE-2021-26708, AF_RDS CVE-2010-3904, AF_TIPC CVE-2021-43267, ...), and AF_VSOCK talks
 * to the hypervisor, past every namespace. A container gets the four a program
 * on a network uses: UNIX, INET, INET6, and NETLINK (ip, ifconfig, getifaddrs); PACKET
 * only when it keeps NET_RAW, which the kernel asks for anyway. Every other family is
 * refused with EAFNOSUPPORT, the kernel's own answer for a family it lacks, so that a
 * program falls back as it would there (as systemd's RestrictAddressFamilies= does;
 * Docker's profile allows every family but AF_VSOCK, which it refuses with EPERM).
 * socketpair gets the same families: the kernel creates the socket, loading the
 * module, before it finds that the family has no pairs (EOPNOTSUPP, as before).
 *
 * The kernel reads the family as a 32-bit int, seccomp compares 64 bits: an allow rule
 * that looked at the low half alone would pass 0x100000011, which the kernel truncates
 * to 17. So the allow rules are exact, and the refusals cover everything else: 0..63
 * outside the list in aligned blocks, and 64 and above (upper-half junk included). */
#define MD_AF_UNIX 1
#define MD_AF_INET 2
#define MD_AF_INET6 10
#define MD_AF_NETLINK 16
#define MD_AF_PACKET 17
#define MD_AF_BLOCKS 64 /* past AF_MAX (46 in 6.18): a power of two */

static int
add_family_rules (scmp_filter_ctx ctx, const char *name, struct markers *m)
{
  static const uint64_t families[] = { MD_AF_UNIX, MD_AF_INET, MD_AF_INET6, MD_AF_NETLINK };
  const uint32_t refused = SCMP_ACT_ERRNO (EAFNOSUPPORT);
  int nr = resolve_syscall (name, -1);
  uint64_t allowed = 0, start;
  uint32_t packet_action;
  size_t i;

  if (marker_action (m, CAP_BIT (CAP_NET_RAW), refused, &packet_action) < 0)
    return -1;
  for (i = 0; i < sizeof (families) / sizeof (families[0]); i++)
    {
      struct scmp_arg_cmp cmp = SCMP_A0 (SCMP_CMP_EQ, families[i]);

      allowed |= UINT64_C (1) << families[i];
      if (add_rule (ctx, SCMP_ACT_ALLOW, name, nr, 1, &cmp) < 0)
        return -1;
    }
  {
    struct scmp_arg_cmp cmp = SCMP_A0 (SCMP_CMP_EQ, MD_AF_PACKET);

    allowed |= UINT64_C (1) << MD_AF_PACKET;
    if (add_rule (ctx, packet_action, name, nr, 1, &cmp) < 0)
      return -1;
  }

  /* The rest of 0..63 as the largest aligned blocks holding no listed family: each one
   * comparison (family & ~(size - 1)) == start. */
  for (start = 0; start < MD_AF_BLOCKS;)
    {
      uint64_t size = 1;
      struct scmp_arg_cmp cmp;

      if (allowed & (UINT64_C (1) << start))
        {
          start++;
          continue;
        }
      while (size * 2 < MD_AF_BLOCKS && start % (size * 2) == 0 && start + size * 2 <= MD_AF_BLOCKS
             && (allowed & (((UINT64_C (1) << (size * 2)) - 1) << start)) == 0)
        size *= 2;
      cmp = SCMP_A0 (SCMP_CMP_MASKED_EQ, ~(size - 1), start);
      if (add_rule (ctx, refused, name, nr, 1, &cmp) < 0)
        return -1;
      start += size;
    }
  {
    struct scmp_arg_cmp cmp = SCMP_A0 (SCMP_CMP_GE, MD_AF_BLOCKS);

    return add_rule (ctx, refused, name, nr, 1, &cmp);
  }
}

static int
add_socket_rules (scmp_filter_ctx ctx, struct markers *m)
{
  return add_family_rules (ctx, "socket", m) < 0 ? -1 : add_family_rules (ctx, "socketpair", m);
}

static int
add_personality_rules (scmp_filter_ctx ctx)
{
  int nr = resolve_syscall ("personality", -1);
  size_t i;

  for (i = 0; i < sizeof (personality_allowed) / sizeof (personality_allowed[0]); i++)
    {
      struct scmp_arg_cmp cmp = SCMP_A0 (SCMP_CMP_EQ, personality_allowed[i]);

      if (add_rule (ctx, SCMP_ACT_ALLOW, "personality", nr, 1, &cmp) < 0)
        return -1;
    }
  return 0;
}

static void
cleanup_seccomp_fn (scmp_filter_ctx *ctx)
{
  if (*ctx)
    seccomp_release (*ctx);
}
#define cleanup_seccomp __attribute__ ((cleanup (cleanup_seccomp_fn)))

static void
cleanup_fclose_fn (FILE **f)
{
  if (*f)
    fclose (*f);
}
#define cleanup_fclose __attribute__ ((cleanup (cleanup_fclose_fn)))

static int
build_filter (scmp_filter_ctx ctx, struct markers *m)
{
  size_t i;
  int r;

  /* Another architecture's calls (int 0x80 for i386, x32's number | 0x40000000) kill
   * the process: see the policy's comment. (no_new_privs, libseccomp's other default,
   * only matters to seccomp_load: the launcher sets it as --no-new-privs says.) */
  r = seccomp_attr_set (ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
  if (r < 0)
    {
      fprintf (stderr, "mdocker-seccomp-gen: cannot configure the seccomp filter: %s\n", strerror (-r));
      return -1;
    }

  for (i = 0; i < sizeof (allowed_syscalls) / sizeof (allowed_syscalls[0]); i++)
    if (add_named (ctx, SCMP_ACT_ALLOW, allowed_syscalls[i].name, allowed_syscalls[i].fallback_nr) < 0)
      return -1;
  for (i = 0; i < sizeof (gated_syscalls) / sizeof (gated_syscalls[0]); i++)
    {
      const struct gated_syscall *g = &gated_syscalls[i];
      uint32_t action;

      if (marker_action (m, g->caps, SCMP_ACT_ERRNO (EPERM), &action) < 0
          || add_named (ctx, action, g->name, g->fallback_nr) < 0)
        return -1;
    }
  for (i = 0; i < sizeof (refused_syscalls) / sizeof (refused_syscalls[0]); i++)
    if (add_named (ctx, SCMP_ACT_ERRNO (EPERM), refused_syscalls[i].name, refused_syscalls[i].fallback_nr) < 0)
      return -1;
  if (add_clone_rules (ctx, m) < 0 || add_socket_rules (ctx, m) < 0 || add_personality_rules (ctx) < 0)
    return -1;
  return 0;
}

/* ---- the header ----------------------------------------------------------------- */

/* The program as libseccomp would load it: seccomp_export_bpf runs the same generator
 * as seccomp_load. Returns the number of instructions, or -1. */
static long
export_program (scmp_filter_ctx ctx, struct sock_filter *prog, size_t max)
{
  cleanup_fclose FILE *f = tmpfile ();
  size_t n;
  int r;

  if (f == NULL)
    {
      perror ("mdocker-seccomp-gen: tmpfile");
      return -1;
    }
  r = seccomp_export_bpf (ctx, fileno (f));
  if (r < 0)
    {
      fprintf (stderr, "mdocker-seccomp-gen: seccomp_export_bpf: %s\n", strerror (-r));
      return -1;
    }
  rewind (f);
  n = fread (prog, sizeof (*prog), max, f);
  if (n == 0 || n == max || ferror (f))
    {
      fprintf (stderr, "mdocker-seccomp-gen: unexpected program size (%zu instructions)\n", n);
      return -1;
    }
  return (long) n;
}

static int
write_header (FILE *out, const struct sock_filter *prog, size_t len, const struct markers *m)
{
  const struct scmp_version *v = seccomp_version ();
  size_t i, n_gates = 0;

  fprintf (out,
           "/* Generated by native/src/seccomp-gen/seccomp-gen.c with libseccomp %u.%u.%u for\n"
           " * the build's architecture: do not edit, do not commit. */\n"
           "#ifndef MD_SECCOMP_FILTER_H\n#define MD_SECCOMP_FILTER_H\n\n"
           "#include <linux/filter.h>\n#include <stdint.h>\n\n"
           "/* A return instruction whose action depends on the kept capabilities. */\n"
           "struct md_seccomp_gate\n{\n  uint16_t insn;\n  uint64_t caps;\n  uint32_t refused;\n};\n\n"
           "#define MD_SECCOMP_FILTER_LEN %zu\n\n"
           "static const struct sock_filter md_seccomp_filter[MD_SECCOMP_FILTER_LEN] = {\n",
           v->major, v->minor, v->micro, len);
  for (i = 0; i < len; i++)
    fprintf (out, "  { 0x%04x, %u, %u, 0x%08x },\n", prog[i].code, prog[i].jt, prog[i].jf, prog[i].k);
  fprintf (out, "};\n\nstatic const struct md_seccomp_gate md_seccomp_gates[] = {\n");
  for (i = 0; i < len; i++)
    {
      uint32_t data = prog[i].k & SECCOMP_RET_DATA;

      if (prog[i].code == (BPF_RET | BPF_A))
        {
          fprintf (stderr, "mdocker-seccomp-gen: instruction %zu returns A: cannot tell its action\n", i);
          return -1;
        }
      if (prog[i].code != (BPF_RET | BPF_K) || (prog[i].k & SECCOMP_RET_ACTION_FULL) != SECCOMP_RET_TRACE)
        continue;
      if (data >= m->n)
        {
          fprintf (stderr, "mdocker-seccomp-gen: instruction %zu returns an unknown marker %u\n", i, data);
          return -1;
        }
      fprintf (out, "  { %zu, 0x%016llx, 0x%08x },\n", i, (unsigned long long) m->list[data].caps,
               m->list[data].refused);
      n_gates++;
    }
  if (n_gates == 0)
    {
      fprintf (stderr, "mdocker-seccomp-gen: no capability-dependent instruction: the markers were lost\n");
      return -1;
    }
  fprintf (out, "};\n\n#endif\n");
  return 0;
}

int
main (int argc, char **argv)
{
  cleanup_seccomp scmp_filter_ctx ctx = NULL;
  struct markers m = { .n = 0 };
  /* One more than the kernel takes, to tell a too-long program from a full read. */
  static struct sock_filter prog[BPF_MAXINSNS + 1];
  char tmp_path[4096];
  FILE *out;
  long len;

  if (argc != 2)
    {
      fprintf (stderr, "usage: mdocker-seccomp-gen OUTPUT.h\n");
      return 2;
    }
  ctx = seccomp_init (MD_SECCOMP_DEFAULT);
  if (ctx == NULL)
    {
      fprintf (stderr, "mdocker-seccomp-gen: seccomp_init failed\n");
      return 1;
    }
  if (build_filter (ctx, &m) < 0)
    return 1;
  len = export_program (ctx, prog, sizeof (prog) / sizeof (prog[0]));
  if (len < 0)
    return 1;

  /* Written aside and renamed, so that a failed run leaves no half header that make
   * would take as up to date. */
  if ((size_t) snprintf (tmp_path, sizeof (tmp_path), "%s.tmp", argv[1]) >= sizeof (tmp_path))
    {
      fprintf (stderr, "mdocker-seccomp-gen: output path too long\n");
      return 1;
    }
  out = fopen (tmp_path, "w");
  if (out == NULL)
    {
      perror (tmp_path);
      return 1;
    }
  if (write_header (out, prog, (size_t) len, &m) < 0)
    {
      fclose (out);
      unlink (tmp_path);
      return 1;
    }
  if (fclose (out) != 0 || rename (tmp_path, argv[1]) < 0)
    {
      perror (argv[1]);
      unlink (tmp_path);
      return 1;
    }
  return 0;
}
