/* The container's last line of defence after its namespaces: masked /proc and /sys
 * paths, rlimits, capabilities, no_new_privs and a seccomp filter. The defaults and
 * the parsing of their options are in parse.c. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "security.h"
#include "launcher.h" /* the mount API's definitions */
#include "parse.h"
#include "seccomp.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define CAP_BIT(c) (UINT64_C (1) << (c))

/* ---- masked and read-only paths ------------------------------------------------ */

/* runc's and Docker's defaults, the union of both lists. Masked: a file under
 * /dev/null, a directory under an empty read-only tmpfs. What each would give away:
 * kcore the host's memory image, keys the host's keyrings' descriptions (keys are not
 * namespaced), timer_list, sched_debug and latency_stats the host's tasks and
 * addresses (KASLR), interrupts a keystroke timing side channel, acpi, asound and scsi
 * host hardware with writable knobs, firmware raw ACPI tables and EFI variables,
 * powercap the RAPL energy counters (CVE-2020-8694, PLATYPUS), tpm the host's TPM. */
static const char *const masked_paths[] = {
  "/proc/acpi",
  "/proc/asound",
  "/proc/interrupts",
  "/proc/kcore",
  "/proc/keys",
  "/proc/latency_stats",
  "/proc/timer_list",
  "/proc/timer_stats",
  "/proc/sched_debug",
  "/proc/scsi",
  "/sys/firmware",
  "/sys/devices/virtual/powercap",
  "/sys/devices/virtual/tpm",
};

/* Host-wide kernel knobs that procfs shows in every PID namespace: /proc/sys (most
 * sysctls are not namespaced), sysrq-trigger (reboot the host), irq affinities, bus
 * and fs settings. */
static const char *const readonly_paths[] = {
  "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
};

static void
fd_path (char *buf, size_t size, int fd)
{
  snprintf (buf, size, "/proc/self/fd/%d", fd);
}

/* Opens path as O_PATH without following any symlink, in the path or at its end, and
 * checks that it lies on a filesystem of type fs_magic. Mounting onto the fd
 * (/proc/self/fd/N) instead of the path means a symlink swapped in later cannot
 * redirect the mount to the host (CVE-2021-30465, runc's mount race). Returns the fd,
 * -ENOENT when the path does not exist, or -1 with err filled. */
static int
open_verified (const char *path, long fs_magic, md_error_t *err)
{
  struct open_how how = {
    .flags = O_PATH | O_NOFOLLOW | O_CLOEXEC,
    .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
  };
  struct statfs sfs;
  struct stat st;
  int fd;

  fd = (int) syscall (SYS_openat2, AT_FDCWD, path, &how, sizeof (how));
  if (fd < 0 && errno == ENOSYS)
    fd = open (path, O_PATH | O_NOFOLLOW | O_CLOEXEC); /* before 5.6: the last component only */
  if (fd < 0)
    {
      if (errno == ENOENT)
        return -ENOENT;
      if (errno == ELOOP)
        return md_make_error (err, errno, "openat2", "refusing to mount over %s: a symlink is in its path", path);
      return md_make_error (err, errno, "openat2", "cannot open %s", path);
    }
  if (fstatfs (fd, &sfs) < 0 || fstat (fd, &st) < 0)
    {
      md_make_error (err, errno, "fstat", "cannot inspect %s", path);
      close (fd);
      return -1;
    }
  if (S_ISLNK (st.st_mode))
    {
      md_make_error_code (err, MD_E_RUNTIME, "refusing to mount over %s: it is a symlink", path);
      close (fd);
      return -1;
    }
  if ((long) sfs.f_type != fs_magic)
    {
      md_make_error_code (err, MD_E_RUNTIME, "refusing to mount over %s: not the kernel's file (filesystem 0x%lx)",
                          path, (unsigned long) sfs.f_type);
      close (fd);
      return -1;
    }
  return fd;
}

static long
expected_magic (const char *path)
{
  return strncmp (path, "/sys/", 5) == 0 ? (long) SYSFS_MAGIC : (long) PROC_SUPER_MAGIC;
}

/* The container's /dev/null, checked to be the real one (char 1:3) so that a "mask"
 * cannot be a bind mount of some other file the image planted there. */
static int
open_dev_null (md_error_t *err)
{
  struct stat st;
  int fd = open ("/dev/null", O_PATH | O_NOFOLLOW | O_CLOEXEC);

  if (fd < 0)
    return md_make_error (err, errno, "open", "cannot open the container's /dev/null to mask files with");
  if (fstat (fd, &st) < 0)
    {
      md_make_error (err, errno, "fstat", "cannot inspect /dev/null");
      close (fd);
      return -1;
    }
  if (!S_ISCHR (st.st_mode) || st.st_rdev != makedev (1, 3))
    {
      md_make_error_code (err, MD_E_RUNTIME, "/dev/null in the container is not the null device");
      close (fd);
      return -1;
    }
  return fd;
}

