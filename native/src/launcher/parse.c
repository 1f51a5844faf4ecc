/* Parsing the launcher's command line: every option's default, its value (numbers, id
 * ranges, capability names) into struct md_opts, and the rules between options. Kept
 * apart from what acts on them, so that native/test/unit.c runs all of it without
 * root: its only system calls are --error-fd's check and --error-file's open. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "launcher.h"
#include "parse.h"

#define CAP_BIT(c) (UINT64_C (1) << (c))

#define DEFAULT_LAYER_SIZE_BYTES (256ULL * 1024 * 1024)

/* The default user namespace pool, for direct use (launcher.ts always names one): 16384
 * slots of 65536 ids from 2^28 up, far above any login or /etc/subuid range a distro
 * hands out, and below 2^32-1, which is no id. */
#define DEFAULT_USERNS_POOL_BASE 0x10000000UL
#define DEFAULT_USERNS_POOL_SLOTS 16384UL
#define DEFAULT_USERNS_LOCK_DIR "/run/mdocker/userns"
#define MD_ID_LIMIT 0xffffffffUL /* (uid_t) -1 means "no change" to the kernel */

/* ---- security options ---------------------------------------------------------- */

/* runc's default set (CHOWN DAC_OVERRIDE FSETID FOWNER MKNOD NET_RAW SETGID SETUID
 * SETFCAP SETPCAP NET_BIND_SERVICE SYS_CHROOT KILL AUDIT_WRITE), trimmed to what a root
 * shell in a busybox lesson uses. Kept:
 *   CHOWN, FOWNER, FSETID  chown/chmod/touch of files root does not own, and chmod u+s
 *                          keeping its bit: the file-permission lessons. They act only
 *                          on files the container can already reach.
 *   DAC_OVERRIDE           root reads and writes any file of its own tree, as learners
 *                          expect of root; the host stays out of reach (pivot_root).
 *   SETUID, SETGID         `su bob`, `adduser`: dropping from root to a user.
 *   KILL                   root signals any process; the PID namespace hides all but the
 *                          container's own.
 *   NET_BIND_SERVICE       `httpd -p 80`, `nc -l -p 80`: ports below 1024, in the
 *                          container's own network namespace.
 *   SYS_CHROOT             the `chroot` applet, containers' ancestor. The classic
 *                          chroot escape only leads back to the container's root: the
 *                          host's was detached after pivot_root.
 * Dropped:
 *   MKNOD        /dev is a tmpfs holding bind mounts of an allowlist of host nodes;
 *                nothing may create another (a block device node would be raw access
 *                to a host disk). FIFOs need no capability, so mkfifo still works.
 *   NET_RAW      raw and packet sockets let a container forge packets and ARP-spoof
 *                its neighbours (CVE-2020-14386 was an AF_PACKET overflow reached this
 *                way). The price: busybox's ping (1.35) opens a raw socket only and
 *                says "permission denied"; `--cap-add NET_RAW` brings it back for a
 *                networking lesson. A ping using ICMP datagram sockets (iputils) needs
 *                no capability, only net.ipv4.ping_group_range (per network ns).
 *   SETPCAP      only changes capability sets (bounding, inheritable); a lesson never
 *                needs to, and it would let a process pass capabilities to non-root
 *                programs through the inheritable and ambient sets.
 *   SETFCAP      writes file capabilities (setcap), which busybox cannot use, and with
 *                no_new_privs they would grant nothing anyway.
 *   AUDIT_WRITE  the kernel refuses audit messages from outside the initial PID
 *                namespace (audit_netlink_ok), so it could do nothing here. */
#define MD_CAP_DEFAULT                                                                                                 \
  (CAP_BIT (CAP_CHOWN) | CAP_BIT (CAP_DAC_OVERRIDE) | CAP_BIT (CAP_FOWNER) | CAP_BIT (CAP_FSETID)                      \
   | CAP_BIT (CAP_SETUID) | CAP_BIT (CAP_SETGID) | CAP_BIT (CAP_KILL) | CAP_BIT (CAP_NET_BIND_SERVICE)                 \
   | CAP_BIT (CAP_SYS_CHROOT))

#define MD_CAP_ALL (~UINT64_C (0))

