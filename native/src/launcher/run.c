/* `mdocker-init run`: a new container. The parent prepares and supervises; the child
 * is cloned into new namespaces, waits for the parent to map its user namespace and
 * hand it the image's mount, builds its root while the parent places it in its cgroups
 * and its network, then waits for that too and execs the command. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "launcher.h"

/* The kernel creates the user namespace first, so that it owns the others: inside it
 * the container's root holds its capabilities over its own namespaces only. The
 * cgroup namespace is unshared by the child after the parent has moved it into its
 * cgroups, so that the namespace's root is the container's own cgroup. */
#define MD_RUN_CLONE_FLAGS (CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWNET)

static int
uses_userns (const struct md_opts *opts)
{
  return opts->userns.mode != MD_USERNS_HOST;
}

/* mkdir -p, 0700: the lock directory may be the first thing under /run/mdocker. */
static int
make_dirs (const char *dir, md_error_t *err)
{
  char path[PATH_MAX];
  char *p;

  if (snprintf (path, sizeof (path), "%s", dir) >= (int) sizeof (path))
    return md_make_error_code (err, MD_E_INVALID_ARGUMENT, "path too long: %s", dir);
  for (p = path + 1;; p++)
    if (*p == '/' || *p == '\0')
      {
        char c = *p;
        *p = '\0';
        if (mkdir (path, 0700) < 0 && errno != EEXIST)
          return md_make_error (err, errno, "mkdir", "cannot create %s", path);
        if (c == '\0')
          return 0;
        *p = c;
      }
}

/* Takes a free slot of the pool: an exclusive flock on <lock_dir>/<host uid>,
 * held by the returned fd for the launcher's life. The kernel drops the lock when the
 * launcher dies, however it dies, and the launcher outlives every process of its
 * container (the init is PID 1 of its namespace, the rest die with it): no two running
 * containers share host ids, and a crash leaves no stale reservation.
 * The search starts at a slot picked by our pid, not at slot 0: from 0, every start
 * would try each running container's slot first (1000 open+flock+close with 1000
 * containers, a create latency that grows with the count). Each slot used leaves an
 * empty lock file behind, at most one per slot. */
static int
take_userns_slot (struct md_userns *u, md_error_t *err)
{
  char path[PATH_MAX];
  unsigned long tried, start = (unsigned long) getpid () % u->pool_slots;

  if (make_dirs (u->lock_dir, err) < 0)
    return -1;
  for (tried = 0; tried < u->pool_slots; tried++)
    {
      unsigned long slot = (start + tried) % u->pool_slots;
      unsigned long uid = u->pool_uid + slot * MD_USERNS_SLOT_IDS;
      int fd;

      snprintf (path, sizeof (path), "%s/%lu", u->lock_dir, uid);
      fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
      if (fd < 0)
        return md_make_error (err, errno, "open", "cannot open the user namespace lock %s", path);
      if (flock (fd, LOCK_EX | LOCK_NB) == 0)
        {
          u->host_uid = uid;
          u->host_gid = u->pool_gid + slot * MD_USERNS_SLOT_IDS;
          u->count = MD_USERNS_SLOT_IDS;
          return fd;
        }
      close (fd);
      if (errno != EWOULDBLOCK && errno != EINTR)
        return md_make_error (err, errno, "flock", "cannot lock %s", path);
    }
  return md_make_error_code (err, MD_E_UNAVAILABLE, "all %lu user namespace slots of the pool are in use",
                             u->pool_slots);
}

/* Container 0..count-1 → host host_uid.. and host_gid..; written by us, privileged in
 * the parent namespace, so setgroups stays allowed inside (su and adduser need it) and
 * any host range may be named. Host root is never in the range (main.c checks). */
static int
write_id_maps (pid_t child, const struct md_userns *u, md_error_t *err)
{
  char map[96];

  snprintf (map, sizeof (map), "0 %lu %lu\n", u->host_uid, u->count);
  if (md_write_proc_file (child, "uid_map", map, err) < 0)
    return -1;
  snprintf (map, sizeof (map), "0 %lu %lu\n", u->host_gid, u->count);
  return md_write_proc_file (child, "gid_map", map, err);
}

