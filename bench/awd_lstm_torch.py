"""PyTorch reference for lib/models/awd-lstm.ts: fastai's AWD-LSTM (fastai 2.7, text/models/awdlstm.py and
text/models/core.py), ported line for line without fastai (which is not installable here).

usage: /usr/bin/python3 bench/awd_lstm_torch.py SPEC.json
SPEC: {"weights": "x.safetensors", "kind": "lm" | "clas", "vocab_sz", "emb_sz", "n_hid", "n_layers", "pad_token",
       "batches": [[[ids]]], "targets": [[[ids]]] (lm), "probe": [[...]] (clas: weights of a linear probe of the pooled output),
       "bptt", "max_len" (clas), "grads": false to skip the gradients (lm)}
The weights are a state dict with fastai's names, written by tsfast (`awdLstmLMStateDict` / `awdLstmStateDict`).
Dropout is off (eval mode) so the numbers are deterministic. Prints one JSON line:
  lm:   {"logits": [flat logits of every batch], "loss": last batch's CE, "grads": {name: flat grad of the last batch's CE}}
        (the hidden state is carried and detached between batches, so the last batch's gradients stop at its start)
  clas: {"pooled": flat [bs, 3·emb], "grads": {name: flat grad of sum(pooled · probe)}}
"""
import json
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    base = 8 + n
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        assert v["dtype"] == "F32", v["dtype"]
        a, b = v["data_offsets"]
        out[k] = torch.frombuffer(bytearray(raw[base + a:base + b]), dtype=torch.float32).reshape(v["shape"]).clone()
    return out


def dropout_mask(x, sz, p):
    return x.new_empty(*sz).bernoulli_(1 - p).div_(1 - p)


class RNNDropout(nn.Module):
    def __init__(self, p=0.5):
        super().__init__()
        self.p = p

    def forward(self, x):
        if not self.training or self.p == 0.:
            return x
        return x * dropout_mask(x.data, (x.size(0), 1, *x.shape[2:]), self.p)


class WeightDropout(nn.Module):
    def __init__(self, module, weight_p, layer_names='weight_hh_l0'):
        super().__init__()
        self.module, self.weight_p, self.layer_names = module, weight_p, [layer_names]
        for layer in self.layer_names:
            w = getattr(self.module, layer)
            delattr(self.module, layer)
            self.register_parameter(f'{layer}_raw', nn.Parameter(w.data))
            setattr(self.module, layer, w.clone())
            self.module.flatten_parameters = lambda *a, **k: None

    def _setweights(self):
        for layer in self.layer_names:
            raw_w = getattr(self, f'{layer}_raw')
            w = F.dropout(raw_w, p=self.weight_p) if self.training else raw_w.clone()
            setattr(self.module, layer, w)

    def forward(self, *args):
        self._setweights()
        return self.module(*args)


class EmbeddingDropout(nn.Module):
    def __init__(self, emb, embed_p):
        super().__init__()
        self.emb, self.embed_p = emb, embed_p

    def forward(self, words, scale=None):
        if self.training and self.embed_p != 0:
            size = (self.emb.weight.size(0), 1)
            mask = dropout_mask(self.emb.weight.data, size, self.embed_p)
            masked_embed = self.emb.weight * mask
        else:
            masked_embed = self.emb.weight
        if scale:
            masked_embed.mul_(scale)
        return F.embedding(words, masked_embed, self.emb.padding_idx if self.emb.padding_idx is not None else -1,
                           self.emb.max_norm, self.emb.norm_type, self.emb.scale_grad_by_freq, self.emb.sparse)


class AWD_LSTM(nn.Module):
    initrange = 0.1

    def __init__(self, vocab_sz, emb_sz, n_hid, n_layers, pad_token=1, hidden_p=0.2, input_p=0.6, embed_p=0.1, weight_p=0.5):
        super().__init__()
        self.emb_sz, self.n_hid, self.n_layers, self.pad_token = emb_sz, n_hid, n_layers, pad_token
        self.bs = 1
        self.n_dir = 1
        self.encoder = nn.Embedding(vocab_sz, emb_sz, padding_idx=pad_token)
        self.encoder_dp = EmbeddingDropout(self.encoder, embed_p)
        self.rnns = nn.ModuleList([self._one_rnn(emb_sz if l == 0 else n_hid, n_hid if l != n_layers - 1 else emb_sz, weight_p)
                                   for l in range(n_layers)])
        self.encoder.weight.data.uniform_(-self.initrange, self.initrange)
        self.input_dp = RNNDropout(input_p)
        self.hidden_dps = nn.ModuleList([RNNDropout(hidden_p) for l in range(n_layers)])
        self.reset()

    def forward(self, inp):
        bs, sl = inp.shape
        if bs != self.bs:
            self._change_hidden(bs)
        output = self.input_dp(self.encoder_dp(inp))
        new_hidden = []
        for l, (rnn, hid_dp) in enumerate(zip(self.rnns, self.hidden_dps)):
            output, new_h = rnn(output, self.hidden[l])
            new_hidden.append(new_h)
            if l != self.n_layers - 1:
                output = hid_dp(output)
        self.hidden = [tuple(t.detach() for t in h) for h in new_hidden]
        return output

    def _change_hidden(self, bs):
        self.hidden = [self._change_one_hidden(l, bs) for l in range(self.n_layers)]
        self.bs = bs

    def _one_rnn(self, n_in, n_out, weight_p):
        return WeightDropout(nn.LSTM(n_in, n_out, 1, batch_first=True), weight_p)

    def _nh(self, l):
        return self.n_hid if l != self.n_layers - 1 else self.emb_sz

    def _one_hidden(self, l):
        p = next(self.parameters())
        return (p.new_zeros(1, self.bs, self._nh(l)), p.new_zeros(1, self.bs, self._nh(l)))

    def _change_one_hidden(self, l, bs):
        if self.bs < bs:
            return tuple(torch.cat([h, h.new_zeros(1, bs - self.bs, self._nh(l))], dim=1) for h in self.hidden[l])
        if self.bs > bs:
            return (self.hidden[l][0][:, :bs].contiguous(), self.hidden[l][1][:, :bs].contiguous())
        return self.hidden[l]

    def reset(self):
        self.hidden = [self._one_hidden(l) for l in range(self.n_layers)]


