/**
 * CPU and memory of a process from /proc (Linux): utime+stime of the whole process (all its
 * threads: /proc/<pid>/stat sums them) and VmRSS.
 */
import * as fs from 'node:fs';
import { execFileSync } from 'node:child_process';

let clockTicks: number | undefined;

/** Clock ticks per second (`getconf CLK_TCK`, 100 when unavailable). */
export function clkTck(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** One reading of a process's CPU time. */
export interface CpuSample {
  /** utime + stime, seconds (all threads). */
  cpuSec: number;
  /** Wall clock of the reading, seconds (monotonic). */
  atSec: number;
}

/** Read a process's CPU time; null when it is gone. */
export function cpuSample(pid: number): CpuSample | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces: fields after its closing paren are fixed.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(rest[11]);
    const stime = Number(rest[12]);
    return { cpuSec: (utime + stime) / clkTck(), atSec: Number(process.hrtime.bigint()) / 1e9 };
  } catch {
    return null;
  }
}

/** CPU use between two readings, in % of one core. */
export function cpuPercent(a: CpuSample | null, b: CpuSample | null): number | null {
  if (!a || !b || b.atSec <= a.atSec) return null;
  return ((b.cpuSec - a.cpuSec) / (b.atSec - a.atSec)) * 100;
}

/** Resident set size in MiB; null when the process is gone. */
export function rssMiB(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

/** Threads of a process (for the report). */
export function threadCount(pid: number): number | null {
  try {
    const m = /Threads:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** CPU time of the whole machine (all cores) from /proc/stat: busy and total jiffies. */
export function machineSample(): { busy: number; total: number } {
  const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0];
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  const total = v.reduce((s, x) => s + x, 0);
  return { busy: total - idle, total };
}

/** CPU seconds per thread group of a process: the main thread as `main`, the others summed by name. */
export function threadCpu(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  let tids: string[];
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = Number(tid) === pid ? 'main' : stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const sec = (Number(rest[11]) + Number(rest[12])) / clkTck();
      out.set(name, (out.get(name) ?? 0) + sec);
    } catch {
      // The thread exited between the listing and the read.
    }
  }
  return out;
}

/** Per-thread-name CPU % between two {@link threadCpu} readings `seconds` apart, busiest first. */
export function threadCpuPercent(a: Map<string, number>, b: Map<string, number>, seconds: number): [string, number][] {
  const rows: [string, number][] = [];
  for (const [name, sec] of b) rows.push([name, ((sec - (a.get(name) ?? 0)) / seconds) * 100]);
  return rows.sort((x, y) => y[1] - x[1]);
}

/** Open file descriptors of a process; null when it is gone. */
export function fdCount(pid: number): number | null {
  try {
    return fs.readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return null;
  }
}
