#!/usr/bin/env python3
"""Where planted identity remains in a de-identifier's output, location by
location, as the devset scorer sees it.

    python3 tests/gate_locations.py SCORE_PY ANSWER_KEY OUTPUT_DIR

Uses the scorer's own file matching (`match_outputs`: relative path,
basename, then pixel and content fingerprints) and its per-location check
(`analyze_file`: each planted string searched, folded, in the element its key
path names). Prints one JSON object: files expected and matched, and every
planted location with the output file it was matched to and whether the
identity remains there. Run as its own process: the scorer sets pydicom's
reading mode and warning filters for the whole interpreter.
"""
import contextlib
import importlib.util
import json
import sys
from pathlib import Path


def main():
    score_py, key_path, out = (Path(a) for a in sys.argv[1:4])
    spec = importlib.util.spec_from_file_location("devset_score", score_py)
    score = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(score)
    key = json.loads(key_path.read_text())
    with contextlib.redirect_stdout(sys.stderr):
        matched, _, _, cache = score.match_outputs(key, str(out), print)
    locations = []
    for rel, entry in key["files"].items():
        o = matched.get(rel)
        if o is None:
            continue
        ds, arr = cache.get(o, (None, None))
        result, _ = score.analyze_file(str(out / o), entry, set(), ds=ds, arr=arr)
        for loc in result["locs"]:
            locations.append({"input": rel, "output": o, "path": loc["path"], "elem": loc["elem"],
                              "cat": loc["cat"], "remains": bool(loc["hit"])})
    print(json.dumps({"files": len(key["files"]), "matched": len(matched), "locations": locations}))


if __name__ == "__main__":
    main()
