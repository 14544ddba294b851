// SipThread: owns PJSUA2 for the whole process and runs every PJSIP call on one thread.
//
// Files: SipThread.cpp (command queue, loop, teardown), Endpoint.cpp (library, transports,
// codecs), AgentAccount (registration, incoming calls), AgentCall (call callbacks, media),
// PcmPort (the per-call AudioMediaPort), SipMessage (reading parsed messages, the message guard),
// SipCore.hpp (the state they share).
//
// Threading contract (the rules every file in native/ follows):
//  - JS main thread: calls the public methods below. They validate, enqueue a command and return
//    at once; they never call PJSIP, so DNS, dialog locks or libDestroy never block the event
//    loop. Results come back as ReplyEvent{requestId} through the EventSink, in order with every
//    other event.
//  - pj loop thread (created here): libCreate, libInit with threadCnt=0 and mainThreadOnly=true,
//    then loops libHandleEvents(2 ms) and drains the command queue. Every SIP callback, DTMF and
//    PJSIP log line runs here, and so does every PJSIP call JS asked for. It never waits for JS.
//    Every callback and the loop body catch everything: no exception crosses pjsua2 or N-API.
//  - pjmedia clock thread (null sound device): drives the conference bridge every ptime for all
//    calls and runs PcmPort's frame callbacks, which only copy between the bridge and the call's
//    CallAudio rings and bump counters (no allocation, no lock, no log, no N-API, no pjsua).
//  - RTP thread (Endpoint.cpp, startRtpThread): polls the media endpoint's ioqueue every 2 ms, so
//    every call's RTP/RTCP is received there (pjmedia's transports and jitter buffers, under their
//    own locks), never delayed by SIP work on the loop thread. Stopped and joined before libDestroy.
//  - audio notifier thread (AudioClock): turns the clock thread's once-per-tick signal into
//    EventSink::wakeAudio().
//  - Foreign threads (JS, the notifier) never touch pj; the loop thread is registered by libCreate.
//
// Ownership: Endpoint, accounts, calls and ports live on the loop thread and are deleted there in
// the order calls hung up -> ports removed -> calls deleted -> accounts shut down -> libDestroy.
// JS refers to calls and accounts by uint32 handles that are never reused in a process; makeCall
// and addAccount allocate theirs before queueing the command, so no event can name a handle JS
// does not know yet.
// CallAudio is shared (shared_ptr) between the port and the JS side.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "../core/AudioClock.hpp"
#include "../core/CallAudio.hpp"
#include "../core/Config.hpp"
#include "../core/EventSink.hpp"

namespace sipai {

class SipThread {
 public:
  explicit SipThread(EventSink* sink);
  ~SipThread();
  SipThread(const SipThread&) = delete;
  SipThread& operator=(const SipThread&) = delete;

  /** Start the loop thread and the library. Replies with the transports' local addresses. */
  void start(const EndpointConfig& cfg, uint64_t requestId);
  /** Add an account (registers if it has a registrar). Returns its handle at once; replies when added. */
  uint32_t addAccount(const AccountConfig& cfg, uint64_t requestId);
  /** Unregister and delete an account. */
  void removeAccount(uint32_t account, uint64_t requestId);
  /** Re-send REGISTER now (renew = true) or unregister (renew = false). */
  void setRegistration(uint32_t account, bool renew, uint64_t requestId);
  /** Place an outgoing call. Returns its handle (its audio exists at once); replies when the INVITE is sent. */
  uint32_t makeCall(const CallRequest& req, uint64_t requestId);
  /** Send a provisional (180/183) or final (2xx answer, 3xx-6xx reject) response to an incoming call. */
  void answer(uint32_t call, int code, const std::string& reason, const HeaderList& headers, uint64_t requestId);
  /** Hang up (BYE, CANCEL or a final error response, as the call's state requires). */
  void hangup(uint32_t call, int code, const std::string& reason, const HeaderList& headers, uint64_t requestId);
  /** Blind transfer: send REFER to `target`; progress comes as TransferStatusEvent. */
  void transfer(uint32_t call, const std::string& target, uint64_t requestId);
  /** Send DTMF digits by RFC 2833 ("rfc2833") or SIP INFO ("info"). */
  void sendDtmf(uint32_t call, const std::string& digits, const std::string& method, uint64_t requestId);
  /** Hang up everything, tear down in order and stop the loop thread; replies, then StoppedEvent. */
  void shutdown(uint64_t requestId);
  /** Cleanup-hook path: shut down if needed and join the loop thread (blocks). */
  void shutdownAndJoin();
  /** Join the loop thread after StoppedEvent (quick). */
  void join();

  /**
   * The message guard's admission policy (process-wide, any thread; see Admission.hpp). Returns ""
   * or the problem with the config, which is then not applied.
   */
  static std::string setAdmission(const AdmissionConfig& config);
  /** What the message guard refused so far (any thread). */
  static AdmissionStats admissionStats();
  /** Answer admitted INVITEs in the guard with 486 (full) or 503 (draining); 0 lets them in. */
  static void setCallRefusal(int code);
  /** Answer OPTIONS probes with 503 and this reason while not taking calls ("" = 200). */
  static void setUnavailable(const std::string& reason);

  /** The audio state of a call (JS thread), or null if unknown. */
  std::shared_ptr<CallAudio> callAudio(uint32_t call) const;
  /** The tick coalescer (JS thread acknowledges wakes). */
  AudioClock& audioClock();
  /** True between a successful start and the end of shutdown. */
  bool running() const;

  /** pjproject version string. */
  static std::string pjVersion();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace sipai
