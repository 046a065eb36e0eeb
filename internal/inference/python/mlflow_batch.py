"""Berth's batch scoring script for MLflow models deployed to a batch endpoint without code.

The batch worker runs it like a user's batch scoring script: init() once per worker
process, then run(mini_batch) with a list of absolute file paths. As in mlflow_score.py
(the online no-code scorer), the server passes the model's MLmodel file as JSON in
BERTH_MLMODEL and the model folder in BERTH_MLFLOW_MODEL_DIR; the python_function flavor of
scikit-learn models (pickle or cloudpickle) is supported, and the signature's columns are
enforced. Each file is read by extension (.csv, .parquet, .pqt) and predicted on its own;
a file that cannot be read is logged as "Error processing input file" and skipped. The
result has the columns row, prediction, file_name and is written comma-separated without a
header, like Azure's predictions.csv.
"""
import json
import logging
import os
import pickle

from berth_worker import sklearn_version_note

log = logging.getLogger("azureml")
model = None
columns = None  # [(name, type)] from the signature, or None
version_note = ""  # set by init(): berth_worker.sklearn_version_note

_TABLES = (".csv", ".parquet", ".pqt")
_IMAGES = (".png", ".jpg", ".jpeg", ".tiff", ".bmp", ".gif")
# The same conversions as mlflow_score.py, applied to whole columns.
_CASTS = {"double": "float64", "float": "float64", "long": "int64", "integer": "int64", "string": "str", "boolean": "bool"}


def _need(module):
    try:
        return __import__(module)
    except ImportError as exc:
        raise ImportError(
            f"the MLflow model needs the Python package {module!r}, which the interpreter does not have ({exc}): "
            f"install it (Debian: apt-get install python3-{module}) "
            "or give the deployment an environment with a conda file that lists it") from exc


def _noted(exc):
    """exc with the version note, when there is one: the likely cause of an error inside the model."""
    if not version_note:
        return exc
    return RuntimeError(f"{type(exc).__name__}: {exc} ({version_note})")


def _unpickle(path, fmt):
    with open(path, "rb") as f:
        try:
            if fmt == "cloudpickle":
                try:
                    import cloudpickle
                    return cloudpickle.load(f)
                except ImportError:
                    pass  # cloudpickle files of plain estimators and pipelines load with pickle
            return pickle.load(f)
        except ModuleNotFoundError as exc:
            name = (exc.name or "").split(".")[0]
            raise ImportError(
                f"loading the MLflow model {os.path.basename(path)} needs the Python module {name!r}, which the "
                f"interpreter does not have: install it (Debian: apt-get install python3-{name}) "
                "or give the deployment an environment with a conda file that lists it") from exc


def init():
    global model, columns, version_note
    mlmodel = json.loads(os.environ["BERTH_MLMODEL"])
    folder = os.environ["BERTH_MLFLOW_MODEL_DIR"]
    flavors = mlmodel.get("flavors") or {}
    pyfunc = flavors.get("python_function") or {}
    sk = flavors.get("sklearn")
    if sk is None and pyfunc.get("loader_module") != "mlflow.sklearn":
        raise RuntimeError(
            f"this MLflow model's flavors are {sorted(flavors)}: Berth scores scikit-learn models (python_function "
            "flavor, loader_module mlflow.sklearn) without code; give the batch deployment a scoring script "
            "(code_configuration) for other flavors")
    for module in ("numpy", "pandas", "sklearn"):
        _need(module)
    version_note = sklearn_version_note((sk or {}).get("sklearn_version"))
    if version_note:
        print(f"WARNING: {version_note}")
    path = os.path.join(folder, (sk or {}).get("pickled_model") or pyfunc.get("model_path", "model.pkl"))
    try:
        model = _unpickle(path, (sk or {}).get("serialization_format", "cloudpickle"))
    except ImportError:
        raise
    except Exception as exc:
        raise _noted(exc) from exc
    sig = (mlmodel.get("signature") or {}).get("inputs")
    spec = (json.loads(sig) if isinstance(sig, str) else sig) or []
    columns = [(c.get("name"), c.get("type")) for c in spec if isinstance(c, dict) and c.get("name")] or None
    print(f"MLflow model {type(model).__name__} loaded from {path}; signature columns: {columns}")


def _read(path):
    import pandas as pd
    ext = os.path.splitext(path)[1].lower()
    if ext == ".csv":
        df = pd.read_csv(path)
    elif ext in (".parquet", ".pqt"):
        try:
            df = pd.read_parquet(path)
        except ImportError as exc:
            raise ImportError(f"reading Parquet needs pyarrow (Debian: apt-get install python3-pyarrow): {exc}") from exc
    elif ext in _IMAGES:
        raise ValueError(
            f"image files ({ext}) are not supported by Berth's built-in MLflow batch scoring, which has no image "
            "library: give the deployment a scoring script (code_configuration) that decodes them")
    else:
        raise ValueError(
            f"unsupported file type {ext or '(none)'!r}: MLflow models deployed without a scoring script read "
            f"{', '.join(_TABLES)} files; convert the input or give the deployment a scoring script")
    return _enforce(df)


def _enforce(df):
    if not columns:
        return df
    names = [n for n, _ in columns]
    missing = [n for n in names if n not in df.columns]
    if missing:
        raise ValueError(f"missing column(s) {missing}: the model's signature expects {names}")
    df = df[names].copy()
    for name, typ in columns:
        dtype = _CASTS.get(typ)
        if dtype is None:
            continue
        try:
            df[name] = df[name].astype(dtype)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"column {name!r} must be {typ}: {exc}") from exc
    return df


def _score(df, path):
    import numpy as np
    import pandas as pd
    try:
        pred = np.asarray(model.predict(df))
    except Exception as exc:
        raise _noted(exc) from exc
    values = [str(r) for r in pred.tolist()] if pred.ndim > 1 else pred
    return pd.DataFrame({"row": range(len(df)), "prediction": values, "file_name": os.path.basename(path)})


def run(mini_batch):
    import pandas as pd
    frames = []
    for path in mini_batch:
        try:
            df = _read(path)
        except Exception as exc:
            log.error(f"Error processing input file: '{path}'. Exception: {exc}")
            continue
        frames.append((df, path))
    # All files unreadable: pandas raises "No objects to concatenate", Azure's message for this case.
    out = pd.concat([_score(df, path) for df, path in frames], ignore_index=True)
    out.attrs["berth_sep"] = ","
    return out
