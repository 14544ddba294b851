// JsErrors: native failures become the JS error classes of src/util/errors.ts, which JS hands to
// the addon once (setErrorClasses) so `instanceof SipError` holds across the boundary.
#pragma once

#include <napi.h>

#include "../core/Errors.hpp"

namespace sipai {

struct AddonData {
  Napi::FunctionReference sipError;
  Napi::FunctionReference invalidStateError;
};

/** Build the JS error for a native failure (TypeError, SipError{status}, InvalidStateError, Error). */
Napi::Value makeJsError(Napi::Env env, const NativeError& err);

}  // namespace sipai
