/* `mdocker-init check-idmap DIR`: whether DIR's filesystem takes an idmapped mount.
 * The kernel answers only by trying: support depends on the filesystem type and the
 * kernel version together (ext4, xfs and btrfs since 5.12-5.15, tmpfs only since 6.3,
 * never 9p or NFS), and a wrong guess would fail every container's start. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "launcher.h"

/* A user namespace to idmap to: a child that unshares one and waits, so that its
 * /proc/PID/ns/user can be opened; the namespace lives on in that fd. */
static pid_t
spawn_userns_holder (int *release_fd, md_error_t *err)
{
  int ready[2], release[2];
  char byte = 0;
  pid_t child;

  if (pipe2 (ready, O_CLOEXEC) < 0)
    return md_make_error (err, errno, "pipe2", "cannot make a pipe");
  if (pipe2 (release, O_CLOEXEC) < 0)
    {
      close (ready[0]);
      close (ready[1]);
      return md_make_error (err, errno, "pipe2", "cannot make a pipe");
    }
  child = fork ();
  if (child < 0)
    {
      md_make_error (err, errno, "fork", "cannot fork");
      close (ready[0]);
      close (ready[1]);
      close (release[0]);
      close (release[1]);
      return -1;
    }
  if (child == 0)
    {
      char ok;
      close (ready[0]);
      close (release[1]);
      ok = unshare (CLONE_NEWUSER) == 0 ? 'y' : 'n';
      if (write (ready[1], &ok, 1) != 1)
        _exit (1);
      /* Returns when the parent closes its end, or dies. */
      while (read (release[0], &ok, 1) < 0 && errno == EINTR)
        ;
      _exit (0);
    }
  close (ready[1]);
  close (release[0]);
  *release_fd = release[1];
  if (read (ready[0], &byte, 1) != 1 || byte != 'y')
    {
      close (ready[0]);
      close (release[1]);
      waitpid (child, NULL, 0);
      return md_make_error_code (err, MD_E_UNSUPPORTED, "cannot create a user namespace");
    }
  close (ready[0]);
  return child;
}

int
md_open_mapped_userns (const char *uid_map, const char *gid_map, md_error_t *err)
{
  char path[64];
  int release_fd = -1;
  int userns_fd = -1;
  pid_t child;

  child = spawn_userns_holder (&release_fd, err);
  if (child < 0)
    return -1;
  if (md_write_proc_file (child, "uid_map", uid_map, err) == 0
      && md_write_proc_file (child, "gid_map", gid_map, err) == 0)
    {
      snprintf (path, sizeof (path), "/proc/%d/ns/user", (int) child);
      userns_fd = open (path, O_RDONLY | O_CLOEXEC);
      if (userns_fd < 0)
        md_make_error (err, errno, "open", "cannot open %s", path);
    }
  close (release_fd);
  kill (child, SIGKILL);
  waitpid (child, NULL, 0);
  return userns_fd;
}

int
md_check_idmap (const char *dir, md_error_t *err)
{
  cleanup_close int userns_fd = -1;
  cleanup_close int tree_fd = -1;
  struct md_mount_attr attr;

  /* A one-id map, never used to create a file. */
  userns_fd = md_open_mapped_userns ("0 65534 1\n", "0 65534 1\n", err);
  if (userns_fd < 0)
    return -1;
  tree_fd = (int) syscall (SYS_open_tree, AT_FDCWD, dir, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  if (tree_fd < 0)
    return md_make_error (err, errno, "open_tree", "cannot open %s", dir);
  memset (&attr, 0, sizeof (attr));
  attr.attr_set = MOUNT_ATTR_IDMAP;
  attr.userns_fd = (uint64_t) userns_fd;
  if (syscall (SYS_mount_setattr, tree_fd, "", AT_EMPTY_PATH, &attr, sizeof (attr)) < 0)
    return md_make_error (err, errno, "mount_setattr", "the filesystem of %s does not support idmapped mounts", dir);
  /* Closing the detached tree unmounts it: nothing stays behind. */
  return 0;
}
