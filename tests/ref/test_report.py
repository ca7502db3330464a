"""report-label against a reference written here from the specification text
(method.md §6.1 and docs/report-label.md), with json, re, csv and yaml only.

Every label and every text byte is compared: on the hand-written corpus
(tests/data/reports), whose labels and tricky texts were also worked out by hand,
and on seeded generated corpora (structured reports with messy LLM output, fVLM
pairs, CT-RATE label and report CSVs written by Python's csv module).
"""
import csv, io, json, os, random, re, subprocess, sys

sys.path.insert(0, os.path.dirname(__file__))
import reflib
from reflib import check, records, run

import yaml

D = os.path.join(reflib.ROOT, "tests", "data", "reports")
ORGANS_YAML = yaml.safe_load(open(os.path.join(reflib.ROOT, "pipelines", "report-organs.yaml")))
ABN_YAML = yaml.safe_load(open(os.path.join(reflib.ROOT, "pipelines", "ct-rate-abnormalities.yaml")))
ORGANS = ORGANS_YAML["organs"]
TMP = os.environ.get("TMPDIR", "/tmp")


# ---------------------------------------------------------------- the rule (§6.1)

def rule(organ, desc, conc):
    """desc/conc: text or None (absent).  Returns (abnormal, text)."""
    normal = f"{organ} shows no significant abnormalities."
    d = desc or ""
    if d and not d.endswith("."):
        d += "."
    c = conc or ""
    if c and not c.endswith("."):
        c += "."
    if not c:
        c = normal
    text = re.sub("[\"'()]", "", c + d)
    return int(not text.startswith(normal)), text


def rule_released(organ, desc_map, conc_map):
    """fVLM's caption_datasets.py semantics: a present key gets '.' even when empty."""
    normal = f"{organ} shows no significant abnormalities."
    d = ""
    if organ in desc_map:
        d += desc_map[organ]
        if not d.endswith("."):
            d += "."
    c = ""
    if organ in conc_map:
        c += conc_map[organ]
        if not c.endswith("."):
            c += "."
    if not len(c):
        c = normal
    text = (c + d).replace('"', "").replace("'", "").replace("(", "").replace(")", "")
    return int(not text.startswith(normal)), text


# ---------------------------------------------------------------- normalisation (docs/report-label.md)

def key_form(k):
    k = re.sub(r"[ \t\r\n_-]+", " ", k).strip(" ")
    return "".join(ch.lower() if ch < "\x80" else ch for ch in k)


ALIASES = {key_form(k): v for k, v in ORGANS_YAML["aliases"].items()}
IGNORE = {key_form(k) for k in ORGANS_YAML.get("ignore") or []}
ROLES = {"scan id": "scan_id", "scanid": "scan_id", "scan": "scan_id", "id": "scan_id", "volume": "scan_id",
         "volumename": "scan_id", "volume name": "scan_id", "findings": "findings", "finding": "findings",
         "desc": "findings", "description": "findings", "impression": "impression", "impressions": "impression",
         "conclusion": "impression", "conclusions": "impression", "conc": "impression", "answer": "answer",
         "response": "answer"}
VOLUME = re.compile(r"^((?:train|valid|test)_[0-9]+_[a-z]+)_[0-9]+$")


class Bad(Exception):
    pass


def scan_id(name):
    b = name.rsplit("/", 1)[-1]
    for ext in (".nii.gz", ".nii"):
        if b.endswith(ext) and len(b) > len(ext):
            b = b[: -len(ext)]
            break
    m = VOLUME.match(b)
    return m.group(1) if m else b


def organ_of(key):
    if key in ORGANS:
        return key
    k = key_form(key)
    if k in ORGANS:
        return k
    if k in ALIASES:
        return ALIASES[k]
    if k in IGNORE:
        return None
    raise Bad("unknown organ " + key)


def text_of(v):
    if v is None:
        return None
    if isinstance(v, str):
        return v.strip(" \t\r\n")
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return " ".join(x.strip(" \t\r\n") for x in v if x.strip(" \t\r\n"))
    raise Bad("not text")