#define MD_NOFILE_DEFAULT 1024UL
/* The kernel's default fs.nr_open: a larger hard limit fails at setrlimit anyway. */
#define MD_NOFILE_MAX 1048576UL

static const char *const cap_names[] = {
  [CAP_CHOWN] = "CHOWN",
  [CAP_DAC_OVERRIDE] = "DAC_OVERRIDE",
  [CAP_DAC_READ_SEARCH] = "DAC_READ_SEARCH",
  [CAP_FOWNER] = "FOWNER",
  [CAP_FSETID] = "FSETID",
  [CAP_KILL] = "KILL",
  [CAP_SETGID] = "SETGID",
  [CAP_SETUID] = "SETUID",
  [CAP_SETPCAP] = "SETPCAP",
  [CAP_LINUX_IMMUTABLE] = "LINUX_IMMUTABLE",
  [CAP_NET_BIND_SERVICE] = "NET_BIND_SERVICE",
  [CAP_NET_BROADCAST] = "NET_BROADCAST",
  [CAP_NET_ADMIN] = "NET_ADMIN",
  [CAP_NET_RAW] = "NET_RAW",
  [CAP_IPC_LOCK] = "IPC_LOCK",
  [CAP_IPC_OWNER] = "IPC_OWNER",
  [CAP_SYS_MODULE] = "SYS_MODULE",
  [CAP_SYS_RAWIO] = "SYS_RAWIO",
  [CAP_SYS_CHROOT] = "SYS_CHROOT",
  [CAP_SYS_PTRACE] = "SYS_PTRACE",
  [CAP_SYS_PACCT] = "SYS_PACCT",
  [CAP_SYS_ADMIN] = "SYS_ADMIN",
  [CAP_SYS_BOOT] = "SYS_BOOT",
  [CAP_SYS_NICE] = "SYS_NICE",
  [CAP_SYS_RESOURCE] = "SYS_RESOURCE",
  [CAP_SYS_TIME] = "SYS_TIME",
  [CAP_SYS_TTY_CONFIG] = "SYS_TTY_CONFIG",
  [CAP_MKNOD] = "MKNOD",
  [CAP_LEASE] = "LEASE",
  [CAP_AUDIT_WRITE] = "AUDIT_WRITE",
  [CAP_AUDIT_CONTROL] = "AUDIT_CONTROL",
  [CAP_SETFCAP] = "SETFCAP",
  [CAP_MAC_OVERRIDE] = "MAC_OVERRIDE",
  [CAP_MAC_ADMIN] = "MAC_ADMIN",
  [CAP_SYSLOG] = "SYSLOG",
  [CAP_WAKE_ALARM] = "WAKE_ALARM",
  [CAP_BLOCK_SUSPEND] = "BLOCK_SUSPEND",
  [CAP_AUDIT_READ] = "AUDIT_READ",
  [CAP_PERFMON] = "PERFMON",
  [CAP_BPF] = "BPF",
  [CAP_CHECKPOINT_RESTORE] = "CHECKPOINT_RESTORE",
};

#define N_CAP_NAMES (sizeof (cap_names) / sizeof (cap_names[0]))

const char *
md_cap_name (int cap)
{
  return cap >= 0 && (size_t) cap < N_CAP_NAMES ? cap_names[cap] : NULL;
}

void
md_security_defaults (struct md_security *sec)
{
  memset (sec, 0, sizeof (*sec));
  sec->no_new_privs = 1;
  sec->seccomp = 1;
  sec->nofile = MD_NOFILE_DEFAULT;
  sec->mask_paths = 1;
  sec->cap_base = MD_CAP_DEFAULT;
  sec->cap_keep = MD_CAP_DEFAULT;
}

/* "SYS_ADMIN", "CAP_SYS_ADMIN", "cap_sys_admin": the capability's number, or -1. */
int
md_cap_from_name (const char *name)
{
  size_t i;

  if (strncasecmp (name, "CAP_", 4) == 0)
    name += 4;
  for (i = 0; i < N_CAP_NAMES; i++)
    if (cap_names[i] && strcasecmp (name, cap_names[i]) == 0)
      return (int) i;
  return -1;
}

