#!/usr/bin/python3
"""ctvis-convert - the authors' LAVIS checkpoints of ViSD-Boost into one ct.weights/1 stream.

Reads checkpoint_vqvae.pth and checkpoint.pth (torch.save({"model": state_dict, "optimizer": ...,
"config": ..., "scaler": None, "epoch": n})), merges their "model" dicts as the released eval does
(method.md 8.1: the VQ-VAE file first, checkpoint.pth overriding it), drops the optimizer and the
BatchNorm num_batches_tracked counters, and writes one ct.weights/1 record whose tensors are named
by the checkpoint keys (f32; integer buffers as i64).  It reports missing, unexpected and
mis-shaped keys of the image encoder (and missing head/VQ keys) against the reference model of
tests/ref/visd_ref.py, and fails when the encoder does not match.

    tools/ctvis-convert.py --checkpoint checkpoint.pth --vqvae checkpoint_vqvae.pth -o visd-boost.ctv
    tools/ctvis-convert.py --checkpoint checkpoint.pth --encoder-only -o visd-encoder.ctv   # for encode
    tools/ctvis-convert.py --random 1 -o random1.ctv          # seeded, untrained: tests and demos
    tools/ctvis-convert.py --random 1 --text-only --text-layers 2 --text-hidden 64 \
        --vocab vocab.txt -o text-small.ctv                   # a small random text encoder

--random SEED builds the reference model with PyTorch's default initialisation (torch.manual_seed)
and random BatchNorm statistics, saves it in the LAVIS layout (two files, split as the released
ones are, with stale BN statistics in the VQ-VAE file that the merge must override), then converts
those files like real ones.  The record is labelled meta.untrained = true.  With --text (implied
by --text-only and by the size options) it includes a random text encoder (tests/ref/bert_ref.py:
BERT-base size by default, --text-layers/--text-hidden/--text-heads/--text-intermediate/
--text-vocab-size for small test models) with text_proj [256, hidden] and temp 0.07; without,
the image model, heads and VQ-VAE only, as before.

--vocab FILE stores the text encoder's vocab.txt in the record (tensor text_vocab, u8 [bytes]), so
that text-encode needs no other file; the checkpoints do not contain it (it ships with the
CXR-BERT model folder).  Without it, text-encode needs --vocab FILE.  meta text_heads records the
attention heads (not derivable from the tensor shapes).

Run with Debian's /usr/bin/python3 (torch, numpy, msgpack).  Exit status 0 ok, 1 bad checkpoint or
mismatching encoder keys (nothing written), 2 usage.
"""
import argparse, hashlib, os, sys, tempfile

import msgpack
import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "ref"))
import visd_ref  # noqa: E402
import bert_ref  # noqa: E402

PROG = "ctvis-convert"
ENC = "visual_encoder."
TEXT = "text_encoder."
TEXT_KEEP = (TEXT, "text_proj.", "temp", "text_vocab")   # --text-only
DTYPES = {np.dtype("float32"): "f32", np.dtype("int64"): "i64", np.dtype("int32"): "i32", np.dtype("uint8"): "u8"}


def die(msg, code=1):
    print("%s: %s" % (PROG, msg), file=sys.stderr)
    sys.exit(code)


def load_lavis(path):
    if not os.path.isfile(path):
        die("%s: no such file" % path)
    try:
        ck = torch.load(path, map_location="cpu")
    except Exception as e:  # torch raises many kinds
        die("%s: not a torch checkpoint (%s)" % (path, str(e).splitlines()[0][:200]))
    if not isinstance(ck, dict) or "model" not in ck or not isinstance(ck["model"], dict):
        die("%s: not a LAVIS checkpoint (no 'model' state_dict)" % path)
    return ck["model"]


def merge(vqvae_sd, main_sd):
    """method.md 8.1: load the VQ-VAE checkpoint first, then checkpoint.pth over it."""
    sd = dict(vqvae_sd or {})
    sd.update(main_sd)
    return {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}


def expected_keys():
    """{key: shape} of the reference model: encoder, heads and VQ (method.md 8.3)."""
    m = visd_ref.ViSDModel(with_heads=True, with_vq=True)
    return {k: tuple(v.shape) for k, v in m.state_dict().items() if not k.endswith("num_batches_tracked")}


