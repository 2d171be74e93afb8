// The JPEG fast path: libjpeg-turbo decoding straight to 8-bit RGB, with DCT scaling when
// the target is at most half the size of the region it comes from (PIL's `draft`), then one
// triangle-filter resample of a box of the decoded image to the output size (PIL's BILINEAR,
// antialiased when shrinking).
//
// Why: libvips (through sharp) spends about 1.1 ms of fixed cost per image on this machine for a
// 500×375 JPEG that libjpeg decodes in 0.19 ms, and sharp 0.35 never uses DCT scaling after a
// crop or for a shrink between 2 and 3 (lesson 1: crop 375 px, resize to 160).
//
// Only plain JPEGs take this path: 1 or 3 components, no ICC profile, no EXIF orientation other
// than 1. `jpegHeader` says why a file is refused; the caller then decodes it with sharp. A libjpeg
// warning (a truncated file, a bad marker) also refuses the file, so sharp's errors stay the ones
// users see.
#include "image.h"
#include <csetjmp>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <cmath>
#include <string>
#include <vector>
#include <algorithm>
extern "C" {
#include <jpeglib.h>
}

namespace {

struct ErrorMgr {
  jpeg_error_mgr pub;
  jmp_buf jump;
  bool warned;
  char message[JMSG_LENGTH_MAX];
};

void onError(j_common_ptr c) {
  ErrorMgr* e = reinterpret_cast<ErrorMgr*>(c->err);
  (*c->err->format_message)(c, e->message);
  longjmp(e->jump, 1);
}

void onMessage(j_common_ptr c, int level) {
  ErrorMgr* e = reinterpret_cast<ErrorMgr*>(c->err);
  if (level < 0 && !e->warned) {
    e->warned = true;
    (*c->err->format_message)(c, e->message);
  }
}

// Route libjpeg's errors to `onError` (a longjmp to the caller's setjmp) and keep its first warning.
void useErrors(jpeg_decompress_struct& c, ErrorMgr& err) {
  c.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = onError;
  err.pub.emit_message = onMessage;
  err.warned = false;
}

uint32_t readU16(const uint8_t* p, bool le) { return le ? (p[0] | p[1] << 8) : (p[0] << 8 | p[1]); }
uint32_t readU32(const uint8_t* p, bool le) {
  return le ? (p[0] | p[1] << 8 | p[2] << 16 | uint32_t(p[3]) << 24) : (uint32_t(p[0]) << 24 | p[1] << 16 | p[2] << 8 | p[3]);
}

// EXIF orientation from an APP1 segment: 0 when absent, -1 when the segment cannot be read.
int exifOrientation(const uint8_t* d, size_t n) {
  if (n < 14 || std::memcmp(d, "Exif\0\0", 6) != 0) return 0;
  const uint8_t* t = d + 6;
  size_t tn = n - 6;
  bool le;
  if (t[0] == 'I' && t[1] == 'I') le = true;
  else if (t[0] == 'M' && t[1] == 'M') le = false;
  else return -1;
  uint32_t ifd = readU32(t + 4, le);
  if (ifd > tn || tn - ifd < 2) return -1;
  uint32_t count = readU16(t + ifd, le);
  if ((tn - ifd - 2) / 12 < count) return -1;
  for (uint32_t i = 0; i < count; i++) {
    const uint8_t* e = t + ifd + 2 + 12 * i;
    if (readU16(e, le) == 0x0112) return int(readU16(e + 8, le));
  }
  return 0;
}

struct Header {
  int width = 0, height = 0, components = 0;
  std::string refuse;  // empty when the fast path can decode it
};

// Read the header of `buf` and decide whether the fast path applies.
Header readHeader(const uint8_t* buf, size_t len) {
  Header h;
  jpeg_decompress_struct c;
  ErrorMgr err;
  useErrors(c, err);
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&c);
    Header bad;
    bad.refuse = std::string("libjpeg: ") + err.message;
    return bad;
  }
  jpeg_create_decompress(&c);
  jpeg_save_markers(&c, JPEG_APP0 + 1, 0xffff);
  jpeg_save_markers(&c, JPEG_APP0 + 2, 0xffff);
  jpeg_mem_src(&c, buf, len);
  jpeg_read_header(&c, TRUE);
  h.width = int(c.image_width);
  h.height = int(c.image_height);
  h.components = c.num_components;
  if (!((c.num_components == 3 && (c.jpeg_color_space == JCS_YCbCr || c.jpeg_color_space == JCS_RGB)) ||
        (c.num_components == 1 && c.jpeg_color_space == JCS_GRAYSCALE))) {
    h.refuse = "colour space " + std::to_string(int(c.jpeg_color_space)) + " with " + std::to_string(c.num_components) + " components";
  }
  for (jpeg_saved_marker_ptr m = c.marker_list; m && h.refuse.empty(); m = m->next) {
    if (m->marker == JPEG_APP0 + 2 && m->data_length >= 12 && std::memcmp(m->data, "ICC_PROFILE", 11) == 0) {
      h.refuse = "ICC profile";
    } else if (m->marker == JPEG_APP0 + 1) {
      int o = exifOrientation(m->data, m->data_length);
      if (o < 0) h.refuse = "unreadable EXIF";
      else if (o > 1) h.refuse = "EXIF orientation " + std::to_string(o);
    }
  }
  if (err.warned && h.refuse.empty()) h.refuse = std::string("libjpeg: ") + err.message;
  jpeg_destroy_decompress(&c);
  return h;
}

