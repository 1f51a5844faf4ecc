/**
 * Lessons on disk (lessons/README.md): a folder per lesson with lesson.yaml and one
 * Markdown file per step whose YAML front matter holds the step's checks. Parsed with
 * `yaml`, validated with zod; a bad lesson fails the load with `file:line: message`.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { LineCounter, isMap, isPair, isScalar, parseDocument, type Document } from 'yaml';
import { z } from 'zod';
import { MdockerError } from '../../runtime/errors.js';
import { imageNameSchema } from '../../runtime/spec.js';
import { parseCpus, parseMemoryBytes, parsePidsLimit, type Limits } from '../../runtime/units.js';

export const LESSON_FILE = 'lesson.yaml';
const ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,63}$/;
/** Script checks: the default and the largest time limit. */
export const SCRIPT_DEFAULT_TIMEOUT_MS = 5_000;
export const SCRIPT_MAX_TIMEOUT_MS = 30_000;
const MAX_STEPS = 50;
const DEFAULT_ORDER = 1000;
const MAX_CHECKS_PER_STEP = 10;
const MAX_STEP_TEXT = 64 * 1024;

/**
 * Capabilities a lesson may add (the launcher's names). Each is granted only in a
 * container with a user namespace of its own (SECURITY.md).
 */
export const LESSON_CAPABILITIES = [
  'SYS_ADMIN',
  'NET_ADMIN',
  'NET_RAW',
  'SYS_PTRACE',
  'SYS_CHROOT',
  'SYS_RESOURCE',
  'SYS_TIME',
  'SYS_NICE',
  'IPC_LOCK',
  'MKNOD',
  'AUDIT_WRITE',
] as const;
export type LessonCapability = (typeof LESSON_CAPABILITIES)[number];

export const NAMESPACE_KINDS = ['pid', 'uts', 'mnt', 'ipc', 'net', 'cgroup', 'user'] as const;

/** Where a lesson came from: only these two kinds of source exist, and both may relax. */
export type LessonSource = 'builtin' | 'lessons-dir';

const idSchema = z.string().regex(ID_PATTERN, 'expected lowercase letters, digits and dashes (at most 64)');
const textSchema = (max: number) => z.string().trim().min(1, 'must not be empty').max(max);
const containerPathSchema = z
  .string()
  .max(4096)
  .refine((path) => path.startsWith('/') && !path.includes('\0'), 'expected an absolute path inside the container');

const durationMsSchema = z.union([z.number(), z.string()]).transform((value, ctx) => {
  const match = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(String(value).trim());
  if (!match) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'expected a duration such as 500ms or 5s' });
    return z.NEVER;
  }
  const ms = Math.round(Number(match[1]) * (match[2] === 'ms' ? 1 : 1000));
  if (ms < 100 || ms > SCRIPT_MAX_TIMEOUT_MS) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: `must be from 100ms to ${SCRIPT_MAX_TIMEOUT_MS / 1000}s` });
    return z.NEVER;
  }
  return ms;
});

const patternSchema = z
  .string()
  .min(1)
  .max(200)
  .refine((pattern) => {
    try {
      new RegExp(pattern);
      return true;
    } catch {
      return false;
    }
  }, 'not a valid regular expression');

export const checkSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('hostname-changed') }).strict(),
  z.object({ kind: z.literal('hostname-equals'), value: z.string().min(1).max(64) }).strict(),
  z.object({ kind: z.literal('processes-at-least'), count: z.number().int().min(1).max(100_000) }).strict(),
  z.object({ kind: z.literal('pids-limit-hit') }).strict(),
  z.object({ kind: z.literal('oom-kill') }).strict(),
  z.object({ kind: z.literal('cpu-throttled') }).strict(),
  z.object({ kind: z.literal('limit-changed'), limit: z.enum(['memory', 'cpus', 'pids']) }).strict(),
  z.object({ kind: z.literal('nested-namespace'), namespace: z.enum(NAMESPACE_KINDS) }).strict(),
  z
    .object({ kind: z.literal('mount'), path: containerPathSchema, fstype: z.string().min(1).max(64).optional() })
    .strict(),
  z.object({ kind: z.literal('file-exists'), path: containerPathSchema }).strict(),
  z.object({ kind: z.literal('file-contains'), path: containerPathSchema, pattern: patternSchema }).strict(),
  z.object({ kind: z.literal('port-listening'), port: z.number().int().min(1).max(65535) }).strict(),
  z
    .object({
      kind: z.literal('script'),
      run: z.string().min(1).max(4096),
      timeout: durationMsSchema.optional(),
    })
    .strict(),
]);
export type LessonCheck = z.output<typeof checkSchema>;
export type CheckKind = LessonCheck['kind'];

const limitValue = z.union([z.string().max(64), z.number()]);

