#include "AgentAccount.hpp"

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
