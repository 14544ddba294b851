// The pj loop thread and everything PJSUA2: endpoint, transports, accounts, calls, ports.
// See SipThread.hpp for the threading contract.
#include "SipThread.hpp"

#include <pjsua2.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "PcmPort.hpp"

namespace sipai {

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// pj status codes in the PJSIP range carry a SIP status (PJSIP_ERRNO_FROM_SIP_STATUS).
int sipStatusOf(pj_status_t st) {
  long code = static_cast<long>(st) - static_cast<long>(PJSIP_ERRNO_START);
  return code >= 100 && code < 800 ? static_cast<int>(code) : 0;
}

NativeError fromPjError(const pj::Error& e, const std::string& what) {
  NativeError err;
  err.kind = ErrorKind::Sip;
  err.pjStatus = e.status;
  err.sipStatus = sipStatusOf(e.status);
  err.message = what + " failed: " + e.reason;
  return err;
}

const char* stateName(pjsip_inv_state s) {
  switch (s) {
    case PJSIP_INV_STATE_NULL: return "null";
    case PJSIP_INV_STATE_CALLING: return "calling";
    case PJSIP_INV_STATE_INCOMING: return "incoming";
    case PJSIP_INV_STATE_EARLY: return "early";
    case PJSIP_INV_STATE_CONNECTING: return "connecting";
    case PJSIP_INV_STATE_CONFIRMED: return "confirmed";
    case PJSIP_INV_STATE_DISCONNECTED: return "disconnected";
  }
  return "unknown";
}

const char* mediaStatusName(pjsua_call_media_status s) {
  switch (s) {
    case PJSUA_CALL_MEDIA_NONE: return "none";
    case PJSUA_CALL_MEDIA_ACTIVE: return "active";
    case PJSUA_CALL_MEDIA_LOCAL_HOLD: return "local_hold";
    case PJSUA_CALL_MEDIA_REMOTE_HOLD: return "remote_hold";
    case PJSUA_CALL_MEDIA_ERROR: return "error";
  }
  return "unknown";
}

// Header section of a SIP message as (name, value) pairs, folded lines joined, compact forms kept.
HeaderList parseHeaders(const std::string& msg) {
  HeaderList out;
  std::size_t pos = msg.find("\r\n");
  if (pos == std::string::npos) return out;
  pos += 2;
  while (pos < msg.size()) {
    std::size_t eol = msg.find("\r\n", pos);
    if (eol == std::string::npos) eol = msg.size();
    if (eol == pos) break;  // blank line: end of headers
    std::string line = msg.substr(pos, eol - pos);
    pos = eol + 2;
    if ((line[0] == ' ' || line[0] == '\t') && !out.empty()) {
      out.back().second += " " + line.substr(line.find_first_not_of(" \t"));
      continue;
    }
    std::size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.pop_back();
    std::size_t vstart = line.find_first_not_of(" \t", colon + 1);
    out.emplace_back(name, vstart == std::string::npos ? "" : line.substr(vstart));
  }
  return out;
}

std::string requestUriOf(const std::string& msg) {
  std::size_t sp1 = msg.find(' ');
  if (sp1 == std::string::npos) return "";
  std::size_t sp2 = msg.find(' ', sp1 + 1);
  if (sp2 == std::string::npos) return "";
  return msg.substr(sp1 + 1, sp2 - sp1 - 1);
}

pj::SipHeaderVector toSipHeaders(const HeaderList& headers) {
  pj::SipHeaderVector v;
  for (const auto& h : headers) {
    pj::SipHeader sh;
    sh.hName = h.first;
    sh.hValue = h.second;
    v.push_back(sh);
  }
  return v;
}

class LogBridge : public pj::LogWriter {
 public:
  explicit LogBridge(EventSink* sink) : sink_(sink) {}
  void write(const pj::LogEntry& entry) override {
    std::string msg = entry.msg;
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == '\r')) msg.pop_back();
    sink_->post(LogEvent{entry.level, msg});
  }

 private:
  EventSink* sink_;
};

}  // namespace

