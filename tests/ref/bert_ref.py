"""bert_ref.py - the reference text side of ViSD-Boost, written from the specification
(method.md 3.1-3.2, 8.3) for the parity tests of lib/wordpiece.c and lib/bert.c.

Tokenizer: a transcription, in plain Python, of transformers' BertTokenizer (the slow one) with
do_lower_case=True, tokenize_chinese_chars=True, strip_accents=None: the per-character
lower-casing and the added-token split of PreTrainedTokenizer.tokenize, BasicTokenizer (_clean_text, _tokenize_chinese_chars,
whitespace_tokenize, lower + _run_strip_accents, _run_split_on_punc) and WordpieceTokenizer
(greedy longest match, "##", [UNK] over 100 characters), then [CLS] ... [SEP] and truncation.
Unicode comes from Python's unicodedata / str, as in transformers.  nfc=True adds the
unicodedata.normalize("NFC", text) step of newer transformers releases (4.3x), to check that
it changes nothing on the corpus.

Model: BERT as LAVIS med.py runs it for text (mode="text", token_type_ids=None): embeddings =
LayerNorm(word + position) without the token-type table, post-LN layers with exact GELU and LN eps
1e-12, the [CLS] state through text_proj, L2-normalised.  Written with torch.nn modules so the
maths is PyTorch's.
"""
import re
import unicodedata

SPECIAL = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def load_vocab(path):
    """transformers' load_vocab: readlines in text mode (universal newlines), rstrip('\\n')."""
    vocab = {}
    with open(path, "r", encoding="utf-8") as f:
        for i, line in enumerate(f.readlines()):
            vocab[line.rstrip("\n")] = i
    return vocab


def _is_whitespace(c):
    return c in " \t\n\r" or unicodedata.category(c) == "Zs"


def _is_control(c):
    if c in "\t\n\r":
        return False
    return unicodedata.category(c).startswith("C")


def _is_punctuation(c):
    cp = ord(c)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(c).startswith("P")


def _is_chinese_char(cp):
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF or
            0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF or
            0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


def whitespace_tokenize(text):
    text = text.strip()
    return text.split() if text else []


def basic_tokenize(text, nfc=False):
    out = []
    for c in text:                               # _clean_text
        cp = ord(c)
        if cp == 0 or cp == 0xFFFD or _is_control(c):
            continue
        out.append(" " if _is_whitespace(c) else c)
    text = "".join(out)
    text = "".join(" %s " % c if _is_chinese_char(ord(c)) else c for c in text)
    if nfc:
        text = unicodedata.normalize("NFC", text)
    split_tokens = []
    for token in whitespace_tokenize(text):
        token = token.lower()
        token = "".join(c for c in unicodedata.normalize("NFD", token) if unicodedata.category(c) != "Mn")
        words, new = [], True                    # _run_split_on_punc
        for c in token:
            if _is_punctuation(c):
                words.append([c])
                new = True
            else:
                if new:
                    words.append([])
                new = False
                words[-1].append(c)
        split_tokens.extend("".join(w) for w in words)
    return whitespace_tokenize(" ".join(split_tokens))


def wordpiece(token, vocab, max_chars=100):
    chars = list(token)
    if len(chars) > max_chars:
        return ["[UNK]"]
    start, sub = 0, []
    while start < len(chars):
        end, cur = len(chars), None
        while start < end:
            s = "".join(chars[start:end])
            if start > 0:
                s = "##" + s
            if s in vocab:
                cur = s
                break
            end -= 1
        if cur is None:
            return ["[UNK]"]
        sub.append(cur)
        start = end
    return sub


def tokenize(text, vocab, nfc=False):
    """PreTrainedTokenizer.tokenize: lower-case all but the special tokens one character at a time
    (its pass for tokenizers with do_lower_case, which BertTokenizer has as a property), split out
    the special tokens, then _tokenize each segment."""
    pattern = r"(" + r"|".join(re.escape(s) for s in SPECIAL) + r")|" + r"(.+?)"
    text = re.sub(pattern, lambda m: m.groups()[0] or m.groups()[1].lower(), text)
    segs, i, last = [], 0, 0
    while i < len(text):
        for s in SPECIAL:
            if text.startswith(s, i):
                segs += [text[last:i], s]
                i = last = i + len(s)
                break
        else:
            i += 1
    segs.append(text[last:])
    toks = []
    for seg in segs:
        if seg in SPECIAL:
            toks.append(seg)
        elif seg:
            for t in basic_tokenize(seg, nfc):
                toks.extend(wordpiece(t, vocab))
    return toks


def encode(text, vocab, max_length=384, nfc=False):
    """tokenizer(text, truncation=True, max_length=max_length)["input_ids"]"""
    unk = vocab["[UNK]"]
    ids = [vocab.get(t, unk) for t in tokenize(text, vocab, nfc)]
    return [vocab["[CLS]"]] + ids[:max_length - 2] + [vocab["[SEP]"]]


# ---- the model ----

import math  # noqa: E402

import torch  # noqa: E402
from torch import nn  # noqa: E402

PREFIX = "text_encoder."


