"""Berth's scoring script for MLflow models deployed without code (no-code deployment).

The server reads the model's MLmodel file and passes it as JSON in BERTH_MLMODEL, with the
model folder in BERTH_MLFLOW_MODEL_DIR. Supports the python_function flavor of
scikit-learn models (pickle or cloudpickle), the Azure payload
{"input_data": {"columns": [...], "index": [...], "data": [[...]]}} and plain lists of rows,
and enforces the model signature's column names and types.
"""
import json
import os
import pickle

from berth_worker import BadRequest, StartupError, sklearn_version_note

model = None
columns = None  # [(name, type)] from the signature, or None
version_note = ""  # set by init(): berth_worker.sklearn_version_note


def _noted(exc):
    """exc with the version note, when there is one: the likely cause of an error inside the model."""
    if not version_note:
        return exc
    return RuntimeError(f"{type(exc).__name__}: {exc} ({version_note})")


def _need(module):
    try:
        return __import__(module)
    except ImportError as exc:
        raise StartupError(
            "ImageBuildFailure",
            f"the MLflow model needs the Python package {module!r}, which the interpreter does not have ({exc}): "
            f"install it (Debian: apt-get install python3-{'sklearn' if module == 'sklearn' else module}) "
            "or give the deployment an environment with a conda file that lists it")


def _load(path, fmt):
    with open(path, "rb") as f:
        if fmt == "cloudpickle":
            try:
                import cloudpickle
                return cloudpickle.load(f)
            except ImportError:
                return pickle.load(f)  # cloudpickle files of plain estimators load with pickle
        return pickle.load(f)


def init():
    global model, columns, version_note
    mlmodel = json.loads(os.environ["BERTH_MLMODEL"])
    folder = os.environ["BERTH_MLFLOW_MODEL_DIR"]
    flavors = mlmodel.get("flavors", {})
    pyfunc = flavors.get("python_function", {})
    sk = flavors.get("sklearn")
    if sk is None and pyfunc.get("loader_module") != "mlflow.sklearn":
        raise StartupError("ImageBuildFailure",
                           f"this MLflow model's flavors are {sorted(flavors)}: Berth deploys scikit-learn models without code; "
                           "give other flavors a scoring script (code_configuration) instead")
    _need("numpy")
    _need("pandas")
    _need("sklearn")
    version_note = sklearn_version_note((sk or {}).get("sklearn_version"))
    if version_note:
        print(f"WARNING: {version_note}")
    path = os.path.join(folder, (sk or {}).get("pickled_model") or pyfunc.get("model_path", "model.pkl"))
    fmt = (sk or {}).get("serialization_format", "cloudpickle")
    try:
        model = _load(path, fmt)
    except ImportError:
        raise
    except Exception as exc:
        raise _noted(exc) from exc
    sig = (mlmodel.get("signature") or {}).get("inputs")
    if sig:
        spec = (json.loads(sig) if isinstance(sig, str) else sig) or []
        columns = [(c.get("name"), c.get("type")) for c in spec if c.get("name")] or None
    print(f"MLflow model {type(model).__name__} loaded from {path}; signature columns: {columns}")


_CASTS = {"double": float, "float": float, "long": int, "integer": int, "string": str, "boolean": bool}


def _frame(payload):
    import pandas as pd
    data = payload.get("input_data", payload) if isinstance(payload, dict) else payload
    if isinstance(data, dict) and "data" in data:
        return pd.DataFrame(data["data"], columns=data.get("columns"), index=data.get("index"))
    if isinstance(data, list) and data and isinstance(data[0], dict):
        return pd.DataFrame(data)
    if isinstance(data, list):
        names = [c[0] for c in columns] if columns else None
        rows = data if data and isinstance(data[0], list) else [data]
        if names and rows and len(rows[0]) != len(names):
            raise BadRequest(f"each row needs {len(names)} values ({', '.join(names)}), got {len(rows[0])}")
        return pd.DataFrame(rows, columns=names)
    raise BadRequest('send {"input_data": {"columns": [...], "data": [[...]]}} or a list of rows')


def run(raw_data):
    try:
        payload = json.loads(raw_data)
    except ValueError as exc:
        raise BadRequest(f"the request body is not JSON: {exc}")
    df = _frame(payload)
    if columns:
        names = [n for n, _ in columns]
        unknown = [c for c in df.columns if c not in names]
        missing = [n for n in names if n not in df.columns]
        if unknown or missing:
            parts = []
            if unknown:
                parts.append(f"unknown column(s) {unknown}")
            if missing:
                parts.append(f"missing column(s) {missing}")
            raise BadRequest(f"{' and '.join(parts)}: the model's signature expects {names}")
        for name, typ in columns:
            cast = _CASTS.get(typ)
            if cast is None:
                continue
            try:
                df[name] = df[name].map(cast)
            except (TypeError, ValueError) as exc:
                raise BadRequest(f"column {name!r} must be {typ}: {exc}")
        df = df[names]
    try:
        return model.predict(df).tolist()
    except Exception as exc:
        raise _noted(exc) from exc
