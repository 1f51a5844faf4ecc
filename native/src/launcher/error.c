#include "error.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>

int
md_make_error (md_error_t *err, int errno_value, const char *syscall, const char *fmt, ...)
{
  va_list ap;
  err->errno_value = errno_value;
  snprintf (err->syscall, sizeof (err->syscall), "%s", syscall ? syscall : "");
  snprintf (err->code, sizeof (err->code), "%s", errno_value ? MD_E_SYSCALL : MD_E_RUNTIME);
  va_start (ap, fmt);
  vsnprintf (err->message, sizeof (err->message), fmt, ap);
  va_end (ap);
  return -1;
}

int
md_make_error_code (md_error_t *err, const char *code, const char *fmt, ...)
{
  va_list ap;
  err->errno_value = 0;
  err->syscall[0] = '\0';
  snprintf (err->code, sizeof (err->code), "%s", code);
  va_start (ap, fmt);
  vsnprintf (err->message, sizeof (err->message), fmt, ap);
  va_end (ap);
  return -1;
}

int
md_write_all (int fd, const void *buf, size_t len)
{
  const char *p = buf;
  while (len > 0)
    {
      ssize_t n = write (fd, p, len);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return -1;
      p += n;
      len -= (size_t) n;
    }
  return 0;
}

/* JSON string escaping for the few characters a message can hold. */
static size_t
json_escape (char *out, size_t out_size, const char *in)
{
  size_t o = 0;
  for (; *in && o + 7 < out_size; in++)
    {
      unsigned char c = (unsigned char) *in;
      if (c == '"' || c == '\\')
        {
          out[o++] = '\\';
          out[o++] = (char) c;
        }
      else if (c < 0x20)
        o += (size_t) snprintf (out + o, out_size - o, "\\u%04x", c);
      else
        out[o++] = (char) c;
    }
  out[o] = '\0';
  return o;
}

void
md_report_error (const md_error_t *err, int fd, int to_stderr)
{
  char full[700];
  char escaped[1500];
  char line[1800];
  int n;

  if (err->errno_value)
    snprintf (full, sizeof (full), "%s: %s", err->message, strerror (err->errno_value));
  else
    snprintf (full, sizeof (full), "%s", err->message);

  if (fd >= 0)
    {
      json_escape (escaped, sizeof (escaped), full);
      n = snprintf (line, sizeof (line), "{\"code\":\"%s\",\"errno\":%d,\"syscall\":\"%s\",\"message\":\"%s\"}\n",
                    err->code, err->errno_value, err->syscall, escaped);
      if (n > 0)
        md_write_all (fd, line, (size_t) n < sizeof (line) ? (size_t) n : sizeof (line) - 1);
    }
  if (to_stderr)
    {
      n = snprintf (line, sizeof (line), "mdocker-init: %s\n", full);
      if (n > 0)
        md_write_all (STDERR_FILENO, line, (size_t) n < sizeof (line) ? (size_t) n : sizeof (line) - 1);
    }
}
