// PcmPort: one call's raw PCM on the conference bridge, as a pj::AudioMediaPort.
//
// Threading: created and destroyed on the pj loop thread (after libInit, before libDestroy).
// onFrameRequested/onFrameReceived run on the pjmedia clock thread and only copy between the
// bridge's frame and the call's CallAudio rings, bump counters and tell AudioClock about the tick
// (no lock of ours, no log, no N-API, no pjsua call).
//
// Lifetime: since pjproject 2.15 the bridge adds and removes ports asynchronously, on the clock
// thread. AudioMediaPort owns the pjmedia port, its pool and a group lock: its destructor detaches
// this object under that lock (so no callback runs on it afterwards) and the port's memory is freed
// by the bridge once the removal completes. The CallAudio is shared, so it outlives both sides.
#pragma once

#include <pjsua2.hpp>

#include <memory>

#include "../core/AudioClock.hpp"
#include "../core/CallAudio.hpp"

namespace sipai {

// Shared by both port implementations: one frame each way, copied to or from the call's rings.
void pcmFrameRequested(CallAudio& a, int16_t* out, pjmedia_frame_type& type, std::size_t& bytes);
bool pcmFrameReceived(CallAudio& a, const int16_t* in, std::size_t samples, bool audio);

#ifndef SIPAI_RAW_PCM_PORT
class PcmPort : public pj::AudioMediaPort {
 public:
  PcmPort(std::shared_ptr<CallAudio> audio, AudioClock* clock);
  ~PcmPort() override;
  PcmPort(const PcmPort&) = delete;
  PcmPort& operator=(const PcmPort&) = delete;

  /** Register the port on the bridge at the call audio's rate, mono, 16-bit (loop thread). Throws pj::Error. */
  void create();

  /** Clock thread: audio for the call (what the caller hears). */
  void onFrameRequested(pj::MediaFrame& frame) override;
  /** Clock thread: audio from the call (what the caller says), or an empty heart-beat frame. */
  void onFrameReceived(pj::MediaFrame& frame) override;

 private:
  std::shared_ptr<CallAudio> audio_;
  AudioClock* clock_;
  AudioClock::PortTick tick_;
  bool registered_ = false;
};
#else
// The raw pjmedia_port variant, built only to measure AudioMediaPort against (cmake-js
// --CDSIPAI_RAW_PCM_PORT=ON): no lock and no allocation per frame. Its state lives in a heap block
// the port's group lock frees (on_destroy) once the bridge has finished removing the port.
class PcmPort : public pj::AudioMedia {
 public:
  PcmPort(std::shared_ptr<CallAudio> audio, AudioClock* clock);
  ~PcmPort() override;
  PcmPort(const PcmPort&) = delete;
  PcmPort& operator=(const PcmPort&) = delete;
  void create();

 private:
  struct State;
  static pj_status_t getFrame(pjmedia_port* port, pjmedia_frame* frame);
  static pj_status_t putFrame(pjmedia_port* port, pjmedia_frame* frame);
  static pj_status_t onDestroy(pjmedia_port* port);

  std::shared_ptr<CallAudio> audio_;
  AudioClock* clock_;
  pjmedia_port* port_ = nullptr;
  bool registered_ = false;
};
#endif

}  // namespace sipai
