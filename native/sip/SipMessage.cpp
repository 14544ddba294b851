#include "SipMessage.hpp"

#include <pjsua-lib/pjsua.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <chrono>
#include <mutex>
#include <set>
#include <string>
#include <utility>

namespace sipai {

namespace {

// PJSIP_MAX_PKT_LEN bounds every message, so one header never prints longer than this.
constexpr int kPrintBuf = 8192;
// At most this many headers cross to JS (a message of 8000 bytes holds fewer real ones).
constexpr std::size_t kMaxHeaders = 256;

std::string str(const pj_str_t& s) { return s.slen > 0 ? std::string(s.ptr, static_cast<std::size_t>(s.slen)) : std::string(); }

}  // namespace

HeaderList readHeaders(const pjsip_msg* msg) {
  HeaderList out;
  if (!msg) return out;
  static thread_local char buf[kPrintBuf];
  const pjsip_hdr* h = msg->hdr.next;
  while (h != &msg->hdr && out.size() < kMaxHeaders) {
    std::string name = str(h->name);
    int len = pjsip_hdr_print_on(const_cast<pjsip_hdr*>(h), buf, sizeof(buf) - 1);
    std::string value;
    if (len > 0) {
      std::string printed(buf, static_cast<std::size_t>(len));
      // Printed as "Name: value"; keep the value.
      std::size_t colon = printed.find(':');
      if (colon != std::string::npos) {
        std::size_t v = printed.find_first_not_of(" \t", colon + 1);
        if (v != std::string::npos) value = printed.substr(v);
      }
    }
    if (!name.empty()) out.emplace_back(std::move(name), std::move(value));
    h = h->next;
  }
  return out;
}

std::string readRequestUri(const pjsip_msg* msg) {
  if (!msg || msg->type != PJSIP_REQUEST_MSG || !msg->line.req.uri) return "";
  static thread_local char buf[kPrintBuf];
  int len = pjsip_uri_print(PJSIP_URI_IN_REQ_URI, msg->line.req.uri, buf, sizeof(buf) - 1);
  return len > 0 ? std::string(buf, static_cast<std::size_t>(len)) : std::string();
}

// ---------------------------------------------------------------------------------------------
// The guard module (loop thread only: every callback of PJSIP's endpoint runs there).

namespace {

struct GuardState {
  bool installed = false;
  pjsip_endpoint* endpt = nullptr;
  EventSink* sink = nullptr;
  bool anyRealm = false;                             // an account was configured with realm "*"
  std::set<std::string> explicitRealms;              // realms of registration-less accounts
  std::set<std::pair<std::string, std::string>> registrars;  // (address, realm) that challenged a REGISTER
};
GuardState g_guard;
Admission g_admission;  // any thread (own mutex)

// Why the agent takes no calls now ("" = it does): OPTIONS outside a dialog get 503 with this reason.
std::mutex g_unavailableMutex;
std::string g_unavailable;
constexpr unsigned kUnavailableRetryAfterSec = 5;

std::string sourceOf(const pjsip_rx_data* rdata) {
  return std::string(rdata->pkt_info.src_name) + ":" + std::to_string(rdata->pkt_info.src_port);
}

bool inDialog(const pjsip_rx_data* rdata) { return rdata->msg_info.to && rdata->msg_info.to->tag.slen > 0; }

// Registrars (address, realm) remembered at most: one account has one registrar.
constexpr std::size_t kMaxRegistrars = 64;

// True when a response belongs to a client transaction of ours that is still running (its top Via
// carries the branch we sent). Runs before the transaction layer, which would drop a stray one.
bool answersOurTransaction(pjsip_rx_data* rdata) {
  if (!rdata->msg_info.cseq || !rdata->msg_info.via) return false;
  pj_str_t key;
  if (pjsip_tsx_create_key(rdata->tp_info.pool, &key, PJSIP_ROLE_UAC, &rdata->msg_info.cseq->method, rdata) != PJ_SUCCESS)
    return false;
  return pjsip_tsx_layer_find_tsx(&key, PJ_FALSE) != nullptr;
}

pj_bool_t refuse(pjsip_rx_data* rdata, const char* why) {
  const pjsip_method& m = rdata->msg_info.msg->line.req.method;
  PJ_LOG(3, ("guard", "%.*s from %s refused (405): %s", static_cast<int>(m.name.slen), m.name.ptr,
             sourceOf(rdata).c_str(), why));
  if (m.id == PJSIP_ACK_METHOD) return PJ_TRUE;  // never answer an ACK
  pjsip_hdr hdrs;
  pj_list_init(&hdrs);
  pj_str_t allowName = pj_str(const_cast<char*>("Allow"));
  pj_str_t allowValue = pj_str(const_cast<char*>("INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, NOTIFY, UPDATE, PRACK"));
  pjsip_generic_string_hdr* allow = pjsip_generic_string_hdr_create(rdata->tp_info.pool, &allowName, &allowValue);
  if (allow) pj_list_push_back(&hdrs, allow);
  pjsip_endpt_respond_stateless(g_guard.endpt, rdata, PJSIP_SC_METHOD_NOT_ALLOWED, nullptr, &hdrs, nullptr);
  return PJ_TRUE;
}

std::array<uint8_t, 16> addressOf(const pjsip_rx_data* rdata) {
  std::array<uint8_t, 16> a{};
  const pj_sockaddr& sa = rdata->pkt_info.src_addr;
  if (sa.addr.sa_family == pj_AF_INET()) {
    a[10] = 0xff;
    a[11] = 0xff;
    std::memcpy(&a[12], &sa.ipv4.sin_addr, 4);
  } else if (sa.addr.sa_family == pj_AF_INET6()) {
    std::memcpy(a.data(), &sa.ipv6.sin6_addr, 16);
  }
  return a;
}

std::string requestUser(const pjsip_msg* msg) {
  const pjsip_uri* uri = msg->line.req.uri;
  if (!uri) return "";
  if (PJSIP_URI_SCHEME_IS_SIP(uri) || PJSIP_URI_SCHEME_IS_SIPS(uri)) {
    auto* su = static_cast<const pjsip_sip_uri*>(pjsip_uri_get_uri(const_cast<pjsip_uri*>(uri)));
    return str(su->user);
  }
  return "";
}

// A request with a To tag that names no dialog of ours starts nothing either: limited like one
// outside a dialog (a flood of forged BYEs costs the same as one of OPTIONS).
bool knownDialog(pjsip_rx_data* rdata) {
  if (!inDialog(rdata) || !rdata->msg_info.cid || !rdata->msg_info.from) return false;
  return pjsip_ua_find_dialog(&rdata->msg_info.cid->id, &rdata->msg_info.to->tag, &rdata->msg_info.from->tag, PJ_FALSE) != nullptr;
}

double monotonicSec() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

const char* verdictText(Verdict v) {
  switch (v) {
    case Verdict::Forbidden: return "403, not an admitted source";
    case Verdict::NotFound: return "404, the Request-URI names no account";
    case Verdict::RateLimited: return "503, over the per-source rate limit";
    case Verdict::Drop: return "dropped unanswered: over the rate limit of a source that is not admitted";
    case Verdict::Busy: return "486, every call slot is taken";
    case Verdict::Draining: return "503, the agent is shutting down";
    default: return "passed";
  }
}

// Apply the admission decision; true when the request was answered or dropped here.
bool admit(pjsip_rx_data* rdata) {
  const pjsip_msg* msg = rdata->msg_info.msg;
  const pjsip_method& m = msg->line.req.method;
  if (m.id == PJSIP_ACK_METHOD || knownDialog(rdata)) return false;
  bool invite = m.id == PJSIP_INVITE_METHOD && !inDialog(rdata);
  Decision d = g_admission.check(addressOf(rdata), invite, invite ? requestUser(msg) : std::string(), monotonicSec());
  if (d.verdict == Verdict::Pass) return false;
  if (d.report && g_guard.sink) {
    std::string line = "guard: " + str(m.name) + " from " + sourceOf(rdata) + " refused (" + verdictText(d.verdict) + ")";
    if (d.suppressed > 0) line += "; " + std::to_string(d.suppressed) + " more from this source since the last report";
    try {
      g_guard.sink->post(LogEvent{3, line});
    } catch (...) {
    }
  }
  int code = 0;
  pjsip_hdr hdrs;
  pj_list_init(&hdrs);
  switch (d.verdict) {
    case Verdict::Forbidden: code = PJSIP_SC_FORBIDDEN; break;
    case Verdict::NotFound: code = PJSIP_SC_NOT_FOUND; break;
    case Verdict::Busy: code = PJSIP_SC_BUSY_HERE; break;
    case Verdict::Draining: code = PJSIP_SC_SERVICE_UNAVAILABLE; break;
    case Verdict::RateLimited: {
      code = PJSIP_SC_SERVICE_UNAVAILABLE;
      pjsip_retry_after_hdr* ra = pjsip_retry_after_hdr_create(rdata->tp_info.pool, static_cast<int>(d.retryAfterSec));
      if (ra) pj_list_push_back(&hdrs, ra);
      break;
    }
    default: return true;  // dropped
  }
  pjsip_endpt_respond_stateless(g_guard.endpt, rdata, code, nullptr, &hdrs, nullptr);
  return true;
}

pj_bool_t onRxRequest(pjsip_rx_data* rdata) {
  if (!rdata->msg_info.msg) return PJ_FALSE;
  if (admit(rdata)) return PJ_TRUE;
  const pjsip_method& m = rdata->msg_info.msg->line.req.method;
  auto is = [&](const char* name) { return pj_strcmp2(&m.name, name) == 0; };
  if (m.id == PJSIP_REGISTER_METHOD) return refuse(rdata, "this agent is not a registrar");
  if (is("SUBSCRIBE")) return refuse(rdata, "this agent offers no event subscriptions");
  if (is("PUBLISH")) return refuse(rdata, "this agent is not an event state compositor");
  if (!inDialog(rdata)) {
    if (m.id == PJSIP_OPTIONS_METHOD) {
      // A load balancer's probe: 503 while the agent takes no calls (pjsua answers 200 otherwise).
      std::string reason;
      {
        std::lock_guard<std::mutex> lk(g_unavailableMutex);
        reason = g_unavailable;
      }
      if (reason.empty()) return PJ_FALSE;
      pjsip_hdr hdrs;
      pj_list_init(&hdrs);
      pjsip_retry_after_hdr* ra = pjsip_retry_after_hdr_create(rdata->tp_info.pool, kUnavailableRetryAfterSec);
      if (ra) pj_list_push_back(&hdrs, ra);
      pj_str_t text = pj_str(const_cast<char*>(reason.c_str()));
      pjsip_endpt_respond_stateless(g_guard.endpt, rdata, PJSIP_SC_SERVICE_UNAVAILABLE, &text, &hdrs, nullptr);
      return PJ_TRUE;
    }
    if (is("REFER")) return refuse(rdata, "REFER outside a dialog");
    if (is("MESSAGE")) return refuse(rdata, "this agent takes no instant messages");
  }
  return PJ_FALSE;
}

pj_bool_t onRxResponse(pjsip_rx_data* rdata) {
  pjsip_msg* msg = rdata->msg_info.msg;
  if (!msg) return PJ_FALSE;
  int code = msg->line.status.code;
  if (code != PJSIP_SC_UNAUTHORIZED && code != PJSIP_SC_PROXY_AUTHENTICATION_REQUIRED) return PJ_FALSE;
  bool isRegister = rdata->msg_info.cseq && rdata->msg_info.cseq->method.id == PJSIP_REGISTER_METHOD;
  bool ownRegister = isRegister && answersOurTransaction(rdata);
  std::string src = sourceOf(rdata);
  pjsip_hdr* h = msg->hdr.next;
  while (h != &msg->hdr) {
    pjsip_hdr* next = h->next;
    if (h->type == PJSIP_H_WWW_AUTHENTICATE || h->type == PJSIP_H_PROXY_AUTHENTICATE) {
      auto* ah = reinterpret_cast<pjsip_www_authenticate_hdr*>(h);
      std::string realm = str(ah->challenge.common.realm);
      if (isRegister) {
        // Learned only from an answer to a REGISTER of ours (anyone can send a "401 to REGISTER").
        if (ownRegister && g_guard.registrars.size() < kMaxRegistrars) g_guard.registrars.emplace(src, realm);
      } else if (!g_guard.anyRealm && !g_guard.registrars.count({src, realm}) && !g_guard.explicitRealms.count(realm)) {
        std::string method = rdata->msg_info.cseq ? str(rdata->msg_info.cseq->method.name) : "?";
        PJ_LOG(2, ("guard", "%d challenge to our %s from %s (realm \"%.64s\") not answered: credentials go only to the registrar",
                   code, method.c_str(), src.c_str(), realm.c_str()));
        pj_list_erase(h);
      }
    }
    h = next;
  }
  return PJ_FALSE;
}

pjsip_module g_module = {
    nullptr, nullptr,
    {const_cast<char*>("mod-sip-ai-agent-guard"), 22},
    -1,
    PJSIP_MOD_PRIORITY_TSX_LAYER - 1,  // before transactions, dialogs and pjsua's own modules
    nullptr, nullptr, nullptr, nullptr,
    &onRxRequest, &onRxResponse,
    nullptr, nullptr, nullptr,
};

}  // namespace

void MessageGuard::install(pjsip_endpoint* endpt, EventSink* sink) {
  if (g_guard.installed) return;
  g_guard.endpt = endpt;
  g_guard.sink = sink;
  pj_status_t st = pjsip_endpt_register_module(endpt, &g_module);
  if (st != PJ_SUCCESS) throw NativeException(ErrorKind::Generic, "registering the SIP message guard failed", 0, st);
  g_guard.installed = true;
}

void MessageGuard::uninstall() {
  if (!g_guard.installed) return;
  pjsip_endpt_unregister_module(g_guard.endpt, &g_module);
  g_guard.installed = false;
  g_guard.endpt = nullptr;
  g_guard.sink = nullptr;
}

void MessageGuard::addAccountRealm(const std::string& realm, bool hasRegistrar) {
  if (realm == "*") g_guard.anyRealm = true;
  else if (!realm.empty() && !hasRegistrar) g_guard.explicitRealms.insert(realm);
}

void MessageGuard::reset() {
  g_guard.anyRealm = false;
  g_guard.explicitRealms.clear();
  g_guard.registrars.clear();
  g_admission.reset();
}

void MessageGuard::configureAdmission(AdmissionPolicy policy) { g_admission.configure(std::move(policy)); }

AdmissionStats MessageGuard::admissionStats() { return g_admission.stats(); }

void MessageGuard::setCallRefusal(int code) { g_admission.setCallRefusal(code); }

void MessageGuard::setUnavailable(const std::string& reason) {
  // A reason phrase is one line of printable text (RFC 3261 Reason-Phrase).
  std::string clean;
  for (char c : reason.substr(0, 120)) clean += (c >= 0x20 && c != 0x7f) ? c : ' ';
  std::lock_guard<std::mutex> lk(g_unavailableMutex);
  g_unavailable = clean;
}

}  // namespace sipai