/* A --rootfs is read-write, and on the host's disk: were it idmapped as the image is
 * (host root's files the container root's), what the container writes would land as
 * host uid 0, a setuid-root file among it. So its ids on disk are a range of its own:
 * the owner of its root directory is the container's root, that uid + N its uid N. A
 * rootfs whose owner is below 65536 (host root, the host's users and groups) is
 * refused: the container would write as them. Returns a user namespace to idmap to. */
static int
rootfs_userns (const struct md_opts *opts, int tree_fd, md_error_t *err)
{
  const struct md_userns *u = &opts->userns;
  char uid_map[96], gid_map[96];
  struct stat st;

  if (fstat (tree_fd, &st) < 0)
    return md_make_error (err, errno, "fstat", "cannot stat the rootfs %s", opts->rootfs);
  if (st.st_uid < MD_USERNS_SLOT_IDS || st.st_gid < MD_USERNS_SLOT_IDS
      || (unsigned long) st.st_uid > 0xFFFFFFFFUL - u->count || (unsigned long) st.st_gid > 0xFFFFFFFFUL - u->count)
    return md_make_error_code (
        err, MD_E_INVALID_ARGUMENT,
        "the rootfs %s belongs to host uid %u gid %u: with a user namespace its owner is the "
        "container's root and must be a range of its own, from 65536 up (chown -R 1000000:1000000 "
        "it, or run with --userns host)",
        opts->rootfs, (unsigned) st.st_uid, (unsigned) st.st_gid);
  snprintf (uid_map, sizeof (uid_map), "%u %lu %lu\n", (unsigned) st.st_uid, u->host_uid, u->count);
  snprintf (gid_map, sizeof (gid_map), "%u %lu %lu\n", (unsigned) st.st_gid, u->host_gid, u->count);
  return md_open_mapped_userns (uid_map, gid_map, err);
}

/* A detached copy of the image's (or rootfs's) mount, made here because only the
 * parent, in the initial user namespace, may idmap it: through it a file that host
 * root owns in the image is owned by the container's root, so the image needs no chown
 * and stays shareable; a --rootfs has ids of its own (rootfs_userns). The image is
 * read-only even below its overlay. */