class _SelfAttention(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.query, self.key, self.value = (nn.Linear(hidden, hidden) for _ in range(3))


class _Dense(nn.Module):
    """attention.output / output: dense, then LayerNorm(dense(x) + residual)."""

    def __init__(self, cin, hidden):
        super().__init__()
        self.dense = nn.Linear(cin, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=1e-12)

    def forward(self, x, residual):
        return self.LayerNorm(self.dense(x) + residual)


class _Layer(nn.Module):
    def __init__(self, hidden, heads, inter):
        super().__init__()
        self.heads = heads
        self.attention = nn.Module()
        self.attention.self = _SelfAttention(hidden)
        self.attention.output = _Dense(hidden, hidden)
        self.intermediate = nn.Module()
        self.intermediate.dense = nn.Linear(hidden, inter)
        self.output = _Dense(inter, hidden)

    def forward(self, x):                        # x [B, L, H]; no padding (one length per batch)
        b, n, h = x.shape
        dh = h // self.heads
        sa = self.attention.self

        def split(t):
            return t.view(b, n, self.heads, dh).transpose(1, 2)
        q, k, v = split(sa.query(x)), split(sa.key(x)), split(sa.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(dh)
        ctx = torch.matmul(torch.softmax(scores, dim=-1), v).transpose(1, 2).reshape(b, n, h)
        a = self.attention.output(ctx, x)
        inter = nn.functional.gelu(self.intermediate.dense(a))   # exact erf GELU ("gelu")
        return self.output(inter, a)


class BertText(nn.Module):
    """text_encoder.* of the checkpoint (method.md 8.3) plus the forward of med.py in text mode."""

    def __init__(self, vocab=30522, hidden=768, layers=12, heads=12, inter=3072, max_pos=512, type_vocab=2):
        super().__init__()
        self.heads = heads
        e = nn.Module()
        e.word_embeddings = nn.Embedding(vocab, hidden)
        e.position_embeddings = nn.Embedding(max_pos, hidden)
        e.token_type_embeddings = nn.Embedding(type_vocab, hidden)   # in the checkpoint, unused
        e.LayerNorm = nn.LayerNorm(hidden, eps=1e-12)
        e.register_buffer("position_ids", torch.arange(max_pos).unsqueeze(0))
        self.embeddings = e
        self.encoder = nn.Module()
        self.encoder.layer = nn.ModuleList([_Layer(hidden, heads, inter) for _ in range(layers)])

    def forward(self, ids):                      # ids [B, L] int64 -> last hidden state [B, L, H]
        e = self.embeddings
        pos = e.position_ids[:, :ids.shape[1]]
        x = e.LayerNorm(e.word_embeddings(ids) + e.position_embeddings(pos))   # no token type
        for layer in self.encoder.layer:
            x = layer(x)
        return x


def make_random_text(seed, vocab=30522, hidden=768, layers=12, heads=None, inter=None, max_pos=512):
    """BertText under torch.manual_seed(seed) with PyTorch's default init, then LayerNorm gamma ~
    U(0.5, 1.5), beta ~ N(0, 0.1) so that every parameter matters (the embedding tables are N(0, 1)
    by default, the token-type table too, which must stay unused); plus text_proj [256, hidden]
    and temp 0.07.  Returns
    (model, text_proj, temp)."""
    torch.manual_seed(seed)
    heads = heads or hidden // 64
    m = BertText(vocab, hidden, layers, heads, inter or 4 * hidden, max_pos)
    gen = torch.Generator().manual_seed(seed + 2)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.LayerNorm):
                mod.weight.copy_(torch.rand(hidden, generator=gen) + 0.5)
                mod.bias.copy_(torch.randn(hidden, generator=gen) * 0.1)
    proj = nn.Linear(hidden, 256)
    return m.eval(), proj, nn.Parameter(torch.tensor(0.07))


def text_state_dict(model, proj, temp):
    sd = {PREFIX + k: v for k, v in model.state_dict().items()}
    sd["text_proj.weight"], sd["text_proj.bias"], sd["temp"] = proj.weight.data, proj.bias.data, temp.data
    return sd


def from_weights(tensors, heads=None, dtype=torch.float64):
    """BertText + text_proj from a ct.weights/1 record's tensors (name -> numpy), in dtype."""
    w = tensors[PREFIX + "embeddings.word_embeddings.weight"]
    vocab, hidden = w.shape
    layers = 0
    while (PREFIX + "encoder.layer.%d.attention.self.query.weight" % layers) in tensors:
        layers += 1
    inter = tensors[PREFIX + "encoder.layer.0.intermediate.dense.weight"].shape[0]
    max_pos = tensors[PREFIX + "embeddings.position_embeddings.weight"].shape[0]
    m = BertText(vocab, hidden, layers, heads or hidden // 64, inter, max_pos)
    sd = {k[len(PREFIX):]: torch.from_numpy(v.copy()) for k, v in tensors.items()
          if k.startswith(PREFIX) and k[len(PREFIX):] in m.state_dict()}
    m.load_state_dict(sd, strict=True)
    proj = nn.Linear(hidden, tensors["text_proj.weight"].shape[0])
    proj.load_state_dict({"weight": torch.from_numpy(tensors["text_proj.weight"].copy()),
                          "bias": torch.from_numpy(tensors["text_proj.bias"].copy())})
    m.embeddings.position_ids = m.embeddings.position_ids.long()
    return m.to(dtype).eval(), proj.to(dtype).eval()


@torch.no_grad()
def prompt_features(model, proj, id_lists):
    """method.md 3.2: per prompt the [CLS] state of the last layer -> text_proj -> L2.  Prompts of
    equal length run as one batch without padding, which equals the released padded batch with
    its attention mask (3.1)."""
    out = [None] * len(id_lists)
    for n in sorted({len(i) for i in id_lists}):
        which = [k for k, i in enumerate(id_lists) if len(i) == n]
        x = model(torch.tensor([id_lists[k] for k in which], dtype=torch.long))
        f = nn.functional.normalize(proj(x[:, 0, :]), dim=-1)
        for j, k in enumerate(which):
            out[k] = f[j]
    return torch.stack(out)
