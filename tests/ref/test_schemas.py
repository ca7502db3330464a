"""schemas/: every record type's YAML parses, names its schema, producer and consumers, and is listed
in schemas/README.md; every schema named in the README table has its file; and the records the
tools write (a small phantom through every stage) carry exactly the keys their YAML documents:
no undocumented meta or tensor key, no documented required key missing."""
import glob, os, re, sys
import yaml
import reflib
from reflib import check

root = os.path.join(reflib.ROOT, "schemas")
readme = open(os.path.join(root, "README.md")).read()
listed = set(re.findall(r"^\| `([a-z0-9_.-]+/\d+)` \|", readme, re.M))
files = sorted(glob.glob(os.path.join(root, "*.v[0-9]*.yaml")))
seen = set()
for path in files:
    name = os.path.basename(path)
    try:
        doc = yaml.safe_load(open(path))
    except yaml.YAMLError as e:
        check("schema %s parses" % name, False, str(e).replace("\n", " "))
        continue
    check("schema %s parses" % name, isinstance(doc, dict))
    sch = doc.get("schema", "")
    m = re.match(r"^([a-z0-9_.-]+)/(\d+)$", str(sch))
    check("schema %s: 'schema: name/major' matches the file name" % name,
          m is not None and name == "%s.v%s.yaml" % (m.group(1), m.group(2)), str(sch))
    if "producer" in doc or "consumers" in doc:
        check("schema %s: producer and consumers" % name, doc.get("producer") and doc.get("consumers") is not None)
    seen.add(sch)
    if sch not in listed:
        check("schema %s is in the schemas/README.md table" % sch, False, "missing from the table")
    else:
        check("schema %s is in the schemas/README.md table" % sch, True)
for sch in sorted(listed - seen):
    check("README table entry %s has a schema file" % sch, False, "no schemas/%s.v*.yaml" % sch)

# ---- the records the tools write against their YAML ----
import tempfile
from reflib import run, records

def patterns(keys):
    """YAML key names -> regexes: {s} is a stage 1-4, X / {X} / <...> any name."""
    out = []
    for k in keys:
        if k.startswith("("):
            continue
        r = re.escape(k)
        r = r.replace(re.escape("{s}"), "[1-4]").replace(re.escape("{X}"), ".+")
        r = re.sub(re.escape("<") + ".*?" + re.escape(">"), ".+", r)
        r = re.sub(r"/X$", "/.+", r)
        out.append(re.compile("^" + r + "$"))
    return out

def schema_doc(name):
    return yaml.safe_load(open(os.path.join(root, name + ".yaml")))

def check_records(label, recs, name, extra_meta=()):
    doc = schema_doc(name)
    tdoc, mdoc = doc.get("tensors") or {}, doc.get("meta") or {}
    tp, mp = patterns(tdoc), patterns(list(mdoc) + list(extra_meta))
    passthrough = any(k.startswith("(") for k in mdoc)
    bad_t = sorted({k for r in recs for k in r["tensors"] if not any(p.match(k) for p in tp)})
    bad_m = sorted({k for r in recs for k in r["meta"] if not any(p.match(k) for p in mp)})
    check("%s: every tensor is documented in %s.yaml" % (label, name), recs and not bad_t, str(bad_t))
    if not passthrough:
        check("%s: every meta key is documented in %s.yaml" % (label, name), recs and not bad_m, str(bad_m))
    req_t = [k for k, v in tdoc.items() if isinstance(v, dict) and v.get("required") is True and "{" not in k
             and "<" not in k and "/X" not in k]
    req_m = [k for k, v in mdoc.items() if isinstance(v, dict) and v.get("required") is True and not k.startswith("(")]
    miss = sorted({k for r in recs for k in req_t if k not in r["tensors"]} |
                  {k for r in recs for k in req_m if k not in r["meta"]})
    check("%s: every required key of %s.yaml is present" % (label, name), not miss, str(miss))

tmp = tempfile.mkdtemp(prefix="ctvis-schemas-")
run(["ct-phantom", "-o", tmp, "--shape", "48,40,20", "--spacing", "8,8,16"])
ct, seg = os.path.join(tmp, "ct.nii.gz"), os.path.join(tmp, "seg.nii.gz")
img = run(["ct-import", ct, "--label", seg])[0]
check_records("ct-import", records(img), "ct.image.v1")
case = run(["ct-resample", ct, "--label", seg, "--spacing", "16,8,8", "--pad-to", "32,64,64"])[0]
check_records("ct-resample", records(case), "ct.case.v1")
win = run(["mask-pool", "--roi", "32,64,64"], input=case)[0]
check_records("mask-pool", records(win), "ct.window.v1")
multi = run(["mask-pool", "--roi", "32,64,64", "--multi", "--bits"], input=case)[0]
check_records("mask-pool --multi --bits", records(multi), "ct.window.v1")
w = os.path.join(tmp, "w.ctv")
run([sys.executable, os.path.join(reflib.ROOT, "tools", "ctvis-convert.py"),
     "--random", "5", "--encoder-only", "-o", w])
check_records("ctvis-convert", records(open(w, "rb").read()), "ct.weights.v1")
win_meta = list((schema_doc("ct.window.v1").get("meta") or {}).keys())
tok = run(["encode", "-w", w, "--maps"], input=win)[0]
check_records("encode --maps", records(tok), "ct.tokens.v1", extra_meta=win_meta)
wf = os.path.join(tmp, "wf.ctv")   # with the VQ-VAE and head keys, for vq-recon
run([sys.executable, os.path.join(reflib.ROOT, "tools", "ctvis-convert.py"), "--random", "5", "-o", wf])
org = run(["vq-recon", "-w", wf, "--recon"], input=run(["encode", "-w", wf], input=multi)[0])[0]
check_records("vq-recon --recon", records(org), "ct.organ.v1")
wt = os.path.join(tmp, "wt.ctv")
vocab = os.path.join(tmp, "vocab.txt")
open(vocab, "w").write("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "."] + [c for c in "abcdefghijklmnopqrstuvwxyz"] +
                                   ["##" + c for c in "abcdefghijklmnopqrstuvwxyz"]) + "\n")
run([sys.executable, os.path.join(reflib.ROOT, "tools", "ctvis-convert.py"), "--random", "5", "--text-only",
     "--text-layers", "1", "--text-hidden", "64", "--vocab", vocab, "-o", wt])
check_records("ctvis-convert --text-only", records(open(wt, "rb").read()), "ct.weights.v1")
check_records("text-encode", records(run(["text-encode", "-w", wt])[0]), "ct.prompts.v1")
rep = run(["report-label", os.path.join(reflib.ROOT, "examples", "phantom-report.json"), "-f", "stream"])[0]
check_records("report-label", records(rep), "ct.report.v1")
lab = run(["report-label", "--labels", os.path.join(reflib.ROOT, "tests", "data", "reports", "ct-rate-labels.csv"),
           "-f", "stream"])[0]
check_records("report-label --labels", records(lab), "ct.labels.v1")
reflib.done()
