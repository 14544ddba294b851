#include "JsResampler.hpp"

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace sipai {

namespace {

const char* typeName(const Napi::Value& v) {
  if (v.IsTypedArray()) {
    switch (v.As<Napi::TypedArray>().TypedArrayType()) {
      case napi_int8_array: return "Int8Array";
      case napi_uint8_array: return "Uint8Array";
      case napi_uint8_clamped_array: return "Uint8ClampedArray";
      case napi_int16_array: return "Int16Array";
      case napi_uint16_array: return "Uint16Array";
      case napi_int32_array: return "Int32Array";
      case napi_uint32_array: return "Uint32Array";
      case napi_float32_array: return "Float32Array";
      case napi_float64_array: return "Float64Array";
      default: return "TypedArray";
    }
  }
  switch (v.Type()) {
    case napi_undefined: return "undefined";
    case napi_null: return "null";
    case napi_boolean: return "boolean";
    case napi_number: return "number";
    case napi_string: return "string";
    case napi_symbol: return "symbol";
    case napi_function: return "function";
    case napi_bigint: return "bigint";
    default: return v.IsArray() ? "Array" : v.IsArrayBuffer() ? "ArrayBuffer" : "object";
  }
}

std::string numberText(double x) {
  if (std::isnan(x)) return "NaN";
  if (std::isinf(x)) return x > 0 ? "Infinity" : "-Infinity";
  std::string s = std::to_string(x);
  // to_string always prints six decimals; trim them so integers read as integers.
  s.erase(s.find_last_not_of('0') + 1);
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

/** spec[key] as an integer in [min, max]: TypeError if not a number, RangeError if out of range. */
uint64_t specInt(Napi::Env env, const Napi::Object& spec, const char* key, uint64_t min, uint64_t max) {
  Napi::Value v = spec.Get(key);
  if (!v.IsNumber())
    throw Napi::TypeError::New(env, std::string("Resampler(spec) failed: ") + key + " must be a number [" + key + ":" +
                                        typeName(v) + "]");
  const double x = v.As<Napi::Number>().DoubleValue();
  if (!(x >= static_cast<double>(min) && x <= static_cast<double>(max)) || std::floor(x) != x)
    throw Napi::RangeError::New(env, std::string("Resampler(spec) failed: ") + key + " must be an integer in " +
                                         std::to_string(min) + ".." + std::to_string(max) + " [" + key + ":" +
                                         numberText(x) + "]");
  return static_cast<uint64_t>(x);
}

Napi::Int16Array int16Arg(const Napi::CallbackInfo& info, std::size_t i, const char* call, const char* name) {
  Napi::Value v = info.Length() > i ? info[i] : info.Env().Undefined();
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int16_array)
    throw Napi::TypeError::New(info.Env(), std::string(call) + " failed: " + name + " must be an Int16Array [" + name +
                                               ":" + typeName(v) + "]");
  return v.As<Napi::Int16Array>();
}

Napi::Error tooSmall(Napi::Env env, std::size_t have, std::size_t need) {
  return Napi::RangeError::New(env, "output buffer too small [length:" + std::to_string(have) +
                                        ", needed:" + std::to_string(need) + "]");
}

}  // namespace

Napi::Function JsResampler::Init(Napi::Env env) {
  return DefineClass(env, "Resampler",
                     {
                         InstanceMethod<&JsResampler::Process>("process"),
                         InstanceMethod<&JsResampler::Flush>("flush"),
                         InstanceMethod<&JsResampler::Reset>("reset"),
                         InstanceAccessor<&JsResampler::GetClippedSamples>("clippedSamples"),
                     });
}

JsResampler::JsResampler(const Napi::CallbackInfo& info) : Napi::ObjectWrap<JsResampler>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject() || info[0].IsArray() || info[0].IsFunction())
    throw Napi::TypeError::New(env, std::string("Resampler(spec) failed: spec must be an object [spec:") +
                                        typeName(info.Length() < 1 ? env.Undefined() : info[0]) + "]");
  Napi::Object spec = info[0].As<Napi::Object>();
  const uint64_t maxCoef = PolyphaseResampler::kMaxCoefficients;
  const uint64_t up = specInt(env, spec, "up", 1, maxCoef);
  const uint64_t down = specInt(env, spec, "down", 1, UINT32_MAX);
  const uint64_t taps = specInt(env, spec, "tapsPerPhase", 1, maxCoef);
  const uint64_t delay = specInt(env, spec, "delay", 0, UINT32_MAX);
  Napi::Value cv = spec.Get("coefficients");
  const napi_typedarray_type ct = cv.IsTypedArray() ? cv.As<Napi::TypedArray>().TypedArrayType() : napi_int8_array;
  if (ct != napi_float64_array && ct != napi_float32_array)
    throw Napi::TypeError::New(env, std::string("Resampler(spec) failed: coefficients must be a Float64Array or "
                                                "Float32Array [coefficients:") + typeName(cv) + "]");
  Napi::TypedArray ta = cv.As<Napi::TypedArray>();
  const std::size_t n = ta.ElementLength();
  if (n != up * taps)
    throw Napi::RangeError::New(env, "Resampler(spec) failed: coefficients must hold up * tapsPerPhase values [up:" +
                                         std::to_string(up) + ", tapsPerPhase:" + std::to_string(taps) +
                                         ", coefficients:" + std::to_string(n) + "]");
  std::vector<float> coef(n);
  for (std::size_t i = 0; i < n; ++i) {
    const double c = ct == napi_float64_array ? cv.As<Napi::Float64Array>()[i] : cv.As<Napi::Float32Array>()[i];
    if (!std::isfinite(c))
      throw Napi::RangeError::New(env, "Resampler(spec) failed: coefficients must be finite [index:" +
                                           std::to_string(i) + ", value:" + numberText(c) + "]");
    coef[i] = static_cast<float>(c);
  }
  try {
    core_ = std::make_unique<PolyphaseResampler>(static_cast<uint32_t>(up), static_cast<uint32_t>(down),
                                                 static_cast<uint32_t>(taps), coef.data(), coef.size(), delay);
  } catch (const std::invalid_argument& e) {
    throw Napi::RangeError::New(env, std::string("Resampler(spec) failed: ") + e.what());
  }
}

