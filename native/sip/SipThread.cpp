// The pj loop thread: command queue, loop body, teardown, and the public API that feeds them.
// See SipThread.hpp for the threading contract.
#include "SipThread.hpp"

#include <algorithm>
#include <chrono>

#include "AgentAccount.hpp"
#include "AgentCall.hpp"
#include "SipCore.hpp"
#include "SipMessage.hpp"

namespace sipai {

namespace {

// pj status codes in the PJSIP range carry a SIP status (PJSIP_ERRNO_FROM_SIP_STATUS).
int sipStatusOf(pj_status_t st) {
  long code = static_cast<long>(st) - static_cast<long>(PJSIP_ERRNO_START);
  return code >= 100 && code < 800 ? static_cast<int>(code) : 0;
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

// Audio only: since 2.17 PJSUA offers and accepts a T.140 real-time text stream by default, which a
// voice agent has no use for (one more media transport and parser facing the caller).
void audioOnly(pj::CallOpParam& op) {
  op.opt.audioCount = 1;
  op.opt.videoCount = 0;
  op.opt.textCount = 0;
}

// A final or provisional response to an INVITE, or a BYE/CANCEL: the same parameters either way.
pj::CallOpParam callOp(int code, const std::string& reason, const HeaderList& headers) {
  pj::CallOpParam op(true);
  audioOnly(op);
  op.statusCode = static_cast<pjsip_status_code>(code);
  op.reason = reason;
  op.txOption.headers = toSipHeaders(headers);
  return op;
}

}  // namespace

NativeError fromPjError(const pj::Error& e, const std::string& what) {
  NativeError err;
  err.kind = ErrorKind::Sip;
  err.pjStatus = e.status;
  err.sipStatus = sipStatusOf(e.status);
  err.message = what + " failed: " + e.reason;
  return err;
}

// ---------------------------------------------------------------------------------------------
// Core helpers

void SipThread::Impl::logCall(int level, uint32_t call, const std::string& msg) noexcept {
  try {
    sink->post(LogEvent{level, call ? "call " + std::to_string(call) + ": " + msg : msg});
  } catch (...) {
  }
}

void SipThread::Impl::post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lk(qMutex);
    queue.push_back(std::move(fn));
  }
  qCv.notify_one();
}

void SipThread::Impl::reply(uint64_t id, double value) {
  ReplyEvent r;
  r.requestId = id;
  r.value = value;
  sink->post(std::move(r));
}

void SipThread::Impl::replyError(uint64_t id, NativeError err) {
  ReplyEvent r;
  r.requestId = id;
  r.ok = false;
  r.error = std::move(err);
  sink->post(std::move(r));
}

