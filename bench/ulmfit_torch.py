"""PyTorch reference for notebooks/18_text_ulmfit.ipynb: ULMFiT with few labels (the book's chapter 10),
the same recipe on the same tokens, without fastai (which is not installable here).

The tokens come from the lesson's own pipeline (wink-tokenizer and fastai's rules have no Python port):
    node dist/bench/ulmfit-data.js --out out/ulmfit-data.json
    /usr/bin/python3 bench/ulmfit_torch.py out/ulmfit-data.json checkpoints/english-awd-lstm-small.safetensors [--seeds 0 1 2]

What is ported from fastai 2.7 (the AWD-LSTM modules themselves are bench/awd_lstm_torch.py's):
  - LMDataLoader: the documents shuffled each epoch and concatenated into one stream, rotated by a random offset
    below seq_len (tsfast's addition, so the cuts move), cut into bs rows read seq_len tokens at a time;
  - SortedDL (shuffle_fn: random order, sorted by length inside chunks of 50 batches, longest batch first, the
    middle batches shuffled; validation longest first) and pad_input_chunk (whole seq_len chunks of padding
    first, then the text, then the remainder);
  - get_language_model / get_text_classifier with fastai's configs scaled by drop_mult, PoolingLinearClassifier
    (masked concat pool, then LinBnDrop 3*emb -> 50 -> classes), match_embeds for the pretrained LM;
  - the learners: awd_lstm_lm_split / awd_lstm_clas_split parameter groups, freeze_to (the optimizer state
    cleared), fit_one_cycle (AdamW betas (mom, 0.99) with mom 0.95 -> 0.85 -> 0.95, eps 1e-5, wd 0.01 decoupled,
    none on the decoder's and BatchNorm's biases, as fastai's wd_bn_bias=False; lr from lr_max/25 up over the
    first 25 %, down to lr_max/1e5, cosine; slice(a, b) spread geometrically over the groups),
    ModelResetter, RNNRegularizer (alpha 2 * out^2 mean + beta 1 * (raw[t+1] - raw[t])^2 mean, added to the
    loss the gradients come from while training), CrossEntropyLossFlat;
  - save_encoder / load_encoder (the encoder's state dict handed from the LM to the classifier).
The classifier from scratch is the same model, schedule and epochs without the LM stage and the encoder.

Prints one JSON line per seed: {"seed", "lm_accuracy", "lm_perplexity", "pretrained", "scratch", "seconds"} and a
summary line with the minimum over seeds of each and of the margin pretrained - scratch, and the validation accuracy
of a bag-of-words baseline on the same labelled texts (multinomial naive Bayes over the token ids, `naive_bayes`).
"""
import argparse
import json
import math
import os
import struct
import sys
import time
import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from awd_lstm_torch import AWD_LSTM, LinearDecoder, SentenceEncoder, masked_concat_pool, read_safetensors  # noqa: E402

warnings.filterwarnings("ignore", message=".*not part of single contiguous chunk.*")

# fastai's awd_lstm_lm_config / awd_lstm_clas_config dropouts (the sizes come from the pretrained file)
LM_DROPS = dict(output_p=0.1, hidden_p=0.15, input_p=0.25, embed_p=0.02, weight_p=0.2)
CLAS_DROPS = dict(output_p=0.4, hidden_p=0.3, input_p=0.4, embed_p=0.05, weight_p=0.5)


# ---------------------------------------------------------------- data

class LMLoader:
    """fastai's LMDataLoader over id lists (see the module note)."""

    def __init__(self, docs, bs, seq_len, shuffle, gen):
        self.docs = [torch.tensor(d, dtype=torch.long) for d in docs]
        self.bs, self.seq_len, self.shuffle, self.gen = bs, seq_len, shuffle, gen
        self.total = sum(len(d) for d in self.docs)
        self.bl = (self.total - 1) // bs * bs // bs
        self.n_batches = math.ceil(self.bl / seq_len)

    def __len__(self):
        return self.n_batches

    def __iter__(self):
        order = torch.randperm(len(self.docs), generator=self.gen).tolist() if self.shuffle else range(len(self.docs))
        stream = torch.cat([self.docs[i] for i in order])
        if self.shuffle:
            off = int(torch.randint(self.seq_len, (1,), generator=self.gen))
            stream = torch.cat([stream[off:], stream[:off]])
        rows = torch.stack([stream[r * self.bl:(r + 1) * self.bl + 1] for r in range(self.bs)])
        for b in range(self.n_batches):
            st = b * self.seq_len
            sl = min(self.seq_len, self.bl - st)
            yield rows[:, st:st + sl], rows[:, st + 1:st + sl + 1]