Napi::Value JsResampler::Process(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Int16Array input = int16Arg(info, 0, "process(input, out)", "input");
  Napi::Int16Array out = int16Arg(info, 1, "process(input, out)", "out");
  const std::size_t n = input.ElementLength();
  const std::size_t need = core_->outputCount(n);
  if (out.ElementLength() < need) throw tooSmall(env, out.ElementLength(), need);
  const int16_t* in = input.Data();
  int16_t* dst = out.Data();
  // The input is read block by block while outputs are written: shared memory would be overwritten.
  if (n > 0 && need > 0 && in < dst + out.ElementLength() && dst < in + n)
    throw Napi::RangeError::New(env, "process(input, out) failed: out overlaps input [input:" + std::to_string(n) +
                                         ", out:" + std::to_string(out.ElementLength()) + "]");
  return Napi::Number::New(env, static_cast<double>(core_->process(in, n, dst)));
}

Napi::Value JsResampler::Flush(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Int16Array out = int16Arg(info, 0, "flush(out)", "out");
  const std::size_t need = core_->flushCount();
  if (out.ElementLength() < need) throw tooSmall(env, out.ElementLength(), need);
  return Napi::Number::New(env, static_cast<double>(core_->flush(out.Data())));
}

Napi::Value JsResampler::Reset(const Napi::CallbackInfo& info) {
  core_->reset();
  return info.Env().Undefined();
}

Napi::Value JsResampler::GetClippedSamples(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(core_->clippedSamples()));
}

}  // namespace sipai
