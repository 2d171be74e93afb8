// The augmentation warp: lib/data/augment.ts's `projectiveResample` in C++, bit for bit.
//
// Each output pixel is sampled bilinearly from the source through a 3×3 matrix (fastai's affine and
// warp transforms composed). The JavaScript version costs about 100 ns a pixel in the data workers;
// this one does the same double-precision arithmetic in the same order (no FMA contraction, see
// binding.gyp), so both give identical float32 batches and either may run.
#include "image.h"
#include <cmath>
#include <cstdint>

namespace {

enum Pad { kZeros = 0, kBorder = 1, kReflection = 2 };

// Reflect a continuous pixel coordinate into [0, n - 1] (PyTorch `reflection`, align_corners=True).
double reflectCoord(double x, int n) {
  if (n == 1) return 0;
  const double span = n - 1;
  if (x >= 0 && x <= span) return x;
  const double period = 2 * span;
  double r = std::fmod(x, period);
  if (r < 0) r += period;
  return r > span ? period - r : r;
}

// Bilinear sample at pixel position (px, py) where taps outside the image count as 0.
void sampleZeros(const uint8_t* data, int W, int H, double px, double py, float* out) {
  const double x0 = std::floor(px), y0 = std::floor(py);
  const double fx = px - x0, fy = py - y0;
  double r = 0, g = 0, b = 0;
  for (int t = 0; t < 4; t++) {
    const double xi = x0 + (t & 1), yi = y0 + (t >> 1);
    const double wgt = ((t & 1) ? fx : 1 - fx) * ((t >> 1) ? fy : 1 - fy);
    if (wgt == 0 || xi < 0 || yi < 0 || xi >= W || yi >= H) continue;
    if (std::isnan(xi) || std::isnan(yi) || std::isnan(wgt)) {
      // A degenerate matrix: the JavaScript reads data[NaN] (undefined), so this tap is NaN.
      r = g = b = NAN;
      continue;
    }
    const int64_t p = (int64_t(yi) * W + int64_t(xi)) * 3;
    r += data[p] * wgt;
    g += data[p + 1] * wgt;
    b += data[p + 2] * wgt;
  }
  out[0] = float(r / 255);
  out[1] = float(g / 255);
  out[2] = float(b / 255);
}

// What `applyPost` (augment.ts) does after the resample, a row at a time while it is in cache:
// the lighting table (`lut`, 4,097 entries read at the nearest point), then (x - mean) · scale per
// channel. Cells next to 0 and 1, where the JavaScript computes the lighting exactly, are left
// as resampled and listed in `edges` (indices from the start of `out`) for it to finish.
struct Post {
  const float* lut = nullptr;  // null: no lighting
  const double* norm = nullptr;  // [m0, m1, m2, s0, s1, s2], null: no normalisation
  int32_t* edges = nullptr;
  int64_t nEdges = 0;
};

constexpr int kLutN = 4096;

void postRow(Post& post, float* row, int64_t n, int64_t base) {
  for (int64_t k = 0; k < n; k++) {
    double v = row[k];
    if (post.lut) {
      const int i = int(v * kLutN + 0.5);
      if (i < 8 || i > kLutN - 8) {
        post.edges[post.nEdges++] = int32_t(base + k);
        continue;
      }
      v = post.lut[i];
    }
    if (post.norm) row[k] = float((v - post.norm[k % 3]) * post.norm[3 + k % 3]);
    else row[k] = float(v);
  }
}

void warp(const uint8_t* data, int W, int H, const double* m, int oh, int ow, int pad, float* out, Post& post) {
  const bool projective = m[6] != 0 || m[7] != 0 || m[8] != 1;
  const double kx = (W - 1) / 2.0, ky = (H - 1) / 2.0;
  const double inv255 = 1.0 / 255;
  const double x0n = ow > 1 ? -1 : 0;
  const double stepX = ow > 1 ? 2.0 / (ow - 1) : 0;
  float* o = out;
  for (int i = 0; i < oh; i++) {
    const double y = oh > 1 ? -1 + (2.0 * i) / (oh - 1) : 0;
    // 1. output position -> source position in [-1, 1], stepped along the row.
    double ax = m[0] * x0n + m[1] * y + m[2];
    double ay = m[3] * x0n + m[4] * y + m[5];
    double az = m[6] * x0n + m[7] * y + m[8];
    const double dax = m[0] * stepX, day = m[3] * stepX, daz = m[6] * stepX;
    for (int j = 0; j < ow; j++, o += 3, ax += dax, ay += day, az += daz) {
      double sx = ax, sy = ay;
      if (projective) {
        sx /= az;
        sy /= az;
      }
      // 2. -> pixel coordinates, padded by the mode.
      double px = (sx + 1) * kx;
      double py = (sy + 1) * ky;
      if (pad == kZeros) {
        sampleZeros(data, W, H, px, py, o);
        continue;
      }
      if (pad == kReflection) {
        if (px < 0 || px > W - 1) px = reflectCoord(px, W);
        if (py < 0 || py > H - 1) py = reflectCoord(py, H);
      } else {
        px = px < 0 ? 0 : px > W - 1 ? W - 1 : px;
        py = py < 0 ? 0 : py > H - 1 ? H - 1 : py;
      }
      if (std::isnan(px) || std::isnan(py)) {  // a degenerate matrix: NaN, as the JavaScript gives
        o[0] = o[1] = o[2] = NAN;
        continue;
      }
      // 3. bilinear over the 4 neighbours (the last row/column repeats).
      const int xi = int(px), yi = int(py);
      const double fx = px - xi, fy = py - yi;
      const int64_t dx = xi < W - 1 ? 3 : 0;
      const int64_t dy = yi < H - 1 ? int64_t(W) * 3 : 0;
      const int64_t p = (int64_t(yi) * W + xi) * 3;
      const double w00 = (1 - fx) * (1 - fy), w01 = fx * (1 - fy), w10 = (1 - fx) * fy, w11 = fx * fy;
      const double r = data[p] * w00 + data[p + dx] * w01 + data[p + dy] * w10 + data[p + dy + dx] * w11;
      const double g = data[p + 1] * w00 + data[p + dx + 1] * w01 + data[p + dy + 1] * w10 + data[p + dy + dx + 1] * w11;
      const double b = data[p + 2] * w00 + data[p + dx + 2] * w01 + data[p + dy + 2] * w10 + data[p + dy + dx + 2] * w11;
      o[0] = float(r * inv255);
      o[1] = float(g * inv255);
      o[2] = float(b * inv255);
    }
    if (post.lut || post.norm) postRow(post, o - int64_t(ow) * 3, int64_t(ow) * 3, int64_t(i) * ow * 3);
  }
}

}  // namespace

