/* The container's filesystem, built in the child inside its new mount namespace: the
 * root (overlay of the read-only image and a tmpfs layer, or a plain directory), /proc,
 * /sys, the container's cgroups, /dev, /tmp, /etc/hostname and /etc/hosts; then
 * pivot_root. Nothing here is visible on the host: every mount lives and dies with the
 * namespace. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
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
    return md_make_error_code (err, MD_E_INVALID_ARGUMENT, "/%s in the container must be a plain directory", rel);
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
  if (mount_dir_beneath (rootfd, "dev/shm", "shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k",
                         err)
      < 0)
    return -1;
  if (mount_dir_beneath (rootfd, "dev/mqueue", "mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, err) < 0)
    return -1;
  if (symlink_beneath (rootfd, "pts/ptmx", "dev/ptmx", err) < 0
      || symlink_beneath (rootfd, "/proc/self/fd", "dev/fd", err) < 0
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

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void
unescape_mountinfo (char *s)
{
  char *out = s;
  for (; *s; s++)
    if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7')
      {
        *out++ = (char) (((s[1] - '0') << 6) | ((s[2] - '0') << 3) | (s[3] - '0'));
        s += 3;
      }
    else
      *out++ = *s;
  *out = '\0';
}

struct cgroup_best
{
  size_t len[MD_MAX_CGROUPS]; /* the longest matching mount point so far, per directory */
  int v2[MD_MAX_CGROUPS];
  char name[MD_MAX_CGROUPS][64];
};

/* One line of mountinfo: when it is a cgroup mount, the directories of opts it holds. */
static void
match_cgroup_mount (char *line, const struct md_opts *opts, struct cgroup_best *best)
{
  char *fields[5], *save = NULL, *dash, *fstype, *slash;
  size_t k, i, mlen;

  dash = strstr (line, " - ");
  if (dash == NULL)
    return;
  *dash = '\0';
  fstype = strtok_r (dash + 3, " ", &save);
  if (fstype == NULL || (strcmp (fstype, "cgroup") != 0 && strcmp (fstype, "cgroup2") != 0))
    return;
  save = NULL;
  for (k = 0; k < 5; k++)
    if ((fields[k] = strtok_r (k == 0 ? line : NULL, " ", &save)) == NULL)
      return;
  unescape_mountinfo (fields[4]); /* the mount point */
  mlen = strlen (fields[4]);
  slash = strrchr (fields[4], '/');
  for (i = 0; i < opts->n_cgroups && i < MD_MAX_CGROUPS; i++)
    {
      const char *dir = opts->cgroups[i];
      if (strncmp (dir, fields[4], mlen) != 0 || (dir[mlen] != '/' && dir[mlen] != '\0') || mlen < best->len[i])
        continue;
      best->len[i] = mlen;
      best->v2[i] = strcmp (fstype, "cgroup2") == 0;
      snprintf (best->name[i], sizeof (best->name[i]), "%s", slash ? slash + 1 : fields[4]);
    }
}

/* Read with read(2) into the stack, not stdio: after the clone every page first written
 * is a copy-on-write fault, and stdio's FILE, buffer and list would be three or four more
 * (0.1 ms or so each on the bench's host). A line longer than the buffer (an overlay with
 * many layers, never a cgroup mount) is skipped. */
