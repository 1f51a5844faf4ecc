/**
 * The images a playground offers (README: Images in the playground). A session may start
 * only what GET /api/images lists to it: the built-in images, the store's references the
 * server allows (--images) or the teacher pulled through the API, and the images the
 * session saved from its containers (in a class, the class's image too). Never an image
 * id, a digest, another stored reference or a path.
 *
 * Saved images are named under a registry no network can have (`saved.invalid`, RFC 2606),
 * so they never shadow or collide with a real reference: `saved.invalid/<node>/<session
 * label>:<n>`, n counting this server's saves. A session keeps at most a few; they are
 * removed when its class ends (or it leaves it), when it has had no container for the idle
 * timeout (outside a class), and when the server stops; a removal waits for the containers using the image
 * to end. A server's start removes its node's saved images of an earlier run.
 */
import type { Logger } from 'pino';
import { MdockerError, toMdockerError } from '../runtime/errors.js';
import { familiarName, formatReference, parseReference, type ImageReference } from '../runtime/images/reference.js';
import type {
  ImageJson,
  ImagePullJson,
  ImagePullLayerJson,
  ImagePullMessage,
  StatsServerMessage,
} from '../protocol/index.js';

/** Saved images' registry: `.invalid` never resolves, so no pull can reach or fake it. */
export const SAVED_REGISTRY = 'saved.invalid';
export const DEFAULT_MAX_SAVED_PER_SESSION = 3;
/** Finished pulls answered by GET /api/images/pulls/:id, newest kept. */
const FINISHED_PULLS_KEPT = 50;
/** A layer's byte counts go to watchers at most this often (its state changes at once). */
const PULL_PROGRESS_INTERVAL_MS = 100;
/** The built-in images' list (a walk of their trees for sizes) is read again after this. */
const BUILTINS_TTL_MS = 30_000;
/** Pending removals of saved images (in use when first tried) are retried this often. */
const RETRY_REMOVAL_MS = 2_000;

export interface ImageDetails {
  sizeBytes: number;
  description: string | null;
  /** TCP ports of the config's ExposedPorts */
  exposedPorts: number[];
  /** the config's Cmd when it is a shell (bash in a Debian image): a terminal's default */
  shell?: string[] | null;
}

export interface BuiltinImage extends ImageDetails {
  name: string;
}

/** Where the images are: the runtime's (image-backend.ts), or a test's. */
export interface ImageBackend {
  builtins(): Promise<BuiltinImage[]>;
  /** The store's image a normalized tag reference names, or null. */
  stored(reference: string): Promise<ImageDetails | null>;
  /** Every normalized tag reference in the store. */
  references(): Promise<string[]>;
  /** Pulls into the store; progress per layer. */
  pull(reference: string, onProgress: (layer: ImagePullLayerJson) => void): Promise<void>;
  /** The container's changes as a new image tagged reference. */
  commit(containerId: string, reference: string): Promise<void>;
  /** rmi of the reference; CONFLICT while a container uses it, unless forced (then only running ones block) */
  remove(reference: string, force: boolean): Promise<void>;
}

export interface ImageCatalogOptions {
  backend: ImageBackend;
  /** --images: store references every session may start (each a tag reference, not saved.invalid) */
  allowed: string[];
  /** this server's name in saved images' names (--node-id, else "local") */
  node: string;
  logger: Logger;
  maxSavedPerSession?: number;
  /** a session with saved images and no container this long loses them; 0: kept until the server stops */
  idleMs: number;
  /** whether the session has a container now */
  hasContainers: (sessionId: string) => boolean;
  /** whether the session is a student of an open class (its teacher sees its saved images) */
  isStudent: (sessionId: string) => boolean;
  /** a short, non-secret name of a session (the logs' label) */
  label: (sessionId: string) => string;
}

/** Who asks: a student sees its own; the teacher also its students' saved images. */
export interface Viewer {
  sessionId: string;
  teacher: boolean;
  /**
   * images the session's create may name though the list does not offer them: its class's
   * (a saved image the teacher picked) and its lesson's (the operator's choice)
   */
  trusted?: string[];
  /** a student's class's image: the student's list is that and its own saved images */
  classImage?: string | null;
}

interface SavedImage {
  name: string;
  reference: string;
  sessionId: string;
  savedAt: string;
  details: ImageDetails;
}