static int
detached_image_mount (const struct md_opts *opts, const char *source, pid_t child, md_error_t *err)
{
  struct md_mount_attr attr;
  cleanup_close int userns_fd = -1;
  int fd;

  fd = (int) syscall (SYS_open_tree, AT_FDCWD, source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  if (fd < 0)
    return md_make_error (err, errno, "open_tree", "cannot open %s %s", opts->rootfs ? "rootfs" : "image", source);

  /* nodev, nosuid: a device node or a setuid file in the image or the rootfs (planted
   * there, or made by a container with --cap-add MKNOD or FSETID) gives nothing. */
  memset (&attr, 0, sizeof (attr));
  attr.attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
  if (!opts->rootfs)
    attr.attr_set |= MOUNT_ATTR_RDONLY;
  if (uses_userns (opts))
    {
      char path[64];
      snprintf (path, sizeof (path), "/proc/%d/ns/user", (int) child);
      userns_fd = opts->rootfs ? rootfs_userns (opts, fd, err) : open (path, O_RDONLY | O_CLOEXEC);
      if (userns_fd < 0)
        {
          if (!opts->rootfs)
            md_make_error (err, errno, "open", "cannot open %s", path);
          close (fd);
          return -1;
        }
      attr.attr_set |= MOUNT_ATTR_IDMAP;
      attr.userns_fd = (uint64_t) userns_fd;
    }
  if (syscall (SYS_mount_setattr, fd, "", AT_EMPTY_PATH, &attr, sizeof (attr)) < 0)
    {
      int saved = errno;
      close (fd);
      if (uses_userns (opts) && (saved == EINVAL || saved == ENOSYS))
        return md_make_error (err, saved, "mount_setattr",
                              "cannot idmap %s for the container's user namespace: its filesystem does not support "
                              "idmapped mounts (kernel 5.19+ with ext4, xfs, btrfs or tmpfs), or use --userns host",
                              source);
      return md_make_error (err, saved, "mount_setattr", "cannot set the attributes of %s's mount", source);
    }
  return fd;
}

/* Sends a one-byte word, then data_len bytes of data, with fds attached (SCM_RIGHTS;
 * none when n_fds is 0). */
static int
send_word (int sock, char word, const void *data, size_t data_len, const int *fds, size_t n_fds, const char *what,
           md_error_t *err)
{
  struct iovec iov[2] = { { .iov_base = &word, .iov_len = 1 }, { .iov_base = (void *) data, .iov_len = data_len } };
  union
  {
    char buf[CMSG_SPACE (sizeof (int) * MD_MAX_IMAGE_LAYERS)];
    struct cmsghdr align;
  } control;
  struct msghdr msg;
  struct cmsghdr *cmsg;
  ssize_t n;

  if (n_fds > MD_MAX_IMAGE_LAYERS)
    return md_make_error_code (err, MD_E_INVALID_ARGUMENT, "too many fds to hand over");
  memset (&msg, 0, sizeof (msg));
  memset (&control, 0, sizeof (control));
  msg.msg_iov = iov;
  msg.msg_iovlen = data_len > 0 ? 2 : 1;
  if (n_fds > 0)
    {
      msg.msg_control = control.buf;
      msg.msg_controllen = CMSG_SPACE (sizeof (int) * n_fds);
      cmsg = CMSG_FIRSTHDR (&msg);
      cmsg->cmsg_level = SOL_SOCKET;
      cmsg->cmsg_type = SCM_RIGHTS;
      cmsg->cmsg_len = CMSG_LEN (sizeof (int) * n_fds);
      memcpy (CMSG_DATA (cmsg), fds, sizeof (int) * n_fds);
    }
  do
    n = sendmsg (sock, &msg, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n != (ssize_t) (1 + data_len))
    return md_make_error (err, n < 0 ? errno : EMSGSIZE, "sendmsg", "cannot %s", what);
  return 0;
}

/* Receives the one-byte word `expect`, the data after it into data (at most data_max
 * bytes; *data_len says how many came) and the fds attached to it, into fds (at most
 * MD_MAX_IMAGE_LAYERS): how many fds, or -1 when the peer went away, sent another word,
 * or sent data or fds that did not fit. */
static int
receive_word (int sock, char expect, void *data, size_t data_max, size_t *data_len, int *fds)
{
  char word;
  struct iovec iov[2] = { { .iov_base = &word, .iov_len = 1 }, { .iov_base = data, .iov_len = data_max } };
  union
  {
    char buf[CMSG_SPACE (sizeof (int) * MD_MAX_IMAGE_LAYERS)];
    struct cmsghdr align;
  } control;
  struct msghdr msg;
  struct cmsghdr *cmsg;
  ssize_t n;
  size_t n_fds;

  memset (&msg, 0, sizeof (msg));
  msg.msg_iov = iov;
  msg.msg_iovlen = data_max > 0 ? 2 : 1;
  msg.msg_control = control.buf;
  msg.msg_controllen = sizeof (control.buf);
  do
    n = recvmsg (sock, &msg, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 1 || word != expect || (msg.msg_flags & (MSG_CTRUNC | MSG_TRUNC)))
    return -1;
  if (data_len)
    *data_len = (size_t) n - 1;
  cmsg = CMSG_FIRSTHDR (&msg);
  if (cmsg == NULL)
    return 0;
  if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS || cmsg->cmsg_len < CMSG_LEN (0))
    return -1;
  n_fds = (cmsg->cmsg_len - CMSG_LEN (0)) / sizeof (int);
  if (n_fds > MD_MAX_IMAGE_LAYERS)
    return -1;
  memcpy (fds, CMSG_DATA (cmsg), sizeof (int) * n_fds);
  return (int) n_fds;
}

/* The go-ahead, with the image's (or rootfs's) mount fds attached, and where the
 * container's cgroup directories go (md_cgroup_mounts_of: the parent reads the host's
 * mountinfo while the child starts, off the child's way). */
static int
send_go (int sock, const int *image_fds, size_t n_fds, const struct md_cgroup_mount *cgroup_mounts,
         size_t n_cgroup_mounts, md_error_t *err)
{
  return send_word (sock, 'g', cgroup_mounts, sizeof (*cgroup_mounts) * n_cgroup_mounts, image_fds, n_fds,
                    "release the container", err);
}

