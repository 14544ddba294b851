// JsUserAgent: the JS class over SipThread. JS thread only, except JsEventSink::post/wakeAudio
// (any native thread), which only queue onto the one ThreadSafeFunction.
//
// Events reach JS in order through that single TSFN: replies resolve their promises; every other
// event is handed to the onEvent callback as a plain object. An audio wake (a null TSFN payload)
// drains every call's RX ring into one ArrayBuffer with an Int16Array view per call.
// Audio writes (writeAudio/clearAudio) go straight into the call's TX ring: no command queue.
#pragma once

#include <napi.h>

#include <map>
#include <memory>
#include <set>

#include "../core/EventSink.hpp"
#include "../sip/SipThread.hpp"
#include "JsErrors.hpp"

namespace sipai {

class JsUserAgent;

void callJs(Napi::Env env, Napi::Function cb, JsUserAgent* ctx, Event* data);
using Tsfn = Napi::TypedThreadSafeFunction<JsUserAgent, Event, callJs>;

class JsUserAgent : public Napi::ObjectWrap<JsUserAgent>, public EventSink {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit JsUserAgent(const Napi::CallbackInfo& info);
  ~JsUserAgent() override;

  // EventSink (native threads).
  void post(Event&& ev) override;
  void wakeAudio() override;

  // JS thread, from the TSFN.
  void dispatch(Napi::Env env, Event& ev);
  void drainAudio(Napi::Env env);

  /** Environment teardown: stop the library and join its threads (blocks briefly). */
  void forceStop();

 private:
  Napi::Value Start(const Napi::CallbackInfo& info);
  Napi::Value AddAccount(const Napi::CallbackInfo& info);
  Napi::Value RemoveAccount(const Napi::CallbackInfo& info);
  Napi::Value SetRegistration(const Napi::CallbackInfo& info);
  Napi::Value MakeCall(const Napi::CallbackInfo& info);
  Napi::Value Answer(const Napi::CallbackInfo& info);
  Napi::Value Hangup(const Napi::CallbackInfo& info);
  Napi::Value Transfer(const Napi::CallbackInfo& info);
  Napi::Value SendDtmf(const Napi::CallbackInfo& info);
  Napi::Value Shutdown(const Napi::CallbackInfo& info);
  Napi::Value WriteAudio(const Napi::CallbackInfo& info);
  Napi::Value ClearAudio(const Napi::CallbackInfo& info);
  Napi::Value TxIndex(const Napi::CallbackInfo& info);
  Napi::Value AudioStats(const Napi::CallbackInfo& info);
  Napi::Value TxTicks(const Napi::CallbackInfo& info);
  Napi::Value SetRxEnabled(const Napi::CallbackInfo& info);
  Napi::Value SetAdmission(const Napi::CallbackInfo& info);
  Napi::Value AdmissionStats(const Napi::CallbackInfo& info);
  Napi::Value SetCallRefusal(const Napi::CallbackInfo& info);
  Napi::Value SetUnavailable(const Napi::CallbackInfo& info);
  Napi::Value JitterDelay(const Napi::CallbackInfo& info);
  Napi::Value GetRunning(const Napi::CallbackInfo& info);

  std::pair<uint64_t, Napi::Promise> newRequest(Napi::Env env);
  std::shared_ptr<CallAudio> audioOf(uint32_t call);
  void ensureUsable(Napi::Env env, const char* what);

  /** {handle, done}: what makeCall/addAccount return (the handle is known before any event names it). */
  Napi::Object handleRequest(Napi::Env env, uint32_t handle, Napi::Promise done);

  std::shared_ptr<AgentRegistry> registry_;
  std::unique_ptr<SipThread> sip_;
  Tsfn tsfn_;
  bool tsfnReleased_ = false;
  Napi::FunctionReference onEvent_;
  Napi::ObjectReference self_;
  std::map<uint64_t, Napi::Promise::Deferred> pending_;
  uint64_t nextRequest_ = 1;
  uint64_t shutdownRequest_ = 0;
  std::map<uint32_t, std::shared_ptr<CallAudio>> audio_;
  bool started_ = false;
  bool stopping_ = false;
  bool stopped_ = false;
  std::unique_ptr<Napi::Promise::Deferred> stopDeferred_;
};

}  // namespace sipai
