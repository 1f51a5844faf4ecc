/* Unit tests of the launcher's pure parts, run without root by `npm test` (scripts/test.sh,
 * `make -C native/test check`): the command line's parsing (parse.c) and the JSON error
 * line (error.c). One line per test, "ok - NAME" or "not ok - NAME" with the failed
 * checks below it, then "N passed, N failed"; the exit status is 1 when any failed.
 * A tiny framework of its own: each test gets a struct t, and CHECK* record into it. */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "error.h"
#include "launcher.h"
#include "parse.h"

#define CAP_BIT(c) (UINT64_C (1) << (c))
#define MAX_ARGS 600

/* The test running: its failed checks, printed under its "not ok" line. */
struct t
{
  int failed_checks;
  char log[4096];
  size_t log_len;
};

static void
check_at (struct t *t, int ok, int line, const char *fmt, ...)
{
  size_t room = sizeof (t->log) - t->log_len;
  char what[1024];
  va_list ap;
  int n;

  if (ok)
    return;
  t->failed_checks++;
  va_start (ap, fmt);
  vsnprintf (what, sizeof (what), fmt, ap);
  va_end (ap);
  n = snprintf (t->log + t->log_len, room, "    unit.c:%d: %s\n", line, what);
  if (n > 0)
    t->log_len += (size_t) n < room ? (size_t) n : room - 1;
}

