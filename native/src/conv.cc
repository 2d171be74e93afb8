// oneDNN-backed convolution, pooling and matmul kernels on tfjs's NHWC / HWIO TypedArrays.
//
// Activations stay in tfjs's plain NHWC layout (oneDNN has fast nhwc kernels); only weights are
// reordered into whatever blocked layout the chosen implementation prefers (`format_tag::any`).
// Primitives are cached by their full shape key, so each distinct layer builds its kernels once.
#include "common.h"
#include <algorithm>
#include <cstdlib>
#include <stdexcept>
#include <memory>
#include <string>
#include <unordered_map>

using namespace dnnl;
using tag = memory::format_tag;
using dt = memory::data_type;

namespace tsf {

namespace {

// Conv parameters as sent from JS: see convParams() in lib/engine/native/kernels.ts.
struct ConvP {
  int64_t N, H, W, C, KH, KW, O, OH, OW, sh, sw, dh, dw, pt, pl, pb, pr, G;
  explicit ConvP(const std::vector<int64_t>& p)
      : N(p[0]), H(p[1]), W(p[2]), C(p[3]), KH(p[4]), KW(p[5]), O(p[6]), OH(p[7]), OW(p[8]),
        sh(p[9]), sw(p[10]), dh(p[11]), dw(p[12]), pt(p[13]), pl(p[14]), pb(p[15]), pr(p[16]),
        G(p[17]) {}
  memory::desc src() const { return memory::desc({N, C, H, W}, dt::f32, tag::nhwc); }
  memory::desc dst() const { return memory::desc({N, O, OH, OW}, dt::f32, tag::nhwc); }
  // tfjs filters: conv [KH, KW, C, O]; depthwise [KH, KW, C, mult] (G = C groups of mult outputs).
  memory::desc userW() const {
    if (G == 1) return memory::desc({O, C, KH, KW}, dt::f32, {1, O, KW * C * O, C * O});
    int64_t M = O / G;
    return memory::desc({G, M, 1, KH, KW}, dt::f32, {M, 1, O, KW * O, O});
  }
  memory::desc anyW() const {
    if (G == 1) return memory::desc({O, C, KH, KW}, dt::f32, tag::any);
    return memory::desc({G, O / G, 1, KH, KW}, dt::f32, tag::any);
  }
  memory::dims strides() const { return {sh, sw}; }
  memory::dims dil() const { return {dh - 1, dw - 1}; }
  memory::dims padL() const { return {pt, pl}; }
  memory::dims padR() const { return {pb, pr}; }
};

std::string key(const char* kind, const std::vector<int64_t>& p, int extra = 0) {
  std::string k(kind);
  for (auto v : p) k += "," + std::to_string(v);
  k += "|" + std::to_string(extra);
  return k;
}

// A weight reorder from tfjs's layout into a primitive's preferred one (or none when equal).
// Reordered copies are cached by the JS-side token of the weight array (a number never reused,
// renewed whenever the array's contents may change: see lib/engine/native/pool.ts), so inference
// reorders each weight twice (the first copy is let go, see below), then never again. A slot also records the data pointer it was filled from: a hit needs
// both to match, so one token can never serve another array's memory.
//
// A copy is kept only once it has been asked for a second time with the same contents (inference,
// validation): the first fill lets it go when the primitive has run (`done`). In training every
// weight changes between two uses, so a kept copy would never serve again, and keeping them held
// a copy of every weight per primitive and per array an optimizer alternates between: ResNet-34
// at 128 px held 325 MB of them after two steps (4 × 85 MB: forward and backward-data, two arrays
// per weight); now one at a time.
//
// With a per-output-channel `scale` (G == 1 only), the copy is of the weights times the scale, computed by
// the reorder itself (oneDNN output scales): a BatchNorm folded into the convolution in inference
// (lib/engine/native/conv-bn.ts). A slot then also records the scale it was made with, and a hit needs the
// same scale values too, so a copy never outlives either the weights or the statistics it was made from.
struct WeightIn {
  struct Slot {
    double token = 0;
    const float* src = nullptr;
    std::vector<float> scale;  // empty: unscaled
    double owner = 0;           // the layer a scaled copy belongs to (0: none given)
    uint64_t used = 0;
    memory buf;  // empty when let go
  };
  memory::desc user, want;
  std::unique_ptr<reorder> r;
  std::vector<Slot> slots;
  Slot* last = nullptr;  // filled by the last `get` for contents not seen before
  uint64_t clock = 0;
  static constexpr size_t kSlots = 16;  // same-shaped layers share one primitive
  void init(const memory::desc& u, const memory::desc& w) {
    user = u;
    want = w;
    if (u != w) r.reset(new reorder(memory(u, eng(), nullptr), memory(w, eng(), nullptr)));
    slots.reserve(kSlots);  // `last` points into it: never reallocated
  }
  // Returns the memory the primitive should read; call `done` once the primitive has run.
  // `owner` (> 0): the layer the weights belong to; its older copy is the one a miss replaces, so a layer whose
  // weights arrive in new arrays (an optimizer that does not update in place) keeps one copy, not one per version.
  memory get(float* p, double token, const float* scale = nullptr, size_t nScale = 0, double owner = 0) {
    memory um(user, eng(), p);
    last = nullptr;
    if (!r && !scale) return um;
    clock++;
    Slot* victim = nullptr;
    Slot* stale = nullptr;
    auto sameScale = [&](const Slot& s) {
      return s.scale.size() == (scale ? nScale : 0) && (nScale == 0 || !scale || std::equal(s.scale.begin(), s.scale.end(), scale));
    };
    for (auto& s : slots) {
      if (token > 0 && s.token == token && s.src == p && sameScale(s)) {
        s.used = clock;
        if (!s.buf) {  // asked for again: kept from now on
          if (scale) fillScaled(s, um, scale, nScale);
          else fill(s, um);
        }
        return s.buf;
      }
      // The same memory under another token: that array was written since (or freed and its memory
      // reused), and tokens are never reused, so this slot can never hit again: refill it.
      if (s.src == p || (owner > 0 && s.owner == owner)) stale = &s;
      if (!victim || s.used < victim->used) victim = &s;
    }
    if (stale) victim = stale;
    else if (slots.size() < kSlots) {
      slots.emplace_back();
      victim = &slots.back();
    }
    victim->token = 0;  // claims nothing until its copy is written (a reorder may throw)
    victim->src = nullptr;
    victim->scale.clear();
    victim->owner = owner;
    if (scale) fillScaled(*victim, um, scale, nScale);
    else fill(*victim, um);
    victim->token = token;
    victim->src = p;
    if (scale) victim->scale.assign(scale, scale + nScale);
    victim->used = clock;
    last = victim;
    return victim->buf;
  }
  // After the primitive ran: let go of a copy asked for only once so far.
  void done() {
    if (last) last->buf = memory();
    last = nullptr;
  }