size_t
md_cgroup_mounts_of (const struct md_opts *opts, struct md_cgroup_mount *out, size_t max)
{
  cleanup_close int fd = open ("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
  struct cgroup_best best;
  char buf[4096];
  size_t len = 0, n = 0, i;
  int skipping = 0;

  if (fd < 0)
    return 0;
  memset (&best, 0, sizeof (best));
  for (;;)
    {
      char *line = buf, *nl;
      ssize_t got = read (fd, buf + len, sizeof (buf) - 1 - len);

      if (got < 0 && errno == EINTR)
        continue;
      if (got <= 0)
        break;
      len += (size_t) got;
      while ((nl = memchr (line, '\n', len - (size_t) (line - buf))) != NULL)
        {
          *nl = '\0';
          if (!skipping)
            match_cgroup_mount (line, opts, &best);
          skipping = 0;
          line = nl + 1;
        }
      len -= (size_t) (line - buf);
      memmove (buf, line, len);
      if (len == sizeof (buf) - 1)
        {
          skipping = 1;
          len = 0;
        }
    }
  for (i = 0; i < opts->n_cgroups && i < MD_MAX_CGROUPS && n < max; i++)
    {
      if (best.len[i] == 0)
        continue;
      snprintf (out[n].name, sizeof (out[n].name), "%s", best.v2[i] ? "" : best.name[i]);
      out[n++].dir = i;
    }
  return n;
}

/* Binds dir (a cgroup directory of the container's) read-only on rootfd/rel. A detached
 * copy made read-only before it is attached: there is no moment where it is writable in
 * the container. */
static int
bind_readonly_beneath (int rootfd, const char *rel, const char *dir, md_error_t *err)
{
  struct md_mount_attr attr
      = { .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC };
  cleanup_close int target = -1;
  cleanup_close int tree = -1;

  if (mkdirat (rootfd, rel, 0755) < 0 && errno != EEXIST)
    return md_make_error (err, errno, "mkdir", "cannot create /%s in the container", rel);
  target = open_beneath (rootfd, rel, O_PATH | O_DIRECTORY | O_NOFOLLOW, 0);
  if (target < 0)
    return md_make_error (err, errno, "openat2", "/%s in the container must be a plain directory", rel);
  tree = (int) syscall (SYS_open_tree, AT_FDCWD, dir, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  if (tree < 0)
    return md_make_error (err, errno, "open_tree", "cannot bind %s", dir);
  if (syscall (SYS_mount_setattr, tree, "", AT_EMPTY_PATH, &attr, sizeof (attr)) < 0)
    return md_make_error (err, errno, "mount_setattr", "cannot make the bind of %s read-only", dir);
  if (syscall (SYS_move_mount, tree, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
    return md_make_error (err, errno, "move_mount", "cannot bind %s on /%s", dir, rel);
  return 0;
}

/* The container sees its own cgroup directories, read-only, at /sys/fs/cgroup/<name>
 * (v1) or /sys/fs/cgroup (v2 alone): the seed's demo reads pids.current there. They are
 * bind mounts of the --cgroup directories, not fresh cgroup mounts: one code path for v1
 * and v2, with and without a user namespace, that shows exactly the container's own
 * directories (never a hierarchy's root and its release_agent, which the CVE-2022-0492
 * escape writes) and asks the kernel for no cgroup mount it may refuse. */
static int
mount_cgroups (int rootfd, const struct md_opts *opts, const struct md_cgroup_mount *mounts, size_t n, md_error_t *err)
{
  char rel[PATH_MAX];
  size_t i;
  const unsigned long ro = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;

  if (n == 0)
    return 0;
  if (n == 1 && mounts[0].name[0] == '\0')
    return bind_readonly_beneath (rootfd, "sys/fs/cgroup", opts->cgroups[mounts[0].dir], err);

  if (mount_dir_beneath (rootfd, "sys/fs/cgroup", "tmpfs", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                         "mode=755,size=64k", err)
      < 0)
    return -1;
  for (i = 0; i < n; i++)
    {
      if (mounts[i].name[0] == '\0')
        snprintf (rel, sizeof (rel), "sys/fs/cgroup/unified");
      else
        snprintf (rel, sizeof (rel), "sys/fs/cgroup/%s", mounts[i].name);
      if (bind_readonly_beneath (rootfd, rel, opts->cgroups[mounts[i].dir], err) < 0)
        return -1;
    }
  {
    cleanup_close int fd = open_beneath (rootfd, "sys/fs/cgroup", O_PATH | O_DIRECTORY, 0);
    if (fd < 0 || mount_on_fd (NULL, fd, NULL, MS_REMOUNT | MS_BIND | ro, NULL) < 0)
      return md_make_error (err, errno, "mount", "cannot make /sys/fs/cgroup read-only");
  }
  return 0;
}

/* Writes name in the layer tmpfs (layer_mnt) and binds it on rootfd/rel. */
static int
bind_layer_file (int layer_mnt, const char *name, const char *content, int rootfd, const char *rel, md_error_t *err)
{
  cleanup_close int fd = -1;
  char source[64];

  fd = openat (layer_mnt, name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0 || md_write_all (fd, content, strlen (content)) < 0)
    return md_make_error (err, errno, "write", "cannot write %s in the layer", name);
  snprintf (source, sizeof (source), "/proc/self/fd/%d", fd);
  return bind_file_beneath (rootfd, rel, source, 0, err);
}

/* The network's hosts file (hosts_fd, opened before we became the container's root),
 * read-only on /etc/hosts: the runtime rewrites it in place as members come and go, and
 * a bind mount of the file follows its inode. Made read-only before it is attached. */
static int
bind_network_hosts (int rootfd, int hosts_fd, md_error_t *err)
{
  struct md_mount_attr attr
      = { .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC };
  cleanup_close int target = -1;
  cleanup_close int tree = -1;

  target = open_beneath (rootfd, "etc/hosts", O_CREAT | O_WRONLY | O_NOFOLLOW, 0644);
  if (target < 0)
    target = open_beneath (rootfd, "etc/hosts", O_PATH | O_NOFOLLOW, 0);
  if (target < 0)
    return md_make_error (err, errno, "openat2", "cannot create /etc/hosts in the container");
  tree = (int) syscall (SYS_open_tree, hosts_fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
  if (tree < 0)
    return md_make_error (err, errno, "open_tree", "cannot bind the network's hosts file");
  if (syscall (SYS_mount_setattr, tree, "", AT_EMPTY_PATH, &attr, sizeof (attr)) < 0)
    return md_make_error (err, errno, "mount_setattr", "cannot make the network's hosts file read-only");
  if (syscall (SYS_move_mount, tree, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
    return md_make_error (err, errno, "move_mount", "cannot bind the network's hosts file on /etc/hosts");
  return 0;
}

/* /etc/resolv.conf with one nameserver line per address of the comma-separated list
 * (checked by the parser: digits, dots and commas). */
static int
write_resolv_conf (int rootfd, int layer_mnt, const char *list, md_error_t *err)
{
  char content[512];
  size_t used = 0;
  const char *p = list;

  while (*p && used < sizeof (content) - 32)
    {
      size_t n = strcspn (p, ",");
      if (n > 15)
        return md_make_error_code (err, MD_E_INVALID_ARGUMENT, "invalid --network-dns %s", list);
      if (n > 0)
        used += (size_t) snprintf (content + used, sizeof (content) - used, "nameserver %.*s\n", (int) n, p);
      p += n;
      if (*p == ',')
        p++;
    }
  content[used] = '\0';
  return bind_layer_file (layer_mnt, "resolv.conf", content, rootfd, "etc/resolv.conf", err);
}

static int
setup_etc (int rootfd, int layer_mnt, const struct md_opts *opts, int hosts_fd, md_error_t *err)
{
  char content[1024];
  const char *name = opts->hostname ? opts->hostname : "localhost";

  if (mkdirat (rootfd, "etc", 0755) < 0 && errno != EEXIST)
    return md_make_error (err, errno, "mkdir", "cannot create /etc in the container");
  snprintf (content, sizeof (content), "%s\n", name);
  if (bind_layer_file (layer_mnt, "hostname", content, rootfd, "etc/hostname", err) < 0)
    return -1;
  if (opts->network_dns && write_resolv_conf (rootfd, layer_mnt, opts->network_dns, err) < 0)
    return -1;
  if (hosts_fd >= 0)
    return bind_network_hosts (rootfd, hosts_fd, err);
  snprintf (content, sizeof (content), "127.0.0.1\tlocalhost %s\n::1\tlocalhost ip6-localhost ip6-loopback\n", name);
  return bind_layer_file (layer_mnt, "hosts", content, rootfd, "etc/hosts", err);
}

/* The layer tmpfs, made with the new mount API so that we hold its root as an fd: once
 * we are the container's root, paths through the host's state directory are closed to
 * us. It is attached on --layer-dir, in our mount namespace only. */
static int
mount_layer (int layer_fd, unsigned long long size_bytes, md_error_t *err)
{
  cleanup_close int fs = -1;
  char size[32];
  int mnt;

  fs = (int) syscall (SYS_fsopen, "tmpfs", FSOPEN_CLOEXEC);
  if (fs < 0)
    return md_make_error (err, errno, "fsopen", "cannot create the layer tmpfs");
  snprintf (size, sizeof (size), "%llu", size_bytes);
  if (syscall (SYS_fsconfig, fs, FSCONFIG_SET_STRING, "size", size, 0) < 0
      || syscall (SYS_fsconfig, fs, FSCONFIG_SET_STRING, "mode", "0755", 0) < 0
      || syscall (SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
    return md_make_error (err, errno, "fsconfig", "cannot create the layer tmpfs");
  mnt = (int) syscall (SYS_fsmount, fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
  if (mnt < 0)
    return md_make_error (err, errno, "fsmount", "cannot create the layer tmpfs");
  if (syscall (SYS_move_mount, mnt, "", layer_fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
    {
      md_make_error (err, errno, "move_mount", "cannot mount the layer tmpfs");
      close (mnt);
      return -1;
    }
  return mnt;
}

static int
open_dir_at (int dirfd, const char *name, mode_t mode, md_error_t *err)
{
  int fd;

  if (mode && mkdirat (dirfd, name, mode) < 0)
    return md_make_error (err, errno, "mkdir", "cannot create %s in the layer", name);
  fd = openat (dirfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return md_make_error (err, errno, "open", "cannot open %s in the layer", name);
  return fd;
}

/* The image's mounts (from the parent) go below the layer as lower/ (one) or lower/N (a
 * layer each, bottom first), the overlay of them and upper/ becomes root/. Every
 * directory is named by an fd (/proc/self/fd/N in the options), so no path of the host
 * is resolved as the container's root. nosuid: setuid files and file capabilities grant
 * nothing; execve checks only the mount the file is run from, the overlay, so without it
 * (--no-new-privs 0, Docker's default) an image's file capabilities work and stay within
 * the container's user namespace and bounding set. */
static int
mount_overlay (int layer_mnt, const int *image_fds, size_t n, int userns, int nosuid, md_error_t *err)
{
  cleanup_close int upper = -1;
  cleanup_close int work = -1;
  cleanup_close int root = -1;
  cleanup_close int lower = -1;
  char data[4096], target[64], name[32];
  size_t i, len = 0;

  if (mkdirat (layer_mnt, "lower", 0755) < 0)
    return md_make_error (err, errno, "mkdir", "cannot create lower in the layer");
  if (n == 1 && syscall (SYS_move_mount, image_fds[0], "", layer_mnt, "lower", MOVE_MOUNT_F_EMPTY_PATH) < 0)
    return md_make_error (err, errno, "move_mount", "cannot attach the image below the layer");
  if (n > 1)
    {
      lower = open_dir_at (layer_mnt, "lower", 0, err);
      if (lower < 0)
        return -1;
      for (i = 0; i < n; i++)
        {
          snprintf (name, sizeof (name), "%zu", i);
          if (mkdirat (lower, name, 0755) < 0)
            return md_make_error (err, errno, "mkdir", "cannot create lower/%s in the layer", name);
          if (syscall (SYS_move_mount, image_fds[i], "", lower, name, MOVE_MOUNT_F_EMPTY_PATH) < 0)
            return md_make_error (err, errno, "move_mount", "cannot attach image layer %s below the layer", name);
        }
    }
  upper = open_dir_at (layer_mnt, "upper", 0755, err);
  if (upper < 0)
    return -1;
  work = open_dir_at (layer_mnt, "work", 0700, err);
  if (work < 0)
    return -1;
  root = open_dir_at (layer_mnt, "root", 0755, err);
  if (root < 0)
    return -1;
  /* overlayfs lists lowers top first; the manifest, and so image_fds, bottom first. */
  len = (size_t) snprintf (data, sizeof (data), "lowerdir=");
  for (i = n; i-- > 0 && len < sizeof (data);)
    len += (size_t) snprintf (data + len, sizeof (data) - len, "/proc/self/fd/%d%s", image_fds[i], i ? ":" : "");
  /* In a user namespace overlayfs may not set its trusted.* xattrs (whiteouts, opaque
   * directories): userxattr keeps them in user.overlay.*, which tmpfs holds (6.6+), and
   * reads the image layers' opaque marks from user.overlay.opaque (the store writes both). */
  if (len < sizeof (data))
    len += (size_t) snprintf (data + len, sizeof (data) - len, ",upperdir=/proc/self/fd/%d,workdir=/proc/self/fd/%d%s",
                              upper, work, userns ? ",userxattr" : "");
  if (len >= sizeof (data))
    return md_make_error_code (err, MD_E_INVALID_ARGUMENT, "too many image layers for the overlay's options");
  snprintf (target, sizeof (target), "/proc/self/fd/%d", root);
  if (mount ("overlay", target, "overlay", MS_NODEV | (nosuid ? MS_NOSUID : 0), data) < 0)
    {
      if (errno == ENODEV)
        return md_make_error_code (err, MD_E_UNSUPPORTED, "this kernel has no overlayfs (modprobe overlay)");
      return md_make_error (err, errno, "mount", "cannot mount the overlay of the image");
    }
  return 0;
}

int
md_setup_rootfs (const struct md_opts *opts, int layer_fd, const int *image_fds, size_t n_image_fds,
                 const struct md_cgroup_mount *cgroup_mounts, size_t n_cgroup_mounts, int hosts_fd, int *upper_fd,
                 md_error_t *err)
{
  cleanup_close int layer_mnt = -1;
  cleanup_close int rootfd = -1;

  *upper_fd = -1;

  /* Nothing we mount may propagate back to the host's mount namespace. */
  if (mount (NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
    return md_make_error (err, errno, "mount", "cannot make / private");

  layer_mnt = mount_layer (layer_fd, opts->rootfs ? 1024ULL * 1024 : opts->layer_size_bytes, err);
  if (layer_mnt < 0)
    return -1;
  if (!opts->rootfs)
    {
      if (mount_overlay (layer_mnt, image_fds, n_image_fds, opts->userns.mode != MD_USERNS_HOST, opts->sec.no_new_privs,
                         err)
          < 0)
        return -1;
      /* Opened now: once the old root is detached, nothing names the layer's tmpfs. */
      *upper_fd = openat (layer_mnt, "upper", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (*upper_fd < 0)
        return md_make_error (err, errno, "open", "cannot open upper in the layer");
    }
  else
    {
      /* --rootfs: the directory's own mount (idmapped, read-write) is the root. */
      if (mkdirat (layer_mnt, "root", 0755) < 0)
        return md_make_error (err, errno, "mkdir", "cannot create root in the layer");
      if (syscall (SYS_move_mount, image_fds[0], "", layer_mnt, "root", MOVE_MOUNT_F_EMPTY_PATH) < 0)
        return md_make_error (err, errno, "move_mount", "cannot attach the rootfs %s", opts->rootfs);
    }

  /* Through the mount on top: the overlay, or the rootfs. */
  rootfd = openat (layer_mnt, "root", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0)
    return md_make_error (err, errno, "open", "cannot open the container's root");

  /* A fresh /proc: the new PID namespace's view, mounted from inside it. */
  if (mount_dir_beneath (rootfd, "proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, err) < 0)
    return -1;
  if (mount_dir_beneath (rootfd, "sys", "sysfs", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, err) < 0)
    return -1;
  if (mount_cgroups (rootfd, opts, cgroup_mounts, n_cgroup_mounts, err) < 0)
    return -1;
  if (setup_dev (rootfd, opts, err) < 0)
    return -1;
  if (mount_dir_beneath (rootfd, "tmp", "tmpfs", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777", err) < 0)
    return -1;
  if (setup_etc (rootfd, layer_mnt, opts, hosts_fd, err) < 0)
    return -1;

  /* pivot_root(".", ".") stacks the old root under the new one; detaching it leaves
   * no path back to the host (chroot would). */
  if (fchdir (rootfd) < 0)
    return md_make_error (err, errno, "fchdir", "the container's root");
  if (syscall (SYS_pivot_root, ".", ".") < 0)
    return md_make_error (err, errno, "pivot_root", "cannot pivot into the container's root");
  if (umount2 (".", MNT_DETACH) < 0)
    return md_make_error (err, errno, "umount2", "cannot detach the old root");
  if (chdir ("/") < 0)
    return md_make_error (err, errno, "chdir", "/");
  return 0;
}