#define CHECK(t, cond) check_at ((t), (cond) ? 1 : 0, __LINE__, "%s", #cond)
#define CHECK_INT(t, actual, expected)                                                                                 \
  do                                                                                                                   \
    {                                                                                                                  \
      long long a_ = (long long) (actual), e_ = (long long) (expected);                                                \
      check_at ((t), a_ == e_, __LINE__, "%s is %lld, expected %lld", #actual, a_, e_);                                \
    }                                                                                                                  \
  while (0)
#define CHECK_STR(t, actual, expected)                                                                                 \
  do                                                                                                                   \
    {                                                                                                                  \
      const char *a_ = (actual), *e_ = (expected);                                                                     \
      check_at ((t), a_ != NULL && e_ != NULL ? strcmp (a_, e_) == 0 : a_ == e_, __LINE__,                             \
                "%s is \"%s\", expected \"%s\"", #actual, a_ ? a_ : "(null)", e_ ? e_ : "(null)");                     \
    }                                                                                                                  \
  while (0)

/* ---- the command line ----------------------------------------------------------- */

/* One md_parse_args over "mdocker-init" and the given arguments, on defaults. */
struct parsed
{
  struct md_opts opts;
  md_error_t err;
  char *argv[MAX_ARGS + 2];
  int argc;
  int rc;
};

static void
parse_argv (struct parsed *p)
{
  md_opts_defaults (&p->opts);
  memset (&p->err, 0, sizeof (p->err));
  p->argv[p->argc] = NULL;
  p->rc = md_parse_args (p->argc, p->argv, &p->opts, &p->err);
}

static void
push (struct parsed *p, const char *arg)
{
  if (p->argc < MAX_ARGS)
    p->argv[p->argc++] = (char *) arg;
}

/* parse (&p, "run", "--id", "x", "--", "/bin/sh", NULL) */
__attribute__ ((sentinel)) static void
parse (struct parsed *p, ...)
{
  va_list ap;
  const char *arg;

  p->argc = 0;
  push (p, "mdocker-init");
  va_start (ap, p);
  while ((arg = va_arg (ap, const char *)) != NULL)
    push (p, arg);
  va_end (ap);
  parse_argv (p);
}

/* "run OPT VALUE -- /bin/true": one option and its value. */
static void
parse_option (struct parsed *p, const char *opt, const char *value)
{
  parse (p, "run", opt, value, "--", "/bin/true", NULL);
}

static void
check_ok_at (struct t *t, const struct parsed *p, int line)
{
  check_at (t, p->rc == 0, line, "refused: %s (%s)", p->err.message, p->err.code);
}

static void
check_refused_at (struct t *t, const struct parsed *p, const char *code, const char *message, int line)
{
  check_at (t, p->rc < 0 && strcmp (p->err.code, code) == 0 && strcmp (p->err.message, message) == 0, line,
            "rc %d, %s \"%s\"; expected -1, %s \"%s\"", p->rc, p->err.code, p->err.message, code, message);
}

#define CHECK_OK(t, p) check_ok_at ((t), (p), __LINE__)
#define CHECK_REFUSED(t, p, code, message) check_refused_at ((t), (p), (code), (message), __LINE__)

static void
test_defaults (struct t *t)
{
  struct md_opts o;
  const uint64_t expected_caps = CAP_BIT (CAP_CHOWN) | CAP_BIT (CAP_DAC_OVERRIDE) | CAP_BIT (CAP_FOWNER)
                                 | CAP_BIT (CAP_FSETID) | CAP_BIT (CAP_SETUID) | CAP_BIT (CAP_SETGID)
                                 | CAP_BIT (CAP_KILL) | CAP_BIT (CAP_NET_BIND_SERVICE) | CAP_BIT (CAP_SYS_CHROOT);

  md_opts_defaults (&o);
  CHECK_INT (t, o.error_fd, -1);
  CHECK_INT (t, o.layer_size_bytes, 256ULL * 1024 * 1024);
  CHECK_INT (t, o.userns.mode, MD_USERNS_POOL);
  CHECK_INT (t, o.userns.pool_uid, 0x10000000);
  CHECK_INT (t, o.userns.pool_gid, 0x10000000);
  CHECK_INT (t, o.userns.pool_slots, 16384);
  CHECK_STR (t, o.userns.lock_dir, "/run/mdocker/userns");
  CHECK_INT (t, o.userns.given, 0);
  CHECK_INT (t, o.tty, 0);
  CHECK_INT (t, o.n_env, 0);
  CHECK_INT (t, o.n_cgroups, 0);
  CHECK_INT (t, o.sec.no_new_privs, 1);
  CHECK_INT (t, o.sec.seccomp, 1);
  CHECK_INT (t, o.sec.mask_paths, 1);
  CHECK_INT (t, o.sec.nofile, 1024);
  CHECK (t, o.sec.cap_keep == expected_caps);
  CHECK (t, !(o.sec.cap_keep & CAP_BIT (CAP_SYS_ADMIN)));
  CHECK (t, !(o.sec.cap_keep & CAP_BIT (CAP_NET_RAW)));
}

static void
test_options_and_command (struct t *t)
{
  struct parsed p;

  parse (&p, "run", "--id", "c1", "--hostname", "box", "--image", "/img", "--layer-dir", "/l", "--workdir", "/w",
         "--pid-file", "/p", "--exit-file", "/e", "--cleanup-dir", "/c", "--tty", "--die-with-parent", "--cgroup",
         "/sys/fs/cgroup/a", "--cgroup", "/sys/fs/cgroup/b", "--env", "A=1", "--env", "B=", "--", "/bin/sh", "-c",
         "echo --id", NULL);
  CHECK_OK (t, &p);
  CHECK_STR (t, p.opts.id, "c1");
  CHECK_STR (t, p.opts.hostname, "box");
  CHECK_STR (t, p.opts.image, "/img");
  CHECK_STR (t, p.opts.layer_dir, "/l");
  CHECK_STR (t, p.opts.workdir, "/w");
  CHECK_STR (t, p.opts.pid_file, "/p");
  CHECK_STR (t, p.opts.exit_file, "/e");
  CHECK_STR (t, p.opts.cleanup_dir, "/c");
  CHECK_INT (t, p.opts.tty, 1);
  CHECK_INT (t, p.opts.die_with_parent, 1);
  CHECK_INT (t, p.opts.n_cgroups, 2);
  CHECK_STR (t, p.opts.cgroups[1], "/sys/fs/cgroup/b");
  CHECK_INT (t, p.opts.n_env, 2);
  CHECK_STR (t, p.opts.env[0], "A=1");
  CHECK_STR (t, p.opts.env[1], "B=");
  CHECK (t, p.opts.argv == &p.argv[29]);
  CHECK_STR (t, p.opts.argv[0], "/bin/sh");
  CHECK_STR (t, p.opts.argv[2], "echo --id");
  CHECK (t, p.opts.argv[3] == NULL);
}

static void
test_command_ends_options (struct t *t)
{
  struct parsed p;

  /* The first argument that is not an option is the command; what follows is its own. */
  parse (&p, "run", "--id", "c1", "/bin/sh", "--tty", "--bogus", NULL);
  CHECK_OK (t, &p);
  CHECK_STR (t, p.opts.argv[0], "/bin/sh");
  CHECK_STR (t, p.opts.argv[1], "--tty");
  CHECK_INT (t, p.opts.tty, 0);

  /* After "--" even an argument that looks like an option is the command. */
  parse (&p, "run", "--", "--tty", NULL);
  CHECK_OK (t, &p);
  CHECK_STR (t, p.opts.argv[0], "--tty");
  CHECK_INT (t, p.opts.tty, 0);
}

static void
test_missing_command (struct t *t)
{
  struct parsed p;

  parse (&p, "run", NULL);
  CHECK_REFUSED (t, &p, "INVALID_ARGUMENT", "missing command");
  parse (&p, "run", "--id", "c1", NULL);
  CHECK_REFUSED (t, &p, "INVALID_ARGUMENT", "missing command");
  parse (&p, "run", "--id", "c1", "--", NULL);
  CHECK_REFUSED (t, &p, "INVALID_ARGUMENT", "missing command");
  parse (&p, "run", "--user", "1000:100", "--", "id", NULL);
  CHECK_OK (t, &p);
  CHECK_INT (t, p.opts.user_given, 1);
  CHECK_INT (t, p.opts.user_uid, 1000);
  CHECK_INT (t, p.opts.user_gid, 100);
  parse (&p, "run", "--user", "1000:100", "--groups", "10,20", "--", "id", NULL);
  CHECK_OK (t, &p);
  CHECK_INT (t, p.opts.n_user_groups, 2);
  CHECK_INT (t, p.opts.user_groups[1], 20);
  parse (&p, "run", "--user", "1:1", "--groups", "10,x", "--", "id", NULL);
  CHECK_REFUSED (t, &p, "INVALID_ARGUMENT", "invalid --groups 10,x: GID[,GID...]");
  parse (&p, "run", "--user", "1:1", "--groups", ",", "--", "id", NULL);
  CHECK_REFUSED (t, &p, "INVALID_ARGUMENT", "invalid --groups ,: GID[,GID...]");
  parse (&p, "run", "--user", "bob", "--", "id", NULL);
  CHECK_REFUSED (t, &p, "INVALID_ARGUMENT", "invalid --user bob: UID:GID");
  parse (&p, "run", "--user", "1:", "--", "id", NULL);
  CHECK_REFUSED (t, &p, "INVALID_ARGUMENT", "invalid --user 1:: UID:GID");
  parse (&p, "run", "--tty", NULL);
  CHECK_REFUSED (t, &p, "INVALID_ARGUMENT", "missing command");
}

static void
test_missing_values (struct t *t)
{
  static const char *const options[] = { "--id",      "--image",    "--layer-size", "--cgroup", "--env",
                                         "--cap-add", "--cap-drop", "--nofile",     "--userns", "--error-fd" };
  struct parsed p;
  size_t i;

  for (i = 0; i < sizeof (options) / sizeof (options[0]); i++)
    {
      char message[64];

      snprintf (message, sizeof (message), "option %s needs a value", options[i]);
      parse (&p, "run", options[i], NULL);
      CHECK_REFUSED (t, &p, "INVALID_ARGUMENT", message);
    }

  /* An empty value is no value for the security options. */
  parse_option (&p, "--cap-add", "");
  CHECK_REFUSED (t, &p, "INVALID_ARGUMENT", "option --cap-add needs a value");
  parse_option (&p, "--seccomp", "");
  CHECK_REFUSED (t, &p, "INVALID_ARGUMENT", "option --seccomp needs a value");
}

static void
test_unknown_option (struct t *t)
{
  struct parsed p;

  parse_option (&p, "--bogus", "x");
  CHECK_REFUSED (t, &p, "INVALID_ARGUMENT", "unknown option --bogus");
  parse_option (&p, "--ID", "x");
  CHECK_REFUSED (t, &p, "INVALID_ARGUMENT", "unknown option --ID");
}

static void
test_layer_size (struct t *t)
{
  static const char *const refused[] = {
    "",
    "-1",
    "0",
    "1048575", /* below 1 MiB */
    "64m",     /* bytes only: the TypeScript side converts units */
    "1k",
    "18446744073709551616", /* 2^64 */
    "99999999999999999999",
    "99999999999999999999k",
    "1048576 ",
    "0x100000",
    " -1", /* strtoull would take it as 2^64-1 */
    "+1048576",
  };
  struct parsed p;
  size_t i;

  parse_option (&p, "--layer-size", "1048576");
  CHECK_OK (t, &p);
  CHECK_INT (t, p.opts.layer_size_bytes, 1048576);
  parse_option (&p, "--layer-size", "18446744073709551615");
  CHECK_OK (t, &p);
  CHECK (t, p.opts.layer_size_bytes == 18446744073709551615ULL);

  for (i = 0; i < sizeof (refused) / sizeof (refused[0]); i++)
    {
      char message[96];

      snprintf (message, sizeof (message), "invalid --layer-size %s: bytes, at least 1 MiB", refused[i]);
      parse_option (&p, "--layer-size", refused[i]);
      CHECK_REFUSED (t, &p, "INVALID_ARGUMENT", message);
    }
}

static void
test_parse_ull (struct t *t)
{
  unsigned long long n = 7;

  CHECK_INT (t, md_parse_ull ("0", &n), 0);
  CHECK_INT (t, n, 0);
  CHECK_INT (t, md_parse_ull ("007", &n), 0);
  CHECK_INT (t, n, 7);
  CHECK_INT (t, md_parse_ull ("18446744073709551615", &n), 0);
  CHECK (t, n == 18446744073709551615ULL);
  CHECK_INT (t, md_parse_ull ("18446744073709551616", &n), -1);
  CHECK_INT (t, md_parse_ull ("99999999999999999999k", &n), -1);
  CHECK_INT (t, md_parse_ull ("", &n), -1);
  CHECK_INT (t, md_parse_ull (NULL, &n), -1);
  CHECK_INT (t, md_parse_ull ("-0", &n), -1);
  CHECK_INT (t, md_parse_ull ("-1", &n), -1);
  CHECK_INT (t, md_parse_ull ("12abc", &n), -1);
  CHECK_INT (t, md_parse_ull ("1.5", &n), -1);
  /* strtoull skips leading spaces and takes a sign, and negates "-1" to 2^64-1. */
  CHECK_INT (t, md_parse_ull (" -1", &n), -1);
  CHECK_INT (t, md_parse_ull ("\t-1", &n), -1);
  CHECK_INT (t, md_parse_ull (" 5", &n), -1);
  CHECK_INT (t, md_parse_ull ("+5", &n), -1);
}

static void
test_pid (struct t *t)
{
  struct parsed p;

  parse_option (&p, "--pid", "2147483647");
  CHECK_OK (t, &p);
  CHECK_INT (t, p.opts.target_pid, 2147483647);
  parse_option (&p, "--pid", "0");
  CHECK_REFUSED (t, &p, "INVALID_ARGUMENT", "invalid --pid 0");
  parse_option (&p, "--pid", "2147483648");
  CHECK_REFUSED (t, &p, "INVALID_ARGUMENT", "invalid --pid 2147483648");
  parse_option (&p, "--pid", "-5");
  CHECK_REFUSED (t, &p, "INVALID_ARGUMENT", "invalid --pid -5");
}

static void
test_nofile (struct t *t)
{
  static const char *const refused[]
      = { "0", "1048577", "99999999999999999999", "18446744073709551616", "-1", "12abc", " 5", "4k" };
  struct parsed p;
  size_t i;

  parse_option (&p, "--nofile", "1");
  CHECK_OK (t, &p);
  CHECK_INT (t, p.opts.sec.nofile, 1);
  parse_option (&p, "--nofile", "1048576");
  CHECK_OK (t, &p);
  CHECK_INT (t, p.opts.sec.nofile, 1048576);

  for (i = 0; i < sizeof (refused) / sizeof (refused[0]); i++)
    {
      parse_option (&p, "--nofile", refused[i]);
      CHECK (t, p.rc < 0);
      CHECK_STR (t, p.err.code, "INVALID_ARGUMENT");
      CHECK (t, strncmp (p.err.message, "--nofile: expected a", 20) == 0);
      CHECK_INT (t, p.opts.sec.nofile, 1024);
    }
}

static void
test_booleans_and_seccomp (struct t *t)
{
  struct parsed p;

  parse (&p, "run", "--no-new-privs", "0", "--mask-paths", "false", "--seccomp", "unconfined", "--", "/bin/true", NULL);
  CHECK_OK (t, &p);
  CHECK_INT (t, p.opts.sec.no_new_privs, 0);
  CHECK_INT (t, p.opts.sec.mask_paths, 0);
  CHECK_INT (t, p.opts.sec.seccomp, 0);

  parse (&p, "run", "--no-new-privs", "TRUE", "--mask-paths", "1", "--seccomp", "default", "--", "/bin/true", NULL);
  CHECK_OK (t, &p);
  CHECK_INT (t, p.opts.sec.no_new_privs, 1);
  CHECK_INT (t, p.opts.sec.mask_paths, 1);
  CHECK_INT (t, p.opts.sec.seccomp, 1);

  parse_option (&p, "--no-new-privs", "yes");
  CHECK_REFUSED (t, &p, "INVALID_ARGUMENT", "--no-new-privs: expected 0 or 1, got \"yes\"");
  parse_option (&p, "--seccomp", "off");
  CHECK_REFUSED (t, &p, "INVALID_ARGUMENT", "--seccomp: expected default or unconfined, got \"off\"");
}

static void
test_capability_names (struct t *t)
{
  int cap;

  CHECK_INT (t, md_cap_from_name ("CHOWN"), CAP_CHOWN);
  CHECK_INT (t, md_cap_from_name ("SYS_ADMIN"), CAP_SYS_ADMIN);
  CHECK_INT (t, md_cap_from_name ("CAP_SYS_ADMIN"), CAP_SYS_ADMIN);
  CHECK_INT (t, md_cap_from_name ("cap_sys_admin"), CAP_SYS_ADMIN);
  CHECK_INT (t, md_cap_from_name ("Net_Raw"), CAP_NET_RAW);
  CHECK_INT (t, md_cap_from_name ("CHECKPOINT_RESTORE"), CAP_CHECKPOINT_RESTORE);

  CHECK_INT (t, md_cap_from_name ("FOO"), -1);
  CHECK_INT (t, md_cap_from_name (""), -1);
  CHECK_INT (t, md_cap_from_name ("CAP_"), -1);
  CHECK_INT (t, md_cap_from_name ("ALL"), -1); /* an option's value, no capability */
  CHECK_INT (t, md_cap_from_name ("SYS"), -1);
  CHECK_INT (t, md_cap_from_name ("SYS_ADMINX"), -1);
  CHECK_INT (t, md_cap_from_name ("CAP_CAP_SYS_ADMIN"), -1);
  CHECK_INT (t, md_cap_from_name ("21"), -1);

  CHECK_STR (t, md_cap_name (CAP_SYS_ADMIN), "SYS_ADMIN");
  CHECK (t, md_cap_name (-1) == NULL);
  CHECK (t, md_cap_name (64) == NULL);
  for (cap = 0; cap <= CAP_LAST_CAP; cap++)
    {
      const char *name = md_cap_name (cap);
      check_at (t, name != NULL && md_cap_from_name (name) == cap, __LINE__,
                "capability %d: name %s does not parse back", cap, name ? name : "(none)");
    }
}

static void
test_capability_options (struct t *t)
{
  const uint64_t all = ~UINT64_C (0);
  struct parsed p;
  uint64_t defaults;

  parse_option (&p, "--cap-add", "NET_RAW");
  CHECK_OK (t, &p);
  defaults = p.opts.sec.cap_base;
  CHECK (t, p.opts.sec.cap_keep == (defaults | CAP_BIT (CAP_NET_RAW)));

  /* Docker's rule: the order of --cap-add and --cap-drop does not matter. */
  parse (&p, "run", "--cap-drop", "ALL", "--cap-add", "CHOWN", "--", "/bin/true", NULL);
  CHECK_OK (t, &p);
  CHECK (t, p.opts.sec.cap_keep == CAP_BIT (CAP_CHOWN));
  parse (&p, "run", "--cap-add", "CHOWN", "--cap-drop", "ALL", "--", "/bin/true", NULL);
  CHECK_OK (t, &p);
  CHECK (t, p.opts.sec.cap_keep == CAP_BIT (CAP_CHOWN));

  parse (&p, "run", "--cap-drop", "cap_net_raw", "--cap-add", "all", "--", "/bin/true", NULL);
  CHECK_OK (t, &p);
  CHECK (t, p.opts.sec.cap_keep == (all & ~CAP_BIT (CAP_NET_RAW)));

  /* A capability both added and dropped is dropped. */
  parse (&p, "run", "--cap-drop", "KILL", "--cap-add", "KILL", "--", "/bin/true", NULL);
  CHECK_OK (t, &p);
  CHECK (t, p.opts.sec.cap_keep == (defaults & ~CAP_BIT (CAP_KILL)));

  parse_option (&p, "--cap-add", "FOO");
  CHECK_REFUSED (t, &p, "INVALID_ARGUMENT", "--cap-add: unknown capability FOO");
  parse_option (&p, "--cap-drop", "CAP_");
  CHECK_REFUSED (t, &p, "INVALID_ARGUMENT", "--cap-drop: unknown capability CAP_");
  parse_option (&p, "--cap-add", "SYS_ADMIN,NET_RAW");
  CHECK_REFUSED (t, &p, "INVALID_ARGUMENT", "--cap-add: unknown capability SYS_ADMIN,NET_RAW");
}

static void
test_userns (struct t *t)
{
  static const char *const bad_maps[] = {
    "0:100000:65536",  /* host root in the range */
    "100000:0:65536",  /* host root's group */
    "100000:100000:0", /* empty */
    "4294967295:1:1",  /* (uid_t) -1 */
    "4294967294:1:2",  /* past it */
    "4294967296:1:1",  /* past 32 bits */
    "1:2",             /* two numbers */
    "1:2:3:4",         /* four */
    "a:b:c",           /* not numbers */
    "-1:1:1",          /* negative */
    "99999999999999999999:1:1",
    "",
  };
  struct parsed p;
  size_t i;

  parse_option (&p, "--userns", "host");
  CHECK_OK (t, &p);
  CHECK_INT (t, p.opts.userns.mode, MD_USERNS_HOST);
  CHECK_INT (t, p.opts.userns.given, 1);
  parse_option (&p, "--userns", "private");
  CHECK_OK (t, &p);
  CHECK_INT (t, p.opts.userns.mode, MD_USERNS_POOL);
  parse_option (&p, "--userns", "shared");
  CHECK_REFUSED (t, &p, "INVALID_ARGUMENT", "invalid --userns shared: host or private");

  parse_option (&p, "--userns-map", "100000:200000:65536");
  CHECK_OK (t, &p);
  CHECK_INT (t, p.opts.userns.mode, MD_USERNS_MAP);
  CHECK_INT (t, p.opts.userns.host_uid, 100000);
  CHECK_INT (t, p.opts.userns.host_gid, 200000);
  CHECK_INT (t, p.opts.userns.count, 65536);
  parse_option (&p, "--userns-map", "4294967294:4294967294:1");
  CHECK_OK (t, &p);
  for (i = 0; i < sizeof (bad_maps) / sizeof (bad_maps[0]); i++)
    {
      char message[160];

      snprintf (message, sizeof (message), "invalid --userns-map %s: UID:GID:COUNT, host ids from 1, below 2^32-1",
                bad_maps[i]);
      parse_option (&p, "--userns-map", bad_maps[i]);
      CHECK_REFUSED (t, &p, "INVALID_ARGUMENT", message);
    }

  parse_option (&p, "--userns-pool", "65536:65536:2");
  CHECK_OK (t, &p);
  CHECK_INT (t, p.opts.userns.mode, MD_USERNS_POOL);
  CHECK_INT (t, p.opts.userns.pool_uid, 65536);
  CHECK_INT (t, p.opts.userns.pool_slots, 2);
  parse_option (&p, "--userns-pool", "1:1:65535");
  CHECK_OK (t, &p);
  parse_option (&p, "--userns-pool", "1:1:0");
  CHECK (t, p.rc < 0);
  parse_option (&p, "--userns-pool", "1:1:65536"); /* 2^32 ids */
  CHECK (t, p.rc < 0);
  parse_option (&p, "--userns-pool", "65537:1:65535"); /* would end past 2^32-1 */
  CHECK (t, p.rc < 0);
  parse_option (&p, "--userns-pool", "0:1:1");
  CHECK_REFUSED (t, &p, "INVALID_ARGUMENT",
                 "invalid --userns-pool 0:1:1: UID:GID:SLOTS of 65536 ids, from 1, below 2^32-1");

  parse_option (&p, "--userns-lock-dir", "/run/locks");
  CHECK_OK (t, &p);
  CHECK_STR (t, p.opts.userns.lock_dir, "/run/locks");
  CHECK_INT (t, p.opts.userns.given, 1);
  parse_option (&p, "--userns-lock-dir", "run/locks");
  CHECK_REFUSED (t, &p, "INVALID_ARGUMENT", "--userns-lock-dir must be absolute: run/locks");
}

static void
test_env_and_cgroup_limits (struct t *t)
{
  struct parsed p;
  int i;

  parse_option (&p, "--env", "NOEQUALS");
  CHECK_REFUSED (t, &p, "INVALID_ARGUMENT", "invalid --env NOEQUALS: expected KEY=VALUE");
  parse_option (&p, "--env", "=value");
  CHECK_REFUSED (t, &p, "INVALID_ARGUMENT", "invalid --env =value: expected KEY=VALUE");

  /* MD_MAX_ENV - 1 variables: the last slot is the environment's NULL. */
  p.argc = 0;
  push (&p, "mdocker-init");
  push (&p, "run");
  for (i = 0; i < MD_MAX_ENV - 1; i++)
    {
      push (&p, "--env");
      push (&p, "K=V");
    }
  push (&p, "/bin/true");
  parse_argv (&p);
  CHECK_OK (t, &p);
  CHECK_INT (t, p.opts.n_env, MD_MAX_ENV - 1);
  p.argv[p.argc - 1] = (char *) "--env";
  push (&p, "K=V");
  push (&p, "/bin/true");
  parse_argv (&p);
  CHECK_REFUSED (t, &p, "INVALID_ARGUMENT", "too many --env options");

  p.argc = 0;
  push (&p, "mdocker-init");
  push (&p, "run");
  for (i = 0; i < MD_MAX_CGROUPS; i++)
    {
      push (&p, "--cgroup");
      push (&p, "/sys/fs/cgroup/x");
    }
  push (&p, "/bin/true");
  parse_argv (&p);
  CHECK_OK (t, &p);
  CHECK_INT (t, p.opts.n_cgroups, MD_MAX_CGROUPS);
  p.argv[p.argc - 1] = (char *) "--cgroup";
  push (&p, "/sys/fs/cgroup/x");
  push (&p, "/bin/true");
  parse_argv (&p);
  CHECK_REFUSED (t, &p, "INVALID_ARGUMENT", "too many --cgroup options");
}

static void
test_error_fd (struct t *t)
{
  struct parsed p;
  int fds[2];
  char number[16];

  if (pipe (fds) < 0)
    {
      check_at (t, 0, __LINE__, "pipe: %s", strerror (errno));
      return;
    }
  snprintf (number, sizeof (number), "%d", fds[1]);
  parse_option (&p, "--error-fd", number);
  CHECK_OK (t, &p);
  CHECK_INT (t, p.opts.error_fd, fds[1]);
  CHECK (t, fcntl (fds[1], F_GETFD) & FD_CLOEXEC);

  close (fds[0]);
  close (fds[1]);
  parse_option (&p, "--error-fd", number); /* closed now */
  CHECK (t, p.rc < 0);
  CHECK_STR (t, p.err.code, "INVALID_ARGUMENT");
  parse_option (&p, "--error-fd", "-1");
  CHECK_REFUSED (t, &p, "INVALID_ARGUMENT", "invalid --error-fd -1: not an open fd");
  parse_option (&p, "--error-fd", "4294967296");
  CHECK_REFUSED (t, &p, "INVALID_ARGUMENT", "invalid --error-fd 4294967296: not an open fd");
}

static void
test_error_file (struct t *t)
{
  char dir[] = "/tmp/mdocker-unit-XXXXXX";
  char path[64], link_path[64], missing[64];
  struct parsed p;
  struct stat st;

  if (mkdtemp (dir) == NULL)
    {
      check_at (t, 0, __LINE__, "mkdtemp: %s", strerror (errno));
      return;
    }
  snprintf (path, sizeof (path), "%s/error", dir);
  snprintf (link_path, sizeof (link_path), "%s/link", dir);
  snprintf (missing, sizeof (missing), "%s/no/error", dir);

  parse_option (&p, "--error-file", path);
  CHECK_OK (t, &p);
  CHECK (t, p.opts.error_fd >= 0);
  CHECK (t, stat (path, &st) == 0 && (st.st_mode & 0777) == 0600);
  if (p.opts.error_fd >= 0)
    close (p.opts.error_fd);

  /* O_NOFOLLOW: a symlink planted at the path does not redirect the write. */
  CHECK (t, symlink (path, link_path) == 0);
  parse_option (&p, "--error-file", link_path);
  CHECK (t, p.rc < 0);
  CHECK_STR (t, p.err.code, "SYSCALL");
  CHECK_STR (t, p.err.syscall, "open");
  CHECK_INT (t, p.err.errno_value, ELOOP);

  parse_option (&p, "--error-file", missing);
  CHECK (t, p.rc < 0);
  CHECK_INT (t, p.err.errno_value, ENOENT);

  unlink (link_path);
  unlink (path);
  rmdir (dir);
}

/* md_check_opts after a successful parse of the arguments given. */
__attribute__ ((sentinel)) static int
check_opts (struct parsed *p, const char *verb, ...)
{
  va_list ap;
  const char *arg;

  p->argc = 0;
  push (p, "mdocker-init");
  push (p, verb);
  va_start (ap, verb);
  while ((arg = va_arg (ap, const char *)) != NULL)
    push (p, arg);
  va_end (ap);
  push (p, "--");
  push (p, "/bin/true");
  parse_argv (p);
  if (p->rc < 0)
    return p->rc;
  p->rc = md_check_opts (verb, &p->opts, &p->err);
  return p->rc;
}

#define NETWORK_TOGETHER                                                                                               \
  "--network-netns and --network-address go together (--network-hosts, -gateway and -dns with them)"

static void
test_rules_between_options (struct t *t)
{
  struct parsed p;
  int saved_stdin, null_fd;

  check_opts (&p, "run", "--image", "/i", "--layer-dir", "/l", NULL);
  CHECK_OK (t, &p);
  check_opts (&p, "run", "--rootfs", "/r", "--layer-dir", "/l", "--workdir", "/home", NULL);
  CHECK_OK (t, &p);
  check_opts (&p, "run", "--image", "/i", "--layer-dir", "/l", "--groups", "10", NULL);
  CHECK_REFUSED (t, &p, "INVALID_ARGUMENT", "--groups needs --user");
  check_opts (&p, "run", "--layer-dir", "/l", NULL);
  CHECK_REFUSED (t, &p, "INVALID_ARGUMENT", "run needs exactly one of --image, --image-layer and --rootfs");
  check_opts (&p, "run", "--image", "/i", "--rootfs", "/r", "--layer-dir", "/l", NULL);
  CHECK_REFUSED (t, &p, "INVALID_ARGUMENT", "run needs exactly one of --image, --image-layer and --rootfs");
  check_opts (&p, "run", "--image-layer", "/a", "--rootfs", "/r", "--layer-dir", "/l", NULL);
  CHECK_REFUSED (t, &p, "INVALID_ARGUMENT", "run needs exactly one of --image, --image-layer and --rootfs");
  check_opts (&p, "run", "--image", "/i", "--image-layer", "/a", "--layer-dir", "/l", NULL);
  CHECK_REFUSED (t, &p, "INVALID_ARGUMENT", "--image is one layer: use --image-layer for each");
  check_opts (&p, "run", "--image-layer", "/a", "--image-layer", "/b", "--layer-dir", "/l", NULL);
  CHECK_OK (t, &p);
  CHECK_INT (t, p.opts.n_image_layers, 2);
  CHECK_STR (t, p.opts.image_layers[0], "/a");
  CHECK_STR (t, p.opts.image_layers[1], "/b");
  check_opts (&p, "run", "--image", "/i", NULL);
  CHECK_REFUSED (t, &p, "INVALID_ARGUMENT", "run needs --layer-dir");
  check_opts (&p, "run", "--image", "/i", "--layer-dir", "/l", "--pid", "5", NULL);
  CHECK_REFUSED (t, &p, "INVALID_ARGUMENT", "--pid, --pid-start-time and --host-userns are for exec");
  check_opts (&p, "run", "--image", "/i", "--layer-dir", "/l", "--workdir", "home", NULL);
  CHECK_REFUSED (t, &p, "INVALID_ARGUMENT", "--workdir must be absolute: home");
  check_opts (&p, "run", "--image", "/i", "--layer-dir", "/l", "--network-netns", "/n", "--network-address",
              "10.89.0.2/24", "--network-hosts", "/h", NULL);
  CHECK_OK (t, &p);
  check_opts (&p, "run", "--image", "/i", "--layer-dir", "/l", "--network-netns", "/n", NULL);
  CHECK_REFUSED (t, &p, "INVALID_ARGUMENT", NETWORK_TOGETHER);
  check_opts (&p, "run", "--image", "/i", "--layer-dir", "/l", "--network-hosts", "/h", NULL);
  CHECK_REFUSED (t, &p, "INVALID_ARGUMENT", NETWORK_TOGETHER);
  check_opts (&p, "run", "--image", "/i", "--layer-dir", "/l", "--network-gateway", "10.89.0.1", NULL);
  CHECK_REFUSED (t, &p, "INVALID_ARGUMENT", NETWORK_TOGETHER);
  check_opts (&p, "run", "--image", "/i", "--layer-dir", "/l", "--network-netns", "/n", "--network-address",
              "10.89.0.2/24", "--network-dns", "10.0.0.2,1.1.1.1", "--network-gateway", "10.89.0.1", NULL);
  CHECK_OK (t, &p);
  check_opts (&p, "run", "--image", "/i", "--layer-dir", "/l", "--network-dns", "1.1.1.1\nnameserver 6.6.6.6", NULL);
  CHECK_REFUSED (t, &p, "INVALID_ARGUMENT", "invalid --network-dns 1.1.1.1\nnameserver 6.6.6.6: A.B.C.D[,A.B.C.D...]");
  check_opts (&p, "run", "--image", "/i", "--layer-dir", "/l", "--network-netns", "n", NULL);
  CHECK_REFUSED (t, &p, "INVALID_ARGUMENT", "--network-netns must be absolute: n");
  check_opts (&p, "exec", "--pid", "5", "--pid-start-time", "9", "--network-address", "10.89.0.2/24", NULL);
  CHECK_REFUSED (t, &p, "INVALID_ARGUMENT", "exec joins the container's network: no --network-*");

  check_opts (&p, "exec", "--pid", "5", "--pid-start-time", "9", "--env", "A=1", NULL);
  CHECK_OK (t, &p);
  check_opts (&p, "exec", NULL);
  CHECK_REFUSED (t, &p, "INVALID_ARGUMENT", "exec needs --pid");
  check_opts (&p, "exec", "--pid", "5", NULL);
  CHECK_REFUSED (t, &p, "INVALID_ARGUMENT", "exec needs --pid-start-time");
  check_opts (&p, "exec", "--pid", "5", "--pid-start-time", "0", NULL);
  CHECK_REFUSED (t, &p, "INVALID_ARGUMENT", "invalid --pid-start-time 0");
  check_opts (&p, "run", "--image", "/i", "--layer-dir", "/l", "--host-userns", NULL);
  CHECK_REFUSED (t, &p, "INVALID_ARGUMENT", "--pid, --pid-start-time and --host-userns are for exec");
  check_opts (&p, "exec", "--pid", "5", "--pid-start-time", "9", "--hostname", "h", NULL);
  CHECK_REFUSED (t, &p, "INVALID_ARGUMENT",
                 "exec joins a container: no --image, --image-layer, --rootfs, --layer-dir or --hostname");
  check_opts (&p, "exec", "--pid", "5", "--pid-start-time", "9", "--userns-pool", "65536:65536:1", NULL);
  CHECK_REFUSED (t, &p, "INVALID_ARGUMENT",
                 "exec joins the container's user namespace, whatever it is: no --userns options");

  /* --tty needs a terminal on stdin: here /dev/null, whatever ran the tests. */
  saved_stdin = dup (STDIN_FILENO);
  null_fd = open ("/dev/null", O_RDONLY | O_CLOEXEC);
  if (saved_stdin < 0 || null_fd < 0 || dup2 (null_fd, STDIN_FILENO) < 0)
    {
      check_at (t, 0, __LINE__, "cannot put /dev/null on stdin: %s", strerror (errno));
      return;
    }
  check_opts (&p, "exec", "--pid", "5", "--pid-start-time", "9", "--tty", NULL);
  CHECK_REFUSED (t, &p, "INVALID_ARGUMENT", "--tty given but stdin is not a terminal");
  dup2 (saved_stdin, STDIN_FILENO);
  close (saved_stdin);
  close (null_fd);
}

/* ---- the JSON error line -------------------------------------------------------- */

/* md_report_error's output on fd (to_stderr 0) or on stderr (to_stderr 1), into out. */
static int
report (const md_error_t *err, int to_stderr, char *out, size_t out_size)
{
  int fds[2], saved_stderr = -1;
  ssize_t n;

  if (pipe (fds) < 0)
    return -1;
  if (to_stderr)
    {
      saved_stderr = dup (STDERR_FILENO);
      dup2 (fds[1], STDERR_FILENO);
      md_report_error (err, -1, 1);
      dup2 (saved_stderr, STDERR_FILENO);
      close (saved_stderr);
    }
  else
    md_report_error (err, fds[1], 0);
  close (fds[1]);
  n = read (fds[0], out, out_size - 1);
  close (fds[0]);
  if (n < 0)
    return -1;
  out[n] = '\0';
  return 0;
}

static void
test_error_line_of_a_syscall (struct t *t)
{
  md_error_t err;
  char line[4096];

  CHECK_INT (t, md_make_error (&err, ENOENT, "open", "cannot open %s", "/x"), -1);
  CHECK_STR (t, err.code, "SYSCALL");
  CHECK_INT (t, report (&err, 0, line, sizeof (line)), 0);
  CHECK_STR (t, line,
             "{\"code\":\"SYSCALL\",\"errno\":2,\"syscall\":\"open\",\"message\":\"cannot open /x: No such file or "
             "directory\"}\n");
  CHECK_INT (t, report (&err, 1, line, sizeof (line)), 0);
  CHECK_STR (t, line, "mdocker-init: cannot open /x: No such file or directory\n");

  /* Not a syscall's failure: code RUNTIME, errno 0, no strerror. */
  md_make_error (&err, 0, NULL, "no cgroup");
  report (&err, 0, line, sizeof (line));
  CHECK_STR (t, line, "{\"code\":\"RUNTIME\",\"errno\":0,\"syscall\":\"\",\"message\":\"no cgroup\"}\n");

  md_make_error_code (&err, "NOT_ROOT", "mdocker-init must run as %s", "root");
  report (&err, 0, line, sizeof (line));
  CHECK_STR (t, line,
             "{\"code\":\"NOT_ROOT\",\"errno\":0,\"syscall\":\"\",\"message\":\"mdocker-init must run as root\"}\n");
  report (&err, 1, line, sizeof (line));
  CHECK_STR (t, line, "mdocker-init: mdocker-init must run as root\n");
}

static void
test_error_line_escapes (struct t *t)
{
  md_error_t err;
  char line[4096];

  md_make_error_code (&err, "INVALID_ARGUMENT", "invalid --env %s", "A=\"1\" \\ b");
  report (&err, 0, line, sizeof (line));
  CHECK_STR (t, line,
             "{\"code\":\"INVALID_ARGUMENT\",\"errno\":0,\"syscall\":\"\",\"message\":\"invalid --env A=\\\"1\\\" "
             "\\\\ b\"}\n");

  md_make_error_code (&err, "X", "tab\there\nnewline\r\x01\x1f end");
  report (&err, 0, line, sizeof (line));
  CHECK_STR (t, line,
             "{\"code\":\"X\",\"errno\":0,\"syscall\":\"\",\"message\":\"tab\\u0009here\\u000anewline\\u000d\\u0001"
             "\\u001f end\"}\n");

  /* UTF-8 and DEL are valid in a JSON string: passed through as they are. */
  md_make_error_code (&err, "X", "caf\xc3\xa9 \xe2\x9c\x93 \x7f");
  report (&err, 0, line, sizeof (line));
  CHECK_STR (t, line, "{\"code\":\"X\",\"errno\":0,\"syscall\":\"\",\"message\":\"caf\xc3\xa9 \xe2\x9c\x93 \x7f\"}\n");

  /* The human line on stderr is not escaped. */
  md_make_error_code (&err, "X", "a \"b\"\tc");
  report (&err, 1, line, sizeof (line));
  CHECK_STR (t, line, "mdocker-init: a \"b\"\tc\n");
}

static void
test_error_line_stays_whole_when_truncated (struct t *t)
{
  static const char prefix[] = "{\"code\":\"X\",\"errno\":0,\"syscall\":\"\",\"message\":\"";
  md_error_t err;
  char long_message[2000], line[8192];
  size_t len, i;

  /* A message longer than md_error_t holds is cut, and the line still ends. */
  memset (long_message, 'a', sizeof (long_message) - 1);
  long_message[sizeof (long_message) - 1] = '\0';
  md_make_error_code (&err, "X", "%s", long_message);
  CHECK_INT (t, strlen (err.message), sizeof (err.message) - 1);
  report (&err, 0, line, sizeof (line));
  len = strlen (line);
  CHECK (t, strncmp (line, prefix, sizeof (prefix) - 1) == 0);
  CHECK (t, len > 3 && strcmp (line + len - 3, "\"}\n") == 0);

  /* Every character escaped to six: the escaped text is cut between escapes, never in
   * one, and the line is still one whole JSON object. */
  memset (long_message, '\x01', sizeof (long_message) - 1);
  md_make_error_code (&err, "X", "%s", long_message);
  report (&err, 0, line, sizeof (line));
  len = strlen (line);
  CHECK (t, strncmp (line, prefix, sizeof (prefix) - 1) == 0);
  CHECK (t, len > 3 && strcmp (line + len - 3, "\"}\n") == 0);
  CHECK (t, strchr (line, '\x01') == NULL);
  CHECK_INT (t, (len - 3 - (sizeof (prefix) - 1)) % 6, 0);
  for (i = sizeof (prefix) - 1; i + 6 <= len - 3; i += 6)
    if (strncmp (line + i, "\\u0001", 6) != 0)
      {
        check_at (t, 0, __LINE__, "not an escape at %zu: %.6s", i, line + i);
        break;
      }

  /* A syscall name longer than its field is cut to fit. */
  md_make_error (&err, EPERM, "a_syscall_name_longer_than_thirty_two_bytes", "m");
  CHECK_INT (t, strlen (err.syscall), sizeof (err.syscall) - 1);
}

static void
test_error_line_not_written_without_fd (struct t *t)
{
  md_error_t err;
  int fds[2];
  char buf[8];

  md_make_error_code (&err, "X", "nothing");
  if (pipe2 (fds, O_NONBLOCK) < 0)
    {
      check_at (t, 0, __LINE__, "pipe2: %s", strerror (errno));
      return;
    }
  md_report_error (&err, -1, 0);
  close (fds[1]);
  CHECK_INT (t, read (fds[0], buf, sizeof (buf)), 0);
  close (fds[0]);
}

/* ---- runner --------------------------------------------------------------------- */

struct unit_test
{
  const char *name;
  void (*run) (struct t *t);
};

static void
test_egress_options (struct t *t)
{
  struct md_egress e;
  md_error_t err = { 0 };
  char *ok[] = { "--uplink",      "mdu1",           "--gateway",     "10.89.0.1/24",
                 "--uplink-peer", "10.89.0.254/30", "--uplink-host", "10.89.0.253/30" };
  char *twice[] = { "--uplink", "a", "--uplink", "b", "--uplink-peer", "x", "--uplink-host", "y" };
  char *unknown[] = { "--uplink", "a", "--gateway", "g", "--uplink-peer", "x", "--masquerade", "y" };

  CHECK_INT (t, md_parse_egress (ok, &e, &err), 0);
  CHECK_STR (t, e.uplink, "mdu1");
  CHECK_STR (t, e.gateway, "10.89.0.1/24");
  CHECK_STR (t, e.uplink_peer, "10.89.0.254/30");
  CHECK_STR (t, e.uplink_host, "10.89.0.253/30");
  CHECK_INT (t, md_parse_egress (twice, &e, &err), -1);
  CHECK_STR (t, err.code, MD_E_INVALID_ARGUMENT);
  CHECK (t, strstr (err.message, "--uplink given twice") != NULL);
  CHECK_INT (t, md_parse_egress (unknown, &e, &err), -1);
  CHECK (t, strstr (err.message, "unknown network-create option --masquerade") != NULL);
}

static const struct unit_test tests[] = {
  { "every option's default is the safe one", test_defaults },
  { "options fill md_opts and the command follows --", test_options_and_command },
  { "the first argument that is not an option starts the command", test_command_ends_options },
  { "no command is refused", test_missing_command },
  { "an option without its value is refused", test_missing_values },
  { "an unknown option is refused", test_unknown_option },
  { "--layer-size takes bytes from 1 MiB, and refuses units, signs and overflow", test_layer_size },
  { "md_parse_ull takes digits only, up to 2^64-1", test_parse_ull },
  { "--pid takes 1 to INT_MAX", test_pid },
  { "--nofile takes 1 to 1048576, and refuses overflow", test_nofile },
  { "--no-new-privs, --mask-paths and --seccomp take their words only", test_booleans_and_seccomp },
  { "capability names parse with or without CAP_, in any case, and nothing else does", test_capability_names },
  { "--cap-add and --cap-drop follow Docker's rules and refuse unknown names", test_capability_options },
  { "--userns options take host ids from 1 and below 2^32-1 only", test_userns },
  { "--env takes KEY=VALUE, and --env and --cgroup stop at their limits", test_env_and_cgroup_limits },
  { "--error-fd takes an open fd and makes it close-on-exec", test_error_fd },
  { "--error-file is created 0600 and never through a symlink", test_error_file },
  { "md_check_opts enforces the rules between options", test_rules_between_options },
  { "an error is one JSON line on the fd and one human line on stderr", test_error_line_of_a_syscall },
  { "the JSON line escapes quotes, backslashes and control characters", test_error_line_escapes },
  { "the JSON line stays whole when its message is cut", test_error_line_stays_whole_when_truncated },
  { "no fd, no JSON line", test_error_line_not_written_without_fd },
  { "network-create's egress options: each once, no other", test_egress_options },
};

/* Each test runs in a child of its own: a crash or a sanitizer's report in one is that
 * test's failure, and the others still run. The child prints its own line. */
#define EXIT_TEST_FAILED 3

static int
run_test (const struct unit_test *test)
{
  struct t t;
  pid_t child;
  int status;

  fflush (stdout);
  child = fork ();
  if (child < 0)
    {
      printf ("not ok - %s\n    fork: %s\n", test->name, strerror (errno));
      return -1;
    }
  if (child == 0)
    {
      memset (&t, 0, sizeof (t));
      test->run (&t);
      if (t.failed_checks == 0)
        printf ("ok - %s\n", test->name);
      else
        printf ("not ok - %s\n%s", test->name, t.log);
      fflush (stdout);
      _exit (t.failed_checks == 0 ? 0 : EXIT_TEST_FAILED);
    }
  while (waitpid (child, &status, 0) < 0)
    if (errno != EINTR)
      {
        printf ("not ok - %s\n    waitpid: %s\n", test->name, strerror (errno));
        return -1;
      }
  if (WIFEXITED (status) && WEXITSTATUS (status) == 0)
    return 0;
  if (!(WIFEXITED (status) && WEXITSTATUS (status) == EXIT_TEST_FAILED))
    {
      if (WIFSIGNALED (status))
        printf ("not ok - %s\n    killed by signal %d\n", test->name, WTERMSIG (status));
      else
        printf ("not ok - %s\n    exited %d (a sanitizer's report is above)\n", test->name, WEXITSTATUS (status));
    }
  return -1;
}

int
main (void)
{
  int passed = 0, failed = 0;
  size_t i;

  setvbuf (stdout, NULL, _IOLBF, 0);
  for (i = 0; i < sizeof (tests) / sizeof (tests[0]); i++)
    {
      if (run_test (&tests[i]) == 0)
        passed++;
      else
        failed++;
    }
  printf ("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
