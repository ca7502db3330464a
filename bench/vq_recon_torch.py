"""The PyTorch reference of vq-recon (tests/ref/vq_ref.py) on a ct.tokens/1 file, for
bench/vq-recon.sh: loads the weights and tokens, then times the per-organ computation (VQ-VAE +
organ head) over every organ of every record; prints torch_seconds and the results' checksum.

    vq_recon_torch.py WEIGHTS TOKENS THREADS
"""
import os, sys, time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "ref"))
import reflib  # noqa: E402
import vq_ref  # noqa: E402

weights, tokens, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
torch.set_num_threads(threads)
w = next(reflib.read_stream(open(weights, "rb")))
model = vq_ref.VQHead().eval().load_arrays(w["tensors"])
recs = list(reflib.read_stream(open(tokens, "rb")))
organs = ["lung", "heart", "esophagus", "aorta"]
t0 = time.perf_counter()
feats = []
for r in recs:
    for o in r["meta"]["window_organs"]:
        keys = [r["tensors"]["emb%d/%s" % (s, o)] for s in (1, 2, 3, 4)]
        feats.append(model.organ(keys, organs.index(o))["feature"])
dt = time.perf_counter() - t0
print("torch_seconds", "%.4f" % dt)
print("torch_feature_sum", "%.6f" % float(np.sum(feats)))