def payload(s, json_hint):
    """The body of the one code fence, else the JSON object cut out of prose."""
    lines = s.split("\n")
    fence = re.compile(r"^[ \t]*(`{3,}|~{3,})")
    for i, line in enumerate(lines):
        m = fence.match(line)
        if m:
            run_ = m.group(1)
            body = []
            for line2 in lines[i + 1:]:
                m2 = re.match(r"^[ \t]*(" + re.escape(run_[0]) + "{%d,})[ \t]*$" % len(run_), line2)
                if m2:
                    return "\n".join(body)
                glued = re.match(r"^(.*\S)" + re.escape(run_[0]) + "{%d,}\\s*$" % len(run_), line2)
                if glued:
                    body.append(glued.group(1))
                    return "\n".join(body)
                body.append(line2)
            return "\n".join(body)
    t = s.lstrip()
    if t[:1] in ("{", "[") or not json_hint or "{" not in s:
        return s
    a, b = s.index("{"), s.rindex("}")
    return s[a:b + 1] if b > a else s


def normalise(obj, hint=None, depth=0, out=None):
    """-> (scan_id, {organ: desc}, {organ: conc}); raises Bad."""
    if out is None:
        out = {"id": None, "desc": {}, "conc": {}}
    if not isinstance(obj, dict):
        raise Bad("not a map")
    roles = {}
    for k, v in obj.items():
        r = ROLES.get(key_form(k))
        if r:
            if r in roles:
                raise Bad("twice")
            roles[r] = v
    if "scan_id" in roles:
        sid = scan_id(roles["scan_id"])
        if out["id"] is not None and out["id"] != sid:
            raise Bad("differs")
        out["id"] = sid
    if "answer" in roles:
        a = roles["answer"]
        if isinstance(a, str):
            a = json.loads(payload(a, True))
        return normalise(a, hint, depth + 1, out)
    if "findings" not in roles and "impression" not in roles and any(
            isinstance(v, dict) and any(ROLES.get(key_form(k2)) in ("findings", "impression") for k2 in v)
            for k, v in obj.items() if not ROLES.get(key_form(k))):
        for k, v in obj.items():
            if ROLES.get(key_form(k)) or not isinstance(v, dict):
                continue
            o = organ_of(k)
            if o is None:
                continue
            for k2, t in v.items():
                r = ROLES[key_form(k2)]
                tt = text_of(t)
                if tt is not None:
                    out["desc" if r == "findings" else "conc"][o] = tt
    else:
        for field, dst in (("findings", "desc"), ("impression", "conc")):
            if field not in roles:
                raise Bad("missing " + field)
            m = roles[field]
            if m is None:
                continue
            for k, t in m.items():
                o = organ_of(k)
                if o is None:
                    continue
                if o in out[dst]:
                    raise Bad("twice")
                tt = text_of(t)
                if tt is not None:
                    out[dst][o] = tt
    if depth == 0:
        if out["id"] is None:
            out["id"] = hint
        if out["id"] is None:
            raise Bad("no scan id")
    return out["id"], out["desc"], out["conc"]


def expected_rows(path):
    """Reference labels/texts for one input file of the corpus: [(scan, [abn], [text])]."""
    raw = open(path, encoding="utf-8").read()
    base = os.path.basename(path)
    hint = base.rsplit(".", 1)[0]
    if path.endswith(".jsonl"):
        objs = [json.loads(l) for l in raw.splitlines() if l.strip()]
        hint = None
    elif path.endswith((".yaml", ".yml")):
        objs = [d for d in yaml.safe_load_all(payload(raw, False)) if d is not None]
        hint = hint if len(objs) == 1 else None
    else:
        objs = [json.loads(payload(raw, path.endswith(".json") or True))]
    rows = []
    for obj in objs:
        sid, desc, conc = normalise(obj, hint)
        r = [rule(o, desc.get(o), conc.get(o)) for o in ORGANS]
        rows.append((sid, [x[0] for x in r], [x[1] for x in r]))
    return rows


