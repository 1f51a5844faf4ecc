/* The launcher's options and its two verbs. main.c parses, run.c and exec.c act,
 * mounts.c builds the container's filesystem, proc.c holds what both verbs share:
 * supervision of the child, cgroup joining, files written atomically. */
#ifndef MD_LAUNCHER_H
#define MD_LAUNCHER_H

#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mount.h> /* first: glibc 2.36+ defines the mount API's names itself */
#include <sys/types.h>

#include "error.h"
#include "security.h"

/* The new mount API (5.2; mount_setattr 5.12), spelled out: older libcs lack it, and
 * <linux/mount.h> clashes with some <sys/mount.h>. */
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef OPEN_TREE_CLOEXEC
#define OPEN_TREE_CLOEXEC O_CLOEXEC
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif
#ifndef MOVE_MOUNT_T_EMPTY_PATH
#define MOVE_MOUNT_T_EMPTY_PATH 0x00000040
#endif
#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x00000001
#define MOUNT_ATTR_NOSUID 0x00000002
#define MOUNT_ATTR_NODEV 0x00000004
#define MOUNT_ATTR_NOEXEC 0x00000008
#endif
#ifndef MOUNT_ATTR_IDMAP
#define MOUNT_ATTR_IDMAP 0x00100000
#endif
#ifndef FSOPEN_CLOEXEC
#define FSOPEN_CLOEXEC 0x00000001
#define FSMOUNT_CLOEXEC 0x00000001
#define FSCONFIG_SET_STRING 1
#define FSCONFIG_CMD_CREATE 6
#endif

/* The kernel's struct mount_attr (5.12). */
struct md_mount_attr
{
  uint64_t attr_set;
  uint64_t attr_clr;
  uint64_t propagation;
  uint64_t userns_fd;
};

#define MD_MAX_CGROUPS 16
#define MD_MAX_ENV 256
/* Supplementary groups of --user: Docker's images rarely list a user in more than a few. */
#define MD_MAX_GROUPS 64

/* An image's layers are overlay lowers whose mount fds travel to the child in one
 * SCM_RIGHTS message (the kernel takes at most 253). */
#define MD_MAX_IMAGE_LAYERS 128

/* The run launcher keeps the container's upper layer (the overlay's upper/, an O_PATH
 * fd the child sends once its root is built) at this fd number for the container's
 * life: after pivot_root the layer's tmpfs has no path anywhere, and the runtime takes
 * it from here with pidfd_getfd to commit it (the addon's takeContainerLayer). Low
 * enough for any RLIMIT_NOFILE, above the few fds the launcher holds. */
#define MD_LAYER_KEEP_FD 64

/* Container ids 0..65535 (nobody is 65534) map to one slot of this many host ids. */
#define MD_USERNS_SLOT_IDS 65536UL

enum md_userns_mode
{
  MD_USERNS_POOL = 0, /* default: the first free slot of a pool, held by a lock */
  MD_USERNS_MAP,      /* an explicit range the caller keeps unique */
  MD_USERNS_HOST,     /* no user namespace: container root is host root (teaching) */
};

/* The user namespace `run` creates: container uid/gid 0..count-1 are host
 * host_uid.. and host_gid.., never host root. */
struct md_userns
{
  enum md_userns_mode mode;
  unsigned long host_uid, host_gid, count; /* MD_USERNS_MAP, or the slot the pool gave */
  unsigned long pool_uid, pool_gid, pool_slots;
  const char *lock_dir; /* MD_USERNS_POOL: <lock_dir>/<host uid> is flock'ed per slot */
  int given;            /* some --userns* option was given (exec refuses them) */
};

struct md_opts
{
  const char *id;
  const char *hostname;
  const char *image;                             /* --image: a read-only lower dir (run) */
  const char *image_layers[MD_MAX_IMAGE_LAYERS]; /* run: the lowers, bottom first (--image or --image-layer) */
  size_t n_image_layers;
  const char *rootfs;    /* plain read-write dir (run) */
  const char *layer_dir; /* where the layer tmpfs goes, inside the container's mount ns */
  unsigned long long layer_size_bytes;
  const char *cgroups[MD_MAX_CGROUPS];
  size_t n_cgroups;
  const char *env[MD_MAX_ENV];
  size_t n_env;
  const char *workdir;
  int tty;
  int error_fd;
  const char *pid_file;
  const char *exit_file;
  const char *cleanup_dir; /* removed (recursively) after the container is gone: --rm */
  int die_with_parent;
  struct md_userns userns;              /* run */
  pid_t target_pid;                     /* exec: the container's init */
  unsigned long long target_start_time; /* exec: its start time (/proc/PID/stat field 22) */
  int target_host_userns;               /* exec: the container shares the host's user namespace */
  const char *log_file;                 /* run: the output goes here, through a relay (log.c) */
  unsigned long long log_max_bytes;     /* run: the log's size cap (default 8 MiB) */
  const char *network_netns;            /* run: the network's namespace (nsfs mount) to join */
  const char *network_address;          /* run: eth0's address, A.B.C.D/LEN */
  const char *network_hosts;            /* run: the network's hosts file, bound read-only on /etc/hosts */
  const char *network_gateway;          /* run: eth0's default route, A.B.C.D (a network with egress) */
  const char *network_dns;              /* run: /etc/resolv.conf's nameservers, A.B.C.D[,A.B.C.D...] */
  int user_given;                       /* --user: the command runs as user_uid:user_gid */
  unsigned long user_uid, user_gid;
  unsigned long user_groups[MD_MAX_GROUPS]; /* --groups: its supplementary groups */
  size_t n_user_groups;
  char **argv; /* the command */
  struct md_security sec;
};