def report(sd):
    """Print missing / unexpected / mis-shaped keys; returns the number of encoder problems."""
    exp = expected_keys()
    w = sd.get(TEXT + "embeddings.word_embeddings.weight")
    if w is not None and w.dim() == 2:     # text_proj follows the text encoder's width
        exp["text_proj.weight"] = (exp["text_proj.weight"][0], w.shape[1])
    problems = 0
    lines = []
    missing_other = {}
    for k, shape in exp.items():
        enc = k.startswith(ENC)
        if k not in sd and not enc:
            missing_other.setdefault(k.split(".")[0], []).append(k)
        elif k not in sd:
            lines.append("missing key %s %s" % (k, list(shape)))
            problems += 1
        elif tuple(sd[k].shape) != shape:
            lines.append("mis-shaped key %s %s, expected %s" % (k, list(sd[k].shape), list(shape)))
            problems += enc
    for k in sd:
        if k.startswith(ENC) and k not in exp:
            lines.append("unexpected key %s %s" % (k, list(sd[k].shape)))
            problems += 1
    for mod, ks in sorted(missing_other.items()):
        lines.append("missing %d head/VQ key%s of '%s' (e.g. %s): later stages need them" %
                     (len(ks), "s" if len(ks) > 1 else "", mod, ks[0]))
    other = [k for k in sd if k not in exp and not k.startswith(ENC)]
    for line in lines:
        print("%s: %s" % (PROG, line), file=sys.stderr)
    print("%s: %d tensors: %d encoder keys (%d expected), %d head/VQ keys, %d others (text encoder ...), "
          "%d encoder problems" % (PROG, len(sd), sum(k.startswith(ENC) for k in sd),
                                   sum(k.startswith(ENC) for k in exp), sum(k in exp and not k.startswith(ENC) for k in sd),
                                   len(other), problems), file=sys.stderr)
    return problems


def to_numpy(t):
    a = t.detach().cpu()
    if a.is_floating_point():
        a = a.float()
    elif a.dtype == torch.bool:
        a = a.to(torch.uint8)
    elif a.dtype not in (torch.int64, torch.int32, torch.uint8):
        a = a.to(torch.int64)
    return np.array(a.numpy(), order="C", copy=True)   # (ascontiguousarray makes 0-d arrays 1-d)


def encoder_sha256(arrays):
    """sha256 over the encoder tensors in key order: name, dtype, shape and little-endian bytes."""
    h = hashlib.sha256()
    for k in sorted(arrays):
        if not k.startswith(ENC):
            continue
        a = arrays[k]
        h.update(k.encode() + b"\0" + DTYPES[a.dtype].encode() + b"\0" + repr(list(a.shape)).encode() + b"\0")
        h.update(a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes())
    return h.hexdigest()


def write_weights(path, rid, arrays, meta):
    tensors = {}
    for k, a in arrays.items():
        if len(k.encode()) > 127:
            die("key %s is longer than 127 bytes" % k)
        tensors[k] = {"dtype": DTYPES[a.dtype], "shape": list(a.shape), "codec": "raw",
                      "data": a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()}
    if len(tensors) > 1024:
        die("%d tensors: a ctvis record holds at most 1024 (use --encoder-only)" % len(tensors))
    blob = msgpack.packb({"schema": "ct.weights/1", "id": rid, "meta": meta, "tensors": tensors}, use_bin_type=True)
    if path == "-":
        if sys.stdout.isatty():
            die("refusing to write a binary stream to a terminal (use -o FILE)", 2)
        sys.stdout.buffer.write(blob)
        sys.stdout.flush()
        return
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".ctvis-convert.", dir=d)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def save_random_lavis(seed, outdir, with_vq=True, text=None):
    """The seeded reference model saved as LAVIS would: checkpoint.pth (trainable parameters and
    buffers, no VQ-VAE modules) and checkpoint_vqvae.pth (VQ-VAE parameters and buffers, plus the
    encoder's BN buffers with other values, which checkpoint.pth must override).  text: None, or
    the keyword arguments of bert_ref.make_random_text (its text_proj and temp replace the model's)."""
    model = visd_ref.make_random_model(seed, with_heads=True, with_vq=with_vq)
    sd = model.state_dict()
    if text is not None:
        sd.update(bert_ref.text_state_dict(*bert_ref.make_random_text(seed, **text)))
    vq_mods = ("encoder.", "decoder.", "id_projs.", "vq_layer.")
    main = {k: v for k, v in sd.items() if not k.startswith(vq_mods)}
    vq = {k: v for k, v in sd.items() if k.startswith(vq_mods)}
    for k, v in sd.items():   # stale BN statistics, overridden by checkpoint.pth in the merge
        if k.startswith(ENC) and ("running_" in k):
            vq[k] = v + 1.0
    os.makedirs(outdir, exist_ok=True)
    cfg = {"model": {"arch": "visd_boost", "note": "ctvis random reference weights, seed %d" % seed}}
    opt = {"state": {}, "param_groups": [{"lr": 0.0, "params": []}]}
    main_path = os.path.join(outdir, "checkpoint.pth")
    vq_path = os.path.join(outdir, "checkpoint_vqvae.pth")
    torch.save({"model": main, "optimizer": opt, "config": cfg, "scaler": None, "epoch": 0}, main_path)
    torch.save({"model": vq, "optimizer": opt, "config": cfg, "scaler": None, "epoch": 0}, vq_path)
    return main_path, vq_path


