"""Row (d) of bench/online: the in-process limit. Imports a score.py the way Berth's
worker does (its folder on sys.path), calls init() once, then calls run() on the same
request body for a fixed time and prints calls per second. run() gets the body as a
str, as Berth's worker passes it (the body decoded as UTF-8). No HTTP, no framing, no
JSON encoding of the answer: only the model's own cost.

Usage: AZUREML_MODEL_DIR=... python3 inproc.py SCORE_PY BODY_FILE SECONDS
"""
import importlib.util
import os
import sys
import time


def load(entry):
    sys.path.append(os.path.dirname(os.path.abspath(entry)))
    spec = importlib.util.spec_from_file_location("score", entry)
    module = importlib.util.module_from_spec(spec)
    sys.modules["score"] = module
    spec.loader.exec_module(module)
    return module


def main():
    entry, body_file, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    module = load(entry)
    module.init()
    with open(body_file, "rb") as f:
        body = f.read().decode("utf-8")
    run = module.run
    # Warm up, and size the batches so the clock is read about once a millisecond.
    t0 = time.perf_counter()
    for _ in range(10):
        run(body)
    per_call = (time.perf_counter() - t0) / 10
    batch = max(1, min(1000, int(0.001 / max(per_call, 1e-9))))
    calls = 0
    start = time.perf_counter()
    end = start + seconds
    now = start
    while now < end:
        for _ in range(batch):
            run(body)
        calls += batch
        now = time.perf_counter()
    print(f"{calls / (now - start):.0f}")


if __name__ == "__main__":
    main()
