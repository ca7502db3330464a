"""PyTorch reference of ViSD-Boost's VQ-VAE normality model and organ head, written from
method.md 2.4 (organ feature), 4.1 (VQ-VAE) and 10 (GELU erf, LayerNorm eps 1e-5), with the
module names of the checkpoints (method.md 8.3) so that a state dict loads strictly.

    m = VQHead().eval(); m.load_arrays(weights_dict)      # {key: numpy array}
    out = m.organ(keys, organ)       # keys = [key1, key2, key3, key4], each [N_s, 256] numpy
    out["feature"] [256], out["recon4"] [N4, 256], out["code4"] [N4], out["err4"] [N4],
    out["dist"] [N4, 400] (squared distances, float64, for the tie gap), out["z2"] [N4] (|z|^2)
    force_codes=[N4] decodes the given codes instead of the nearest ones

Everything runs as the released model would in eval mode (dropout off), in float32 unless
dtype=torch.float64 is given.
"""
import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

EMBED = 256
DIM = 768


class Attn(nn.Module):
    """pre-norm multi-head self-attention, 16 heads of 64, to_qkv without bias, to_out Linear"""

    def __init__(self, dim=DIM, heads=16, dh=64):
        super().__init__()
        self.heads, self.dh = heads, dh
        self.norm = nn.LayerNorm(dim, eps=1e-5)
        self.to_qkv = nn.Linear(dim, 3 * heads * dh, bias=False)
        self.to_out = nn.ModuleDict({"0": nn.Linear(heads * dh, dim)})

    def forward(self, x):                       # x [n, dim]
        n = x.shape[0]
        q, k, v = self.to_qkv(self.norm(x)).chunk(3, dim=-1)
        q, k, v = (t.view(n, self.heads, self.dh).transpose(0, 1) for t in (q, k, v))
        p = torch.softmax(q @ k.transpose(1, 2) * self.dh ** -0.5, dim=-1)
        return self.to_out["0"]((p @ v).transpose(0, 1).reshape(n, self.heads * self.dh))


class FF(nn.Module):
    """net.0 LayerNorm, net.1 Linear 768->2048, GELU (exact), net.4 Linear 2048->768"""

    def __init__(self, dim=DIM, hidden=2048):
        super().__init__()
        self.net = nn.ModuleDict({"0": nn.LayerNorm(dim, eps=1e-5), "1": nn.Linear(dim, hidden),
                                  "4": nn.Linear(hidden, dim)})

    def forward(self, x):
        return self.net["4"](F.gelu(self.net["1"](self.net["0"](x))))


class Transformer(nn.Module):
    def __init__(self, depth=2):
        super().__init__()
        self.layers = nn.ModuleDict({str(i): nn.ModuleDict({"0": Attn(), "1": FF()}) for i in range(depth)})
        self.norm = nn.LayerNorm(DIM, eps=1e-5)

    def forward(self, x):
        for layer in self.layers.values():
            x = layer["0"](x) + x
            x = layer["1"](x) + x
        return self.norm(x)


