/**
 * The one error class of the TypeScript side. Every failure that crosses a module
 * boundary is an MdockerError with a stable `code`; the API maps codes to HTTP and
 * WebSocket statuses in one table (server/src/http/errors.ts), the CLI prints
 * `mdocker: <message>` and exits non-zero.
 */
export const ERROR_CODES = [
  'INVALID_ARGUMENT', // malformed input: a bad unit, an unknown field, a limit <= 0
  'NOT_FOUND', // unknown container, terminal or image; the container to join is gone
  'CONFLICT', // name in use, container not running, already removed
  'LIMIT_EXCEEDED', // a configured cap stopped the request
  'TOO_LARGE', // a request body over its cap (an upload past --max-upload)
  'RATE_LIMITED',
  'UNAUTHORIZED',
  'FORBIDDEN',
  'NOT_ROOT', // the runtime needs root on this host
  'UNSUPPORTED', // the host lacks overlayfs, a cgroup controller, ...
  'UNAVAILABLE', // a resource is exhausted for now: the launcher's user namespace slots
  'COMMAND_NOT_FOUND', // the container's command does not exist (exit 127)
  'CANNOT_EXECUTE', // the container's command cannot be run (exit 126)
  'SYSCALL', // a system call failed in the launcher: details.errno and details.syscall say which
  'RUNTIME', // the launcher failed otherwise
  'LAUNCH_FAILED', // the launcher could not be started, or ended without saying why
  'TIMEOUT',
  'INTERNAL',
  'NODE_GONE', // the session is another node's, which is gone, or this node's before a restart
] as const;

/**
 * The stable codes of every error, the launcher's included: its MD_E_* codes
 * (native/src/launcher/error.h) are the same strings, and a unit test keeps them so.
 */
export type ErrorCode = (typeof ERROR_CODES)[number];

export class MdockerError extends Error {
  readonly code: ErrorCode;
  /** Extra machine-readable facts, e.g. { limit: 'pidsLimit', max: 512 } for a cap. */
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MdockerError';
    this.code = code;
    this.details = details;
  }
}

export function isMdockerError(err: unknown): err is MdockerError {
  return err instanceof MdockerError;
}

/** Wraps anything thrown into an MdockerError, keeping the original as cause. */
export function toMdockerError(err: unknown): MdockerError {
  if (err instanceof MdockerError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new MdockerError('INTERNAL', message, undefined, { cause: err });
}

export function isErrorCode(value: string): value is ErrorCode {
  return (ERROR_CODES as readonly string[]).includes(value);
}

/** The launcher's one-line JSON error, as parsed from its error file or fd. */
export interface LauncherErrorJson {
  code: string;
  message: string;
  /** The failed system call's errno, when one failed. */
  errno?: number;
  syscall?: string;
}

/**
 * The launcher's error as an MdockerError with the launcher's own code (RUNTIME for a code
 * this side does not know), its errno and syscall kept in details.
 */
export function launcherError(error: LauncherErrorJson, context?: string): MdockerError {
  const code = isErrorCode(error.code) ? error.code : 'RUNTIME';
  return new MdockerError(code, context === undefined ? error.message : `${context}: ${error.message}`, {
    launcherCode: error.code,
    ...(error.errno === undefined ? {} : { errno: error.errno }),
    ...(error.syscall === undefined ? {} : { syscall: error.syscall }),
  });
}
