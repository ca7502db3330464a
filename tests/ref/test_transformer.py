"""Parity of lib/transformer.c with PyTorch: Linear, LayerNorm (eps 1e-5 and 1e-12), exact GELU,
softmax, L2 normalisation and multi-head attention (against torch.nn.MultiheadAttention's own
forward for the organ head's case, and F.softmax(q k^T * scale) v per head for the others), with
1..4 threads.  The ops run in build/tests/test-transformer --ops, fed one record per case.

The references run in float64 (the same torch modules, .double(), on the float32 inputs): torch's
own float32 softmax over 1e5 entries is off by 1.9e-5 relative and its float32 LayerNorm of a row
with mean 100 and std 0.01 by 2e-3, so a float32 reference would measure torch's rounding, not ours.
Tolerance: max |ours - ref| <= 1e-5 * max |ref| for every case; GELU and softmax 1e-6.
"""
import io, os, subprocess, sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reflib  # noqa: E402
from reflib import check  # noqa: E402

TOL = 1e-5
torch.set_num_threads(2)
DRIVER = os.path.join(reflib.ROOT, os.environ.get("CT_BUILD", "build"), "tests", "test-transformer")
rng = np.random.default_rng(11)
cases = []   # (name, meta, tensors, expected y, tol)


def add(name, meta, tensors, ref, tol=TOL):
    cases.append((name, meta, {k: np.ascontiguousarray(v, np.float32) for k, v in tensors.items()},
                  np.asarray(ref, np.float64), tol))


def randn(*shape, scale=1.0, shift=0.0):
    return (rng.standard_normal(shape) * scale + shift).astype(np.float32)


# Linear: shapes of the VQ-VAE (256->512->768, 768->3072, 2048->768), the head, BERT; 1..4 threads
for n, i, o, bias, nt in [(1, 256, 512, True, 1), (7, 512, 768, True, 2), (300, 768, 3072, False, 2),
                          (333, 2048, 768, True, 4), (1000, 256, 256, True, 3), (1, 1, 256, True, 1),
                          (4096, 512, 256, True, 2)]:
    lin = torch.nn.Linear(i, o, bias=bias)
    with torch.no_grad():
        lin.weight.normal_(0, 0.05)
        if bias:
            lin.bias.normal_(0.3, 0.5)
    x = randn(n, i, scale=2.0, shift=0.5)
    with torch.no_grad():
        y = lin.double()(torch.from_numpy(x).double()).numpy()
        lin.float()
    t = {"x": x, "w": lin.weight.detach().numpy()}
    if bias:
        t["b"] = lin.bias.detach().numpy()
    add("linear n%d %d->%d%s j%d" % (n, i, o, "" if bias else " nobias", nt), {"op": "linear", "threads": nt}, t, y)

# LayerNorm: the VQ-VAE's eps 1e-5 and BERT's 1e-12; large offsets (mean >> std) and tiny variance
for n, d, eps, shift, scale in [(5, 768, 1e-5, 0.0, 1.0), (64, 768, 1e-12, 3.0, 0.5), (3, 256, 1e-5, 100.0, 0.01),
                                (1, 768, 1e-12, -2.0, 1e-3)]:
    ln = torch.nn.LayerNorm(d, eps=eps)
    with torch.no_grad():
        ln.weight.normal_(1, 0.3)
        ln.bias.normal_(0, 0.3)
    x = randn(n, d, scale=scale, shift=shift)
    with torch.no_grad():
        y = ln.double()(torch.from_numpy(x).double()).numpy()
        ln.float()
    add("layernorm n%d d%d eps%g shift%g" % (n, d, eps, shift), {"op": "layernorm", "eps": eps},
        {"x": x, "g": ln.weight.detach().numpy(), "b": ln.bias.detach().numpy()}, y)

# GELU (exact erf) over a wide range, element-wise relative
x = np.concatenate([randn(5000, scale=3.0), np.linspace(-12, 12, 2001, dtype=np.float32)]).reshape(1, -1)
add("gelu", {"op": "gelu"}, {"x": x}, torch.nn.GELU()(torch.from_numpy(x).double()).numpy(), 1e-6)

# softmax rows
for r, c, scale in [(1, 1, 1.0), (3, 100000, 5.0), (50, 616, 30.0)]:
    x = randn(r, c, scale=scale)
    add("softmax %dx%d" % (r, c), {"op": "softmax"}, {"x": x}, torch.softmax(torch.from_numpy(x).double(), -1).numpy(), 1e-6)

# L2 normalise
for d, scale in [(256, 1.0), (256, 1e-3), (7, 100.0)]:
    x = randn(1, d, scale=scale)
    add("l2 d%d" % d, {"op": "l2"}, {"x": x}, F.normalize(torch.from_numpy(x).double(), dim=-1, eps=1e-12).numpy())


