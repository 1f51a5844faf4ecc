/* One error model for the launcher, after crun's: a function that can fail takes
 * md_error_t *err, returns a negative value on failure and fills err with
 * md_make_error (err, errno, "syscall", "fmt", ...). main reports it once, as one JSON
 * line on the error fd, and exits 125. */
#ifndef MD_ERROR_H
#define MD_ERROR_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* The launcher's error codes. The TypeScript side's ErrorCode (server/src/runtime/errors.ts)
 * holds the same strings, and a unit test reads this list to keep the two one list. */
#define MD_E_INVALID_ARGUMENT "INVALID_ARGUMENT"   /* a bad option or value: the caller's mistake */
#define MD_E_NOT_ROOT "NOT_ROOT"                   /* the launcher needs root */
#define MD_E_UNSUPPORTED "UNSUPPORTED"             /* this kernel or filesystem lacks a feature */
#define MD_E_UNAVAILABLE "UNAVAILABLE"             /* a resource is exhausted for now (user namespace slots) */
#define MD_E_NOT_FOUND "NOT_FOUND"                 /* the container to join is gone */
#define MD_E_TOO_LARGE "TOO_LARGE"                 /* more bytes than the caller's cap (mdocker-copier) */
#define MD_E_COMMAND_NOT_FOUND "COMMAND_NOT_FOUND" /* the container's command does not exist (exit 127) */
#define MD_E_CANNOT_EXECUTE "CANNOT_EXECUTE"       /* the container's command cannot be run (exit 126) */
#define MD_E_SYSCALL "SYSCALL"                     /* a system call failed: errno and syscall say which */
#define MD_E_RUNTIME "RUNTIME"                     /* anything else that went wrong in the launcher */

typedef struct md_error_s
{
  int errno_value;  /* 0 when the failure is not a syscall's */
  char syscall[32]; /* "pivot_root", "mount", ... or "" */
  char code[32];    /* one of the MD_E_* codes above */
  char message[512];
} md_error_t;

__attribute__ ((format (printf, 4, 5))) int md_make_error (md_error_t *err, int errno_value, const char *syscall,
                                                           const char *fmt, ...);
__attribute__ ((format (printf, 3, 4))) int md_make_error_code (md_error_t *err, const char *code, const char *fmt,
                                                                ...);

/* Writes err as one JSON line {"code","errno","syscall","message"} to fd (if >= 0) and a
 * human line "mdocker-init: message: strerror" to stderr when to_stderr is set. */
void md_report_error (const md_error_t *err, int fd, int to_stderr);

/* Writes all of buf, retrying on EINTR and short writes. */
int md_write_all (int fd, const void *buf, size_t len);

static inline void
md_cleanup_close_fn (int *fd)
{
  if (*fd >= 0)
    close (*fd);
}
static inline void
md_cleanup_free_fn (void *p)
{
  free (*(void **) p);
}
static inline void
md_cleanup_fclose_fn (FILE **f)
{
  if (*f)
    fclose (*f);
}
#define cleanup_close __attribute__ ((cleanup (md_cleanup_close_fn)))
#define cleanup_free __attribute__ ((cleanup (md_cleanup_free_fn)))
#define cleanup_fclose __attribute__ ((cleanup (md_cleanup_fclose_fn)))

#endif