def tool_rows(args):
    out, _, _ = run(["report-label", "-f", "jsonl"] + args)
    rows = []
    for line in out.decode("utf-8").splitlines():
        d = json.loads(line)
        rows.append((d["scan_id"], [d["abnormal"][o] for o in ORGANS], [d["texts"][o] for o in ORGANS]))
    return rows


def compare(name, got, want):
    if len(got) != len(want):
        return check(name, False, "%d reports, expected %d" % (len(got), len(want)))
    bad = [(g, w) for g, w in zip(got, want) if g != w]
    msg = ""
    if bad:
        g, w = bad[0]
        msg = "%d of %d reports differ; first: %r vs %r" % (len(bad), len(want), g, w)
    return check(name, not bad, msg)


# ---------------------------------------------------------------- the hand-written corpus

CORPUS = ["valid_101_a.json", "valid_102_a.yaml", "valid_103_a.md", "valid_104_a.json", "answers.jsonl",
          "batch.yaml"]
got_all, want_all = [], []
for f in CORPUS:
    p = os.path.join(D, f)
    got = tool_rows([p])
    want = expected_rows(p)
    compare("corpus %s: labels and texts equal the reference" % f, got, want)
    got_all += got
    want_all += want

# the fVLM pair, both readings of an empty string
desc = json.load(open(os.path.join(D, "desc_info.json")))
conc = json.load(open(os.path.join(D, "conc_info.json")))
scans = list(desc) + [s for s in conc if s not in desc]
for flag, fn in (([], None), (["--released-empty"], rule_released)):
    want = []
    for s in scans:
        dm, cm = desc.get(s, {}), conc.get(s, {})
        if fn:
            r = [fn(o, dm, cm) for o in ORGANS]
        else:
            r = [rule(o, dm.get(o), cm.get(o)) for o in ORGANS]
        want.append((s, [x[0] for x in r], [x[1] for x in r]))
    got = tool_rows(["--desc", os.path.join(D, "desc_info.json"), "--conc", os.path.join(D, "conc_info.json")] + flag)
    compare("fvlm pair %s: labels and texts equal the reference" % (flag or ["(spec)"]), got, want)
    if not flag:
        fvlm_spec = got
    else:
        fvlm_rel = got

# hand-derived expectations (checks the reference too)
exp = list(csv.reader(open(os.path.join(D, "expected-labels.csv"))))[1:]
ref_labels = [[s] + [str(v) for v in a] for s, a, _ in want_all] + \
             [[s] + [str(v) for v in a] for s, a, _ in fvlm_spec]
check("corpus: the reference gives the hand-derived labels", ref_labels == exp, "%r" % ref_labels)
texts = {}
for s, a, t in got_all + fvlm_spec:
    for o, x in zip(ORGANS, t):
        texts[("spec", s, o)] = x
for s, a, t in fvlm_rel:
    for o, x in zip(ORGANS, t):
        texts[("released", s, o)] = x
wrong = []
for line in open(os.path.join(D, "expected-texts.jsonl"), encoding="utf-8"):
    e = json.loads(line)
    if texts.get((e["rule"], e["scan_id"], e["organ"])) != e["text"]:
        wrong.append((e, texts.get((e["rule"], e["scan_id"], e["organ"]))))
check("corpus: hand-derived texts, byte for byte", not wrong, "%r" % wrong[:1])

# ---------------------------------------------------------------- generated corpus

rng = random.Random(20250705)
WORDS = ["emphysema", "nodule", "5 mm", "(series 3)", '"ground-glass"', "it's", "atelectasis", "\u00d7", "\u2014",
         "caf\u00e9", "\u201cscar\u201d", "\u2018x\u2019", "normal", "calcified", "plaque", ",", ";", "\u2248 10 HU",
         "shows", "no", "significant", "abnormalities", "\t", "\\", "\u4e2d\u6587", "\U0001f600"]