def sdpa(q, k, v, heads, dh, scale):
    """softmax(q_h k_h^T * scale) v_h per head, concatenated (torch)."""
    q, k, v = (torch.from_numpy(a[:, :heads * dh]).double().view(a.shape[0], heads, dh).transpose(0, 1) for a in (q, k, v))
    p = torch.softmax(q @ k.transpose(1, 2) * scale, -1)
    return (p @ v).transpose(0, 1).reshape(q.shape[1], heads * dh).numpy()


# attention: the VQ transformer (16 x 64, n x n), BERT (12 x 64), the organ head (1 query, 4 x 64,
# up to 1e5 keys), odd sizes; q/k/v with row strides wider than heads*dh
for nq, nk, heads, dh, extra, nt in [(1, 1, 4, 64, 0, 1), (1, 100000, 4, 64, 0, 2), (300, 300, 16, 64, 0, 2),
                                     (384, 384, 12, 64, 0, 1), (17, 5000, 3, 10, 5, 3), (257, 3, 2, 8, 1, 2),
                                     (1, 20000, 1, 256, 0, 1)]:
    w = heads * dh
    q, k, v = randn(nq, w + extra), randn(nk, w + extra, scale=2.0), randn(nk, w + 2 * extra, shift=0.3)
    scale = dh ** -0.5
    add("attention nq%d nk%d %dx%d j%d" % (nq, nk, heads, dh, nt),
        {"op": "attention", "heads": heads, "dh": dh, "scale": scale, "threads": nt},
        {"x": q, "k": k, "v": v}, sdpa(q, k, v, heads, dh, scale))

# the organ head's step 6 through torch.nn.MultiheadAttention itself: in_proj and out_proj by
# tfm_linear here (as vq-recon does), the core by tfm_attention
mha_cases = []
for nk in (1, 37, 100000):
    mha = torch.nn.MultiheadAttention(256, 4, dropout=0.1, batch_first=True).eval()
    with torch.no_grad():
        mha.in_proj_weight.normal_(0, 0.1)
        mha.in_proj_bias.normal_(0, 0.2)
    qt, kv = randn(1, 256), randn(nk, 256, shift=0.2)
    with torch.no_grad():
        mha.double()
        y = mha(*(torch.from_numpy(a).double()[None] for a in (qt, kv, kv)))[0][0].numpy()
        mha.float()
    W, B = mha.in_proj_weight.detach().numpy(), mha.in_proj_bias.detach().numpy()
    mha_cases.append((nk, qt, kv, W, B, mha.out_proj.weight.detach().numpy(), mha.out_proj.bias.detach().numpy(), y))


def run(cs):
    buf = io.BytesIO()
    for i, (name, meta, tensors, _, _) in enumerate(cs):
        reflib.write_record(buf, "test.op/1", str(i), tensors, meta)
    p = subprocess.run([DRIVER, "--ops"], input=buf.getvalue(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode != 0:
        raise RuntimeError("test-transformer --ops: " + p.stderr.decode())
    return [r["tensors"]["y"] for r in reflib.records(p.stdout)]


def compare(name, got, ref, tol):
    err = float(np.max(np.abs(got.astype(np.float64) - ref))) if ref.size else 0.0
    bound = tol * max(float(np.max(np.abs(ref))), 1e-30)
    check("%s (err %.2g of max %.2g)" % (name, err / bound * tol, tol), got.shape == ref.shape and err <= bound,
          "shape %s vs %s, max err %.3g > %.3g" % (got.shape, ref.shape, err, bound))


for (name, _, _, ref, tol), got in zip(cases, run(cases)):
    compare(name, got, ref, tol)

# MHA: three driver passes (in_proj, core, out_proj), each through the driver
for nk, qt, kv, W, B, Wo, Bo, y in mha_cases:
    q, k, v = run([("q", {"op": "linear"}, {"x": qt, "w": W[:256], "b": B[:256]}, None, 0),
                   ("k", {"op": "linear", "threads": 2}, {"x": kv, "w": W[256:512], "b": B[256:512]}, None, 0),
                   ("v", {"op": "linear", "threads": 2}, {"x": kv, "w": W[512:], "b": B[512:]}, None, 0)])
    (a,) = run([("a", {"op": "attention", "heads": 4, "dh": 64, "scale": 0.125, "threads": 2},
                 {"x": q, "k": k, "v": v}, None, 0)])
    (o,) = run([("o", {"op": "linear"}, {"x": a, "w": Wo, "b": Bo}, None, 0)])
    compare("nn.MultiheadAttention 1 query nk%d" % nk, o, y, TOL)

reflib.done()
