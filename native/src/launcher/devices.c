/* The container's device allowlist on cgroup v2, where the v1 `devices` controller's
 * files are gone and the kernel asks a BPF_PROG_TYPE_CGROUP_DEVICE program instead (as
 * crun and runc do). The list is the one the v1 driver writes
 * (server/src/runtime/cgroups/v1.ts, V1_ALLOWED_DEVICES): the nodes mounts.c binds into
 * /dev, the devpts's ptmx and the ptys. A device node that reaches the container any
 * other way (a mknod with --cap-add MKNOD on a filesystem it mounted, a node in a
 * --rootfs) opens nothing: a block device there would be the host's disk. */
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "launcher.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

#define ANY_MINOR (-1)

struct device_rule
{
  int type; /* BPF_DEVCG_DEV_CHAR or _BLOCK */
  int major, minor;
  int access; /* BPF_DEVCG_ACC_*: never MKNOD */
};

static const struct device_rule allowed_devices[] = {
  { BPF_DEVCG_DEV_CHAR, 1, 3, BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE },           /* null */
  { BPF_DEVCG_DEV_CHAR, 1, 5, BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE },           /* zero */
  { BPF_DEVCG_DEV_CHAR, 1, 7, BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE },           /* full */
  { BPF_DEVCG_DEV_CHAR, 1, 8, BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE },           /* random */
  { BPF_DEVCG_DEV_CHAR, 1, 9, BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE },           /* urandom */
  { BPF_DEVCG_DEV_CHAR, 5, 0, BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE },           /* tty */
  { BPF_DEVCG_DEV_CHAR, 5, 2, BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE },           /* ptmx */
  { BPF_DEVCG_DEV_CHAR, 136, ANY_MINOR, BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE }, /* ptys: Unix98 slave */
  { BPF_DEVCG_DEV_CHAR, 137, ANY_MINOR, BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE }, /* majors 136..143 */
  { BPF_DEVCG_DEV_CHAR, 138, ANY_MINOR, BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE },
  { BPF_DEVCG_DEV_CHAR, 139, ANY_MINOR, BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE },
  { BPF_DEVCG_DEV_CHAR, 140, ANY_MINOR, BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE },
  { BPF_DEVCG_DEV_CHAR, 141, ANY_MINOR, BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE },
  { BPF_DEVCG_DEV_CHAR, 142, ANY_MINOR, BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE },
  { BPF_DEVCG_DEV_CHAR, 143, ANY_MINOR, BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE },
};

#define N_RULES (sizeof (allowed_devices) / sizeof (allowed_devices[0]))
/* 7 to decode the context, at most 8 per rule, 2 to deny. */
#define MAX_INSNS (7 + 8 * N_RULES + 2)

static struct bpf_insn
insn (uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm)
{
  struct bpf_insn i;
  memset (&i, 0, sizeof (i));
  i.code = code;
  i.dst_reg = dst & 0xf;
  i.src_reg = src & 0xf;
  i.off = off;
  i.imm = imm;
  return i;
}

/* r2 = access_type, r3 = its device type, r4 = its access bits, r5 = major, r6 = minor;
 * then per rule: if type, major (and minor) match and no access bit beyond the rule's
 * is asked for, return 1 (allow). Else 0. Jumps are forward only: the verifier sees a
 * loop-free program. */