interface Pull {
  json: ImagePullJson;
  /** resolves when the pull ends or its first layer moves */
  started: Promise<void>;
  markStarted: () => void;
  normalized: string;
  watchers: Set<(message: ImagePullMessage) => void>;
  lastSentMs: Map<string, number>;
}

function listedName(ref: ImageReference): string {
  return `${familiarName(ref)}:${ref.tag ?? 'latest'}`;
}

/** A tag reference a user may name for the store: parsed, no digest, not a saved image's. */
export function storeReference(input: string, what: string): ImageReference {
  const ref = parseReference(input);
  if (ref.digest !== null) {
    throw new MdockerError(
      'INVALID_ARGUMENT',
      `${what} ${JSON.stringify(input.slice(0, 128))}: name a tag, not a digest`,
    );
  }
  if (ref.registry === SAVED_REGISTRY) {
    throw new MdockerError(
      'INVALID_ARGUMENT',
      `${what} ${JSON.stringify(input.slice(0, 128))}: ${SAVED_REGISTRY} is reserved for saved images`,
    );
  }
  return ref;
}

function notOffered(name: string, available: string[]): MdockerError {
  // NOT_FOUND whether or not the store has it: what is not offered is not disclosed either.
  return new MdockerError(
    'NOT_FOUND',
    `unknown image ${JSON.stringify(name.slice(0, 128))} (available here: ${available.join(', ') || 'none'})`,
    { image: name.slice(0, 128), available },
  );
}

export class ImageCatalog {
  readonly #options: ImageCatalogOptions;
  readonly #backend: ImageBackend;
  readonly #logger: Logger;
  readonly #maxSaved: number;
  /** normalized tag references every session may start: --images and the teacher's pulls */
  readonly #offered = new Set<string>();
  readonly #saved = new Map<string, SavedImage[]>();
  /** saved images' sessions' last moment with a container (idle removal) */
  readonly #lastActiveMs = new Map<string, number>();
  /** saves in flight per session, counted against the cap */
  readonly #saving = new Map<string, number>();
  #savedCount = 0;
  /** saved references whose removal waits for their containers */
  readonly #pendingRemovals = new Set<string>();
  readonly #pulls = new Map<string, Pull>();
  readonly #pulling = new Map<string, Pull>();
  #pullCount = 0;
  #builtins: { at: number; list: Promise<BuiltinImage[]> } | null = null;
  #timer: NodeJS.Timeout | null = null;
  #closed = false;

  constructor(options: ImageCatalogOptions) {
    this.#options = options;
    this.#backend = options.backend;
    this.#logger = options.logger;
    this.#maxSaved = options.maxSavedPerSession ?? DEFAULT_MAX_SAVED_PER_SESSION;
    for (const reference of options.allowed) this.#offered.add(formatReference(storeReference(reference, '--images')));
  }

  /** Removes this node's saved images of an earlier run, then sweeps now and then. */
  async start(): Promise<void> {
    const prefix = `${SAVED_REGISTRY}/${this.#options.node}/`;
    try {
      for (const reference of await this.#backend.references()) {
        if (!reference.startsWith(prefix)) continue;
        await this.#backend
          .remove(reference, true)
          .catch((err: unknown) =>
            this.#logger.warn({ err, reference }, 'could not remove a saved image of an earlier run'),
          );
      }
    } catch (err) {
      this.#logger.warn({ err }, 'could not read the image store for saved images of an earlier run');
    }
    this.#timer = setInterval(() => void this.#sweep(), RETRY_REMOVAL_MS);
    this.#timer.unref();
  }

  /** At the server's stop, after its containers are gone: every saved image goes. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    const references = [...this.#pendingRemovals];
    for (const saved of this.#saved.values()) references.push(...saved.map((image) => image.reference));
    this.#saved.clear();
    this.#pendingRemovals.clear();
    for (const reference of references) {
      await this.#backend
        .remove(reference, true)
        .catch((err: unknown) =>
          this.#logger.warn({ err, reference }, 'could not remove a saved image at the stop; the next start does'),
        );
    }
  }

  #builtinList(): Promise<BuiltinImage[]> {
    const now = Date.now();
    if (this.#builtins === null || now - this.#builtins.at > BUILTINS_TTL_MS) {
      const list = this.#backend.builtins();
      this.#builtins = { at: now, list };
      list.catch(() => (this.#builtins = null));
    }
    return this.#builtins.list;
  }

  /** What the viewer may start, built-in first. */
  async list(viewer: Viewer): Promise<ImageJson[]> {
    const all = await this.#list(viewer);
    const classImage = viewer.classImage;
    if (classImage === undefined || classImage === null) return all;
    return all.filter((image) => image.name === classImage || image.kind === 'saved');
  }

