#include "PcmPort.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace sipai {

void pcmFrameRequested(CallAudio& a, int16_t* out, pjmedia_frame_type& type, std::size_t& bytes) {
  const std::size_t spf = a.samplesPerFrame;
  if (a.held.load(std::memory_order_relaxed)) {
    a.txHeldFrames.fetch_add(1, std::memory_order_relaxed);
    type = PJMEDIA_FRAME_TYPE_NONE;
    bytes = 0;
    return;
  }
  uint64_t start = 0;
  std::size_t n = a.tx.read(out, spf, &start);
  // The bridge encodes and sends this frame's RTP within the same tick: this is when it leaves.
  a.txStamps.record(start, start + n, monotonicNs());
  if (n == 0) {
    a.txSilentFrames.fetch_add(1, std::memory_order_relaxed);
    type = PJMEDIA_FRAME_TYPE_NONE;
    bytes = 0;
    return;
  }
  if (n < spf) {
    std::memset(out + n, 0, (spf - n) * sizeof(int16_t));
    a.txUnderruns.fetch_add(1, std::memory_order_relaxed);
  }
  a.txFrames.fetch_add(1, std::memory_order_relaxed);
  a.txPlayedSamples.fetch_add(n, std::memory_order_relaxed);
  type = PJMEDIA_FRAME_TYPE_AUDIO;
  bytes = spf * sizeof(int16_t);
}

bool pcmFrameReceived(CallAudio& a, const int16_t* in, std::size_t samples, bool audio) {
  if (!audio || samples == 0 || !a.rxEnabled.load(std::memory_order_relaxed)) return false;
  if (a.held.load(std::memory_order_relaxed)) {
    a.rxHeldFrames.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  uint64_t dropped = 0;
  std::size_t n = std::min<std::size_t>(samples, a.rx.capacity());
  uint64_t start = a.rx.writeIndex();
  // Stamped before the samples become readable, so a drain always finds the stamp of what it reads
  // (a drop-oldest write always writes all n).
  a.rxStamps.record(start, start + n, monotonicNs());
  a.rx.write(in, n, true, &dropped);
  if (dropped) a.rxDroppedSamples.fetch_add(dropped, std::memory_order_relaxed);
  a.rxFrames.fetch_add(1, std::memory_order_relaxed);
  return true;
}

#ifndef SIPAI_RAW_PCM_PORT

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
  const std::size_t bytes = audio_->samplesPerFrame * sizeof(int16_t);
  if (frame.size < bytes) {
    frame.type = PJMEDIA_FRAME_TYPE_NONE;
    return;
  }
  frame.buf.resize(bytes);
  pjmedia_frame_type type;
  std::size_t got = 0;
  pcmFrameRequested(*audio_, reinterpret_cast<int16_t*>(frame.buf.data()), type, got);
  frame.type = type;
  frame.size = static_cast<unsigned>(got);
  frame.buf.resize(got);
}

void PcmPort::onFrameReceived(pj::MediaFrame& frame) {
  bool audio = pcmFrameReceived(*audio_, reinterpret_cast<const int16_t*>(frame.buf.data()),
                                frame.buf.size() / sizeof(int16_t), frame.type == PJMEDIA_FRAME_TYPE_AUDIO);
  clock_->onPut(tick_, audio);
}

#else

struct PcmPort::State {
  std::shared_ptr<CallAudio> audio;
  AudioClock* clock;
  AudioClock::PortTick tick;
  pj_pool_t* pool;
};

PcmPort::PcmPort(std::shared_ptr<CallAudio> audio, AudioClock* clock) : audio_(std::move(audio)), clock_(clock) {}

void PcmPort::create() {
  pj_pool_t* pool = pjsua_pool_create("pcmport", 512, 512);
  if (!pool) throw pj::Error(PJ_ENOMEM, "pjsua_pool_create()", "", __FILE__, __LINE__);
  port_ = PJ_POOL_ZALLOC_T(pool, pjmedia_port);
  char name[32];
  std::snprintf(name, sizeof(name), "pcm%u", audio_->handle);
  pj_str_t nameStr;
  pj_strdup2_with_null(pool, &nameStr, name);
  pjmedia_port_info_init(&port_->info, &nameStr, PJMEDIA_SIG_CLASS_APP('P', 'C', 'M'), audio_->sampleRate, 1, 16,
                         audio_->samplesPerFrame);
  port_->port_data.pdata = new State{audio_, clock_, {}, pool};
  port_->get_frame = &PcmPort::getFrame;
  port_->put_frame = &PcmPort::putFrame;
  port_->on_destroy = &PcmPort::onDestroy;
  pj_status_t st = pjmedia_port_init_grp_lock(port_, pool, nullptr);
  if (st != PJ_SUCCESS) {
    delete static_cast<State*>(port_->port_data.pdata);
    pj_pool_release(pool);
    port_ = nullptr;
    throw pj::Error(st, "pjmedia_port_init_grp_lock()", "", __FILE__, __LINE__);
  }
  registerMediaPort2(port_, pool);
  registered_ = true;
  clock_->portCountDelta(+1);
}

PcmPort::~PcmPort() {
  if (registered_) {
    try {
      unregisterMediaPort();
    } catch (...) {
    }
    clock_->portCountDelta(-1);
  }
  // Drops our reference; the bridge holds its own until the removal completes, then onDestroy runs.
  if (port_) pjmedia_port_destroy(port_);
}

pj_status_t PcmPort::onDestroy(pjmedia_port* port) {
  auto* st = static_cast<State*>(port->port_data.pdata);
  pj_pool_t* pool = st->pool;
  delete st;
  pj_pool_release(pool);
  return PJ_SUCCESS;
}

pj_status_t PcmPort::getFrame(pjmedia_port* port, pjmedia_frame* frame) {
  auto* st = static_cast<State*>(port->port_data.pdata);
  std::size_t bytes = 0;
  pcmFrameRequested(*st->audio, static_cast<int16_t*>(frame->buf), frame->type, bytes);
  frame->size = bytes;
  return PJ_SUCCESS;
}

pj_status_t PcmPort::putFrame(pjmedia_port* port, pjmedia_frame* frame) {
  auto* st = static_cast<State*>(port->port_data.pdata);
  bool audio = pcmFrameReceived(*st->audio, static_cast<const int16_t*>(frame->buf), frame->size / sizeof(int16_t),
                                frame->type == PJMEDIA_FRAME_TYPE_AUDIO && frame->buf != nullptr);
  st->clock->onPut(st->tick, audio);
  return PJ_SUCCESS;
}

#endif

}  // namespace sipai
