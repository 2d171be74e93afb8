// Multi-threaded elementwise, broadcast, reduction and softmax loops on float32 TypedArrays.
//
// Shapes arrive already padded to one rank; adjacent dimensions that broadcast the same way are
// merged so most calls become a 1-D or 2-D loop (e.g. [N,H,W,C] + [C] -> [NHW, C] with b's row
// stride 0). OpenMP splits the outermost loop across the engine's threads.
#include "common.h"
#include <cmath>
#include <limits>
#include <omp.h>

namespace tsf {
namespace {

constexpr int64_t kPar = 1 << 14;  // below this many elements a single thread is faster

// The ReLU of the unary kernel (NaN and -0 pass through), and its gradient through its output y, as
// reluGrad computes it: the fused BatchNorm + ReLU (scaleShift, bnBackward) give the unfused pair's bits.
inline float reluOf(float v) { return v < 0 ? 0.f : v; }
inline float reluGradOf(float dy, float y) { return y > 0 ? dy : (y != y ? y * dy : 0.f * dy); }

enum BinOp { ADD, SUB, MUL, DIV, MAXI, MINI, SQDIFF, POW, FLOORDIV, MOD, EQMASK };

template <int OP>
inline float bop(float a, float b) {
  if (OP == ADD) return a + b;
  if (OP == SUB) return a - b;
  if (OP == MUL) return a * b;
  if (OP == DIV) return a / b;
  if (OP == MAXI) return (a != a || b != b) ? std::numeric_limits<float>::quiet_NaN() : (a > b ? a : b);
  if (OP == MINI) return (a != a || b != b) ? std::numeric_limits<float>::quiet_NaN() : (a < b ? a : b);
  if (OP == SQDIFF) return (a - b) * (a - b);
  if (OP == EQMASK) return a == b ? 1.f : 0.f;  // tfjs's cast(equal(a, b), "float32"); NaN equals nothing
  if (OP == POW) return std::pow(a, b);
  if (OP == FLOORDIV) return std::floor(a / b);
  if (OP == MOD) {
    float r = std::fmod(a, b);
    return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;
  }
  return 0;
}

// out[i] = a[ia] OP b[ib] over collapsed dims d with element strides sa/sb (0 = broadcast).
template <int OP>
void binaryLoop(const float* a, const float* b, float* o, const std::vector<int64_t>& d,
                const std::vector<int64_t>& sa, const std::vector<int64_t>& sb) {
  int r = (int)d.size();
  int64_t inner = d[r - 1], ia = sa[r - 1], ib = sb[r - 1];
  int64_t rows = 1;
  for (int i = 0; i < r - 1; i++) rows *= d[i];
  int64_t total = rows * inner;
  if (rows == 1) {
    // One long row: split it across threads.
#pragma omp parallel for schedule(static) if (total > kPar)
    for (int64_t i = 0; i < inner; i++) o[i] = bop<OP>(a[i * ia], b[i * ib]);
    return;
  }
#pragma omp parallel for schedule(static) if (total > kPar)
  for (int64_t row = 0; row < rows; row++) {
    int64_t offA = 0, offB = 0, rem = row;
    for (int i = r - 2; i >= 0; i--) {
      int64_t q = rem % d[i];
      rem /= d[i];
      offA += q * sa[i];
      offB += q * sb[i];
    }
    const float* ap = a + offA;
    const float* bp = b + offB;
    float* op = o + row * inner;
    if (ia == 1 && ib == 1) {
      for (int64_t j = 0; j < inner; j++) op[j] = bop<OP>(ap[j], bp[j]);
    } else if (ia == 1 && ib == 0) {
      float bv = bp[0];
      for (int64_t j = 0; j < inner; j++) op[j] = bop<OP>(ap[j], bv);
    } else if (ia == 0 && ib == 1) {
      float av = ap[0];
      for (int64_t j = 0; j < inner; j++) op[j] = bop<OP>(av, bp[j]);
    } else {
      for (int64_t j = 0; j < inner; j++) op[j] = bop<OP>(ap[j * ia], bp[j * ib]);
    }
  }
}

// binary(op, a, b, out, outShape, aShape, bShape): shapes padded to the same rank by the caller.
Napi::Value Binary(const Napi::CallbackInfo& info) {
  SignalGuard guard;  // OpenMP workers this region creates inherit the blocked mask (common.h)
  int op = info[0].As<Napi::Number>().Int32Value();
  const float* a = f32(info[1]);
  const float* b = f32(info[2]);
  float* o = f32(info[3]);
  auto od = ints(info[4]), ad = ints(info[5]), bd = ints(info[6]);
  int r = (int)od.size();
  // Element strides of a and b in the output's index space (0 where broadcast).
  std::vector<int64_t> sa(r), sb(r);
  int64_t accA = 1, accB = 1;
  for (int i = r - 1; i >= 0; i--) {
    sa[i] = ad[i] == 1 ? 0 : accA;
    sb[i] = bd[i] == 1 ? 0 : accB;
    accA *= ad[i];
    accB *= bd[i];
  }
  // Merge adjacent dims when both operands stay contiguous (or stay broadcast) across them.
  std::vector<int64_t> d, xa, xb;
  for (int i = 0; i < r; i++) {
    if (od[i] == 1) continue;
    if (!d.empty() && xa.back() == sa[i] * od[i] && xb.back() == sb[i] * od[i]) {
      d.back() *= od[i];
      xa.back() = sa[i];
      xb.back() = sb[i];
    } else {
      d.push_back(od[i]);
      xa.push_back(sa[i]);
      xb.push_back(sb[i]);
    }
  }
  if (d.empty()) {
    d = {1};
    xa = {0};
    xb = {0};
  }
  switch (op) {
    case ADD: binaryLoop<ADD>(a, b, o, d, xa, xb); break;
    case SUB: binaryLoop<SUB>(a, b, o, d, xa, xb); break;
    case MUL: binaryLoop<MUL>(a, b, o, d, xa, xb); break;
    case DIV: binaryLoop<DIV>(a, b, o, d, xa, xb); break;
    case MAXI: binaryLoop<MAXI>(a, b, o, d, xa, xb); break;
    case MINI: binaryLoop<MINI>(a, b, o, d, xa, xb); break;
    case SQDIFF: binaryLoop<SQDIFF>(a, b, o, d, xa, xb); break;
    case POW: binaryLoop<POW>(a, b, o, d, xa, xb); break;
    case FLOORDIV: binaryLoop<FLOORDIV>(a, b, o, d, xa, xb); break;
    case MOD: binaryLoop<MOD>(a, b, o, d, xa, xb); break;
    case EQMASK: binaryLoop<EQMASK>(a, b, o, d, xa, xb); break;
    default:
      Napi::Error::New(info.Env(), "binary: unknown op").ThrowAsJavaScriptException();
  }
  return info.Env().Undefined();
}

enum UnOp { RELU, RELU6, NEG, EXP, LOG, SQRT, RSQRT, SQUARE, ABS, SIGMOID, TANH, STEP, RECIP, COPY, ELU,
            SOFTPLUS, LEAKY, LOG1P, EXPM1, SIN, COS, FLOOR, CEIL, ROUND, SIGN };

template <int OP>
inline float uop(float x, float alpha) {
  if (OP == RELU) return reluOf(x);
  if (OP == RELU6) return x < 0 ? 0.f : (x > 6 ? 6.f : x);
  if (OP == NEG) return -x;
  if (OP == EXP) return std::exp(x);
  if (OP == LOG) return std::log(x);
  if (OP == SQRT) return std::sqrt(x);
  if (OP == RSQRT) return 1.f / std::sqrt(x);
  if (OP == SQUARE) return x * x;
  if (OP == ABS) return std::fabs(x);
  if (OP == SIGMOID) return 1.f / (1.f + std::exp(-x));
  if (OP == TANH) return std::tanh(x);
  if (OP == STEP) return x != x ? x : (x > 0 ? 1.f : alpha);
  if (OP == RECIP) return 1.f / x;
  if (OP == COPY) return x;
  if (OP == ELU) return x >= 0 ? x : std::expm1(x);
  // tfjs's thresholds: log(float32 epsilon) + 2.
  if (OP == SOFTPLUS) return x > 13.942385f ? x : (x < -13.942385f ? std::exp(x) : std::log(1.f + std::exp(x)));
  if (OP == LEAKY) return x < 0 ? alpha * x : x;
  if (OP == LOG1P) return std::log1p(x);
  if (OP == EXPM1) return std::expm1(x);
  if (OP == SIN) return std::sin(x);
  if (OP == COS) return std::cos(x);
  if (OP == FLOOR) return std::floor(x);
  if (OP == CEIL) return std::ceil(x);
  if (OP == SIGN) return x != x ? 0.f : (x > 0 ? 1.f : (x < 0 ? -1.f : 0.f));
  return x;
}

template <int OP>
void unaryLoop(const float* x, float* o, int64_t n, float alpha) {
#pragma omp parallel for schedule(static) if (n > kPar)
  for (int64_t i = 0; i < n; i++) o[i] = uop<OP>(x[i], alpha);
}

// unary(op, x, out, alpha)
Napi::Value Unary(const Napi::CallbackInfo& info) {
  SignalGuard guard;  // OpenMP workers this region creates inherit the blocked mask (common.h)
  int op = info[0].As<Napi::Number>().Int32Value();
  const float* x = f32(info[1]);
  float* o = f32(info[2]);
  int64_t n = (int64_t)f32len(info[2]);
  float alpha = info[3].As<Napi::Number>().FloatValue();
  switch (op) {
#define U(K) \
  case K: unaryLoop<K>(x, o, n, alpha); break;
    U(RELU) U(RELU6) U(NEG) U(EXP) U(LOG) U(SQRT) U(RSQRT) U(SQUARE) U(ABS) U(SIGMOID) U(TANH) U(STEP)
    U(RECIP) U(COPY) U(ELU) U(SOFTPLUS) U(LEAKY) U(LOG1P) U(EXPM1) U(SIN) U(COS) U(FLOOR) U(CEIL)
    U(SIGN)
#undef U
    default:
      Napi::Error::New(info.Env(), "unary: unknown op").ThrowAsJavaScriptException();
  }
  return info.Env().Undefined();
}

enum RedOp { RSUM, RMEAN, RMAX, RMIN, RPROD };

inline float rinit(int op) {
  if (op == RMAX) return -std::numeric_limits<float>::infinity();
  if (op == RMIN) return std::numeric_limits<float>::infinity();
  if (op == RPROD) return 1.f;
  return 0.f;
}
inline float racc(int op, float acc, float v) {
  switch (op) {
    case RMAX: return (v > acc || v != v) ? v : acc;
    case RMIN: return (v < acc || v != v) ? v : acc;
    case RPROD: return acc * v;
    default: return acc + v;
  }
}

// reduce(op, x, out, outer, red, inner): x viewed as [outer, red, inner], out as [outer, inner].
Napi::Value Reduce(const Napi::CallbackInfo& info) {
  SignalGuard guard;  // OpenMP workers this region creates inherit the blocked mask (common.h)
  int op = info[0].As<Napi::Number>().Int32Value();
  const float* x = f32(info[1]);
  float* o = f32(info[2]);
  int64_t outer = info[3].As<Napi::Number>().Int64Value();
  int64_t red = info[4].As<Napi::Number>().Int64Value();
  int64_t inner = info[5].As<Napi::Number>().Int64Value();
  int64_t total = outer * red * inner;
  float scale = op == RMEAN ? 1.f / (float)red : 1.f;
  int rop = op == RMEAN ? RSUM : op;
  if (inner == 1) {
#pragma omp parallel for schedule(static) if (total > kPar)
    for (int64_t i = 0; i < outer; i++) {
      const float* p = x + i * red;
      float acc = rinit(rop);
      if (rop == RSUM) {
        double s = 0;  // long rows: keep the sum accurate
        for (int64_t j = 0; j < red; j++) s += p[j];
        acc = (float)s;
      } else {
        for (int64_t j = 0; j < red; j++) acc = racc(rop, acc, p[j]);
      }
      o[i] = acc * scale;
    }
    return info.Env().Undefined();
  }
  int nt = omp_get_max_threads();
  if (outer >= nt || total <= kPar) {
#pragma omp parallel for schedule(static) if (total > kPar)
    for (int64_t i = 0; i < outer; i++) {
      float* op2 = o + i * inner;
      for (int64_t k = 0; k < inner; k++) op2[k] = rinit(rop);
      for (int64_t j = 0; j < red; j++) {
        const float* p = x + (i * red + j) * inner;
        for (int64_t k = 0; k < inner; k++) op2[k] = racc(rop, op2[k], p[k]);
      }
      for (int64_t k = 0; k < inner; k++) op2[k] *= scale;
    }
    return info.Env().Undefined();
  }
  // Few outer rows (e.g. BatchNorm's [N*H*W, C] -> [C]): split the reduced axis across threads.
  // Partials start at the reduction's identity: OpenMP may give fewer threads than nt (a thread
  // limit, nesting), and the unused ones must not count as zeros (wrong for max, min and prod).
  std::vector<float> part((size_t)nt * outer * inner, rinit(rop));
#pragma omp parallel num_threads(nt)
  {
    int t = omp_get_thread_num();
    int T = omp_get_num_threads();
    for (int64_t i = 0; i < outer; i++) {
      float* acc = part.data() + ((size_t)t * outer + i) * inner;
      for (int64_t k = 0; k < inner; k++) acc[k] = rinit(rop);
      int64_t j0 = red * t / T, j1 = red * (t + 1) / T;
      for (int64_t j = j0; j < j1; j++) {
        const float* p = x + (i * red + j) * inner;
        for (int64_t k = 0; k < inner; k++) acc[k] = racc(rop, acc[k], p[k]);
      }
    }
  }
  for (int64_t i = 0; i < outer * inner; i++) {
    float acc = rinit(rop);
    for (int t = 0; t < nt; t++) acc = racc(rop, acc, part[(size_t)t * outer * inner + i]);
    o[i] = acc * scale;
  }
  return info.Env().Undefined();
}

// softmax(x, out, rows, cols): along the last axis, max-shifted.
Napi::Value Softmax(const Napi::CallbackInfo& info) {
  SignalGuard guard;  // OpenMP workers this region creates inherit the blocked mask (common.h)
  const float* x = f32(info[0]);
  float* o = f32(info[1]);
  int64_t rows = info[2].As<Napi::Number>().Int64Value();
  int64_t cols = info[3].As<Napi::Number>().Int64Value();
#pragma omp parallel for schedule(static) if (rows * cols > kPar)
  for (int64_t i = 0; i < rows; i++) {
    const float* p = x + i * cols;
    float* q = o + i * cols;
    float m = -std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < cols; j++) m = p[j] > m ? p[j] : m;
    float s = 0;
    for (int64_t j = 0; j < cols; j++) {
      q[j] = std::exp(p[j] - m);
      s += q[j];
    }
    float inv = 1.f / s;
    for (int64_t j = 0; j < cols; j++) q[j] *= inv;
  }
  return info.Env().Undefined();
}

// The AdamW update of elements [0, n). Each of the three outputs is a separate array (`OW`, `OM`, `OV`) or
// its input updated in place (then the unused output pointer equals the input and the loop writes through
// the input's own pointer, so each restrict pointer is the only way its array is reached). GCC left the
// loop scalar while it sat in the OpenMP region, while its pointers could overlap (seven to check), and
// while its square root could set errno (-fno-math-errno in binding.gyp): every element took the scalar
// division and square root, 16-17 ms for ResNet-18's 11.2 M parameters against 6-8 ms vectorised. The
// roundings are written out and nothing else is fused (`fp-contract=off`): each moment's update is one
// multiply-add (std::fma), every other operation rounds once, the same bits in the vector and the scalar
// loop and as the scalar loop before on an x86 with FMA (GCC had fused exactly the moments' updates there;
// left to itself it fuses the decay too once vectorised). Without FMA hardware std::fma is a library call
// and the loop stays scalar, with the same bits.
template <bool OW, bool OM, bool OV>
__attribute__((optimize("fp-contract=off"))) void adamRange(float* __restrict w, float* __restrict m, float* __restrict v, const float* __restrict g,
                                                            float* __restrict wo, float* __restrict mo, float* __restrict vo, int64_t n,
                                                            const float* k) {
  const float lr = k[0], b1 = k[1], b2 = k[2], eps = k[3], c1 = k[4], c2 = k[5], wd = k[6];
  float* wr = OW ? wo : w;
  float* mr = OM ? mo : m;
  float* vr = OV ? vo : v;
  for (int64_t i = 0; i < n; i++) {
    float gi = g[i];
    float mi = std::fma(b1, m[i], (1 - b1) * gi);
    float vi = std::fma(b2, v[i], (1 - b2) * gi * gi);
    float wi = w[i] * (1 - lr * wd) - lr * (mi / c1) / (std::sqrt(vi / c2) + eps);
    mr[i] = mi;
    vr[i] = vi;
    wr[i] = wi;
  }
}
using AdamRangeFn = void (*)(float*, float*, float*, const float*, float*, float*, float*, int64_t, const float*);
// Indexed by (separate param output) * 4 + (separate m output) * 2 + (separate v output).
constexpr AdamRangeFn kAdamRanges[8] = {adamRange<false, false, false>, adamRange<false, false, true>, adamRange<false, true, false>,
                                        adamRange<false, true, true>,   adamRange<true, false, false>,  adamRange<true, false, true>,
                                        adamRange<true, true, false>,   adamRange<true, true, true>};

// adam(param, m, v, grad, [lr, beta1, beta2, eps, 1-beta1^t, 1-beta2^t, wd][, paramOut, mOut, vOut]): one fused
// AdamW pass. Without the outputs it updates param, m and v in place; with them (each the length of param, or
// null for in place) it reads the old values and writes the new ones there, so an array someone else still
// holds (a training guard's snapshot) stays as it was, at no more memory traffic than in place.
Napi::Value Adam(const Napi::CallbackInfo& info) {
  SignalGuard guard;  // OpenMP workers this region creates inherit the blocked mask (common.h)
  float* w = f32(info[0]);  // written in place when no separate output is given
  float* m = f32(info[1]);
  float* v = f32(info[2]);
  const float* g = f32(info[3]);
  auto h = info[4].As<Napi::Float64Array>();
  float lr = (float)h[0], b1 = (float)h[1], b2 = (float)h[2], eps = (float)h[3];
  float c1 = (float)h[4], c2 = (float)h[5], wd = (float)h[6];
  int64_t n = (int64_t)f32len(info[0]);
  auto out = [&](size_t i) { return info.Length() > i && info[i].IsTypedArray() ? f32(info[i]) : f32(info[i - 5]); };
  float* wo = out(5);
  float* mo = out(6);
  float* vo = out(7);
  // An output is its input (in place) or an array apart from every input (a fresh array).
  AdamRangeFn range = kAdamRanges[(wo != w) * 4 + (mo != m) * 2 + (vo != v)];
  const float k[7] = {lr, b1, b2, eps, c1, c2, wd};
#pragma omp parallel if (n > kPar)
  {
    int nt = omp_get_num_threads(), t = omp_get_thread_num();
    int64_t per = ((n + nt - 1) / nt + 15) / 16 * 16;  // a multiple of 16 values per thread
    int64_t a = std::min(n, t * per), b = std::min(n, a + per);
    range(w + a, m + a, v + a, g + a, wo + a, mo + a, vo + a, b - a, k);
  }
  return info.Env().Undefined();
}

// sumEach(arrays): each Float32Array summed (in double, rounded to float32), the sums added in float32:
// tfjs's sum of each then addN, in one call. NaN and infinities show through, as there.
Napi::Value SumEach(const Napi::CallbackInfo& info) {
  SignalGuard guard;  // OpenMP workers this region creates inherit the blocked mask (common.h)
  auto arr = info[0].As<Napi::Array>();
  uint32_t n = arr.Length();
  std::vector<const float*> ptrs(n);
  std::vector<int64_t> lens(n);
  for (uint32_t i = 0; i < n; i++) {
    Napi::Value v = arr.Get(i);
    ptrs[i] = f32(v);
    lens[i] = (int64_t)f32len(v);
  }
  float total = 0;
  for (uint32_t i = 0; i < n; i++) {
    const float* p = ptrs[i];
    int64_t len = lens[i];
    double s = 0;
#pragma omp parallel for reduction(+ : s) schedule(static) if (len > kPar)
    for (int64_t j = 0; j < len; j++) s += p[j];
    total += (float)s;
  }
  return Napi::Number::New(info.Env(), total);
}

// transpose(x, out, shape, perm): general N-d permutation (out = x.transpose(perm)).
Napi::Value Transpose(const Napi::CallbackInfo& info) {
  SignalGuard guard;  // OpenMP workers this region creates inherit the blocked mask (common.h)
  const float* x = f32(info[0]);
  float* o = f32(info[1]);
  auto shape = ints(info[2]), perm = ints(info[3]);
  int r = (int)shape.size();
  std::vector<int64_t> xs(r), od(r), os(r);
  int64_t acc = 1;
  for (int i = r - 1; i >= 0; i--) {
    xs[i] = acc;
    acc *= shape[i];
  }
  for (int i = 0; i < r; i++) {
    od[i] = shape[perm[i]];
    os[i] = xs[perm[i]];  // stride in x of output dim i
  }
  int64_t inner = od[r - 1], is = os[r - 1], rows = acc / (inner ? inner : 1);
#pragma omp parallel for schedule(static) if (acc > kPar)
  for (int64_t row = 0; row < rows; row++) {
    int64_t off = 0, rem = row;
    for (int i = r - 2; i >= 0; i--) {
      off += (rem % od[i]) * os[i];
      rem /= od[i];
    }
    float* q = o + row * inner;
    const float* p = x + off;
    for (int64_t j = 0; j < inner; j++) q[j] = p[j * is];
  }
  return info.Env().Undefined();
}

// slicePad(src, dst, srcShape, dstShape, offset): dst[i] = src[i + offset] where in range, else 0.
// Slice uses offset = begin (all in range); Pad uses offset = -before and a zero-filled dst.
Napi::Value SlicePad(const Napi::CallbackInfo& info) {
  SignalGuard guard;  // OpenMP workers this region creates inherit the blocked mask (common.h)
  const float* x = f32(info[0]);
  float* o = f32(info[1]);
  auto sd = ints(info[2]), dd = ints(info[3]), off = ints(info[4]);
  float fill = info[5].As<Napi::Number>().FloatValue();
  int r = (int)sd.size();
  std::vector<int64_t> ss(r);
  int64_t acc = 1, total = 1;
  for (int i = r - 1; i >= 0; i--) {
    ss[i] = acc;
    acc *= sd[i];
    total *= dd[i];
  }
  int64_t inner = dd[r - 1], rows = inner ? total / inner : 0;
#pragma omp parallel for schedule(static) if (total > kPar)
  for (int64_t row = 0; row < rows; row++) {
    int64_t rem = row, srcOff = 0;
    bool inside = true;
    for (int i = r - 2; i >= 0; i--) {
      int64_t q = rem % dd[i] + off[i];
      rem /= dd[i];
      if (q < 0 || q >= sd[i]) inside = false;
      srcOff += q * ss[i];
    }
    float* q = o + row * inner;
    if (!inside) {
      for (int64_t j = 0; j < inner; j++) q[j] = fill;
      continue;
    }
    int64_t o0 = off[r - 1];
    for (int64_t j = 0; j < inner; j++) {
      int64_t s = j + o0;
      q[j] = (s < 0 || s >= sd[r - 1]) ? fill : x[srcOff + s];
    }
  }
  return info.Env().Undefined();
}

// scaleShift(x, out, scale, shift, C[, relu]): out = x * scale[c] + shift[c] over the last axis
// (BatchNorm), then max(0, ·) when `relu` (BatchNorm + ReLU in one pass).
template <bool Relu>
void scaleShiftRows(const float* x, float* o, const float* sc, const float* sh, int64_t rows, int64_t C) {
#pragma omp parallel for schedule(static) if (rows * C > kPar)
  for (int64_t r = 0; r < rows; r++) {
    const float* p = x + r * C;
    float* q = o + r * C;
    for (int64_t c = 0; c < C; c++) {
      float v = p[c] * sc[c] + sh[c];
      q[c] = Relu ? reluOf(v) : v;
    }
  }
}

Napi::Value ScaleShift(const Napi::CallbackInfo& info) {
  SignalGuard guard;  // OpenMP workers this region creates inherit the blocked mask (common.h)
  const float* x = f32(info[0]);
  float* o = f32(info[1]);
  const float* sc = f32(info[2]);
  const float* sh = f32(info[3]);
  int64_t C = info[4].As<Napi::Number>().Int64Value();
  bool relu = info.Length() > 5 && info[5].ToBoolean().Value();
  int64_t n = (int64_t)f32len(info[1]);
  if (relu) scaleShiftRows<true>(x, o, sc, sh, n / C, C);
  else scaleShiftRows<false>(x, o, sc, sh, n / C, C);
  return info.Env().Undefined();
}

// tile(x, out, xShape, outShape): out[i] = x[i mod xShape] per axis.
Napi::Value Tile(const Napi::CallbackInfo& info) {
  SignalGuard guard;  // OpenMP workers this region creates inherit the blocked mask (common.h)
  const float* x = f32(info[0]);
  float* o = f32(info[1]);
  auto sd = ints(info[2]), dd = ints(info[3]);
  int r = (int)sd.size();
  std::vector<int64_t> ss(r);
  int64_t acc = 1, total = 1;
  for (int i = r - 1; i >= 0; i--) {
    ss[i] = acc;
    acc *= sd[i];
    total *= dd[i];
  }
  int64_t inner = dd[r - 1], last = sd[r - 1], rows = inner ? total / inner : 0;
#pragma omp parallel for schedule(static) if (total > kPar)
  for (int64_t row = 0; row < rows; row++) {
    int64_t rem = row, srcOff = 0;
    for (int i = r - 2; i >= 0; i--) {
      srcOff += (rem % dd[i] % sd[i]) * ss[i];
      rem /= dd[i];
    }
    float* q = o + row * inner;
    const float* p = x + srcOff;
    for (int64_t j = 0; j < inner; j += last) {
      int64_t n = inner - j < last ? inner - j : last;
      for (int64_t k = 0; k < n; k++) q[j + k] = p[k];
    }
  }
  return info.Env().Undefined();
}

// Per-channel sums over rows of a [rows, C] view, split across threads; double accumulators.
// Accumulates sum(f(x)) and sum(g(x)) for the two functions the caller's lambda returns.
template <typename F>
void channelSums(int64_t rows, int64_t C, double* s1, double* s2, F f) {
  int nt = omp_get_max_threads();
  std::vector<double> part((size_t)nt * 2 * C, 0.0);
#pragma omp parallel num_threads(nt) if (rows * C > kPar)
  {
    int t = omp_get_thread_num(), T = omp_get_num_threads();
    double* a = part.data() + (size_t)t * 2 * C;
    double* b = a + C;
    int64_t r0 = rows * t / T, r1 = rows * (t + 1) / T;
    std::vector<float> fa(C, 0.f), fb(C, 0.f);
    // Float partials per block of rows (vectorises), flushed into doubles to keep accuracy.
    for (int64_t r = r0; r < r1; r++) {
      f(r, fa.data(), fb.data());
      if (((r - r0) & 63) == 63 || r == r1 - 1) {
        for (int64_t c = 0; c < C; c++) {
          a[c] += fa[c];
          b[c] += fb[c];
          fa[c] = 0.f;
          fb[c] = 0.f;
        }
      }
    }
  }
  for (int64_t c = 0; c < C; c++) {
    s1[c] = 0;
    s2[c] = 0;
    for (int t = 0; t < nt; t++) {
      s1[c] += part[(size_t)t * 2 * C + c];
      s2[c] += part[(size_t)t * 2 * C + C + c];
    }
  }
}

// bnStats(x, mean, variance, C): batch statistics over all axes but the last (biased variance).
Napi::Value BnStats(const Napi::CallbackInfo& info) {
  SignalGuard guard;  // OpenMP workers this region creates inherit the blocked mask (common.h)
  const float* x = f32(info[0]);
  float* mean = f32(info[1]);
  float* var = f32(info[2]);
  int64_t C = info[3].As<Napi::Number>().Int64Value();
  int64_t rows = (int64_t)f32len(info[0]) / C;
  // Shift by the first row to keep E[x^2] - E[x]^2 well conditioned.
  std::vector<float> k(x, x + C);
  std::vector<double> s1(C), s2(C);
  channelSums(rows, C, s1.data(), s2.data(), [&](int64_t r, float* a, float* b) {
    const float* p = x + r * C;
    for (int64_t c = 0; c < C; c++) {
      float d = p[c] - k[c];
      a[c] += d;
      b[c] += d * d;
    }
  });
  for (int64_t c = 0; c < C; c++) {
    double m = s1[c] / rows;
    mean[c] = (float)(m + k[c]);
    double v = s2[c] / rows - m * m;
    var[c] = (float)(v > 0 ? v : 0);
  }
  return info.Env().Undefined();
}

// bnBackward(x, dy, mean, invstd, gamma, dx, dgamma, dbeta, C[, y]): BatchNorm training gradient
// including the paths through the batch mean and variance:
//   1. dbeta = sum(dy)   2. dgamma = sum(dy * xhat)   with xhat = (x - mean) * invstd
//   3. dx = gamma * invstd * (dy - dbeta / n - xhat * dgamma / n)
// With `y` (the output of a ReLU after the BatchNorm), dy is first taken through that ReLU as reluGrad
// does, element by element in both passes: the gradient of BatchNorm + ReLU without the ReLU's
// gradient array.
template <bool Relu>
void bnBackwardRows(const float* x, const float* dy, const float* y, const float* mean, const float* invstd, const float* gamma,
                    float* dx, float* dgamma, float* dbeta, int64_t rows, int64_t C) {
  auto grad = [&](int64_t i) { return Relu ? reluGradOf(dy[i], y[i]) : dy[i]; };
  std::vector<double> s1(C), s2(C);
  channelSums(rows, C, s1.data(), s2.data(), [&](int64_t r, float* a, float* b) {
    const float* p = x + r * C;
    for (int64_t c = 0; c < C; c++) {
      float g = grad(r * C + c);
      a[c] += g;
      b[c] += g * (p[c] - mean[c]);
    }
  });
  std::vector<float> k1(C), k2(C), k3(C);
  for (int64_t c = 0; c < C; c++) {
    dbeta[c] = (float)s1[c];
    dgamma[c] = (float)(s2[c] * invstd[c]);
    float gi = gamma[c] * invstd[c];
    // dx = gi * dy - gi * dbeta / n - (x - mean) * gi * invstd * dgamma / n
    k1[c] = gi;
    k2[c] = (float)(gi * s1[c] / rows);
    k3[c] = (float)(gi * invstd[c] * invstd[c] * s2[c] / rows);
  }
#pragma omp parallel for schedule(static) if (rows * C > kPar)
  for (int64_t r = 0; r < rows; r++) {
    const float* p = x + r * C;
    float* q = dx + r * C;
    for (int64_t c = 0; c < C; c++) q[c] = k1[c] * grad(r * C + c) - k2[c] - (p[c] - mean[c]) * k3[c];
  }
}

Napi::Value BnBackward(const Napi::CallbackInfo& info) {
  SignalGuard guard;  // OpenMP workers this region creates inherit the blocked mask (common.h)
  const float* x = f32(info[0]);
  const float* dy = f32(info[1]);
  const float* mean = f32(info[2]);
  const float* invstd = f32(info[3]);
  const float* gamma = f32(info[4]);
  float* dx = f32(info[5]);
  float* dgamma = f32(info[6]);
  float* dbeta = f32(info[7]);
  int64_t C = info[8].As<Napi::Number>().Int64Value();
  int64_t rows = (int64_t)f32len(info[0]) / C;
  if (info.Length() > 9 && info[9].IsTypedArray()) bnBackwardRows<true>(x, dy, f32(info[9]), mean, invstd, gamma, dx, dgamma, dbeta, rows, C);
  else bnBackwardRows<false>(x, dy, nullptr, mean, invstd, gamma, dx, dgamma, dbeta, rows, C);
  return info.Env().Undefined();
}

// reluGrad(dy, x, dx): dx = x > 0 ? dy : 0 (one pass instead of step + cast + multiply).
Napi::Value ReluGrad(const Napi::CallbackInfo& info) {
  SignalGuard guard;  // OpenMP workers this region creates inherit the blocked mask (common.h)
  const float* dy = f32(info[0]);
  const float* x = f32(info[1]);
  float* dx = f32(info[2]);
  int64_t n = (int64_t)f32len(info[2]);
#pragma omp parallel for schedule(static) if (n > kPar)
  for (int64_t i = 0; i < n; i++) dx[i] = reluGradOf(dy[i], x[i]);
  return info.Env().Undefined();
}

}  // namespace

void initElementwise(Napi::Env env, Napi::Object exports) {
  exports.Set("binary", Napi::Function::New(env, Binary));
  exports.Set("unary", Napi::Function::New(env, Unary));
  exports.Set("reduce", Napi::Function::New(env, Reduce));
  exports.Set("softmax", Napi::Function::New(env, Softmax));
  exports.Set("adam", Napi::Function::New(env, Adam));
  exports.Set("sumEach", Napi::Function::New(env, SumEach));
  exports.Set("transpose", Napi::Function::New(env, Transpose));
  exports.Set("slicePad", Napi::Function::New(env, SlicePad));
  exports.Set("tile", Napi::Function::New(env, Tile));
  exports.Set("bnStats", Napi::Function::New(env, BnStats));
  exports.Set("bnBackward", Napi::Function::New(env, BnBackward));
  exports.Set("reluGrad", Napi::Function::New(env, ReluGrad));
  exports.Set("scaleShift", Napi::Function::New(env, ScaleShift));
}

}  // namespace tsf
