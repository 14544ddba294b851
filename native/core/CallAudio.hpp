// CallAudio: the PCM state one call shares between the clock thread (PcmPort get/put_frame), the
// JS thread (write/clear/drain) and the pj loop thread (creation, stats). Owned by shared_ptr:
// the PcmPort and the binding's call table each hold one, so neither side can free it under the
// other.
//
// RX ring: producer = clock thread (caller audio), consumer = JS thread. Overflow drops oldest.
// TX ring: producer = JS thread (agent audio), consumer = clock thread. Overflow refuses the
//          excess (write() returns what fit; JS keeps the rest in its own bounded backlog).
// Counters written by the clock thread are relaxed atomics read by the JS thread for stats.
#pragma once

#include <atomic>
#include <cstdint>

#include "PcmRing.hpp"
#include "TickStamps.hpp"

namespace sipai {

struct CallAudio {
  CallAudio(uint32_t handle_, unsigned sampleRate_, unsigned samplesPerFrame_, std::size_t rxCapacity,
            std::size_t txCapacity)
      : handle(handle_), sampleRate(sampleRate_), samplesPerFrame(samplesPerFrame_), rx(rxCapacity), tx(txCapacity) {}

  const uint32_t handle;
  const unsigned sampleRate;
  const unsigned samplesPerFrame;
  PcmRing rx;
  PcmRing tx;
  // Clock thread: per tick, the RX range written (audio ticks) and the TX range read (every tick,
  // empty when nothing was queued), with the tick's time. Read by the JS thread for latency.
  TickStamps rxStamps;
  TickStamps txStamps;

  // Clock thread counters.
  std::atomic<uint64_t> rxFrames{0};        // caller frames put into the RX ring
  std::atomic<uint64_t> rxDroppedSamples{0}; // RX overflow (JS did not drain in time)
  std::atomic<uint64_t> txFrames{0};        // ticks that took audio from the TX ring
  std::atomic<uint64_t> txPlayedSamples{0}; // samples sent to the call from the TX ring
  std::atomic<uint64_t> txUnderruns{0};     // ticks that found a partial frame (padded with silence)
  std::atomic<uint64_t> txSilentFrames{0};  // ticks with an empty TX ring
  std::atomic<uint64_t> txHeldFrames{0};    // ticks skipped while the call is on hold (ring left alone)
  std::atomic<uint64_t> rxHeldFrames{0};    // caller frames dropped while on hold (hold music is not the caller)
  // JS thread counters.
  uint64_t txOverflowSamples = 0;  // samples write() could not fit
  uint64_t txClearedSamples = 0;   // samples discarded by clear()
  // Set by the JS thread once it has a listener; RX data is only buffered while true.
  std::atomic<bool> rxEnabled{true};
  // Set when the call's media is connected to the bridge.
  std::atomic<bool> connected{false};
  // The remote put the call on hold (its SDP is sendonly or inactive): nothing we send is heard, so
  // the TX ring is not drained (the agent's reply waits for the resume), and what arrives (hold
  // music) is not the caller, so it is not passed on. Written by the loop thread on each media update.
  std::atomic<bool> held{false};
  // Audio waiting in the stream's jitter buffer, ms (frames queued x ptime; -1 before the first
  // reading). Written by the loop thread about once a second; the uplink latency JS reports
  // starts where the RTP packet arrived, so it adds this.
  std::atomic<int32_t> jbDelayMs{-1};
};

}  // namespace sipai
