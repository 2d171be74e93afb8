// tsfast's image addon: the JPEG fast path (jpeg.cc) and the augmentation warp (warp.cc).
#pragma once
#include <napi.h>

namespace tsfimg {
Napi::Value JpegHeader(const Napi::CallbackInfo& info);
Napi::Value JpegDecode(const Napi::CallbackInfo& info);
Napi::Value Resample(const Napi::CallbackInfo& info);
Napi::Value Warp(const Napi::CallbackInfo& info);
}  // namespace tsfimg