SPELL = {"lung": ["lung", "Lung", "LUNGS", "lungs", " pulmonary", "Lung_Parenchyma", "pleura"],
         "heart": ["heart", "Heart", "cardiac", "Pericardium", "heart and pericardium"],
         "esophagus": ["esophagus", "Oesophagus", "esophageal", "ESOPHAGUS"],
         "aorta": ["aorta", "Aorta", "thoracic aorta", "Thoracic-Aorta", "aortic"]}


def rtext():
    r = rng.random()
    if r < 0.05:
        return ""
    if r < 0.08:
        return " " + rng.choice(WORDS) + " "
    s = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 12)))
    if rng.random() < 0.4:
        s += rng.choice([".", ".", '."', ".)", "..", "'"])
    if rng.random() < 0.05:
        s = rng.choice(ORGANS) + " shows no significant abnormalities." + s
    return s


def rvalue():
    r = rng.random()
    if r < 0.06:
        return None
    if r < 0.12:
        return [rtext() for _ in range(rng.randint(1, 3))]
    return rtext()


def rmap():
    m = {}
    for o in ORGANS:
        if rng.random() < 0.6:
            m[rng.choice(SPELL[o])] = rvalue()
    return m


def rreport(i):
    sid = "valid_%d_%s" % (i, rng.choice("abc"))
    if rng.random() < 0.2:
        sid += "_%d" % rng.randint(1, 3)
    body = {rng.choice(["findings", "Findings", "FINDINGS", "desc"]): rmap(),
            rng.choice(["impression", "Impressions", "conclusion"]): rmap()}
    r = rng.random()
    if r < 0.3:
        text = json.dumps(body, ensure_ascii=rng.random() < 0.5, indent=rng.choice([None, 2]))
        style = rng.random()
        if style < 0.4:
            text = "```json\n" + text + "\n```"
        elif style < 0.6:
            text = "Here is the structured report:\n\n```\n" + text + "\n```\nDone."
        elif style < 0.8:
            text = "Sure! " + text + " Anything else?"
        return {rng.choice(["scan_id", "Scan ID", "id"]): sid, "answer": text}
    body[rng.choice(["scan_id", "VolumeName", "scan"])] = sid
    return body


N = 3000
reports = [rreport(i) for i in range(N)]
gen = os.path.join(TMP, "report-label-gen-%d.jsonl" % os.getpid())
with open(gen, "w", encoding="utf-8") as f:
    for r in reports:
        f.write(json.dumps(r, ensure_ascii=False) + "\n")
try:
    want = []
    for r in reports:
        sid, dsc, cnc = normalise(r)
        x = [rule(o, dsc.get(o), cnc.get(o)) for o in ORGANS]
        want.append((sid, [v[0] for v in x], [v[1] for v in x]))
    got = tool_rows([gen])
    compare("generated: %d messy LLM reports, every label and text equal" % N, got, want)
    n_ab = sum(sum(a) for _, a, _ in want)
    check("generated: the corpus has both classes", 0 < n_ab < 4 * N, "%d abnormal organ labels" % n_ab)
finally:
    os.unlink(gen)

# generated fVLM pair, spec and released readings
desc, conc = {}, {}
for i in range(2000):
    s = "train_%d_%s" % (i, rng.choice("ab"))
    if rng.random() < 0.9:
        desc[s] = {o: rtext() for o in ORGANS if rng.random() < 0.7}
    if rng.random() < 0.6 or s not in desc:
        conc[s] = {o: rtext() for o in ORGANS if rng.random() < 0.3}
pd, pc = os.path.join(TMP, "rl-desc-%d.json" % os.getpid()), os.path.join(TMP, "rl-conc-%d.json" % os.getpid())
json.dump(desc, open(pd, "w"))
json.dump(conc, open(pc, "w"), ensure_ascii=False)
try:
    scans = list(desc) + [s for s in conc if s not in desc]
    for flag in ([], ["--released-empty"]):
        want = []
        for s in scans:
            dm, cm = desc.get(s, {}), conc.get(s, {})
            x = [rule_released(o, dm, cm) if flag else rule(o, dm.get(o), cm.get(o)) for o in ORGANS]
            want.append((s, [v[0] for v in x], [v[1] for v in x]))
        got = tool_rows(["--desc", pd, "--conc", pc] + flag)
        compare("generated fvlm pair %s: %d scans equal" % (flag or "(spec)", len(scans)), got, want)
