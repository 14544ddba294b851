// TickStamps: when each clock tick moved a call's samples, for latency measurement.
//
// One entry per tick: the ring-index range [start, end) the tick wrote (RX) or read (TX) and the
// monotonic time of the tick (steady_clock, i.e. CLOCK_MONOTONIC, the clock Node's
// process.hrtime() reads). The last kEntries ticks are kept (64 ticks: 1.28 s at 20 ms).
//
// Threading: record() is called by exactly one thread (the clock thread) and never blocks or
// allocates: four relaxed stores bracketed by a sequence number (a seqlock). snapshot() runs on
// any other thread and copies out only entries whose sequence number did not change while it read
// them, so a reader can never see a torn entry and never slows the writer.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <vector>

namespace sipai {

/** Monotonic time in nanoseconds (CLOCK_MONOTONIC on Linux). */
inline uint64_t monotonicNs() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

/** One tick's sample range and time, as read back. */
struct TickStamp {
  uint64_t start;
  uint64_t end;
  uint64_t ns;
};

class TickStamps {
 public:
  static constexpr std::size_t kEntries = 64;

  /** Writer thread only: the tick at time ns moved samples [start, end). */
  void record(uint64_t start, uint64_t end, uint64_t ns) {
    uint64_t n = next_.load(std::memory_order_relaxed);
    Slot& s = slots_[n & (kEntries - 1)];
    uint64_t seq = 2 * n + 1;
    s.seq.store(seq, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
    s.start.store(start, std::memory_order_relaxed);
    s.end.store(end, std::memory_order_relaxed);
    s.ns.store(ns, std::memory_order_relaxed);
    s.seq.store(seq + 1, std::memory_order_release);
    next_.store(n + 1, std::memory_order_release);
  }

  /** Any thread: the kept entries, oldest first (entries being rewritten are skipped). */
  std::vector<TickStamp> snapshot() const {
    std::vector<TickStamp> out;
    uint64_t n = next_.load(std::memory_order_acquire);
    uint64_t first = n > kEntries ? n - kEntries : 0;
    out.reserve(static_cast<std::size_t>(n - first));
    for (uint64_t i = first; i < n; ++i) {
      TickStamp t;
      if (read(i, t)) out.push_back(t);
    }
    return out;
  }

  /**
   * Any thread: time (ns) of the tick whose range holds sample `index`, or 0 when no kept entry
   * does (not moved yet, or older than the history). Searches newest first.
   */
  uint64_t timeOf(uint64_t index) const {
    uint64_t n = next_.load(std::memory_order_acquire);
    uint64_t first = n > kEntries ? n - kEntries : 0;
    for (uint64_t i = n; i > first; --i) {
      TickStamp t;
      if (!read(i - 1, t)) continue;
      if (index >= t.start && index < t.end) return t.ns;
      if (t.end <= index) return 0;  // every older entry ends earlier still
    }
    return 0;
  }

 private:
  struct Slot {
    std::atomic<uint64_t> seq{0};
    std::atomic<uint64_t> start{0};
    std::atomic<uint64_t> end{0};
    std::atomic<uint64_t> ns{0};
  };

  bool read(uint64_t i, TickStamp& t) const {
    const Slot& s = slots_[i & (kEntries - 1)];
    uint64_t want = 2 * i + 2;
    if (s.seq.load(std::memory_order_acquire) != want) return false;
    t.start = s.start.load(std::memory_order_relaxed);
    t.end = s.end.load(std::memory_order_relaxed);
    t.ns = s.ns.load(std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_acquire);
    return s.seq.load(std::memory_order_relaxed) == want;
  }

  std::array<Slot, kEntries> slots_{};
  std::atomic<uint64_t> next_{0};
};

}  // namespace sipai
