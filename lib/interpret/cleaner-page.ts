/**
 * The HTML of the image cleaner: a grid of thumbnails, each with a keep / delete / move-to-class
 * choice, and a panel that turns the choices into a ready-to-run `await cleaner.apply([...]);`
 * line (textarea + copy button) and a downloadable `cleaner-decisions.json`.
 *
 * Why this shape: tslab has no comms, so ipywidgets cannot send the choices back to the kernel.
 * The page therefore writes them as code the user pastes into the next cell (or as a file the
 * user downloads and passes to `apply`). It needs a trusted notebook: untrusted outputs lose
 * their scripts, and the page then says so instead of silently doing nothing.
 */
import { escapeHtml } from "../display/display";

/** One thumbnail of the page. */
export interface CleanerCard {
  /** The path written into the decisions (relative to the dataset root when inside it). */
  path: string;
  /** PNG bytes of the thumbnail. */
  png: Buffer;
  /** Short caption, e.g. `loss 2.31 · pred dog`. */
  caption: string;
}

/** What the page shows. */
export interface CleanerPageSpec {
  /** Unique element id of this view. */
  id: string;
  /** Heading, e.g. `cat — train — 20 of 57 images, largest loss first`. */
  heading: string;
  /** The class these images are labelled as (not offered as a move target). */
  category: string;
  vocab: readonly string[];
  cards: readonly CleanerCard[];
  /** Name of the cleaner variable in the user's notebook, used in the generated code line. */
  varName: string;
  /** Thumbnail side in pixels. */
  size: number;
}


/** JSON safe to place inside a `<script>` element (no `</script>` or `<!--` can close it). */
function scriptJson(v: unknown): string {
  return JSON.stringify(v).replace(/</g, "\\u003c").replace(/>/g, "\\u003e").replace(/&/g, "\\u0026");
}

const STYLE = `
.tsc{font-family:sans-serif;font-size:13px}
.tsc-grid{display:flex;flex-wrap:wrap;gap:8px}
.tsc-card{border:3px solid #ccc;border-radius:4px;padding:4px;text-align:center}
.tsc-card.tsc-delete{border-color:#d62728;opacity:.6}
.tsc-card.tsc-move{border-color:#ff7f0e}
.tsc-card img{display:block;margin:0 auto 4px;image-rendering:auto}
.tsc-cap{font-size:11px;color:#444;margin-bottom:3px}
.tsc-card select{max-width:100%}
.tsc-panel{margin-top:10px}
.tsc-panel textarea{width:100%;font-family:monospace;font-size:12px}
.tsc-warn{color:#b00}
`;

/** The whole HTML of one cleaner view (style, cards, panel and the script that fills the panel). */
export function cleanerHtml(spec: CleanerPageSpec): string {
  const { id, vocab, category, cards, size } = spec;
  const others = vocab.filter((v) => v !== category);
  const options = [
    `<option value="keep" selected>keep</option>`,
    `<option value="delete">delete</option>`,
    ...others.map((v) => `<option value="move:${escapeHtml(v)}">move to ${escapeHtml(v)}</option>`),
  ].join("");
  const cardHtml = cards
    .map(
      (c, i) =>
        `<div class="tsc-card" data-path="${escapeHtml(c.path)}" data-i="${i}">` +
        `<img width="${size}" height="${size}" style="object-fit:contain" alt="${escapeHtml(c.path)}" title="${escapeHtml(c.path)}" ` +
        `src="data:image/png;base64,${c.png.toString("base64")}">` +
        `<div class="tsc-cap">${escapeHtml(c.caption)}</div>` +
        `<select aria-label="decision for ${escapeHtml(c.path)}">${options}</select></div>`,
    )
    .join("");
  return `<div class="tsc" id="${escapeHtml(id)}" data-decisions="[]">
<style>${STYLE}</style>
<div class="tsc-head"><b>${escapeHtml(spec.heading)}</b></div>
<div class="tsc-grid">${cardHtml}</div>
<div class="tsc-panel">
<div class="tsc-status tsc-warn">The choices need this notebook's scripts: trust the notebook (File → Trust Notebook) and run the cell again.</div>
<textarea class="tsc-code" rows="4" readonly></textarea>
<button type="button" class="tsc-copy">Copy code</button>
<a class="tsc-download" download="cleaner-decisions.json" href="data:application/json,%5B%5D">Download cleaner-decisions.json</a>
</div>
<script>${pageScript(id, spec.varName)}</script>
</div>`;
}

/** The page's script: read every select, keep the decisions in the textarea, attribute and link. */
function pageScript(id: string, varName: string): string {
  // Plain ES5 so it runs in any notebook front end; no globals besides what the DOM gives.
  // Front ends differ in when a script runs: JupyterLab may run it before the output is attached
  // (document.currentScript still sits inside it), classic Notebook after (found by id). Retry briefly otherwise.
  return `(function(){
var ID=${scriptJson(id)},me=document.currentScript;
function find(){var r=me&&me.closest?me.closest('.tsc'):null;return r&&r.id===ID?r:document.getElementById(ID);}
var tries=0;(function wait(){var r=find();if(r)init(r);else if(++tries<100)setTimeout(wait,50);})();
function init(root){
var VAR=${scriptJson(varName)};
var ta=root.querySelector('.tsc-code'),status=root.querySelector('.tsc-status'),
    link=root.querySelector('.tsc-download'),btn=root.querySelector('.tsc-copy');
function collect(){
  var out=[],cards=root.querySelectorAll('.tsc-card');
  for(var i=0;i<cards.length;i++){
    var card=cards[i],v=card.querySelector('select').value,p=card.getAttribute('data-path');
    var kind=v==='delete'?'delete':(v.indexOf('move:')===0?'move':'keep');
    card.className='tsc-card tsc-'+kind;
    if(kind==='delete')out.push({path:p,action:'delete'});
    else if(kind==='move')out.push({path:p,action:'move',to:v.slice(5)});
  }
  return out;
}
function update(){
  var d=collect(),json=JSON.stringify(d);
  root.setAttribute('data-decisions',json);
  ta.value=d.length?('await '+VAR+'.apply('+JSON.stringify(d,null,1).replace(/\\n\\s*/g,' ')+');'):'// no changes chosen: every image is kept';
  link.setAttribute('href','data:application/json,'+encodeURIComponent(json));
  var nd=0,nm=0;for(var i=0;i<d.length;i++){if(d[i].action==='delete')nd++;else nm++;}
  status.className='tsc-status';
  status.textContent=nd+' to delete, '+nm+' to move. Copy the line below into the next cell and run it.';
}
root.addEventListener('change',update);
btn.addEventListener('click',function(){
  ta.focus();ta.select();
  var done=function(){btn.textContent='Copied';};
  try{if(navigator.clipboard&&navigator.clipboard.writeText){navigator.clipboard.writeText(ta.value).then(done,function(){document.execCommand('copy');done();});return;}}catch(e){}
  try{document.execCommand('copy');done();}catch(e){btn.textContent='Select the text and copy it';}
});
update();
}
})();`;
}
