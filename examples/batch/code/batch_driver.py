"""A batch scoring script in Azure's shape: init() once per worker, run(mini_batch)
once per mini-batch of file paths, one returned element per output row.

Standard library only, so it runs on any python3."""
import argparse
import csv
import json
import logging
import os

model = None


def init():
    global model
    parser = argparse.ArgumentParser()
    parser.add_argument("--logging_level", default="info")
    args, _ = parser.parse_known_args()  # Azure passes --logging_level to the script
    path = os.path.join(os.environ["AZUREML_MODEL_DIR"], "model", "weights.json")
    with open(path) as f:
        model = json.load(f)
    logging.info("model loaded from %s (logging level %s)", path, args.logging_level)


def run(mini_batch):
    rows = []
    for path in mini_batch:
        with open(path, newline="") as f:
            for i, rec in enumerate(csv.DictReader(f)):
                x = [float(rec["x1"]), float(rec["x2"])]
                y = model["intercept"] + sum(c * v for c, v in zip(model["coef"], x))
                rows.append(f"{os.path.basename(path)} {i} {y:.2f}")
    return rows