  /** Whether the name is one of the session's own saved images. */
  isOwnSaved(sessionId: string, name: string): boolean {
    return (this.#saved.get(sessionId) ?? []).some((image) => image.name === name || image.reference === name);
  }

  async #list(viewer: Viewer): Promise<ImageJson[]> {
    const images: ImageJson[] = (await this.#builtinList()).map((image) => ({
      name: image.name,
      sizeBytes: image.sizeBytes,
      description: image.description,
      exposedPorts: image.exposedPorts,
      kind: 'builtin',
    }));
    for (const reference of [...this.#offered].sort()) {
      const details = await this.#backend.stored(reference);
      if (details === null) continue;
      images.push({ name: listedName(parseReference(reference)), ...details, kind: 'stored' });
    }
    for (const saved of this.#visibleSaved(viewer)) {
      images.push({ name: saved.name, ...saved.details, kind: 'saved', savedAt: saved.savedAt });
    }
    return images;
  }

  #visibleSaved(viewer: Viewer): SavedImage[] {
    const out: SavedImage[] = [];
    for (const [sessionId, saved] of this.#saved) {
      const own = sessionId === viewer.sessionId;
      if (own || (viewer.teacher && this.#options.isStudent(sessionId))) out.push(...saved);
      else out.push(...saved.filter((image) => viewer.trusted?.includes(image.name)));
    }
    return out;
  }

  /**
   * The runtime's name for what a create names, if the viewer may start it; else a 400
   * naming the image and what is offered.
   */
  async resolve(
    viewer: Viewer,
    name: string,
  ): Promise<{ image: string; exposedPorts: number[]; shell: string[] | null }> {
    const builtin = (await this.#builtinList()).find((image) => image.name === name);
    if (builtin) return { image: builtin.name, exposedPorts: builtin.exposedPorts, shell: builtin.shell ?? null };
    let ref: ImageReference | null = null;
    try {
      ref = parseReference(name);
    } catch {
      // not a reference either: refused below
    }
    if (ref !== null && ref.digest === null) {
      const normalized = formatReference(ref);
      if (ref.registry === SAVED_REGISTRY) {
        const saved = this.#visibleSaved(viewer).find((image) => image.reference === normalized);
        if (saved) {
          return { image: saved.name, exposedPorts: saved.details.exposedPorts, shell: saved.details.shell ?? null };
        }
      } else if (this.#offered.has(normalized) || viewer.trusted?.includes(name)) {
        const details = await this.#backend.stored(normalized);
        if (details !== null) {
          return { image: listedName(ref), exposedPorts: details.exposedPorts, shell: details.shell ?? null };
        }
      }
    }
    throw notOffered(
      name,
      (await this.#list(viewer)).map((image) => image.name),
    );
  }

  // ---- pulls ----

  /**
   * Starts pulling a reference in the background (one pull per reference at a time: a
   * second request joins it); once done, it is offered to every session.
   */
  startPull(input: string): ImagePullJson {
    if (this.#closed) throw new MdockerError('CONFLICT', 'the server is shutting down');
    const ref = storeReference(input, 'reference');
    const normalized = formatReference(ref);
    const running = this.#pulling.get(normalized);
    if (running) return running.json;
    let markStarted: () => void = () => undefined;
    const started = new Promise<void>((resolve) => (markStarted = resolve));
    const pull: Pull = {
      started,
      markStarted,
      json: {
        id: `p${++this.#pullCount}-${Date.now().toString(36)}`,
        reference: listedName(ref),
        state: 'pulling',
        layers: [],
        error: null,
        startedAt: new Date().toISOString(),
        finishedAt: null,
      },
      normalized,
      watchers: new Set(),
      lastSentMs: new Map(),
    };
    this.#pulls.set(pull.json.id, pull);
    this.#pulling.set(normalized, pull);
    this.#logger.info({ event: 'image.pull', reference: normalized, pullId: pull.json.id }, 'pulling an image');
    void this.#backend
      .pull(normalized, (layer) => this.#onLayer(pull, layer))
      .then(
        () => {
          this.#offered.add(normalized);
          this.#finish(pull, null);
        },
        (err: unknown) => this.#finish(pull, registryError(err)),
      );
    return pull.json;
  }

  /**
   * startPull, answering with the registry's error when the pull fails before its first
   * layer moves (a bad name, an unreachable or refusing registry) within waitMs.
   */
  async pull(input: string, waitMs: number): Promise<ImagePullJson> {
    const json = this.startPull(input);
    const pull = this.#pulls.get(json.id)!;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([pull.started, new Promise<void>((resolve) => (timer = setTimeout(resolve, waitMs)))]);
    clearTimeout(timer);
    const now = this.pullJson(json.id);
    if (now.state === 'failed' && now.error !== null) {
      throw new MdockerError(now.error.code as MdockerError['code'], now.error.message, { pullId: now.id });
    }
    return now;
  }

  #onLayer(pull: Pull, layer: ImagePullLayerJson): void {
    pull.markStarted();
    const index = pull.json.layers.findIndex((known) => known.digest === layer.digest);
    const previous = index === -1 ? null : pull.json.layers[index]!;
    if (index === -1) pull.json.layers.push(layer);
    else pull.json.layers[index] = layer;
    const now = Date.now();
    const changed = previous === null || previous.status !== layer.status;
    if (!changed && now - (pull.lastSentMs.get(layer.digest) ?? 0) < PULL_PROGRESS_INTERVAL_MS) return;
    pull.lastSentMs.set(layer.digest, now);
    this.#send(pull, { type: 'layer', pullId: pull.json.id, layer: { ...layer } });
  }

  #finish(pull: Pull, error: MdockerError | null): void {
    pull.json.state = error === null ? 'done' : 'failed';
    pull.json.error = error === null ? null : { code: error.code, message: error.message };
    pull.json.finishedAt = new Date().toISOString();
    this.#pulling.delete(pull.normalized);
    pull.markStarted();
    this.#logger.info(
      { event: 'image.pulled', reference: pull.normalized, pullId: pull.json.id, error: pull.json.error?.message },
      error === null ? 'image pulled' : 'image pull failed',
    );
    this.#send(pull, { type: 'pull', pull: this.pullJson(pull.json.id) });
    pull.watchers.clear();
    const finished = [...this.#pulls.values()].filter((known) => known.json.state !== 'pulling');
    for (const old of finished.slice(0, Math.max(0, finished.length - FINISHED_PULLS_KEPT))) {
      this.#pulls.delete(old.json.id);
    }
  }

  #send(pull: Pull, message: ImagePullMessage): void {
    for (const watcher of pull.watchers) watcher(message);
  }

  pullJson(id: string): ImagePullJson {
    const pull = this.#pulls.get(id);
    if (!pull) throw new MdockerError('NOT_FOUND', `no such pull: ${id.slice(0, 32)}`);
    return { ...pull.json, layers: pull.json.layers.map((layer) => ({ ...layer })) };
  }

  /**
   * Follows a pull: its state at once, its layers as they move, its end; the returned
   * function stops. done: called after the last message (the pull has ended).
   */
  watchPull(id: string, send: (message: ImagePullMessage) => void, done: () => void): () => void {
    const json = this.pullJson(id);
    send({ type: 'pull', pull: json });
    if (json.state !== 'pulling') {
      done();
      return () => undefined;
    }
    const pull = this.#pulls.get(id)!;
    const watcher = (message: ImagePullMessage): void => {
      send(message);
      if (message.type === 'pull' && message.pull.state !== 'pulling') done();
    };
    pull.watchers.add(watcher);
    return () => pull.watchers.delete(watcher);
  }

  // ---- saved images ----

  /** The container's changes as an image of the session's own. */
  async save(sessionId: string, containerId: string): Promise<ImageJson> {
    if (this.#closed) throw new MdockerError('CONFLICT', 'the server is shutting down');
    const count = (this.#saved.get(sessionId)?.length ?? 0) + (this.#saving.get(sessionId) ?? 0);
    if (count >= this.#maxSaved) {
      throw new MdockerError(
        'CONFLICT',
        `you have ${this.#maxSaved} saved images, the most this server keeps per session: delete one first`,
        { cap: 'savedImagesPerSession', limit: this.#maxSaved },
      );
    }
    this.#saving.set(sessionId, (this.#saving.get(sessionId) ?? 0) + 1);
    const reference = `${SAVED_REGISTRY}/${this.#options.node}/${this.#options.label(sessionId)}:${++this.#savedCount}`;
    try {
      await this.#backend.commit(containerId, reference);
    } finally {
      const left = (this.#saving.get(sessionId) ?? 1) - 1;
      if (left <= 0) this.#saving.delete(sessionId);
      else this.#saving.set(sessionId, left);
    }
    const normalized = formatReference(parseReference(reference));
    const details = await this.#backend.stored(normalized);
    if (details === null) throw new MdockerError('INTERNAL', `the saved image ${reference} is not in the store`);
    const saved: SavedImage = {
      name: listedName(parseReference(reference)),
      reference: normalized,
      sessionId,
      savedAt: new Date().toISOString(),
      details,
    };
    // The session ended while it saved: the image goes with the rest.
    if (this.#closed) {
      this.#pendingRemovals.add(normalized);
      throw new MdockerError('CONFLICT', 'the server is shutting down');
    }
    this.#saved.set(sessionId, [...(this.#saved.get(sessionId) ?? []), saved]);
    this.#lastActiveMs.set(sessionId, Date.now());
    this.#logger.info({ event: 'image.saved', reference: normalized, containerId }, 'container saved as an image');
    return { name: saved.name, ...details, kind: 'saved', savedAt: saved.savedAt };
  }

  /** Deletes one of the session's saved images (NOT_FOUND for anything else). */
  async removeSaved(sessionId: string, name: string): Promise<void> {
    const saved = this.#saved.get(sessionId) ?? [];
    const image = saved.find((known) => known.name === name);
    if (!image)
      throw new MdockerError('NOT_FOUND', `no saved image of yours named ${JSON.stringify(name.slice(0, 128))}`);
    this.#setSaved(
      sessionId,
      saved.filter((known) => known !== image),
    );
    await this.#remove(image.reference);
  }

  #setSaved(sessionId: string, saved: SavedImage[]): void {
    if (saved.length > 0) this.#saved.set(sessionId, saved);
    else {
      this.#saved.delete(sessionId);
      this.#lastActiveMs.delete(sessionId);
    }
  }

  /** The session ended (its class did, it left it, or it idled): its saved images go. */
  async endSession(sessionId: string): Promise<void> {
    const saved = this.#saved.get(sessionId) ?? [];
    this.#setSaved(sessionId, []);
    for (const image of saved) await this.#remove(image.reference);
  }

  /** Follows the sessions' pages' messages: a class's end ends its students' saved images. */
  message(sessionId: string, message: StatsServerMessage): void {
    if (message.type === 'class-ended') void this.endSession(sessionId);
  }

  async #remove(reference: string): Promise<void> {
    try {
      await this.#backend.remove(reference, false);
      this.#pendingRemovals.delete(reference);
      this.#logger.info({ event: 'image.removed', reference }, 'saved image removed');
    } catch (err) {
      const error = toMdockerError(err);
      if (error.code === 'NOT_FOUND') {
        this.#pendingRemovals.delete(reference);
        return;
      }
      // In use: removed once its containers have ended. Another failure is retried too,
      // and logged once.
      if (error.code !== 'CONFLICT' && !this.#pendingRemovals.has(reference)) {
        this.#logger.warn({ err, reference }, 'removing a saved image failed; trying again');
      }
      this.#pendingRemovals.add(reference);
    }
  }

  async #sweep(): Promise<void> {
    for (const reference of [...this.#pendingRemovals]) await this.#remove(reference);
    const now = Date.now();
    for (const sessionId of [...this.#saved.keys()]) {
      // A student keeps them while the class lasts (its end removes them).
      if (this.#options.hasContainers(sessionId) || this.#options.isStudent(sessionId)) {
        this.#lastActiveMs.set(sessionId, now);
        continue;
      }
      const idleMs = this.#options.idleMs;
      if (idleMs > 0 && now - (this.#lastActiveMs.get(sessionId) ?? now) >= idleMs) await this.endSession(sessionId);
    }
  }

  /** Saved images not yet removed (tests). */
  get pendingRemovals(): string[] {
    return [...this.#pendingRemovals];
  }
}

/** A pull's failure as the API says it: the registry's answer, one line, in a 4xx/5xx. */
function registryError(err: unknown): MdockerError {
  const error = toMdockerError(err);
  // One line, the hint at its end kept (OpenSSL's errors end in a newline of their own).
  const message = error.message.replace(/\s*\n\s*/g, ' ').slice(0, 500);
  // The caller's own 401 means its token; the registry's refusal is a 403 here.
  if (error.code === 'UNAUTHORIZED') return new MdockerError('FORBIDDEN', message);
  return new MdockerError(error.code, message);
}