// One axis of a triangle-filter resample: for each output index, its first input index, how many
// inputs it reads, and their normalised weights (`taps` slots per output).
struct Axis {
  int taps = 0;
  std::vector<int> first, count;
  std::vector<float> weights;
};

// The filter of a box [b0, b1) resampled to `out` pixels, and the inputs output i may read.
// 1. scale = (b1 - b0) / out; the filter widens to `scale` input pixels when shrinking (fs).
// 2. output i is centred at b0 + (i + 0.5)·scale in input coordinates;
// 3. input pixel j (centre j + 0.5) weighs max(0, 1 - |j + 0.5 - centre| / fs), j clipped to
//    [0, n); the weights are divided by their sum (when all are 0, the nearest pixel alone).
struct Filter {
  double b0, scale, fs;
  int taps;
  Filter(double b0_, double b1, int out) : b0(b0_), scale((b1 - b0_) / out), fs(std::max(scale, 1.0)), taps(int(std::ceil(fs)) * 2 + 1) {}
  double centre(int i) const { return b0 + (i + 0.5) * scale; }
  // The inputs [lo, hi] that may weigh on a centre, within [0, n) (hi < lo: none).
  void range(int n, double c, int& lo, int& hi) const {
    lo = std::max(0, int(std::floor(c - fs - 0.5)) + 1);
    hi = std::min(std::min(n - 1, int(std::ceil(c + fs - 0.5)) - 1), lo + taps - 1);
  }
  static int nearest(int n, double c) { return std::min(n - 1, std::max(0, int(std::floor(c)))); }
};

Axis makeAxis(int n, double b0, double b1, int out) {
  Axis a;
  const Filter f(b0, b1, out);
  const double fs = f.fs;
  a.taps = f.taps;
  a.first.resize(out);
  a.count.resize(out);
  a.weights.assign(size_t(out) * a.taps, 0.0f);
  std::vector<double> v(a.taps);
  for (int i = 0; i < out; i++) {
    const double centre = f.centre(i);
    int lo, hi;
    f.range(n, centre, lo, hi);
    double sum = 0;
    int used = 0;  // inputs up to the last one with a weight
    for (int j = lo; j <= hi; j++) {
      v[j - lo] = std::max(0.0, 1.0 - std::fabs(j + 0.5 - centre) / fs);
      sum += v[j - lo];
      if (v[j - lo] > 0) used = j - lo + 1;
    }
    if (sum <= 0) {  // a box outside the image: the nearest edge pixel
      lo = Filter::nearest(n, centre);
      v[0] = sum = 1.0;
      used = 1;
    }
    a.first[i] = lo;
    a.count[i] = used;
    float* w = &a.weights[size_t(i) * a.taps];
    for (int k = 0; k < used; k++) w[k] = float(v[k] / sum);
  }
  return a;
}

