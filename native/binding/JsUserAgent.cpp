#include "JsUserAgent.hpp"


#include <cmath>
#include <cstring>
#include <mutex>

#include "Convert.hpp"
#include "JsErrors.hpp"

namespace sipai {

namespace {
// PJSUA is a process singleton: one started agent per process at a time, whichever environment
// (main thread or worker) it belongs to. The only process-wide state of the addon.
std::mutex g_activeMutex;
JsUserAgent* g_active = nullptr;

bool claimActive(JsUserAgent* ua) {
  std::lock_guard<std::mutex> lk(g_activeMutex);
  if (g_active && g_active != ua) return false;
  g_active = ua;
  return true;
}
void releaseActive(JsUserAgent* ua) {
  std::lock_guard<std::mutex> lk(g_activeMutex);
  if (g_active == ua) g_active = nullptr;
}
}  // namespace

void forceStopAll(const std::shared_ptr<AgentRegistry>& registry) {
  // Copy: forceStop() may erase from the set.
  std::set<JsUserAgent*> all = registry->agents;
  for (JsUserAgent* ua : all) ua->forceStop();
}

Napi::Function JsUserAgent::Init(Napi::Env env) {
  return DefineClass(env, "UserAgent",
                     {
                         InstanceMethod<&JsUserAgent::Start>("start"),
                         InstanceMethod<&JsUserAgent::AddAccount>("addAccount"),
                         InstanceMethod<&JsUserAgent::RemoveAccount>("removeAccount"),
                         InstanceMethod<&JsUserAgent::SetRegistration>("setRegistration"),
                         InstanceMethod<&JsUserAgent::MakeCall>("makeCall"),
                         InstanceMethod<&JsUserAgent::Answer>("answer"),
                         InstanceMethod<&JsUserAgent::Hangup>("hangup"),
                         InstanceMethod<&JsUserAgent::Transfer>("transfer"),
                         InstanceMethod<&JsUserAgent::SendDtmf>("sendDtmf"),
                         InstanceMethod<&JsUserAgent::Shutdown>("shutdown"),
                         InstanceMethod<&JsUserAgent::WriteAudio>("writeAudio"),
                         InstanceMethod<&JsUserAgent::ClearAudio>("clearAudio"),
                         InstanceMethod<&JsUserAgent::TxIndex>("txIndex"),
                         InstanceMethod<&JsUserAgent::TxTicks>("txTicks"),
                         InstanceMethod<&JsUserAgent::AudioStats>("audioStats"),
                         InstanceMethod<&JsUserAgent::SetRxEnabled>("setRxEnabled"),
                         InstanceMethod<&JsUserAgent::SetAdmission>("setAdmission"),
                         InstanceMethod<&JsUserAgent::AdmissionStats>("admissionStats"),
                         InstanceMethod<&JsUserAgent::SetCallRefusal>("setCallRefusal"),
                         InstanceMethod<&JsUserAgent::SetUnavailable>("setUnavailable"),
                         InstanceMethod<&JsUserAgent::JitterDelay>("jitterDelay"),
                         InstanceAccessor<&JsUserAgent::GetRunning>("running"),
                     });
}

JsUserAgent::JsUserAgent(const Napi::CallbackInfo& info) : Napi::ObjectWrap<JsUserAgent>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsFunction()) throw Napi::TypeError::New(env, "UserAgent(onEvent): onEvent must be a function");
  onEvent_ = Napi::Persistent(info[0].As<Napi::Function>());
  AddonData* data = env.GetInstanceData<AddonData>();
  registry_ = data ? data->registry : std::make_shared<AgentRegistry>();
  registry_->agents.insert(this);
}

JsUserAgent::~JsUserAgent() {
  forceStop();
  registry_->agents.erase(this);
}

void JsUserAgent::forceStop() {
  if (sip_) {
    stopping_ = true;
    sip_->shutdownAndJoin();
    sip_.reset();
  }
  if (started_ && !tsfnReleased_) {
    tsfnReleased_ = true;
    tsfn_.Release();
  }
  releaseActive(this);
  stopped_ = true;
}

namespace {
// A URI's `?name=value` headers part (RFC 3261 19.1.1) turns into request headers (Route,
// P-Asserted-Identity...) when PJSIP sends to it: a destination handed to us must not carry one.
bool hasUriHeaders(const std::string& uri) { return uri.find('?') != std::string::npos; }

// Tick times cross to JS as microseconds of CLOCK_MONOTONIC in a double (exact to well under 1 µs
// for centuries of uptime); 0 means unknown and becomes NaN.
double stampUs(uint64_t ns) { return ns == 0 ? std::nan("") : static_cast<double>(ns) / 1000.0; }
}  // namespace

