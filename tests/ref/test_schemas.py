"""schemas/: every record type's YAML parses, names its schema, producer and consumers, and is listed
in schemas/README.md; every schema named in the README table has its file."""
import glob, os, re
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
reflib.done()
