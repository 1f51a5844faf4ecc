/**
 * The REST half of the playground API. Every failure becomes an ApiError carrying the
 * server's stable `code` and message, so the page can show exactly why a request was
 * refused (a cap, a bad unit, an unknown image) instead of "something went wrong".
 */
import type {
  AttachMode,
  BroadcastBody,
  BroadcastJson,
  ClassJson,
  ContainerJson,
  ContainerLessonJson,
  CreateClassBody,
  CreateContainerBody,
  CreateTerminalBody,
  ErrorJson,
  ExecBody,
  ExecResultJson,
  FileEntryJson,
  ImageJson,
  ImagePullBody,
  ImagePullJson,
  InspectJson,
  JoinBody,
  JoinJson,
  LessonJson,
  MeJson,
  PortJson,
  RecordingJson,
  RecordingStatsJson,
  StatsHistoryJson,
  TerminalCwdJson,
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
const classPath = (id: string): string => `/api/classes/${encodeURIComponent(id)}`;

/** Where a terminal's asciicast recording is served (also the "Download .cast" link). */
export function recordingPath(containerId: string, terminalId: number): string {
  return `${containerPath(containerId)}/terminals/${terminalId}/recording`;
}

/** A container's file (its bytes) or directory (a tar), by the path the container sees. */
export function filePath(containerId: string, path: string): string {
  return `${containerPath(containerId)}/files?${new URLSearchParams({ path }).toString()}`;
}

/** Fetches a text resource (an asciicast) with the same error handling as the JSON API. */
async function requestText(path: string): Promise<string> {
  let response: Response;
  try {
    response = await fetch(path, { credentials: 'same-origin', headers: { accept: 'application/x-asciicast, */*' } });
  } catch (err) {
    throw new ApiError('NETWORK', `The server cannot be reached (${errorText(err)}).`, 0);
  }
  const text = await response.text();
  if (response.ok) return text;
  try {
    const parsed: unknown = JSON.parse(text);
    if (isErrorJson(parsed)) throw new ApiError(parsed.error.code, parsed.error.message, response.status);
  } catch (err) {
    if (err instanceof ApiError) throw err;
  }
  throw new ApiError(`HTTP_${response.status}`, `GET ${path} failed: ${response.status}.`, response.status);
}

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
  ports: (id: string) => request<PortJson[]>('GET', `${containerPath(id)}/ports`),
  listFiles: (id: string, path: string) => request<FileEntryJson[]>('GET', `${filePath(id, path)}&list=1`),
  terminalCwd: (id: string, terminalId: number) =>
    request<TerminalCwdJson>('GET', `${containerPath(id)}/terminals/${terminalId}/cwd`),
  images: () => request<ImageJson[]>('GET', '/api/images'),
  pullImage: (body: ImagePullBody) => request<ImagePullJson>('POST', '/api/images', body),
  deleteImage: (name: string) => request<unknown>('DELETE', `/api/images/${encodeURIComponent(name)}`),
  saveContainer: (id: string) => request<ImageJson>('POST', `${containerPath(id)}/save`),

  // ---- lessons ----
  lessons: () => request<LessonJson[]>('GET', '/api/lessons'),
  lesson: (id: string) => request<ContainerLessonJson>('GET', `${containerPath(id)}/lesson`),
  checkLesson: (id: string) => request<ContainerLessonJson>('POST', `${containerPath(id)}/lesson/check`),

  // ---- classes ----
  me: () => request<MeJson>('GET', '/api/me'),
  /** `node`: the join link's, so HAProxy sends the join to the node that holds the class */
  join: (body: JoinBody, node?: string | null) =>
    request<JoinJson>('POST', node ? `/api/join?${new URLSearchParams({ node }).toString()}` : '/api/join', body),
  listClasses: () => request<ClassJson[]>('GET', '/api/classes'),
  getClass: (id: string) => request<ClassJson>('GET', classPath(id)),
  createClass: (body: CreateClassBody) => request<ClassJson>('POST', '/api/classes', body),
  endClass: (id: string) => request<unknown>('DELETE', classPath(id)),
  rotateCode: (id: string) => request<ClassJson>('POST', `${classPath(id)}/code`),
  broadcast: (id: string, body: BroadcastBody) => request<BroadcastJson>('POST', `${classPath(id)}/broadcast`, body),
  resetStudent: (id: string, studentId: string) =>
    request<ContainerJson>('POST', `${classPath(id)}/students/${encodeURIComponent(studentId)}/reset`),
  recordings: (id: string) => request<RecordingJson[]>('GET', `${classPath(id)}/recordings`),
  recording: (containerId: string, terminalId: number) => requestText(recordingPath(containerId, terminalId)),
  recordingStats: (containerId: string) =>
    request<RecordingStatsJson>('GET', `${containerPath(containerId)}/recording-stats`),
};

export function classEventsUrl(classId: string): string {
  return socketUrl(`${classPath(classId)}/events`);
}

/** A request that only renews the session cookie if the server no longer knows it. */
export async function renewSession(): Promise<void> {
  await fetch('/healthz', { credentials: 'same-origin', cache: 'no-store' });
}

/** ws:// or wss:// URL for a path on this origin. */
export function socketUrl(path: string): string {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}${path}`;
}

/** The size travels with the attach so the pty starts at the browser's size; a teacher's
 * attach names its mode instead and never sizes the student's pty. */
export function terminalSocketUrl(
  containerId: string,
  terminalId: number,
  size?: { cols: number; rows: number },
  mode?: AttachMode,
): string {
  const params = new URLSearchParams();
  if (mode) params.set('mode', mode);
  else if (size) {
    params.set('cols', String(size.cols));
    params.set('rows', String(size.rows));
  }
  const query = params.size > 0 ? `?${params.toString()}` : '';
  return socketUrl(`${containerPath(containerId)}/terminals/${terminalId}${query}`);
}
