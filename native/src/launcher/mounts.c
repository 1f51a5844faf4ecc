/* The container's filesystem, built in the child inside its new mount namespace: the
 * root (overlay of the read-only image and a tmpfs layer, or a plain directory), /proc,
 * /sys, the container's cgroups, /dev, /tmp, /etc/hostname and /etc/hosts; then
 * pivot_root. Nothing here is visible on the host: every mount lives and dies with the
 * namespace. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "launcher.h"

/* Resolves rel strictly below dirfd, refusing every symlink: a rootfs whose /proc or
 * /dev is a symlink could otherwise redirect our mounts onto the host
 * (CVE-2019-16884), and mounting onto a path re-resolved later races with a container
 * that swaps it (CVE-2021-30465). We mount onto the verified fd instead. */
static int
open_beneath (int dirfd, const char *rel, int flags, mode_t mode)
{
  struct open_how how;
  memset (&how, 0, sizeof (how));
  how.flags = (unsigned long long) (flags | O_CLOEXEC);
  how.mode = (flags & O_CREAT) ? mode : 0;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  return (int) syscall (SYS_openat2, dirfd, rel, &how, sizeof (how));
}

static int
mount_on_fd (const char *source, int target_fd, const char *fstype, unsigned long flags, const char *data)
{
  char target[64];
  snprintf (target, sizeof (target), "/proc/self/fd/%d", target_fd);
  return mount (source, target, fstype, flags, data);
}

/* Makes rootfd/rel a directory that is really a directory (created when missing), and
 * mounts onto it. */
static int
mount_dir_beneath (int rootfd, const char *rel, const char *source, const char *fstype, unsigned long flags,
                   const char *data, md_error_t *err)
{
  cleanup_close int fd = -1;
  struct stat st;

  if (mkdirat (rootfd, rel, 0755) < 0 && errno != EEXIST)
    return md_make_error (err, errno, "mkdir", "cannot create /%s in the container", rel);
  fd = open_beneath (rootfd, rel, O_PATH | O_DIRECTORY | O_NOFOLLOW, 0);
  if (fd < 0)
    return md_make_error (err, errno, "openat2", "/%s in the container must be a plain directory", rel);
  if (fstat (fd, &st) < 0 || !S_ISDIR (st.st_mode))
    return md_make_error_code (err, "INVALID_ARGUMENT", "/%s in the container must be a plain directory", rel);
  if (mount_on_fd (source, fd, fstype, flags, data) < 0)
    return md_make_error (err, errno, "mount", "cannot mount %s on /%s", fstype ? fstype : source, rel);
  return 0;
}

/* Bind-mounts a host file (a device node, a file we wrote) onto rootfd/rel, creating an
 * empty regular file to mount on. Binding the host's device nodes works the same with
 * and without a user namespace, where mknod is not allowed. */
static int
bind_file_beneath (int rootfd, const char *rel, const char *source, unsigned long extra_flags, md_error_t *err)
{
  cleanup_close int fd = open_beneath (rootfd, rel, O_CREAT | O_WRONLY | O_NOFOLLOW, 0644);
  if (fd < 0)
    {
      fd = open_beneath (rootfd, rel, O_PATH | O_NOFOLLOW, 0);
      if (fd < 0)
        return md_make_error (err, errno, "openat2", "cannot create /%s in the container", rel);
    }
  if (mount_on_fd (source, fd, NULL, MS_BIND, NULL) < 0)
    return md_make_error (err, errno, "mount", "cannot bind %s on /%s", source, rel);
  if (extra_flags && mount_on_fd (NULL, fd, NULL, MS_BIND | MS_REMOUNT | extra_flags, NULL) < 0)
    return md_make_error (err, errno, "mount", "cannot remount /%s", rel);
  return 0;
}

static int
symlink_beneath (int rootfd, const char *target, const char *rel, md_error_t *err)
{
  if (symlinkat (target, rootfd, rel) < 0 && errno != EEXIST)
    return md_make_error (err, errno, "symlink", "cannot create /%s", rel);
  return 0;
}