static size_t
assemble (struct bpf_insn *p)
{
  size_t n = 0, r;

  p[n++] = insn (BPF_LDX | BPF_W | BPF_MEM, BPF_REG_2, BPF_REG_1, offsetof (struct bpf_cgroup_dev_ctx, access_type), 0);
  p[n++] = insn (BPF_ALU | BPF_MOV | BPF_X, BPF_REG_3, BPF_REG_2, 0, 0);
  p[n++] = insn (BPF_ALU | BPF_AND | BPF_K, BPF_REG_3, 0, 0, 0xffff);
  p[n++] = insn (BPF_ALU | BPF_MOV | BPF_X, BPF_REG_4, BPF_REG_2, 0, 0);
  p[n++] = insn (BPF_ALU | BPF_RSH | BPF_K, BPF_REG_4, 0, 0, 16);
  p[n++] = insn (BPF_LDX | BPF_W | BPF_MEM, BPF_REG_5, BPF_REG_1, offsetof (struct bpf_cgroup_dev_ctx, major), 0);
  p[n++] = insn (BPF_LDX | BPF_W | BPF_MEM, BPF_REG_6, BPF_REG_1, offsetof (struct bpf_cgroup_dev_ctx, minor), 0);
  for (r = 0; r < N_RULES; r++)
    {
      const struct device_rule *d = &allowed_devices[r];
      int16_t len = d->minor == ANY_MINOR ? 7 : 8, k = 0;

      p[n++] = insn (BPF_JMP | BPF_JNE | BPF_K, BPF_REG_3, 0, (int16_t) (len - ++k), d->type);
      p[n++] = insn (BPF_JMP | BPF_JNE | BPF_K, BPF_REG_5, 0, (int16_t) (len - ++k), d->major);
      if (d->minor != ANY_MINOR)
        p[n++] = insn (BPF_JMP | BPF_JNE | BPF_K, BPF_REG_6, 0, (int16_t) (len - ++k), d->minor);
      p[n++] = insn (BPF_ALU | BPF_MOV | BPF_X, BPF_REG_7, BPF_REG_4, 0, 0);
      p[n++] = insn (BPF_ALU | BPF_AND | BPF_K, BPF_REG_7, 0, 0, ~d->access);
      k += 2;
      p[n++] = insn (BPF_JMP | BPF_JNE | BPF_K, BPF_REG_7, 0, (int16_t) (len - ++k), 0);
      p[n++] = insn (BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 1);
      p[n++] = insn (BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
    }
  p[n++] = insn (BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0);
  p[n++] = insn (BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
  return n;
}

static int
bpf_prog_load (const struct bpf_insn *program, size_t n, char *log, size_t log_size)
{
  union bpf_attr attr;

  memset (&attr, 0, sizeof (attr));
  attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  attr.insn_cnt = (uint32_t) n;
  attr.insns = (uint64_t) (uintptr_t) program;
  attr.license = (uint64_t) (uintptr_t) "GPL";
  if (log)
    {
      attr.log_buf = (uint64_t) (uintptr_t) log;
      attr.log_size = (uint32_t) log_size;
      attr.log_level = 1;
    }
  return (int) syscall (SYS_bpf, BPF_PROG_LOAD, &attr, sizeof (attr));
}

static int
load_program (md_error_t *err)
{
  struct bpf_insn program[MAX_INSNS];
  char log[4096] = "";
  size_t n = assemble (program);
  int fd, saved;

  fd = bpf_prog_load (program, n, NULL, 0);
  if (fd >= 0)
    return fd;
  /* Again with the verifier's log, for the error (a log on success may overflow). */
  saved = errno;
  bpf_prog_load (program, n, log, sizeof (log));
  return md_make_error (err, saved, "bpf", "cannot load the cgroup device program%s%.200s", log[0] ? ": " : "", log);
}

int
md_cgroup_device_filter (const struct md_opts *opts, md_error_t *err)
{
  cleanup_close int prog = -1;
  size_t i;

  for (i = 0; i < opts->n_cgroups; i++)
    {
      cleanup_close int dir = -1;
      union bpf_attr attr;
      struct statfs st;

      if (statfs (opts->cgroups[i], &st) < 0)
        return md_make_error (err, errno, "statfs", "cannot stat the cgroup %s", opts->cgroups[i]);
      if (st.f_type != CGROUP2_SUPER_MAGIC)
        continue; /* v1: the runtime wrote the devices controller's files */
      if (prog < 0 && (prog = load_program (err)) < 0)
        return -1;
      dir = open (opts->cgroups[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (dir < 0)
        return md_make_error (err, errno, "open", "cannot open the cgroup %s", opts->cgroups[i]);
      /* ALLOW_MULTI: an ancestor's program (systemd's DevicePolicy) still runs too, and
       * the kernel allows a device only when every one of them does. The program stays
       * attached until the cgroup is removed. */
      memset (&attr, 0, sizeof (attr));
      attr.target_fd = (uint32_t) dir;
      attr.attach_bpf_fd = (uint32_t) prog;
      attr.attach_type = BPF_CGROUP_DEVICE;
      attr.attach_flags = BPF_F_ALLOW_MULTI;
      if (syscall (SYS_bpf, BPF_PROG_ATTACH, &attr, sizeof (attr)) < 0)
        return md_make_error (err, errno, "bpf", "cannot attach the device program to the cgroup %s", opts->cgroups[i]);
    }
  return 0;
}