inline uint8_t toByte(float v) { return uint8_t(std::min(255.0f, std::max(0.0f, v + 0.5f))); }

// Resample an RGB image `src` (width w, of which the first `srcRows` rows are decoded) to `out`
// (ow × oh × 3) with the axes above: horizontal pass first, in float, then vertical, a whole
// row at a time. Every input row read is below `srcRows` (`last` in runJob).
void resample(const uint8_t* src, int w, int srcRows, const Axis& ax, const Axis& ay, uint8_t* out, int ow, int oh) {
  const int y0 = ay.first.front();
  int y1 = y0;
  for (int j = 0; j < oh; j++) y1 = std::max(y1, ay.first[j] + ay.count[j]);
  y1 = std::min(y1, srcRows);
  const size_t row = size_t(ow) * 3;
  std::vector<float> tmp(size_t(y1 - y0) * row);
  for (int y = y0; y < y1; y++) {
    const uint8_t* s = src + size_t(y) * w * 3;
    float* t = &tmp[size_t(y - y0) * row];
    for (int i = 0; i < ow; i++) {
      const float* wt = &ax.weights[size_t(i) * ax.taps];
      const uint8_t* p = s + size_t(ax.first[i]) * 3;
      float a0 = 0, a1 = 0, a2 = 0;
      for (int k = 0, n = ax.count[i]; k < n; k++) {
        a0 += wt[k] * p[3 * k];
        a1 += wt[k] * p[3 * k + 1];
        a2 += wt[k] * p[3 * k + 2];
      }
      t[3 * i] = a0;
      t[3 * i + 1] = a1;
      t[3 * i + 2] = a2;
    }
  }
  std::vector<float> acc(row);
  for (int j = 0; j < oh; j++) {
    const float* wt = &ay.weights[size_t(j) * ay.taps];
    std::fill(acc.begin(), acc.end(), 0.0f);
    for (int k = 0, n = ay.count[j]; k < n; k++) {
      const float wk = wt[k];
      const float* t = &tmp[size_t(ay.first[j] + k - y0) * row];
      for (size_t x = 0; x < row; x++) acc[x] += wk * t[x];
    }
    uint8_t* o = out + size_t(j) * row;
    for (size_t x = 0; x < row; x++) o[x] = toByte(acc[x]);
  }
}

struct Job {
  // inputs
  const uint8_t* buf = nullptr;
  size_t len = 0;
  double box[4] = {0, 0, 0, 0};  // x0, y0, x1, y1 in full-size pixels
  int ow = 0, oh = 0;
  bool allowScale = true;
  uint8_t* out = nullptr;
  // results
  int scaleNum = 8;
  std::string refuse;
};

// The input rows [0, n) that `makeAxis(n, b0, b1, out)` reads, without allocating (it runs between
// setjmp and a possible longjmp, where nothing with a destructor may live). Centres grow with i, and
// so do both ends of a range: the last output reads furthest.
int rowsRead(int n, double b0, double b1, int out) {
  const Filter f(b0, b1, out);
  const double c = f.centre(out - 1);
  int lo, hi;
  f.range(n, c, lo, hi);
  return std::min(n, std::max(hi, Filter::nearest(n, c)) + 1);
}

// What `scan` decoded: rows [0, last) of the w × h RGB image at DCT scale 1/d (malloc'ed).
struct Scan {
  uint8_t* pixels = nullptr;
  int W = 0, H = 0, w = 0, h = 0, last = 0, d = 1;
};

