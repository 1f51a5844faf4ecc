/**
 * The student's page (and a local user's playground): wires the container list, the
 * terminal tabs, the graphs and the inspector to the API and to the stats stream, and
 * keeps the selected container and terminal in the URL so a reload comes back to the
 * same shell. In a class it also shows the class, the teacher's broadcasts and when the
 * teacher holds the keyboard. Importing this module starts the page.
 */
import type { ContainerJson, MeJson, StatsServerMessage } from '../../server/src/protocol/index';
import { ApiError, api, renewSession, socketUrl } from './api';
import { Classroom } from './classroom';
import { ContainerList, LimitsEditor, describeError } from './containers';
import { byId, h, noticeBar } from './dom';
import { attachFileDrop } from './file-drop';
import { FilesPanel } from './files';
import { describeExit } from './format';
import { Graphs } from './graphs';
import { Inspector } from './inspector';
import { KeyBar } from './key-bar';
import { LessonPanel } from './lesson';
import { PortsPanel } from './ports';
import {
  type ThemeChoice,
  chartPalette,
  clampFontSize,
  loadFontSize,
  loadScreenReaderMode,
  loadThemeChoice,
  onSystemThemeChange,
  resolveTheme,
  saveFontSize,
  saveScreenReaderMode,
  saveThemeChoice,
  terminalTheme,
} from './prefs';
import { ReconnectingSocket } from './socket';
import { StatsStore } from './stats-store';
import type { TerminalView } from './terminal';
import { TerminalTabs } from './terminal-tabs';
import { Uploads } from './uploads';

// ---- preferences -----------------------------------------------------------------------

let themeChoice: ThemeChoice = loadThemeChoice();
let fontSize = loadFontSize();
let screenReaderMode = loadScreenReaderMode();
const mode = (): ReturnType<typeof resolveTheme> => resolveTheme(themeChoice);
document.documentElement.dataset.theme = mode();

// ---- state -----------------------------------------------------------------------------

const containers = new Map<string, ContainerJson>();
let selectedId: string | null = null;
const store = new StatsStore();

// ---- notices ---------------------------------------------------------------------------

const { show: showNotice, hide: hideNotice } = noticeBar(byId('notice'));

// ---- URL: #/containers/<id>/terminals/<tid> ----------------------------------------------

function readLocation(): { containerId: string | null; terminalId: number | undefined } {
  const match = /^#\/containers\/([^/]+)(?:\/terminals\/(\d+))?$/.exec(location.hash);
  if (!match) return { containerId: null, terminalId: undefined };
  return {
    containerId: decodeURIComponent(match[1]!),
    terminalId: match[2] === undefined ? undefined : Number(match[2]),
  };
}

function writeLocation(containerId: string | null, terminalId?: number): void {
  const hash = containerId
    ? `#/containers/${encodeURIComponent(containerId)}${terminalId ? `/terminals/${terminalId}` : ''}`
    : '';
  if (location.hash !== hash) history.replaceState(null, '', hash || location.pathname + location.search);
}

// ---- components ------------------------------------------------------------------------

const list = new ContainerList({
  onSelect: (id) => select(id),
  onCreated: (container) => {
    upsert(container);
    select(container.id);
  },
  onDeleted: (id) => remove(id),
  onSaved: () => loadImages(),
});

const keyBar: KeyBar = new KeyBar((): TerminalView | null => tabs.activeView);

const tabs = new TerminalTabs({
  fontSize,
  theme: terminalTheme(mode()),
  screenReaderMode,
  inputFilter: keyBar.filter,
  onNotice: (message) => showNotice(message),
  onTerminalSelected: (containerId, terminalId) => writeLocation(containerId, terminalId),
  // The stats stream tells of state changes too; the list is the fallback that never 404s.
  onInitExited: () => window.setTimeout(() => void refreshContainers(), 500),
});

const limits = new LimitsEditor({ onUpdated: (container) => upsert(container) });
const graphs = new Graphs(store, chartPalette(mode()));
const inspector = new Inspector();
const lessonPanel = new LessonPanel();
const portsPanel = new PortsPanel();
const uploads = new Uploads({ onUploaded: (containerId, dir) => filesPanel.uploaded(containerId, dir) });
const filesPanel: FilesPanel = new FilesPanel({ uploads, workingDirectory: (id) => shellDirectory(id) });

/** Where the shell the student is looking at works (files dropped on it go there). */
async function shellDirectory(containerId: string): Promise<string> {
  const terminalId = tabs.containerId === containerId ? tabs.activeTerminalId : 0;
  try {
    return (await api.terminalCwd(containerId, terminalId)).cwd;
  } catch {
    return '/root'; // a shell gone, or a server without the route: root's home
  }
}

