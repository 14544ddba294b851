#include "JsErrors.hpp"

namespace sipai {

Napi::Value makeJsError(Napi::Env env, const NativeError& err) {
  AddonData* data = env.GetInstanceData<AddonData>();
  std::string msg = err.message;
  if (err.sipStatus) msg += " [status:" + std::to_string(err.sipStatus) + "]";
  else if (err.pjStatus) msg += " [pjStatus:" + std::to_string(err.pjStatus) + "]";
  Napi::Object e;
  switch (err.kind) {
    case ErrorKind::Type:
      return Napi::TypeError::New(env, msg).Value();
    case ErrorKind::InvalidState:
      if (data && !data->invalidStateError.IsEmpty()) return data->invalidStateError.New({Napi::String::New(env, msg)});
      break;
    case ErrorKind::Sip:
      if (data && !data->sipError.IsEmpty())
        return data->sipError.New({Napi::String::New(env, msg), Napi::Number::New(env, err.sipStatus)});
      break;
    default:
      break;
  }
  e = Napi::Error::New(env, msg).Value();
  if (err.sipStatus) e.Set("status", err.sipStatus);
  return e;
}

}  // namespace sipai