// ---- EventSink (native threads) -------------------------------------------------------------

void JsUserAgent::post(Event&& ev) {
  auto* e = new Event(std::move(ev));
  if (tsfn_.NonBlockingCall(e) != napi_ok) delete e;  // closing: the environment is going away
}

void JsUserAgent::wakeAudio() { tsfn_.NonBlockingCall(nullptr); }

void callJs(Napi::Env env, Napi::Function, JsUserAgent* ctx, Event* data) {
  std::unique_ptr<Event> owned(data);
  if (env == nullptr || ctx == nullptr) return;
  try {
    if (!data) ctx->drainAudio(env);
    else ctx->dispatch(env, *data);
  } catch (const Napi::Error& e) {
    // A throwing JS listener must not take the process down from a native callback.
    fprintf(stderr, "sip-ai-agent: event handler threw: %s\n", e.Message().c_str());
  } catch (const std::exception& e) {
    fprintf(stderr, "sip-ai-agent: delivering an event failed: %s\n", e.what());
  } catch (...) {
    fprintf(stderr, "sip-ai-agent: delivering an event failed\n");
  }
}

// ---- JS thread ------------------------------------------------------------------------------

void JsUserAgent::dispatch(Napi::Env env, Event& ev) {
  Napi::HandleScope scope(env);
  if (auto* r = std::get_if<ReplyEvent>(&ev)) {
    auto it = pending_.find(r->requestId);
    if (it == pending_.end()) return;
    Napi::Promise::Deferred d = it->second;
    pending_.erase(it);
    if (!r->ok) {
      d.Reject(makeJsError(env, r->error));
    } else if (!r->strings.empty()) {
      Napi::Object o = Napi::Object::New(env);
      for (const auto& kv : r->strings) o.Set(kv.first, kv.second);
      d.Resolve(o);
    } else {
      d.Resolve(Napi::Number::New(env, r->value));
    }
    return;
  }
  if (auto* c = std::get_if<IncomingCallEvent>(&ev)) {
    audioOf(c->call);
  } else if (auto* s = std::get_if<CallStateEvent>(&ev)) {
    audioOf(s->call);
  } else if (auto* cc = std::get_if<CallClosedEvent>(&ev)) {
    audio_.erase(cc->call);
  }
  Napi::Object obj = convert::event(env, ev);
  onEvent_.Call({obj});
  if (std::holds_alternative<StoppedEvent>(ev)) {
    // The loop thread has finished; join it and let the process exit.
    if (sip_) sip_->join();
    sip_.reset();
    audio_.clear();
    for (auto& kv : pending_)
      kv.second.Reject(makeJsError(env, {ErrorKind::InvalidState, "the request was not carried out: the user agent stopped", 0, 0}));
    pending_.clear();
    stopped_ = true;
    releaseActive(this);
    if (!tsfnReleased_) {
      tsfnReleased_ = true;
      tsfn_.Release();
    }
    if (!self_.IsEmpty()) self_.Unref();
    if (stopDeferred_) {
      stopDeferred_->Resolve(env.Undefined());
      stopDeferred_.reset();
    }
  }
}

void JsUserAgent::drainAudio(Napi::Env env) {
  if (!sip_) return;
  sip_->audioClock().acknowledge();
  Napi::HandleScope scope(env);
  std::size_t total = 0;
  for (auto& kv : audio_) total += kv.second->rx.size();
  if (total == 0) return;
  // One allocation per wake for all calls; each call gets a view.
  Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, total * sizeof(int16_t));
  auto* base = static_cast<int16_t*>(ab.Data());
  Napi::Array frames = Napi::Array::New(env);
  std::size_t offset = 0;
  uint32_t n = 0;
  for (auto& kv : audio_) {
    std::size_t room = total - offset;
    if (room == 0) break;
    uint64_t start = 0;
    std::size_t got = kv.second->rx.read(base + offset, room, &start);
    if (got == 0) continue;
    // [call, pcm, first frame's tick time, last frame's tick time] (µs, CLOCK_MONOTONIC; NaN if unknown).
    const TickStamps& st = kv.second->rxStamps;
    Napi::Array pair = Napi::Array::New(env, 4);
    pair.Set(0u, Napi::Number::New(env, kv.first));
    pair.Set(1u, Napi::TypedArrayOf<int16_t>::New(env, got, ab, offset * sizeof(int16_t), napi_int16_array));
    pair.Set(2u, Napi::Number::New(env, stampUs(st.timeOf(start))));
    pair.Set(3u, Napi::Number::New(env, stampUs(st.timeOf(start + got - 1))));
    frames.Set(n++, pair);
    offset += got;
  }
  if (n == 0) return;
  Napi::Object obj = Napi::Object::New(env);
  obj.Set("type", "audio");
  obj.Set("frames", frames);
  onEvent_.Call({obj});
}

