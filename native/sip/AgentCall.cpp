#include "AgentCall.hpp"

namespace sipai {

namespace {

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

}  // namespace

AgentCall::AgentCall(SipThread::Impl& core, pj::Account& acc, int callId, uint32_t handle,
                     std::shared_ptr<CallAudio> audio)
    : pj::Call(acc, callId), core_(core), handle_(handle), account_(&acc), audio_(std::move(audio)) {}

AgentCall::~AgentCall() { port_.reset(); }

bool AgentCall::info(pj::CallInfo& ci) {
  try {
    ci = getInfo();
    return true;
  } catch (const pj::Error&) {
    return false;
  }
}

void AgentCall::releaseMedia() {
  audio_->connected.store(false);
  port_.reset();
}

void AgentCall::onCallState(pj::OnCallStateParam&) {
  guarded(core_, handle_, "call state", [&] {
    pj::CallInfo ci;
    if (!info(ci)) return;
    CallStateEvent ev;
    ev.call = handle_;
    ev.state = stateName(ci.state);
    ev.sipCode = ci.lastStatusCode;
    ev.reason = ci.lastReason;
    ev.sipCallId = ci.callIdString;
    ev.connectDurationMs = ci.connectDuration.sec * 1000.0 + ci.connectDuration.msec;
    bool ended = ci.state == PJSIP_INV_STATE_DISCONNECTED;
    if (ended && !disconnected_) {
      disconnected_ = true;
      releaseMedia();
      core_.toDelete.push_back(this);
    }
    core_.emit(std::move(ev));
  });
}

// Our 200 OK was never ACKed (RFC 3261 13.3.1.4: after 64*T1 the UAS ends the dialog with BYE).
// PJSIP sends that BYE and reports DISCONNECTED only when it completes, which takes another 32 s
// when the caller is gone (a scanner, a spoofed source, a crashed phone). The call is over now:
// JS hears so at once, so it frees the call slot and writes the record; media stops with it.
void AgentCall::onCallTsxState(pj::OnCallTsxStateParam& prm) {
  guarded(core_, handle_, "call transaction", [&] {
    const auto& ts = prm.e.body.tsxState;
    const pj::SipTransaction& tsx = ts.tsx;
    if (disconnected_ || ackTimedOut_ || prm.e.type != PJSIP_EVENT_TSX_STATE) return;
    if (tsx.role != PJSIP_ROLE_UAS || tsx.method != "INVITE" || tsx.state != PJSIP_TSX_STATE_TERMINATED) return;
    // PJSIP ends the transaction by its timer with 408 (it has already sent the BYE by then).
    if (ts.type != PJSIP_EVENT_TIMER || (tsx.statusCode != PJSIP_SC_REQUEST_TIMEOUT && tsx.statusCode / 100 != 2)) return;
    pj::CallInfo ci;
    if (!info(ci) || ci.state == PJSIP_INV_STATE_CONFIRMED || ci.state == PJSIP_INV_STATE_DISCONNECTED) return;
    ackTimedOut_ = true;
    releaseMedia();
    core_.logCall(2, handle_, "no ACK for our 200 OK within 32 s: the call is over (PJSIP sends BYE)");
    CallStateEvent ev;
    ev.call = handle_;
    ev.state = "disconnected";
    ev.sipCode = PJSIP_SC_REQUEST_TIMEOUT;
    ev.reason = "ACK not received";
    ev.sipCallId = ci.callIdString;
    ev.connectDurationMs = 0;
    core_.emit(std::move(ev));
  });
}

void AgentCall::pollJitter(unsigned ptimeMs) noexcept {
  if (disconnected_ || ackTimedOut_ || mediaIdx_ < 0) return;
  pjsua_stream_stat st;
  if (pjsua_call_get_stream_stat(getId(), static_cast<unsigned>(mediaIdx_), &st) != PJ_SUCCESS) return;
  unsigned frameMs = jbFrameMs_ > 0 ? jbFrameMs_ : ptimeMs;
  audio_->jbDelayMs.store(static_cast<int32_t>(st.jbuf.size * frameMs), std::memory_order_relaxed);
}

void AgentCall::connectMedia(CallMediaEvent& ev) {
  pj::CallInfo ci;
  if (!info(ci)) return;
  for (unsigned i = 0; i < ci.media.size(); ++i) {
    const auto& m = ci.media[i];
    if (m.type != PJMEDIA_TYPE_AUDIO) continue;
    ev.status = mediaStatusName(m.status);
    if (m.status != PJSUA_CALL_MEDIA_ACTIVE && m.status != PJSUA_CALL_MEDIA_REMOTE_HOLD) continue;
    try {
      pj::AudioMedia am = getAudioMedia(static_cast<int>(i));
      if (!port_) {
        std::unique_ptr<PcmPort> port(new PcmPort(audio_, &core_.clock));
        port->create();
        port_ = std::move(port);
      }
      // Re-run on every media update: a re-INVITE can recreate the stream with a new slot.
      am.startTransmit(*port_);
      port_->startTransmit(am);
      audio_->connected.store(true);
      mediaIdx_ = static_cast<int>(i);
      // Remote hold (sendonly or inactive offer): our direction has no encoding.
      bool held = (m.dir & PJMEDIA_DIR_ENCODING) == 0;
      if (held != audio_->held.load()) core_.logCall(3, handle_, held ? "the remote party put the call on hold" : "the call was resumed");
      audio_->held.store(held);
      ev.active = true;
      pj::StreamInfo si = getStreamInfo(i);
      ev.codec = si.codecName;
      // The jitter buffer counts decoder frames (10 ms for G.711, whatever the packet holds).
      jbFrameMs_ = si.audCodecParam.info.frameLen > 0 ? si.audCodecParam.info.frameLen : 0;
      ev.codecClockRate = si.codecClockRate;
    } catch (const pj::Error& e) {
      core_.logCall(1, handle_, "media connect failed: " + e.reason);
    }
    break;
  }
}

void AgentCall::onCallMediaState(pj::OnCallMediaStateParam&) {
  guarded(core_, handle_, "call media", [&] {
    CallMediaEvent ev;
    ev.call = handle_;
    ev.status = "none";
    connectMedia(ev);
    core_.emit(std::move(ev));
  });
}

void AgentCall::onDtmfDigit(pj::OnDtmfDigitParam& prm) {
  guarded(core_, handle_, "DTMF", [&] {
    DtmfEvent ev;
    ev.call = handle_;
    ev.digit = prm.digit.substr(0, 1);
    ev.method = prm.method == PJSUA_DTMF_METHOD_SIP_INFO ? "info" : "rfc2833";
    ev.durationMs = prm.duration == PJSUA_UNKNOWN_DTMF_DURATION ? 0 : prm.duration;
    if (!ev.digit.empty()) core_.emit(std::move(ev));
  });
}

void AgentCall::onCallTransferStatus(pj::OnCallTransferStatusParam& prm) {
  // Keep receiving NOTIFYs until the final one; the JS side decides when to hang up.
  prm.cont = true;
  guarded(core_, handle_, "transfer status", [&] {
    TransferStatusEvent ev;
    ev.call = handle_;
    ev.sipCode = prm.statusCode;
    ev.reason = prm.reason;
    ev.final = prm.finalNotify;
    core_.emit(std::move(ev));
  });
}

void AgentCall::onCallTransferRequest(pj::OnCallTransferRequestParam& prm) {
  // The agent is an endpoint, not a transfer target: a remote REFER would start a call no one
  // bridges. Decline it (RFC 3515 allows any final response).
  prm.statusCode = PJSIP_SC_DECLINE;
  core_.logCall(2, handle_, "REFER from the remote party declined (603)");
}

void AgentCall::onCallReplaceRequest(pj::OnCallReplaceRequestParam& prm) {
  // An INVITE with Replaces would take this call over from outside; refuse it (RFC 3891 allows 603).
  prm.statusCode = PJSIP_SC_DECLINE;
}

}  // namespace sipai
