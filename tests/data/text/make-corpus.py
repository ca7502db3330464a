#!/usr/bin/python3
"""make-corpus.py - write corpus.txt, the tokenizer parity corpus (one phrase per line, UTF-8).

    tests/data/text/make-corpus.py > tests/data/text/corpus.txt

Deterministic (random.Random(12)).  Sections: the 32 CT-RATE prompts and their fVLM variants;
report-style sentences built from clinical templates (organs, findings, sizes with units,
laterality, hyphenated and slash forms, abbreviations, dates, percentages, ranges); accented
and mixed-case text; non-Latin scripts (Greek with final sigma, Cyrillic, Arabic, Hebrew,
Devanagari, Thai, CJK, Japanese kana, Hangul); unknown and invented words; words over 100
characters; control characters, NUL-free invisible characters, U+FFFD, no-break and other
Unicode spaces, U+2028; literal special tokens; punctuation runs.
"""
import random

R = random.Random(12)
ITEMS = ["Emphysema", "Atelectatic", "Lung nodule", "Lung opacity", "Pulmonary fibrotic", "Pleural effusion",
         "Mosaic attenuation pattern", "Peribronchial thickening", "Consolidation", "Bronchiectasis",
         "Interlobular septal thickening", "Cardiomegaly", "Pericardial effusion",
         "Coronary artery wall calcification", "Hiatal hernia", "Arterial wall calcification",
         "Nodule", "Opacity", "Pulmonary fibrotic sequela", "Medical material", "Lymphadenopathy"]
ORGANS = ["right lung", "left lung", "right upper lobe", "left lower lobe", "middle lobe", "lingula", "heart",
          "pericardium", "aorta", "ascending aorta", "pulmonary artery", "esophagus", "trachea", "mediastinum",
          "liver", "spleen", "pancreas", "kidney", "adrenal gland", "thyroid", "vertebral body", "T7 vertebra",
          "hilum", "pleura", "diaphragm", "gallbladder", "stomach", "axilla", "sternum", "rib"]
FINDINGS = ["ground-glass opacity", "consolidation", "nodule", "mass", "calcification", "effusion", "atelectasis",
            "emphysematous changes", "bronchiectasis", "septal thickening", "fibrotic bands", "cyst", "lesion",
            "lymph node", "hernia", "thickening", "infiltrate", "honeycombing", "tree-in-bud pattern",
            "air-fluid level", "pneumothorax", "granuloma", "osteophytes", "degenerative changes", "stent",
            "pacemaker lead", "sternotomy wires", "dilatation", "aneurysm", "plaque"]
MODS = ["mild", "moderate", "severe", "minimal", "subsegmental", "bilateral", "patchy", "diffuse", "focal",
        "nonspecific", "calcified", "non-calcified", "sub-centimetric", "well-defined", "ill-defined",
        "centrilobular", "paraseptal", "peribronchovascular", "subpleural", "millimetric", "heterogeneous"]
UNITS = ["mm", "cm", "HU", "ml", "mL", "cc", "%", "mm²", "cm³", "µm", "mGy", "kV", "mAs", "°", "mm/s", "g/dL"]
TEMPLATES = [
    "There is {m} {f} in the {o}.",
    "No {f} is seen in the {o}.",
    "{M} {f} measuring {n} {u} in the {o}.",
    "A {n}x{n2} {u} {f} was observed in the {o} (series {s}, image {i}).",
    "{O}: {m} {f}; no {f2}.",
    "Findings consistent with {f} ({m}), {o}.",
    "{f} of the {o}, {n}-{n2} {u}, stable since {d}.",
    "Compared with the CT of {d}, the {f} in the {o} decreased from {n} to {n2} {u}.",
    "Impression: {m} {f} - follow-up in {k} months recommended.",
    "The {o} is normal; {m} {f} (?){x}",
    "{f}/{f2} in the {o} -> likely benign.",
    "Dose-length product {n} mGy*cm; CTDIvol {n2}{u}.",
    "{n}% of the {o} shows {f}, BI-RADS {k}; Lung-RADS {k}A.",
    "'{f}' \"{m}\" [{o}] {{{u}}} <{n}> #{k} @{s} &{i} |{n2}| ~{k}^{s} `{f2}`",
    "e.g. {f}, i.e. {m} {f2}, etc.; cf. {o}...",
    "S/p {f} of the {o} ({d}); post-op changes.",
]


def num():
    return R.choice([str(R.randint(1, 99)), "%d.%d" % (R.randint(0, 30), R.randint(0, 9)),
                     "%d,%d" % (R.randint(0, 30), R.randint(0, 9)), "0.%02d" % R.randint(0, 99)])


def sentence():
    t = R.choice(TEMPLATES)
    m, f, o = R.choice(MODS), R.choice(FINDINGS), R.choice(ORGANS)
    return t.format(m=m, M=m.capitalize(), f=f, f2=R.choice(FINDINGS), o=o, O=o.upper() if R.random() < .3 else o.title(),
                    n=num(), n2=num(), u=R.choice(UNITS), s=R.randint(1, 12), i=R.randint(1, 400),
                    d="%02d.%02d.20%02d" % (R.randint(1, 28), R.randint(1, 12), R.randint(10, 26)),
                    k=R.randint(1, 24), x=R.choice(["", "!", "?!", "...", ";;", " --"]))


