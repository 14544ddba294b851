// PolyphaseResampler: the live kernel of the streaming resampler for mono Int16 PCM. The filter is
// designed in TypeScript (src/audio/Resampler.ts, which also holds the reference kernel); this
// class only runs the table it is given, with exactly the reference's sample semantics:
//  - output n is the dot product of branch `phase` with the tapsPerPhase newest input samples up to
//    input index `pos`; then phase += down, and each wrap past `up` advances pos by one;
//  - history starts as zeros; any chunking of the input gives the same output;
//  - flush() emits what the input still owes (its last `delay` intermediate-rate samples, fed with
//    zeros), then resets; outputs round half up and saturate at the Int16 limits, counted.
// Float coefficients, float history and float accumulation, so results may differ from the
// Float64 reference by one LSB where a sum sits on a rounding boundary.
//
// Threading and ownership: one instance per stream, used by one thread at a time; no locks, no
// statics. Everything is allocated in the constructor: the input is taken in blocks of
// kBlockSamples, so process(), flush() and reset() never allocate whatever the chunk size.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

// On x86-64 glibc builds the hot loop is compiled twice, for baseline SSE2 and for x86-64-v3
// (AVX2, FMA), and the loader picks one for the CPU it runs on (an ifunc): the addon stays portable.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__GLIBC__)
#define SIPAI_RESAMPLER_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define SIPAI_RESAMPLER_CLONES
#endif

namespace sipai {

class PolyphaseResampler {
 public:
  /** Input samples taken per internal pass (bounds the history buffer). */
  static constexpr std::size_t kBlockSamples = 1024;
  /** Largest coefficient table accepted (up * tapsPerPhase), as in the TypeScript design. */
  static constexpr std::size_t kMaxCoefficients = std::size_t{1} << 20;
  /** Independent partial sums in the inner loop; branches are zero-padded to a multiple of it. */
  static constexpr std::size_t kLanes = 8;

  /**
   * `coef` holds up * tapsPerPhase coefficients, branch by branch, each branch oldest input first;
   * `delay` is the filter's linear-phase delay in intermediate-rate samples.
   * @throws std::invalid_argument (with bracketed context) when the geometry is inconsistent.
   */
  PolyphaseResampler(uint32_t up, uint32_t down, uint32_t tapsPerPhase, const float* coef, std::size_t coefCount,
                     uint64_t delay)
      : up_(up), down_(down), k_(tapsPerPhase), delay_(delay) {
    const std::string ctx = "[up:" + std::to_string(up) + ", down:" + std::to_string(down) +
                            ", tapsPerPhase:" + std::to_string(tapsPerPhase) + ", delay:" + std::to_string(delay) +
                            ", coefficients:" + std::to_string(coefCount) + "]";
    if (up < 1 || down < 1 || tapsPerPhase < 1) throw std::invalid_argument("invalid resampler kernel spec " + ctx);
    // Each branch needs ceil(down/up)+1 taps so history trimming never outruns the input.
    if (uint64_t{tapsPerPhase} < (uint64_t{down} + up - 1) / up + 1 || delay >= uint64_t{up} * tapsPerPhase ||
        coefCount != std::size_t{up} * tapsPerPhase || coefCount > kMaxCoefficients || coef == nullptr)
      throw std::invalid_argument("inconsistent resampler kernel spec " + ctx);
    kp_ = (k_ + kLanes - 1) / kLanes * kLanes;
    hist_ = kp_ - 1;
    // Leading zeros pad each branch to whole lanes; they meet history that is always finite.
    coef_.assign(std::size_t{up_} * kp_, 0.0f);
    for (uint32_t p = 0; p < up_; ++p)
      std::copy(coef + std::size_t{p} * k_, coef + std::size_t{p + 1} * k_, coef_.begin() + std::size_t{p} * kp_ + (kp_ - k_));
    step_.resize(up_);
    next_.resize(up_);
    for (uint32_t p = 0; p < up_; ++p) {
      step_[p] = (uint64_t{p} + down_) / up_;
      next_[p] = static_cast<uint32_t>((uint64_t{p} + down_) % up_);
    }
    const std::size_t tail = static_cast<std::size_t>((delay_ + up_ - 1) / up_ + 1);
    buf_.assign(hist_ + std::max(kBlockSamples, tail), 0.0f);
    reset();
  }

  PolyphaseResampler(const PolyphaseResampler&) = delete;
  PolyphaseResampler& operator=(const PolyphaseResampler&) = delete;

  /** Exactly how many samples process() will write for `inputLength` more input samples. */
  std::size_t outputCount(std::size_t inputLength) const { return countBelow((uint64_t{fill_} + inputLength) * up_); }

  /** Exactly how many samples flush() will write now. */
  std::size_t flushCount() const { return countBelow(uint64_t{fill_} * up_ + delay_); }

