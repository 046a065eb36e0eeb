import json

import pandas as pd
from azureml.ai.monitoring import Collector


def init():
    global inputs, outputs, errors
    errors = []
    inputs = Collector(name="model_inputs")
    outputs = Collector(name="model_outputs", on_error=errors.append)


def run(data):
    df = pd.DataFrame(json.loads(data)["data"])
    context = inputs.collect(df)
    out = pd.DataFrame({"total": df.sum(axis=1)})
    outputs.collect(out, context)
    outputs.collect([1, 2])  # not a DataFrame: on_error gets the TypeError
    return {"total": out["total"].tolist(), "errors": [str(e) for e in errors[-1:]], "context": context.get_id()}
