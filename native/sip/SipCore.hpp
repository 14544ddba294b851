// SipCore: the state behind SipThread, shared by the files of native/sip/ (not a public header).
//
// Threading: everything here belongs to the pj loop thread, except where a member says otherwise
// (the command queue, the handle counters and the call-audio table are shared with the JS thread).
// See SipThread.hpp for the whole contract.
#pragma once

#include <pjsua2.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "../core/AudioClock.hpp"
#include "../core/CallAudio.hpp"
#include "../core/Config.hpp"
#include "../core/EventSink.hpp"
#include "SipThread.hpp"

namespace sipai {

class AgentCall;
class AgentAccount;

/** A pj::Error as the NativeError JS sees (SIP status kept when the pj status carries one). */
NativeError fromPjError(const pj::Error& e, const std::string& what);

struct SipThread::Impl {
  explicit Impl(EventSink* s) : sink(s), clock(s) {}

  EventSink* sink;
  AudioClock clock;
  EndpointConfig cfg;  // written before the loop thread starts, read-only afterwards

  // Loop thread and command queue (queue shared with the JS thread under qMutex).
  std::thread thread;
  std::atomic<bool> running{false};
  std::atomic<bool> threadStarted{false};
  std::mutex qMutex;
  std::condition_variable qCv;
  std::deque<std::function<void()>> queue;
  bool stopLoop = false;      // loop thread only
  std::chrono::steady_clock::time_point nextJitterPoll{};  // loop thread only
  // The RTP thread: polls the media ioqueue (sockets of every call's RTP/RTCP) every 2 ms.
  std::thread rtpThread;
  std::atomic<bool> rtpStop{false};
  bool shuttingDown = false;  // loop thread only

  // Handles are allocated where the request starts (JS thread for makeCall/addAccount, loop thread
  // for incoming calls) and never reused, so JS knows a handle before any event can name it.
  std::atomic<uint32_t> nextCall{1};
  std::atomic<uint32_t> nextAccount{1};

  // Loop thread only.
  std::unique_ptr<pj::Endpoint> ep;
  std::map<std::string, int> transportIds;
  std::map<uint32_t, AgentAccount*> accounts;
  std::map<uint32_t, AgentCall*> calls;
  std::vector<AgentCall*> toDelete;

  // Shared with the JS thread.
  mutable std::mutex audioMutex;
  std::map<uint32_t, std::shared_ptr<CallAudio>> audio;

  void emit(Event&& ev) { sink->post(std::move(ev)); }
  /** A warning or error about one call, for the JS log (never throws). */
  void logCall(int level, uint32_t call, const std::string& msg) noexcept;

  void post(std::function<void()> fn);
  void reply(uint64_t id, double value = 0);
  void replyError(uint64_t id, NativeError err);
  /** Run fn on the loop thread; any exception becomes a rejected reply. */
  void command(uint64_t id, const std::string& what, std::function<void()> fn);

  // SipThread.cpp: the loop and teardown.
  void loop(uint64_t startId);
  void loopOnce();
  void drainQueue();
  void reapCalls();
  void teardown();
  // Endpoint.cpp: library, transports, codecs, the message guard.
  void startLibrary();
  /** Start / stop the thread that reads RTP (the media ioqueue); stopped before libDestroy. */
  void startRtpThread();
  void stopRtpThread() noexcept;

  AgentCall* findCall(uint32_t h);
  AgentAccount* findAccount(uint32_t h);
  /** The audio state of a new call, registered for the JS side (any thread). */
  std::shared_ptr<CallAudio> newAudio(uint32_t handle);
  void dropAudio(uint32_t handle);
};

/**
 * Run a PJSUA2 callback body: nothing may throw across pjsua2's C callbacks (it would terminate the
 * process), so every exception is caught here and logged with the call or account it concerned.
 * Returns false when the body threw.
 */
template <class F>
bool guarded(SipThread::Impl& core, uint32_t call, const char* where, F&& body) noexcept {
  try {
    body();
    return true;
  } catch (const pj::Error& e) {
    core.logCall(1, call, std::string(where) + ": " + e.reason);
  } catch (const std::exception& e) {
    core.logCall(1, call, std::string(where) + ": " + e.what());
  } catch (...) {
    core.logCall(1, call, std::string(where) + ": unknown exception");
  }
  return false;
}

}  // namespace sipai
