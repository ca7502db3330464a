"""lib/wordpiece.c (through text-encode --tokens --lines) against the Python transcription of
transformers' BertTokenizer(do_lower_case=True) in bert_ref.py: identical ids, line for line, on
tests/data/text/corpus.txt (2,300 phrases) with the real 30,522-token vocabulary (skipped when
../shared/data is absent) and with a vocabulary built here from the corpus itself (always run)."""
import collections, os, subprocess, sys, unicodedata

import reflib
import bert_ref

CORPUS = os.path.join(reflib.ROOT, "tests", "data", "text", "corpus.txt")
REAL_VOCAB = os.path.join(reflib.DATA, "bert-vocab", "vocab.txt")


def c_tokens(vocab_path, data, max_length=384):
    p = subprocess.run(["text-encode", "--tokens", "--vocab", vocab_path, "--lines", "-", "--max-length", str(max_length)],
                       input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return p.returncode, [[int(x) for x in l.split()] for l in p.stdout.decode().splitlines()], p.stderr.decode()


def lines_of(data):
    text = data.decode("utf-8").split("\n")
    return text[:-1] if text and text[-1] == "" else text


def compare(name, vocab_path, data, max_length=384, nfc_too=False):
    vocab = bert_ref.load_vocab(vocab_path)
    lines = lines_of(data)
    rc, got, err = c_tokens(vocab_path, data, max_length)
    if rc != 0:
        return reflib.not_ok(name, "text-encode failed: %s" % err[:300])
    want = [bert_ref.encode(l, vocab, max_length) for l in lines]
    bad = [i for i in range(max(len(got), len(want))) if i >= len(got) or i >= len(want) or got[i] != want[i]]
    n_unk = sum(t == vocab["[UNK]"] for w in want for t in w)
    reflib.check(name, not bad and len(got) == len(lines),
                 "%d of %d lines differ; first: line %d %r: C %s, Python %s" % (
                     len(bad), len(lines), bad[0] + 1 if bad else 0, lines[bad[0]] if bad else "",
                     got[bad[0]] if bad and bad[0] < len(got) else None, want[bad[0]] if bad else None))
    n_trunc = sum(len(bert_ref.tokenize(l, vocab)) + 2 > max_length for l in lines)
    reflib.check(name + "-truncation-said", err.count("truncated to %d" % max_length) == n_trunc,
                 "%d truncated lines, stderr says: %s" % (n_trunc, err[:300]))
    if nfc_too:   # newer transformers NFC-normalise first: the same ids on this corpus
        alt = [bert_ref.encode(l, vocab, max_length, nfc=True) for l in lines]
        reflib.check(name + "-nfc-variant", alt == want, "NFC-first transformers would differ on %d lines" %
                     sum(a != b for a, b in zip(alt, want)))
    return n_unk


def corpus_vocab(path, data):
    """A vocabulary made from the corpus: special tokens, every character of the basic tokens alone
    and as a ## piece, the most frequent whole tokens and some of their prefixes and suffixes, so
    that the greedy longest match really chooses; a few duplicates (the last id wins)."""
    cnt = collections.Counter()
    chars = set()
    for l in lines_of(data):
        for t in bert_ref.basic_tokenize(l):
            cnt[t] += 1
            chars.update(t)
    toks = ["[PAD]"] + ["[unused%d]" % i for i in range(5)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    for c in sorted(chars)[::2]:              # half of the characters: the rest can only be [UNK]
        toks += [c, "##" + c]
    for t, _ in cnt.most_common(400):
        toks.append(t)
        if len(t) > 4:
            toks += [t[:len(t) // 2], "##" + t[len(t) // 2:], "##" + t[-3:]]
    toks += ["lung", "##s", "the", "the"]       # duplicates
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(toks) + "\n")


def main():
    data = open(CORPUS, "rb").read()
    n = len(lines_of(data))
    reflib.check("corpus-size", n >= 2000, "%d lines" % n)
    tmp = os.environ.get("TMPDIR", "/tmp")
    small = os.path.join(tmp, "ctvis-test-vocab-%d.txt" % os.getpid())
    try:
        corpus_vocab(small, data)
        n_unk = compare("corpus-own-vocab", small, data, max_length=64)
        reflib.check("corpus-own-vocab-has-unk", n_unk and n_unk > 100, "%s [UNK]" % n_unk)
        # CRLF vocabulary: universal newlines in load_vocab give the same ids
        crlf = small + ".crlf"
        with open(small, "rb") as f, open(crlf, "wb") as g:
            g.write(f.read().replace(b"\n", b"\r\n"))
        rc1, a, _ = c_tokens(small, data[:20000])
        rc2, b, _ = c_tokens(crlf, data[:20000])
        reflib.check("vocab-crlf", rc1 == 0 and rc2 == 0 and a == b and len(a) > 100)
        os.unlink(crlf)
        # NUL, U+FFFD and a control character are dropped, as _clean_text does
        line = "lu\x00ng\ufffd \x07effusion\n".encode()
        rc, got, err = c_tokens(small, line)
        reflib.check("clean-nul-fffd", rc == 0 and got == [bert_ref.encode(line.decode()[:-1], bert_ref.load_vocab(small))],
                     "%s %s" % (got, err))
        rc, got, err = c_tokens(small, b"lung \xff\xfe\n")
        reflib.check("invalid-utf8-refused", rc == 1 and got == [] and "invalid UTF-8" in err, err)
    finally:
        if os.path.exists(small):
            os.unlink(small)
    if not os.path.exists(REAL_VOCAB):
        reflib.skip("corpus-real-vocab", "../shared/data absent")
        return
    n_unk = compare("corpus-real-vocab", REAL_VOCAB, data, nfc_too=True)
    reflib.check("corpus-real-vocab-has-unk", n_unk and n_unk > 10, "%s [UNK]" % n_unk)
    # the vocabulary is what we think it is (README of ../shared/data/bert-vocab)
    v = bert_ref.load_vocab(REAL_VOCAB)
    reflib.check("real-vocab-ids", len(v) == 30522 and v["[UNK]"] == 100 and v["[CLS]"] == 101 and v["the"] == 1996)
    print("# Unicode %s" % unicodedata.unidata_version)


main()
reflib.done()
