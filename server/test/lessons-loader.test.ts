import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { LessonLoadError, loadLesson, loadLessons } from '../src/playground/lessons/loader.js';

const root = mkdtempSync(join(tmpdir(), 'mdocker-lessons-loader-'));
const builtinDir = fileURLToPath(new URL('../../../lessons', import.meta.url));

const LESSON_YAML = `id: demo
title: A demo
description: Two steps.
container:
  image: busybox
  limits: { memory: 64m, cpus: 0.5, pidsLimit: 20 }
  capabilities: [SYS_ADMIN]
`;

const STEP_ONE = `---
id: rename
title: Rename it
checks:
  - kind: hostname-changed
---
Run \`hostname my-box\`.
`;

const STEP_TWO = `---
id: hang
title: A script
checks:
  - kind: script
    run: test -f /tmp/x
    timeout: 2s
  - kind: file-contains
    path: /tmp/x
    pattern: '^ok$'
---
Text.
`;

/** A lesson folder `id` under a fresh parent, with these files. */
function lessonDir(id: string, files: Record<string, string>): string {
  const parent = mkdtempSync(join(root, 'set-'));
  const dir = join(parent, id);
  mkdirSync(dir);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

function loadError(dir: string): LessonLoadError {
  try {
    loadLesson(dir, 'lessons-dir', 'L');
  } catch (err) {
    assert.ok(err instanceof LessonLoadError, String(err));
    return err;
  }
  assert.fail('the lesson loaded');
}

describe('the lesson loader', () => {
  after(() => rmSync(root, { recursive: true, force: true }));

  it('loads a lesson: its container settings, its steps in file order with their checks and Markdown', () => {
    const dir = lessonDir('demo', {
      'lesson.yaml': LESSON_YAML,
      '02-hang.md': STEP_TWO,
      '01-rename.md': STEP_ONE,
    });
    const lesson = loadLesson(dir, 'builtin');
    assert.equal(lesson.id, 'demo');
    assert.equal(lesson.hidden, false);
    assert.deepEqual(lesson.container, {
      image: 'busybox',
      limits: { memoryBytes: 64 * 1024 * 1024, cpus: 0.5, pidsLimit: 20 },
      capabilities: ['SYS_ADMIN'],
      seccomp: 'default',
    });
    assert.deepEqual(
      lesson.steps.map((step) => step.id),
      ['rename', 'hang'],
    );
    assert.equal(lesson.steps[0]!.text, 'Run `hostname my-box`.');
    assert.deepEqual(lesson.steps[1]!.checks, [
      { kind: 'script', run: 'test -f /tmp/x', timeout: 2000 },
      { kind: 'file-contains', path: '/tmp/x', pattern: '^ok$' },
    ]);
  });

  it('names the file and line of an unknown check kind', () => {
    const dir = lessonDir('demo', {
      'lesson.yaml': LESSON_YAML,
      '01-rename.md': STEP_ONE.replace('hostname-changed', 'hostname-chnaged'),
    });
    const err = loadError(dir);
    assert.equal(err.file, 'L/01-rename.md');
    assert.equal(err.line, 5, err.message);
    assert.match(err.message, /^L\/01-rename\.md:5: checks\.0\.kind: /);
  });

  it('names the line of a bad field deep in a step, counting the front matter from the second line', () => {
    const dir = lessonDir('demo', {
      'lesson.yaml': LESSON_YAML,
      '01-hang.md': STEP_TWO.replace('path: /tmp/x\n', 'path: tmp/x\n'),
    });
    const err = loadError(dir);
    assert.equal(err.line, 9, err.message);
    assert.match(err.message, /checks\.1\.path: expected an absolute path/);
  });

  it('names the line of an unknown key, a bad limit and a YAML syntax error in lesson.yaml', () => {
    const unknown = loadError(
      lessonDir('demo', { 'lesson.yaml': LESSON_YAML + 'colour: blue\n', '01-rename.md': STEP_ONE }),
    );
    assert.match(unknown.message, /^L\/lesson\.yaml:8: .*colour/);
    const limit = loadError(
      lessonDir('demo', {
        'lesson.yaml': LESSON_YAML.replace('{ memory: 64m, cpus: 0.5, pidsLimit: 20 }', '\n    memory: 1k'),
        '01-rename.md': STEP_ONE,
      }),
    );
    assert.match(limit.message, /^L\/lesson\.yaml:7: container\.limits\.memory: /);
    const syntax = loadError(
      lessonDir('demo', { 'lesson.yaml': 'id: demo\ntitle: [unclosed\n', '01-rename.md': STEP_ONE }),
    );
    assert.match(syntax.message, /^L\/lesson\.yaml:\d+: /);
    const capability = loadError(
      lessonDir('demo', {
        'lesson.yaml': LESSON_YAML.replace('[SYS_ADMIN]', '[SYS_ADMIN, SYS_MODULE]'),
        '01-rename.md': STEP_ONE,
      }),
    );
    assert.match(capability.message, /^L\/lesson\.yaml:7: container\.capabilities\.1: /);
  });

  it('refuses a step without front matter, a repeated step id, an id that is not the folder and a lesson without steps', () => {
    assert.match(
      loadError(lessonDir('demo', { 'lesson.yaml': LESSON_YAML, '01-a.md': 'no front matter\n' })).message,
      /^L\/01-a\.md:1: a step starts with YAML front matter/,
    );
    assert.match(
      loadError(lessonDir('demo', { 'lesson.yaml': LESSON_YAML, '01-a.md': STEP_ONE, '02-b.md': STEP_ONE })).message,
      /^L\/02-b\.md:2: step id rename repeats/,
    );
    assert.match(
      loadError(lessonDir('other', { 'lesson.yaml': LESSON_YAML, '01-a.md': STEP_ONE })).message,
      /must be the folder's name/,
    );
    assert.match(
      loadError(lessonDir('demo', { 'lesson.yaml': LESSON_YAML })).message,
      /^L\/lesson\.yaml:1: a lesson needs at least one step/,
    );
  });

  it('refuses a check with an invalid regular expression or a script time limit past the maximum', () => {
    assert.match(
      loadError(lessonDir('demo', { 'lesson.yaml': LESSON_YAML, '01-a.md': STEP_TWO.replace("'^ok$'", "'(('") }))
        .message,
      /:10: checks\.1\.pattern: not a valid regular expression/,
    );
    assert.match(
      loadError(lessonDir('demo', { 'lesson.yaml': LESSON_YAML, '01-a.md': STEP_TWO.replace('2s', '45s') })).message,
      /:7: checks\.0\.timeout: must be from 100ms to 30s/,
    );
  });

  it('loads the built-in lessons, in their order, none hidden', () => {
    const lessons = loadLessons([{ dir: builtinDir, source: 'builtin' }]);
    assert.deepEqual(
      [...lessons.keys()],
      [
        'pid-namespace',
        'uts-namespace',
        'mount-namespace',
        'pids-cgroup',
        'memory-cgroup',
        'cpu-cgroup',
        'user-namespace',
        'network-namespace',
      ],
    );
    for (const lesson of lessons.values()) assert.equal(lesson.hidden, false, lesson.id);
    for (const lesson of lessons.values()) assert.ok(lesson.steps.length >= 1, lesson.id);
  });

  it('refuses a second lesson with an id already taken (a --lessons-dir cannot replace a built-in one)', () => {
    const dir = lessonDir('pid-namespace', {
      'lesson.yaml': LESSON_YAML.replace('id: demo', 'id: pid-namespace'),
      '01-a.md': STEP_ONE,
    });
    assert.throws(
      () =>
        loadLessons([
          { dir: builtinDir, source: 'builtin' },
          { dir: join(dir, '..'), source: 'lessons-dir' },
        ]),
      /lesson id pid-namespace is already taken/,
    );
  });
});