finally:
    os.unlink(pd)
    os.unlink(pc)

# ---------------------------------------------------------------- CT-RATE label CSV

names = ABN_YAML["abnormalities"]
rows = [["VolumeName"] + names]
for i in range(600):
    v = "%s_%d_%s_%d" % (rng.choice(["train", "valid"]), i, rng.choice(["a", "b", "aa"]), rng.randint(1, 3))
    if rng.random() < 0.7:
        v += ".nii.gz"
    rows.append([v] + [str(rng.randint(0, 1)) for _ in names])
buf = io.StringIO()
csv.writer(buf, lineterminator="\n").writerows(rows)
text = buf.getvalue().encode()
lp = os.path.join(TMP, "rl-labels-%d.csv" % os.getpid())
open(lp, "wb").write(text)
try:
    out, _, _ = run(["report-label", "--labels", lp])
    recs = records(out)
    ok = len(recs) == len(rows) - 1
    why = ""
    items_ref = {"abnormality": [it["abnormality"] for it in ABN_YAML["items"]],
                 "organ": [it["organ"] for it in ABN_YAML["items"]],
                 "negative": [it["negative"] for it in ABN_YAML["items"]],
                 "positive": [it["positive"] for it in ABN_YAML["items"]]}
    for rec, row in zip(recs, rows[1:]):
        m = rec["meta"]
        vid = row[0][:-7] if row[0].endswith(".nii.gz") else row[0]
        want = (rec["schema"] == "ct.labels/1" and rec["id"] == vid and m["volume_name"] == row[0] and
                m["scan_id"] == scan_id(row[0]) and m["abnormalities"] == names and
                m["labels"] == [int(x) for x in row[1:]] and m["items"] == items_ref)
        if not want:
            ok, why = False, "record %s: %r" % (rec["id"], m)
            break
    check("labels: %d generated rows read as by Python's csv module, items as in the YAML" % (len(rows) - 1), ok, why)
    out2, _, _ = run(["report-label", "--from-stream", "-f", "csv", "-"], input=out)
    check("labels: generated CSV round-trips byte for byte", out2 == text, "differs")
    out3, _, _ = run(["report-label", "--labels", "-f", "jsonl", lp])
    js = [json.loads(l) for l in out3.decode().splitlines()]
    check("labels: JSON lines hold the same labels",
          all(j["labels"] == dict(zip(names, r["meta"]["labels"])) and j["id"] == r["id"] for j, r in zip(js, recs)),
          "differs")
finally:
    os.unlink(lp)

# ---------------------------------------------------------------- CT-RATE report CSV -> prompts

def rcell():
    parts = [rtext() for _ in range(rng.randint(1, 4))]
    return rng.choice(["\n", "\r\n", " ", ", "]).join(parts)


rrows = [["VolumeName", "ClinicalInformation_EN", "Technique_EN", "Findings_EN", "Impressions_EN"]]
for i in range(400):
    f, im = rcell(), rcell()
    if not f.strip() and not im.strip():
        f = "Normal."
    for r in range(1, rng.randint(1, 3) + 1):
        rrows.append(["valid_%d_a_%d.nii.gz" % (i, r), rcell(), "Non-contrast", f, im])
