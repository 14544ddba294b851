// AudioClock: coalesces RX audio wake-ups to one per bridge tick for all calls.
//
// Threading contract:
//  - onPut() runs only on the pjmedia clock thread, once per PcmPort per tick (audio or the
//    empty heart-beat frame). A port that puts twice marks the start of the next tick (each port
//    is put exactly once per tick), so no frame timestamp is needed. It touches only plain fields owned by that thread and two atomics,
//    and signals a POSIX semaphore (sem_post: no lock, no allocation, async-signal-safe).
//  - The notifier thread waits on the semaphore and calls EventSink::wakeAudio() (which may lock
//    inside N-API). So nothing on the clock thread ever calls N-API.
//  - acknowledge() runs on the JS thread before it drains the rings, so a frame that lands while
//    JS drains triggers another wake.
#pragma once

#include <semaphore.h>

#include <atomic>
#include <cstdint>
#include <thread>

#include "EventSink.hpp"

namespace sipai {

class AudioClock {
 public:
  explicit AudioClock(EventSink* sink) : sink_(sink) {
    sem_init(&sem_, 0, 0);
    notifier_ = std::thread([this] { run(); });
  }
  ~AudioClock() { stop(); sem_destroy(&sem_); }
  AudioClock(const AudioClock&) = delete;
  AudioClock& operator=(const AudioClock&) = delete;

  /** Loop thread: a PcmPort joined (+1) or left (-1) the bridge. */
  void portCountDelta(int d) { ports_.fetch_add(d, std::memory_order_acq_rel); }

  /** Per-port clock-thread state: the tick the port last put in. */
  struct PortTick {
    uint64_t seen = ~0ull;
  };

  /** Clock thread: one port's put_frame of this tick. */
  void onPut(PortTick& port, bool hadAudio) {
    if (port.seen == tick_) {
      if (dirty_ && !posted_) post();
      ++tick_;
      puts_ = 0;
      dirty_ = false;
      posted_ = false;
    }
    port.seen = tick_;
    ++puts_;
    dirty_ = dirty_ || hadAudio;
    if (!posted_ && dirty_ && puts_ >= ports_.load(std::memory_order_acquire)) {
      post();
      posted_ = true;
    }
  }

  /** JS thread: a wake is being handled; later frames need a new one. */
  void acknowledge() { wakePending_.store(false, std::memory_order_release); }

  /** Wakes delivered so far (stats). */
  uint64_t wakes() const { return wakes_.load(std::memory_order_relaxed); }

  /** Stop and join the notifier thread (idempotent). */
  void stop() {
    if (stopping_.exchange(true)) return;
    sem_post(&sem_);
    if (notifier_.joinable()) notifier_.join();
  }

 private:
  void post() {
    if (!wakePending_.exchange(true, std::memory_order_acq_rel)) sem_post(&sem_);
  }
  void run() {
    while (true) {
      while (sem_wait(&sem_) != 0) {
      }
      if (stopping_.load(std::memory_order_acquire)) return;
      wakes_.fetch_add(1, std::memory_order_relaxed);
      sink_->wakeAudio();
    }
  }

  EventSink* sink_;
  sem_t sem_;
  std::thread notifier_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> wakePending_{false};
  std::atomic<int> ports_{0};
  std::atomic<uint64_t> wakes_{0};
  // Clock-thread-only state.
  uint64_t tick_ = 0;
  int puts_ = 0;
  bool dirty_ = false;
  bool posted_ = false;
};

}  // namespace sipai
