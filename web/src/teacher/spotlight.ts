/**
 * /teacher/classes/:id/spotlight/:studentId: one student's terminal for the projector,
 * read-only, in the largest font that fits the window. It follows the student: after a
 * reset or a new container it reattaches to their current terminal 0, and the server's
 * `resize` messages keep it at the size of the student's pty.
 */
import type { StudentJson } from '../../../server/src/protocol/index';
import { h } from '../dom';
import { terminalTheme } from '../prefs';
import { pageShell } from '../shell';
import { TerminalView } from '../terminal';
import { ClassEvents } from './class-events';
import { classPageUrl, currentContainer, requireTeacher } from './widgets';

const PROJECTOR_FONT_MAX = 40;

export function startSpotlightPage(classId: string, studentId: string): void {
  const shell = pageShell({
    subtitle: 'spotlight',
    pageClass: 'page-spotlight',
    title: 'Spotlight · mdocker',
    controls: [h('a', { class: 'button small', href: classPageUrl(classId) }, 'Back to the class')],
  });
  void requireTeacher(shell.main).then((ok) => {
    if (!ok) return;
    const name = h('h2', { class: 'spotlight-name' }, '…');
    const status = h('span', { class: 'spotlight-status muted', role: 'status' });
    const box = h('div', { class: 'spotlight-terminal' });
    shell.main.append(h('div', { class: 'spotlight' }, h('div', { class: 'spotlight-head' }, name, status), box));

    let view: TerminalView | null = null;
    let attachedTo: string | null = null;
    const follow = (student: StudentJson | undefined): void => {
      if (!student) {
        status.textContent = 'This student is not in the class.';
        return;
      }
      name.textContent = student.name;
      document.title = `${student.name} · spotlight`;
      const c = currentContainer(student);
      const target = c && c.state === 'running' ? c.id : null;
      status.textContent = target ? (student.connected ? '' : 'offline') : 'no running container';
      if (target === attachedTo) return;
      view?.dispose();
      view = null;
      attachedTo = target;
      box.replaceChildren();
      if (!target) return;
      view = new TerminalView({
        containerId: target,
        terminalId: 0,
        label: `${student.name}’s terminal (spotlight, read-only)`,
        fontSize: PROJECTOR_FONT_MAX,
        theme: terminalTheme(shell.theme()),
        mode: 'watch',
        fitFontToBox: true,
        onNotice: (text) => shell.showNotice(text),
      });
      box.append(view.element);
      view.open();
    };
    shell.onThemeChange((mode) => view?.setTheme(terminalTheme(mode)));

    const events: ClassEvents = new ClassEvents(classId, {
      onClass: () => follow(events.students.get(studentId)),
      onStudent: (s) => {
        if (s.id === studentId) follow(s);
      },
      onLeft: (id) => {
        if (id === studentId) follow(undefined);
      },
      onEnded: () => {
        status.textContent = 'The class has ended.';
      },
    });
  });
}