class LinearDecoder(nn.Module):
    def __init__(self, n_out, n_hid, output_p=0.1, tie_encoder=None, bias=True):
        super().__init__()
        self.decoder = nn.Linear(n_hid, n_out, bias=bias)
        self.decoder.weight.data.uniform_(-0.1, 0.1)
        self.output_dp = RNNDropout(output_p)
        if bias:
            self.decoder.bias.data.zero_()
        if tie_encoder:
            self.decoder.weight = tie_encoder.weight

    def forward(self, input):
        dp_inp = self.output_dp(input)
        return self.decoder(dp_inp), input, dp_inp


def _pad_tensor(t, bs):
    if t.size(0) < bs:
        return torch.cat([t, t.new_zeros(bs - t.size(0), *t.shape[1:])])
    return t


class SentenceEncoder(nn.Module):
    def __init__(self, bptt, module, pad_idx=1, max_len=None):
        super().__init__()
        self.bptt, self.module, self.pad_idx, self.max_len = bptt, module, pad_idx, max_len

    def forward(self, input):
        bs, sl = input.size()
        self.module.reset()
        mask = input == self.pad_idx
        outs, masks = [], []
        for i in range(0, sl, self.bptt):
            real_bs = (input[:, i] != self.pad_idx).long().sum()
            o = self.module(input[:real_bs, i: min(i + self.bptt, sl)])
            if self.max_len is None or sl - i <= self.max_len:
                outs.append(o)
                masks.append(mask[:, i: min(i + self.bptt, sl)])
        outs = torch.cat([_pad_tensor(o, bs) for o in outs], dim=1)
        mask = torch.cat(masks, dim=1)
        return outs, mask


def masked_concat_pool(output, mask, bptt):
    lens = output.shape[1] - mask.long().sum(dim=1)
    last_lens = mask[:, -bptt:].long().sum(dim=1)
    avg_pool = output.masked_fill(mask[:, :, None], 0).sum(dim=1)
    avg_pool.div_(lens.type(avg_pool.dtype)[:, None])
    max_pool = output.masked_fill(mask[:, :, None], -float('inf')).max(dim=1)[0]
    return torch.cat([output[torch.arange(0, output.size(0)), -last_lens - 1], max_pool, avg_pool], 1)


def main():
    spec = json.load(open(sys.argv[1]))
    torch.set_num_threads(2)
    sd = read_safetensors(spec["weights"])
    awd = AWD_LSTM(spec["vocab_sz"], spec["emb_sz"], spec["n_hid"], spec["n_layers"], pad_token=spec["pad_token"])
    if spec["kind"] == "lm":
        model = nn.Sequential(awd, LinearDecoder(spec["vocab_sz"], spec["emb_sz"], tie_encoder=awd.encoder))
        for copy in ("0.encoder_dp.emb.weight", "1.decoder.weight"):  # a file may store the tied table once
            sd.setdefault(copy, sd["0.encoder.weight"])
        missing = model.load_state_dict(sd, strict=False)
        assert not missing.missing_keys, missing
        model.eval()
        logits = []
        batches = [torch.tensor(b) for b in spec["batches"]]
        for i, xb in enumerate(batches):
            last = i == len(batches) - 1
            with torch.set_grad_enabled(last):
                out = model(xb)[0]
            logits += out.detach().flatten().tolist()
            if last:
                loss = F.cross_entropy(out.reshape(-1, out.shape[-1]), torch.tensor(spec["targets"][i]).flatten())
                loss.backward()
        grads = {k: p.grad.flatten().tolist() for k, p in model.named_parameters() if p.grad is not None} if spec.get("grads", True) else {}
        print(json.dumps({"logits": logits, "loss": loss.item(), "grads": grads}))
    else:
        missing = awd.load_state_dict(sd, strict=False)
        assert not missing.missing_keys, missing
        awd.eval()
        enc = SentenceEncoder(spec["bptt"], awd, pad_idx=spec["pad_token"], max_len=spec["max_len"])
        out, mask = enc(torch.tensor(spec["batches"][0]))
        pooled = masked_concat_pool(out, mask, spec["bptt"])
        (pooled * torch.tensor(spec["probe"])).sum().backward()
        grads = {k: p.grad.flatten().tolist() for k, p in awd.named_parameters() if p.grad is not None}
        print(json.dumps({"pooled": pooled.detach().flatten().tolist(), "grads": grads}))


if __name__ == "__main__":
    main()