static void
recompute_cap_keep (struct md_security *sec)
{
  uint64_t base = sec->cap_base;

  if (sec->cap_add_all)
    base = MD_CAP_ALL;
  else if (sec->cap_drop_all)
    base = 0;
  sec->cap_keep = (base | sec->cap_add) & ~sec->cap_drop;
}

static int
parse_cap_option (struct md_security *sec, bool add, const char *value, md_error_t *err)
{
  int cap;

  if (strcasecmp (value, "ALL") == 0 || strcasecmp (value, "CAP_ALL") == 0)
    {
      if (add)
        sec->cap_add_all = 1;
      else
        sec->cap_drop_all = 1;
      recompute_cap_keep (sec);
      return 1;
    }
  cap = md_cap_from_name (value);
  if (cap < 0)
    return md_make_error_code (err, MD_E_INVALID_ARGUMENT, "%s: unknown capability %s",
                               add ? "--cap-add" : "--cap-drop", value);
  if (add)
    sec->cap_add |= CAP_BIT (cap);
  else
    sec->cap_drop |= CAP_BIT (cap);
  recompute_cap_keep (sec);
  return 1;
}

static int
parse_bool (const char *opt, const char *value, int *out, md_error_t *err)
{
  if (strcmp (value, "1") == 0 || strcasecmp (value, "true") == 0)
    *out = 1;
  else if (strcmp (value, "0") == 0 || strcasecmp (value, "false") == 0)
    *out = 0;
  else
    return md_make_error_code (err, MD_E_INVALID_ARGUMENT, "%s: expected 0 or 1, got \"%s\"", opt, value);
  return 1;
}

int
md_security_parse_option (struct md_security *sec, const char *opt, const char *value, md_error_t *err)
{
  bool ours = strcmp (opt, "--cap-add") == 0 || strcmp (opt, "--cap-drop") == 0 || strcmp (opt, "--seccomp") == 0
              || strcmp (opt, "--no-new-privs") == 0 || strcmp (opt, "--nofile") == 0
              || strcmp (opt, "--mask-paths") == 0;

  if (!ours)
    return 0;
  if (value == NULL || value[0] == '\0')
    return md_make_error_code (err, MD_E_INVALID_ARGUMENT, "option %s needs a value", opt);

  if (strcmp (opt, "--cap-add") == 0)
    return parse_cap_option (sec, true, value, err);
  if (strcmp (opt, "--cap-drop") == 0)
    return parse_cap_option (sec, false, value, err);
  if (strcmp (opt, "--seccomp") == 0)
    {
      if (strcmp (value, "default") == 0)
        sec->seccomp = 1;
      else if (strcmp (value, "unconfined") == 0)
        sec->seccomp = 0;
      else
        return md_make_error_code (err, MD_E_INVALID_ARGUMENT, "--seccomp: expected default or unconfined, got \"%s\"",
                                   value);
      return 1;
    }
  if (strcmp (opt, "--no-new-privs") == 0)
    return parse_bool (opt, value, &sec->no_new_privs, err);
  if (strcmp (opt, "--mask-paths") == 0)
    return parse_bool (opt, value, &sec->mask_paths, err);

  /* --nofile */
  {
    char *end = NULL;
    unsigned long n;

    if (value[0] < '0' || value[0] > '9')
      return md_make_error_code (err, MD_E_INVALID_ARGUMENT, "--nofile: expected a positive number, got \"%s\"", value);
    errno = 0;
    n = strtoul (value, &end, 10);
    if (errno != 0 || end == value || *end != '\0' || n == 0 || n > MD_NOFILE_MAX)
      return md_make_error_code (err, MD_E_INVALID_ARGUMENT, "--nofile: expected a number from 1 to %lu, got \"%s\"",
                                 MD_NOFILE_MAX, value);
    sec->nofile = n;
    return 1;
  }
}

/* ---- the command line ---------------------------------------------------------- */

void
md_opts_defaults (struct md_opts *opts)
{
  memset (opts, 0, sizeof (*opts));
  opts->error_fd = -1;
  opts->layer_size_bytes = DEFAULT_LAYER_SIZE_BYTES;
  opts->userns.mode = MD_USERNS_POOL;
  opts->userns.pool_uid = DEFAULT_USERNS_POOL_BASE;
  opts->userns.pool_gid = DEFAULT_USERNS_POOL_BASE;
  opts->userns.pool_slots = DEFAULT_USERNS_POOL_SLOTS;
  opts->userns.lock_dir = DEFAULT_USERNS_LOCK_DIR;
  md_security_defaults (&opts->sec);
}