 private:
  void fill(Slot& s, memory um) {
    if (!s.buf) s.buf = memory(want, eng());
    r->execute(strm(), um, s.buf);
  }
  // The weights times a scale per output channel (dimension 0 of {O, C, KH, KW}), in the wanted layout.
  void fillScaled(Slot& s, memory um, const float* scale, size_t n) {
    primitive_attr attr;
    attr.set_output_scales(1, std::vector<float>(scale, scale + n));
    reorder::primitive_desc pd(eng(), user, eng(), want, attr);
    if (!s.buf) s.buf = memory(want, eng());
    reorder(pd).execute(strm(), um, s.buf);
  }
};

// oneDNN lists brgconv first for every channels-last forward convolution on AVX-512, but on small
// outputs its direct jit kernel is faster. On this project's AMD EPYC (2 threads, `node dist/bench/conv-impls.js`):
// ResNet-18/34's last stage at 128 px (512 channels, 4×4 outputs, batch 32) 7.2 ms against 4.0 ms;
// every 3×3 and 1×1 case with outputs of at most 2×2 pixels and batch 8 to 64 1.10–1.79× faster; 4×4
// outputs from 256 channels up 1.03–1.84×; from 64 or 128 channels, at 7×7 and above, or at batch 1 to 4
// brgconv is as fast or faster (0.26–0.96×), so those keep it. The rule reads the shape only, never a
// timing, so a shape always runs the same kernel. TSFAST_SMALL_CONV_JIT=0 keeps oneDNN's first choice.
bool smallOutputPrefersJit(const ConvP& c) {
  static const bool on = [] {
    const char* v = std::getenv("TSFAST_SMALL_CONV_JIT");
    return !(v && std::string(v) == "0");
  }();
  const int64_t px = c.OH * c.OW;
  return on && c.G == 1 && c.N >= 8 && (px <= 4 || (px <= 16 && c.C >= 256));
}

// `sum`: y's contents are added to the convolution's result (bias included) before the activation (oneDNN's
// sum post-op): a residual block's add, the convolution writing into the identity's array (conv-bn.ts).
convolution_forward::primitive_desc fwdPd(const ConvP& c, bool bias, int act, bool sum = false, bool inference = false) {
  const auto prop = inference ? prop_kind::forward_inference : prop_kind::forward_training;
  auto desc = bias ? convolution_forward::desc(prop, algorithm::convolution_direct,
                                               c.src(), c.anyW(), memory::desc({c.O}, dt::f32, tag::a),
                                               c.dst(), c.strides(), c.dil(), c.padL(), c.padR())
                   : convolution_forward::desc(prop, algorithm::convolution_direct,
                                               c.src(), c.anyW(), c.dst(), c.strides(), c.dil(), c.padL(),
                                               c.padR());
  primitive_attr attr;
  if (act != 0 || sum) {
    post_ops ops;
    if (sum) ops.append_sum(1.f);
    if (act == 1) ops.append_eltwise(1.f, algorithm::eltwise_relu, 0.f, 0.f);
    else if (act == 2) ops.append_eltwise(1.f, algorithm::eltwise_clip, 0.f, 6.f);
    else if (act == 3) ops.append_eltwise(1.f, algorithm::eltwise_logistic, 0.f, 0.f);
    else if (act == 4) ops.append_eltwise(1.f, algorithm::eltwise_elu, 1.f, 0.f);
    attr.set_post_ops(ops);
  }
  convolution_forward::primitive_desc pd(desc, attr, eng());
  if (!smallOutputPrefersJit(c)) return pd;
  do {
    if (std::string(pd.impl_info_str()) == "jit:avx512_core") return pd;
  } while (pd.next_impl());
  return convolution_forward::primitive_desc(desc, attr, eng());  // not offered here: oneDNN's first choice
}

struct FwdEntry {
  convolution_forward prim;
  WeightIn w;
};
struct BwdDataEntry {
  convolution_backward_data prim;
  WeightIn w;
};
struct BwdWEntry {
  convolution_backward_weights prim;
  memory::desc userW, got;
  std::unique_ptr<reorder> r;
  memory buf;
};

std::unordered_map<std::string, std::unique_ptr<FwdEntry>> fwdCache;
std::unordered_map<std::string, std::unique_ptr<BwdDataEntry>> bwdDataCache;
std::unordered_map<std::string, std::unique_ptr<BwdWEntry>> bwdWCache;

Napi::Value fail(Napi::Env env, const std::exception& e, const char* what) {
  Napi::Error::New(env, std::string(what) + ": " + e.what()).ThrowAsJavaScriptException();
  return env.Undefined();
}

// conv2d(x, w, bias|null, y, params, act, wToken, scale?|null, sum?, owner?): y = act(conv(x, w) + bias), or with `scale`
// (O values, G == 1) y = act(conv(x, w·scale) + bias), the scaled weights cached like a reorder (WeightIn);
// with `sum`, y = act(conv(...) + bias + y), y's own contents added in place; `owner` names the layer a scaled
// copy belongs to (WeightIn::get).
Napi::Value Conv2d(const Napi::CallbackInfo& info) {
  SignalGuard guard;  // see common.h
  try {
    auto p = ints(info[4]);
    ConvP c(p);
    bool bias = !info[2].IsNull() && !info[2].IsUndefined();
    bool scaled = info.Length() > 7 && !info[7].IsNull() && !info[7].IsUndefined();
    if (scaled && (c.G != 1 || info[7].As<Napi::Float32Array>().ElementLength() != size_t(c.O))) {
      throw std::invalid_argument("a weight scale needs one value per output channel and no groups");
    }
    bool sum = info.Length() > 8 && info[8].ToBoolean().Value();
    int act = info[5].As<Napi::Number>().Int32Value();
    // scaled copies live in entries of their own: a slot holds either kind, never both
    auto k = key(scaled ? "fs" : "f", p, act * 4 + (sum ? 2 : 0) + (bias ? 1 : 0));
    auto it = fwdCache.find(k);
    if (it == fwdCache.end()) {
      auto pd = fwdPd(c, bias, act, sum, scaled);
      auto e = std::make_unique<FwdEntry>();
      e->prim = convolution_forward(pd);
      e->w.init(c.userW(), pd.weights_desc());
      it = fwdCache.emplace(k, std::move(e)).first;
    }
    auto& e = *it->second;
    std::unordered_map<int, memory> args{
        {DNNL_ARG_SRC, memory(c.src(), eng(), f32(info[0]))},
        {DNNL_ARG_WEIGHTS, scaled ? e.w.get(f32(info[1]), info[6].As<Napi::Number>().DoubleValue(), f32(info[7]), size_t(c.O),
                                            info.Length() > 9 && info[9].IsNumber() ? info[9].As<Napi::Number>().DoubleValue() : 0)
                                  : e.w.get(f32(info[1]), info[6].As<Napi::Number>().DoubleValue())},
        {DNNL_ARG_DST, memory(c.dst(), eng(), f32(info[3]))}};
    if (bias) args[DNNL_ARG_BIAS] = memory(memory::desc({c.O}, dt::f32, tag::a), eng(), f32(info[2]));
    e.prim.execute(strm(), args);
    strm().wait();
    e.w.done();
  } catch (const std::exception& ex) {
    return fail(info.Env(), ex, "conv2d");
  }
  return info.Env().Undefined();
}

// convForwardImpl(params) -> the oneDNN implementation a forward convolution of this shape runs.
Napi::Value ConvForwardImpl(const Napi::CallbackInfo& info) {
  try {
    return Napi::String::New(info.Env(), fwdPd(ConvP(ints(info[0])), false, 0).impl_info_str());
  } catch (const std::exception& ex) {
    return fail(info.Env(), ex, "convForwardImpl");
  }
}

// heldWeightCopies() -> bytes of reordered weight copies the convolutions keep between calls.
Napi::Value HeldWeightCopies(const Napi::CallbackInfo& info) {
  size_t bytes = 0;
  auto add = [&](const WeightIn& w) {
    for (const auto& s : w.slots) if (s.buf) bytes += w.want.get_size();
  };
  for (const auto& [k, e] : fwdCache) add(e->w);
  for (const auto& [k, e] : bwdDataCache) add(e->w);
  return Napi::Number::New(info.Env(), double(bytes));
}

// conv2dBackpropInput(dy, w, dx, params, wToken)
Napi::Value Conv2dBwdData(const Napi::CallbackInfo& info) {
  SignalGuard guard;  // see common.h
  try {
    auto p = ints(info[3]);
    ConvP c(p);
    auto k = key("d", p);
    auto it = bwdDataCache.find(k);
    if (it == bwdDataCache.end()) {
      auto hint = fwdPd(c, false, 0);
      auto desc = convolution_backward_data::desc(algorithm::convolution_direct, c.src(), c.anyW(), c.dst(),
                                                  c.strides(), c.dil(), c.padL(), c.padR());
      convolution_backward_data::primitive_desc pd(desc, eng(), hint);
      auto e = std::make_unique<BwdDataEntry>();
      e->prim = convolution_backward_data(pd);
      e->w.init(c.userW(), pd.weights_desc());
      it = bwdDataCache.emplace(k, std::move(e)).first;
    }
    auto& e = *it->second;
    e.prim.execute(strm(), {{DNNL_ARG_DIFF_DST, memory(c.dst(), eng(), f32(info[0]))},
                            {DNNL_ARG_WEIGHTS, e.w.get(f32(info[1]), info[4].As<Napi::Number>().DoubleValue())},
                            {DNNL_ARG_DIFF_SRC, memory(c.src(), eng(), f32(info[2]))}});
    strm().wait();
    e.w.done();
  } catch (const std::exception& ex) {
    return fail(info.Env(), ex, "conv2dBackpropInput");
  }
  return info.Env().Undefined();
}

// conv2dBackpropFilter(x, dy, dw, params)
Napi::Value Conv2dBwdWeights(const Napi::CallbackInfo& info) {
  SignalGuard guard;  // see common.h
  try {
    auto p = ints(info[3]);
    ConvP c(p);
    auto k = key("w", p);
    auto it = bwdWCache.find(k);
    if (it == bwdWCache.end()) {
      auto hint = fwdPd(c, false, 0);
      auto desc = convolution_backward_weights::desc(algorithm::convolution_direct, c.src(), c.anyW(), c.dst(),
                                                     c.strides(), c.dil(), c.padL(), c.padR());
      convolution_backward_weights::primitive_desc pd(desc, eng(), hint);
      auto e = std::make_unique<BwdWEntry>();
      e->prim = convolution_backward_weights(pd);
      e->userW = c.userW();
      e->got = pd.diff_weights_desc();
      if (e->got != e->userW) {
        e->buf = memory(e->got, eng());
        e->r.reset(new reorder(e->buf, memory(e->userW, eng(), nullptr)));
      }
      it = bwdWCache.emplace(k, std::move(e)).first;
    }
    auto& e = *it->second;
    memory out(e.userW, eng(), f32(info[2]));
    e.prim.execute(strm(), {{DNNL_ARG_SRC, memory(c.src(), eng(), f32(info[0]))},
                            {DNNL_ARG_DIFF_DST, memory(c.dst(), eng(), f32(info[1]))},
                            {DNNL_ARG_DIFF_WEIGHTS, e.r ? e.buf : out}});
    if (e.r) e.r->execute(strm(), e.buf, out);
    strm().wait();
  } catch (const std::exception& ex) {
    return fail(info.Env(), ex, "conv2dBackpropFilter");
  }
  return info.Env().Undefined();
}

// Pool parameters: [N,H,W,C, KH,KW, OH,OW, sh,sw, pt,pl,pb,pr, isMax]
struct PoolP {
  int64_t N, H, W, C, KH, KW, OH, OW, sh, sw, pt, pl, pb, pr, isMax;
  explicit PoolP(const std::vector<int64_t>& p)
      : N(p[0]), H(p[1]), W(p[2]), C(p[3]), KH(p[4]), KW(p[5]), OH(p[6]), OW(p[7]), sh(p[8]), sw(p[9]),
        pt(p[10]), pl(p[11]), pb(p[12]), pr(p[13]), isMax(p[14]) {}
  memory::desc src() const { return memory::desc({N, C, H, W}, dt::f32, tag::nhwc); }
  memory::desc dst() const { return memory::desc({N, C, OH, OW}, dt::f32, tag::nhwc); }
  // isMax: 1 max, 0 average over the window's in-bounds pixels, 2 average over the whole window
  // (tfjs's AvgPoolGrad divides by the full window size even where the forward excluded padding).
  algorithm alg() const {
    return isMax == 1 ? algorithm::pooling_max
                      : (isMax == 2 ? algorithm::pooling_avg_include_padding : algorithm::pooling_avg_exclude_padding);
  }
  pooling_forward::desc fdesc() const {
    return pooling_forward::desc(prop_kind::forward_training, alg(), src(), dst(), {sh, sw}, {KH, KW},
                                 {pt, pl}, {pb, pr});
  }
};

struct PoolEntry {
  pooling_forward::primitive_desc fpd;
  pooling_forward fwd;
  std::unique_ptr<pooling_backward> bwd;
  memory ws;
};
std::unordered_map<std::string, std::unique_ptr<PoolEntry>> poolCache;

PoolEntry& poolEntry(const PoolP& c, const std::vector<int64_t>& p, bool backward) {
  auto k = key("p", p);
  auto it = poolCache.find(k);
  if (it == poolCache.end()) {
    auto e = std::make_unique<PoolEntry>();
    e->fpd = pooling_forward::primitive_desc(c.fdesc(), eng());
    e->fwd = pooling_forward(e->fpd);
    if (c.isMax == 1) e->ws = memory(e->fpd.workspace_desc(), eng());
    it = poolCache.emplace(k, std::move(e)).first;
  }
  auto& e = *it->second;
  if (backward && !e.bwd) {
    auto bd = pooling_backward::desc(c.alg(), c.src(), c.dst(), {c.sh, c.sw}, {c.KH, c.KW}, {c.pt, c.pl},
                                     {c.pb, c.pr});
    pooling_backward::primitive_desc bpd(bd, eng(), e.fpd);
    e.bwd.reset(new pooling_backward(bpd));
  }
  return e;
}

// pool(x, y, params)
Napi::Value Pool(const Napi::CallbackInfo& info) {
  SignalGuard guard;  // see common.h
  try {
    auto p = ints(info[2]);
    PoolP c(p);
    auto& e = poolEntry(c, p, false);
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, memory(c.src(), eng(), f32(info[0]))},
                                         {DNNL_ARG_DST, memory(c.dst(), eng(), f32(info[1]))}};
    if (c.isMax == 1) args[DNNL_ARG_WORKSPACE] = e.ws;
    e.fwd.execute(strm(), args);
    strm().wait();
  } catch (const std::exception& ex) {
    return fail(info.Env(), ex, "pool");
  }
  return info.Env().Undefined();
}