/* Fills fds with the image's mount fds and returns how many, or -1 when the parent went
 * away without a go-ahead (or sent none, or places that are not opts's); fills
 * cgroup_mounts (MD_MAX_CGROUPS) and *n_cgroup_mounts. */
static int
receive_go (int sock, const struct md_opts *opts, int *fds, struct md_cgroup_mount *cgroup_mounts,
            size_t *n_cgroup_mounts)
{
  size_t len = 0, i;
  int n = receive_word (sock, 'g', cgroup_mounts, sizeof (*cgroup_mounts) * MD_MAX_CGROUPS, &len, fds);

  if (n < 1 || len % sizeof (*cgroup_mounts) != 0)
    return -1;
  *n_cgroup_mounts = len / sizeof (*cgroup_mounts);
  for (i = 0; i < *n_cgroup_mounts; i++)
    if (cgroup_mounts[i].dir >= opts->n_cgroups
        || memchr (cgroup_mounts[i].name, '\0', sizeof (cgroup_mounts[i].name)) == NULL)
      return -1;
  return n;
}

/* The parent's word that the child is in its cgroups (and on its network): sent while
 * the child builds its root, which needs neither. */
static int
send_ready (int sock, md_error_t *err)
{
  return send_word (sock, 'r', NULL, 0, NULL, 0, "release the container's command", err);
}

/* 0 once the parent's send_ready came, -1 when the parent went away or failed. */
static int
receive_ready (int sock)
{
  int fds[MD_MAX_IMAGE_LAYERS];
  int i, n = receive_word (sock, 'r', NULL, 0, NULL, fds);

  for (i = 0; i < n; i++)
    close (fds[i]);
  return n == 0 ? 0 : -1;
}

/* The child's word that its root is built, with the upper layer's fd attached when it
 * has one (not a --rootfs). */
static int
send_layer (int sock, int upper_fd, md_error_t *err)
{
  return send_word (sock, 'l', NULL, 0, &upper_fd, upper_fd >= 0 ? 1 : 0, "hand the upper layer to the launcher", err);
}

/* Waits for the child's send_layer: -1 when the child failed first (it has reported why
 * and exits: EOF here), else its root is built, and the upper layer's fd is kept at
 * MD_LAYER_KEEP_FD (1: kept; 0: a --rootfs has none, or the slot is taken). The container
 * runs all the same without it; only a commit of it is refused then. */
static int
keep_layer (int sock)
{
  int fds[MD_MAX_IMAGE_LAYERS];
  int fd, kept, i, n = receive_word (sock, 'l', NULL, 0, NULL, fds);

  if (n < 0)
    return -1;
  if (n != 1)
    {
      for (i = 0; i < n; i++)
        close (fds[i]);
      return 0;
    }
  fd = fds[0];
  if (fd == MD_LAYER_KEEP_FD)
    return 1;
  /* The slot is free in a launcher (it holds a handful of fds); never clobber one. */
  kept = fcntl (MD_LAYER_KEEP_FD, F_GETFD) < 0 && errno == EBADF && dup3 (fd, MD_LAYER_KEEP_FD, O_CLOEXEC) >= 0;
  close (fd);
  return kept;
}