static int
mask_one (const char *path, int *null_fd, md_error_t *err)
{
  cleanup_close int fd = -1;
  char target[64], source[64];
  struct stat st;

  fd = open_verified (path, expected_magic (path), err);
  if (fd == -ENOENT)
    return 0;
  if (fd < 0)
    return -1;
  if (fstat (fd, &st) < 0)
    return md_make_error (err, errno, "fstat", "cannot inspect %s", path);
  fd_path (target, sizeof (target), fd);

  if (S_ISDIR (st.st_mode))
    {
      if (mount ("tmpfs", target, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0555") < 0)
        return md_make_error (err, errno, "mount", "cannot mask directory %s", path);
      return 0;
    }

  if (*null_fd < 0)
    {
      *null_fd = open_dev_null (err);
      if (*null_fd < 0)
        return -1;
    }
  fd_path (source, sizeof (source), *null_fd);
  if (mount (source, target, NULL, MS_BIND, NULL) < 0)
    return md_make_error (err, errno, "mount", "cannot mask %s with /dev/null", path);
  return 0;
}

/* Bind, then remount read-only, with the classic mount(2) (kernels before 5.12). The
 * remount is not recursive: a submount would stay writable, but a fresh procfs has
 * none under these paths. */
static int
readonly_one_legacy (const char *path, int fd, md_error_t *err)
{
  cleanup_close int top_fd = -1;
  char target[64];
  struct statvfs svfs;
  unsigned long flags = MS_BIND | MS_REMOUNT | MS_RDONLY;

  fd_path (target, sizeof (target), fd);
  if (mount (target, target, NULL, MS_BIND | MS_REC, NULL) < 0)
    return md_make_error (err, errno, "mount", "cannot bind %s onto itself", path);

  /* fd still names the lower mount: remounting through it would make all of /proc
   * read-only. Open the path again to reach the new bind mount on top. */
  top_fd = open_verified (path, expected_magic (path), err);
  if (top_fd < 0)
    return top_fd == -ENOENT ? md_make_error (err, ENOENT, "open", "%s vanished", path) : -1;
  if (fstatvfs (top_fd, &svfs) < 0)
    return md_make_error (err, errno, "fstatvfs", "cannot read the mount flags of %s", path);

  /* A bind remount replaces the mount's flags; the kernel refuses to clear flags it
   * locked (nosuid, nodev, noexec, atime ones), so carry them over. */
  if (svfs.f_flag & ST_NOSUID)
    flags |= MS_NOSUID;
  if (svfs.f_flag & ST_NODEV)
    flags |= MS_NODEV;
  if (svfs.f_flag & ST_NOEXEC)
    flags |= MS_NOEXEC;
  if (svfs.f_flag & ST_NOATIME)
    flags |= MS_NOATIME;
  if (svfs.f_flag & ST_NODIRATIME)
    flags |= MS_NODIRATIME;
  if (svfs.f_flag & ST_RELATIME)
    flags |= MS_RELATIME;

  fd_path (target, sizeof (target), top_fd);
  if (mount (NULL, target, NULL, flags, NULL) < 0)
    return md_make_error (err, errno, "mount", "cannot remount %s read-only", path);
  return 0;
}

static int
readonly_one (const char *path, md_error_t *err)
{
  struct md_mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY };
  cleanup_close int fd = -1;
  cleanup_close int tree_fd = -1;

  fd = open_verified (path, expected_magic (path), err);
  if (fd == -ENOENT)
    return 0;
  if (fd < 0)
    return -1;

  /* A detached copy of the subtree, made read-only with all its submounts
   * (AT_RECURSIVE, which a bind remount cannot do), then put over the original. Only
   * adding MOUNT_ATTR_RDONLY leaves nosuid/nodev/noexec as they were. */
  tree_fd = (int) syscall (SYS_open_tree, fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE);
  if (tree_fd < 0 && errno == ENOSYS)
    return readonly_one_legacy (path, fd, err);
  if (tree_fd < 0)
    return md_make_error (err, errno, "open_tree", "cannot copy the mount of %s", path);
  if (syscall (SYS_mount_setattr, tree_fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof (attr)) < 0)
    {
      if (errno == ENOSYS)
        return readonly_one_legacy (path, fd, err);
      return md_make_error (err, errno, "mount_setattr", "cannot make %s read-only", path);
    }
  if (syscall (SYS_move_mount, tree_fd, "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
    return md_make_error (err, errno, "move_mount", "cannot put the read-only %s in place", path);
  return 0;
}

int
md_security_mask_paths (const struct md_security *sec, md_error_t *err)
{
  cleanup_close int null_fd = -1;
  size_t i;

  if (!sec->mask_paths)
    return 0;
  for (i = 0; i < sizeof (masked_paths) / sizeof (masked_paths[0]); i++)
    if (mask_one (masked_paths[i], &null_fd, err) < 0)
      return -1;
  for (i = 0; i < sizeof (readonly_paths) / sizeof (readonly_paths[0]); i++)
    if (readonly_one (readonly_paths[i], err) < 0)
      return -1;
  return 0;
}

/* ---- capabilities and the rest -------------------------------------------------- */

static int
drop_bounding_set (uint64_t cap_keep, md_error_t *err)
{
  int cap;

  /* The kernel's last capability is in /proc/sys/kernel/cap_last_cap, but /proc here
   * is the container's (and may be masked); PR_CAPBSET_READ answers EINVAL past it. */
  for (cap = 0;; cap++)
    {
      int r = prctl (PR_CAPBSET_READ, (unsigned long) cap, 0, 0, 0);

      if (r < 0 && errno == EINVAL)
        return 0;
      if (r < 0)
        return md_make_error (err, errno, "prctl", "PR_CAPBSET_READ %d", cap);
      if (r == 0 || (cap < 64 && (cap_keep & CAP_BIT (cap))))
        continue;
      if (prctl (PR_CAPBSET_DROP, (unsigned long) cap, 0, 0, 0) < 0)
        return md_make_error (err, errno, "prctl", "cannot drop capability %s from the bounding set",
                              md_cap_name (cap) ? md_cap_name (cap) : "(unnamed)");
    }
}

/* The raw capset(2) with _LINUX_CAPABILITY_VERSION_3 (two 32-bit words per set): one
 * syscall does not justify libcap, a library and a package more in the image builder.
 * Permitted and effective become cap_keep (minus what we do not have: capset refuses to
 * add), inheritable is emptied so no capability survives an exec as a non-root user. */
static int
set_capabilities (uint64_t cap_keep, md_error_t *err)
{
  struct __user_cap_header_struct header = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
  struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
  uint64_t permitted;
  int i;

  memset (data, 0, sizeof (data));
  if (syscall (SYS_capget, &header, data) < 0)
    return md_make_error (err, errno, "capget", "cannot read the process's capabilities");
  permitted = ((uint64_t) data[1].permitted << 32) | data[0].permitted;
  permitted &= cap_keep;

  for (i = 0; i < _LINUX_CAPABILITY_U32S_3; i++)
    {
      data[i].permitted = (uint32_t) (permitted >> (32 * i));
      data[i].effective = data[i].permitted;
      data[i].inheritable = 0;
    }
  if (syscall (SYS_capset, &header, data) < 0)
    return md_make_error (err, errno, "capset", "cannot set the process's capabilities");
  return md_stay_undumpable (err);
}

int
md_stay_undumpable (md_error_t *err)
{
  if (prctl (PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
    return md_make_error (err, errno, "prctl", "PR_SET_DUMPABLE 0");
  if (prctl (PR_GET_DUMPABLE, 0, 0, 0, 0) != 0)
    return md_make_error_code (err, MD_E_RUNTIME, "the launcher is still dumpable after PR_SET_DUMPABLE 0");
  return 0;
}

int
md_security_apply (const struct md_security *sec, md_error_t *err)
{
  struct rlimit nofile = { .rlim_cur = sec->nofile, .rlim_max = sec->nofile };
  /* A core dump goes wherever the host's kernel.core_pattern says, and a "|helper"
   * pattern runs that helper as root on the host with the container's memory as input.
   * Hard limit too, so the container cannot raise it back. */
  struct rlimit core = { .rlim_cur = 0, .rlim_max = 0 };

  /* Raising the hard limit needs SYS_RESOURCE, which is dropped below: first. */
  if (sec->nofile > 0 && setrlimit (RLIMIT_NOFILE, &nofile) < 0)
    return md_make_error (err, errno, "setrlimit", "cannot set RLIMIT_NOFILE to %lu", sec->nofile);
  if (setrlimit (RLIMIT_CORE, &core) < 0)
    return md_make_error (err, errno, "setrlimit", "cannot set RLIMIT_CORE to 0");

  /* Dropping from the bounding set needs SETPCAP in the effective set: before capset. */
  if (drop_bounding_set (sec->cap_keep, err) < 0)
    return -1;
  /* Ambient capabilities (4.3) would survive execve of non-setuid programs. */
  if (prctl (PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
    return md_make_error (err, errno, "prctl", "PR_CAP_AMBIENT_CLEAR_ALL");

  /* no_new_privs: setuid binaries and file capabilities grant nothing after execve, so
   * a user the container switched to (su bob) cannot climb back with a setuid root
   * program. It is inherited by every descendant and cannot be unset. */
  if (sec->no_new_privs && prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    return md_make_error (err, errno, "prctl", "PR_SET_NO_NEW_PRIVS");

  /* Loading a filter needs no_new_privs or SYS_ADMIN in the effective set: we still
   * hold it here, so --no-new-privs 0 keeps working. capset below is on the allowlist. */
  if (sec->seccomp && md_seccomp_load (sec->cap_keep, err) < 0)
    return -1;

  return set_capabilities (sec->cap_keep, err);
}
