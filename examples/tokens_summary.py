"""Read a ct.tokens/1 stream with the reader documented in schemas/README.md and print, per window
and organ, the token counts of the four stages and the mean feature norm.

    /usr/bin/python3 examples/tokens_summary.py tokens.ctv
"""
import os, re, sys
import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
readme = open(os.path.join(here, "..", "schemas", "README.md")).read()
exec(re.search(r"<!-- python-reader[^>]*-->\s*```python\n(.*?)```", readme, re.S).group(1))

with open(sys.argv[1], "rb") as f:
    for rec in read_stream(f):                      # noqa: F821 (defined by the README block)
        for organ in rec["meta"]["window_organs"]:
            embs = [rec["tensors"]["emb%d/%s" % (s, organ)] for s in (1, 2, 3, 4)]
            print("%-10s %-10s tokens per stage %-24s mean |emb4| %.4f" % (
                rec["id"], organ, [e.shape[0] for e in embs], np.linalg.norm(embs[3], axis=1).mean()))
