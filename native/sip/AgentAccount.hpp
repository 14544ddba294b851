// AgentAccount: one SIP identity (pj::Account): registration and incoming calls. Loop thread only;
// every callback is guarded (nothing throws back into pjsua2).
#pragma once

#include <pjsua2.hpp>

#include <chrono>

#include "SipCore.hpp"

namespace sipai {

class AgentAccount : public pj::Account {
 public:
  AgentAccount(SipThread::Impl& core, uint32_t handle) : core_(core), handle_(handle) {}
  ~AgentAccount() override;

  uint32_t handle() const { return handle_; }
  /** Set before an unregistration, so its RegStateEvent says so. */
  void setUnregistering(bool v) { unregistering_ = v; }

  /** The PJSUA2 account configuration for an AccountConfig (throws NativeException on a bad transport). */
  static pj::AccountConfig toPj(const SipThread::Impl& core, const AccountConfig& cfg);

  /**
   * Probe the registrar with OPTIONS every `sec` seconds (0: never). A registrar that stops answering
   * and then answers again may have restarted and lost our binding: we register again at once.
   */
  void setKeepalive(const std::string& registrar, unsigned sec);
  /** Called by the loop on every pass: sends the next probe when due, times out a lost one. */
  void keepaliveTick(std::chrono::steady_clock::time_point now);

  void onRegState(pj::OnRegStateParam& prm) override;
  void onIncomingCall(pj::OnIncomingCallParam& prm) override;
  void onIncomingSubscribe(pj::OnIncomingSubscribeParam& prm) override;

 private:
  void admitIncoming(pj::OnIncomingCallParam& prm);
  void sendProbe(std::chrono::steady_clock::time_point now);
  void probeResult(bool answered, int code, const std::string& reason);
  static void onProbeDone(void* token, pjsip_event* e);

  SipThread::Impl& core_;
  uint32_t handle_;
  bool unregistering_ = false;

  // Keepalive (loop thread only). A probe is abandoned after min(interval, 8 s); a late answer to
  // it is ignored (its sequence number is stale).
  std::string registrar_;
  unsigned keepaliveSec_ = 0;
  uint64_t probeSeq_ = 0;
  bool probePending_ = false;
  bool registrarDown_ = false;
  std::chrono::steady_clock::time_point probeSentAt_{}, nextProbe_{};
};

}  // namespace sipai
