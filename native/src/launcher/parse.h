/* Parsing the launcher's command line (parse.c). Touches no kernel state but for
 * --error-fd's check and --error-file's open, so native/test/unit.c runs it unprivileged. */
#ifndef MD_PARSE_H
#define MD_PARSE_H

#include "launcher.h"

/* Every option's default, the safe one (md_security_defaults for opts->sec). */
void md_opts_defaults (struct md_opts *opts);

/* The options in argv[2..], up to "--" or the first argument that is not an option;
 * the rest is the command (opts->argv, never empty). Opens --error-file as soon as it
 * is read, so that the errors of the options after it are written there too. Returns
 * 0, or -1 with err filled. */
int md_parse_args (int argc, char **argv, struct md_opts *opts, md_error_t *err);

/* The rules between options, for verb "run" or "exec" (exactly one of --image and
 * --rootfs for run, none of run's for exec, an absolute --workdir, ...). */
int md_check_opts (const char *verb, const struct md_opts *opts, md_error_t *err);
/* network-create's egress options: the 8 words after NETNS_PATH, each option once. */
int md_parse_egress (char **args, struct md_egress *egress, md_error_t *err);

/* s as a decimal number: digits only (no space, no sign), no overflow. Returns 0, or -1. */
int md_parse_ull (const char *s, unsigned long long *out);

/* "SYS_ADMIN", "CAP_SYS_ADMIN", "cap_sys_admin": the capability's number, or -1. */
int md_cap_from_name (const char *name);
/* The name of capability cap without "CAP_", or NULL for one this launcher does not know. */
const char *md_cap_name (int cap);

#endif