// The libjpeg part of `runJob`. Only plain data lives in this frame, as libjpeg's errors longjmp
// back to it. False (with `job.refuse` set) on any libjpeg error or warning.
bool scan(Job& job, Scan& s) {
  jpeg_decompress_struct c;
  ErrorMgr err;
  useErrors(c, err);
  uint8_t* volatile pixels = nullptr;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&c);
    free(pixels);
    job.refuse = std::string("libjpeg: ") + err.message;
    return false;
  }
  jpeg_create_decompress(&c);
  jpeg_mem_src(&c, job.buf, job.len);
  jpeg_read_header(&c, TRUE);
  s.W = int(c.image_width);
  s.H = int(c.image_height);
  // DCT scaling: the largest reduction d in {8, 4, 2} that keeps the box at least the output size.
  const double bw = job.box[2] - job.box[0], bh = job.box[3] - job.box[1];
  s.d = 1;
  if (job.allowScale) {
    for (int cand : {8, 4, 2}) {
      if (bw / cand >= job.ow && bh / cand >= job.oh) {
        s.d = cand;
        break;
      }
    }
  }
  c.scale_num = 8 / s.d;
  c.scale_denom = 8;
  c.out_color_space = JCS_RGB;
  jpeg_start_decompress(&c);
  s.w = int(c.output_width);
  s.h = int(c.output_height);
  const double sy = double(s.h) / s.H;
  s.last = rowsRead(s.h, job.box[1] * sy, job.box[3] * sy, job.oh);
  pixels = static_cast<uint8_t*>(malloc(size_t(s.w) * s.last * 3));
  if (!pixels) {
    jpeg_destroy_decompress(&c);
    job.refuse = "out of memory";
    return false;
  }
  while (int(c.output_scanline) < s.last) {
    JSAMPROW row = pixels + size_t(c.output_scanline) * s.w * 3;
    jpeg_read_scanlines(&c, &row, 1);
  }
  if (int(c.output_scanline) == s.h) jpeg_finish_decompress(&c);
  else jpeg_abort_decompress(&c);
  const bool warned = err.warned;
  jpeg_destroy_decompress(&c);
  if (warned) {
    free(pixels);
    job.refuse = std::string("libjpeg: ") + err.message;
    return false;
  }
  s.pixels = pixels;
  return true;
}

// Decode `job.buf` and resample its box to `job.out`. Sets `job.refuse` instead on any libjpeg
// error or warning.
void runJob(Job& job) {
  Scan s;
  if (!scan(job, s)) return;
  job.scaleNum = 8 / s.d;
  const int bx = int(job.box[0]), by = int(job.box[1]);
  if (s.d == 1 && bx == job.box[0] && by == job.box[1] && bx >= 0 && by >= 0 && job.box[2] - bx == job.ow &&
      job.box[3] - by == job.oh && bx + job.ow <= s.w && by + job.oh <= s.last) {
    // A crop at full size inside the image: the resample would weigh each pixel by 1, so copy the rows.
    for (int j = 0; j < job.oh; j++) {
      std::memcpy(job.out + size_t(j) * job.ow * 3, s.pixels + (size_t(by + j) * s.w + bx) * 3, size_t(job.ow) * 3);
    }
  } else {
    const double sx = double(s.w) / s.W, sy = double(s.h) / s.H;
    Axis ax = makeAxis(s.w, job.box[0] * sx, job.box[2] * sx, job.ow);
    Axis ay = makeAxis(s.h, job.box[1] * sy, job.box[3] * sy, job.oh);
    resample(s.pixels, s.w, s.last, ax, ay, job.out, job.ow, job.oh);
  }
  free(s.pixels);
}

class DecodeWorker : public Napi::AsyncWorker {
 public:
  DecodeWorker(Napi::Env env, Napi::Uint8Array input, Napi::Uint8Array output, Job job)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), job_(job) {
    inputRef_ = Napi::Persistent(input);
    outputRef_ = Napi::Persistent(output);
  }
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override { runJob(job_); }
  void OnOK() override {
    Napi::Env env = Env();
    if (job_.refuse.empty()) deferred_.Resolve(Napi::Number::New(env, job_.scaleNum));
    else deferred_.Resolve(Napi::String::New(env, job_.refuse));
  }

 private:
  Napi::Promise::Deferred deferred_;
  Napi::Reference<Napi::Uint8Array> inputRef_, outputRef_;
  Job job_;
};