int md_run (const struct md_opts *opts, md_error_t *err);
int md_exec (const struct md_opts *opts, md_error_t *err);
/* log.c: starts the relay that keeps --log-file to --log-max-bytes, and points this
 * process's stdout and stderr (and so the container's) at it. */
int md_start_log_relay (const struct md_opts *opts, md_error_t *err);
/* 0 when DIR's filesystem takes an idmapped mount (idmap.c). */
int md_check_idmap (const char *dir, md_error_t *err);
/* An fd of a new user namespace with these maps ("INSIDE OUTSIDE COUNT\n"), to idmap a
 * mount to; no process lives in it (idmap.c). */
int md_open_mapped_userns (const char *uid_map, const char *gid_map, md_error_t *err);

/* network.c: a network's namespace held at netns_path with its bridge; its removal;
 * a container's lo up and (--network-netns) its veth pair and eth0, made by the parent
 * while the child builds its root, before the child's command. */
struct md_egress
{
  const char *gateway;     /* the bridge's address, A.B.C.D/LEN */
  const char *uplink;      /* the uplink's name in the host's namespace */
  const char *uplink_host; /* its address there, A.B.C.D/30 */
  const char *uplink_peer; /* the address of its end in the network's namespace, A.B.C.D/30 */
};
/* egress: NULL for a network that reaches nothing outside itself. */
int md_network_create (const char *netns_path, const struct md_egress *egress, md_error_t *err);
void md_network_remove (const char *netns_path);
int md_network_attach (const struct md_opts *opts, pid_t child, md_error_t *err);

/* Where a --cgroup directory goes in the container: named as the host names its
 * hierarchy, by the cgroup mount point holding it (the longest one that is a prefix of
 * the directory): /sys/fs/cgroup/pids/mdocker/ID → "pids"; a v2 directory → "". */
struct md_cgroup_mount
{
  char name[64]; /* the hierarchy's mount point's name: "pids", "cpu,cpuacct"; "" for v2 */
  size_t dir;    /* its directory: opts->cgroups[dir] */
};

/* mounts.c: the --cgroup directories' places, from /proc/self/mountinfo (the parent's,
 * the same mounts the child's namespace was copied from); returns how many. */
size_t md_cgroup_mounts_of (const struct md_opts *opts, struct md_cgroup_mount *out, size_t max);

/* mounts.c: in the child, in its new mount namespace; ends inside the new root.
 * layer_fd: --layer-dir, opened by the child before it became container root (the
 * host's state directory is closed to it afterwards). image_fds: the detached mounts of
 * the image's layers (bottom first) or of the rootfs that the parent made (idmapped with
 * a user namespace). cgroup_mounts: md_cgroup_mounts_of's answer, from the parent.
 * hosts_fd: --network-hosts, opened as layer_fd was, or -1.
 * upper_fd: set to an O_PATH fd of the overlay's upper/ (the caller's to close), or -1
 * for a --rootfs, which has none. */
int md_setup_rootfs (const struct md_opts *opts, int layer_fd, const int *image_fds, size_t n_image_fds,
                     const struct md_cgroup_mount *cgroup_mounts, size_t n_cgroup_mounts, int hosts_fd, int *upper_fd,
                     md_error_t *err);

/* devices.c: attaches the device allowlist program to each cgroup v2 directory of
 * --cgroup (v1's devices controller is written by the runtime). */
int md_cgroup_device_filter (const struct md_opts *opts, md_error_t *err);

/* proc.c */
int md_join_cgroups (const struct md_opts *opts, pid_t pid, md_error_t *err);
void md_remove_cgroups (const struct md_opts *opts);
void md_remove_tree (const char *dir);
int md_write_file_atomic (const char *path, const char *content, md_error_t *err);
int md_write_proc_file (pid_t pid, const char *name, const char *content, md_error_t *err);
int md_give_up_tty (md_error_t *err);
/* In a process that entered a user namespace as host root (unmapped there): become its
 * root, uid and gid 0 with group 0, then re-arm PR_SET_PDEATHSIG (a credential change
 * clears it) and check that the parent still holds alive_fd open. */
int md_become_container_root (int alive_fd, md_error_t *err);
int md_block_forwarded_signals (sigset_t *old_mask, md_error_t *err);
/* Waits for child, forwarding signals to it; returns Docker's exit code for it. */
int md_supervise (pid_t child, md_error_t *err);
/* In the child, last steps: session, terminal, signals, fds, security, env, exec.
 * Never returns: exits 126/127 with a reported error when exec fails. */
__attribute__ ((noreturn)) void md_exec_command (const struct md_opts *opts, const sigset_t *old_mask);
/* Reports err on the error fd and exits 125: for the child, whose failures end it. */
__attribute__ ((noreturn)) void md_child_fail (const struct md_opts *opts, const md_error_t *err);

#endif