buf = io.StringIO()
csv.writer(buf, lineterminator=rng.choice(["\n", "\r\n"])).writerows(rrows)
rp = os.path.join(TMP, "rl-reports-%d.csv" % os.getpid())
open(rp, "w", encoding="utf-8", newline="").write(buf.getvalue())
try:
    out, _, _ = run(["report-label", "--prompts", rp])
    lines = [json.loads(l) for l in out.decode().splitlines()]
    first = {}
    for row in rrows[1:]:
        first.setdefault(scan_id(row[0]), row)
    ok, why = len(lines) == len(first), "%d prompts for %d scans" % (len(lines), len(first))
    schema_ok = True
    for p in lines:
        row = first.get(p["scan_id"])
        if row is None or p["volume"] != row[0]:
            ok, why = False, "unexpected scan %s" % p["scan_id"]
            break
        want_tail = "FINDINGS:\n%s\n\nIMPRESSION:\n%s\n" % (row[3], row[4])
        if not p["prompt"].endswith(want_tail):
            ok, why = False, "scan %s: report text not verbatim" % p["scan_id"]
            break
        sch = p["answer_schema"]
        schema_ok &= (sch["required"] == ["findings", "impression"] and
                      list(sch["properties"]["findings"]["properties"]) == ORGANS and
                      sch["properties"]["impression"]["additionalProperties"] is False)
    check("prompts: one per scan, report texts verbatim (multi-line quoted CSV fields as Python reads them)", ok, why)
    check("prompts: answer schema lists the organs", schema_ok)
finally:
    os.unlink(rp)

# ---------------------------------------------------------------- streams as the schemas say, docs example

check("schemas: structured-report.v1.yaml parses",
      "fields" in yaml.safe_load(open(os.path.join(reflib.ROOT, "schemas", "structured-report.v1.yaml"))))


def schema_keys(name):
    return set(yaml.safe_load(open(os.path.join(reflib.ROOT, "schemas", name)))["meta"])


out, _, _ = run(["report-label"] + [os.path.join(D, f) for f in CORPUS])
recs = records(out)
keys = schema_keys("ct.report.v1.yaml")
ok, why = len(recs) == len(got_all), "%d records" % len(recs)
for r, (sid, ab, tx) in zip(recs, got_all):
    m = r["meta"]
    if not (r["schema"] == "ct.report/1" and r["id"] == sid and set(m) == keys and m["organs"] == ORGANS and
            m["abnormal"] == ab and m["texts"] == tx and r["tensors"] == {} and
            all(isinstance(x, str) for x in m["normalised"] + m["warnings"])):
        ok, why = False, "record %s: %r" % (r["id"], sorted(m))
        break
check("ct.report/1: records hold exactly the schema's keys and the JSON-lines values", ok, why)
out, _, _ = run(["report-label", "--labels", os.path.join(D, "ct-rate-labels.csv")])
lrecs = records(out)
check("ct.labels/1: records hold exactly the schema's keys",
      all(set(r["meta"]) == schema_keys("ct.labels.v1.yaml") and r["tensors"] == {} for r in lrecs))

text = open(os.path.join(reflib.ROOT, "docs", "report-label.md")).read()
m = re.search(r"<!-- python-example[^>]*-->\s*```python\n(.*?)```", text, re.S)
wd = os.path.join(TMP, "rl-doc-%d" % os.getpid())
os.makedirs(wd)
try:
    run(["report-label", "-o", os.path.join(wd, "reports.ctv")] + [os.path.join(D, f) for f in CORPUS])
    run(["report-label", "--labels", "-o", os.path.join(wd, "labels.ctv"), os.path.join(D, "ct-rate-labels.csv")])
    cwd = os.getcwd()
    os.chdir(wd)
    ns = {"read_stream": reflib.read_stream}
    try:
        exec(m.group(1), ns)
    finally:
        os.chdir(cwd)
    # labels CSV volumes of scans 101-105 (7 volumes) have a report in the corpus
    want_A = [[0, 0, 0, 0]] * 2 + [[1, 0, 0, 1], [0, 0, 1, 0]] + [[0, 1, 0, 0]] * 2 + [[1, 0, 0, 1]]
    check("docs: the Python example runs and joins volumes to their scan's report",
          ns["Y"].shape == (9, 18) and ns["A"].tolist() == want_A and ns["organ_of"]["Hiatal hernia"] == "esophagus",
          "Y %s A %s" % (ns["Y"].shape, ns["A"].tolist()))
finally:
    for f in os.listdir(wd):
        os.unlink(os.path.join(wd, f))
    os.rmdir(wd)

reflib.done()