def pad_input_chunk(docs, pad_idx=1, seq_len=72):
    """fastai's pad_input_chunk (pad_first): whole seq_len chunks of padding, the text, then the remainder."""
    n = max(len(d) for d in docs)
    out = torch.full((len(docs), n), pad_idx, dtype=torch.long)
    for r, d in enumerate(docs):
        front = (n - len(d)) // seq_len * seq_len
        out[r, front:front + len(d)] = torch.tensor(d, dtype=torch.long)
    return out


class SortedLoader:
    """fastai's SortedDL (see the module note)."""

    def __init__(self, docs, labels, bs, seq_len, shuffle, gen):
        self.docs, self.labels, self.bs, self.seq_len, self.shuffle, self.gen = docs, labels, bs, seq_len, shuffle, gen
        self.lens = [len(d) for d in docs]
        self.drop_last = shuffle and len(docs) > bs

    def order(self):
        by_len = lambda i: -self.lens[i]  # noqa: E731
        if not self.shuffle:
            return sorted(range(len(self.docs)), key=by_len)
        idxs = torch.randperm(len(self.docs), generator=self.gen).tolist()
        i_max = max(range(len(self.docs)), key=lambda i: self.lens[i])
        at = idxs.index(i_max)
        idxs[0], idxs[at] = idxs[at], idxs[0]
        sz = self.bs * 50
        chunks = [sorted(idxs[i:i + sz], key=by_len) for i in range(0, len(idxs), sz)]
        flat = [i for c in chunks for i in c]
        batches = [flat[i:i + self.bs] for i in range(0, len(flat), self.bs)]
        if len(batches) <= 2:
            return flat
        middle = batches[1:-1]
        perm = torch.randperm(len(middle), generator=self.gen).tolist()
        return [i for b in [batches[0]] + [middle[k] for k in perm] + [batches[-1]] for i in b]

    def __len__(self):
        return len(self.docs) // self.bs if self.drop_last else math.ceil(len(self.docs) / self.bs)

    def __iter__(self):
        order = self.order()
        for b in range(len(self)):
            idx = order[b * self.bs:(b + 1) * self.bs]
            yield pad_input_chunk([self.docs[i] for i in idx], seq_len=self.seq_len), torch.tensor([self.labels[i] for i in idx])


# ---------------------------------------------------------------- models

class LinBnDrop(nn.Sequential):
    """fastai's LinBnDrop: BatchNorm1d (weight 1, bias 1e-3), Dropout, Linear without bias, activation."""

    def __init__(self, n_in, n_out, p, act):
        bn = nn.BatchNorm1d(n_in)
        bn.bias.data.fill_(1e-3)
        bn.weight.data.fill_(1.)
        layers = [bn] + ([nn.Dropout(p)] if p != 0 else []) + [nn.Linear(n_in, n_out, bias=False)] + ([act] if act else [])
        super().__init__(*layers)


class PoolingLinearClassifier(nn.Module):
    def __init__(self, dims, ps, bptt):
        super().__init__()
        acts = [nn.ReLU(inplace=True)] * (len(dims) - 2) + [None]
        self.layers = nn.Sequential(*[LinBnDrop(i, o, p, a) for i, o, p, a in zip(dims[:-1], dims[1:], ps, acts)])
        self.bptt = bptt

    def forward(self, inp):
        out, mask = inp
        return self.layers(masked_concat_pool(out, mask, self.bptt)), out, out


class SequentialRNN(nn.Sequential):
    def reset(self):
        for c in self.children():
            if hasattr(c, "reset"):
                c.reset()


