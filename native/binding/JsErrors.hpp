// JsErrors: native failures become the JS error classes of src/util/errors.ts, which JS hands to
// the addon once (setErrorClasses) so `instanceof SipError` holds across the boundary.
#pragma once

#include <napi.h>

#include <memory>
#include <set>

#include "../core/Errors.hpp"

namespace sipai {

class JsUserAgent;

/** The agents of one Node environment; shared with each agent, so either may go first at teardown. */
struct AgentRegistry {
  std::set<JsUserAgent*> agents;
};

/**
 * The addon's state in one Node environment (the main thread or a worker), kept as the
 * environment's instance data: nothing of it is process-global.
 */
struct AddonData {
  Napi::FunctionReference sipError;
  Napi::FunctionReference invalidStateError;
  std::shared_ptr<AgentRegistry> registry = std::make_shared<AgentRegistry>();
};

/** Build the JS error for a native failure (TypeError, SipError{status}, InvalidStateError, Error). */
Napi::Value makeJsError(Napi::Env env, const NativeError& err);

}  // namespace sipai
