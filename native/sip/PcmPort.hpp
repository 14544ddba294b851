// PcmPort: a custom pjmedia port on the conference bridge that exposes one call's raw PCM.
//
// Threading: create()/destructor run on the pj loop thread (registered, after libInit, before
// libDestroy). get_frame/put_frame run on the pjmedia clock thread and only copy between the
// bridge and the CallAudio rings (see core/CallAudio.hpp) and tell AudioClock about the tick.
// In pjproject 2.12.1 pjsua_conf_remove_port is synchronous and takes the bridge mutex the tick
// holds, so once the destructor's unregisterMediaPort() returns no callback can run for this
// port and the pool can be released (pjsua2-notes 1.2; this changes in >= 2.15, see 1.4).
#pragma once

#include <pjsua2.hpp>

#include <memory>

#include "../core/AudioClock.hpp"
#include "../core/CallAudio.hpp"

namespace sipai {

class PcmPort : public pj::AudioMedia {
 public:
  PcmPort(std::shared_ptr<CallAudio> audio, AudioClock* clock);
  ~PcmPort() override;
  PcmPort(const PcmPort&) = delete;
  PcmPort& operator=(const PcmPort&) = delete;

  /** Register the port on the bridge at the call audio's rate (loop thread). Throws pj::Error. */
  void create();

 private:
  static pj_status_t getFrame(pjmedia_port* port, pjmedia_frame* frame);
  static pj_status_t putFrame(pjmedia_port* port, pjmedia_frame* frame);

  std::shared_ptr<CallAudio> audio_;
  AudioClock* clock_;
  pj_pool_t* pool_ = nullptr;
  pjmedia_port base_{};
  bool registered_ = false;
};

}  // namespace sipai
