"""Helpers for the reference tests (tests/ref/test_*.py), run with Debian's /usr/bin/python3.

Each test prints one line per case: "ok NAME", "not ok NAME: why" or "skip NAME: why".
The stream reader/writer are the snippets documented in schemas/README.md, executed from there,
so the documentation is tested too.
"""
import os, re, subprocess, sys

ROOT = os.environ.get("CT_ROOT", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BIN = os.environ.get("CT_BIN", os.path.join(ROOT, "build", "bin"))
DATA = os.environ.get("CT_DATA", os.path.join(ROOT, "..", "shared", "data"))
os.environ["PATH"] = BIN + os.pathsep + os.environ["PATH"]
failures = 0


def _snippet(marker):
    text = open(os.path.join(ROOT, "schemas", "README.md")).read()
    m = re.search(r"<!-- %s[^>]*-->\s*```python\n(.*?)```" % marker, text, re.S)
    if not m:
        raise RuntimeError("schemas/README.md has no %s block" % marker)
    return m.group(1)


_ns = {}
exec(_snippet("python-reader"), _ns)
exec(_snippet("python-writer"), _ns)
read_stream = _ns["read_stream"]
write_record = _ns["write_record"]
DTYPES = _ns["DTYPES"]


def ok(name):
    print("ok", name, flush=True)


def not_ok(name, why):
    global failures
    failures += 1
    print("not ok %s: %s" % (name, why), flush=True)


def skip(name, why):
    print("skip %s: %s" % (name, why), flush=True)


def check(name, cond, why=""):
    if cond:
        ok(name)
    else:
        not_ok(name, why or "condition false")
    return cond


def run(args, input=None, check_rc=True):
    """Run a ctvis tool; returns (stdout bytes, stderr text, rc)."""
    p = subprocess.run(args, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if check_rc and p.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(args), p.returncode, p.stderr.decode()[:500]))
    return p.stdout, p.stderr.decode(), p.returncode


def records(data):
    """All records of a stream held in a bytes object."""
    import io
    return list(read_stream(io.BytesIO(data)))


def have_data(sub=""):
    return os.path.isdir(os.path.join(DATA, sub))


def done():
    sys.exit(1 if failures else 0)
