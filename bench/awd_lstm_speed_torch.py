"""The PyTorch side of the AWD-LSTM row of bench/lstm.ts: fastai's AWD-LSTM language model (the port in
bench/awd_lstm_torch.py: embedding dropout, weight-dropped hidden matrices, RNN dropouts, tied decoder) trained
as fastai's `language_model_learner` trains it: cross-entropy plus AR (alpha 2) and TAR (beta 1), AdamW
(betas 0.9/0.99, eps 1e-5, wd 0.01), the hidden state carried from batch to batch, on random token ids.

Usage: /usr/bin/python3 bench/awd_lstm_speed_torch.py --threads 2 --batches 12 --warmup 2 --config '{"vocab": ...}'
Prints one JSON line: {"seconds": time of the batches after the warm-up ones}.
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from awd_lstm_torch import AWD_LSTM, LinearDecoder  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", type=int, default=12)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--config", required=True)
    a = ap.parse_args()
    c = json.loads(a.config)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    enc = AWD_LSTM(c["vocab"], c["emb"], c["hidden"], c["layers"])  # fastai's dropouts (drop_mult 1)
    dec = LinearDecoder(c["vocab"], c["emb"], output_p=0.1, tie_encoder=enc.encoder)
    params = list(dict.fromkeys(list(enc.parameters()) + list(dec.parameters())))
    opt = torch.optim.AdamW(params, lr=1e-3, betas=(0.9, 0.99), eps=1e-5, weight_decay=0.01)
    g = torch.Generator().manual_seed(1)
    xs = torch.randint(0, c["vocab"], (a.batches, c["bs"], c["seqLen"]), generator=g)
    ys = torch.randint(0, c["vocab"], (a.batches, c["bs"], c["seqLen"]), generator=g)
    enc.train()
    dec.train()
    t0 = None
    for k in range(a.batches):
        if k == a.warmup:
            t0 = time.perf_counter()
        opt.zero_grad()
        logits, raw, out = dec(enc(xs[k]))
        loss = F.cross_entropy(logits.reshape(-1, c["vocab"]), ys[k].reshape(-1))
        loss = loss + 2 * out.pow(2).mean() + 1 * (raw[:, 1:] - raw[:, :-1]).pow(2).mean()
        loss.backward()
        opt.step()
        loss.item()
    print(json.dumps({"seconds": time.perf_counter() - t0}))


if __name__ == "__main__":
    main()
