// Module entry: exports the UserAgent and Resampler classes, the pjproject version, and setErrorClasses() through
// which JS hands over its error classes. State is per Node environment (AddonData, the
// environment's instance data), so the addon loads in worker threads too. An environment cleanup
// hook stops that environment's agents (hang up, remove ports, delete calls, unregister,
// libDestroy) before Node tears it down, so process.exit() with calls up still exits cleanly
// (see stopAll).
#include <napi.h>

#include "../sip/SipThread.hpp"
#include "JsErrors.hpp"
#include "JsResampler.hpp"
#include "JsUserAgent.hpp"

namespace sipai {

void forceStopAll(const std::shared_ptr<AgentRegistry>& registry);

namespace {

Napi::Value SetErrorClasses(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsFunction() || !info[1].IsFunction())
    throw Napi::TypeError::New(env, "setErrorClasses(SipError, InvalidStateError) expects two classes");
  AddonData* data = env.GetInstanceData<AddonData>();
  data->sipError = Napi::Persistent(info[0].As<Napi::Function>());
  data->invalidStateError = Napi::Persistent(info[1].As<Napi::Function>());
  return env.Undefined();
}

}  // namespace
}  // namespace sipai

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  using namespace sipai;
  auto* data = new AddonData();
  env.SetInstanceData(data);
  std::shared_ptr<AgentRegistry> registry = data->registry;
  exports.Set("UserAgent", JsUserAgent::Init(env));
  exports.Set("Resampler", JsResampler::Init(env));
  exports.Set("setErrorClasses", Napi::Function::New(env, SetErrorClasses, "setErrorClasses"));
  exports.Set("pjVersion", Napi::String::New(env, SipThread::pjVersion()));
  // process.exit() does not run environment cleanup hooks; binding.ts calls this from the
  // process 'exit' event instead (synchronous: it blocks until the library is destroyed).
  exports.Set("stopAll", Napi::Function::New(
                             env, [registry](const Napi::CallbackInfo& info) -> Napi::Value {
                               forceStopAll(registry);
                               return info.Env().Undefined();
                             },
                             "stopAll"));
  env.AddCleanupHook([registry] { forceStopAll(registry); });
  return exports;
}

NODE_API_MODULE(sip_ai_agent, InitAddon)