// A box argument: a Float64Array [x0, y0, x1, y1] of finite pixel coordinates (within ±10⁷), not empty.
bool readBox(const Napi::Value& v, double box[4]) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) return false;
  auto a = v.As<Napi::Float64Array>();
  if (a.ElementLength() != 4) return false;
  for (int k = 0; k < 4; k++) {
    box[k] = a[k];
    if (!std::isfinite(box[k]) || std::fabs(box[k]) > 1e7) return false;
  }
  return box[2] > box[0] && box[3] > box[1];
}

}  // namespace

namespace tsfimg {

Napi::Value JpegHeader(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray()) {
    Napi::TypeError::New(env, "jpegHeader(buf: Uint8Array)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto buf = info[0].As<Napi::Uint8Array>();
  Header h = readHeader(buf.Data(), buf.ByteLength());
  Napi::Object o = Napi::Object::New(env);
  o.Set("width", h.width);
  o.Set("height", h.height);
  o.Set("components", h.components);
  if (!h.refuse.empty()) o.Set("refuse", h.refuse);
  return o;
}

// jpegDecode(buf, out, box: Float64Array [x0, y0, x1, y1], ow, oh, allowScale) -> Promise<number | string>:
// the DCT scale numerator used (out of 8), or why the file was refused.
Napi::Value JpegDecode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 6 || !info[0].IsTypedArray() || !info[1].IsTypedArray() || !info[2].IsTypedArray()) {
    Napi::TypeError::New(env, "jpegDecode(buf, out, box, ow, oh, allowScale)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto input = info[0].As<Napi::Uint8Array>();
  auto output = info[1].As<Napi::Uint8Array>();
  Job job;
  job.buf = input.Data();
  job.len = input.ByteLength();
  job.ow = info[3].As<Napi::Number>().Int32Value();
  job.oh = info[4].As<Napi::Number>().Int32Value();
  job.allowScale = info[5].ToBoolean().Value();
  job.out = output.Data();
  if (job.ow <= 0 || job.oh <= 0 || output.ByteLength() != size_t(job.ow) * job.oh * 3 || !readBox(info[2], job.box)) {
    Napi::RangeError::New(env, "jpegDecode: out must hold ow*oh*3 bytes and the box be a Float64Array [x0, y0, x1, y1], finite, not empty")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto* worker = new DecodeWorker(env, input, output, job);
  Napi::Promise p = worker->Promise();
  worker->Queue();
  return p;
}

// resample(src, w, h, box, out, ow, oh): the resample alone, synchronously (for tests).
Napi::Value Resample(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 7 || !info[0].IsTypedArray() || !info[4].IsTypedArray()) {
    Napi::TypeError::New(env, "resample(src, w, h, box, out, ow, oh)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto src = info[0].As<Napi::Uint8Array>();
  int w = info[1].As<Napi::Number>().Int32Value();
  int h = info[2].As<Napi::Number>().Int32Value();
  double box[4];
  auto out = info[4].As<Napi::Uint8Array>();
  int ow = info[5].As<Napi::Number>().Int32Value();
  int oh = info[6].As<Napi::Number>().Int32Value();
  if (w <= 0 || h <= 0 || ow <= 0 || oh <= 0 || src.ByteLength() != size_t(w) * h * 3 ||
      out.ByteLength() != size_t(ow) * oh * 3 || !readBox(info[3], box)) {
    Napi::RangeError::New(env, "resample: sizes do not match the arrays, or the box is empty").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Axis ax = makeAxis(w, box[0], box[2], ow);
  Axis ay = makeAxis(h, box[1], box[3], oh);
  resample(src.Data(), w, h, ax, ay, out.Data(), ow, oh);
  return env.Undefined();
}

}  // namespace tsfimg