  /** Consume `n` samples; write outputCount(n) samples to `out` (caller checks room); return that count. */
  std::size_t process(const int16_t* in, std::size_t n, int16_t* out) {
    std::size_t written = 0;
    for (std::size_t i = 0; i < n; i += kBlockSamples) {
      const std::size_t len = std::min(kBlockSamples, n - i);
      float* w = buf_.data() + fill_;
      for (std::size_t j = 0; j < len; ++j) w[j] = static_cast<float>(in[i + j]);
      fill_ += len;
      written += run(uint64_t{fill_} * up_, out + written);
    }
    return written;
  }

  /** End the stream: write flushCount() samples to `out` (caller checks room), reset, return the count. */
  std::size_t flush(int16_t* out) {
    const uint64_t end = uint64_t{fill_} * up_ + delay_;
    // Zeros stand in for the input after the end; they only feed the filter's trailing taps.
    const std::size_t zeros = static_cast<std::size_t>((delay_ + up_ - 1) / up_ + 1);
    std::fill(buf_.begin() + fill_, buf_.begin() + fill_ + zeros, 0.0f);
    fill_ += zeros;
    const std::size_t written = run(end, out);
    reset();
    return written;
  }

  /** Forget all history: the next sample starts a new stream. */
  void reset() {
    std::fill(buf_.begin(), buf_.begin() + hist_, 0.0f);
    fill_ = hist_;
    pos_ = hist_;
    phase_ = 0;
  }

  /** Output samples that saturated at the Int16 limits since construction. */
  uint64_t clippedSamples() const { return clipped_; }

  /** Taps per branch after padding to whole lanes (multiply-adds per output actually executed). */
  std::size_t paddedTapsPerPhase() const { return kp_; }

 private:
  /** Outputs whose intermediate-rate time (relative to buf_) lies below `limit`. */
  std::size_t countBelow(uint64_t limit) const {
    const uint64_t t0 = uint64_t{pos_} * up_ + phase_;
    return limit > t0 ? static_cast<std::size_t>((limit - t0 + down_ - 1) / down_) : 0;
  }

  /** kLanes independent sums (one per lane) so the compiler keeps them in vector registers. */
  static inline float dot(const float* __restrict c, const float* __restrict x, std::size_t n) {
    float acc[kLanes] = {};
    for (std::size_t m = 0; m < n; m += kLanes)
      for (std::size_t j = 0; j < kLanes; ++j) acc[j] += c[m + j] * x[m + j];
    float quad[4];
    for (std::size_t j = 0; j < 4; ++j) quad[j] = acc[j] + acc[j + 4];
    return (quad[0] + quad[2]) + (quad[1] + quad[3]);
  }

  /** The hot loop: `count` outputs from `buf` starting at (pos, phase), which it advances. */
  SIPAI_RESAMPLER_CLONES
  static uint64_t kernel(const float* coef, const float* buf, std::size_t kp, const uint64_t* step,
                         const uint32_t* next, std::size_t count, std::size_t& pos, uint32_t& phase, int16_t* out) {
    const std::size_t hist = kp - 1;
    std::size_t p = pos;
    uint32_t ph = phase;
    uint64_t clipped = 0;
    for (std::size_t n = 0; n < count; ++n) {
      // Shifted to positive, truncation is floor: round half up without a libm call.
      const float y = dot(coef + std::size_t{ph} * kp, buf + p - hist, kp) + 32768.5f;
      int32_t v;
      if (y >= 65536.0f) {
        v = 32767;
        ++clipped;
      } else if (y < 0.0f) {
        v = -32768;
        ++clipped;
      } else {
        v = static_cast<int32_t>(y) - 32768;
      }
      out[n] = static_cast<int16_t>(v);
      p += step[ph];
      ph = next[ph];
    }
    pos = p;
    phase = ph;
    return clipped;
  }

  /** Emit every output below `limit` into out; trim history to what the next output needs. */
  std::size_t run(uint64_t limit, int16_t* out) {
    const std::size_t count = countBelow(limit);
    float* buf = buf_.data();
    std::size_t pos = pos_;
    uint32_t phase = phase_;
    const uint64_t clipped = kernel(coef_.data(), buf, kp_, step_.data(), next_.data(), count, pos, phase, out);
    clipped_ += clipped;
    phase_ = phase;
    // pos may run past fill_ by less than down/up; then nothing before pos is needed.
    if (pos > hist_) {
      const std::size_t start = std::min(pos - hist_, fill_);
      std::copy(buf + start, buf + fill_, buf);
      fill_ -= start;
      pos -= start;
    }
    pos_ = pos;
    return count;
  }

  uint32_t up_;
  uint32_t down_;
  uint32_t k_;
  uint64_t delay_;
  std::size_t kp_ = 0;    // k_ rounded up to whole lanes
  std::size_t hist_ = 0;  // kp_ - 1 samples of history
  std::vector<float> coef_;
  std::vector<uint64_t> step_;  // input advance after an output of branch p
  std::vector<uint32_t> next_;  // branch of the output after one of branch p
  std::vector<float> buf_;      // history, then input not yet consumed
  std::size_t fill_ = 0;
  std::size_t pos_ = 0;  // index in buf_ of the newest sample the next output needs
  uint32_t phase_ = 0;
  uint64_t clipped_ = 0;
};

}  // namespace sipai
