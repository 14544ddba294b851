#include "PcmPort.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace sipai {

PcmPort::PcmPort(std::shared_ptr<CallAudio> audio, AudioClock* clock) : audio_(std::move(audio)), clock_(clock) {}

void PcmPort::create() {
  char name[32];
  std::snprintf(name, sizeof(name), "pcm%u", audio_->handle);
  pj::MediaFormatAudio fmt;
  fmt.init(PJMEDIA_FORMAT_PCM, audio_->sampleRate, 1,
           static_cast<int>(1000000ull * audio_->samplesPerFrame / audio_->sampleRate), 16, audio_->sampleRate * 16,
           audio_->sampleRate * 16);
  createPort(name, fmt);
  registered_ = true;
  clock_->portCountDelta(+1);
}

PcmPort::~PcmPort() {
  // ~AudioMediaPort unregisters and detaches this object from the port under its group lock.
  if (registered_) clock_->portCountDelta(-1);
}

void PcmPort::onFrameRequested(pj::MediaFrame& frame) {
  CallAudio& a = *audio_;
  const std::size_t spf = a.samplesPerFrame;
  if (frame.size < spf * sizeof(int16_t)) {
    frame.type = PJMEDIA_FRAME_TYPE_NONE;
    return;
  }
  frame.buf.resize(spf * sizeof(int16_t));
  auto* out = reinterpret_cast<int16_t*>(frame.buf.data());
  uint64_t start = 0;
  std::size_t n = a.tx.read(out, spf, &start);
  // The bridge encodes and sends this frame's RTP within the same tick: this is when it leaves.
  a.txStamps.record(start, start + n, monotonicNs());
  if (n == 0) {
    a.txSilentFrames.fetch_add(1, std::memory_order_relaxed);
    frame.type = PJMEDIA_FRAME_TYPE_NONE;
    frame.buf.clear();
    frame.size = 0;
    return;
  }
  if (n < spf) {
    std::memset(out + n, 0, (spf - n) * sizeof(int16_t));
    a.txUnderruns.fetch_add(1, std::memory_order_relaxed);
  }
  a.txFrames.fetch_add(1, std::memory_order_relaxed);
  a.txPlayedSamples.fetch_add(n, std::memory_order_relaxed);
  frame.type = PJMEDIA_FRAME_TYPE_AUDIO;
  frame.size = static_cast<unsigned>(spf * sizeof(int16_t));
}

void PcmPort::onFrameReceived(pj::MediaFrame& frame) {
  CallAudio& a = *audio_;
  bool audio = frame.type == PJMEDIA_FRAME_TYPE_AUDIO && !frame.buf.empty();
  if (audio && a.rxEnabled.load(std::memory_order_relaxed)) {
    uint64_t dropped = 0;
    std::size_t n = std::min<std::size_t>(frame.buf.size() / sizeof(int16_t), a.rx.capacity());
    uint64_t start = a.rx.writeIndex();
    // Stamped before the samples become readable, so a drain always finds the stamp of what it reads
    // (a drop-oldest write always writes all n).
    a.rxStamps.record(start, start + n, monotonicNs());
    a.rx.write(reinterpret_cast<const int16_t*>(frame.buf.data()), n, true, &dropped);
    if (dropped) a.rxDroppedSamples.fetch_add(dropped, std::memory_order_relaxed);
    a.rxFrames.fetch_add(1, std::memory_order_relaxed);
  } else {
    audio = false;
  }
  clock_->onPut(tick_, audio);
}

}  // namespace sipai
