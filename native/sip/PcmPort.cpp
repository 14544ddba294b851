#include "PcmPort.hpp"

#include <algorithm>
#include <cstring>

namespace sipai {

PcmPort::PcmPort(std::shared_ptr<CallAudio> audio, AudioClock* clock) : audio_(std::move(audio)), clock_(clock) {}

void PcmPort::create() {
  pool_ = pjsua_pool_create("pcmport", 512, 512);
  if (!pool_) throw pj::Error(PJ_ENOMEM, "pjsua_pool_create()", "", __FILE__, __LINE__);
  char name[32];
  std::snprintf(name, sizeof(name), "pcm%u", audio_->handle);
  pj_str_t nameStr;
  pj_strdup2_with_null(pool_, &nameStr, name);
  pjmedia_port_info_init(&base_.info, &nameStr, PJMEDIA_SIG_CLASS_APP('P', 'C', 'M'), audio_->sampleRate, 1, 16,
                         audio_->samplesPerFrame);
  base_.port_data.pdata = this;
  base_.get_frame = &PcmPort::getFrame;
  base_.put_frame = &PcmPort::putFrame;
  registerMediaPort2(&base_, pool_);
  registered_ = true;
  clock_->portCountDelta(+1);
}

PcmPort::~PcmPort() {
  if (registered_) {
    try {
      unregisterMediaPort();
    } catch (...) {
      // The bridge is already gone (library destroyed); nothing references the port any more.
    }
    clock_->portCountDelta(-1);
  }
  if (pool_) pj_pool_release(pool_);
}

// Clock thread: audio for the call (what the caller hears).
pj_status_t PcmPort::getFrame(pjmedia_port* port, pjmedia_frame* frame) {
  auto* self = static_cast<PcmPort*>(port->port_data.pdata);
  CallAudio& a = *self->audio_;
  const std::size_t spf = a.samplesPerFrame;
  auto* out = static_cast<int16_t*>(frame->buf);
  uint64_t start = 0;
  std::size_t n = a.tx.read(out, spf, &start);
  // The bridge encodes and sends this frame's RTP within the same tick: this is when it leaves.
  a.txStamps.record(start, start + n, monotonicNs());
  if (n == 0) {
    a.txSilentFrames.fetch_add(1, std::memory_order_relaxed);
    frame->type = PJMEDIA_FRAME_TYPE_NONE;
    frame->size = 0;
    return PJ_SUCCESS;
  }
  if (n < spf) {
    std::memset(out + n, 0, (spf - n) * sizeof(int16_t));
    a.txUnderruns.fetch_add(1, std::memory_order_relaxed);
  }
  a.txFrames.fetch_add(1, std::memory_order_relaxed);
  a.txPlayedSamples.fetch_add(n, std::memory_order_relaxed);
  frame->type = PJMEDIA_FRAME_TYPE_AUDIO;
  frame->size = spf * sizeof(int16_t);
  return PJ_SUCCESS;
}

// Clock thread: audio from the call (what the caller says), or an empty heart-beat frame.
pj_status_t PcmPort::putFrame(pjmedia_port* port, pjmedia_frame* frame) {
  auto* self = static_cast<PcmPort*>(port->port_data.pdata);
  CallAudio& a = *self->audio_;
  bool audio = frame->type == PJMEDIA_FRAME_TYPE_AUDIO && frame->buf != nullptr && frame->size > 0;
  if (audio && a.rxEnabled.load(std::memory_order_relaxed)) {
    uint64_t dropped = 0;
    std::size_t n = std::min<std::size_t>(frame->size / sizeof(int16_t), a.rx.capacity());
    uint64_t start = a.rx.writeIndex();
    // Stamped before the samples become readable, so a drain always finds the stamp of what it reads
    // (a drop-oldest write always writes all n).
    a.rxStamps.record(start, start + n, monotonicNs());
    a.rx.write(static_cast<const int16_t*>(frame->buf), n, true, &dropped);
    if (dropped) a.rxDroppedSamples.fetch_add(dropped, std::memory_order_relaxed);
    a.rxFrames.fetch_add(1, std::memory_order_relaxed);
  } else {
    audio = false;
  }
  self->clock_->onPut(frame->timestamp.u64, audio);
  return PJ_SUCCESS;
}

}  // namespace sipai
