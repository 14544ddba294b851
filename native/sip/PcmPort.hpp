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

}  // namespace sipai