std::pair<uint64_t, Napi::Promise> JsUserAgent::newRequest(Napi::Env env) {
  uint64_t id = nextRequest_++;
  auto d = Napi::Promise::Deferred::New(env);
  pending_.emplace(id, d);
  return {id, d.Promise()};
}

Napi::Object JsUserAgent::handleRequest(Napi::Env env, uint32_t handle, Napi::Promise done) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("handle", Napi::Number::New(env, handle));
  o.Set("done", done);
  return o;
}

std::shared_ptr<CallAudio> JsUserAgent::audioOf(uint32_t call) {
  auto it = audio_.find(call);
  if (it != audio_.end()) return it->second;
  if (!sip_) return nullptr;
  auto a = sip_->callAudio(call);
  if (a) audio_[call] = a;
  return a;
}

void JsUserAgent::ensureUsable(Napi::Env env, const char* what) {
  if (!started_ || stopping_ || stopped_ || !sip_) {
    NativeError err{ErrorKind::InvalidState,
                    std::string(what) + " failed: the user agent is " + (started_ ? "stopped" : "not started"), 0, 0};
    throw Napi::Error(env, makeJsError(env, err));
  }
}

Napi::Value JsUserAgent::Start(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (started_) throw Napi::Error(env, makeJsError(env, {ErrorKind::InvalidState, "start() failed: already started", 0, 0}));
  EndpointConfig cfg = convert::endpointConfig(info.Length() > 0 ? info[0] : env.Undefined());
  if (!claimActive(this))
    throw Napi::Error(env, makeJsError(env, {ErrorKind::InvalidState,
                                             "start() failed: another UserAgent is running in this process (PJSIP is a process singleton)",
                                             0, 0}));
  tsfn_ = Tsfn::New(env, Napi::Function(), "sip-ai-agent-events", 0, 1, this);
  started_ = true;
  self_ = Napi::Persistent(Value());
  sip_.reset(new SipThread(this));
  auto [id, promise] = newRequest(env);
  sip_->start(cfg, id);
  return promise;
}

Napi::Value JsUserAgent::AddAccount(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ensureUsable(env, "addAccount()");
  AccountConfig cfg = convert::accountConfig(info.Length() > 0 ? info[0] : env.Undefined());
  auto [id, promise] = newRequest(env);
  uint32_t handle = sip_->addAccount(cfg, id);
  return handleRequest(env, handle, promise);
}

Napi::Value JsUserAgent::RemoveAccount(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ensureUsable(env, "removeAccount()");
  uint32_t acc = convert::handle(info, 0, "account");
  auto [id, promise] = newRequest(env);
  sip_->removeAccount(acc, id);
  return promise;
}

Napi::Value JsUserAgent::SetRegistration(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ensureUsable(env, "setRegistration()");
  uint32_t acc = convert::handle(info, 0, "account");
  if (info.Length() < 2 || !info[1].IsBoolean()) throw Napi::TypeError::New(env, "renew must be a boolean");
  auto [id, promise] = newRequest(env);
  sip_->setRegistration(acc, info[1].As<Napi::Boolean>().Value(), id);
  return promise;
}

Napi::Value JsUserAgent::MakeCall(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ensureUsable(env, "makeCall()");
  CallRequest req;
  req.account = convert::handle(info, 0, "account");
  req.uri = convert::string(info, 1, "uri");
  if (req.uri.rfind("sip:", 0) != 0 && req.uri.rfind("sips:", 0) != 0 && req.uri.rfind("<sip", 0) != 0)
    throw Napi::TypeError::New(env, "uri must be a SIP URI (sip:user@host)");
  if (hasUriHeaders(req.uri))
    throw Napi::TypeError::New(env, "uri must not carry headers (?name=value): they would become INVITE headers");
  req.headers = convert::headers(info.Length() > 2 ? info[2] : env.Undefined(), "headers");
  auto [id, promise] = newRequest(env);
  uint32_t handle = sip_->makeCall(req, id);
  audioOf(handle);
  return handleRequest(env, handle, promise);
}

