"""Double-descent recipe search: batched-seed training (S models at once via bmm)."""
import argparse, json, math, time
import numpy as np, torch
import torch.nn.functional as F
torch.set_num_threads(1)

def load(ds, n_train, n_test, data_seed=0):
    if ds == 'digits':
        from sklearn.datasets import load_digits
        d = load_digits(); X = d.data.astype(np.float32) / 16.0; y = d.target.astype(np.int64)
        rng = np.random.default_rng(data_seed); p = rng.permutation(len(y))
        X, y = X[p], y[p]
        Xtr, ytr, Xte, yte = X[:n_train], y[:n_train], X[n_train:n_train + n_test], y[n_train:n_train + n_test]
    elif ds == 'mnist1d':
        from mnist1d.data import get_dataset_args, make_dataset
        a = get_dataset_args(); a.num_samples = n_train + n_test; a.train_split = n_train / (n_train + n_test); a.seed = 42
        d = make_dataset(a)
        Xtr, ytr, Xte, yte = d['x'].astype(np.float32), d['y'].astype(np.int64), d['x_test'].astype(np.float32), d['y_test'].astype(np.int64)
    mu, sd = Xtr.mean(0), Xtr.std(0) + 1e-6
    if ds == 'mnist1d':
        mu, sd = Xtr.mean(), Xtr.std()
    Xtr = (Xtr - mu) / sd; Xte = (Xte - mu) / sd
    return [torch.tensor(v) for v in (Xtr, ytr, Xte, yte)]

def noisy(y, p, kind, C, seed):
    rng = np.random.default_rng(seed); y = y.numpy().copy(); N = len(y)
    if kind == 'symmetric':
        m = int(round(p * N)); idx = rng.choice(N, m, replace=False)
        # balanced across classes approx: just uniform different class
        off = rng.integers(1, C, size=m); y[idx] = (y[idx] + off) % C
    else:
        flip = rng.random(N) < p; y[flip] = rng.integers(0, C, size=flip.sum())
    return torch.tensor(y)

def init_linear(S, fi, fo, g):
    b = 1 / math.sqrt(fi)
    W = (torch.rand(S, fi, fo, generator=g) * 2 - 1) * b
    bb = (torch.rand(S, 1, fo, generator=g) * 2 - 1) * b
    return W.requires_grad_(), bb.requires_grad_()

class BMLP:
    def __init__(self, S, d, h, depth, C, g):
        dims = [d] + [h] * depth + [C]
        self.layers = [init_linear(S, dims[i], dims[i + 1], g) for i in range(len(dims) - 1)]
        self.nparams = sum(W[0].numel() + b[0].numel() for W, b in self.layers)
    def params(self): return [p for l in self.layers for p in l]
    def __call__(self, x):  # x [S,B,d]
        for i, (W, b) in enumerate(self.layers):
            x = torch.baddbmm(b, x, W)
            if i < len(self.layers) - 1: x = F.relu(x)
        return x

