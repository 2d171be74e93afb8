/**
 * The upload page served at `/`: choose or drop an image (a text model: type or paste a text), see the
 * predicted class and the top probabilities as bars. Plain HTML + inline script (no CDN), talking to `POST predict`.
 */
import { escapeHtml } from "../display/display";
import { formatBytes } from "./errors";

/** The HTML of the upload page for a model with `vocab`, titled `title`; `text`: a text box sent as `{"text": ...}` instead of an image. */
export function uploadPage(opts: { title: string; vocab: string[]; maxBytes: number; topK: number; text?: boolean }): string {
  const classes = opts.vocab.length <= 12 ? opts.vocab.join(", ") : `${opts.vocab.slice(0, 12).join(", ")}, … (${opts.vocab.length} classes)`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(opts.title)}</title>
<style>
  body { font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
  h1 { font-size: 1.4rem; margin-bottom: .2rem; }
  .classes { color: #666; font-size: .9rem; margin-top: 0; }
  #drop { border: 2px dashed #999; border-radius: 8px; padding: 1.5rem; text-align: center; cursor: pointer; }
  #drop.over { border-color: #1f77b4; background: #eef5fb; }
  #preview { max-width: 100%; max-height: 16rem; display: none; margin: 1rem auto; }
  #label { font-size: 1.6rem; font-weight: 600; margin: 1rem 0 .2rem; min-height: 2rem; }
  #error { color: #b00020; white-space: pre-wrap; }
  .row { display: flex; align-items: center; gap: .5rem; margin: .2rem 0; font-size: .9rem; }
  .name { width: 9rem; text-align: right; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
  .track { flex: 1; background: #eee; height: 1rem; border-radius: 3px; }
  .bar { background: #1f77b4; height: 100%; border-radius: 3px; }
  .pct { width: 4rem; font-variant-numeric: tabular-nums; }
  .meta { color: #666; font-size: .8rem; }
</style>
</head>
<body>
<h1>${escapeHtml(opts.title)}</h1>
<p class="classes">Classes: ${escapeHtml(classes)}</p>
${
  opts.text
    ? `<form id="textform">
  <textarea id="text" name="text" rows="6" style="width: 100%" placeholder="Type or paste a text"></textarea>
  <button type="submit">Predict</button>
</form>`
    : `<label id="drop" for="file">
  <div>Drop an image here, or click to choose one (up to ${formatBytes(opts.maxBytes)})</div>
  <input type="file" id="file" name="file" accept="image/*" hidden>
</label>
<img id="preview" alt="the uploaded image">`
}
<div id="result" data-state="idle">
  <div id="label"></div>
  <div id="bars"></div>
  <div id="error"></div>
  <div class="meta" id="meta"></div>
</div>
<script>
(function () {
  var TOPK = ${JSON.stringify(opts.topK)}, TEXT = ${JSON.stringify(!!opts.text)};
  var drop = document.getElementById("drop"), input = document.getElementById("file");
  var preview = document.getElementById("preview"), result = document.getElementById("result");
  var labelEl = document.getElementById("label"), bars = document.getElementById("bars");
  var errorEl = document.getElementById("error"), meta = document.getElementById("meta");

  function clear() { labelEl.textContent = ""; bars.textContent = ""; errorEl.textContent = ""; meta.textContent = ""; }

  function show(r) {
    labelEl.textContent = r.label;
    r.top.forEach(function (t) {
      var row = document.createElement("div"); row.className = "row";
      var name = document.createElement("span"); name.className = "name"; name.textContent = t.label; name.title = t.label;
      var track = document.createElement("span"); track.className = "track";
      var bar = document.createElement("span"); bar.className = "bar"; bar.style.display = "block";
      bar.style.width = (100 * t.probability).toFixed(1) + "%";
      track.appendChild(bar);
      var pct = document.createElement("span"); pct.className = "pct"; pct.textContent = (100 * t.probability).toFixed(1) + "%";
      row.appendChild(name); row.appendChild(track); row.appendChild(pct); bars.appendChild(row);
    });
    meta.textContent = "predicted in " + r.ms.toFixed(1) + " ms";
  }

  function send(file) {
    if (!file) return;
    preview.src = URL.createObjectURL(file); preview.style.display = "block";
    var form = new FormData(); form.append("file", file, file.name);
    post({ method: "POST", body: form });
  }

  function post(request) {
    clear();
    result.dataset.state = "busy";
    labelEl.textContent = "…";
    fetch("predict?topk=" + TOPK, request)
      .then(function (res) { return res.json().then(function (body) { return { ok: res.ok, status: res.status, body: body }; }); })
      .then(function (r) {
        clear();
        if (!r.ok) { errorEl.textContent = "Error " + r.status + ": " + (r.body && r.body.error || "unknown"); result.dataset.state = "error"; return; }
        show(r.body); result.dataset.state = "done";
      })
      .catch(function (e) { clear(); errorEl.textContent = String(e); result.dataset.state = "error"; });
  }

  if (TEXT) {
    document.getElementById("textform").addEventListener("submit", function (e) {
      e.preventDefault();
      post({ method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ text: document.getElementById("text").value }) });
    });
    return;
  }
  input.addEventListener("change", function () { send(input.files[0]); input.value = ""; });
  ["dragenter", "dragover"].forEach(function (ev) {
    drop.addEventListener(ev, function (e) { e.preventDefault(); drop.classList.add("over"); });
  });
  ["dragleave", "drop"].forEach(function (ev) {
    drop.addEventListener(ev, function (e) { e.preventDefault(); drop.classList.remove("over"); });
  });
  drop.addEventListener("drop", function (e) { if (e.dataTransfer && e.dataTransfer.files.length) send(e.dataTransfer.files[0]); });
})();
</script>
</body>
</html>
`;
}