void SipThread::Impl::command(uint64_t id, const std::string& what, std::function<void()> fn) {
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

AgentCall* SipThread::Impl::findCall(uint32_t h) {
  auto it = calls.find(h);
  if (it == calls.end() || it->second->disconnected())
    throw NativeException(ErrorKind::InvalidState, "call " + std::to_string(h) + " is not active", 481);
  return it->second;
}

AgentAccount* SipThread::Impl::findAccount(uint32_t h) {
  auto it = accounts.find(h);
  if (it == accounts.end()) throw NativeException(ErrorKind::InvalidState, "account " + std::to_string(h) + " does not exist");
  return it->second;
}

std::shared_ptr<CallAudio> SipThread::Impl::newAudio(uint32_t handle) {
  unsigned spf = cfg.clockRate * cfg.ptimeMs / 1000;
  auto a = std::make_shared<CallAudio>(handle, cfg.clockRate, spf,
                                       static_cast<std::size_t>(cfg.clockRate) * cfg.rxRingMs / 1000,
                                       static_cast<std::size_t>(cfg.clockRate) * cfg.txRingMs / 1000);
  std::lock_guard<std::mutex> lk(audioMutex);
  audio[handle] = a;
  return a;
}

void SipThread::Impl::dropAudio(uint32_t handle) {
  std::lock_guard<std::mutex> lk(audioMutex);
  audio.erase(handle);
}

// ---------------------------------------------------------------------------------------------
// The loop (loop thread)

void SipThread::Impl::drainQueue() {
  std::deque<std::function<void()>> batch;
  {
    std::lock_guard<std::mutex> lk(qMutex);
    batch.swap(queue);
  }
  for (auto& fn : batch) {
    try {
      fn();
    } catch (...) {
      // command() already turns failures into replies; this only keeps the loop alive.
      logCall(1, 0, "a queued command threw");
    }
  }
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

void SipThread::Impl::loopOnce() {
  try {
    ep->libHandleEvents(2);
  } catch (const pj::Error& e) {
    logCall(1, 0, "handling SIP events: " + e.reason);
  } catch (const std::exception& e) {
    logCall(1, 0, std::string("handling SIP events: ") + e.what());
  } catch (...) {
    logCall(1, 0, "handling SIP events: unknown exception");
  }
  drainQueue();
  try {
    reapCalls();
  } catch (...) {
    logCall(1, 0, "deleting ended calls threw");
  }
  // Once a second: each call's jitter-buffer occupancy (a stream lock per call, nothing more).
  auto now = std::chrono::steady_clock::now();
  if (now >= nextJitterPoll) {
    nextJitterPoll = now + std::chrono::seconds(1);
    for (auto& kv : calls) kv.second->pollJitter(cfg.ptimeMs);
  }
  for (auto& kv : accounts) kv.second->keepaliveTick(now);
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
    kv.second->setUnregistering(true);
    delete kv.second;
  }
  accounts.clear();
  MessageGuard::uninstall();
  stopRtpThread();
  ep->libDestroy();
  ep.reset();
}

void SipThread::Impl::loop(uint64_t startId) {
  NativeError failure;
  try {
    startLibrary();
  } catch (const pj::Error& e) {
    failure = fromPjError(e, "start()");
  } catch (const NativeException& e) {
    failure = e.error();
    failure.message = "start() failed: " + failure.message;
  } catch (const std::exception& e) {
    failure = NativeError{ErrorKind::Generic, std::string("start() failed: ") + e.what(), 0, 0};
  }
  if (failure.kind != ErrorKind::None) {
    try {
      MessageGuard::uninstall();
      stopRtpThread();
      if (ep) ep->libDestroy();
    } catch (...) {
    }
    ep.reset();
    replyError(startId, failure);
    sink->post(StoppedEvent{true, failure.message});
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
  while (!stopLoop) loopOnce();
  running.store(false);
  drainQueue();
  std::string reason;
  try {
    teardown();
  } catch (const pj::Error& e) {
    reason = "shutdown: " + e.reason;
  } catch (const std::exception& e) {
    reason = std::string("shutdown: ") + e.what();
  }
  if (!reason.empty()) logCall(1, 0, reason);
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

uint32_t SipThread::addAccount(const AccountConfig& cfg, uint64_t requestId) {
  Impl* im = impl_.get();
  uint32_t h = im->nextAccount.fetch_add(1);
  im->command(requestId, "addAccount()", [im, cfg, h, requestId] {
    pj::AccountConfig ac = AgentAccount::toPj(*im, cfg);
    auto* acc = new AgentAccount(*im, h);
    // Known to the guard before the first REGISTER goes out.
    MessageGuard::addAccountRealm(cfg.username.empty() ? "" : cfg.realm, !cfg.registrarUri.empty());
    im->accounts[h] = acc;
    try {
      acc->create(ac, cfg.isDefault);
      acc->setKeepalive(cfg.registrarUri, cfg.keepaliveSec);
    } catch (...) {
      im->accounts.erase(h);
      delete acc;
      throw;
    }
    im->reply(requestId, h);
  });
  return h;
}

void SipThread::removeAccount(uint32_t account, uint64_t requestId) {
  Impl* im = impl_.get();
  im->command(requestId, "removeAccount()", [im, account, requestId] {
    AgentAccount* acc = im->findAccount(account);
    // Calls hold a reference to their account: end them first.
    for (auto& kv : im->calls) {
      if (kv.second->account() == acc && !kv.second->disconnected())
        throw NativeException(ErrorKind::InvalidState, "account " + std::to_string(account) + " still has active calls");
    }
    acc->setUnregistering(true);
    im->accounts.erase(account);
    delete acc;
    im->reply(requestId);
  });
}

void SipThread::setRegistration(uint32_t account, bool renew, uint64_t requestId) {
  Impl* im = impl_.get();
  im->command(requestId, "setRegistration()", [im, account, renew, requestId] {
    AgentAccount* acc = im->findAccount(account);
    acc->setUnregistering(!renew);
    acc->setRegistration(renew);
    im->reply(requestId);
  });
}

uint32_t SipThread::makeCall(const CallRequest& req, uint64_t requestId) {
  Impl* im = impl_.get();
  uint32_t h = im->nextCall.fetch_add(1);
  std::shared_ptr<CallAudio> audio = im->newAudio(h);
  im->command(requestId, "makeCall()", [im, req, h, audio, requestId] {
    AgentAccount* acc = im->findAccount(req.account);
    auto* call = new AgentCall(*im, *acc, PJSUA_INVALID_ID, h, audio);
    pj::CallOpParam op(true);
    audioOnly(op);
    op.txOption.headers = toSipHeaders(req.headers);
    im->calls[h] = call;
    try {
      call->makeCall(req.uri, op);
    } catch (...) {
      im->calls.erase(h);
      im->toDelete.erase(std::remove(im->toDelete.begin(), im->toDelete.end(), call), im->toDelete.end());
      delete call;
      im->dropAudio(h);
      im->sink->post(CallClosedEvent{h});
      throw;
    }
    im->reply(requestId, h);
  });
  if (!im->running.load()) im->dropAudio(h);
  return h;
}

void SipThread::answer(uint32_t call, int code, const std::string& reason, const HeaderList& headers,
                       uint64_t requestId) {
  Impl* im = impl_.get();
  im->command(requestId, "answer()", [im, call, code, reason, headers, requestId] {
    AgentCall* c = im->findCall(call);
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
    im->findCall(call)->hangup(op);
    im->reply(requestId);
  });
}

void SipThread::transfer(uint32_t call, const std::string& target, uint64_t requestId) {
  Impl* im = impl_.get();
  im->command(requestId, "transfer()", [im, call, target, requestId] {
    AgentCall* c = im->findCall(call);
    pj::CallOpParam op;
    c->xfer(target, op);
    im->reply(requestId);
  });
}

void SipThread::sendDtmf(uint32_t call, const std::string& digits, const std::string& method, uint64_t requestId) {
  Impl* im = impl_.get();
  im->command(requestId, "sendDtmf()", [im, call, digits, method, requestId] {
    AgentCall* c = im->findCall(call);
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

std::string SipThread::setAdmission(const AdmissionConfig& config) {
  AdmissionPolicy policy;
  std::string problem = admissionPolicyFrom(config, &policy);
  if (problem.empty()) MessageGuard::configureAdmission(std::move(policy));
  return problem;
}

AdmissionStats SipThread::admissionStats() { return MessageGuard::admissionStats(); }

void SipThread::setCallRefusal(int code) { MessageGuard::setCallRefusal(code); }

void SipThread::setUnavailable(const std::string& reason) { MessageGuard::setUnavailable(reason); }

}  // namespace sipai
