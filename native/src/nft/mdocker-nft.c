/* mdocker-nft: the runtime's nftables rules, through libnftables (the library the nft
 * command is a front end of), in the host's network namespace or a network's.
 *
 *   mdocker-nft [--netns PATH] apply     runs the nft script on stdin as one transaction
 *
 * The launcher stays a static binary with no parser in it: rules are made only when a
 * network with egress is created or removed, so they get a program of their own. It
 * answers as the launcher's network verbs do: exit 0, or 1 and one JSON error line on
 * stdout. */
#include <errno.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <nftables/libnftables.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "../launcher/error.h"

#define MD_NFT_MAX_SCRIPT (256 * 1024)

static int
enter_netns (const char *path, md_error_t *err)
{
  int fd = open (path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  int ret = 0;

  if (fd < 0)
    return md_make_error (err, errno, "open", "cannot open the network namespace %s", path);
  if (ioctl (fd, NS_GET_NSTYPE) != CLONE_NEWNET)
    ret = md_make_error_code (err, MD_E_NOT_FOUND, "%s is not a network namespace (the network is gone)", path);
  else if (setns (fd, CLONE_NEWNET) < 0)
    ret = md_make_error (err, errno, "setns", "cannot enter %s", path);
  close (fd);
  return ret;
}

static char *
read_stdin (md_error_t *err)
{
  char *buf = malloc (MD_NFT_MAX_SCRIPT + 1);
  size_t used = 0;
  ssize_t n;

  if (buf == NULL)
    {
      md_make_error (err, ENOMEM, "malloc", "out of memory");
      return NULL;
    }
  while ((n = read (STDIN_FILENO, buf + used, MD_NFT_MAX_SCRIPT + 1 - used)) != 0)
    {
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          md_make_error (err, errno, "read", "cannot read the rules");
          free (buf);
          return NULL;
        }
      used += (size_t) n;
      if (used > MD_NFT_MAX_SCRIPT)
        {
          md_make_error_code (err, MD_E_INVALID_ARGUMENT, "the rules are over %d bytes", MD_NFT_MAX_SCRIPT);
          free (buf);
          return NULL;
        }
    }
  buf[used] = '\0';
  return buf;
}

/* Runs script; nft's own message (its first line) becomes the error's. */
static int
run (const char *script, md_error_t *err)
{
  struct nft_ctx *ctx = nft_ctx_new (NFT_CTX_DEFAULT);
  const char *out;
  int ret = 0;

  if (ctx == NULL)
    return md_make_error_code (err, MD_E_RUNTIME, "nftables: cannot make a context");
  nft_ctx_buffer_output (ctx);
  nft_ctx_buffer_error (ctx);
  if (nft_run_cmd_from_buffer (ctx, script) != 0)
    {
      const char *msg = nft_ctx_get_error_buffer (ctx);
      size_t len = msg ? strcspn (msg, "\n") : 0;
      ret = md_make_error_code (err, MD_E_RUNTIME, "nftables: %.*s", (int) len, len ? msg : "the rules were refused");
    }
  else if ((out = nft_ctx_get_output_buffer (ctx)) != NULL && md_write_all (STDOUT_FILENO, out, strlen (out)) < 0)
    ret = md_make_error (err, errno, "write", "cannot write the answer");
  nft_ctx_free (ctx);
  return ret;
}

int
main (int argc, char **argv)
{
  md_error_t err = { 0 };
  const char *netns = NULL;
  char *script;
  int i = 1;

  if (argc >= 3 && strcmp (argv[1], "--netns") == 0)
    {
      netns = argv[2];
      i = 3;
    }
  if (geteuid () != 0)
    md_make_error_code (&err, MD_E_NOT_ROOT, "mdocker-nft must run as root");
  else if (argc == i + 1 && strcmp (argv[i], "apply") == 0)
    {
      if ((netns == NULL || enter_netns (netns, &err) == 0) && (script = read_stdin (&err)) != NULL)
        {
          int ret = run (script, &err);
          free (script);
          if (ret == 0)
            return 0;
        }
    }
  else
    md_make_error_code (&err, MD_E_INVALID_ARGUMENT, "usage: mdocker-nft [--netns PATH] apply < RULES");
  md_report_error (&err, STDOUT_FILENO, 0);
  return 1;
}
