/**
 * The two questions the runtime asks systemd over D-Bus (with dbus-next): which unit holds
 * a process and whether it delegates its cgroup, and "start a transient scope with
 * Delegate=yes holding this process" (what `systemd-run --scope -p Delegate=yes` and
 * container engines' systemd cgroup drivers ask).
 */
import { existsSync } from 'node:fs';
import type { MessageBus } from 'dbus-next';
import { MdockerError } from '../errors.js';

const SYSTEMD_BUS_NAME = 'org.freedesktop.systemd1';
const SYSTEMD_PATH = '/org/freedesktop/systemd1';
const MANAGER_INTERFACE = 'org.freedesktop.systemd1.Manager';
const SYSTEM_BUS_SOCKET = '/run/dbus/system_bus_socket';
const CALL_TIMEOUT_MS = 30_000;

export interface SystemdUnit {
  /** The unit's name, e.g. "mdocker.service". */
  id: string;
  /** Its cgroup as systemd names it: relative to the unified hierarchy's root. */
  controlGroup: string;
  /** Delegate=yes: the unit's processes may manage the cgroups below its own. */
  delegate: boolean;
}

export interface SystemdManager {
  unitOf(pid: number): Promise<SystemdUnit>;
  /** Starts `name` (a .scope) holding `pid`, with Delegate=yes; resolves once systemd accepted the job. */
  startDelegatedScope(name: string, pid: number, description: string): Promise<void>;
  close(): void;
}

/** sd_booted(3): systemd is the init system of this host. */
export function systemdBooted(): boolean {
  return existsSync('/run/systemd/system');
}

function dbusFailure(action: string, err: unknown): MdockerError {
  const reason = err instanceof Error ? err.message : String(err);
  return new MdockerError('UNSUPPORTED', `systemd: ${action} failed over D-Bus: ${reason}`, undefined, { cause: err });
}

type Dbus = typeof import('dbus-next');

class DbusSystemdManager implements SystemdManager {
  readonly #dbus: Dbus;
  readonly #bus: MessageBus;

  constructor(dbus: Dbus, bus: MessageBus) {
    this.#dbus = dbus;
    this.#bus = bus;
  }

  async #call(msg: {
    path: string;
    interface: string;
    member: string;
    signature?: string;
    body?: unknown[];
  }): Promise<unknown[]> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no answer to ${msg.member} in ${CALL_TIMEOUT_MS} ms`)),
        CALL_TIMEOUT_MS,
      );
    });
    try {
      const reply = await Promise.race([
        this.#bus.call(
          new this.#dbus.Message({ type: this.#dbus.MessageType.METHOD_CALL, destination: SYSTEMD_BUS_NAME, ...msg }),
        ),
        timeout,
      ]);
      return (reply?.body as unknown[] | undefined) ?? [];
    } finally {
      clearTimeout(timer);
    }
  }

  async #property(path: string, iface: string, name: string): Promise<unknown> {
    const [variant] = await this.#call({
      path,
      interface: 'org.freedesktop.DBus.Properties',
      member: 'Get',
      signature: 'ss',
      body: [iface, name],
    });
    return variant instanceof this.#dbus.Variant ? (variant.value as unknown) : undefined;
  }

  async unitOf(pid: number): Promise<SystemdUnit> {
    try {
      const [unitPath] = await this.#call({
        path: SYSTEMD_PATH,
        interface: MANAGER_INTERFACE,
        member: 'GetUnitByPID',
        signature: 'u',
        body: [pid],
      });
      if (typeof unitPath !== 'string') throw new Error('GetUnitByPID returned no object path');
      const id = String(await this.#property(unitPath, 'org.freedesktop.systemd1.Unit', 'Id'));
      // Delegate and ControlGroup belong to the unit types that hold processes.
      const kind = id.endsWith('.service') ? 'Service' : id.endsWith('.scope') ? 'Scope' : null;
      if (kind === null) return { id, controlGroup: '', delegate: false };
      const iface = `org.freedesktop.systemd1.${kind}`;
      const controlGroup = String((await this.#property(unitPath, iface, 'ControlGroup')) ?? '');
      const delegate = (await this.#property(unitPath, iface, 'Delegate')) === true;
      return { id, controlGroup, delegate };
    } catch (err) {
      throw dbusFailure(`asking for the unit of pid ${pid}`, err);
    }
  }

  async startDelegatedScope(name: string, pid: number, description: string): Promise<void> {
    try {
      await this.#call({
        path: SYSTEMD_PATH,
        interface: MANAGER_INTERFACE,
        member: 'StartTransientUnit',
        signature: 'ssa(sv)a(sa(sv))',
        body: [
          name,
          'fail',
          [
            ['Description', new this.#dbus.Variant('s', description)],
            ['PIDs', new this.#dbus.Variant('au', [pid])],
            ['Delegate', new this.#dbus.Variant('b', true)],
            // Gone as soon as its last process is, failed or not: nothing to reset by hand.
            ['CollectMode', new this.#dbus.Variant('s', 'inactive-or-failed')],
          ],
          [],
        ],
      });
    } catch (err) {
      throw dbusFailure(`starting the transient scope ${name}`, err);
    }
  }

  close(): void {
    this.#bus.disconnect();
  }
}

/** Connects to systemd through the system bus; fails with one line saying what is missing. */
export async function connectSystemd(): Promise<SystemdManager> {
  const address = process.env['DBUS_SYSTEM_BUS_ADDRESS'];
  if (address === undefined && !existsSync(SYSTEM_BUS_SOCKET)) {
    throw new MdockerError(
      'UNSUPPORTED',
      `systemd runs this host but its D-Bus system bus (${SYSTEM_BUS_SOCKET}) is not there: ` +
        'install and start dbus, or pass --cgroup-parent with a delegated cgroup',
    );
  }
  // Loaded here, not at start: only a v2 host under systemd needs it, once per process.
  const dbus = await import('dbus-next');
  const bus = dbus.systemBus();
  // dbus-next reports a failed connection (and a failed Hello) as an 'error' event.
  return new Promise<SystemdManager>((resolve, reject) => {
    const onError = (err: unknown): void => {
      bus.disconnect();
      reject(dbusFailure('connecting to the system bus', err));
    };
    bus.once('error', onError);
    bus.once('connect', () => {
      bus.off('error', onError);
      bus.on('error', () => undefined);
      resolve(new DbusSystemdManager(dbus, bus));
    });
  });
}
