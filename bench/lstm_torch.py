"""The PyTorch side of bench/lstm.ts's two rows, trained batch after batch on random token ids with AdamW
(fastai's betas 0.9/0.99, eps 1e-5, wd 0.01):
- `--model lstm`: an Embedding -> nn.LSTM -> Linear language model, plain cross-entropy;
- `--model awd`: fastai's AWD-LSTM language model (the port in bench/awd_lstm_torch.py: embedding dropout,
  weight-dropped hidden matrices, RNN dropouts, tied decoder, the hidden state carried from batch to batch)
  trained as `language_model_learner` trains it: cross-entropy plus AR (alpha 2) and TAR (beta 1).

Usage: /usr/bin/python3 bench/lstm_torch.py --model lstm --threads 2 --batches 12 --warmup 2 --config '{"vocab": ...}'
Prints one JSON line: {"seconds": time of the batches after the warm-up ones}.
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F


class LstmLm(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.emb = torch.nn.Embedding(c["vocab"], c["emb"])
        self.rnn = torch.nn.LSTM(c["emb"], c["hidden"], c["layers"], batch_first=True)
        self.out = torch.nn.Linear(c["hidden"], c["vocab"])

    def forward(self, x):
        return self.out(self.rnn(self.emb(x))[0])

    def loss(self, x, y, vocab):
        return F.cross_entropy(self(x).reshape(-1, vocab), y.reshape(-1))


class AwdLm(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from awd_lstm_torch import AWD_LSTM, LinearDecoder
        self.enc = AWD_LSTM(c["vocab"], c["emb"], c["hidden"], c["layers"])  # fastai's dropouts (drop_mult 1)
        self.dec = LinearDecoder(c["vocab"], c["emb"], output_p=0.1, tie_encoder=self.enc.encoder)

    def loss(self, x, y, vocab):
        logits, raw, out = self.dec(self.enc(x))
        ce = F.cross_entropy(logits.reshape(-1, vocab), y.reshape(-1))
        return ce + 2 * out.pow(2).mean() + 1 * (raw[:, 1:] - raw[:, :-1]).pow(2).mean()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=["lstm", "awd"], default="lstm")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", type=int, default=12)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--config", required=True)
    a = ap.parse_args()
    c = json.loads(a.config)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = LstmLm(c) if a.model == "lstm" else AwdLm(c)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.99), eps=1e-5, weight_decay=0.01)
    g = torch.Generator().manual_seed(1)
    xs = torch.randint(0, c["vocab"], (a.batches, c["bs"], c["seqLen"]), generator=g)
    ys = torch.randint(0, c["vocab"], (a.batches, c["bs"], c["seqLen"]), generator=g)
    model.train()
    t0 = None
    for k in range(a.batches):
        if k == a.warmup:
            t0 = time.perf_counter()
        opt.zero_grad()
        loss = model.loss(xs[k], ys[k], c["vocab"])
        loss.backward()
        opt.step()
        loss.item()
    print(json.dumps({"seconds": time.perf_counter() - t0}))


if __name__ == "__main__":
    main()