def language_model(vocab_sz, cfg, drop_mult):
    d = {k: v * drop_mult for k, v in LM_DROPS.items()}
    enc = AWD_LSTM(vocab_sz, cfg["emb_sz"], cfg["n_hid"], cfg["n_layers"], pad_token=1,
                   hidden_p=d["hidden_p"], input_p=d["input_p"], embed_p=d["embed_p"], weight_p=d["weight_p"])
    return SequentialRNN(enc, LinearDecoder(vocab_sz, cfg["emb_sz"], output_p=d["output_p"], tie_encoder=enc.encoder))


def text_classifier(vocab_sz, n_class, cfg, drop_mult, seq_len=72):
    d = {k: v * drop_mult for k, v in CLAS_DROPS.items()}
    enc = AWD_LSTM(vocab_sz, cfg["emb_sz"], cfg["n_hid"], cfg["n_layers"], pad_token=1,
                   hidden_p=d["hidden_p"], input_p=d["input_p"], embed_p=d["embed_p"], weight_p=d["weight_p"])
    return SequentialRNN(SentenceEncoder(seq_len, enc, pad_idx=1, max_len=seq_len * 20),
                         PoolingLinearClassifier([cfg["emb_sz"] * 3, 50, n_class], [d["output_p"], 0.1], bptt=seq_len))


def lm_split(m):
    enc = m[0]
    return [list(r.parameters()) + list(dp.parameters()) for r, dp in zip(enc.rnns, enc.hidden_dps)] + \
        [list(nn.ModuleList([enc.encoder, enc.encoder_dp, m[1]]).parameters())]


def clas_split(m):
    enc = m[0].module
    return [list(nn.ModuleList([enc.encoder, enc.encoder_dp]).parameters())] + \
        [list(r.parameters()) + list(dp.parameters()) for r, dp in zip(enc.rnns, enc.hidden_dps)] + [list(m[1].parameters())]


def match_embeds(sd, old_vocab, new_vocab, new_words="mean"):
    """fastai's match_embeds: rows re-ordered to the new vocabulary, new words get the mean embedding and bias.
    new_words="init" (a diagnostic, not fastai) gives them the encoder's random initialisation instead, U(-0.1, 0.1)."""
    w, b = sd["0.encoder.weight"], sd["1.decoder.bias"]
    o2i = {t: i for i, t in enumerate(old_vocab)}
    nw = w.mean(0).repeat(len(new_vocab), 1)
    if new_words == "init":  # its own generator, so that every other random draw of the run stays as with "mean"
        nw = torch.empty(len(new_vocab), w.shape[1]).uniform_(-0.1, 0.1, generator=torch.Generator().manual_seed(12345))
    nb = b.new_full((len(new_vocab),), b.mean().item())
    for i, t in enumerate(new_vocab):
        if t in o2i:
            nw[i], nb[i] = w[o2i[t]], b[o2i[t]]
    sd = dict(sd)
    sd["0.encoder.weight"] = sd["0.encoder_dp.emb.weight"] = sd["1.decoder.weight"] = nw
    sd["1.decoder.bias"] = nb
    return sd


