/**
 * The one table from error codes to HTTP statuses and WebSocket close codes, and the
 * Express middleware that turns anything thrown into `{ "error": { code, message } }`.
 */
import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { Logger } from 'pino';
import { MdockerError, toMdockerError, type ErrorCode } from '../runtime/errors.js';
import { WS_CLOSE, type ErrorJson } from '../protocol/index.js';

interface ErrorStatus {
  http: number;
  ws: number;
}

export const ERROR_STATUS: Readonly<Record<ErrorCode, ErrorStatus>> = {
  INVALID_ARGUMENT: { http: 400, ws: WS_CLOSE.INVALID_ARGUMENT },
  UNAUTHORIZED: { http: 401, ws: WS_CLOSE.UNAUTHORIZED },
  FORBIDDEN: { http: 403, ws: WS_CLOSE.FORBIDDEN },
  // A cap is the server's policy refusing a well-formed request; the body says which cap.
  LIMIT_EXCEEDED: { http: 403, ws: WS_CLOSE.FORBIDDEN },
  TOO_LARGE: { http: 413, ws: WS_CLOSE.TOO_LARGE },
  // Another session's container is NOT_FOUND too: its existence is not disclosed.
  NOT_FOUND: { http: 404, ws: WS_CLOSE.NOT_FOUND },
  CONFLICT: { http: 409, ws: WS_CLOSE.CONFLICT },
  RATE_LIMITED: { http: 429, ws: WS_CLOSE.RATE_LIMITED },
  INTERNAL: { http: 500, ws: WS_CLOSE.INTERNAL },
  NOT_ROOT: { http: 500, ws: WS_CLOSE.INTERNAL },
  // The container's command is the request's: a missing or unrunnable one is bad input.
  COMMAND_NOT_FOUND: { http: 400, ws: WS_CLOSE.INVALID_ARGUMENT },
  CANNOT_EXECUTE: { http: 400, ws: WS_CLOSE.INVALID_ARGUMENT },
  SYSCALL: { http: 500, ws: WS_CLOSE.INTERNAL },
  RUNTIME: { http: 500, ws: WS_CLOSE.INTERNAL },
  LAUNCH_FAILED: { http: 500, ws: WS_CLOSE.INTERNAL },
  UNSUPPORTED: { http: 501, ws: WS_CLOSE.UNSUPPORTED },
  UNAVAILABLE: { http: 503, ws: WS_CLOSE.UNAVAILABLE },
  TIMEOUT: { http: 504, ws: WS_CLOSE.TIMEOUT },
  // Misdirected: this node cannot answer for another node's session (http/sessions.ts).
  NODE_GONE: { http: 421, ws: WS_CLOSE.NODE_GONE },
};

export function httpStatusFor(code: ErrorCode): number {
  return ERROR_STATUS[code].http;
}

export function wsCloseCodeFor(code: ErrorCode): number {
  return ERROR_STATUS[code].ws;
}

export function errorJson(err: MdockerError): ErrorJson {
  return {
    error: {
      code: err.code,
      message: err.message,
      ...(err.details === undefined ? {} : { details: err.details }),
    },
  };
}

/** WebSocket close reasons are capped at 123 bytes by RFC 6455. */
export function closeReason(message: string): string {
  let reason = message;
  while (Buffer.byteLength(reason) > 123) reason = reason.slice(0, -1);
  return reason;
}

interface BodyParserError {
  type: string;
  status?: number;
  limit?: number;
}

function isBodyParserError(err: unknown): err is BodyParserError {
  return typeof err === 'object' && err !== null && typeof (err as { type?: unknown }).type === 'string';
}

/** Errors thrown by express.json() and friends, in the house's terms. */
export function fromBodyParserError(err: unknown): MdockerError | null {
  if (!isBodyParserError(err)) return null;
  switch (err.type) {
    case 'entity.parse.failed':
      return new MdockerError('INVALID_ARGUMENT', 'malformed JSON body');
    case 'entity.too.large':
      return new MdockerError('INVALID_ARGUMENT', `JSON body larger than ${err.limit ?? '?'} bytes`, {
        maxBytes: err.limit,
      });
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new MdockerError('INVALID_ARGUMENT', 'unsupported body encoding');
    case 'request.aborted':
    case 'request.size.invalid':
    case 'stream.encoding.set':
      return new MdockerError('INVALID_ARGUMENT', 'incomplete request body');
    default:
      return null;
  }
}

export function toApiError(err: unknown): MdockerError {
  return fromBodyParserError(err) ?? toMdockerError(err);
}

export function notFoundHandler(): RequestHandler {
  return (req, _res, next) => {
    next(new MdockerError('NOT_FOUND', `no route ${req.method} ${req.path}`));
  };
}

export function errorMiddleware(logger: Logger): ErrorRequestHandler {
  return (err: unknown, req, res, next) => {
    if (res.headersSent) {
      next(err);
      return;
    }
    const apiError = toApiError(err);
    const status = httpStatusFor(apiError.code);
    if (status >= 500) {
      logger.error({ err, method: req.method, path: req.path, code: apiError.code }, 'request failed');
    }
    res.status(status).json(errorJson(apiError));
  };
}
