// AgentAccount: one SIP identity (pj::Account): registration and incoming calls. Loop thread only;
// every callback is guarded (nothing throws back into pjsua2).
#pragma once

#include <pjsua2.hpp>

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

  void onRegState(pj::OnRegStateParam& prm) override;
  void onIncomingCall(pj::OnIncomingCallParam& prm) override;
  void onIncomingSubscribe(pj::OnIncomingSubscribeParam& prm) override;

 private:
  void admitIncoming(pj::OnIncomingCallParam& prm);

  SipThread::Impl& core_;
  uint32_t handle_;
  bool unregistering_ = false;
};

}  // namespace sipai
