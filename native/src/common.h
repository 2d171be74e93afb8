// Shared helpers for the tsfast native engine: typed-array access and the oneDNN engine/stream.
#pragma once
#include <napi.h>
#include <dnnl.hpp>
#include <csignal>
#include <cstdint>
#include <pthread.h>
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

// oneDNN 2.x's JIT f32 GEMM kernels point the stack pointer into the heap while they run (oneDNN
// issue 4845, fixed in 3.11.2): a signal handled on a thread inside one (a profiler's SIGPROF, SIGINT,
// SIGCHLD) writes its frame over the heap, and the process aborts later in malloc. Every call into
// oneDNN therefore runs with the calling thread's signals blocked (a signal sent to this thread waits
// until the call returns; one sent to the process goes to another of Node's threads); the OpenMP
// workers block theirs for good (`blockWorkerSignals`). Every exported
// function that runs an OpenMP region takes the guard too: libgomp ends the workers a smaller team does
// not need and creates new ones for a larger team later, and a new thread starts with its creator's mask.
struct SignalGuard {
  sigset_t saved;
  SignalGuard() {
    sigset_t all;
    fillAsync(&all);
    pthread_sigmask(SIG_BLOCK, &all, &saved);
  }
  // Every signal but the synchronous faults (a fault with its signal blocked kills the process outright).
  static void fillAsync(sigset_t* set) {
    sigfillset(set);
    for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL}) sigdelset(set, sig);
  }
  ~SignalGuard() { pthread_sigmask(SIG_SETMASK, &saved, nullptr); }
  SignalGuard(const SignalGuard&) = delete;
  SignalGuard& operator=(const SignalGuard&) = delete;
};
// Block every signal on each OpenMP worker thread (not the calling one); call after the pool changes size.
void blockWorkerSignals();

// Register the functions of each translation unit on the exports object.
void initConv(Napi::Env env, Napi::Object exports);
void initElementwise(Napi::Env env, Napi::Object exports);

}  // namespace tsf
