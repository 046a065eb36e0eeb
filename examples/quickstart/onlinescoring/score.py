"""Scoring script for the Berth quickstart: a linear model that needs only the
Python standard library. The same file deploys unchanged on Azure Machine Learning."""
import json
import logging
import os

model = None


def init():
    """Load the model once per worker."""
    global model
    path = os.path.join(os.environ["AZUREML_MODEL_DIR"], "model", "model.json")
    with open(path) as f:
        model = json.load(f)
    logging.info("quickstart model loaded from %s with %d coefficients", path, len(model["coef"]))


def run(raw_data):
    """Predict one value per input row: {"data": [[x1, x2, x3, x4], ...]}."""
    rows = json.loads(raw_data)["data"]
    predictions = []
    for row in rows:
        if len(row) != len(model["coef"]):
            raise ValueError(f"each row needs {len(model['coef'])} features, got {len(row)}")
        predictions.append(model["intercept"] + sum(c * x for c, x in zip(model["coef"], row)))
    logging.info("scored %d rows", len(rows))
    return predictions
