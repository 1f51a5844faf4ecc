/**
 * One bundle, several pages: the path picks the view (the server answers index.html for
 * any GET outside /api). Each view is its own chunk, loaded on demand.
 */
import '@xterm/xterm/css/xterm.css';
import './styles.css';

type Route =
  | { page: 'student' }
  | { page: 'join'; code: string }
  | { page: 'console' }
  | { page: 'class'; classId: string }
  | { page: 'spotlight'; classId: string; studentId: string }
  | { page: 'replay'; classId: string; containerId: string; terminalId: number };

export function route(pathname: string): Route {
  const parts = pathname
    .split('/')
    .filter((p) => p !== '')
    .map((p) => decodeURIComponent(p));
  const [first, second, third, fourth, fifth, sixth] = parts;
  if (first === 'join' && second !== undefined && parts.length === 2) return { page: 'join', code: second };
  if (first !== 'teacher') return { page: 'student' };
  if (parts.length === 1) return { page: 'console' };
  if (second !== 'classes' || third === undefined) return { page: 'console' };
  if (parts.length === 3) return { page: 'class', classId: third };
  if (fourth === 'spotlight' && fifth !== undefined && parts.length === 5)
    return { page: 'spotlight', classId: third, studentId: fifth };
  if (fourth === 'replay' && fifth !== undefined && sixth !== undefined && /^\d+$/.test(sixth) && parts.length === 6)
    return { page: 'replay', classId: third, containerId: fifth, terminalId: Number(sixth) };
  return { page: 'class', classId: third };
}

async function start(): Promise<void> {
  const r = route(location.pathname);
  switch (r.page) {
    case 'student':
      await import('./student-page');
      break;
    case 'join':
      (await import('./join')).startJoinPage(r.code);
      break;
    case 'console':
      (await import('./teacher/console')).startConsolePage();
      break;
    case 'class':
      (await import('./teacher/class-page')).startClassPage(r.classId);
      break;
    case 'spotlight':
      (await import('./teacher/spotlight')).startSpotlightPage(r.classId, r.studentId);
      break;
    case 'replay':
      (await import('./replay')).startReplayPage(r.classId, r.containerId, r.terminalId);
      break;
  }
}

void start();
