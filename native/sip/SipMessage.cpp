#include "SipMessage.hpp"

#include <pjsua-lib/pjsua.h>

#include <algorithm>
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
  bool anyRealm = false;                             // an account was configured with realm "*"
  std::set<std::string> explicitRealms;              // realms of registration-less accounts
  std::set<std::pair<std::string, std::string>> registrars;  // (address, realm) that challenged a REGISTER
};
GuardState g_guard;

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

pj_bool_t onRxRequest(pjsip_rx_data* rdata) {
  if (!rdata->msg_info.msg) return PJ_FALSE;
  const pjsip_method& m = rdata->msg_info.msg->line.req.method;
  auto is = [&](const char* name) { return pj_strcmp2(&m.name, name) == 0; };
  if (m.id == PJSIP_REGISTER_METHOD) return refuse(rdata, "this agent is not a registrar");
  if (is("SUBSCRIBE")) return refuse(rdata, "this agent offers no event subscriptions");
  if (is("PUBLISH")) return refuse(rdata, "this agent is not an event state compositor");
  if (!inDialog(rdata)) {
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

void MessageGuard::install(pjsip_endpoint* endpt) {
  if (g_guard.installed) return;
  g_guard.endpt = endpt;
  pj_status_t st = pjsip_endpt_register_module(endpt, &g_module);
  if (st != PJ_SUCCESS) throw NativeException(ErrorKind::Generic, "registering the SIP message guard failed", 0, st);
  g_guard.installed = true;
}

void MessageGuard::uninstall() {
  if (!g_guard.installed) return;
  pjsip_endpt_unregister_module(g_guard.endpt, &g_module);
  g_guard.installed = false;
  g_guard.endpt = nullptr;
}

void MessageGuard::addAccountRealm(const std::string& realm, bool hasRegistrar) {
  if (realm == "*") g_guard.anyRealm = true;
  else if (!realm.empty() && !hasRegistrar) g_guard.explicitRealms.insert(realm);
}

void MessageGuard::reset() {
  g_guard.anyRealm = false;
  g_guard.explicitRealms.clear();
  g_guard.registrars.clear();
}

}  // namespace sipai