const classroom = new Classroom();
document.querySelector('.app-title')?.after(classroom.identity);
byId('notice').after(classroom.banners);

byId('containers').append(list.element);
byId('terminal-pane').append(tabs.element, uploads.element);
attachFileDrop(byId('terminal-pane'), {
  accepts: () => tabs.containerId !== null && containers.get(tabs.containerId)?.state === 'running',
  hint: () => 'Drop to upload into the shell’s working directory',
  onFiles: (files) => {
    const id = tabs.containerId;
    if (!id) return;
    void shellDirectory(id).then((dir) => uploads.upload(id, dir, files));
  },
  onRefused: (why) => showNotice(why, 'info'),
});
document.body.append(keyBar.element);

// The details panel: Lesson (when the container has one), Stats (limits + graphs),
// Inspector and Files, as tabs.
const detailsTitle = h('h2', { class: 'panel-title' }, 'Details');
const detailsEmpty = h(
  'p',
  { class: 'muted details-empty' },
  'Select a container to watch its CPU, memory and pids, and to inspect its namespaces.',
);
type DetailTab = 'lesson' | 'stats' | 'inspector' | 'files';
const DETAIL_TABS: { name: DetailTab; label: string; content: HTMLElement[] }[] = [
  { name: 'lesson', label: 'Lesson', content: [lessonPanel.element] },
  { name: 'stats', label: 'Stats', content: [limits.element, graphs.element] },
  { name: 'inspector', label: 'Inspector', content: [inspector.element] },
  { name: 'files', label: 'Files', content: [filesPanel.element] },
];
const detailTabs = DETAIL_TABS.map(({ name, label }) =>
  h(
    'button',
    { type: 'button', role: 'tab', id: `details-tab-${name}`, 'aria-controls': `details-${name}`, class: 'tab' },
    label,
  ),
);
const detailPanels = DETAIL_TABS.map(({ name, content }) =>
  h(
    'div',
    {
      class: `details-panel details-panel-${name}`,
      role: 'tabpanel',
      id: `details-${name}`,
      'aria-labelledby': `details-tab-${name}`,
      hidden: true,
    },
    ...content,
  ),
);
let detailTab: DetailTab = 'stats';
function selectDetailTab(name: DetailTab, focus: boolean): void {
  detailTab = name;
  DETAIL_TABS.forEach((tab, i) => {
    const selected = tab.name === name;
    detailTabs[i]!.setAttribute('aria-selected', String(selected));
    detailTabs[i]!.tabIndex = selected ? 0 : -1;
    detailPanels[i]!.hidden = !selected;
  });
  inspector.setActive(name === 'inspector');
  filesPanel.setActive(name === 'files');
  if (focus) detailTabs[DETAIL_TABS.findIndex((t) => t.name === name)]!.focus();
}
/** The Lesson tab exists only for a container made for a lesson. */
function setLessonTab(available: boolean): void {
  detailTabs[0]!.hidden = !available;
  if (!available && detailTab === 'lesson') selectDetailTab('stats', false);
}
DETAIL_TABS.forEach((tab, i) => detailTabs[i]!.addEventListener('click', () => selectDetailTab(tab.name, false)));
const detailTablist = h('div', { class: 'tablist', role: 'tablist', 'aria-label': 'Container details' }, ...detailTabs);
detailTablist.addEventListener('keydown', (event) => {
  if (event.key !== 'ArrowRight' && event.key !== 'ArrowLeft') return;
  event.preventDefault();
  const shown = DETAIL_TABS.filter((_, i) => !detailTabs[i]!.hidden);
  const at = shown.findIndex((t) => t.name === detailTab);
  const step = event.key === 'ArrowRight' ? 1 : shown.length - 1;
  selectDetailTab(shown[(at + step) % shown.length]!.name, true);
});
// The ports sit above the tabs: a student following a lesson opens the preview from there too.
const detailsBody = h('div', { class: 'details-body' }, portsPanel.element, ...detailPanels);
byId('details').append(
  h('div', { class: 'details-header' }, detailsTitle, detailTablist),
  lessonPanel.announcer,
  detailsEmpty,
  detailsBody,
);
setLessonTab(false);
selectDetailTab('stats', false);

// ---- state changes ---------------------------------------------------------------------