const lessonFileSchema = z
  .object({
    id: idSchema,
    title: textSchema(120),
    description: textSchema(1000),
    /** where it is listed: lower first, then by id */
    order: z.number().int().min(0).max(10_000).optional(),
    /** not listed, not creatable (a lesson waiting for a feature) */
    hidden: z.boolean().optional(),
    container: z
      .object({
        image: imageNameSchema.optional(),
        limits: z
          .object({ memory: limitValue.optional(), cpus: limitValue.optional(), pidsLimit: limitValue.optional() })
          .strict()
          .optional(),
        capabilities: z.array(z.enum(LESSON_CAPABILITIES)).max(LESSON_CAPABILITIES.length).optional(),
        seccomp: z.enum(['default', 'unconfined']).optional(),
        /** ignored: a playground container is always on its session's (or class's) network */
        network: z.unknown().optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

const stepFrontMatterSchema = z
  .object({
    id: idSchema,
    title: textSchema(120),
    checks: z.array(checkSchema).min(1, 'a step needs at least one check').max(MAX_CHECKS_PER_STEP),
  })
  .strict();

export interface LessonStep {
  id: string;
  title: string;
  /** Markdown source (the page renders it safely) */
  text: string;
  checks: LessonCheck[];
}

/** What a lesson's container gets: set fields override the server's defaults. */
export interface LessonContainer {
  image: string | null;
  limits: Limits;
  capabilities: LessonCapability[];
  seccomp: 'default' | 'unconfined';
}

export interface Lesson {
  id: string;
  title: string;
  description: string;
  order: number;
  hidden: boolean;
  source: LessonSource;
  dir: string;
  container: LessonContainer;
  steps: LessonStep[];
}

/** The lesson asks for more than the default confinement. */
export function relaxes(container: LessonContainer): boolean {
  return container.capabilities.length > 0 || container.seccomp !== 'default';
}

/** A load failure: the message starts with `file:line:`. */
export class LessonLoadError extends MdockerError {
  constructor(
    readonly file: string,
    readonly line: number,
    reason: string,
  ) {
    super('INVALID_ARGUMENT', `${file}:${line}: ${reason}`, { file, line });
  }
}

type PathKey = string | number;

/** The line of the node at path (or of its nearest existing parent), 1-based. */
function lineOf(doc: Document, counter: LineCounter, path: readonly PathKey[], unknownKey?: string): number {
  for (let depth = path.length; depth >= 0; depth--) {
    const node = depth === 0 ? doc.contents : doc.getIn(path.slice(0, depth), true);
    if (unknownKey !== undefined && depth === path.length && isMap(node)) {
      const pair = node.items.find((item) => isPair(item) && isScalar(item.key) && item.key.value === unknownKey);
      const range = pair && isScalar(pair.key) ? pair.key.range : undefined;
      if (range) return counter.linePos(range[0]).line;
    }
    const range = (node as { range?: [number, number, number] } | null | undefined)?.range;
    if (range) return counter.linePos(range[0]).line;
  }
  return 1;
}

/** YAML text parsed and validated; errors name file and line (lines shifted by `lineOffset`). */
function parseYaml<Schema extends z.ZodTypeAny>(
  schema: Schema,
  text: string,
  file: string,
  lineOffset = 0,
): z.output<Schema> {
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: false, uniqueKeys: true });
  const yamlError = doc.errors[0];
  if (yamlError) {
    const line = yamlError.linePos?.[0]?.line ?? counter.linePos(yamlError.pos[0]).line;
    throw new LessonLoadError(file, line + lineOffset, yamlError.message.split('\n')[0] ?? 'invalid YAML');
  }
  const result = schema.safeParse(doc.toJS());
  if (result.success) return result.data as z.output<Schema>;
  const issue = result.error.issues[0]!;
  const unknownKey = issue.code === z.ZodIssueCode.unrecognized_keys ? issue.keys[0] : undefined;
  const line = lineOf(doc, counter, issue.path, unknownKey);
  const where = issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
  throw new LessonLoadError(file, line + lineOffset, `${where}${issue.message}`);
}

function resolveLimit<T>(
  doc: { file: string; text: string },
  key: string,
  value: string | number | undefined,
  parse: (input: string | number) => T,
): T | null {
  if (value === undefined) return null;
  try {
    return parse(value);
  } catch (err) {
    // The key's line: found in the text (limits are one level deep, keys are unique).
    const index = doc.text.split('\n').findIndex((line) => new RegExp(`^\\s*${key}\\s*:`).test(line));
    const message = err instanceof Error ? err.message : String(err);
    throw new LessonLoadError(doc.file, index < 0 ? 1 : index + 1, `container.limits.${key}: ${message}`);
  }
}

/** "---\n<yaml>\n---\n<markdown>": the YAML and the Markdown. */
function splitFrontMatter(text: string, file: string): { yaml: string; body: string } {
  const lines = text.split('\n');
  if (lines[0]?.trim() !== '---') throw new LessonLoadError(file, 1, 'a step starts with YAML front matter: ---');
  const end = lines.findIndex((line, index) => index > 0 && line.trim() === '---');
  if (end < 0) throw new LessonLoadError(file, 1, 'the front matter has no closing ---');
  return {
    yaml: lines.slice(1, end).join('\n'),
    body: lines
      .slice(end + 1)
      .join('\n')
      .trim(),
  };
}

/** One lesson folder. `shownAs` is the folder as errors name it. */
export function loadLesson(dir: string, source: LessonSource, shownAs: string = dir): Lesson {
  const lessonFile = join(shownAs, LESSON_FILE);
  let text: string;
  try {
    text = readFileSync(join(dir, LESSON_FILE), 'utf8');
  } catch (err) {
    throw new LessonLoadError(lessonFile, 1, `cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  const parsed = parseYaml(lessonFileSchema, text, lessonFile);
  const folder = dir.split('/').filter(Boolean).at(-1);
  if (parsed.id !== folder) {
    throw new LessonLoadError(lessonFile, 1, `id ${parsed.id} must be the folder's name (${folder ?? ''})`);
  }
  const doc = { file: lessonFile, text };
  const limits = parsed.container?.limits ?? {};
  const container: LessonContainer = {
    image: parsed.container?.image ?? null,
    limits: {
      memoryBytes: resolveLimit(doc, 'memory', limits.memory, parseMemoryBytes),
      // Any number of CPUs is a valid lesson; the server's --max-cpus caps it at create.
      cpus: resolveLimit(doc, 'cpus', limits.cpus, (input) => parseCpus(input, Number.MAX_SAFE_INTEGER)),
      pidsLimit: resolveLimit(doc, 'pidsLimit', limits.pidsLimit, parsePidsLimit),
    },
    capabilities: [...new Set(parsed.container?.capabilities ?? [])],
    seccomp: parsed.container?.seccomp ?? 'default',
  };

  const stepFiles = readdirSync(dir)
    .filter((name) => name.endsWith('.md') && name !== 'README.md')
    .sort();
  if (stepFiles.length === 0) throw new LessonLoadError(lessonFile, 1, 'a lesson needs at least one step (NN-name.md)');
  if (stepFiles.length > MAX_STEPS) throw new LessonLoadError(lessonFile, 1, `at most ${MAX_STEPS} steps`);
  const steps: LessonStep[] = [];
  for (const name of stepFiles) {
    const file = join(shownAs, name);
    const { yaml, body } = splitFrontMatter(readFileSync(join(dir, name), 'utf8'), file);
    // The front matter's first line is the file's second.
    const front = parseYaml(stepFrontMatterSchema, yaml, file, 1);
    if (steps.some((step) => step.id === front.id)) throw new LessonLoadError(file, 2, `step id ${front.id} repeats`);
    if (body.length > MAX_STEP_TEXT) throw new LessonLoadError(file, 1, `the text is over ${MAX_STEP_TEXT} bytes`);
    steps.push({ id: front.id, title: front.title, text: body, checks: front.checks });
  }
  return {
    id: parsed.id,
    title: parsed.title,
    description: parsed.description,
    order: parsed.order ?? DEFAULT_ORDER,
    hidden: parsed.hidden ?? false,
    source,
    dir,
    container,
    steps,
  };
}

/** Every lesson folder (one holding lesson.yaml) of each directory; ids are unique across all. */
export function loadLessons(dirs: readonly { dir: string; source: LessonSource }[]): Map<string, Lesson> {
  const lessons = new Map<string, Lesson>();
  for (const { dir, source } of dirs) {
    let names: string[];
    try {
      names = readdirSync(dir).sort();
    } catch (err) {
      throw new MdockerError(
        'INVALID_ARGUMENT',
        `cannot read the lessons directory ${dir}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
      );
    }
    for (const name of names) {
      const lessonDir = join(dir, name);
      if (!statSync(lessonDir).isDirectory()) continue;
      try {
        statSync(join(lessonDir, LESSON_FILE));
      } catch {
        continue;
      }
      const shownAs = relative(process.cwd(), lessonDir) || lessonDir;
      const lesson = loadLesson(lessonDir, source, shownAs.startsWith('..') ? lessonDir : shownAs);
      if (lessons.has(lesson.id)) {
        throw new LessonLoadError(join(shownAs, LESSON_FILE), 1, `lesson id ${lesson.id} is already taken`);
      }
      lessons.set(lesson.id, lesson);
    }
  }
  const sorted = [...lessons.values()].sort((a, b) => a.order - b.order || a.id.localeCompare(b.id));
  return new Map(sorted.map((lesson) => [lesson.id, lesson]));
}