Napi::Value JsUserAgent::Answer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ensureUsable(env, "answer()");
  uint32_t call = convert::handle(info, 0, "call");
  int code = convert::optionalInt(info, 1, 200, "code");
  if (code < 100 || code > 699) throw Napi::TypeError::New(env, "code must be a SIP status code (100-699)");
  std::string reason = convert::optionalString(info, 2, "reason");
  HeaderList hs = convert::headers(info.Length() > 3 ? info[3] : env.Undefined(), "headers");
  auto [id, promise] = newRequest(env);
  sip_->answer(call, code, reason, hs, id);
  return promise;
}

Napi::Value JsUserAgent::Hangup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ensureUsable(env, "hangup()");
  uint32_t call = convert::handle(info, 0, "call");
  int code = convert::optionalInt(info, 1, 0, "code");
  if (code != 0 && (code < 300 || code > 699)) throw Napi::TypeError::New(env, "code must be 0 or a final SIP status (300-699)");
  std::string reason = convert::optionalString(info, 2, "reason");
  HeaderList hs = convert::headers(info.Length() > 3 ? info[3] : env.Undefined(), "headers");
  auto [id, promise] = newRequest(env);
  sip_->hangup(call, code, reason, hs, id);
  return promise;
}

Napi::Value JsUserAgent::Transfer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ensureUsable(env, "transfer()");
  uint32_t call = convert::handle(info, 0, "call");
  std::string target = convert::string(info, 1, "target");
  if (target.rfind("sip:", 0) != 0 && target.rfind("sips:", 0) != 0 && target.rfind("tel:", 0) != 0 &&
      target.rfind("<", 0) != 0)
    throw Napi::TypeError::New(env, "target must be a SIP or tel URI");
  if (hasUriHeaders(target))
    throw Napi::TypeError::New(env, "target must not carry headers (?name=value): they would become headers of the new call");
  auto [id, promise] = newRequest(env);
  sip_->transfer(call, target, id);
  return promise;
}

Napi::Value JsUserAgent::SendDtmf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ensureUsable(env, "sendDtmf()");
  uint32_t call = convert::handle(info, 0, "call");
  std::string digits = convert::string(info, 1, "digits");
  if (digits.empty() || digits.find_first_not_of("0123456789*#ABCDabcd") != std::string::npos)
    throw Napi::TypeError::New(env, "digits must be one or more of 0-9 * # A-D");
  std::string method = convert::optionalString(info, 2, "method");
  if (method.empty()) method = "rfc2833";
  if (method != "rfc2833" && method != "info") throw Napi::TypeError::New(env, "method must be 'rfc2833' or 'info'");
  auto [id, promise] = newRequest(env);
  sip_->sendDtmf(call, digits, method, id);
  return promise;
}

Napi::Value JsUserAgent::Shutdown(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (stopped_ || !started_) {
    auto d = Napi::Promise::Deferred::New(env);
    d.Resolve(env.Undefined());
    return d.Promise();
  }
  if (!stopDeferred_) {
    stopDeferred_.reset(new Napi::Promise::Deferred(Napi::Promise::Deferred::New(env)));
    stopping_ = true;
    auto [id, promise] = newRequest(env);
    (void)promise;
    shutdownRequest_ = id;
    sip_->shutdown(id);
  }
  return stopDeferred_->Promise();
}

Napi::Value JsUserAgent::WriteAudio(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t call = convert::handle(info, 0, "call");
  if (info.Length() < 2 || !info[1].IsTypedArray() ||
      info[1].As<Napi::TypedArray>().TypedArrayType() != napi_int16_array)
    throw Napi::TypeError::New(env, "pcm must be an Int16Array");
  auto a = audioOf(call);
  if (!a) return Napi::Number::New(env, -1);
  Napi::Int16Array pcm = info[1].As<Napi::Int16Array>();
  std::size_t n = pcm.ElementLength();
  std::size_t w = a->tx.write(pcm.Data(), n, false, nullptr);
  if (w < n) a->txOverflowSamples += n - w;
  return Napi::Number::New(env, static_cast<double>(w));
}

Napi::Value JsUserAgent::ClearAudio(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t call = convert::handle(info, 0, "call");
  auto a = audioOf(call);
  if (!a) return Napi::Number::New(env, -1);
  uint64_t stopAt = a->tx.clear(&a->txClearedSamples);
  return Napi::Number::New(env, static_cast<double>(stopAt));
}

Napi::Value JsUserAgent::TxIndex(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t call = convert::handle(info, 0, "call");
  auto a = audioOf(call);
  if (!a) return env.Null();
  // [readIndex, writeIndex] of the TX ring.
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::Number::New(env, static_cast<double>(a->tx.readIndex())));
  out.Set(1u, Napi::Number::New(env, static_cast<double>(a->tx.writeIndex())));
  return out;
}

