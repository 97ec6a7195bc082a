/**
 * Readings from /proc (Linux only): a process's CPU time (utime + stime of all its threads),
 * its resident set size, and the machine's busy time, so a run can report broker CPU, broker
 * RSS and the CPU used by everything else on the machine ("other CPU").
 */
import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc times (`getconf CLK_TCK`; 100 on every Linux we run on). */
export const CLK_TCK = 100;

/** utime + stime of the whole thread group, in clock ticks; null when the process is gone. */
export function procCpuTicks(pid: number): number | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return null;
  }
  // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); utime and stime are fields 14 and 15.
  return Number(rest[11]) + Number(rest[12]);
}

/** VmRSS in KiB; null when the process is gone. */
export function procRssKb(pid: number): number | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'latin1');
  } catch {
    return null;
  }
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(text);
  return m ? Number(m[1]) : null;
}

export interface SystemTicks {
  busy: number;
  total: number;
}

/** Busy and total ticks of all CPUs since boot (first line of /proc/stat). */
export function systemTicks(): SystemTicks {
  const line = readFileSync('/proc/stat', 'latin1').split('\n', 1)[0]!;
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest is already inside user)
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = f;
  const busy = user + nice + system + irq + softirq + steal;
  return { busy, total: busy + idle + iowait };
}

/** A point-in-time reading of the broker, this process and the machine. */
export interface CpuSnapshot {
  at: number;
  brokerTicks: number | null;
  self: NodeJS.CpuUsage;
  system: SystemTicks;
  /** Extra processes whose CPU also counts as ours (e.g. generator workers), in ticks. */
  extraTicks: number;
}

export function cpuSnapshot(brokerPid: number | undefined, extraPids: readonly number[] = []): CpuSnapshot {
  let extraTicks = 0;
  for (const pid of extraPids) extraTicks += procCpuTicks(pid) ?? 0;
  return {
    at: performance.now(),
    brokerTicks: brokerPid === undefined ? null : procCpuTicks(brokerPid),
    self: process.cpuUsage(),
    system: systemTicks(),
    extraTicks,
  };
}

export interface CpuDelta {
  seconds: number;
  /** % of one core over the interval. */
  brokerPct: number | null;
  /** Broker CPU time in microseconds over the interval. */
  brokerUs: number | null;
  generatorPct: number;
  /** Everything else on the machine, % of one core (noise). */
  otherPct: number;
}

export function cpuDelta(a: CpuSnapshot, b: CpuSnapshot): CpuDelta {
  const seconds = (b.at - a.at) / 1000;
  const brokerTicks = a.brokerTicks !== null && b.brokerTicks !== null ? b.brokerTicks - a.brokerTicks : null;
  const selfUs = b.self.user - a.self.user + (b.self.system - a.self.system);
  const extraUs = ((b.extraTicks - a.extraTicks) * 1e6) / CLK_TCK;
  const genUs = selfUs + extraUs;
  const busyUs = ((b.system.busy - a.system.busy) * 1e6) / CLK_TCK;
  const brokerUs = brokerTicks === null ? null : (brokerTicks * 1e6) / CLK_TCK;
  const otherUs = Math.max(0, busyUs - (brokerUs ?? 0) - genUs);
  const pct = (us: number): number => (us / 1e6 / seconds) * 100;
  return {
    seconds,
    brokerPct: brokerUs === null ? null : pct(brokerUs),
    brokerUs,
    generatorPct: pct(genUs),
    otherPct: pct(otherUs),
  };
}
