/**
 * The REST half of the playground API. Every failure becomes an ApiError carrying the
 * server's stable `code` and message, so the page can show exactly why a request was
 * refused (a cap, a bad unit, an unknown image) instead of "something went wrong".
 */
import type {
  ContainerJson,
  CreateContainerBody,
  CreateTerminalBody,
  ErrorJson,
  ExecBody,
  ExecResultJson,
  ImageJson,
  InspectJson,
  StatsHistoryJson,
  TerminalJson,
  UpdateContainerBody,
} from '../../server/src/protocol/index';

export class ApiError extends Error {
  readonly code: string;
  /** HTTP status, or 0 when the request never got an answer. */
  readonly status: number;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: string, message: string, status: number, details?: Record<string, unknown>) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.status = status;
    this.details = details;
  }
}

function isErrorJson(body: unknown): body is ErrorJson {
  if (typeof body !== 'object' || body === null || !('error' in body)) return false;
  const error = (body as { error: unknown }).error;
  return (
    typeof error === 'object' &&
    error !== null &&
    typeof (error as { code?: unknown }).code === 'string' &&
    typeof (error as { message?: unknown }).message === 'string'
  );
}

async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const init: RequestInit = {
    method,
    credentials: 'same-origin',
    headers: { accept: 'application/json' },
  };
  if (body !== undefined) {
    init.headers = { ...init.headers, 'content-type': 'application/json' };
    init.body = JSON.stringify(body);
  }
  let response: Response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError('NETWORK', `The server cannot be reached (${errorText(err)}).`, 0);
  }
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  let parsed: unknown = undefined;
  if (text !== '') {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
  }
  if (!response.ok) {
    if (isErrorJson(parsed)) {
      throw new ApiError(parsed.error.code, parsed.error.message, response.status, parsed.error.details);
    }
    const reason = `${response.status} ${response.statusText}`.trim();
    throw new ApiError(`HTTP_${response.status}`, `${method} ${path} failed: ${reason}.`, response.status);
  }
  if (parsed === undefined && text !== '') {
    throw new ApiError('BAD_RESPONSE', `${method} ${path} answered with something that is not JSON.`, response.status);
  }
  return parsed as T;
}

export function errorText(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

const containerPath = (id: string): string => `/api/containers/${encodeURIComponent(id)}`;

export const api = {
  listContainers: () => request<ContainerJson[]>('GET', '/api/containers'),
  getContainer: (id: string) => request<ContainerJson>('GET', containerPath(id)),
  createContainer: (body: CreateContainerBody) => request<ContainerJson>('POST', '/api/containers', body),
  updateContainer: (id: string, body: UpdateContainerBody) => request<ContainerJson>('PATCH', containerPath(id), body),
  deleteContainer: (id: string) => request<unknown>('DELETE', containerPath(id)),
  listTerminals: (id: string) => request<TerminalJson[]>('GET', `${containerPath(id)}/terminals`),
  createTerminal: (id: string, body: CreateTerminalBody = {}) =>
    request<TerminalJson>('POST', `${containerPath(id)}/terminals`, body),
  deleteTerminal: (id: string, terminalId: number) =>
    request<unknown>('DELETE', `${containerPath(id)}/terminals/${terminalId}`),
  exec: (id: string, body: ExecBody) => request<ExecResultJson>('POST', `${containerPath(id)}/exec`, body),
  inspect: (id: string) => request<InspectJson>('GET', `${containerPath(id)}/inspect`),
  stats: (id: string) => request<StatsHistoryJson>('GET', `${containerPath(id)}/stats`),
  images: () => request<ImageJson[]>('GET', '/api/images'),
};

/** A request that only renews the session cookie if the server no longer knows it. */
export async function renewSession(): Promise<void> {
  await fetch('/healthz', { credentials: 'same-origin', cache: 'no-store' });
}

/** ws:// or wss:// URL for a path on this origin. */
export function socketUrl(path: string): string {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}${path}`;
}

/** The size travels with the attach so the pty starts at the browser's size. */
export function terminalSocketUrl(
  containerId: string,
  terminalId: number,
  size?: { cols: number; rows: number },
): string {
  const query = size ? `?cols=${size.cols}&rows=${size.rows}` : '';
  return socketUrl(`${containerPath(containerId)}/terminals/${terminalId}${query}`);
}
