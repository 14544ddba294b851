// AgentCall: one call (pj::Call) and its PcmPort. Loop thread only; every callback is guarded
// (nothing throws back into pjsua2) and reports to JS through the core's EventSink.
#pragma once

#include <pjsua2.hpp>

#include <memory>

#include "PcmPort.hpp"
#include "SipCore.hpp"

namespace sipai {

class AgentCall : public pj::Call {
 public:
  /** callId: pjsua's id of an incoming call, or PJSUA_INVALID_ID before makeCall(). */
  AgentCall(SipThread::Impl& core, pj::Account& acc, int callId, uint32_t handle, std::shared_ptr<CallAudio> audio);
  ~AgentCall() override;

  uint32_t handle() const { return handle_; }
  bool disconnected() const { return disconnected_; }
  /** Loop thread: read the audio stream's jitter-buffer occupancy into the call's audio state. */
  void pollJitter(unsigned ptimeMs) noexcept;
  const pj::Account* account() const { return account_; }

  /** The call's info, or false when PJSIP no longer has it (the call is being torn down). */
  bool info(pj::CallInfo& ci);
  /** Detach the port from the bridge (the call is over or the library is stopping). */
  void releaseMedia();

  void onCallState(pj::OnCallStateParam& prm) override;
  void onCallTsxState(pj::OnCallTsxStateParam& prm) override;
  void onCallMediaState(pj::OnCallMediaStateParam& prm) override;
  void onDtmfDigit(pj::OnDtmfDigitParam& prm) override;
  void onCallTransferStatus(pj::OnCallTransferStatusParam& prm) override;
  void onCallTransferRequest(pj::OnCallTransferRequestParam& prm) override;
  void onCallReplaceRequest(pj::OnCallReplaceRequestParam& prm) override;

 private:
  void connectMedia(CallMediaEvent& ev);

  SipThread::Impl& core_;
  uint32_t handle_;
  const pj::Account* account_;
  std::shared_ptr<CallAudio> audio_;
  std::unique_ptr<PcmPort> port_;
  bool disconnected_ = false;
  bool ackTimedOut_ = false;
  int mediaIdx_ = -1;      // the audio stream's index, once connected
  unsigned jbFrameMs_ = 0;  // its decoder frame length (the jitter buffer's unit)  // our 2xx was never ACKed: reported ended while PJSIP's BYE runs
};

}  // namespace sipai