static int
setup_dev (int rootfd, const struct md_opts *opts, md_error_t *err)
{
  static const char *const devices[] = { "null", "zero", "full", "random", "urandom", "tty" };
  char rel[64], src[64];
  size_t i;

  /* nodev: no device node made on this tmpfs would work; the allowed ones are bind
   * mounts of the host's, with their own flags. */
  if (mount_dir_beneath (rootfd, "dev", "tmpfs", "tmpfs", MS_NOSUID | MS_NOEXEC | MS_NODEV | MS_STRICTATIME,
                         "mode=755,size=65536k", err)
      < 0)
    return -1;
  for (i = 0; i < sizeof (devices) / sizeof (devices[0]); i++)
    {
      snprintf (rel, sizeof (rel), "dev/%s", devices[i]);
      snprintf (src, sizeof (src), "/dev/%s", devices[i]);
      if (bind_file_beneath (rootfd, rel, src, 0, err) < 0)
        return -1;
    }
  /* A devpts instance of the container's own: its ptys are invisible to the host's
   * and other containers'. */
  if (mount_dir_beneath (rootfd, "dev/pts", "devpts", "devpts", MS_NOSUID | MS_NOEXEC,
                         "newinstance,ptmxmode=0666,mode=0620", err)
      < 0)
    return -1;
  if (mount_dir_beneath (rootfd, "dev/shm", "shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                         "mode=1777,size=65536k", err)
      < 0)
    return -1;
  if (mount_dir_beneath (rootfd, "dev/mqueue", "mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, err) < 0)
    return -1;
  if (symlink_beneath (rootfd, "pts/ptmx", "dev/ptmx", err) < 0 || symlink_beneath (rootfd, "/proc/self/fd", "dev/fd", err) < 0
      || symlink_beneath (rootfd, "/proc/self/fd/0", "dev/stdin", err) < 0
      || symlink_beneath (rootfd, "/proc/self/fd/1", "dev/stdout", err) < 0
      || symlink_beneath (rootfd, "/proc/self/fd/2", "dev/stderr", err) < 0)
    return -1;
  /* /dev/console is the container's terminal, as in runc. Bound by its path: the fd's
   * mount belongs to the host's mount namespace, and a bind mount from another
   * namespace is refused. */
  if (opts->tty)
    {
      char console[PATH_MAX];
      if (ttyname_r (STDIN_FILENO, console, sizeof (console)) != 0)
        return md_make_error (err, errno, "ttyname", "cannot find the terminal's path");
      if (bind_file_beneath (rootfd, "dev/console", console, 0, err) < 0)
        return -1;
    }
  return 0;
}

struct cgroup_mount
{
  char controllers[64]; /* "" for the unified hierarchy */
};

/* Which hierarchies the container joined, from /proc/self/cgroup read before the
 * cgroup namespace exists: a hierarchy whose path is the tail of a --cgroup directory. */
static size_t
joined_hierarchies (const struct md_opts *opts, struct cgroup_mount *out, size_t max)
{
  cleanup_fclose FILE *f = fopen ("/proc/self/cgroup", "re");
  char line[PATH_MAX + 128];
  size_t n = 0, i;

  if (f == NULL)
    return 0;
  while (n < max && fgets (line, sizeof (line), f))
    {
      char *ctrl, *path;
      size_t plen;

      line[strcspn (line, "\n")] = '\0';
      ctrl = strchr (line, ':');
      if (ctrl == NULL)
        continue;
      path = strchr (++ctrl, ':');
      if (path == NULL)
        continue;
      *path++ = '\0';
      plen = strlen (path);
      if (plen <= 1 || strncmp (ctrl, "name=", 5) == 0)
        continue;
      for (i = 0; i < opts->n_cgroups; i++)
        {
          size_t dlen = strlen (opts->cgroups[i]);
          if (dlen > plen && strcmp (opts->cgroups[i] + dlen - plen, path) == 0)
            {
              snprintf (out[n++].controllers, sizeof (out[0].controllers), "%s", ctrl);
              break;
            }
        }
    }
  return n;
}

/* The container sees its own cgroup as the root of /sys/fs/cgroup (the cgroup
 * namespace's doing), read-only: the seed's demo reads pids.current there. */
static int
mount_cgroups (int rootfd, const struct cgroup_mount *mounts, size_t n, md_error_t *err)
{
  char rel[PATH_MAX];
  size_t i;
  const unsigned long ro = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;

  if (n == 0)
    return 0;
  if (n == 1 && mounts[0].controllers[0] == '\0')
    return mount_dir_beneath (rootfd, "sys/fs/cgroup", "cgroup2", "cgroup2", ro, NULL, err);

  if (mount_dir_beneath (rootfd, "sys/fs/cgroup", "tmpfs", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755,size=64k",
                         err)
      < 0)
    return -1;
  for (i = 0; i < n; i++)
    {
      if (mounts[i].controllers[0] == '\0')
        snprintf (rel, sizeof (rel), "sys/fs/cgroup/unified");
      else
        snprintf (rel, sizeof (rel), "sys/fs/cgroup/%s", mounts[i].controllers);
      if (mount_dir_beneath (rootfd, rel, "cgroup", mounts[i].controllers[0] ? "cgroup" : "cgroup2", ro,
                             mounts[i].controllers[0] ? mounts[i].controllers : NULL, err)
          < 0)
        return -1;
    }
  {
    cleanup_close int fd = open_beneath (rootfd, "sys/fs/cgroup", O_PATH | O_DIRECTORY, 0);
    if (fd < 0 || mount_on_fd (NULL, fd, NULL, MS_REMOUNT | MS_BIND | ro, NULL) < 0)
      return md_make_error (err, errno, "mount", "cannot make /sys/fs/cgroup read-only");
  }
  return 0;
}

static int
write_layer_file (const char *layer_dir, const char *name, const char *content, char *path_out, size_t path_size,
                  md_error_t *err)
{
  cleanup_close int fd = -1;
  snprintf (path_out, path_size, "%s/%s", layer_dir, name);
  fd = open (path_out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0 || md_write_all (fd, content, strlen (content)) < 0)
    return md_make_error (err, errno, "write", "cannot write %s", path_out);
  return 0;
}

static int
setup_etc (int rootfd, const struct md_opts *opts, md_error_t *err)
{
  char content[1024], path[PATH_MAX];
  const char *name = opts->hostname ? opts->hostname : "localhost";

  if (mkdirat (rootfd, "etc", 0755) < 0 && errno != EEXIST)
    return md_make_error (err, errno, "mkdir", "cannot create /etc in the container");
  snprintf (content, sizeof (content), "%s\n", name);
  if (write_layer_file (opts->layer_dir, "hostname", content, path, sizeof (path), err) < 0
      || bind_file_beneath (rootfd, "etc/hostname", path, 0, err) < 0)
    return -1;
  snprintf (content, sizeof (content),
            "127.0.0.1\tlocalhost %s\n::1\tlocalhost ip6-localhost ip6-loopback\n", name);
  if (write_layer_file (opts->layer_dir, "hosts", content, path, sizeof (path), err) < 0
      || bind_file_beneath (rootfd, "etc/hosts", path, 0, err) < 0)
    return -1;
  return 0;
}

static int
overlay_path_ok (const char *p)
{
  /* overlayfs takes its directories in a comma- and colon-separated option string. */
  return strpbrk (p, ",:\\") == NULL;
}

int
md_setup_rootfs (const struct md_opts *opts, md_error_t *err)
{
  char root[PATH_MAX], data[PATH_MAX * 3 + 64];
  struct cgroup_mount cgroup_mounts[MD_MAX_CGROUPS];
  size_t n_cgroup_mounts;
  cleanup_close int rootfd = -1;

  /* Read before the cgroup namespace hides the paths. */
  n_cgroup_mounts = joined_hierarchies (opts, cgroup_mounts, MD_MAX_CGROUPS);
  if (unshare (CLONE_NEWCGROUP) < 0)
    return md_make_error (err, errno, "unshare", "cannot create the cgroup namespace");

  /* Nothing we mount may propagate back to the host's mount namespace. */
  if (mount (NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
    return md_make_error (err, errno, "mount", "cannot make / private");

  snprintf (data, sizeof (data), "size=%llu,mode=0755", opts->image ? opts->layer_size_bytes : 1024ULL * 1024);
  if (mount ("mdocker-layer", opts->layer_dir, "tmpfs", MS_NOSUID | MS_NODEV, data) < 0)
    return md_make_error (err, errno, "mount", "cannot mount the layer tmpfs on %s", opts->layer_dir);

  if (opts->image)
    {
      if (!overlay_path_ok (opts->image) || !overlay_path_ok (opts->layer_dir))
        return md_make_error_code (err, "INVALID_ARGUMENT", "image and layer paths may not contain , : or \\");
      snprintf (root, sizeof (root), "%s/upper", opts->layer_dir);
      if (mkdir (root, 0755) < 0)
        return md_make_error (err, errno, "mkdir", "%s", root);
      snprintf (root, sizeof (root), "%s/work", opts->layer_dir);
      if (mkdir (root, 0700) < 0)
        return md_make_error (err, errno, "mkdir", "%s", root);
      snprintf (root, sizeof (root), "%s/root", opts->layer_dir);
      if (mkdir (root, 0755) < 0)
        return md_make_error (err, errno, "mkdir", "%s", root);
      snprintf (data, sizeof (data), "lowerdir=%s,upperdir=%s/upper,workdir=%s/work", opts->image, opts->layer_dir,
                opts->layer_dir);
      if (mount ("overlay", root, "overlay", 0, data) < 0)
        {
          if (errno == ENODEV)
            return md_make_error_code (err, "UNSUPPORTED", "this kernel has no overlayfs (modprobe overlay)");
          return md_make_error (err, errno, "mount", "cannot mount the overlay of image %s", opts->image);
        }
    }
  else
    {
      if (realpath (opts->rootfs, root) == NULL)
        return md_make_error (err, errno, "realpath", "rootfs %s", opts->rootfs);
      /* pivot_root wants the new root to be a mount point. */
      if (mount (root, root, NULL, MS_BIND | MS_REC, NULL) < 0)
        return md_make_error (err, errno, "mount", "cannot bind the rootfs %s", root);
    }

  rootfd = open (root, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0)
    return md_make_error (err, errno, "open", "%s", root);

  /* A fresh /proc: the new PID namespace's view, mounted from inside it. */
  if (mount_dir_beneath (rootfd, "proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, err) < 0)
    return -1;
  if (mount_dir_beneath (rootfd, "sys", "sysfs", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, err) < 0)
    return -1;
  if (mount_cgroups (rootfd, cgroup_mounts, n_cgroup_mounts, err) < 0)
    return -1;
  if (setup_dev (rootfd, opts, err) < 0)
    return -1;
  if (mount_dir_beneath (rootfd, "tmp", "tmpfs", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777", err) < 0)
    return -1;
  if (setup_etc (rootfd, opts, err) < 0)
    return -1;

  /* pivot_root(".", ".") stacks the old root under the new one; detaching it leaves
   * no path back to the host (chroot would). */
  if (fchdir (rootfd) < 0)
    return md_make_error (err, errno, "fchdir", "%s", root);
  if (syscall (SYS_pivot_root, ".", ".") < 0)
    return md_make_error (err, errno, "pivot_root", "cannot pivot into %s", root);
  if (umount2 (".", MNT_DETACH) < 0)
    return md_make_error (err, errno, "umount2", "cannot detach the old root");
  if (chdir ("/") < 0)
    return md_make_error (err, errno, "chdir", "/");
  return 0;
}

int
md_loopback_up (md_error_t *err)
{
  struct ifreq ifr;
  cleanup_close int fd = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

  if (fd < 0)
    return md_make_error (err, errno, "socket", "cannot configure the loopback interface");
  memset (&ifr, 0, sizeof (ifr));
  snprintf (ifr.ifr_name, sizeof (ifr.ifr_name), "lo");
  if (ioctl (fd, SIOCGIFFLAGS, &ifr) < 0)
    return md_make_error (err, errno, "ioctl", "SIOCGIFFLAGS lo");
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (ioctl (fd, SIOCSIFFLAGS, &ifr) < 0)
    return md_make_error (err, errno, "ioctl", "SIOCSIFFLAGS lo");
  return 0;
}
