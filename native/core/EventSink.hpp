// EventSink: how the native SIP layer hands events to whoever bridges them to JS.
// post() is called on the pj loop thread (may lock, may allocate); wakeAudio() on the audio
// notifier thread (never on the clock thread).
#pragma once

#include "Events.hpp"

namespace sipai {

class EventSink {
 public:
  virtual ~EventSink() = default;
  /** Deliver one event to JS, in order with every other event. */
  virtual void post(Event&& ev) = 0;
  /** Tell JS that RX audio is waiting in one or more calls' rings. */
  virtual void wakeAudio() = 0;
};

}  // namespace sipai
