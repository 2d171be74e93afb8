// Entry point of the tsfast native addon: thread control and module registration.
#include "common.h"
#include <omp.h>
#include <malloc.h>

namespace tsf {

dnnl::engine& eng() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}
dnnl::stream& strm() {
  static dnnl::stream s(eng());
  return s;
}

std::vector<int64_t> ints(const Napi::Value& v) {
  auto a = v.As<Napi::Int32Array>();
  std::vector<int64_t> out(a.ElementLength());
  for (size_t i = 0; i < out.size(); i++) out[i] = a[i];
  return out;
}

void blockWorkerSignals() {
  SignalGuard guard;  // workers created for this region inherit the blocked mask too
#pragma omp parallel
  {
    if (omp_get_thread_num() != 0) {
      sigset_t all;
      SignalGuard::fillAsync(&all);
      pthread_sigmask(SIG_BLOCK, &all, nullptr);
    }
  }
}

static Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  int n = info[0].As<Napi::Number>().Int32Value();
  if (n > 0) omp_set_num_threads(n);
  blockWorkerSignals();
  return Napi::Number::New(info.Env(), omp_get_max_threads());
}

static Napi::Value GetThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), omp_get_max_threads());
}

static Napi::Value Version(const Napi::CallbackInfo& info) {
  const dnnl_version_t* v = dnnl_version();
  std::string s = "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
                  std::to_string(v->patch);
  return Napi::String::New(info.Env(), s);
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // tfjs allocates a fresh TypedArray for every kernel output. With glibc's defaults, large ones
  // are mmap'ed and unmapped each time, so every step pays page faults on fresh zero pages (they
  // serialise across threads). Keep freed blocks up to 32 MiB in the heap for reuse instead.
  mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
  mallopt(M_TRIM_THRESHOLD, 512 * 1024 * 1024);
  blockWorkerSignals();
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
  exports.Set("getThreads", Napi::Function::New(env, GetThreads));
  exports.Set("version", Napi::Function::New(env, Version));
  initConv(env, exports);
  initElementwise(env, exports);
  return exports;
}

}  // namespace tsf

static Napi::Object InitAll(Napi::Env env, Napi::Object exports) { return tsf::Init(env, exports); }
NODE_API_MODULE(tsfast_native, InitAll)