class VQHead(nn.Module):
    def __init__(self):
        super().__init__()
        self.id_projs = nn.Linear(1, EMBED)
        enc = nn.Module()
        enc.input1, enc.input2, enc.transformer = nn.Linear(EMBED, 512), nn.Linear(512, DIM), Transformer()
        dec = nn.Module()
        dec.transformer, dec.output1, dec.output2 = Transformer(), nn.Linear(DIM, 512), nn.Linear(512, EMBED)
        self.encoder, self.decoder = enc, dec
        vq = nn.Module()
        vq.register_buffer("embeddings", torch.zeros(400, DIM))
        self.vq_layer = vq
        self.query_tokens = nn.Parameter(torch.zeros(4, EMBED))
        self.attention = nn.MultiheadAttention(EMBED, 4, dropout=0.1, batch_first=True)
        self.res_projs1 = nn.ModuleList([nn.Linear(2 * EMBED, EMBED) for _ in range(4)])
        self.res_projs2 = nn.ModuleList([nn.Linear(EMBED, EMBED) for _ in range(4)])
        self.vision_projs = nn.ModuleList([nn.Linear(EMBED, EMBED) for _ in range(4)])

    def load_arrays(self, arrays):
        own = self.state_dict()
        sd = {k: torch.from_numpy(np.array(arrays[k], dtype=np.float32)) for k in own}
        self.load_state_dict(sd, strict=True)
        return self

    @torch.no_grad()
    def latent(self, roi, organ):
        """the encoder output z [N4, 768] of one organ's stage-4 tokens (float64 numpy)"""
        roi = torch.from_numpy(np.array(roi))
        mn = roi.min()
        mx = (roi - mn).max()
        x = (roi - mn) / mx - 0.5
        idt = self.id_projs(torch.tensor([[float(organ)]]))
        z = self.encoder.input2(self.encoder.input1(torch.cat([idt, x], 0)))
        return self.encoder.transformer(z)[1:].double().numpy()

    @torch.no_grad()
    def organ(self, keys, organ, per_organ=False, dtype=torch.float32, force_codes=None):
        self.to(dtype)
        k = [torch.from_numpy(np.array(a, np.float32)).to(dtype) for a in keys]
        roi, other = k[3], torch.cat(k[:3], 0)
        # 4.1: normalisation over all values, condition token, encoder, drop the condition
        mn = roi.min()
        x = roi - mn
        mx = x.max()
        x = x / mx - 0.5
        idt = self.id_projs(torch.tensor([[float(organ)]], dtype=dtype))
        z = self.encoder.input2(self.encoder.input1(torch.cat([idt, x], 0)))
        z = self.encoder.transformer(z)[1:]
        emb = self.vq_layer.embeddings
        dist = (z ** 2).sum(1, keepdim=True) + (emb ** 2).sum(1) - 2.0 * z @ emb.t()
        if per_organ:
            code = torch.argmin(dist[:, 100 * organ:100 * organ + 100], 1) + 100 * organ
        else:
            code = torch.argmin(dist, 1)
        if force_codes is not None:            # to follow the other side's choice at a near-tie
            code = torch.from_numpy(np.asarray(force_codes, np.int64))
        e = emb[code]
        xr = self.decoder.output2(self.decoder.output1(self.decoder.transformer(e)))
        recon = (xr + 0.5) * mx + mn
        # 2.4 steps 4-7
        hybrid = torch.cat([torch.cat([other, roi], 0), torch.cat([other, recon], 0)], -1)
        h = self.res_projs2[organ](self.res_projs1[organ](hybrid))
        q = self.query_tokens[organ][None, None]
        a, _ = self.attention(q, h[None], h[None])
        f = F.normalize(self.vision_projs[organ](a[0, 0]), dim=-1, eps=1e-12)
        zd = z.double()
        ed = emb.double()
        dist64 = (zd ** 2).sum(1, keepdim=True) + (ed ** 2).sum(1) - 2.0 * zd @ ed.t()
        self.float()
        return {"feature": f.double().numpy(), "recon4": recon.double().numpy(), "code4": code.numpy(),
                "err4": ((roi.double() - recon.double()) ** 2).sum(1).numpy(), "dist": dist64.numpy(),
                "z2": (zd ** 2).sum(1).numpy()}


def perturb(arrays, seed):
    """Non-trivial statistics for test weights (torch's default init gives near-zero biases and a
    unit-normal codebook far from the encoder's outputs): biases shifted, LayerNorm gains and
    shifts spread, query tokens and codebook scaled to the latent's range.  Returns a new dict."""
    rng = np.random.default_rng(seed)
    out = dict(arrays)
    for k, a in arrays.items():
        if a.dtype != np.float32:
            continue
        if k.startswith(("encoder.", "decoder.", "id_projs.", "res_projs", "vision_projs", "attention.")):
            if k.endswith("norm.weight") or k.endswith("net.0.weight"):
                out[k] = (a * rng.uniform(0.5, 1.5, a.shape)).astype(np.float32)
            elif k.endswith("bias"):
                out[k] = (a + rng.normal(0, 0.2, a.shape)).astype(np.float32)
    out["query_tokens"] = (rng.normal(0, 1.0, arrays["query_tokens"].shape)).astype(np.float32)
    # small codes of similar norms: the nearest code is decided by z . e_k, not by |e_k| alone
    out["vq_layer.embeddings"] = (rng.normal(0, 0.3, (400, DIM)) * rng.uniform(0.95, 1.05, (400, 1))).astype(np.float32)
    return out
