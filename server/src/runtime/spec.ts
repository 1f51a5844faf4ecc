/**
 * Zod schemas for what users send to create or change a container, shared by the CLI and
 * the HTTP API so both accept and reject exactly the same input, with the same message.
 */
import { z } from 'zod';
import { MdockerError } from './errors.js';
import { IMAGE_NAME_PATTERN, MAX_IMAGE_NAME_LENGTH, parseReference } from './images/reference.js';
import { parseCpus, parseMemoryBytes, parsePidsLimit, type Limits } from './units.js';

/** Docker's container name rule; the name also becomes a directory and a cgroup name. */
export const CONTAINER_NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
export const MAX_CONTAINER_NAME_LENGTH = 128;

export { IMAGE_NAME_PATTERN, MAX_IMAGE_NAME_LENGTH } from './images/reference.js';
export const MAX_IMAGE_REFERENCE_LENGTH = 512;

// RFC 1123: labels of letters, digits and inner hyphens, 63 bytes each. RFC 1123 allows
// 253 in total, but sethostname(2) refuses more than 64 (__NEW_UTS_LEN), so a longer name
// would only fail later, inside the launcher.
const HOSTNAME_LABEL_PATTERN = /^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$/;
export const MAX_HOSTNAME_LENGTH = 64;

const ENV_KEY_PATTERN = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

// Strings become execve() arguments: a NUL would silently cut them short.
const NUL = '\0';

export const containerNameSchema = z
  .string()
  .max(MAX_CONTAINER_NAME_LENGTH, `invalid container name: at most ${MAX_CONTAINER_NAME_LENGTH} characters`)
  .regex(CONTAINER_NAME_PATTERN, 'invalid container name: only [a-zA-Z0-9][a-zA-Z0-9_.-]* are allowed');

/**
 * A built-in image's name, a stored image's reference (`alpine:3`, `host:5000/team/app`) or
 * its id (`sha256:<hex>` or a prefix): names are parsed, never used as paths.
 */
export const imageNameSchema = z
  .string()
  .max(MAX_IMAGE_REFERENCE_LENGTH, `invalid image name: at most ${MAX_IMAGE_REFERENCE_LENGTH} characters`)
  .superRefine((name, ctx) => {
    if (IMAGE_NAME_PATTERN.test(name) && name.length <= MAX_IMAGE_NAME_LENGTH) return;
    if (/^sha256:[a-f0-9]{4,64}$/.test(name)) return;
    try {
      parseReference(name);
    } catch {
      ctx.addIssue({
        code: 'custom',
        message:
          `invalid image name ${JSON.stringify(name.slice(0, 80))}: expected a name (busybox), a reference ` +
          '(alpine:3, host:5000/team/app@sha256:...) or an image id',
      });
    }
  });

export const hostnameSchema = z.string().superRefine((hostname, ctx) => {
  if (hostname.length === 0 || hostname.length > MAX_HOSTNAME_LENGTH) {
    ctx.addIssue({
      code: 'custom',
      message: `invalid hostname: must be 1 to ${MAX_HOSTNAME_LENGTH} characters (the kernel's limit)`,
    });
    return;
  }
  const badLabel = hostname.split('.').find((label) => !HOSTNAME_LABEL_PATTERN.test(label));
  if (badLabel !== undefined) {
    ctx.addIssue({
      code: 'custom',
      message:
        `invalid hostname ${JSON.stringify(hostname.slice(0, 64))}: each dot-separated label must be ` +
        '1 to 63 letters, digits or inner hyphens',
    });
  }
});

export const envEntrySchema = z.string().superRefine((entry, ctx) => {
  const equals = entry.indexOf('=');
  const key = equals === -1 ? entry : entry.slice(0, equals);
  if (equals === -1 || !ENV_KEY_PATTERN.test(key) || entry.includes(NUL)) {
    ctx.addIssue({
      code: 'custom',
      message:
        `invalid environment entry ${JSON.stringify(entry.slice(0, 64))}: expected KEY=VALUE ` +
        'with a KEY of letters, digits, "_", "." or "-" not starting with a digit, and no NUL',
    });
  }
});

export const envSchema = z.array(envEntrySchema);

export const cmdSchema = z
  .array(z.string().refine((arg) => !arg.includes(NUL), 'invalid command: arguments must not contain NUL'))
  .min(1, 'invalid command: expected at least the program to run')
  .refine((cmd) => cmd[0] !== '', 'invalid command: the program name must not be empty');

/** Adds a parse function's MdockerError as a zod issue, so it surfaces as one line. */
function refinedWith<T>(parse: (value: string | number) => T) {
  return z.union([z.string(), z.number()]).transform((value, ctx): T => {
    try {
      return parse(value);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: err instanceof Error ? err.message : String(err) });
      return z.NEVER;
    }
  });
}