class AgentCall;
class AgentAccount;

struct SipThread::Impl {
  explicit Impl(EventSink* s) : sink(s), clock(s) {}

  EventSink* sink;
  AudioClock clock;
  EndpointConfig cfg;

  std::thread thread;
  std::atomic<bool> running{false};
  std::atomic<bool> threadStarted{false};
  std::mutex qMutex;
  std::condition_variable qCv;
  std::deque<std::function<void()>> queue;
  bool stopLoop = false;  // loop thread only
  bool shuttingDown = false;  // loop thread only

  // Loop thread only.
  std::unique_ptr<pj::Endpoint> ep;
  std::map<std::string, int> transportIds;
  std::map<uint32_t, AgentAccount*> accounts;
  std::map<uint32_t, AgentCall*> calls;
  std::vector<AgentCall*> toDelete;
  uint32_t nextAccount = 1;
  uint32_t nextCall = 1;

  // Shared with the JS thread.
  mutable std::mutex audioMutex;
  std::map<uint32_t, std::shared_ptr<CallAudio>> audio;

  // Events raised by PJSIP while a command runs (e.g. CALLING inside makeCall) are held until the
  // command's reply is posted, so JS always learns a handle before events about it.
  bool holdEvents = false;
  std::vector<Event> held;
  void emit(Event&& ev) {
    if (holdEvents) held.push_back(std::move(ev));
    else sink->post(std::move(ev));
  }
  void releaseHeld() {
    holdEvents = false;
    std::vector<Event> out;
    out.swap(held);
    for (auto& ev : out) sink->post(std::move(ev));
  }

  void post(std::function<void()> fn) {
    {
      std::lock_guard<std::mutex> lk(qMutex);
      queue.push_back(std::move(fn));
    }
    qCv.notify_one();
  }
  void reply(uint64_t id, double value = 0) {
    ReplyEvent r;
    r.requestId = id;
    r.value = value;
    sink->post(std::move(r));
  }
  void replyError(uint64_t id, NativeError err) {
    ReplyEvent r;
    r.requestId = id;
    r.ok = false;
    r.error = std::move(err);
    sink->post(std::move(r));
  }
  // Run fn on the loop thread; any exception becomes a rejected reply.
  void command(uint64_t id, const std::string& what, std::function<void()> fn) {
    if (!running.load()) {
      replyError(id, NativeError{ErrorKind::InvalidState, what + " failed: the user agent is not running", 0, 0});
      return;
    }
    post([this, id, what, fn = std::move(fn)] {
      if (!ep || shuttingDown) {
        replyError(id, NativeError{ErrorKind::InvalidState, what + " failed: the user agent is shutting down", 0, 0});
        return;
      }
      try {
        fn();
      } catch (const pj::Error& e) {
        replyError(id, fromPjError(e, what));
      } catch (const NativeException& e) {
        NativeError err = e.error();
        err.message = what + " failed: " + err.message;
        replyError(id, err);
      } catch (const std::exception& e) {
        replyError(id, NativeError{ErrorKind::Generic, what + " failed: " + e.what(), 0, 0});
      }
    });
  }

  void loop(uint64_t startId);
  void startLibrary();
  void drainQueue();
  void reapCalls();
  void teardown();
  AgentCall* findCall(uint32_t h, const char* what);
  AgentAccount* findAccount(uint32_t h, const char* what);
  std::shared_ptr<CallAudio> newAudio(uint32_t handle) {
    unsigned spf = cfg.clockRate * cfg.ptimeMs / 1000;
    auto a = std::make_shared<CallAudio>(handle, cfg.clockRate, spf,
                                         static_cast<std::size_t>(cfg.clockRate) * cfg.rxRingMs / 1000,
                                         static_cast<std::size_t>(cfg.clockRate) * cfg.txRingMs / 1000);
    std::lock_guard<std::mutex> lk(audioMutex);
    audio[handle] = a;
    return a;
  }
  void dropAudio(uint32_t handle) {
    std::lock_guard<std::mutex> lk(audioMutex);
    audio.erase(handle);
  }
};

