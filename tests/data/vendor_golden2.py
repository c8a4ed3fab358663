#!/usr/bin/env python3
"""Regenerates tests/data/golden2.jsonl.gz: the cases of the shared truth file
(../shared/conformance/golden2.jsonl.gz, or the path given as the first argument) whose
(loss, dtype) is listed in VENDORED_COUNTS in tests/suite/conformance2.rs, lines byte-identical
and in source order, gzip mtime 0 (so the output depends on the inputs alone). Checks the counts.

    python3 tests/data/vendor_golden2.py [SOURCE]      # from the repository root
"""
import gzip
import json
import os
import re
import sys

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    root, '..', 'shared', 'conformance', 'golden2.jsonl.gz')
rs = open(os.path.join(root, 'tests', 'suite', 'conformance2.rs')).read()
block = re.search(r'const VENDORED_COUNTS[^=]*=\s*&?\[(.*?)\];', rs, re.S).group(1)
want = {(l, d): int(n) for l, d, n in re.findall(r'\("(\w+)",\s*"(\w+)",\s*(\d+)\)', block)}
keep, got = [], {}
for line in gzip.open(src, 'rt').read().splitlines():
    case = json.loads(line)
    key = (case['loss'], case['dtype'])
    if key in want:
        keep.append(line)
        got[key] = got.get(key, 0) + 1
bad = {k: (want[k], got.get(k, 0)) for k in want if want[k] != got.get(k, 0)}
if bad:
    sys.exit(f'cases per (loss, dtype) differ from VENDORED_COUNTS (want, got): {bad}')
with open(os.path.join(root, 'tests', 'data', 'golden2.jsonl.gz'), 'wb') as f:
    with gzip.GzipFile(filename='golden2.jsonl', mode='wb', fileobj=f, mtime=0) as g:
        g.write(('\n'.join(keep) + '\n').encode())
print(f'{len(keep)} cases, {len(want)} (loss, dtype) pairs')