__attribute__ ((noreturn)) static void
child_main (const struct md_opts *opts, int sock, int userns_lock_fd, const sigset_t *old_mask)
{
  md_error_t err;
  int image_fds[MD_MAX_IMAGE_LAYERS];
  struct md_cgroup_mount cgroup_mounts[MD_MAX_CGROUPS];
  size_t n_cgroup_mounts = 0;
  int n_image_fds, layer_fd, hosts_fd = -1, upper_fd = -1, i;

  /* The container never outlives its launcher: if the launcher dies (even by SIGKILL)
   * the init is killed, and with it the whole PID namespace. */
  if (prctl (PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
    {
      md_make_error (&err, errno, "prctl", "PR_SET_PDEATHSIG");
      md_child_fail (opts, &err);
    }
  /* The parent's copy holds the slot; ours goes (closing it releases nothing). */
  if (userns_lock_fd >= 0)
    close (userns_lock_fd);

  n_image_fds = receive_go (sock, opts, image_fds, cgroup_mounts, &n_cgroup_mounts);
  if (n_image_fds <= 0)
    _exit (125); /* the parent is gone, or failed and has reported it */

  /* The host's state directory (/run/mdocker/<id>, 0700 host root) is closed to the
   * container's root: open the layer directory while we are still host root. */
  layer_fd = open (opts->layer_dir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (layer_fd < 0)
    {
      md_make_error (&err, errno, "open", "cannot open the layer directory %s", opts->layer_dir);
      md_child_fail (opts, &err);
    }
  if (opts->network_hosts)
    {
      hosts_fd = open (opts->network_hosts, O_PATH | O_NOFOLLOW | O_CLOEXEC);
      if (hosts_fd < 0)
        {
          md_make_error (&err, errno, "open", "cannot open the network's hosts file %s", opts->network_hosts);
          md_child_fail (opts, &err);
        }
    }
  if (uses_userns (opts) && md_become_container_root (sock, &err) < 0)
    md_child_fail (opts, &err);

  if (opts->hostname && sethostname (opts->hostname, strlen (opts->hostname)) < 0)
    {
      md_make_error (&err, errno, "sethostname", "cannot set hostname %s", opts->hostname);
      md_child_fail (opts, &err);
    }
  if (md_setup_rootfs (opts, layer_fd, image_fds, (size_t) n_image_fds, cgroup_mounts, n_cgroup_mounts, hosts_fd,
                       &upper_fd, &err)
      < 0)
    md_child_fail (opts, &err);
  if (send_layer (sock, upper_fd, &err) < 0)
    md_child_fail (opts, &err);
  if (upper_fd >= 0)
    close (upper_fd);
  /* Nothing of the host stays open past this point (CVE-2024-21626). */
  close (layer_fd);
  if (hosts_fd >= 0)
    close (hosts_fd);
  for (i = 0; i < n_image_fds; i++)
    close (image_fds[i]);
  if (md_security_mask_paths (&opts->sec, &err) < 0)
    md_child_fail (opts, &err);

  /* The command's first instruction runs inside the container's limits: wait until the
   * parent has placed us in its cgroups. Only then the cgroup namespace, whose root is
   * the cgroup its creator is in. */
  if (receive_ready (sock) < 0)
    _exit (125); /* the parent is gone, or failed and has reported it */
  close (sock);
  if (unshare (CLONE_NEWCGROUP) < 0)
    {
      md_make_error (&err, errno, "unshare", "cannot create the cgroup namespace");
      md_child_fail (opts, &err);
    }

  md_exec_command (opts, old_mask);
}

int
md_run (const struct md_opts *opts_in, md_error_t *err)
{
  struct md_opts opts_copy = *opts_in;
  struct md_opts *opts = &opts_copy; /* the pool fills in the slot it gave */
  sigset_t old_mask;
  int sync_sock[2];
  char buf[64];
  pid_t child;
  int code, layer_kept;
  siginfo_t gone;
  int image_fds[MD_MAX_IMAGE_LAYERS];
  size_t n_image_fds = 0, n_cgroup_mounts, i;
  struct md_cgroup_mount cgroup_mounts[MD_MAX_CGROUPS];
  cleanup_close int userns_lock_fd = -1;
  unsigned long flags = MD_RUN_CLONE_FLAGS | (uses_userns (opts) ? CLONE_NEWUSER : 0);

  if (opts->tty && md_give_up_tty (err) < 0)
    return -1;
  if (md_block_forwarded_signals (&old_mask, err) < 0)
    return -1;
  if (opts->userns.mode == MD_USERNS_POOL)
    {
      userns_lock_fd = take_userns_slot (&opts->userns, err);
      if (userns_lock_fd < 0)
        return -1;
    }
  /* A socket, not a pipe: the go-ahead carries the image's mount fd. */
  if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sync_sock) < 0)
    return md_make_error (err, errno, "socketpair", "cannot create the sync socket");

  /* A raw clone behaves as fork (no stack to manage) while entering the namespaces. */
  child = (pid_t) syscall (SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, NULL);
  if (child < 0)
    {
      int saved = errno;
      close (sync_sock[0]);
      close (sync_sock[1]);
      return md_make_error (err, saved, "clone", "cannot create the container's namespaces");
    }
  if (child == 0)
    {
      close (sync_sock[1]);
      child_main (opts, sync_sock[0], userns_lock_fd, &old_mask);
    }
  close (sync_sock[0]);

  if (uses_userns (opts) && write_id_maps (child, &opts->userns, err) < 0)
    goto fail;
  /* The terminal (a pty of its own: node-pty's, given up by us above) becomes the
   * container root's, as runc does with its console: else /dev/console is nobody's
   * inside, and a login or getty cannot reopen it. */
  if (opts->tty && uses_userns (opts)
      && fchown (STDIN_FILENO, (uid_t) opts->userns.host_uid, (gid_t) opts->userns.host_gid) < 0)
    {
      md_make_error (err, errno, "fchown", "cannot give the terminal to the container's root");
      goto fail;
    }
  /* One idmapped mount per layer: overlayfs stacks them in the child. */
  for (i = 0; i < (opts->rootfs ? 1 : opts->n_image_layers); i++)
    {
      int fd = detached_image_mount (opts, opts->rootfs ? opts->rootfs : opts->image_layers[i], child, err);
      if (fd < 0)
        goto fail;
      image_fds[n_image_fds++] = fd;
    }
  n_cgroup_mounts = md_cgroup_mounts_of (opts, cgroup_mounts, MD_MAX_CGROUPS);
  if (send_go (sync_sock[1], image_fds, n_image_fds, cgroup_mounts, n_cgroup_mounts, err) < 0)
    goto fail;
  for (i = 0; i < n_image_fds; i++)
    close (image_fds[i]);
  n_image_fds = 0;
  /* While the child builds its root: its device allowlist and its cgroups (the first
   * instruction runs inside its limits), its network (lo, and eth0 with its address, are
   * up before the first instruction). The child waits for send_ready before its command. */
  if (md_cgroup_device_filter (opts, err) < 0 || md_join_cgroups (opts, child, err) < 0
      || md_network_attach (opts, child, err) < 0 || send_ready (sync_sock[1], err) < 0)
    goto fail_released;
  layer_kept = keep_layer (sync_sock[1]);
  /* The init's pid is told only once its root is built: until then the child stands in
   * a copy of the host's mounts, and an exec or a file upload that joined it there would
   * land on the host's filesystem. */
  if (layer_kept >= 0 && opts->pid_file)
    {
      snprintf (buf, sizeof (buf), "%d\n", (int) child);
      if (md_write_file_atomic (opts->pid_file, buf, err) < 0)
        goto fail;
    }

supervise:
  /* sync_sock[1] stays open until the container is gone: the child checks it to know
   * that we are still alive (md_become_container_root). */
  code = md_supervise (child, err);
  close (sync_sock[1]);
  /* The last reference to the layer's tmpfs: its pages go before its cgroup does. */
  if (layer_kept > 0)
    close (MD_LAYER_KEEP_FD);
  md_remove_cgroups (opts);
  if (code < 0)
    return code;
  if (opts->exit_file)
    {
      md_error_t ignored;
      snprintf (buf, sizeof (buf), "{\"exitCode\":%d}\n", code);
      md_write_file_atomic (opts->exit_file, buf, &ignored);
    }
  if (opts->cleanup_dir)
    md_remove_tree (opts->cleanup_dir);
  return code;

fail_released:
  /* The child builds its root meanwhile, and stops short of its command. When it failed
   * first and is gone (a cgroup may refuse a pid that exited), its error is the one to
   * report, and already is: it ends as any container does. */
  memset (&gone, 0, sizeof (gone));
  if (waitid (P_PID, (id_t) child, &gone, WEXITED | WNOHANG | WNOWAIT) == 0 && gone.si_pid == child)
    {
      layer_kept = -1;
      goto supervise;
    }

fail:
  for (i = 0; i < n_image_fds; i++)
    close (image_fds[i]);
  close (sync_sock[1]);
  kill (child, SIGKILL);
  waitpid (child, NULL, 0);
  md_remove_cgroups (opts);
  return -1;
}