// ---------------------------------------------------------------------------------------------
// Calls and accounts (loop thread only)

class AgentCall : public pj::Call {
 public:
  AgentCall(SipThread::Impl& owner, pj::Account& acc, int callId, uint32_t handle)
      : pj::Call(acc, callId), owner_(owner), handle_(handle), account_(&acc), audio_(owner.newAudio(handle)) {}
  ~AgentCall() override { port_.reset(); }

  uint32_t handle() const { return handle_; }
  bool disconnected() const { return disconnected_; }
  const pj::Account* account() const { return account_; }

  /** The call's info, or false when PJSIP no longer has it (the call is being torn down). */
  bool info(pj::CallInfo& ci) {
    try {
      ci = getInfo();
      return true;
    } catch (const pj::Error&) {
      return false;
    }
  }

  void onCallState(pj::OnCallStateParam&) override {
    pj::CallInfo ci;
    if (!info(ci)) return;
    CallStateEvent ev;
    ev.call = handle_;
    ev.state = stateName(ci.state);
    ev.sipCode = ci.lastStatusCode;
    ev.reason = ci.lastReason;
    ev.sipCallId = ci.callIdString;
    ev.connectDurationMs = ci.connectDuration.sec * 1000.0 + ci.connectDuration.msec;
    if (ci.state == PJSIP_INV_STATE_DISCONNECTED && !disconnected_) {
      disconnected_ = true;
      releaseMedia();
      owner_.toDelete.push_back(this);
    }
    owner_.emit(std::move(ev));
  }

  void onCallMediaState(pj::OnCallMediaStateParam&) override {
    pj::CallInfo ci;
    if (!info(ci)) return;
    CallMediaEvent ev;
    ev.call = handle_;
    ev.status = "none";
    for (unsigned i = 0; i < ci.media.size(); ++i) {
      const auto& m = ci.media[i];
      if (m.type != PJMEDIA_TYPE_AUDIO) continue;
      ev.status = mediaStatusName(m.status);
      if (m.status != PJSUA_CALL_MEDIA_ACTIVE && m.status != PJSUA_CALL_MEDIA_REMOTE_HOLD) continue;
      try {
        pj::AudioMedia am = getAudioMedia(static_cast<int>(i));
        if (!port_) {
          port_.reset(new PcmPort(audio_, &owner_.clock));
          port_->create();
        }
        // Re-run on every media update: a re-INVITE can recreate the stream with a new slot.
        am.startTransmit(*port_);
        port_->startTransmit(am);
        audio_->connected.store(true);
        ev.active = true;
        pj::StreamInfo si = getStreamInfo(i);
        ev.codec = si.codecName;
        ev.codecClockRate = si.codecClockRate;
      } catch (const pj::Error& e) {
        owner_.emit(LogEvent{1, "call " + std::to_string(handle_) + ": media connect failed: " + e.reason});
      }
      break;
    }
    owner_.emit(std::move(ev));
  }

  void onDtmfDigit(pj::OnDtmfDigitParam& prm) override {
    DtmfEvent ev;
    ev.call = handle_;
    ev.digit = prm.digit;
    ev.method = prm.method == PJSUA_DTMF_METHOD_SIP_INFO ? "info" : "rfc2833";
    ev.durationMs = prm.duration == PJSUA_UNKNOWN_DTMF_DURATION ? 0 : prm.duration;
    owner_.emit(std::move(ev));
  }

  void onCallTransferStatus(pj::OnCallTransferStatusParam& prm) override {
    TransferStatusEvent ev;
    ev.call = handle_;
    ev.sipCode = prm.statusCode;
    ev.reason = prm.reason;
    ev.final = prm.finalNotify;
    owner_.emit(std::move(ev));
    // Keep receiving NOTIFYs until the final one; the JS side decides when to hang up.
    prm.cont = true;
  }

