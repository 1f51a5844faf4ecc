/** The raw addon native/build/Release/mdocker_native.node (native/src/addon/addon.cc). */
export interface MdockerNativeAddon {
  /** Sends signal to pid through a pidfd, only if the process there still has this
   * start time. true when sent, false when that process is gone. */
  signalProcess(pid: number, startTime: number, signal: number): boolean;
  /** Start time of pid in clock ticks since boot, or null when there is no such process. */
  startTime(pid: number): number | null;
}