/**
 * A schema built on its first parse: `mdocker run` starts faster without the limits
 * schemas, which only `update`, the API's limits route and the tests parse with.
 */
function builtOnFirstUse<Schema extends z.ZodTypeAny>(build: () => Schema): z.ZodLazy<Schema> {
  let schema: Schema | undefined;
  return z.lazy(() => (schema ??= build()));
}

/** Raw limits as users write them: `{ memory: "64m", cpus: 0.5, pidsLimit: 100 }`. */
export const limitsInputSchema = builtOnFirstUse(() =>
  z
    .object({
      memory: z.union([z.string(), z.number()]).optional(),
      cpus: z.union([z.string(), z.number()]).optional(),
      pidsLimit: z.union([z.string(), z.number()]).optional(),
    })
    .strict(),
);

export type LimitsInputJson = z.input<typeof limitsInputSchema>;

/** limitsInputSchema checked and converted: absent fields become null (no limit). */
export const limitsSchema = builtOnFirstUse(() =>
  z
    .object({
      memory: refinedWith(parseMemoryBytes).optional(),
      cpus: refinedWith((value) => parseCpus(value)).optional(),
      pidsLimit: refinedWith(parsePidsLimit).optional(),
    })
    .strict()
    .transform((limits): Limits => ({
      memoryBytes: limits.memory ?? null,
      cpus: limits.cpus ?? null,
      pidsLimit: limits.pidsLimit ?? null,
    })),
);

/** A limits update: only the fields given change, so absent fields stay absent. */
export const limitsUpdateSchema = builtOnFirstUse(() =>
  z
    .object({
      memory: refinedWith(parseMemoryBytes).optional(),
      cpus: refinedWith((value) => parseCpus(value)).optional(),
      pidsLimit: refinedWith(parsePidsLimit).optional(),
    })
    .strict()
    .refine(
      (update) => Object.keys(update).length > 0,
      'invalid update: expected at least one of memory, cpus, pidsLimit',
    )
    .transform((update): Partial<Limits> => {
      const limits: Partial<Limits> = {};
      if (update.memory !== undefined) limits.memoryBytes = update.memory;
      if (update.cpus !== undefined) limits.cpus = update.cpus;
      if (update.pidsLimit !== undefined) limits.pidsLimit = update.pidsLimit;
      return limits;
    }),
);

/** Everything a container is created from; limits sit at the top level, as in the HTTP body. */
export const containerSpecInputSchema = z
  .object({
    image: imageNameSchema.optional(),
    name: containerNameSchema.optional(),
    hostname: hostnameSchema.optional(),
    env: envSchema.optional(),
    cmd: cmdSchema.optional(),
    memory: refinedWith(parseMemoryBytes).optional(),
    cpus: refinedWith((value) => parseCpus(value)).optional(),
    pidsLimit: refinedWith(parsePidsLimit).optional(),
  })
  .strict()
  .transform(({ memory, cpus, pidsLimit, ...rest }) => ({
    ...rest,
    limits: { memoryBytes: memory ?? null, cpus: cpus ?? null, pidsLimit: pidsLimit ?? null } satisfies Limits,
  }));

export type ContainerSpecInput = z.input<typeof containerSpecInputSchema>;
export type ContainerSpec = z.output<typeof containerSpecInputSchema>;

/**
 * Parses with a schema or throws INVALID_ARGUMENT with one line: our own messages as they
 * are (they already name the field), zod's prefixed with the field's path.
 */
export function validateInput<Schema extends z.ZodTypeAny>(schema: Schema, input: unknown): z.output<Schema> {
  const result = schema.safeParse(input);
  if (result.success) return result.data as z.output<Schema>;
  const issues = result.error.issues.map((issue) => ({ path: issue.path.join('.'), message: issueMessage(issue) }));
  const first = issues[0] ?? { path: '', message: 'invalid input' };
  throw new MdockerError('INVALID_ARGUMENT', first.message, { issues });
}

function issueMessage(issue: z.ZodIssue): string {
  if (issue.code === 'custom' || issue.message.startsWith('invalid ')) return issue.message;
  if (issue.code === 'unrecognized_keys') {
    return `unknown field${issue.keys.length === 1 ? '' : 's'} ${issue.keys.map((key) => JSON.stringify(key)).join(', ')}`;
  }
  const where = issue.path.length > 0 ? `invalid ${issue.path.join('.')}: ` : 'invalid input: ';
  return where + issue.message.charAt(0).toLowerCase() + issue.message.slice(1);
}
