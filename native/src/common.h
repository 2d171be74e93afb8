// Shared helpers for the tsfast native engine: typed-array access and the oneDNN engine/stream.
#pragma once
#include <napi.h>
#include <dnnl.hpp>
#include <cstdint>
#include <string>
#include <vector>

namespace tsf {

dnnl::engine& eng();
dnnl::stream& strm();

// Raw float pointer of a Float32Array argument (no copy: tfjs's TypedArray memory itself).
inline float* f32(const Napi::Value& v) { return v.As<Napi::Float32Array>().Data(); }
inline size_t f32len(const Napi::Value& v) { return v.As<Napi::Float32Array>().ElementLength(); }
// Int32Array of small integer parameters (shapes, strides, paddings).
std::vector<int64_t> ints(const Napi::Value& v);

// Register the functions of each translation unit on the exports object.
void initConv(Napi::Env env, Napi::Object exports);
void initElementwise(Napi::Env env, Napi::Object exports);

}  // namespace tsf