function upsert(container: ContainerJson): void {
  if (container.state === 'removed') {
    // Removed by the server (idle, lifetime, shutdown) rather than by this page: say why,
    // or the student's shell just vanishes.
    const known = containers.get(container.id);
    if (known && !list.isDeleting(container.id)) {
      const why = container.exitReason ? ` (${describeExit(container.exitCode, container.exitReason)})` : '';
      showNotice(`${known.name} was removed${why}.`, 'info');
    }
    remove(container.id);
    return;
  }
  const isNew = !containers.has(container.id);
  containers.set(container.id, container);
  // A container the page did not create (the teacher reset this student's) is the one to
  // show when none is.
  if (isNew && selectedId === null && container.state === 'running' && !firstLoad) {
    select(container.id);
    return;
  }
  render();
}

function remove(id: string): void {
  containers.delete(id);
  store.forget(id);
  lessonPanel.forget(id);
  portsPanel.forget(id);
  if (selectedId === id) {
    selectedId = null;
    writeLocation(null);
  }
  render();
}

function select(id: string | null, terminalId?: number): void {
  selectedId = id && containers.has(id) ? id : null;
  writeLocation(selectedId, terminalId);
  render(terminalId);
  tabs.focusActive();
  if (selectedId) void loadHistory(selectedId);
}

function render(terminalId?: number): void {
  const selected = selectedId ? (containers.get(selectedId) ?? null) : null;
  list.render([...containers.values()], selectedId);
  tabs.show(selected, terminalId);
  keyBar.setTargetAvailable(selected?.state === 'running');
  limits.show(selected);
  graphs.show(selected?.id ?? null, selected?.limits.cpus ?? null);
  inspector.show(selected?.id ?? null);
  showLesson(selected);
  portsPanel.show(selected);
  filesPanel.show(selected);
  detailsTitle.textContent = selected ? `Details: ${selected.name}` : 'Details';
  detailsEmpty.hidden = selected !== null;
  detailsBody.hidden = selected === null;
}

let lessonShownFor: string | null = null;
function showLesson(selected: ContainerJson | null): void {
  const hasLesson = Boolean(selected?.lesson);
  setLessonTab(hasLesson);
  // A container made for a lesson opens on it; the student's later choice of tab stays.
  if (hasLesson && selected && lessonShownFor !== selected.id) selectDetailTab('lesson', false);
  lessonShownFor = selected?.id ?? null;
  lessonPanel.show(selected);
}

async function loadHistory(id: string): Promise<void> {
  if (store.samples(id).length > 0) return; // the stats stream already sent it
  try {
    store.setHistory(id, (await api.stats(id)).samples);
  } catch {
    /* the live stream fills the graphs anyway */
  }
}

// ---- preferences controls -------------------------------------------------------------

const fontInput = byId<HTMLInputElement>('font-size');
fontInput.value = String(fontSize);
fontInput.addEventListener('change', () => {
  fontSize = clampFontSize(Number(fontInput.value));
  fontInput.value = String(fontSize);
  saveFontSize(fontSize);
  tabs.setFontSize(fontSize);
});

const screenReaderInput = byId<HTMLInputElement>('screen-reader');
screenReaderInput.checked = screenReaderMode;
screenReaderInput.addEventListener('change', () => {
  screenReaderMode = screenReaderInput.checked;
  saveScreenReaderMode(screenReaderMode);
  tabs.setScreenReaderMode(screenReaderMode);
});

const themeSelect = byId<HTMLSelectElement>('theme');
themeSelect.value = themeChoice;
function applyTheme(): void {
  const m = mode();
  document.documentElement.dataset.theme = m;
  tabs.setTheme(terminalTheme(m));
  graphs.setPalette(chartPalette(m));
}
themeSelect.addEventListener('change', () => {
  themeChoice = themeSelect.value as ThemeChoice;
  saveThemeChoice(themeChoice);
  applyTheme();
});
onSystemThemeChange(() => {
  if (themeChoice === 'system') applyTheme();
});

// ---- stats stream ---------------------------------------------------------------------

const connection = byId('connection');
function onStatsMessage(event: MessageEvent): void {
  if (typeof event.data !== 'string') return;
  let message: StatsServerMessage;
  try {
    message = JSON.parse(event.data) as StatsServerMessage;
  } catch {
    return;
  }
  switch (message.type) {
    case 'history':
      store.setHistory(message.containerId, message.samples);
      break;
    case 'sample':
      store.add(message.containerId, message.sample);
      break;
    case 'container':
      upsert(message.container);
      break;
    case 'broadcast':
      classroom.addBroadcast(message.broadcast);
      break;
    case 'control':
      tabs.setTeacherControl(message.containerId, message.terminalId, message.teacher);
      break;
    case 'class-ended':
      classroom.classEnded();
      break;
    case 'lesson':
      lessonPanel.update(message.lesson);
      break;
    case 'ports':
      portsPanel.update(message.containerId, message.ports);
      break;
    case 'node':
      // A drain: told until the page goes; serving again clears it.
      if (message.node.state === 'serving') hideNotice();
      else showNotice(message.node.message, 'info', true);
      break;
  }
}

