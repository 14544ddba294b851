#include "AgentAccount.hpp"

#include <algorithm>

#include "AgentCall.hpp"
#include "SipMessage.hpp"

namespace sipai {

AgentAccount::~AgentAccount() {
  try {
    shutdown();
  } catch (...) {
    // The library is going away; nothing left to unregister from.
  }
}

pj::AccountConfig AgentAccount::toPj(const SipThread::Impl& core, const AccountConfig& cfg) {
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
  if (!cfg.username.empty()) {
    // Unset realm: PJSIP may answer any realm, and the message guard lets only the registrar's
    // challenges (learned from its answer to our REGISTER) reach it.
    ac.sipConfig.authCreds.push_back(
        pj::AuthCredInfo("digest", cfg.realm.empty() ? "*" : cfg.realm, cfg.username, 0, cfg.password));
  }
  for (const auto& p : cfg.proxies) ac.sipConfig.proxies.push_back(p);
  if (!cfg.transport.empty()) {
    auto it = core.transportIds.find(cfg.transport);
    if (it == core.transportIds.end())
      throw NativeException(ErrorKind::Type, "transport '" + cfg.transport + "' is not enabled");
    ac.sipConfig.transportId = it->second;
  }
  const EndpointConfig& ec = core.cfg;
  ac.mediaConfig.transportConfig.port = ec.rtpPortStart;
  ac.mediaConfig.transportConfig.portRange = ec.rtpPortRange;
  ac.mediaConfig.transportConfig.boundAddress = ec.rtpBindAddress;
  ac.mediaConfig.transportConfig.publicAddress = ec.rtpPublicAddress;
  ac.mediaConfig.srtpUse = ec.srtp == "mandatory"  ? PJMEDIA_SRTP_MANDATORY
                           : ec.srtp == "optional" ? PJMEDIA_SRTP_OPTIONAL
                                                   : PJMEDIA_SRTP_DISABLED;
  ac.mediaConfig.srtpSecureSignaling = ec.srtpSecureSignaling;
  // Presence is of no use to a phone agent: publish nothing, and (with the guard) accept no SUBSCRIBE.
  ac.presConfig.publishEnabled = false;
  return ac;
}

namespace {
struct ProbeToken {
  SipThread::Impl* core;
  uint32_t account;
  uint64_t seq;
};
}  // namespace

void AgentAccount::setKeepalive(const std::string& registrar, unsigned sec) {
  registrar_ = registrar;
  keepaliveSec_ = registrar.empty() ? 0 : sec;
  nextProbe_ = std::chrono::steady_clock::now() + std::chrono::seconds(keepaliveSec_);
}

void AgentAccount::keepaliveTick(std::chrono::steady_clock::time_point now) {
  if (keepaliveSec_ == 0 || unregistering_ || core_.shuttingDown) return;
  if (probePending_) {
    auto limit = std::chrono::seconds(std::min(keepaliveSec_, 8u));
    if (now - probeSentAt_ >= limit) {
      probePending_ = false;
      ++probeSeq_;  // a late answer to the abandoned probe is ignored
      probeResult(false, PJSIP_SC_REQUEST_TIMEOUT, "no answer to OPTIONS");
    }
    return;
  }
  if (now >= nextProbe_) sendProbe(now);
}

void AgentAccount::sendProbe(std::chrono::steady_clock::time_point now) {
  nextProbe_ = now + std::chrono::seconds(keepaliveSec_);
  pj_str_t target = pj_str(const_cast<char*>(registrar_.c_str()));
  pjsip_tx_data* tdata = nullptr;
  pj_status_t st = pjsua_acc_create_request(getId(), &pjsip_options_method, &target, &tdata);
  if (st != PJ_SUCCESS) {
    core_.logCall(1, 0, "account " + std::to_string(handle_) + ": cannot build the registrar keepalive: " +
                            pj::Endpoint::instance().utilStrError(st));
    return;
  }
  uint64_t seq = ++probeSeq_;
  auto* tok = new ProbeToken{&core_, handle_, seq};
  probePending_ = true;
  probeSentAt_ = now;
  st = pjsip_endpt_send_request(pjsua_get_pjsip_endpt(), tdata, -1, tok, &AgentAccount::onProbeDone);
  // A send that failed after the transaction existed has already run onProbeDone (which cleared
  // probePending_ and freed the token); one that failed before never will.
  if (st != PJ_SUCCESS && probePending_ && probeSeq_ == seq) {
    delete tok;
    probePending_ = false;
    probeResult(false, PJSIP_SC_SERVICE_UNAVAILABLE, pj::Endpoint::instance().utilStrError(st));
  }
}

void AgentAccount::onProbeDone(void* token, pjsip_event* e) {
  auto* tok = static_cast<ProbeToken*>(token);
  SipThread::Impl& core = *tok->core;
  uint32_t account = tok->account;
  uint64_t seq = tok->seq;
  delete tok;
  guarded(core, 0, "registrar keepalive", [&] {
    auto it = core.accounts.find(account);
    if (it == core.accounts.end()) return;
    AgentAccount* acc = it->second;
    if (!acc->probePending_ || seq != acc->probeSeq_) return;
    acc->probePending_ = false;
    const pjsip_transaction* tsx = e->body.tsx_state.tsx;
    // Any response means the registrar is up, even 401 or 405: only silence or a transport error is not.
    bool answered = e->body.tsx_state.type == PJSIP_EVENT_RX_MSG;
    acc->probeResult(answered, tsx->status_code, std::string(tsx->status_text.ptr, tsx->status_text.slen));
  });
}

void AgentAccount::probeResult(bool answered, int code, const std::string& reason) {
  if (answered == !registrarDown_) return;  // no change
  registrarDown_ = !answered;
  RegistrarEvent ev;
  ev.account = handle_;
  ev.reachable = answered;
  ev.sipCode = code;
  ev.reason = reason;
  core_.emit(std::move(ev));
  if (!answered) return;
  // Back after a silence: it may have restarted without our binding. Register now, not at the refresh.
  try {
    setRegistration(true);
  } catch (const pj::Error& err) {
    core_.logCall(1, 0, "account " + std::to_string(handle_) + ": re-registration after the registrar came back: " + err.reason);
  }
}

void AgentAccount::onRegState(pj::OnRegStateParam& prm) {
  guarded(core_, 0, "registration state", [&] {
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
    if (prm.status != PJ_SUCCESS && ev.reason.empty()) ev.reason = pj::Endpoint::instance().utilStrError(prm.status);
    ev.unregistering = unregistering_;
    core_.emit(std::move(ev));
  });
}

void AgentAccount::admitIncoming(pj::OnIncomingCallParam& prm) {
  // The Call object must exist before this callback returns, or pjsua answers 500.
  uint32_t h = core_.nextCall.fetch_add(1);
  auto* call = new AgentCall(core_, *this, prm.callId, h, core_.newAudio(h));
  core_.calls[h] = call;
  if (core_.shuttingDown) {
    pj::CallOpParam op;
    op.statusCode = PJSIP_SC_SERVICE_UNAVAILABLE;
    call->hangup(op);
    return;
  }
  const auto* rdata = static_cast<const pjsip_rx_data*>(prm.rdata.pjRxData);
  IncomingCallEvent ev;
  ev.call = h;
  ev.account = handle_;
  if (rdata) {
    ev.headers = readHeaders(rdata->msg_info.msg);
    ev.requestUri = readRequestUri(rdata->msg_info.msg);
  }
  ev.srcAddress = prm.rdata.srcAddress;
  pj::CallInfo ci;
  if (call->info(ci)) {
    ev.fromUri = ci.remoteUri;
    ev.toUri = ci.localUri;
    ev.sipCallId = ci.callIdString;
    ev.remoteContact = ci.remoteContact;
  }
  core_.emit(std::move(ev));
}

void AgentAccount::onIncomingCall(pj::OnIncomingCallParam& prm) {
  bool ok = guarded(core_, 0, "incoming call", [&] { admitIncoming(prm); });
  if (ok) return;
  // Whatever failed, the INVITE still gets a final answer: 500 if a call object exists (pjsua
  // answers 500 itself when none does).
  for (auto& kv : core_.calls) {
    if (kv.second->getId() == prm.callId && !kv.second->disconnected()) {
      try {
        pj::CallOpParam op;
        op.statusCode = PJSIP_SC_INTERNAL_SERVER_ERROR;
        kv.second->hangup(op);
      } catch (...) {
      }
      break;
    }
  }
}

void AgentAccount::onIncomingSubscribe(pj::OnIncomingSubscribeParam& prm) {
  // The message guard refuses SUBSCRIBE before it gets here; should one slip through, refuse it too.
  prm.code = PJSIP_SC_METHOD_NOT_ALLOWED;
}

}  // namespace sipai