int
md_parse_ull (const char *s, unsigned long long *out)
{
  char *end;
  errno = 0;
  /* A digit first: strtoull skips spaces and takes a sign, and " -1" would be 2^64-1. */
  if (s == NULL || *s < '0' || *s > '9')
    return -1;
  *out = strtoull (s, &end, 10);
  return (errno || *end) ? -1 : 0;
}

/* "A:B:C", three decimal numbers. */
static int
parse_triple (const char *s, unsigned long *a, unsigned long *b, unsigned long *c)
{
  unsigned long long v[3];
  char buf[96], *part, *save = NULL;
  int i = 0;

  if (strlen (s) >= sizeof (buf))
    return -1;
  snprintf (buf, sizeof (buf), "%s", s);
  for (part = strtok_r (buf, ":", &save); part != NULL; part = strtok_r (NULL, ":", &save))
    if (i >= 3 || md_parse_ull (part, &v[i++]) < 0 || v[i - 1] > MD_ID_LIMIT)
      return -1;
  if (i != 3)
    return -1;
  *a = (unsigned long) v[0];
  *b = (unsigned long) v[1];
  *c = (unsigned long) v[2];
  return 0;
}

/* A range of host ids that holds no root and stays below (uid_t) -1. */
static int
host_range_ok (unsigned long first, unsigned long count)
{
  return first >= 1 && count >= 1 && count <= MD_ID_LIMIT - first;
}

/* Options that take no value. */
static int
is_flag (const char *opt)
{
  return strcmp (opt, "--tty") == 0 || strcmp (opt, "--die-with-parent") == 0 || strcmp (opt, "--host-userns") == 0;
}

