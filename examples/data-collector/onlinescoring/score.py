"""Scoring script that logs its inputs and outputs with Azure ML's data collector
(azureml-ai-monitoring): the same file deploys unchanged on Azure Machine Learning.
Berth writes the records under <data dir>/collections/<endpoint>/<deployment>/."""
import json
import os

import pandas as pd
from azureml.ai.monitoring import Collector

model = None


def init():
    global model, inputs_collector, outputs_collector
    with open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model", "model.json")) as f:
        model = json.load(f)
    # The names match data_collector.collections in blue-deployment.yml.
    inputs_collector = Collector(name="model_inputs")
    outputs_collector = Collector(name="model_outputs")


def run(raw_data):
    """Predict one value per row of {"data": [[x1, x2, x3, x4], ...]}."""
    input_df = pd.DataFrame(json.loads(raw_data)["data"], columns=["x1", "x2", "x3", "x4"])
    # collect() returns the correlation context that joins inputs and outputs.
    context = inputs_collector.collect(input_df)
    output_df = pd.DataFrame({"prediction": model["intercept"] + input_df.values @ model["coef"]})
    outputs_collector.collect(output_df, context)
    return output_df["prediction"].tolist()
