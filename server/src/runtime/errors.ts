/**
 * The one error class of the TypeScript side. Every failure that crosses a module
 * boundary is an MdockerError with a stable `code`; the API maps codes to HTTP and
 * WebSocket statuses in one table (server/src/http/errors.ts), the CLI prints
 * `mdocker: <message>` and exits non-zero.
 */
export type ErrorCode =
  | 'INVALID_ARGUMENT' // malformed input: a bad unit, an unknown field, a limit <= 0
  | 'NOT_FOUND' // unknown container, terminal or image
  | 'CONFLICT' // name in use, container not running, already removed
  | 'LIMIT_EXCEEDED' // a configured cap stopped the request
  | 'RATE_LIMITED'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'NOT_ROOT' // the runtime needs root on this host
  | 'UNSUPPORTED' // the host lacks overlayfs, a cgroup controller, ...
  | 'LAUNCH_FAILED' // mdocker-init reported a runtime failure (exit 125)
  | 'TIMEOUT'
  | 'INTERNAL';

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