int
md_parse_args (int argc, char **argv, struct md_opts *opts, md_error_t *err)
{
  int i;
  unsigned long long n;

  for (i = 2; i < argc; i++)
    {
      const char *opt = argv[i];
      const char *val;
      int r;

      if (strcmp (opt, "--") == 0)
        {
          i++;
          break;
        }
      if (strncmp (opt, "--", 2) != 0)
        break;
      if (is_flag (opt))
        {
          if (strcmp (opt, "--tty") == 0)
            opts->tty = 1;
          else if (strcmp (opt, "--host-userns") == 0)
            opts->target_host_userns = 1;
          else
            opts->die_with_parent = 1;
          continue;
        }
      if (i + 1 >= argc)
        return md_make_error_code (err, MD_E_INVALID_ARGUMENT, "option %s needs a value", opt);
      val = argv[++i];

      r = md_security_parse_option (&opts->sec, opt, val, err);
      if (r < 0)
        return r;
      if (r > 0)
        continue;

      if (strncmp (opt, "--userns", 8) == 0)
        opts->userns.given = 1;

      if (strcmp (opt, "--id") == 0)
        opts->id = val;
      else if (strcmp (opt, "--hostname") == 0)
        opts->hostname = val;
      else if (strcmp (opt, "--image") == 0 || strcmp (opt, "--image-layer") == 0)
        {
          if (opts->n_image_layers >= MD_MAX_IMAGE_LAYERS)
            return md_make_error_code (err, MD_E_INVALID_ARGUMENT, "more than %d image layers", MD_MAX_IMAGE_LAYERS);
          if (opt[7] == '\0')
            opts->image = val;
          opts->image_layers[opts->n_image_layers++] = val;
        }
      else if (strcmp (opt, "--user") == 0)
        {
          unsigned long uid, gid;
          char *end;
          errno = 0;
          uid = strtoul (val, &end, 10);
          if (errno || end == val || *end != ':' || !isdigit ((unsigned char) end[1]))
            return md_make_error_code (err, MD_E_INVALID_ARGUMENT, "invalid --user %s: UID:GID", val);
          gid = strtoul (end + 1, &end, 10);
          if (errno || *end != '\0' || uid >= MD_ID_LIMIT || gid >= MD_ID_LIMIT)
            return md_make_error_code (err, MD_E_INVALID_ARGUMENT, "invalid --user %s: UID:GID", val);
          opts->user_given = 1;
          opts->user_uid = uid;
          opts->user_gid = gid;
        }
      else if (strcmp (opt, "--groups") == 0)
        {
          char *part, *save = NULL;
          char list[MD_MAX_GROUPS * 11];
          unsigned long long gid;

          if (snprintf (list, sizeof (list), "%s", val) >= (int) sizeof (list))
            return md_make_error_code (err, MD_E_INVALID_ARGUMENT, "invalid --groups: at most %d groups",
                                       MD_MAX_GROUPS);
          opts->n_user_groups = 0;
          for (part = strtok_r (list, ",", &save); part; part = strtok_r (NULL, ",", &save))
            {
              if (md_parse_ull (part, &gid) < 0 || gid >= MD_ID_LIMIT)
                return md_make_error_code (err, MD_E_INVALID_ARGUMENT, "invalid --groups %s: GID[,GID...]", val);
              if (opts->n_user_groups == MD_MAX_GROUPS)
                return md_make_error_code (err, MD_E_INVALID_ARGUMENT, "invalid --groups: at most %d groups",
                                           MD_MAX_GROUPS);
              opts->user_groups[opts->n_user_groups++] = (unsigned long) gid;
            }
          if (opts->n_user_groups == 0)
            return md_make_error_code (err, MD_E_INVALID_ARGUMENT, "invalid --groups %s: GID[,GID...]", val);
        }
      else if (strcmp (opt, "--rootfs") == 0)
        opts->rootfs = val;
      else if (strcmp (opt, "--layer-dir") == 0)
        opts->layer_dir = val;
      else if (strcmp (opt, "--workdir") == 0)
        opts->workdir = val;
      else if (strcmp (opt, "--pid-file") == 0)
        opts->pid_file = val;
      else if (strcmp (opt, "--exit-file") == 0)
        opts->exit_file = val;
      else if (strcmp (opt, "--cleanup-dir") == 0)
        opts->cleanup_dir = val;
      else if (strcmp (opt, "--network-netns") == 0 || strcmp (opt, "--network-hosts") == 0)
        {
          if (val[0] != '/')
            return md_make_error_code (err, MD_E_INVALID_ARGUMENT, "%s must be absolute: %s", opt, val);
          if (opt[10] == 'n')
            opts->network_netns = val;
          else
            opts->network_hosts = val;
        }
      else if (strcmp (opt, "--network-address") == 0)
        opts->network_address = val;
      else if (strcmp (opt, "--network-gateway") == 0)
        opts->network_gateway = val;
      else if (strcmp (opt, "--network-dns") == 0)
        {
          if (strspn (val, "0123456789.,") != strlen (val) || val[0] == '\0' || strlen (val) > 200)
            return md_make_error_code (err, MD_E_INVALID_ARGUMENT, "invalid --network-dns %s: A.B.C.D[,A.B.C.D...]",
                                       val);
          opts->network_dns = val;
        }
      else if (strcmp (opt, "--userns") == 0)
        {
          if (strcmp (val, "host") == 0)
            opts->userns.mode = MD_USERNS_HOST;
          else if (strcmp (val, "private") == 0)
            opts->userns.mode = MD_USERNS_POOL;
          else
            return md_make_error_code (err, MD_E_INVALID_ARGUMENT, "invalid --userns %s: host or private", val);
        }
      else if (strcmp (opt, "--userns-map") == 0)
        {
          struct md_userns *u = &opts->userns;
          if (parse_triple (val, &u->host_uid, &u->host_gid, &u->count) < 0 || !host_range_ok (u->host_uid, u->count)
              || !host_range_ok (u->host_gid, u->count))
            return md_make_error_code (err, MD_E_INVALID_ARGUMENT,
                                       "invalid --userns-map %s: UID:GID:COUNT, host ids from 1, below 2^32-1", val);
          u->mode = MD_USERNS_MAP;
        }
      else if (strcmp (opt, "--userns-pool") == 0)
        {
          struct md_userns *u = &opts->userns;
          if (parse_triple (val, &u->pool_uid, &u->pool_gid, &u->pool_slots) < 0 || u->pool_slots < 1
              || u->pool_slots > MD_ID_LIMIT / MD_USERNS_SLOT_IDS
              || !host_range_ok (u->pool_uid, u->pool_slots * MD_USERNS_SLOT_IDS)
              || !host_range_ok (u->pool_gid, u->pool_slots * MD_USERNS_SLOT_IDS))
            return md_make_error_code (err, MD_E_INVALID_ARGUMENT,
                                       "invalid --userns-pool %s: UID:GID:SLOTS of 65536 ids, from 1, below 2^32-1",
                                       val);
          u->mode = MD_USERNS_POOL;
        }
      else if (strcmp (opt, "--userns-lock-dir") == 0)
        {
          if (val[0] != '/')
            return md_make_error_code (err, MD_E_INVALID_ARGUMENT, "--userns-lock-dir must be absolute: %s", val);
          opts->userns.lock_dir = val;
        }
      else if (strcmp (opt, "--layer-size") == 0)
        {
          if (md_parse_ull (val, &n) < 0 || n < 1024 * 1024)
            return md_make_error_code (err, MD_E_INVALID_ARGUMENT, "invalid --layer-size %s: bytes, at least 1 MiB",
                                       val);
          opts->layer_size_bytes = n;
        }
      else if (strcmp (opt, "--pid") == 0)
        {
          if (md_parse_ull (val, &n) < 0 || n < 1 || n > INT_MAX)
            return md_make_error_code (err, MD_E_INVALID_ARGUMENT, "invalid --pid %s", val);
          opts->target_pid = (pid_t) n;
        }
      else if (strcmp (opt, "--log-file") == 0)
        {
          if (val[0] != '/')
            return md_make_error_code (err, MD_E_INVALID_ARGUMENT, "--log-file must be absolute: %s", val);
          opts->log_file = val;
        }
      else if (strcmp (opt, "--log-max-bytes") == 0)
        {
          if (md_parse_ull (val, &n) < 0 || n < 1)
            return md_make_error_code (err, MD_E_INVALID_ARGUMENT, "invalid --log-max-bytes %s", val);
          opts->log_max_bytes = n;
        }
      else if (strcmp (opt, "--pid-start-time") == 0)
        {
          if (md_parse_ull (val, &n) < 0 || n < 1)
            return md_make_error_code (err, MD_E_INVALID_ARGUMENT, "invalid --pid-start-time %s", val);
          opts->target_start_time = n;
        }
      else if (strcmp (opt, "--error-fd") == 0)
        {
          if (md_parse_ull (val, &n) < 0 || n > INT_MAX || fcntl ((int) n, F_GETFD) < 0)
            return md_make_error_code (err, MD_E_INVALID_ARGUMENT, "invalid --error-fd %s: not an open fd", val);
          opts->error_fd = (int) n;
          /* It must never reach the container's command. */
          fcntl (opts->error_fd, F_SETFD, FD_CLOEXEC);
        }
      else if (strcmp (opt, "--error-file") == 0)
        {
          int fd = open (val, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
          if (fd < 0)
            return md_make_error (err, errno, "open", "cannot open --error-file %s", val);
          opts->error_fd = fd;
        }
      else if (strcmp (opt, "--cgroup") == 0)
        {
          if (opts->n_cgroups >= MD_MAX_CGROUPS)
            return md_make_error_code (err, MD_E_INVALID_ARGUMENT, "too many --cgroup options");
          opts->cgroups[opts->n_cgroups++] = val;
        }
      else if (strcmp (opt, "--env") == 0)
        {
          if (strchr (val, '=') == NULL || val[0] == '=')
            return md_make_error_code (err, MD_E_INVALID_ARGUMENT, "invalid --env %s: expected KEY=VALUE", val);
          if (opts->n_env >= MD_MAX_ENV - 1)
            return md_make_error_code (err, MD_E_INVALID_ARGUMENT, "too many --env options");
          opts->env[opts->n_env++] = val;
        }
      else
        return md_make_error_code (err, MD_E_INVALID_ARGUMENT, "unknown option %s", opt);
    }

  if (i >= argc)
    return md_make_error_code (err, MD_E_INVALID_ARGUMENT, "missing command");
  opts->argv = &argv[i];
  return 0;
}

int
md_check_opts (const char *verb, const struct md_opts *opts, md_error_t *err)
{
  if (strcmp (verb, "run") == 0)
    {
      if ((opts->n_image_layers == 0) == (opts->rootfs == NULL))
        return md_make_error_code (err, MD_E_INVALID_ARGUMENT,
                                   "run needs exactly one of --image, --image-layer and --rootfs");
      if (opts->image && opts->n_image_layers > 1)
        return md_make_error_code (err, MD_E_INVALID_ARGUMENT, "--image is one layer: use --image-layer for each");
      if (opts->layer_dir == NULL)
        return md_make_error_code (err, MD_E_INVALID_ARGUMENT, "run needs --layer-dir");
      if (opts->log_max_bytes && opts->log_file == NULL)
        return md_make_error_code (err, MD_E_INVALID_ARGUMENT, "--log-max-bytes needs --log-file");
      if ((opts->network_netns == NULL) != (opts->network_address == NULL)
          || (opts->network_netns == NULL
              && (opts->network_hosts != NULL || opts->network_gateway != NULL || opts->network_dns != NULL)))
        return md_make_error_code (
            err, MD_E_INVALID_ARGUMENT,
            "--network-netns and --network-address go together (--network-hosts, -gateway and -dns with them)");
      if (opts->target_pid || opts->target_start_time || opts->target_host_userns)
        return md_make_error_code (err, MD_E_INVALID_ARGUMENT,
                                   "--pid, --pid-start-time and --host-userns are for exec");
    }
  else
    {
      if (opts->target_pid == 0)
        return md_make_error_code (err, MD_E_INVALID_ARGUMENT, "exec needs --pid");
      /* A pid alone can name another process by the time we use it. */
      if (opts->target_start_time == 0)
        return md_make_error_code (err, MD_E_INVALID_ARGUMENT, "exec needs --pid-start-time");
      if (opts->n_image_layers || opts->rootfs || opts->layer_dir || opts->hostname)
        return md_make_error_code (
            err, MD_E_INVALID_ARGUMENT,
            "exec joins a container: no --image, --image-layer, --rootfs, --layer-dir or --hostname");
      if (opts->userns.given)
        return md_make_error_code (err, MD_E_INVALID_ARGUMENT,
                                   "exec joins the container's user namespace, whatever it is: no --userns options");
      if (opts->log_file)
        return md_make_error_code (err, MD_E_INVALID_ARGUMENT, "--log-file is for run");
      if (opts->network_netns || opts->network_address || opts->network_hosts || opts->network_gateway
          || opts->network_dns)
        return md_make_error_code (err, MD_E_INVALID_ARGUMENT, "exec joins the container's network: no --network-*");
    }
  if (opts->n_user_groups && !opts->user_given)
    return md_make_error_code (err, MD_E_INVALID_ARGUMENT, "--groups needs --user");
  if (opts->workdir && opts->workdir[0] != '/')
    return md_make_error_code (err, MD_E_INVALID_ARGUMENT, "--workdir must be absolute: %s", opts->workdir);
  if (opts->tty && !isatty (STDIN_FILENO))
    return md_make_error_code (err, MD_E_INVALID_ARGUMENT, "--tty given but stdin is not a terminal");
  return 0;
}

int
md_parse_egress (char **args, struct md_egress *egress, md_error_t *err)
{
  static const char *const names[] = { "--gateway", "--uplink", "--uplink-host", "--uplink-peer" };
  const char **slots[] = { &egress->gateway, &egress->uplink, &egress->uplink_host, &egress->uplink_peer };
  int i, k;

  memset (egress, 0, sizeof (*egress));
  for (i = 0; i < 8; i += 2)
    {
      for (k = 0; k < 4; k++)
        if (strcmp (args[i], names[k]) == 0)
          break;
      if (k == 4)
        return md_make_error_code (err, MD_E_INVALID_ARGUMENT, "unknown network-create option %s", args[i]);
      if (*slots[k] != NULL)
        return md_make_error_code (err, MD_E_INVALID_ARGUMENT, "%s given twice", args[i]);
      *slots[k] = args[i + 1];
    }
  return 0;
}