// poolGrad(dy, x, dx, params): max pooling recomputes the forward to find the arg-max positions.
Napi::Value PoolGrad(const Napi::CallbackInfo& info) {
  SignalGuard guard;  // see common.h
  try {
    auto p = ints(info[3]);
    PoolP c(p);
    auto& e = poolEntry(c, p, true);
    std::unordered_map<int, memory> bargs{{DNNL_ARG_DIFF_DST, memory(c.dst(), eng(), f32(info[0]))},
                                          {DNNL_ARG_DIFF_SRC, memory(c.src(), eng(), f32(info[2]))}};
    if (c.isMax == 1) {
      memory tmp(c.dst(), eng());
      e.fwd.execute(strm(), {{DNNL_ARG_SRC, memory(c.src(), eng(), f32(info[1]))},
                             {DNNL_ARG_DST, tmp},
                             {DNNL_ARG_WORKSPACE, e.ws}});
      bargs[DNNL_ARG_WORKSPACE] = e.ws;
    }
    e.bwd->execute(strm(), bargs);
    strm().wait();
  } catch (const std::exception& ex) {
    return fail(info.Env(), ex, "poolGrad");
  }
  return info.Env().Undefined();
}

// matmul(a, b, c, [batchA, batchB, M, N, K, transA, transB]): row-major, batch broadcast when 1.
Napi::Value MatMul(const Napi::CallbackInfo& info) {
  SignalGuard guard;  // see common.h
  auto p = ints(info[3]);
  int64_t bA = p[0], bB = p[1], M = p[2], N = p[3], K = p[4];
  bool tA = p[5] != 0, tB = p[6] != 0;
  const float* a = f32(info[0]);
  const float* b = f32(info[1]);
  float* c = f32(info[2]);
  int64_t batch = bA > bB ? bA : bB;
  // oneDNN 2.6's sgemm is slow for A·Bᵀ when A has few rows: 16×2048 · (512×2048)ᵀ (an LSTM's or a
  // linear layer's input gradient at batch 16) took 1.2 ms on 2 threads, 10× A·B of the same size. It
  // is computed as Cᵀ = B·Aᵀ instead (7× faster there), and the small Cᵀ transposed into C (not for
  // products under a million multiply-adds, where the copy costs more than it saves).
  const bool swap = tB && !tA && M < N && M <= 64 && M * N * K >= (1 << 20);
  std::vector<float> ct(swap ? M * N : 0);
  for (int64_t i = 0; i < batch; i++) {
    const float* ai = a + (bA == 1 ? 0 : i) * M * K;
    const float* bi = b + (bB == 1 ? 0 : i) * K * N;
    float* ci = c + i * M * N;
    dnnl_status_t st = swap ? dnnl_sgemm('N', 'T', N, M, K, 1.f, bi, K, ai, K, 0.f, ct.data(), M)
                            : dnnl_sgemm(tA ? 'T' : 'N', tB ? 'T' : 'N', M, N, K, 1.f, ai, tA ? M : K, bi,
                                         tB ? K : N, 0.f, ci, N);
    if (swap && st == dnnl_success) {
      for (int64_t r = 0; r < M; r++)
        for (int64_t col = 0; col < N; col++) ci[r * N + col] = ct[col * M + r];
    }
    if (st != dnnl_success) {
      Napi::Error::New(info.Env(), "matmul: dnnl_sgemm failed").ThrowAsJavaScriptException();
      return info.Env().Undefined();
    }
  }
  return info.Env().Undefined();
}

}  // namespace

void initConv(Napi::Env env, Napi::Object exports) {
  exports.Set("conv2d", Napi::Function::New(env, Conv2d));
  exports.Set("heldWeightCopies", Napi::Function::New(env, HeldWeightCopies));
  exports.Set("convForwardImpl", Napi::Function::New(env, ConvForwardImpl));
  exports.Set("conv2dBackpropInput", Napi::Function::New(env, Conv2dBwdData));
  exports.Set("conv2dBackpropFilter", Napi::Function::New(env, Conv2dBwdWeights));
  exports.Set("pool", Napi::Function::New(env, Pool));
  exports.Set("poolGrad", Napi::Function::New(env, PoolGrad));
  exports.Set("matmul", Napi::Function::New(env, MatMul));
}

}  // namespace tsf