ACCENTED = ["Épanchement pleural bilatéral, prédominant à droite.", "Nódulo pulmonar no calcificado en el lóbulo inferior.",
            "Verdickung der Pleura, kein Pneumothorax; Größe 12 mm.", "Ateľektáza ľavého laloka, žiadny výpotok.",
            "Kardiomegalie. Perikarderguss: nein. Ösophagus unauffällig.", "Consolidação e atelectasia à esquerda; coração normal.",
            "Enfisema centrolobulillar y bronquiectasias (año 2019).", "İstanbul, Iğdır: plevral efüzyon yok; şüpheli nodül.",
            "Naïve café résumé coöperate façade Zürich Ångström øre Œdème.", "Ǆemal ǅ ǈ Ȁ ǖ ǘ ǚ ǜ ḝ ṏ ẫ ỗ ự Ẅ ẞ ß ﬁ ﬂ",
            "A\u0301 e\u0300 o\u0308 n\u0303 c\u0327 u\u0308\u0301 a\u0323\u0302 q\u0307\u0323 e\u0316\u0301"]
SCRIPTS = ["ΟΔΟΣ Σ ΣΑΣ σοφός ΌΣΟΣ. ΑΣ-ΑΣ ΑΣ'Σ ὈΔΥΣΣΕΎΣ ΐ ᾂ ῗ", "Плевральный выпот слева, 12 мм. Ёлка ЪЫЬ.",
           "انصباب جنبي خفيف في الرئة اليمنى ١٢ مم.", "תפליט פלאורלי קל בריאה הימנית.", "फेफड़ों में हल्का बहाव, हृदय सामान्य।",
           "น้ำในช่องเยื่อหุ้มปอดเล็กน้อย", "肺气肿，双肺多发结节（最大 8 mm）。", "肺に小結節あり、ｽﾘｶﾞﾗｽ影（すりガラス影）。",
           "폐기종 및 흉막 삼출 없음. 한국어 테스트", "𠀀𠀁𪜀 𫝀 𫠠 𬺰 丽 豈 更 ⼀ ㊀ ㍿", "각 가각 힣 ㄱㅏ", "Ⅻ ⅻ ① ⓐ Ⓐ ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３",
           "emoji 😀🫁❤️‍🔥 👍🏽 lung🫁", "Ꭰ Ᏸ ꭰ 𐐀 𐐨 Ⱥ ⱥ Ȿ ɀ ᲐᲑ ა"]
SPACES = ["tab\tseparated\tfinding", "no-break\u00a0space\u00a0here", "thin\u2009space\u202fnarrow\u3000ideographic",
          "line\u2028separator\u2029paragraph", "zero\u200bwidth\u200cjoiner\u200d\ufeffbom", "soft\u00adhyphen",
          "ctrl\x01\x02\x7f\x85\x9fchars", "vt\x0bff\x0cfs\x1cgs\x1dus\x1f", "cr\rinside", "repl\ufffdacement\ufffd",
          "private\ue000use\U000f0000plane", "unassigned\u0378\u0379 \U000e0001tag", "rtl\u202emark\u200f",
          "  leading and trailing  ", "\t", " ", "\u00a0", "...", "--", "!!!???", "((()))", "\u2014\u2013\u2012",
          "«quoted» „Zitat“ “curly” ‘single’ ‹›", "§ ¶ † ‡ • ‣ ※ ‰ ′ ″ ⁂ ⁇ ¡ ¿ ⸮ 、 。 ・ ﹏ ＿ ＇",
          "$ + < = > ^ ` | ~ ¢ £ ¥ € ± × ÷ µ ° ¬ © ® ™", "[CLS] [SEP] [PAD] [UNK] [MASK]", "a[SEP]b [cls] [Mask] [MASK]ed",
          "[CLS", "CLS]", "[[MASK]]", "##ation ##", "#hashtag ##double"]
UNKNOWN = ["xqzvtrpl", "Pneumonoultramicroscopicsilicovolcanoconiosis", "supercalifragilistic", "bronchoalveolar",
           "tracheobronchomalacia", "lymphangioleiomyomatosis", "hydropneumothorax", "qwrtypsdfghjklzxcvbnm",
           "ZZZZZZZZZZ", "ａｂｃｑｚｘ", "fluorodeoxyglucose-avid", "COVID-19", "SARS-CoV-2", "H1N1", "18F-FDG",
           "T2-weighted", "3D-reconstruction", "x-ray", "non-contrast-enhanced", "well-circumscribed"]


def long_word(n):
    return "".join(R.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(n))


lines = []
for it in ITEMS:
    lines += ["Not %s." % it, "%s." % it, "%s is present." % it, "%s is not present." % it]
lines += ACCENTED + SCRIPTS + SPACES + UNKNOWN
for n in (99, 100, 101, 150, 300):
    lines += [long_word(n), "prefix " + long_word(n) + " suffix.", "é" * n, long_word(n - 1) + "é"]
lines.append("ab" * 60 + "." + "cd" * 40)
lines.append(" ".join(["lung"] * 400))                   # over 384 tokens: truncated
lines.append(" ".join(R.choice(FINDINGS) for _ in range(300)))
while len(lines) < 2300:
    s = sentence()
    r = R.random()
    if r < 0.08:
        s = s.upper()
    elif r < 0.14:
        s = s + " " + R.choice(ACCENTED + SCRIPTS + UNKNOWN)
    elif r < 0.18:
        s = R.choice(SPACES).join(s.split(" ", 1)) if " " in s else s
    lines.append(s)
for s in lines:
    assert "\n" not in s and "\x00" not in s
print("\n".join(lines))
