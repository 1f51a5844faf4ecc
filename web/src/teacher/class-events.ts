/**
 * The teacher's live view of one class: the /api/classes/:id/events stream folded into
 * the class, its students and their containers, with a callback per kind of change. The
 * socket reconnects; each connection starts with the whole class again.
 */
import type {
  BroadcastJson,
  ClassEventMessage,
  ClassJson,
  ContainerJson,
  NodeNoticeJson,
  ScreenJson,
  StatsSample,
  StudentJson,
} from '../../../server/src/protocol/index';
import { classEventsUrl, renewSession } from '../api';
import { ReconnectingSocket, type SocketState } from '../socket';

export interface ClassEventHandlers {
  onClass?: (c: ClassJson) => void;
  onStudent?: (student: StudentJson) => void;
  onLeft?: (studentId: string) => void;
  onSample?: (studentId: string, containerId: string, sample: StatsSample) => void;
  onScreen?: (studentId: string, screen: ScreenJson) => void;
  onInput?: (studentId: string, at: string) => void;
  onBroadcast?: (broadcast: BroadcastJson) => void;
  onEnded?: (c: ClassJson) => void;
  onNode?: (notice: NodeNoticeJson) => void;
  onState?: (state: SocketState, closeEvent?: CloseEvent) => void;
}

export class ClassEvents {
  klass: ClassJson | null = null;
  readonly students = new Map<string, StudentJson>();
  private readonly socket: ReconnectingSocket;

  constructor(
    classId: string,
    private readonly handlers: ClassEventHandlers,
  ) {
    this.socket = new ReconnectingSocket({
      url: () => classEventsUrl(classId),
      onMessage: (event) => this.onMessage(event),
      beforeReconnect: renewSession,
      onStateChange: (state, detail) => handlers.onState?.(state, detail.closeEvent),
    });
  }

  close(): void {
    this.socket.close();
  }

  private onMessage(event: MessageEvent): void {
    if (typeof event.data !== 'string') return;
    let message: ClassEventMessage;
    try {
      message = JSON.parse(event.data) as ClassEventMessage;
    } catch {
      return;
    }
    const h = this.handlers;
    switch (message.type) {
      case 'class':
        this.klass = message.class;
        this.students.clear();
        for (const s of message.class.students) this.students.set(s.id, s);
        h.onClass?.(message.class);
        break;
      case 'student':
        this.students.set(message.student.id, message.student);
        h.onStudent?.(message.student);
        break;
      case 'left':
        this.students.delete(message.studentId);
        h.onLeft?.(message.studentId);
        break;
      case 'container': {
        const student = this.students.get(message.studentId);
        if (!student) break;
        const updated = { ...student, containers: mergeContainer(student.containers, message.container) };
        this.students.set(student.id, updated);
        h.onStudent?.(updated);
        break;
      }
      case 'sample':
        h.onSample?.(message.studentId, message.containerId, message.sample);
        break;
      case 'screen':
        h.onScreen?.(message.studentId, message.screen);
        break;
      case 'input': {
        const student = this.students.get(message.studentId);
        if (student) this.students.set(student.id, { ...student, lastInputAt: message.at });
        h.onInput?.(message.studentId, message.at);
        break;
      }
      case 'progress': {
        const student = this.students.get(message.studentId);
        if (!student) break;
        const updated = { ...student, progress: message.progress };
        this.students.set(student.id, updated);
        h.onStudent?.(updated);
        break;
      }
      case 'broadcast':
        h.onBroadcast?.(message.broadcast);
        break;
      case 'ended':
        this.klass = message.class;
        h.onEnded?.(message.class);
        break;
      case 'node':
        h.onNode?.(message.node);
        break;
    }
  }
}

function mergeContainer(list: readonly ContainerJson[], c: ContainerJson): ContainerJson[] {
  const others = list.filter((x) => x.id !== c.id);
  return c.state === 'removed' ? others : [...others, c];
}