def main():
    ap = argparse.ArgumentParser(prog=PROG, description="Convert ViSD-Boost LAVIS checkpoints to a ct.weights/1 stream.")
    ap.add_argument("--checkpoint", help="checkpoint.pth (encoder, heads, text encoder)")
    ap.add_argument("--vqvae", help="checkpoint_vqvae.pth (VQ-VAE), loaded first")
    ap.add_argument("--random", type=int, metavar="SEED", help="seeded random (untrained) reference weights")
    ap.add_argument("--save-lavis", metavar="DIR", help="with --random: keep the LAVIS checkpoints written in DIR")
    ap.add_argument("--no-vq", action="store_true", help="with --random: no VQ-VAE parameters (smaller file)")
    ap.add_argument("--encoder-only", action="store_true", help="write only the visual_encoder.* tensors "
                    "(encode reads its whole weights record: 133 MB instead of ~0.8 GB with the text encoder)")
    ap.add_argument("--no-text", action="store_true", help="drop the text encoder (text_encoder.*, BERT)")
    ap.add_argument("--text-only", action="store_true", help="write only the text encoder, text_proj, temp "
                    "(and text_vocab): what text-encode reads")
    ap.add_argument("--vocab", metavar="FILE", help="store the text encoder's vocab.txt in the record (tensor text_vocab)")
    ap.add_argument("--text-heads", type=int, metavar="N", help="attention heads of the text encoder, stored as "
                    "meta text_heads (default: width / 64; CXR-BERT: 12)")
    g = ap.add_argument_group("random text encoder (--random)")
    g.add_argument("--text", action="store_true", help="add a random text encoder (BERT-base size unless "
                   "the options below say otherwise; implied by --text-only and by them)")
    g.add_argument("--text-layers", type=int, metavar="N", help="layers (default 12)")
    g.add_argument("--text-hidden", type=int, metavar="H", help="width (default 768)")
    g.add_argument("--text-intermediate", type=int, metavar="N", help="feed-forward width (default 4 H)")
    g.add_argument("--text-vocab-size", type=int, metavar="N",
                   help="embedding rows (default: the lines of --vocab, else 30522)")
    ap.add_argument("--id", help="record id (default visd-boost, or visd-random-SEED)")
    ap.add_argument("-o", "--output", default="-", help="output file (default stdout)")
    a = ap.parse_args()
    if (a.random is None) == (a.checkpoint is None):
        ap.error("give either --checkpoint FILE [--vqvae FILE] or --random SEED")
    if a.text_only and (a.no_text or a.encoder_only):
        ap.error("--text-only excludes --no-text and --encoder-only")
    vocab_bytes = None
    if a.vocab:
        try:
            vocab_bytes = open(a.vocab, "rb").read()
        except OSError as e:
            die("%s: %s" % (a.vocab, e.strerror))
        try:
            vocab_lines = bert_ref.load_vocab(a.vocab)
            with open(a.vocab, encoding="utf-8") as f:
                vocab_nlines = len(f.readlines())      # ids 0 .. lines-1 (load_vocab)
        except UnicodeDecodeError:
            die("%s: not UTF-8 (not a vocab.txt)" % a.vocab)
        if "[UNK]" not in vocab_lines or "[CLS]" not in vocab_lines or "[SEP]" not in vocab_lines:
            die("%s: no [UNK], [CLS] or [SEP] token (not a BERT vocab.txt)" % a.vocab)
    want_text = a.text or a.text_only or any(x is not None for x in (
        a.text_layers, a.text_hidden, a.text_intermediate, a.text_vocab_size))
    if want_text and (a.no_text or a.encoder_only):
        ap.error("a random text encoder excludes --no-text and --encoder-only")
    hidden = a.text_hidden or 768
    a.text_layers = a.text_layers or 12
    if hidden < 1 or a.text_layers < 1:
        ap.error("--text-hidden and --text-layers must be positive")
    heads = a.text_heads or (hidden // 64 if hidden % 64 == 0 else None)
    if heads is None or heads < 1 or hidden % heads:
        ap.error("--text-heads: give a number of heads dividing --text-hidden %d" % hidden)
    nvocab = a.text_vocab_size or (vocab_nlines if vocab_bytes else 30522)
    text_cfg = None if not want_text else {
        "vocab": nvocab, "hidden": hidden, "layers": a.text_layers, "heads": heads,
        "inter": a.text_intermediate or 4 * hidden}
    meta = {}
    if a.random is not None:
        tmpdir = None
        outdir = a.save_lavis
        if not outdir:
            tmpdir = tempfile.TemporaryDirectory(prefix="ctvis-convert.")
            outdir = tmpdir.name
        main_path, vq_path = save_random_lavis(a.random, outdir, with_vq=not (a.no_vq or a.text_only),
                                               text=text_cfg)
        sd = merge(load_lavis(vq_path), load_lavis(main_path))
        meta.update({"untrained": True, "seed": a.random, "init": "torch default init (manual_seed(seed)); "
                     "BN gamma U(0.5,1.5), beta N(0,0.1), mean N(0,0.1), var U(0.5,2)",
                     "sources": ["tests/ref/visd_ref.py"]})
        rid = a.id or "visd-random-%d" % a.random
        if tmpdir:
            tmpdir.cleanup()
    else:
        vq = load_lavis(a.vqvae) if a.vqvae else None
        sd = merge(vq, load_lavis(a.checkpoint))
        meta.update({"untrained": False, "sources": [p for p in (a.vqvae, a.checkpoint) if p]})
        rid = a.id or "visd-boost"
    if report(sd):
        die("the image encoder keys do not match the ViSD-Boost architecture (see above); nothing written")
    if a.encoder_only:
        sd = {k: v for k, v in sd.items() if k.startswith(ENC)}
    if a.no_text:
        sd = {k: v for k, v in sd.items() if not k.startswith(TEXT)}
    if a.text_only:
        sd = {k: v for k, v in sd.items() if k.startswith(TEXT_KEEP)}
    has_text = any(k.startswith(TEXT) for k in sd)
    if a.text_only and not has_text:
        die("--text-only: the checkpoint has no text encoder (text_encoder.*)")
    arrays = {k: to_numpy(v) for k, v in sd.items() if torch.is_tensor(v)}
    if has_text:
        width = arrays[TEXT + "embeddings.word_embeddings.weight"].shape[1]
        meta["text_heads"] = a.text_heads or (heads if text_cfg else width // 64)
        if vocab_bytes is not None:
            rows = arrays[TEXT + "embeddings.word_embeddings.weight"].shape[0]
            if vocab_nlines > rows:
                die("%s: %d tokens, but the text encoder has %d embedding rows" % (a.vocab, vocab_nlines, rows))
            arrays["text_vocab"] = np.frombuffer(vocab_bytes, dtype=np.uint8).copy()
    meta.update({"model": "visd-boost", "sha256": encoder_sha256(arrays), "format": "ct.weights/1",
                 "n_params": int(sum(x.size for x in arrays.values()))})
    write_weights(a.output, rid, arrays, meta)


if __name__ == "__main__":
    main()