/** A session whose node is gone (or restarted) answers NODE_GONE, with a new session of
 * the node that answered: the user is told, and a reload starts again there. */
function showIfNodeGone(err: unknown): boolean {
  if (!(err instanceof ApiError && err.code === 'NODE_GONE')) return false;
  showNotice(err.message, 'error', true);
  return true;
}

async function renewSessionOrTell(): Promise<void> {
  await renewSession();
  await api.me().catch(showIfNodeGone);
}

let statsOpenedBefore = false;
function connectStats(): void {
  new ReconnectingSocket({
    url: () => socketUrl('/api/stats'),
    onMessage: onStatsMessage,
    shouldReconnect: () => true,
    beforeReconnect: renewSessionOrTell,
    // After a drop, states may have changed unseen (a container exited, another tab deleted one).
    onOpen: () => {
      if (statsOpenedBefore) {
        void refreshContainers();
        lessonPanel.reload();
        portsPanel.reload();
      }
      statsOpenedBefore = true;
    },
    onStateChange: (state, detail) => {
      connection.dataset.state = state;
      if (state === 'open') connection.textContent = 'Live';
      else if (state === 'waiting')
        connection.textContent = `Offline, retrying in ${Math.max(1, Math.round((detail.retryInMs ?? 0) / 1000))} s`;
      else if (state === 'connecting') connection.textContent = 'Connecting…';
      else connection.textContent = 'Disconnected';
    },
  });
}

// ---- start -----------------------------------------------------------------------------

let firstLoad = true;
async function refreshContainers(): Promise<void> {
  try {
    const fresh = await api.listContainers();
    const ids = new Set(fresh.map((c) => c.id));
    for (const id of [...containers.keys()]) if (!ids.has(id)) containers.delete(id);
    for (const c of fresh) containers.set(c.id, c);
  } catch (err) {
    // Unreachable: the connection indicator says so already, and the stream retries.
    if (showIfNodeGone(err)) return;
    if (!(err instanceof ApiError && err.code === 'NETWORK'))
      showNotice(`Cannot list your containers: ${describeError(err)}`);
    return;
  }
  if (firstLoad) {
    firstLoad = false;
    // Back to where the reload left: the container and terminal in the URL, else the
    // newest running container.
    const wanted = readLocation();
    const newestRunning = [...containers.values()]
      .filter((c) => c.state === 'running')
      .sort((a, b) => b.createdAt.localeCompare(a.createdAt))[0];
    const id =
      wanted.containerId && containers.has(wanted.containerId) ? wanted.containerId : (newestRunning?.id ?? null);
    if (id) select(id, id === wanted.containerId ? wanted.terminalId : undefined);
    else {
      render();
      list.focusNewContainer();
    }
    return;
  }
  if (selectedId && !containers.has(selectedId)) selectedId = null;
  render();
}

function showRole(me: MeJson): void {
  if (me.role === 'student') {
    classroom.showStudent(me.student);
    list.setClassLesson(me.student.lesson);
    list.setInClass(true);
  } else if (me.role === 'teacher') {
    document
      .querySelector('.header-controls')
      ?.prepend(h('a', { class: 'button small', href: '/teacher' }, 'Teacher console'));
  } else {
    showNotice('This server needs an access token. Ask your teacher for the class link (it ends in /join/…).');
  }
}

api
  .me()
  .then(showRole)
  .catch((err: unknown) => {
    showIfNodeGone(err);
    /* otherwise an older server without classes: the playground works as before */
  });

// The stream starts after the first REST answer, which carries the session cookie (under
// `npm run dev` the page itself comes from Vite, without one).
void refreshContainers().finally(connectStats);
function loadImages(): void {
  api
    .images()
    .then((images) => list.setImages(images))
    .catch((err: unknown) => showNotice(`Cannot list images: ${describeError(err)}`));
}
loadImages();
api
  .lessons()
  .then((lessons) => list.setLessons(lessons))
  .catch(() => {
    /* a server without lessons: the form offers none */
  });