  void onCallTransferRequest(pj::OnCallTransferRequestParam& prm) override {
    // The agent is an endpoint, not a transfer target: a remote REFER would start a call no one
    // bridges. Decline it (RFC 3515 allows any final response).
    prm.statusCode = PJSIP_SC_DECLINE;
  }

  void releaseMedia() {
    audio_->connected.store(false);
    port_.reset();
  }

 private:
  SipThread::Impl& owner_;
  uint32_t handle_;
  const pj::Account* account_;
  std::shared_ptr<CallAudio> audio_;
  std::unique_ptr<PcmPort> port_;
  bool disconnected_ = false;
};

class AgentAccount : public pj::Account {
 public:
  AgentAccount(SipThread::Impl& owner, uint32_t handle) : owner_(owner), handle_(handle) {}
  ~AgentAccount() override { shutdown(); }

  uint32_t handle() const { return handle_; }

  void onRegState(pj::OnRegStateParam& prm) override {
    RegStateEvent ev;
    ev.account = handle_;
    ev.sipCode = prm.code;
    ev.reason = prm.reason;
    try {
      pj::AccountInfo ai = getInfo();
      ev.registered = ai.regIsActive;
      ev.expiresSec = ai.regExpiresSec;
    } catch (const pj::Error&) {
    }
    if (prm.status != PJ_SUCCESS && ev.reason.empty()) {
      ev.reason = pj::Endpoint::instance().utilStrError(prm.status);
    }
    ev.unregistering = unregistering_;
    owner_.emit(std::move(ev));
  }

  void onIncomingCall(pj::OnIncomingCallParam& prm) override {
    // The Call object must exist before this callback returns, or pjsua answers 500.
    uint32_t h = owner_.nextCall++;
    auto* call = new AgentCall(owner_, *this, prm.callId, h);
    owner_.calls[h] = call;
    if (owner_.shuttingDown) {
      pj::CallOpParam op;
      op.statusCode = PJSIP_SC_SERVICE_UNAVAILABLE;
      try {
        call->hangup(op);
      } catch (const pj::Error&) {
      }
      return;
    }
    IncomingCallEvent ev;
    ev.call = h;
    ev.account = handle_;
    ev.headers = parseHeaders(prm.rdata.wholeMsg);
    ev.requestUri = requestUriOf(prm.rdata.wholeMsg);
    ev.srcAddress = prm.rdata.srcAddress;
    pj::CallInfo ci;
    if (call->info(ci)) {
      ev.fromUri = ci.remoteUri;
      ev.toUri = ci.localUri;
      ev.sipCallId = ci.callIdString;
      ev.remoteContact = ci.remoteContact;
    }
    owner_.emit(std::move(ev));
  }

  bool unregistering_ = false;

 private:
  SipThread::Impl& owner_;
  uint32_t handle_;
};

AgentCall* SipThread::Impl::findCall(uint32_t h, const char* what) {
  auto it = calls.find(h);
  if (it == calls.end() || it->second->disconnected())
    throw NativeException(ErrorKind::InvalidState, std::string("call ") + std::to_string(h) + " is not active", 481);
  (void)what;
  return it->second;
}

AgentAccount* SipThread::Impl::findAccount(uint32_t h, const char*) {
  auto it = accounts.find(h);
  if (it == accounts.end())
    throw NativeException(ErrorKind::InvalidState, std::string("account ") + std::to_string(h) + " does not exist");
  return it->second;
}

// ---------------------------------------------------------------------------------------------
// Library lifecycle (loop thread)

