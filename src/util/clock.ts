/**
 * Monotonic time in microseconds: CLOCK_MONOTONIC, the clock the addon stamps clock-thread ticks
 * with, so JS and native times can be subtracted.
 */
export function monotonicUs(): number {
  return Number(process.hrtime.bigint()) / 1000;
}
