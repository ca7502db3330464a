"""Reference PyTorch model of the ViSD-Boost image encoder, written from ../shared/docs/method.md
(sections 2.1, 2.2 and 8.3), for the parity test of `encode` and for the weights converter.

Run with Debian's /usr/bin/python3 (torch 1.13).  Nothing here is copied from the authors' code:
the architecture is rebuilt from the specification, so that `encode` is checked against an
implementation whose maths is PyTorch's own (conv3d, batch_norm, max_pool3d).

    ViSDImageEncoder            state_dict keys "res_model.*", "proj{1..4}.*"
      res_model: ResNet18-3D, shortcut A, dilations 1/1/2/4
        conv1  7x7x7, 1->64, stride (1,2,2), pad 3, no bias;  bn1;  ReLU
        maxpool 3x3x3 stride 2 pad 1 (pads with -inf)
        layer1..4: 2 BasicBlocks each; channels 64,128,256,512; first block of layer2..4 has
                   stride 2; dilation (= padding) 1,1,2,4 on both convs of every block
        shortcut A: subsample at even indices (avg_pool3d kernel 1 stride 2) + zero channels
      proj_s: Conv3d(C_s -> 256, kernel 1, bias)
    forward(x [B,1,D,H,W]) -> [stage maps [B,256,D',H',W'] for s = 1..4]

ViSDModel wraps it as `visual_encoder` and adds the parameter containers of the heads and of the
VQ-VAE (method.md 8.3) with their key names and shapes, so that a random checkpoint in the LAVIS
layout carries the full key set later stages read.  Those containers are not a reference for the
maths of the heads or the VQ (their stages have their own tests).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

STAGE_CHANNELS = (64, 128, 256, 512)
STAGE_DILATION = (1, 1, 2, 4)
EMBED = 256


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride, dilation):
        super().__init__()
        self.conv1 = nn.Conv3d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)
        self.bn1 = nn.BatchNorm3d(cout)
        self.conv2 = nn.Conv3d(cout, cout, 3, stride=1, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm3d(cout)
        self.stride, self.cin, self.cout = stride, cin, cout

    def shortcut(self, x):
        if self.stride == 1 and self.cin == self.cout:
            return x
        y = F.avg_pool3d(x, kernel_size=1, stride=self.stride)      # voxels at even indices
        pad = torch.zeros(y.shape[0], self.cout - y.shape[1], *y.shape[2:], dtype=y.dtype)
        return torch.cat([y, pad], dim=1)                           # zero channels up to cout

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet18A(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv3d(1, 64, 7, stride=(1, 2, 2), padding=3, bias=False)
        self.bn1 = nn.BatchNorm3d(64)
        self.maxpool = nn.MaxPool3d(3, stride=2, padding=1)
        cin = 64
        for i, (c, dil) in enumerate(zip(STAGE_CHANNELS, STAGE_DILATION)):
            stride = 1 if i == 0 else 2
            layer = nn.Sequential(BasicBlock(cin, c, stride, dil), BasicBlock(c, c, 1, dil))
            setattr(self, "layer%d" % (i + 1), layer)
            cin = c

    def forward(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        outs = []
        for i in range(4):
            x = getattr(self, "layer%d" % (i + 1))(x)
            outs.append(x)
        return outs


class ViSDImageEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.res_model = ResNet18A()
        for i, c in enumerate(STAGE_CHANNELS):
            setattr(self, "proj%d" % (i + 1), nn.Conv3d(c, EMBED, 1, bias=True))

    def forward(self, x):
        feats = self.res_model(x)
        return [getattr(self, "proj%d" % (i + 1))(f) for i, f in enumerate(feats)]

    def stage_features(self, x):
        """The trunk outputs layer1..4 before the projections."""
        return self.res_model(x)


def _ff(dim, hidden):
    # PreNorm(FeedForward): net.0 LayerNorm, net.1 Linear, (GELU, Dropout), net.4 Linear
    return nn.ModuleDict({"net": nn.ModuleDict({"0": nn.LayerNorm(dim), "1": nn.Linear(dim, hidden),
                                                "4": nn.Linear(hidden, dim)})})


def _transformer(dim=768, depth=2, inner=1024, hidden=2048):
    layers = nn.ModuleDict()
    for i in range(depth):
        attn = nn.Module()
        attn.norm = nn.LayerNorm(dim)
        attn.to_qkv = nn.Linear(dim, 3 * inner, bias=False)
        attn.to_out = nn.ModuleDict({"0": nn.Linear(inner, dim)})
        layers[str(i)] = nn.ModuleDict({"0": attn, "1": _ff(dim, hidden)})
    t = nn.Module()
    t.layers = layers
    t.norm = nn.LayerNorm(dim)
    return t


class ViSDModel(nn.Module):
    """visual_encoder (the reference above) + parameter containers of the heads and the VQ-VAE,
    named as in the LAVIS checkpoints (method.md 8.3).  No text encoder (BERT)."""

    def __init__(self, with_heads=True, with_vq=True):
        super().__init__()
        self.visual_encoder = ViSDImageEncoder()
        if with_heads:
            self.query_tokens = nn.Parameter(torch.randn(4, EMBED) * 0.02)
            self.attention = nn.MultiheadAttention(EMBED, 4, dropout=0.1, batch_first=True)
            self.res_projs1 = nn.ModuleList([nn.Linear(2 * EMBED, EMBED) for _ in range(4)])
            self.res_projs2 = nn.ModuleList([nn.Linear(EMBED, EMBED) for _ in range(4)])
            self.vision_projs = nn.ModuleList([nn.Linear(EMBED, EMBED) for _ in range(4)])
            self.text_proj = nn.Linear(768, EMBED)
            self.temp = nn.Parameter(torch.tensor(0.07))
        if with_vq:
            vq = nn.Module()
            vq.register_buffer("embeddings", torch.randn(400, 768))
            vq.ema_dw = nn.Module()
            vq.ema_dw.register_buffer("hidden", torch.zeros(400, 768))
            vq.ema_cluster_size = nn.Module()
            vq.ema_cluster_size.register_buffer("hidden", torch.zeros(400))
            self.vq_layer = vq
            self.id_projs = nn.Linear(1, EMBED)
            enc = nn.Module()
            enc.input1 = nn.Linear(EMBED, 512)
            enc.input2 = nn.Linear(512, 768)
            enc.transformer = _transformer()
            dec = nn.Module()
            dec.transformer = _transformer()
            dec.output1 = nn.Linear(768, 512)
            dec.output2 = nn.Linear(512, EMBED)
            self.encoder, self.decoder = enc, dec


def randomize_bn(model, gen):
    """Non-trivial BatchNorm parameters and running statistics, so that folding BN into the
    convolutions is really exercised: gamma ~ U(0.5, 1.5), beta ~ N(0, 0.1), running_mean ~ N(0, 0.1),
    running_var ~ U(0.5, 2)."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm3d):
            n = m.num_features
            with torch.no_grad():
                m.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(n, generator=gen) * 0.1)
                m.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(n, generator=gen) * 1.5 + 0.5)
                m.num_batches_tracked.fill_(1000)


