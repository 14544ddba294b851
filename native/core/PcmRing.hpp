// PcmRing: a bounded lock-free ring of 16-bit PCM samples between exactly one producer thread and
// one consumer thread (the pjmedia clock thread is one of them, the JS thread the other).
//
// Threading: write() is called only by the producer, read() only by the consumer. clear() and the
// producer's drop-oldest on overflow move the read index with a CAS, so the consumer also commits
// its read with a CAS and discards what it copied if the CAS lost: a sample counts as consumed by
// read() exactly when that CAS succeeded. Indices are monotonic 64-bit sample counts, so index
// arithmetic never wraps in practice. Nothing here allocates after construction or blocks.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>

namespace sipai {

class PcmRing {
 public:
  /** Capacity is rounded up to a power of two (at least 2 frames of any rate). */
  explicit PcmRing(std::size_t minCapacity) {
    std::size_t cap = 1024;
    while (cap < minCapacity) cap <<= 1;
    capacity_ = cap;
    mask_ = cap - 1;
    // Not zeroed: read() only returns what write() put there, and untouched pages stay out of RSS,
    // so a 60 s ring costs the memory of the audio actually queued through it.
    buf_.reset(new int16_t[cap]);
  }
  PcmRing(const PcmRing&) = delete;
  PcmRing& operator=(const PcmRing&) = delete;

  std::size_t capacity() const { return capacity_; }

  /** Samples currently queued (approximate while the other side runs). */
  std::size_t size() const {
    uint64_t w = write_.load(std::memory_order_acquire);
    uint64_t r = read_.load(std::memory_order_acquire);
    return w > r ? static_cast<std::size_t>(w - r) : 0;
  }

  uint64_t writeIndex() const { return write_.load(std::memory_order_acquire); }
  uint64_t readIndex() const { return read_.load(std::memory_order_acquire); }

  /**
   * Producer: append up to n samples. With dropOldest, a full ring discards its oldest samples to
   * make room (counted in `dropped`); otherwise only what fits is written. Returns samples written.
   */
  std::size_t write(const int16_t* src, std::size_t n, bool dropOldest, uint64_t* dropped) {
    if (n > capacity_) {
      if (!dropOldest) n = capacity_;
      else {
        if (dropped) *dropped += n - capacity_;
        src += n - capacity_;
        n = capacity_;
      }
    }
    uint64_t w = write_.load(std::memory_order_relaxed);
    uint64_t r = read_.load(std::memory_order_acquire);
    std::size_t freeSpace = capacity_ - static_cast<std::size_t>(w - r);
    if (n > freeSpace) {
      if (!dropOldest) {
        n = freeSpace;
      } else {
        // Advance the read index past the oldest samples; the consumer's CAS fails if it was
        // reading them, and it discards its copy.
        uint64_t need = n - freeSpace;
        while (true) {
          uint64_t target = r + need;
          if (read_.compare_exchange_weak(r, target, std::memory_order_acq_rel)) {
            if (dropped) *dropped += need;
            break;
          }
          freeSpace = capacity_ - static_cast<std::size_t>(w - r);
          if (n <= freeSpace) break;
          need = n - freeSpace;
        }
      }
    }
    if (n == 0) return 0;
    std::size_t pos = static_cast<std::size_t>(w & mask_);
    std::size_t first = std::min(n, capacity_ - pos);
    std::memcpy(buf_.get() + pos, src, first * sizeof(int16_t));
    if (n > first) std::memcpy(buf_.get(), src + first, (n - first) * sizeof(int16_t));
    write_.store(w + n, std::memory_order_release);
    return n;
  }

  /**
   * Consumer: copy up to n samples into dst and consume them. Returns samples consumed (0 when
   * empty or when a concurrent clear()/drop took them first). With `start`, also reports the ring
   * index of the first sample consumed (the read index when nothing was).
   */
  std::size_t read(int16_t* dst, std::size_t n, uint64_t* start = nullptr) {
    for (int attempt = 0; attempt < 4; ++attempt) {
      uint64_t r = read_.load(std::memory_order_acquire);
      uint64_t w = write_.load(std::memory_order_acquire);
      std::size_t avail = w > r ? static_cast<std::size_t>(w - r) : 0;
      std::size_t take = std::min(n, avail);
      if (start) *start = r;
      if (take == 0) return 0;
      std::size_t pos = static_cast<std::size_t>(r & mask_);
      std::size_t first = std::min(take, capacity_ - pos);
      std::memcpy(dst, buf_.get() + pos, first * sizeof(int16_t));
      if (take > first) std::memcpy(dst + first, buf_.get(), (take - first) * sizeof(int16_t));
      if (read_.compare_exchange_strong(r, r + take, std::memory_order_acq_rel)) return take;
    }
    if (start) *start = read_.load(std::memory_order_acquire);
    return 0;
  }

  /**
   * Either side: discard everything queued at once. Returns the read index at which consumption
   * stopped (every sample before it was consumed by read(), none after it will be).
   */
  uint64_t clear(uint64_t* discarded) {
    uint64_t r = read_.load(std::memory_order_acquire);
    while (true) {
      uint64_t w = write_.load(std::memory_order_acquire);
      if (r >= w) return r;
      if (read_.compare_exchange_weak(r, w, std::memory_order_acq_rel)) {
        if (discarded) *discarded += w - r;
        return r;
      }
    }
  }

 private:
  std::size_t capacity_ = 0;
  std::size_t mask_ = 0;
  std::unique_ptr<int16_t[]> buf_;
  alignas(64) std::atomic<uint64_t> write_{0};
  alignas(64) std::atomic<uint64_t> read_{0};
};

}  // namespace sipai