class BCNN:
    """conv k5 s2, k3 s2, k3 s2 (c channels, ReLU), linear head; S models via grouped conv."""
    def __init__(self, S, L, c, C, g):
        self.S, self.c = S, c
        def cw(ci, co, k):
            b = 1 / math.sqrt(ci * k)
            return (((torch.rand(S * co, ci, k, generator=g) * 2 - 1) * b).requires_grad_(),
                    ((torch.rand(S * co, generator=g) * 2 - 1) * b).requires_grad_())
        self.convs = [(cw(1, c, 5), 5), (cw(c, c, 3), 3), (cw(c, c, 3), 3)]
        l = L
        for k in (5, 3, 3): l = (l + 2 * (k // 2) - k) // 2 + 1
        self.flat = c * l
        self.head = init_linear(S, self.flat, C, g)
        self.nparams = sum(w.numel() // S + b.numel() // S for (w, b), _ in self.convs) + self.flat * C + C
    def params(self): return [p for (w, b), _ in self.convs for p in (w, b)] + list(self.head)
    def __call__(self, x):  # x [S,B,L]
        S, B, L = x.shape
        h = x.permute(1, 0, 2).reshape(B, S, L)
        for (w, b), k in self.convs:
            h = F.relu(F.conv1d(h, w, b, stride=2, padding=k // 2, groups=S))
        h = h.reshape(B, S, -1).permute(1, 0, 2)
        return torch.baddbmm(self.head[1], h, self.head[0])

def run(args, Xtr, ytr_clean, Xte, yte, ytr, h, seeds):
    S = len(seeds); C = 10; N = len(ytr)
    g = torch.Generator().manual_seed(1000 * seeds[0] + seeds[1] + 7 * h)
    m = BCNN(S, Xtr.shape[1], h, C, g) if args.model == 'cnn' else BMLP(S, Xtr.shape[1], h, args.depth, C, g)
    P = m.params()
    opt = torch.optim.Adam(P, lr=args.lr) if args.opt == 'adam' else torch.optim.SGD(P, lr=args.lr, momentum=0.9)
    B = min(args.batch, N); nb = N // B if args.drop_last else math.ceil(N / B)
    steps = 0; t0 = time.time()
    for ep in range(args.epochs):
        if B == N:
            idx = None
        else:
            perm = torch.stack([torch.randperm(N, generator=g) for _ in range(S)])
        for i in range(nb):
            if B == N:
                xb = Xtr.expand(S, -1, -1); yb = ytr.expand(S, -1)
            else:
                ii = perm[:, i * B:(i + 1) * B]; xb = Xtr[ii]; yb = ytr[ii]
            out = m(xb)
            loss = F.cross_entropy(out.reshape(-1, C), yb.reshape(-1)) * S
            opt.zero_grad(set_to_none=True); loss.backward(); opt.step(); steps += 1
    tt = time.time() - t0
    with torch.no_grad():
        otr = m(Xtr.expand(S, -1, -1)).argmax(-1); ote = m(Xte.expand(S, -1, -1)).argmax(-1)
        tr = (otr != ytr).float().mean(1); trc = (otr != ytr_clean).float().mean(1); te = (ote != yte).float().mean(1)
    return dict(h=h, params=m.nparams, train=tr.tolist(), train_clean=trc.tolist(), test=te.tolist(), time=tt, steps=steps)

if __name__ == '__main__':
    ap = argparse.ArgumentParser()
    ap.add_argument('--ds', default='digits'); ap.add_argument('--model', default='mlp'); ap.add_argument('--depth', type=int, default=1)
    ap.add_argument('--n_train', type=int, default=1000); ap.add_argument('--n_test', type=int, default=797)
    ap.add_argument('--noise', type=float, default=0.2); ap.add_argument('--kind', default='symmetric')
    ap.add_argument('--widths', default='2,4,8,16,32,64,128,256')
    ap.add_argument('--opt', default='adam'); ap.add_argument('--lr', type=float, default=1e-3)
    ap.add_argument('--batch', type=int, default=100000); ap.add_argument('--epochs', type=int, default=1000)
    ap.add_argument('--drop_last', type=int, default=0)
    ap.add_argument('--seeds', default='0,1'); ap.add_argument('--noise_seed', type=int, default=123)
    ap.add_argument('--out', default='')
    args = ap.parse_args()
    Xtr, ytr_c, Xte, yte = load(args.ds, args.n_train, args.n_test)
    ytr = noisy(ytr_c, args.noise, args.kind, 10, args.noise_seed) if args.noise > 0 else ytr_c
    seeds = [int(s) for s in args.seeds.split(',')]
    res = []
    print(vars(args), flush=True)
    print(f"{'h':>5} {'params':>7} {'train':>6} {'trclean':>7} {'test':>6} {'test_s':>13} {'time':>6} steps", flush=True)
    for h in [int(w) for w in args.widths.split(',')]:
        r = run(args, Xtr, ytr_c, Xte, yte, ytr, h, seeds); res.append(r)
        print(f"{h:5d} {r['params']:7d} {np.mean(r['train']):6.3f} {np.mean(r['train_clean']):7.3f} {np.mean(r['test']):6.3f} "
              f"{'/'.join(f'{v:.3f}' for v in r['test']):>13} {r['time']:6.1f} {r['steps']}", flush=True)
    print('total time', sum(r['time'] for r in res), 'steps', sum(r['steps'] for r in res))
    if args.out: json.dump(dict(args=vars(args), res=res), open(args.out, 'w'))
