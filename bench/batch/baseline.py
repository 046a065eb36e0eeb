"""Baseline: the same per-mini-batch calls as a batch job, made by a Python
multiprocessing.Pool of N processes (init() once per process, run() per mini-batch),
rows written to one output file in mini-batch order. Prints files/s.

usage: baseline.py <score.py> <input folder> <output file> <workers> <mini_batch_size>
"""
import importlib.util
import multiprocessing
import os
import sys
import time

_mod = None


def _init(script):
    global _mod
    spec = importlib.util.spec_from_file_location("score", script)
    _mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(_mod)
    _mod.init()


def _run(mini_batch):
    return _mod.run(mini_batch)


def main():
    script, folder, output, workers, size = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    start = time.perf_counter()
    files = []
    for root, _, names in os.walk(folder):
        files.extend(os.path.join(root, n) for n in names)
    files.sort()
    batches = [files[i:i + size] for i in range(0, len(files), size)]
    with multiprocessing.Pool(workers, initializer=_init, initargs=(script,)) as pool, open(output, "w") as out:
        for rows in pool.imap(_run, batches):
            out.write("".join(str(r) + "\n" for r in rows))
    secs = time.perf_counter() - start
    print(f"{len(files)} files in {secs:.2f} s: {len(files) / secs:.0f} files/s")


if __name__ == "__main__":
    main()
