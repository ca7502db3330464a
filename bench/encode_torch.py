"""The PyTorch peer of bench/encode.sh: the reference encoder (tests/ref/visd_ref.py, the same
architecture as `encode`) in eval mode under torch.no_grad(), BatchNorm not folded (what users
run), on the image of the first ct.window/1 record, loaded from the same ct.weights/1 file.

    /usr/bin/python3 bench/encode_torch.py WEIGHTS WINDOW THREADS
prints "torch_seconds S" (best of REPEAT forward passes, default 1), "torch_gflops G" (dense MACs
of the trunk over S) and "torch_stage NAME S" for the stem (conv1 + bn1 + ReLU + max-pool) and
layer1..4 of that pass (forward hooks, timed in the same pass).

    DNNL_VERBOSE=1 /usr/bin/python3 bench/encode_torch.py --info
prints which kernels torch runs the encoder's convolutions with on this machine: its version, the
CPU capability of its own (ATen) kernels, the OpenBLAS core loaded in its process (torch links the
system's libblas too, with the same model-number detection as ours) and oneDNN's ISA and the
implementation it picks for a 3x3x3 conv of 64 channels (from oneDNN's verbose lines on stdout).
"""
import ctypes, os, sys, time

import numpy as np
import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, os.path.join(ROOT, "tests", "ref"))
import reflib  # noqa: E402
import visd_ref  # noqa: E402

if sys.argv[1:] == ["--info"]:
    cap = [l.split(":", 1)[1].strip() for l in torch.__config__.show().splitlines() if "CPU capability" in l]
    print("torch_info version %s, ATen CPU capability %s, oneDNN (mkldnn) %s" % (
        torch.__version__, cap[0] if cap else "?", "on" if torch.backends.mkldnn.is_available() else "off"))
    try:
        blas = ctypes.CDLL("libopenblas.so.0")
        blas.openblas_get_corename.restype = ctypes.c_char_p
        print("torch_info OpenBLAS core in torch's process: %s" % blas.openblas_get_corename().decode())
    except OSError:
        print("torch_info no libopenblas.so.0 in torch's process")
    sys.stdout.flush()
    with torch.no_grad():
        torch.nn.Conv3d(1, 64, 7, stride=(1, 2, 2), padding=3)(torch.randn(1, 1, 16, 64, 64))    # stem
        torch.nn.Conv3d(64, 64, 3, padding=1)(torch.randn(1, 64, 8, 32, 32))                     # layer1
    sys.exit(0)

wpath, win, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
repeat = int(os.environ.get("REPEAT", "1"))
torch.set_num_threads(threads)
sd = {k: torch.from_numpy(a.copy()) for k, a in next(reflib.read_stream(open(wpath, "rb")))["tensors"].items()}
enc = visd_ref.encoder_from_state_dict(sd)
img = next(reflib.read_stream(open(win, "rb")))["tensors"]["image"]
x = torch.from_numpy(img.copy())[None, None]
marks = {}
rm = enc.res_model


def mark(name):
    return lambda *args: marks.__setitem__(name, time.perf_counter())


rm.conv1.register_forward_pre_hook(mark("stem"))
rm.maxpool.register_forward_hook(mark("stem_end"))
for i in range(1, 5):
    getattr(rm, "layer%d" % i).register_forward_pre_hook(mark("layer%d" % i))
    getattr(rm, "layer%d" % i).register_forward_hook(mark("layer%d_end" % i))
best, stages = 1e30, {}
with torch.no_grad():
    for _ in range(repeat):
        t = time.perf_counter()
        out = enc(x)
        dt = time.perf_counter() - t
        if dt < best:
            best = dt
            stages = {k: marks[k + "_end"] - marks[k] for k in ["stem"] + ["layer%d" % i for i in range(1, 5)]}
macs = sum(v for k, v in visd_ref.trunk_macs(*img.shape).items() if not k.startswith("proj"))
print("torch_seconds %.3f" % best)
print("torch_gflops %.1f" % (2 * macs / best * 1e-9))
print("torch_threads %d" % torch.get_num_threads())
for k, v in stages.items():
    print("torch_stage %s %.3f" % (k, v))