def make_random_model(seed, with_heads=True, with_vq=True):
    """ViSDModel with PyTorch's default initialisation under torch.manual_seed(seed) and random BN
    statistics; eval mode."""
    torch.manual_seed(seed)
    model = ViSDModel(with_heads, with_vq)
    gen = torch.Generator().manual_seed(seed + 1)
    randomize_bn(model, gen)
    return model.eval()


def encoder_from_state_dict(sd):
    """A ViSDImageEncoder (eval) loaded strictly from the 'visual_encoder.*' keys of sd."""
    enc = ViSDImageEncoder()
    sub = {k[len("visual_encoder."):]: v for k, v in sd.items() if k.startswith("visual_encoder.")}
    enc.load_state_dict(sub, strict=True)
    return enc.eval()


def grid_sizes(d, h, w):
    """Stage grids for an input of d x h x w, from the layer arithmetic (ceil halving)."""
    def conv_out(n, k, s, p, dil=1):
        return (n + 2 * p - dil * (k - 1) - 1) // s + 1
    d1, h1, w1 = conv_out(d, 7, 1, 3), conv_out(h, 7, 2, 3), conv_out(w, 7, 2, 3)
    g = [conv_out(d1, 3, 2, 1), conv_out(h1, 3, 2, 1), conv_out(w1, 3, 2, 1)]
    out = [tuple(g)]
    for dil in (1, 2, 4):
        g = [conv_out(n, 3, 2, dil, dil) for n in g]
        out.append(tuple(g))
    return out


def trunk_macs(d, h, w):
    """Multiply-accumulates of the trunk conv layers (conv1, layer1..4) and of the dense proj1..4."""
    def conv_out(n, k, s, p, dil=1):
        return (n + 2 * p - dil * (k - 1) - 1) // s + 1
    g = (conv_out(d, 7, 1, 3), conv_out(h, 7, 2, 3), conv_out(w, 7, 2, 3))
    n = g[0] * g[1] * g[2]
    macs = {"conv1": n * 64 * 343}
    grids = grid_sizes(d, h, w)
    cin = 64
    for i, c in enumerate(STAGE_CHANNELS):
        gd = grids[i]
        n = gd[0] * gd[1] * gd[2]
        macs["layer%d" % (i + 1)] = n * c * 27 * (cin + 3 * c)
        macs["proj%d" % (i + 1)] = n * c * EMBED
        cin = c
    return macs
