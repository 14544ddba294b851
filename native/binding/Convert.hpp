// Convert: the only marshalling between JS values and the plain structs of native/core.
// JS thread only. Bad arguments throw Napi::TypeError naming the field.
#pragma once

#include <napi.h>

#include "../core/Config.hpp"
#include "../core/Events.hpp"

namespace sipai {
namespace convert {

EndpointConfig endpointConfig(const Napi::Value& v);
AccountConfig accountConfig(const Napi::Value& v);
AdmissionConfig admissionConfig(const Napi::Value& v);
Napi::Object admissionStats(Napi::Env env, const AdmissionStats& s);
HeaderList headers(const Napi::Value& v, const char* what);
uint32_t handle(const Napi::CallbackInfo& info, size_t i, const char* what);
int32_t optionalInt(const Napi::CallbackInfo& info, size_t i, int32_t fallback, const char* what);
std::string string(const Napi::CallbackInfo& info, size_t i, const char* what);
std::string optionalString(const Napi::CallbackInfo& info, size_t i, const char* what);

/** An event as a plain JS object ({type: 'incomingCall', call, ...}). Not for ReplyEvent. */
Napi::Object event(Napi::Env env, const Event& ev);

}  // namespace convert
}  // namespace sipai