void SipThread::Impl::startLibrary() {
  // pjlib logs to stdout until libInit installs our writer; stdout is the JSON log stream.
  pj_log_set_level(0);
  ep.reset(new pj::Endpoint);
  ep->libCreate();

  pj::EpConfig ec;
  ec.uaConfig.threadCnt = 0;
  ec.uaConfig.mainThreadOnly = true;
  ec.uaConfig.userAgent = cfg.userAgent;
  ec.uaConfig.maxCalls = cfg.maxCalls;
  ec.logConfig.level = static_cast<unsigned>(std::max(0, std::min(6, cfg.logLevel)));
  ec.logConfig.consoleLevel = ec.logConfig.level;
  ec.logConfig.msgLogging = cfg.logLevel >= 5;
  ec.logConfig.decor = PJ_LOG_HAS_SENDER | PJ_LOG_HAS_INDENT;
  ec.logConfig.writer = new LogBridge(sink);  // owned and deleted by libDestroy
  ec.medConfig.clockRate = cfg.clockRate;
  ec.medConfig.sndClockRate = 0;
  ec.medConfig.audioFramePtime = cfg.ptimeMs;
  ec.medConfig.channelCount = 1;
  ec.medConfig.noVad = true;
  ec.medConfig.ecTailLen = 0;
  ec.medConfig.ecOptions = 0;
  ec.medConfig.jbInit = cfg.jbInitMs;
  ec.medConfig.jbMinPre = cfg.jbMinPreMs;
  ec.medConfig.jbMaxPre = cfg.jbMaxPreMs;
  ec.medConfig.jbMax = cfg.jbMaxMs;
  // RTP is read by the SIP ioqueue our loop thread polls every 2 ms. pjmedia's own media thread
  // polls with a 500 ms timeout, and a socket registered while it waits (every new call) is not
  // read until that poll returns: the first ~480 ms of RTP then arrives as one burst, the
  // jitter buffer jumps to its maximum and progressive discard spends seconds draining it
  // (half a second of extra latency and dropped frames at the start of every call).
  ec.medConfig.threadCnt = 0;
  ec.medConfig.hasIoqueue = false;
  // Keep the clock running while idle so the first call starts on a warm bridge.
  ec.medConfig.sndAutoCloseTime = -1;
  ep->libInit(ec);

  auto mkTransport = [&](const char* name, pjsip_transport_type_e type, const TransportConfig& t) {
    if (!t.enabled) return;
    pj::TransportConfig tc;
    tc.port = t.port;
    tc.boundAddress = t.bindAddress;
    tc.publicAddress = t.publicAddress;
    if (type == PJSIP_TRANSPORT_TLS) {
      tc.tlsConfig.certFile = t.certFile;
      tc.tlsConfig.privKeyFile = t.privKeyFile;
      tc.tlsConfig.CaListFile = t.caListFile;
      tc.tlsConfig.password = t.password;
      tc.tlsConfig.verifyServer = t.verifyServer;
      tc.tlsConfig.verifyClient = t.verifyClient;
      tc.tlsConfig.method = PJSIP_TLSV1_2_METHOD;
    }
    try {
      transportIds[name] = ep->transportCreate(type, tc);
    } catch (const pj::Error& e) {
      throw NativeException(ErrorKind::Generic,
                            std::string(name) + " transport on " + (t.bindAddress.empty() ? "*" : t.bindAddress) + ":" +
                                std::to_string(t.port) + ": " + e.reason,
                            0, e.status);
    }
  };
  mkTransport("udp", PJSIP_TRANSPORT_UDP, cfg.udp);
  mkTransport("tcp", PJSIP_TRANSPORT_TCP, cfg.tcp);
  mkTransport("tls", PJSIP_TRANSPORT_TLS, cfg.tls);
  if (transportIds.empty()) throw NativeException(ErrorKind::Type, "no SIP transport enabled");

  ep->libStart();
  // This build has no sound device back end: the null device provides the bridge clock.
  ep->audDevManager().setNullDev();

  // Codec priorities by name ("PCMU", "G722", "opus"): listed ones in order, every other codec off.
  pj::CodecInfoVector2 codecs = ep->codecEnum2();
  for (const auto& ci : codecs) {
    std::string id = ci.codecId;
    std::string name = lower(id.substr(0, id.find('/')));
    int prio = 0;
    for (std::size_t i = 0; i < cfg.codecs.size(); ++i) {
      if (lower(cfg.codecs[i]) == name) {
        prio = 254 - static_cast<int>(i);
        break;
      }
    }
    ep->codecSetPriority(id, static_cast<pj_uint8_t>(prio));
  }
}

