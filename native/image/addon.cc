// Entry point of tsfast's image addon (loaded on the main thread and in the data workers; it keeps
// no global state).
#include "image.h"
#include <cstdio>
#include <string>
extern "C" {
#include <jpeglib.h>
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("jpegHeader", Napi::Function::New(env, tsfimg::JpegHeader));
  exports.Set("jpegDecode", Napi::Function::New(env, tsfimg::JpegDecode));
  exports.Set("resample", Napi::Function::New(env, tsfimg::Resample));
  exports.Set("warp", Napi::Function::New(env, tsfimg::Warp));
  exports.Set("libjpeg", Napi::String::New(env, "libjpeg-turbo " + std::to_string(LIBJPEG_TURBO_VERSION_NUMBER)));
  return exports;
}

NODE_API_MODULE(tsfast_image, Init)
