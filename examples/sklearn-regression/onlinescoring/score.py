"""Scores a scikit-learn regression model, laid out like the Azure ML online-endpoint
samples: the model folder is mounted under AZUREML_MODEL_DIR."""
import json
import logging
import os

import joblib
import numpy

model = None


def init():
    global model
    model_path = os.path.join(os.getenv("AZUREML_MODEL_DIR"), "model", "sklearn_regression_model.pkl")
    model = joblib.load(model_path)
    logging.info("Init complete: loaded %s", type(model).__name__)


def run(raw_data):
    logging.info("sklearn-regression: request received")
    features = numpy.array(json.loads(raw_data)["data"])
    predictions = model.predict(features)
    logging.info("Request processed")
    return predictions.tolist()
