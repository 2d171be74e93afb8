"""The PyTorch side of bench/lstm.ts: an Embedding -> nn.LSTM -> Linear language model trained with
AdamW (fastai's betas 0.9/0.99, eps 1e-5, wd 0.01) on random token ids, batch after batch.

Usage: /usr/bin/python3 bench/lstm_torch.py --threads 2 --batches 12 --warmup 2 --config '{"vocab": ...}'
Prints one JSON line: {"seconds": time of the batches after the warm-up ones}.
"""
import argparse
import json
import time

import torch


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

    class LstmLm(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(c["vocab"], c["emb"])
            self.rnn = torch.nn.LSTM(c["emb"], c["hidden"], c["layers"], batch_first=True)
            self.out = torch.nn.Linear(c["hidden"], c["vocab"])

        def forward(self, x):
            return self.out(self.rnn(self.emb(x))[0])

    model = LstmLm()
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
        loss = torch.nn.functional.cross_entropy(model(xs[k]).reshape(-1, c["vocab"]), ys[k].reshape(-1))
        loss.backward()
        opt.step()
        loss.item()
    print(json.dumps({"seconds": time.perf_counter() - t0}))


if __name__ == "__main__":
    main()