void SipThread::Impl::drainQueue() {
  std::deque<std::function<void()>> batch;
  {
    std::lock_guard<std::mutex> lk(qMutex);
    batch.swap(queue);
  }
  for (auto& fn : batch) fn();
}

void SipThread::Impl::reapCalls() {
  if (toDelete.empty()) return;
  std::vector<AgentCall*> dead;
  dead.swap(toDelete);
  for (AgentCall* c : dead) {
    uint32_t h = c->handle();
    calls.erase(h);
    delete c;
    dropAudio(h);
    sink->post(CallClosedEvent{h});
  }
}

void SipThread::Impl::teardown() {
  shuttingDown = true;
  // 1. Hang up every call and let the BYE/CANCEL/final responses go out.
  for (auto& kv : calls) {
    if (kv.second->disconnected()) continue;
    pj::CallOpParam op;
    op.statusCode = PJSIP_SC_SERVICE_UNAVAILABLE;
    try {
      kv.second->hangup(op);
    } catch (const pj::Error&) {
    }
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(2000);
  while (std::chrono::steady_clock::now() < deadline) {
    bool anyLive = false;
    for (auto& kv : calls)
      if (!kv.second->disconnected()) anyLive = true;
    reapCalls();
    if (!anyLive) break;
    ep->libHandleEvents(10);
  }
  // 2. Ports, then calls.
  for (auto& kv : calls) kv.second->releaseMedia();
  for (auto& kv : calls) {
    uint32_t h = kv.first;
    delete kv.second;
    dropAudio(h);
    sink->post(CallClosedEvent{h});
  }
  calls.clear();
  toDelete.clear();
  // 3. Accounts (unregister), then the library (waits for the unREGISTER responses).
  for (auto& kv : accounts) {
    kv.second->unregistering_ = true;
    delete kv.second;
  }
  accounts.clear();
  ep->libDestroy();
  ep.reset();
}

void SipThread::Impl::loop(uint64_t startId) {
  try {
    startLibrary();
  } catch (const pj::Error& e) {
    NativeError err = fromPjError(e, "start()");
    try {
      if (ep) ep->libDestroy();
    } catch (...) {
    }
    ep.reset();
    replyError(startId, err);
    sink->post(StoppedEvent{true, err.message});
    return;
  } catch (const NativeException& e) {
    NativeError err = e.error();
    err.message = "start() failed: " + err.message;
    try {
      if (ep) ep->libDestroy();
    } catch (...) {
    }
    ep.reset();
    replyError(startId, err);
    sink->post(StoppedEvent{true, err.message});
    return;
  }
  running.store(true);
  {
    ReplyEvent r;
    r.requestId = startId;
    for (const auto& kv : transportIds) {
      pj::TransportInfo ti = ep->transportGetInfo(kv.second);
      r.strings.emplace_back(kv.first, ti.localName);
    }
    sink->post(std::move(r));
  }
  uint64_t stopId = 0;
  while (!stopLoop) {
    ep->libHandleEvents(2);
    drainQueue();
    reapCalls();
  }
  (void)stopId;
  running.store(false);
  drainQueue();
  try {
    teardown();
  } catch (const pj::Error& e) {
    sink->post(LogEvent{1, "shutdown: " + e.reason});
  }
  drainQueue();  // commands that raced the stop are answered with "shutting down"
  clock.stop();
  sink->post(StoppedEvent{false, ""});
}

// ---------------------------------------------------------------------------------------------
// Public API (JS thread)

SipThread::SipThread(EventSink* sink) : impl_(new Impl(sink)) {}

SipThread::~SipThread() { shutdownAndJoin(); }

void SipThread::start(const EndpointConfig& cfg, uint64_t requestId) {
  if (impl_->threadStarted.exchange(true)) {
    impl_->replyError(requestId, NativeError{ErrorKind::InvalidState, "start() failed: already started", 0, 0});
    return;
  }
  impl_->cfg = cfg;
  impl_->thread = std::thread([this, requestId] { impl_->loop(requestId); });
}

void SipThread::addAccount(const AccountConfig& cfg, uint64_t requestId) {
  Impl* im = impl_.get();
  im->command(requestId, "addAccount()", [im, cfg, requestId] {
    pj::AccountConfig ac;
    ac.idUri = cfg.idUri;
    ac.regConfig.registrarUri = cfg.registrarUri;
    ac.regConfig.registerOnAdd = !cfg.registrarUri.empty();
    ac.regConfig.timeoutSec = cfg.expiresSec;
    ac.regConfig.retryIntervalSec = cfg.retryIntervalSec;
    ac.regConfig.firstRetryIntervalSec = cfg.firstRetryIntervalSec;
    ac.regConfig.randomRetryIntervalSec = 2;
    ac.regConfig.dropCallsOnFail = false;
    ac.regConfig.unregWaitMsec = 2000;
    if (!cfg.username.empty())
      ac.sipConfig.authCreds.push_back(pj::AuthCredInfo("digest", cfg.realm.empty() ? "*" : cfg.realm, cfg.username, 0, cfg.password));
    for (const auto& p : cfg.proxies) ac.sipConfig.proxies.push_back(p);
    if (!cfg.transport.empty()) {
      auto it = im->transportIds.find(cfg.transport);
      if (it == im->transportIds.end())
        throw NativeException(ErrorKind::Type, "transport '" + cfg.transport + "' is not enabled");
      ac.sipConfig.transportId = it->second;
    }
    ac.mediaConfig.transportConfig.port = im->cfg.rtpPortStart;
    ac.mediaConfig.transportConfig.portRange = im->cfg.rtpPortRange;
    ac.mediaConfig.transportConfig.boundAddress = im->cfg.rtpBindAddress;
    ac.mediaConfig.transportConfig.publicAddress = im->cfg.rtpPublicAddress;
    ac.mediaConfig.srtpUse = im->cfg.srtp == "mandatory"  ? PJMEDIA_SRTP_MANDATORY
                             : im->cfg.srtp == "optional" ? PJMEDIA_SRTP_OPTIONAL
                                                          : PJMEDIA_SRTP_DISABLED;
    ac.mediaConfig.srtpSecureSignaling = im->cfg.srtpSecureSignaling;
    uint32_t h = im->nextAccount++;
    auto* acc = new AgentAccount(*im, h);
    try {
      acc->create(ac, cfg.isDefault);
    } catch (...) {
      delete acc;
      throw;
    }
    im->accounts[h] = acc;
    im->reply(requestId, h);
  });
}

void SipThread::removeAccount(uint32_t account, uint64_t requestId) {
  Impl* im = impl_.get();
  im->command(requestId, "removeAccount()", [im, account, requestId] {
    AgentAccount* acc = im->findAccount(account, "removeAccount");
    // Calls hold a reference to their account: end them first.
    for (auto& kv : im->calls) {
      if (kv.second->account() == acc && !kv.second->disconnected()) {
        throw NativeException(ErrorKind::InvalidState, "account " + std::to_string(account) + " still has active calls");
      }
    }
    acc->unregistering_ = true;
    im->accounts.erase(account);
    delete acc;
    im->reply(requestId);
  });
}

void SipThread::setRegistration(uint32_t account, bool renew, uint64_t requestId) {
  Impl* im = impl_.get();
  im->command(requestId, "setRegistration()", [im, account, renew, requestId] {
    AgentAccount* acc = im->findAccount(account, "setRegistration");
    acc->unregistering_ = !renew;
    acc->setRegistration(renew);
    im->reply(requestId);
  });
}

void SipThread::makeCall(const CallRequest& req, uint64_t requestId) {
  Impl* im = impl_.get();
  im->command(requestId, "makeCall()", [im, req, requestId] {
    AgentAccount* acc = im->findAccount(req.account, "makeCall");
    uint32_t h = im->nextCall++;
    auto* call = new AgentCall(*im, *acc, PJSUA_INVALID_ID, h);
    pj::CallOpParam op(true);
    op.txOption.headers = toSipHeaders(req.headers);
    im->calls[h] = call;
    im->holdEvents = true;
    try {
      call->makeCall(req.uri, op);
    } catch (...) {
      im->held.clear();
      im->holdEvents = false;
      im->calls.erase(h);
      im->toDelete.erase(std::remove(im->toDelete.begin(), im->toDelete.end(), call), im->toDelete.end());
      im->dropAudio(h);
      delete call;
      throw;
    }
    im->reply(requestId, h);
    im->releaseHeld();
  });
}

// A final or provisional response to an INVITE, or a BYE/CANCEL: the same parameters either way.
static pj::CallOpParam callOp(int code, const std::string& reason, const HeaderList& headers) {
  pj::CallOpParam op;
  op.statusCode = static_cast<pjsip_status_code>(code);
  op.reason = reason;
  op.txOption.headers = toSipHeaders(headers);
  return op;
}

void SipThread::answer(uint32_t call, int code, const std::string& reason, const HeaderList& headers,
                       uint64_t requestId) {
  Impl* im = impl_.get();
  im->command(requestId, "answer()", [im, call, code, reason, headers, requestId] {
    AgentCall* c = im->findCall(call, "answer");
    pj::CallOpParam op = callOp(code, reason, headers);
    if (code >= 300) c->hangup(op);
    else c->answer(op);
    im->reply(requestId);
  });
}

void SipThread::hangup(uint32_t call, int code, const std::string& reason, const HeaderList& headers,
                       uint64_t requestId) {
  Impl* im = impl_.get();
  im->command(requestId, "hangup()", [im, call, code, reason, headers, requestId] {
    pj::CallOpParam op = callOp(code, reason, headers);
    im->findCall(call, "hangup")->hangup(op);
    im->reply(requestId);
  });
}

void SipThread::transfer(uint32_t call, const std::string& target, uint64_t requestId) {
  Impl* im = impl_.get();
  im->command(requestId, "transfer()", [im, call, target, requestId] {
    AgentCall* c = im->findCall(call, "transfer");
    pj::CallOpParam op;
    c->xfer(target, op);
    im->reply(requestId);
  });
}

void SipThread::sendDtmf(uint32_t call, const std::string& digits, const std::string& method, uint64_t requestId) {
  Impl* im = impl_.get();
  im->command(requestId, "sendDtmf()", [im, call, digits, method, requestId] {
    AgentCall* c = im->findCall(call, "sendDtmf");
    pj::CallSendDtmfParam p;
    p.method = method == "info" ? PJSUA_DTMF_METHOD_SIP_INFO : PJSUA_DTMF_METHOD_RFC2833;
    p.digits = digits;
    p.duration = PJSUA_CALL_SEND_DTMF_DURATION_DEFAULT;
    c->sendDtmf(p);
    im->reply(requestId);
  });
}

void SipThread::shutdown(uint64_t requestId) {
  Impl* im = impl_.get();
  if (!im->threadStarted.load()) {
    im->reply(requestId);
    im->sink->post(StoppedEvent{false, ""});
    return;
  }
  im->post([im, requestId] {
    im->stopLoop = true;
    im->reply(requestId);
  });
}

void SipThread::shutdownAndJoin() {
  Impl* im = impl_.get();
  if (!im->threadStarted.load()) {
    im->clock.stop();
    return;
  }
  im->post([im] { im->stopLoop = true; });
  join();
}

void SipThread::join() {
  if (impl_->thread.joinable()) impl_->thread.join();
  impl_->clock.stop();
}

std::shared_ptr<CallAudio> SipThread::callAudio(uint32_t call) const {
  std::lock_guard<std::mutex> lk(impl_->audioMutex);
  auto it = impl_->audio.find(call);
  return it == impl_->audio.end() ? nullptr : it->second;
}

AudioClock& SipThread::audioClock() { return impl_->clock; }

bool SipThread::running() const { return impl_->running.load(); }

std::string SipThread::pjVersion() { return pj_get_version(); }

}  // namespace sipai
