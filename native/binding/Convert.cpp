#include "Convert.hpp"

#include <type_traits>

namespace sipai {
namespace convert {

namespace {

[[noreturn]] void typeError(Napi::Env env, const std::string& msg) { throw Napi::TypeError::New(env, msg); }

Napi::Value field(const Napi::Object& o, const char* key) { return o.Has(key) ? o.Get(key) : o.Env().Undefined(); }

std::string getString(const Napi::Object& o, const char* key, const std::string& ctx, const std::string& def = "") {
  Napi::Value v = field(o, key);
  if (v.IsUndefined() || v.IsNull()) return def;
  if (!v.IsString()) typeError(o.Env(), ctx + "." + key + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

double getNumber(const Napi::Object& o, const char* key, const std::string& ctx, double def, double min, double max) {
  Napi::Value v = field(o, key);
  if (v.IsUndefined() || v.IsNull()) return def;
  if (!v.IsNumber()) typeError(o.Env(), ctx + "." + key + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= min && d <= max))
    typeError(o.Env(), ctx + "." + key + " must be between " + std::to_string(static_cast<long long>(min)) + " and " +
                           std::to_string(static_cast<long long>(max)));
  return d;
}

bool getBool(const Napi::Object& o, const char* key, const std::string& ctx, bool def) {
  Napi::Value v = field(o, key);
  if (v.IsUndefined() || v.IsNull()) return def;
  if (!v.IsBoolean()) typeError(o.Env(), ctx + "." + key + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

std::vector<std::string> getStrings(const Napi::Object& o, const char* key, const std::string& ctx,
                                    std::vector<std::string> def) {
  Napi::Value v = field(o, key);
  if (v.IsUndefined() || v.IsNull()) return def;
  if (!v.IsArray()) typeError(o.Env(), ctx + "." + key + " must be an array of strings");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<std::string> out;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value e = a.Get(i);
    if (!e.IsString()) typeError(o.Env(), ctx + "." + key + "[" + std::to_string(i) + "] must be a string");
    out.push_back(e.As<Napi::String>().Utf8Value());
  }
  return out;
}

Napi::Object asObject(const Napi::Value& v, const std::string& ctx) {
  if (!v.IsObject()) typeError(v.Env(), ctx + " must be an object");
  return v.As<Napi::Object>();
}

}  // namespace

AdmissionConfig admissionConfig(const Napi::Value& v) {
  const std::string ctx = "admission";
  AdmissionConfig p;
  if (v.IsNull() || v.IsUndefined()) return p;  // no policy: everything passes
  Napi::Object o = asObject(v, ctx);
  p.enabled = true;
  p.anySource = getBool(o, "anySource", ctx, false);
  p.fromPatterns = getBool(o, "fromPatterns", ctx, false);
  p.trusted = getStrings(o, "trusted", ctx, {});
  p.users = getStrings(o, "users", ctx, {});
  p.invitesPerSec = getNumber(o, "invitesPerSec", ctx, p.invitesPerSec, 0.01, 1e6);
  p.inviteBurst = getNumber(o, "inviteBurst", ctx, p.inviteBurst, 1, 1e6);
  p.requestsPerSec = getNumber(o, "requestsPerSec", ctx, p.requestsPerSec, 0.01, 1e6);
  p.requestBurst = getNumber(o, "requestBurst", ctx, p.requestBurst, 1, 1e6);
  p.retryAfterSec = static_cast<unsigned>(getNumber(o, "retryAfterSec", ctx, p.retryAfterSec, 1, 86400));
  p.logIntervalSec = static_cast<unsigned>(getNumber(o, "logIntervalSec", ctx, p.logIntervalSec, 0, 86400));
  p.maxSources = static_cast<std::size_t>(getNumber(o, "maxSources", ctx, static_cast<double>(p.maxSources), 1, 1e7));
  return p;
}

Napi::Object admissionStats(Napi::Env env, const AdmissionStats& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("forbidden", static_cast<double>(s.forbidden));
  o.Set("notFound", static_cast<double>(s.notFound));
  o.Set("rateLimited", static_cast<double>(s.rateLimited));
  o.Set("dropped", static_cast<double>(s.dropped));
  o.Set("busy", static_cast<double>(s.busy));
  o.Set("draining", static_cast<double>(s.draining));
  o.Set("sources", static_cast<double>(s.sources));
  return o;
}

namespace {

TransportConfig transport(const Napi::Object& parent, const char* key, bool defEnabled) {
  TransportConfig t;
  t.enabled = defEnabled;
  Napi::Value v = field(parent, key);
  if (v.IsUndefined() || v.IsNull()) return t;
  std::string ctx = std::string("config.") + key;
  Napi::Object o = asObject(v, ctx);
  t.enabled = getBool(o, "enabled", ctx, true);
  t.bindAddress = getString(o, "bindAddress", ctx);
  t.port = static_cast<unsigned>(getNumber(o, "port", ctx, 0, 0, 65535));
  t.publicAddress = getString(o, "publicAddress", ctx);
  t.certFile = getString(o, "certFile", ctx);
  t.privKeyFile = getString(o, "privKeyFile", ctx);
  t.caListFile = getString(o, "caListFile", ctx);
  t.password = getString(o, "password", ctx);
  t.verifyServer = getBool(o, "verifyServer", ctx, false);
  t.verifyClient = getBool(o, "verifyClient", ctx, false);
  t.minTlsVersion = getString(o, "method", ctx, "tlsv1.2");
  if (t.minTlsVersion != "tlsv1.2" && t.minTlsVersion != "tlsv1.3")
    typeError(o.Env(), ctx + ".method must be 'tlsv1.2' or 'tlsv1.3'");
  return t;
}

}  // namespace

EndpointConfig endpointConfig(const Napi::Value& v) {
  const std::string ctx = "config";
  Napi::Object o = asObject(v, ctx);
  EndpointConfig c;
  c.udp = transport(o, "udp", true);
  c.tcp = transport(o, "tcp", false);
  c.tls = transport(o, "tls", false);
  c.userAgent = getString(o, "userAgent", ctx, c.userAgent);
  c.clockRate = static_cast<unsigned>(getNumber(o, "clockRate", ctx, 8000, 8000, 48000));
  if (c.clockRate != 8000 && c.clockRate != 16000 && c.clockRate != 24000)
    typeError(o.Env(), "config.clockRate must be 8000, 16000 or 24000");
  c.ptimeMs = static_cast<unsigned>(getNumber(o, "ptimeMs", ctx, 20, 10, 40));
  if (c.ptimeMs != 10 && c.ptimeMs != 20) typeError(o.Env(), "config.ptimeMs must be 10 or 20");
  c.codecs = getStrings(o, "codecs", ctx, c.codecs);
  c.jbInitMs = static_cast<int>(getNumber(o, "jbInitMs", ctx, -1, -1, 10000));
  c.jbMinPreMs = static_cast<int>(getNumber(o, "jbMinPreMs", ctx, -1, -1, 10000));
  c.jbMaxPreMs = static_cast<int>(getNumber(o, "jbMaxPreMs", ctx, -1, -1, 10000));
  c.jbMaxMs = static_cast<int>(getNumber(o, "jbMaxMs", ctx, -1, -1, 10000));
  c.srtp = getString(o, "srtp", ctx, "disabled");
  if (c.srtp != "disabled" && c.srtp != "optional" && c.srtp != "mandatory")
    typeError(o.Env(), "config.srtp must be disabled, optional or mandatory");
  c.srtpSecureSignaling = static_cast<int>(getNumber(o, "srtpSecureSignaling", ctx, 0, 0, 2));
  c.rtpPortStart = static_cast<unsigned>(getNumber(o, "rtpPortStart", ctx, 4000, 0, 65535));
  c.rtpPortRange = static_cast<unsigned>(getNumber(o, "rtpPortRange", ctx, 0, 0, 65535));
  c.rtpBindAddress = getString(o, "rtpBindAddress", ctx);
  c.rtpPublicAddress = getString(o, "rtpPublicAddress", ctx);
  c.txRingMs = static_cast<unsigned>(getNumber(o, "txRingMs", ctx, 10000, 100, 600000));
  c.rxRingMs = static_cast<unsigned>(getNumber(o, "rxRingMs", ctx, 1000, 100, 60000));
  c.logLevel = static_cast<int>(getNumber(o, "logLevel", ctx, 3, 0, 6));
  c.maxCalls = static_cast<unsigned>(getNumber(o, "maxCalls", ctx, 256, 1, 510));
  return c;
}

AccountConfig accountConfig(const Napi::Value& v) {
  const std::string ctx = "account";
  Napi::Object o = asObject(v, ctx);
  AccountConfig a;
  a.idUri = getString(o, "idUri", ctx);
  if (a.idUri.empty()) typeError(o.Env(), "account.idUri is required");
  a.registrarUri = getString(o, "registrarUri", ctx);
  a.username = getString(o, "username", ctx);
  a.password = getString(o, "password", ctx);
  a.realm = getString(o, "realm", ctx, "");
  a.proxies = getStrings(o, "proxies", ctx, {});
  a.expiresSec = static_cast<unsigned>(getNumber(o, "expiresSec", ctx, 300, 30, 86400));
  a.retryIntervalSec = static_cast<unsigned>(getNumber(o, "retryIntervalSec", ctx, 30, 1, 86400));
  a.firstRetryIntervalSec = static_cast<unsigned>(getNumber(o, "firstRetryIntervalSec", ctx, 5, 0, 86400));
  a.keepaliveSec = static_cast<unsigned>(getNumber(o, "keepaliveSec", ctx, 0, 0, 3600));
  a.transport = getString(o, "transport", ctx);
  a.isDefault = getBool(o, "isDefault", ctx, false);
  return a;
}

HeaderList headers(const Napi::Value& v, const char* what) {
  HeaderList out;
  if (v.IsUndefined() || v.IsNull()) return out;
  if (!v.IsObject() || v.IsArray()) typeError(v.Env(), std::string(what) + " must be an object of header: value");
  Napi::Object o = v.As<Napi::Object>();
  Napi::Array keys = o.GetPropertyNames();
  for (uint32_t i = 0; i < keys.Length(); ++i) {
    std::string k = keys.Get(i).As<Napi::String>().Utf8Value();
    Napi::Value val = o.Get(k);
    if (!val.IsString()) typeError(v.Env(), std::string(what) + "." + k + " must be a string");
    std::string s = val.As<Napi::String>().Utf8Value();
    if (k.find_first_of(":\r\n ") != std::string::npos || s.find_first_of("\r\n") != std::string::npos)
      typeError(v.Env(), std::string(what) + "." + k + " is not a valid SIP header");
    out.emplace_back(k, s);
  }
  return out;
}

uint32_t handle(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsNumber()) typeError(info.Env(), std::string(what) + " must be a number");
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (!(d >= 1 && d <= 4294967295.0) || d != static_cast<double>(static_cast<uint32_t>(d)))
    typeError(info.Env(), std::string(what) + " is not a valid handle");
  return static_cast<uint32_t>(d);
}

int32_t optionalInt(const Napi::CallbackInfo& info, size_t i, int32_t fallback, const char* what) {
  if (info.Length() <= i || info[i].IsUndefined() || info[i].IsNull()) return fallback;
  if (!info[i].IsNumber()) typeError(info.Env(), std::string(what) + " must be a number");
  return info[i].As<Napi::Number>().Int32Value();
}

std::string string(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsString()) typeError(info.Env(), std::string(what) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

std::string optionalString(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || info[i].IsUndefined() || info[i].IsNull()) return "";
  return string(info, i, what);
}

Napi::Object event(Napi::Env env, const Event& ev) {
  Napi::Object o = Napi::Object::New(env);
  std::visit(
      [&](const auto& e) {
        using T = std::decay_t<decltype(e)>;
        if constexpr (std::is_same_v<T, IncomingCallEvent>) {
          o.Set("type", "incomingCall");
          o.Set("call", e.call);
          o.Set("account", e.account);
          o.Set("fromUri", e.fromUri);
          o.Set("toUri", e.toUri);
          o.Set("requestUri", e.requestUri);
          o.Set("sipCallId", e.sipCallId);
          o.Set("srcAddress", e.srcAddress);
          o.Set("remoteContact", e.remoteContact);
          Napi::Array hs = Napi::Array::New(env, e.headers.size());
          for (uint32_t i = 0; i < e.headers.size(); ++i) {
            Napi::Array pair = Napi::Array::New(env, 2);
            pair.Set(0u, e.headers[i].first);
            pair.Set(1u, e.headers[i].second);
            hs.Set(i, pair);
          }
          o.Set("headers", hs);
        } else if constexpr (std::is_same_v<T, CallStateEvent>) {
          o.Set("type", "callState");
          o.Set("call", e.call);
          o.Set("state", e.state);
          o.Set("sipCode", e.sipCode);
          o.Set("reason", e.reason);
          o.Set("sipCallId", e.sipCallId);
          o.Set("connectDurationMs", e.connectDurationMs);
        } else if constexpr (std::is_same_v<T, CallMediaEvent>) {
          o.Set("type", "callMedia");
          o.Set("call", e.call);
          o.Set("active", e.active);
          o.Set("status", e.status);
          o.Set("codec", e.codec);
          o.Set("codecClockRate", e.codecClockRate);
        } else if constexpr (std::is_same_v<T, DtmfEvent>) {
          o.Set("type", "dtmf");
          o.Set("call", e.call);
          o.Set("digit", e.digit);
          o.Set("method", e.method);
          o.Set("durationMs", e.durationMs);
        } else if constexpr (std::is_same_v<T, TransferStatusEvent>) {
          o.Set("type", "transferStatus");
          o.Set("call", e.call);
          o.Set("sipCode", e.sipCode);
          o.Set("reason", e.reason);
          o.Set("final", e.final);
        } else if constexpr (std::is_same_v<T, CallClosedEvent>) {
          o.Set("type", "callClosed");
          o.Set("call", e.call);
        } else if constexpr (std::is_same_v<T, RegStateEvent>) {
          o.Set("type", "regState");
          o.Set("account", e.account);
          o.Set("sipCode", e.sipCode);
          o.Set("reason", e.reason);
          o.Set("expiresSec", e.expiresSec);
          o.Set("registered", e.registered);
          o.Set("unregistering", e.unregistering);
        } else if constexpr (std::is_same_v<T, RegistrarEvent>) {
          o.Set("type", "registrar");
          o.Set("account", e.account);
          o.Set("reachable", e.reachable);
          o.Set("sipCode", e.sipCode);
          o.Set("reason", e.reason);
        } else if constexpr (std::is_same_v<T, LogEvent>) {
          o.Set("type", "log");
          o.Set("level", e.level);
          o.Set("message", e.message);
        } else if constexpr (std::is_same_v<T, StoppedEvent>) {
          o.Set("type", "stopped");
          o.Set("failed", e.failed);
          o.Set("reason", e.reason);
        } else {
          o.Set("type", "reply");
        }
      },
      ev);
  return o;
}

}  // namespace convert
}  // namespace sipai
