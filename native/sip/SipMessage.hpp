// SipMessage: reading SIP messages PJSIP has already parsed, and the message guard every request
// and response passes before the transaction layer.
//
// Nothing here re-parses raw message text: headers and URIs come from pjsip_msg, printed by
// PJSIP's own printers into bounded buffers.
//
// The guard (a pjsip module ahead of the transaction layer, loop thread only):
//  - applies the admission policy (Admission.hpp) to every request that starts something: source
//    admission (403), the Request-URI user (404) and per-source rate limits (503 or no answer);
//  - refuses requests this agent has no use for with 405 Method Not Allowed and an Allow header:
//    SUBSCRIBE, PUBLISH and REGISTER always, REFER and MESSAGE outside a dialog;
//  - keeps the accounts' credentials for their registrar: a 401/407 challenge is answered only
//    when it comes from an address that challenged one of our REGISTERs (a response matching a
//    REGISTER transaction of ours, not any "401 to REGISTER"), with the realm it used there, or (for an account with no registrar) carries the realm the account was configured
//    with. An account written with realm "*" opts out of the guard. Any other challenge has its authenticate headers removed before PJSIP
//    sees it, so the request fails instead of sending a digest of the password to a stranger
//    (e.g. a caller challenging our BYE).
#pragma once

#include <pjsip.h>

#include <string>

#include "../core/EventSink.hpp"
#include "../core/Events.hpp"
#include "Admission.hpp"

namespace sipai {

/** The header section of a parsed message as (name, value) pairs, in order; over-long values are cut. */
HeaderList readHeaders(const pjsip_msg* msg);

/** A parsed request's Request-URI as text ("" for a response). */
std::string readRequestUri(const pjsip_msg* msg);

/** The message guard. Install once per endpoint (loop thread, after libInit). */
class MessageGuard {
 public:
  /** Register the module on PJSIP's endpoint. Throws NativeException on failure. */
  static void install(pjsip_endpoint* endpt, EventSink* sink);
  /** Unregister before libDestroy (idempotent). */
  static void uninstall();
  /**
   * An account's configured realm: "" (learn it from the registrar's challenge), "*" (answer any
   * challenge) or a realm (for an account with a registrar, still only from the registrar).
   */
  static void addAccountRealm(const std::string& realm, bool hasRegistrar);
  /** Forget what was learned and configured (library restart); the admission policy stays. */
  static void reset();
  /** Set the admission policy (any thread; see Admission.hpp). */
  static void configureAdmission(AdmissionPolicy policy);
  /** Refusal counters (any thread). */
  static AdmissionStats admissionStats();
  /** Answer admitted INVITEs with 486 (full) or 503 (draining) here; 0 lets them through (any thread). */
  static void setCallRefusal(int code);
  /** Answer OPTIONS outside a dialog with 503 and this reason ("" = let pjsua answer 200). Any thread. */
  static void setUnavailable(const std::string& reason);
};

}  // namespace sipai