namespace tsfimg {

// warp(src: Uint8Array, w, h, m: Float64Array(9), oh, ow, pad (0 zeros, 1 border, 2 reflection),
//      out: Float32Array, offset, lut: Float32Array(4097) | null, norm: Float64Array(6) | null,
//      edges: Int32Array | null) -> the number of edge cells listed in `edges` (from `offset`).
Napi::Value Warp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 12 || !info[0].IsTypedArray() || !info[3].IsTypedArray() || !info[7].IsTypedArray()) {
    Napi::TypeError::New(env, "warp(src, w, h, m, oh, ow, pad, out, offset, lut, norm, edges)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto src = info[0].As<Napi::Uint8Array>();
  const int w = info[1].As<Napi::Number>().Int32Value();
  const int h = info[2].As<Napi::Number>().Int32Value();
  auto m = info[3].As<Napi::Float64Array>();
  const int oh = info[4].As<Napi::Number>().Int32Value();
  const int ow = info[5].As<Napi::Number>().Int32Value();
  const int pad = info[6].As<Napi::Number>().Int32Value();
  auto out = info[7].As<Napi::Float32Array>();
  const int64_t offset = info[8].As<Napi::Number>().Int64Value();
  const size_t n = size_t(oh) * ow * 3;
  bool ok = w > 0 && h > 0 && oh > 0 && ow > 0 && pad >= 0 && pad <= 2 && m.ElementLength() == 9 &&
            src.ByteLength() == size_t(w) * h * 3 && offset >= 0 && size_t(offset) + n <= out.ElementLength();
  Post post;
  if (ok && info[9].IsTypedArray()) {
    auto lut = info[9].As<Napi::Float32Array>();
    auto edges = info[11].IsTypedArray() ? info[11].As<Napi::Int32Array>() : Napi::Int32Array();
    ok = lut.ElementLength() == kLutN + 1 && !edges.IsEmpty() && edges.ElementLength() >= n;
    if (ok) {
      post.lut = lut.Data();
      post.edges = edges.Data();
    }
  }
  if (ok && info[10].IsTypedArray()) {
    auto norm = info[10].As<Napi::Float64Array>();
    ok = norm.ElementLength() == 6;
    if (ok) post.norm = norm.Data();
  }
  if (!ok) {
    Napi::RangeError::New(env, "warp: sizes do not match the arrays").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  warp(src.Data(), w, h, m.Data(), oh, ow, pad, out.Data() + offset, post);
  return Napi::Number::New(env, double(post.nEdges));
}

}  // namespace tsfimg
