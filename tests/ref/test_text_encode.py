"""text-encode (lib/bert.c on lib/transformer.c) against the PyTorch reference of bert_ref.py,
written from method.md 3.1-3.2: seeded random text encoders from tools/ctvis-convert.py, a small
one (2 layers, width 128, 2 heads: meta text_heads, not width / 64) and the full BERT-base size
(12 layers, 768, 12 heads, 3072, 30,522 rows).  The reference runs in float64 (small) or float32
(full size) on the ids of the Python tokenizer transcription; our float32 features must agree within 1e-5 (max abs, on the
L2-normalised 256-d features).  Also: the record's layout and meta (schemas/ct.prompts.v1.yaml),
the vocabulary stored in the weights vs --vocab, and threads (-j 2) within the same tolerance."""
import os, subprocess, sys, tempfile, time

import numpy as np
import torch

import reflib
import bert_ref

TOL = 1e-5
CONVERT = os.path.join(reflib.ROOT, "tools", "ctvis-convert.py")
ITEMS_YAML = os.path.join(reflib.ROOT, "pipelines", "ct-rate-abnormalities.yaml")
REAL_VOCAB = os.path.join(reflib.DATA, "bert-vocab", "vocab.txt")


def items():
    import yaml
    return yaml.safe_load(open(ITEMS_YAML))["items"]


def make_vocab(path):
    """Special tokens, the prompts' basic tokens, every letter alone and as ## piece."""
    toks = ["[PAD]", "[unused0]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    words = sorted({t for it in items() for p in (it["negative"], it["positive"]) for t in bert_ref.basic_tokenize(p)})
    toks += [w for w in words if len(w) < 9]      # longer words are covered by pieces
    for c in "abcdefghijklmnopqrstuvwxyz":
        toks += [c, "##" + c]
    toks += ["##tion", "##ation", "##al", "##ic", "##ar", "##is"]
    with open(path, "w") as f:
        f.write("\n".join(toks) + "\n")


def convert(out, seed, *args):
    subprocess.run([sys.executable, CONVERT, "--random", str(seed), "--text-only", "-o", out] + list(args),
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def parity(name, weights, vocab_path, heads=None, extra=(), dtype=torch.float64):
    t0 = time.time()
    out, err, _ = reflib.run(["text-encode", "-w", weights] + list(extra))
    t_c = time.time() - t0
    (rec,) = reflib.records(out)
    tf = rec["tensors"]["text_feat"]
    its = items()
    reflib.check(name + "-layout", rec["schema"] == "ct.prompts/1" and rec["id"] == "prompts" and
                 tf.dtype == np.float32 and tf.shape == (len(its), 2, 256) and
                 rec["meta"]["items"] == [{k: it[k] for k in ("organ", "abnormality", "negative", "positive")}
                                          for it in its] and rec["meta"]["max_length"] == 384 and
                 rec["meta"]["weights_untrained"] is True, "shape %s meta %s" % (tf.shape, list(rec["meta"])))
    (w,) = reflib.records(open(weights, "rb").read())
    wt = w["tensors"]
    reflib.check(name + "-temp", abs(rec["meta"]["temp"] - float(wt["temp"])) == 0.0,   # copied, exact
                 "%r vs %r" % (rec["meta"]["temp"], float(wt["temp"])))
    vocab = bert_ref.load_vocab(vocab_path)
    ids = [bert_ref.encode(p, vocab) for it in its for p in (it["negative"], it["positive"])]
    t0 = time.time()
    model, proj = bert_ref.from_weights(wt, heads=heads, dtype=dtype)
    ref = bert_ref.prompt_features(model, proj, ids).numpy().reshape(len(its), 2, -1)
    t_ref = time.time() - t0
    err = float(np.abs(tf.astype(np.float64) - ref).max())
    reflib.check(name + "-parity", err <= TOL, "max abs err %.3g > %g" % (err, TOL))
    # a reference with the token-type row added (stock HF BERT) must be measurably different,
    # or the test could not tell the two apart
    with torch.no_grad():
        e = model.embeddings
        saved = e.position_embeddings.weight.clone()
        e.position_embeddings.weight += e.token_type_embeddings.weight[0]
        alt = bert_ref.prompt_features(model, proj, ids).numpy().reshape(len(its), 2, -1)
        e.position_embeddings.weight.copy_(saved)
    reflib.check(name + "-token-type-matters", float(np.abs(alt - ref).max()) > 100 * TOL)
    print("# %s: max abs err %.3g; text-encode %.2f s, %s reference %.2f s" % (name, err, t_c, dtype, t_ref))
    return tf


def main():
    with tempfile.TemporaryDirectory(prefix="ctvis-te.") as d:
        vocab = os.path.join(d, "vocab.txt")
        make_vocab(vocab)
        small = os.path.join(d, "small.ctv")
        convert(small, 5, "--text-layers", "2", "--text-hidden", "128", "--text-heads", "2", "--vocab", vocab)
        tf = parity("small", small, vocab, heads=2)
        out, _, _ = reflib.run(["text-encode", "-w", small, "--vocab", vocab, "-j", "2"])
        tf2 = reflib.records(out)[0]["tensors"]["text_feat"]
        reflib.check("small-threads", float(np.abs(tf2 - tf).max()) <= TOL)
        # damaged text encoders: one clear error line each, nothing on stdout
        (w,) = reflib.records(open(small, "rb").read())
        for label, edit, pattern in [
                ("missing", lambda t: t.pop(bert_ref.PREFIX + "encoder.layer.1.output.dense.bias"),
                 "missing tensor 'text_encoder.encoder.layer.1.output.dense.bias'"),
                ("mis-shaped", lambda t: t.__setitem__(bert_ref.PREFIX + "encoder.layer.0.intermediate.dense.bias",
                                                        np.zeros(7, np.float32)),
                 "tensor 'text_encoder.encoder.layer.0.intermediate.dense.bias' is f32 [7], expected f32 [512]"),
                ("f64", lambda t: t.__setitem__("text_proj.bias", t["text_proj.bias"].astype(np.float64)),
                 "tensor 'text_proj.bias' is f64 [256], expected f32 [256]")]:
            t = dict(w["tensors"])
            edit(t)
            bad = os.path.join(d, "bad.ctv")
            with open(bad, "wb") as f:
                reflib.write_record(f, "ct.weights/1", w["id"], t, w["meta"])
            out, err, rc = reflib.run(["text-encode", "-w", bad], check_rc=False)
            reflib.check("weights-" + label, rc == 1 and out == b"" and len(err.strip().splitlines()) == 1 and
                         pattern in err, err)
        full = os.path.join(d, "full.ctv")
        real = os.path.exists(REAL_VOCAB)
        t0 = time.time()
        if real:
            convert(full, 7, "--vocab", REAL_VOCAB)
        else:
            reflib.skip("full-real-vocab", "../shared/data absent: a made-up vocabulary with 30,522 embedding rows")
            convert(full, 7, "--vocab", vocab, "--text-vocab-size", "30522")
        print("# full-size random weights converted in %.1f s" % (time.time() - t0))
        # float32 reference at full size (float64 would double the test's time and memory); the
        # two float32 implementations differ by ~1e-7
        parity("full", full, REAL_VOCAB if real else vocab, dtype=torch.float32)


main()
reflib.done()