def read_metadata(path):
    """The `__metadata__` of a .safetensors file (tsfast writes the vocabulary there)."""
    with open(path, "rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        return json.loads(fh.read(n)).get("__metadata__", {})


# ---------------------------------------------------------------- the learner

def combined_cos(pct, a, b, c, t):
    def cos(s, e, p):
        return s + (1 + math.cos(math.pi * (1 - p))) * (e - s) / 2
    return cos(a, b, t / pct) if t < pct else cos(b, c, (t - pct) / (1 - pct))


def lr_spread(lr, n):
    """fastai's lr_range: a number for every group, or slice(a, b) spread geometrically."""
    if isinstance(lr, tuple):
        a, b = lr
        return [a * (b / a) ** (i / (n - 1)) for i in range(n)]
    return [lr] * n


class Learner:
    def __init__(self, model, groups, kind, wd=0.01, alpha=2., beta=1.):
        self.model, self.groups, self.kind, self.wd, self.alpha, self.beta = model, groups, kind, wd, alpha, beta
        no_wd = {id(p) for m in model.modules() for n, p in m.named_parameters(recurse=False)
                 if isinstance(m, nn.BatchNorm1d) or (isinstance(m, nn.Linear) and n == "bias")}
        pgs = []
        for g in groups:
            for decay in (True, False):
                pgs.append({"params": [p for p in g if (id(p) not in no_wd) == decay], "weight_decay": wd if decay else 0.})
        self.opt = torch.optim.AdamW(pgs, lr=1e-3, betas=(0.9, 0.99), eps=1e-5)

    def freeze_to(self, n):
        n = n if n >= 0 else len(self.groups) + n
        bn = {id(p) for m in self.model.modules() if isinstance(m, nn.BatchNorm1d) for p in m.parameters()}
        for i, g in enumerate(self.groups):
            for p in g:
                p.requires_grad_(i >= n or id(p) in bn)
        self.opt.state.clear()  # fastai clears the optimizer's state when the trained set changes

    def loss(self, xb, yb):
        out = self.model(xb)
        logits, raw, dropped = out
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), yb.reshape(-1))
        reg = loss
        if self.alpha:
            reg = reg + self.alpha * dropped.float().pow(2).mean()
        if self.beta and raw.shape[1] > 1:
            reg = reg + self.beta * (raw[:, 1:] - raw[:, :-1]).float().pow(2).mean()
        return reg

    def fit_one_cycle(self, epochs, lr, train_dl, pct_start=0.25, div=25., div_final=1e5):
        lrs = lr_spread(lr, len(self.groups))
        total = epochs * len(train_dl)
        step = 0
        for _ in range(epochs):
            self.model.train()
            self.model.reset()
            for xb, yb in train_dl:
                pct = step / total
                for k, g in enumerate(self.opt.param_groups):
                    top = lrs[k // 2]
                    g["lr"] = combined_cos(pct_start, top / div, top, top / div_final, pct)
                    g["betas"] = (combined_cos(pct_start, 0.95, 0.85, 0.95, pct), 0.99)
                loss = self.loss(xb, yb)
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                self.opt.step()
                step += 1

    @torch.no_grad()
    def validate(self, dl):
        self.model.eval()
        self.model.reset()
        correct = count = 0
        loss_sum = 0.
        for xb, yb in dl:
            logits = self.model(xb)[0]
            flat, y = logits.reshape(-1, logits.shape[-1]), yb.reshape(-1)
            loss_sum += F.cross_entropy(flat, y, reduction="sum").item()
            correct += (flat.argmax(-1) == y).sum().item()
            count += y.numel()
        self.model.reset()
        return correct / count, math.exp(loss_sum / count)


# ---------------------------------------------------------------- the recipe

def log(msg):
    print(msg, file=sys.stderr, flush=True)


def classifier_stages(learn, dl, stages):
    """The book's gradual unfreezing (the recipe's stages): the head, then the last LSTM too, ..., then everything."""
    for st in stages:
        learn.freeze_to(st["freezeTo"])
        learn.fit_one_cycle(st["epochs"], st["lr"][0] if len(st["lr"]) == 1 else tuple(st["lr"]), dl)


def run(data, pretrained, seed, lm_epochs, new_words="mean"):
    r = data["recipe"]
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    vocab, n_class = data["vocab"], len(data["classes"])
    f = read_safetensors(pretrained)
    meta = read_metadata(pretrained)
    cfg = json.loads(meta["config"]) if "config" in meta else None
    sd = match_embeds(f, json.loads(meta["vocab"]), vocab, new_words)
    if cfg is None:  # sizes from the tensors: the embedding, the first LSTM's hidden size, the number of LSTMs
        n_layers = len({k.split(".")[2] for k in sd if k.startswith("0.rnns.")})
        cfg = {"embSz": sd["0.encoder.weight"].shape[1], "nHid": sd["0.rnns.0.weight_hh_l0_raw"].shape[1], "nLayers": n_layers}
    cfg = {"emb_sz": cfg["embSz"], "n_hid": cfg["nHid"], "n_layers": cfg["nLayers"]}
    t0 = time.time()

    # 1. fine-tune the pretrained language model on every e-mail's text
    lm = language_model(len(vocab), cfg, r["lmDropMult"])
    missing = lm.load_state_dict(sd, strict=False)
    assert not missing.missing_keys, missing
    lm_learn = Learner(lm, lm_split(lm), "lm")
    lm_train = LMLoader(data["lm"]["train"], r["lmBs"], r["seqLen"], True, gen)
    lm_valid = LMLoader(data["lm"]["valid"], r["lmBs"], r["seqLen"], False, gen)
    lm_learn.freeze_to(-1)
    lm_learn.fit_one_cycle(1, r["lmLr"], lm_train)
    if lm_epochs:
        lm_learn.freeze_to(0)
        lm_learn.fit_one_cycle(lm_epochs, r["lmLr"] / 10, lm_train)
    lm_acc, lm_ppl = lm_learn.validate(lm_valid)
    log(f"seed {seed}: language model accuracy {lm_acc:.4f} perplexity {lm_ppl:.2f} ({time.time() - t0:.0f} s)")
    encoder_sd = lm[0].state_dict()

    # 2. the classifier on the few labels, from the fine-tuned encoder, and 3. the same from scratch
    accs = {}
    for name in ("pretrained", "scratch"):
        torch.manual_seed(seed)
        clas = text_classifier(len(vocab), n_class, cfg, r["clasDropMult"], r["seqLen"])
        if name == "pretrained":
            clas[0].module.load_state_dict(encoder_sd)
        learn = Learner(clas, clas_split(clas), "clas")
        train = SortedLoader(data["clas"]["train"], data["clas"]["trainLabels"], r["clasBs"], r["seqLen"], True, gen)
        valid = SortedLoader(data["clas"]["valid"], data["clas"]["validLabels"], r["clasBs"], r["seqLen"], False, gen)
        classifier_stages(learn, train, r["stages"])
        accs[name] = learn.validate(valid)[0]
        log(f"seed {seed}: classifier {name} {accs[name]:.4f} ({time.time() - t0:.0f} s)")
    return {"seed": seed, "lm_accuracy": round(lm_acc, 4), "lm_perplexity": round(lm_ppl, 2),
            "pretrained": round(accs["pretrained"], 4), "scratch": round(accs["scratch"], 4), "seconds": round(time.time() - t0, 1)}


def naive_bayes(data):
    """A bag-of-words baseline on the same labelled texts: multinomial naive Bayes over the token ids (xx* special
    tokens left out), add-one smoothing, class priors from the training labels; returns the validation accuracy."""
    specials = {i for i, w in enumerate(data["vocab"]) if w.startswith("xx")}
    n_cls = len(data["classes"])
    counts = [[1.0] * len(data["vocab"]) for _ in range(n_cls)]
    docs_per = [0] * n_cls
    for doc, y in zip(data["clas"]["train"], data["clas"]["trainLabels"]):
        docs_per[y] += 1
        for t in doc:
            if t not in specials:
                counts[y][t] += 1
    logp = [[math.log(c / sum(row)) for c in row] for row in counts]
    prior = [math.log(d / sum(docs_per)) for d in docs_per]
    right = 0
    for doc, y in zip(data["clas"]["valid"], data["clas"]["validLabels"]):
        score = [prior[k] + sum(logp[k][t] for t in doc if t not in specials) for k in range(n_cls)]
        right += int(max(range(n_cls), key=lambda k: score[k]) == y)
    return right / len(data["clas"]["valid"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("pretrained")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--new-words", choices=["mean", "init"], default="mean",
                    help="words the pretrained model lacks: fastai's mean embedding, or (a diagnostic) a random one as from scratch")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with open(args.data) as fh:
        data = json.load(fh)
    rows = []
    for seed in args.seeds:
        row = run(data, args.pretrained, seed, data["recipe"]["lmUnfrozenEpochs"], args.new_words)
        rows.append(row)
        print(json.dumps(row), flush=True)
    margins = [r["pretrained"] - r["scratch"] for r in rows]
    print(json.dumps({"summary": True, "seeds": args.seeds,
                      "min_pretrained": min(r["pretrained"] for r in rows), "min_scratch": min(r["scratch"] for r in rows),
                      "max_scratch": max(r["scratch"] for r in rows), "min_margin": round(min(margins), 4),
                      "min_lm_accuracy": min(r["lm_accuracy"] for r in rows), "max_lm_perplexity": max(r["lm_perplexity"] for r in rows),
                      "naive_bayes": round(naive_bayes(data), 4)}))


if __name__ == "__main__":
    main()