Napi::Value JsUserAgent::TxTicks(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t call = convert::handle(info, 0, "call");
  auto a = audioOf(call);
  if (!a) return env.Null();
  // The last ticks' TX ranges, oldest first, flat: [start, end, timeUs] per tick.
  std::vector<TickStamp> ticks = a->txStamps.snapshot();
  Napi::Float64Array out = Napi::Float64Array::New(env, ticks.size() * 3);
  for (std::size_t i = 0; i < ticks.size(); ++i) {
    out[i * 3] = static_cast<double>(ticks[i].start);
    out[i * 3 + 1] = static_cast<double>(ticks[i].end);
    out[i * 3 + 2] = stampUs(ticks[i].ns);
  }
  return out;
}

Napi::Value JsUserAgent::AudioStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t call = convert::handle(info, 0, "call");
  auto a = audioOf(call);
  if (!a) return env.Null();
  Napi::Object o = Napi::Object::New(env);
  auto num = [&](const char* k, double v) { o.Set(k, Napi::Number::New(env, v)); };
  num("sampleRate", a->sampleRate);
  num("samplesPerFrame", a->samplesPerFrame);
  num("rxFrames", static_cast<double>(a->rxFrames.load()));
  num("rxDroppedSamples", static_cast<double>(a->rxDroppedSamples.load()));
  num("rxQueuedSamples", static_cast<double>(a->rx.size()));
  num("txFrames", static_cast<double>(a->txFrames.load()));
  num("txPlayedSamples", static_cast<double>(a->txPlayedSamples.load()));
  num("txUnderruns", static_cast<double>(a->txUnderruns.load()));
  num("txSilentFrames", static_cast<double>(a->txSilentFrames.load()));
  num("txHeldFrames", static_cast<double>(a->txHeldFrames.load()));
  num("rxHeldFrames", static_cast<double>(a->rxHeldFrames.load()));
  num("txOverflowSamples", static_cast<double>(a->txOverflowSamples));
  num("txClearedSamples", static_cast<double>(a->txClearedSamples));
  num("txQueuedSamples", static_cast<double>(a->tx.size()));
  num("txCapacitySamples", static_cast<double>(a->tx.capacity()));
  num("txReadIndex", static_cast<double>(a->tx.readIndex()));
  num("txWriteIndex", static_cast<double>(a->tx.writeIndex()));
  o.Set("connected", Napi::Boolean::New(env, a->connected.load()));
  o.Set("held", Napi::Boolean::New(env, a->held.load()));
  num("jitterBufferMs", static_cast<double>(a->jbDelayMs.load()));
  return o;
}

Napi::Value JsUserAgent::SetRxEnabled(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t call = convert::handle(info, 0, "call");
  if (info.Length() < 2 || !info[1].IsBoolean()) throw Napi::TypeError::New(env, "enabled must be a boolean");
  auto a = audioOf(call);
  if (a) a->rxEnabled.store(info[1].As<Napi::Boolean>().Value());
  return env.Undefined();
}

// The admission policy lives in the message guard (one per process, like the library); it applies
// from the next request on. Any thread may set it: the guard reads it under its own lock.
Napi::Value JsUserAgent::SetAdmission(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string problem = SipThread::setAdmission(convert::admissionConfig(info.Length() > 0 ? info[0] : env.Null()));
  if (!problem.empty()) throw Napi::TypeError::New(env, "admission." + problem);
  return env.Undefined();
}

Napi::Value JsUserAgent::AdmissionStats(const Napi::CallbackInfo& info) {
  return convert::admissionStats(info.Env(), SipThread::admissionStats());
}

// A plain number per call (-1 unknown, null for an unknown call): cheap enough for every batch.
Napi::Value JsUserAgent::JitterDelay(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto a = audioOf(convert::handle(info, 0, "call"));
  if (!a) return env.Null();
  return Napi::Number::New(env, a->jbDelayMs.load(std::memory_order_relaxed));
}

Napi::Value JsUserAgent::SetCallRefusal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t code = convert::optionalInt(info, 0, 0, "code");
  if (code != 0 && code != 486 && code != 503) throw Napi::TypeError::New(env, "setCallRefusal(code): code must be 0, 486 or 503");
  SipThread::setCallRefusal(code);
  return env.Undefined();
}

Napi::Value JsUserAgent::SetUnavailable(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "setUnavailable(reason): reason must be a string");
  SipThread::setUnavailable(info[0].As<Napi::String>().Utf8Value());
  return env.Undefined();
}

Napi::Value JsUserAgent::GetRunning(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), sip_ && sip_->running() && !stopping_);
}

}  // namespace sipai
