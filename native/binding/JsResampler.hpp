// JsResampler: the addon's `Resampler` class, a thin ObjectWrap over core/Resampler.hpp. The JS
// side (src/audio/Resampler.ts) designs the filter and hands over the table; this class only runs
// it on caller-supplied Int16Arrays, synchronously on the JS thread.
//
// Threading and ownership: JS thread only. Each JS object owns one PolyphaseResampler, allocated
// in the constructor and freed when the object is collected; process()/flush() never allocate.
// Argument errors throw TypeError (wrong type) or RangeError (bad size or geometry) with context.
#pragma once

#include <napi.h>

#include <memory>

#include "../core/Resampler.hpp"

namespace sipai {

class JsResampler : public Napi::ObjectWrap<JsResampler> {
 public:
  static Napi::Function Init(Napi::Env env);
  /** new Resampler({ up, down, tapsPerPhase, delay, coefficients: Float64Array | Float32Array }) */
  explicit JsResampler(const Napi::CallbackInfo& info);

 private:
  /** process(input: Int16Array, out: Int16Array): number of samples written to out. */
  Napi::Value Process(const Napi::CallbackInfo& info);
  /** flush(out: Int16Array): number of tail samples written to out; the stream starts over. */
  Napi::Value Flush(const Napi::CallbackInfo& info);
  /** reset(): forget all history. */
  Napi::Value Reset(const Napi::CallbackInfo& info);
  /** clippedSamples: outputs saturated at the Int16 limits since construction. */
  Napi::Value GetClippedSamples(const Napi::CallbackInfo& info);

  std::unique_ptr<PolyphaseResampler> core_;
};

}  // namespace sipai
