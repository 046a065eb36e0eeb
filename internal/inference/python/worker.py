"""Berth's Python worker: imports a scoring script, calls init() once, then serves
run() for requests framed on file descriptors 3 (in) and 4 (out).

Frame: 4-byte big-endian length of a JSON header, the header, 4-byte big-endian
length of the body, the body. Standard library only.
"""
import inspect
import io
import json
import logging
import os
import struct
import sys
import time
import traceback
import types
import importlib.util
import functools

NO_REQUEST = "00000000-0000-0000-0000-000000000000"
_current = {"rid": NO_REQUEST}
_U32 = struct.Struct(">I")


# ---- logging: "<UTC time> <L> [<pid>] <logger> - [<request-id>] <message>" ----------

class _Formatter(logging.Formatter):
    converter = time.gmtime
    default_msec_format = "%s,%03d"

    def format(self, record):
        record.levelinitial = record.levelname[:1]
        record.rid = _current["rid"]
        return super().format(record)


class _LineHandler(logging.StreamHandler):
    """Writes each record with one write() so lines from workers never interleave."""

    def emit(self, record):
        try:
            msg = self.format(record) + "\n"
            os.write(2, msg.encode("utf-8", "replace"))
        except Exception:
            self.handleError(record)


def _setup_logging():
    handler = _LineHandler()
    handler.setFormatter(_Formatter("%(asctime)s %(levelinitial)s [%(process)d] %(name)s - [%(rid)s] %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    level = os.environ.get("AZUREML_LOG_LEVEL", "INFO").upper()
    root.setLevel(getattr(logging, level, logging.INFO))
    return logging.getLogger("azmlinfsrv")


class _PrintToLog(io.TextIOBase):
    """Stands in for sys.stdout/sys.stderr: every complete line becomes a log record."""

    def __init__(self, logger, level):
        self._logger, self._level, self._buf = logger, level, ""

    def writable(self):
        return True

    def write(self, s):
        self._buf += s
        while "\n" in self._buf:
            line, self._buf = self._buf.split("\n", 1)
            self._logger.log(self._level, line)
        return len(s)

    def flush(self):
        if self._buf:
            self._logger.log(self._level, self._buf)
            self._buf = ""


# ---- the azureml.contrib.services shims ---------------------------------------------

class AMLResponse:
    """A response a scoring script returns to choose status, headers and body."""

    def __init__(self, message, status_code=200, response_headers=None, json_str=False):
        if json_str:
            message = json.dumps(message)
        if isinstance(message, str):
            message = message.encode("utf-8")
        elif message is None:
            message = b""
        elif not isinstance(message, (bytes, bytearray)):
            message = json.dumps(message).encode("utf-8")
        self.data = bytes(message)
        self.status_code = int(status_code)
        self.headers = dict(response_headers or {})

    def get_data(self, as_text=False):
        return self.data.decode("utf-8", "replace") if as_text else self.data


class AMLRequest:
    """The request handed to a @rawhttp run(): the parts of a Flask request scripts use."""

    def __init__(self, method, path, query, headers, body):
        from urllib.parse import parse_qs
        self.method = method
        self.path = path
        self.query_string = query.encode("utf-8")
        self.full_path = path + "?" + query
        self.headers = _Headers(headers)
        self.data = body
        self.args = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
        self.content_type = self.headers.get("Content-Type")
        self.mimetype = (self.content_type or "").split(";")[0].strip()

    def get_data(self, as_text=False, cache=True):
        return self.data.decode("utf-8") if as_text else self.data

    def get_json(self, force=False, silent=False, cache=True):
        try:
            return json.loads(self.data)
        except ValueError:
            if silent:
                return None
            raise

    @property
    def json(self):
        return self.get_json()


class _Headers(dict):
    """Case-insensitive header lookup."""

    def __init__(self, items):
        super().__init__(items)
        self._lower = {k.lower(): v for k, v in items.items()}

    def get(self, key, default=None):
        return self._lower.get(key.lower(), default)

    def __getitem__(self, key):
        return self._lower[key.lower()]

    def __contains__(self, key):
        return key.lower() in self._lower


def rawhttp(func):
    """Marks run() as taking the raw request (AMLRequest)."""
    func.__berth_rawhttp__ = True
    return func


def _install_shims():
    req = types.ModuleType("aml_request")
    req.AMLRequest, req.rawhttp = AMLRequest, rawhttp
    resp = types.ModuleType("aml_response")
    resp.AMLResponse = AMLResponse
    for parent in ("azureml.contrib.services", "azureml_inference_server_http.api"):
        parts = parent.split(".")
        for i in range(1, len(parts) + 1):
            name = ".".join(parts[:i])
            if name not in sys.modules:
                mod = types.ModuleType(name)
                mod.__path__ = []
                sys.modules[name] = mod
            if i > 1:
                setattr(sys.modules[".".join(parts[:i - 1])], parts[i - 1], sys.modules[name])
        sys.modules[parent + ".aml_request"] = req
        sys.modules[parent + ".aml_response"] = resp
        setattr(sys.modules[parent], "aml_request", req)
        setattr(sys.modules[parent], "aml_response", resp)


# ---- the inference_schema shim ---------------------------------------------------
# Scripts decorated with inference-schema's @input_schema / @output_schema run without
# the package: these stand-ins keep the schema on run() and convert inputs the same way.

def _json_schema(sample):
    """A JSON schema, with the sample as its example, for a plain Python sample."""
    if isinstance(sample, bool):
        return {"type": "boolean"}
    if isinstance(sample, int):
        return {"type": "integer", "format": "int64"}
    if isinstance(sample, float):
        return {"type": "number", "format": "double"}
    if isinstance(sample, str):
        return {"type": "string"}
    if isinstance(sample, dict):
        props = {}
        for k, v in sample.items():
            props[k] = v.schema() if isinstance(v, AbstractParameterType) else _json_schema(v)
        return {"type": "object", "properties": props}
    if isinstance(sample, (list, tuple)):
        item = sample[0] if sample else None
        items = item.schema() if isinstance(item, AbstractParameterType) else (_json_schema(item) if item is not None else {})
        return {"type": "array", "items": items}
    if sample is None:
        return {}
    return {"type": "object"}


def _to_json(value):
    """json.dumps default: NumPy arrays and scalars, pandas frames and series."""
    if hasattr(value, "to_dict") and hasattr(value, "columns"):
        return value.to_dict(orient="records")
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (set, tuple)):
        return list(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


class AbstractParameterType:
    def __init__(self, sample_input):
        self.sample_input = sample_input

    def deserialize_input(self, value):
        return value

    def input_to_swagger(self):
        return self.schema()

    def schema(self):
        return _json_schema(self.sample_input)

    def example(self):
        return json.loads(json.dumps(self.sample_input, default=_to_json))


class StandardPythonParameterType(AbstractParameterType):
    def deserialize_input(self, value):
        sample = self.sample_input
        if isinstance(sample, dict) and isinstance(value, dict):
            return {k: (sample[k].deserialize_input(v) if isinstance(sample.get(k), AbstractParameterType) else v)
                    for k, v in value.items()}
        if isinstance(sample, list) and sample and isinstance(sample[0], AbstractParameterType) and isinstance(value, list):
            return [sample[0].deserialize_input(v) for v in value]
        return value

    def schema(self):
        s = _json_schema(self.sample_input)
        s["example"] = self.example()
        return s


class NumpyParameterType(AbstractParameterType):
    def __init__(self, sample_input, enforce_column_type=True, enforce_shape=True):
        super().__init__(sample_input)
        self.enforce_column_type, self.enforce_shape = enforce_column_type, enforce_shape

    def deserialize_input(self, value):
        import numpy
        dtype = self.sample_input.dtype if self.enforce_column_type else None
        arr = numpy.array(value, dtype=dtype)
        if self.enforce_shape and arr.ndim != self.sample_input.ndim:
            raise ValueError(f"expected a {self.sample_input.ndim}-dimensional array like the sample, got {arr.ndim} dimensions")
        if self.enforce_shape and arr.ndim > 1 and arr.shape[1:] != self.sample_input.shape[1:]:
            raise ValueError(f"expected rows of shape {list(self.sample_input.shape[1:])}, got {list(arr.shape[1:])}")
        return arr

    def schema(self):
        kind = {"i": {"type": "integer", "format": "int64"}, "u": {"type": "integer", "format": "int64"},
                "f": {"type": "number", "format": "double"}, "b": {"type": "boolean"}}.get(self.sample_input.dtype.kind, {"type": "string"})
        s = kind
        for _ in range(self.sample_input.ndim):
            s = {"type": "array", "items": s}
        s["example"] = self.example()
        return s


class PandasParameterType(AbstractParameterType):
    def __init__(self, sample_input, enforce_column_type=True, enforce_shape=True, apply_column_names=False, orient="records"):
        super().__init__(sample_input)
        self.enforce_column_type, self.orient = enforce_column_type, orient

    def deserialize_input(self, value):
        import pandas
        if self.orient == "records" or isinstance(value, list):
            df = pandas.DataFrame(value)
        else:
            df = pandas.DataFrame.from_dict(value, orient=self.orient)
        missing = [c for c in self.sample_input.columns if c not in df.columns]
        if missing:
            raise ValueError(f"missing columns {missing}; expected {list(self.sample_input.columns)}")
        if self.enforce_column_type:
            df = df.astype(self.sample_input.dtypes.to_dict())
        return df

    def schema(self):
        props = {}
        for col, dtype in self.sample_input.dtypes.items():
            props[str(col)] = {"i": {"type": "integer", "format": "int64"}, "f": {"type": "number", "format": "double"},
                               "b": {"type": "boolean"}}.get(dtype.kind, {"type": "string"})
        return {"type": "array", "items": {"type": "object", "properties": props},
                "example": self.example()}

    def example(self):
        return json.loads(self.sample_input.to_json(orient="records"))


def input_schema(param_name, param_type, convert_to_provided_type=True, optional=False):
    """Declares run()'s parameter param_name: taken from the JSON body, converted to param_type."""
    def decorate(func):
        schemas = dict(getattr(func, "__berth_input_schema__", {}))
        schemas[param_name] = (param_type, convert_to_provided_type, optional)

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            if convert_to_provided_type and param_name in kwargs:
                kwargs[param_name] = param_type.deserialize_input(kwargs[param_name])
            return func(*args, **kwargs)
        wrapper.__berth_input_schema__ = schemas
        return wrapper
    return decorate


def output_schema(output_type):
    """Declares what run() returns, for the swagger document."""
    def decorate(func):
        func.__berth_output_schema__ = output_type
        return func
    return decorate


def _install_inference_schema():
    names = {
        "inference_schema": {},
        "inference_schema.schema_decorators": {"input_schema": input_schema, "output_schema": output_schema},
        "inference_schema.parameter_types": {},
        "inference_schema.parameter_types.abstract_parameter_type": {"AbstractParameterType": AbstractParameterType},
        "inference_schema.parameter_types.standard_py_parameter_type": {"StandardPythonParameterType": StandardPythonParameterType},
        "inference_schema.parameter_types.numpy_parameter_type": {"NumpyParameterType": NumpyParameterType},
        "inference_schema.parameter_types.pandas_parameter_type": {"PandasParameterType": PandasParameterType},
    }
    for name, attrs in names.items():
        mod = types.ModuleType(name)
        mod.__path__ = []
        mod.__dict__.update(attrs)
        sys.modules[name] = mod
        if "." in name:
            parent, child = name.rsplit(".", 1)
            setattr(sys.modules[parent], child, mod)


def _swagger_schemas(run):
    """ServiceInput / ServiceOutput schemas from the decorators, with examples."""
    inputs = getattr(run, "__berth_input_schema__", None)
    out = {"input": {"type": "object", "example": {}}, "output": {"type": "object", "example": {}}}
    if inputs:
        props, example = {}, {}
        for name, (ptype, _, _) in inputs.items():
            props[name] = ptype.schema()
            example[name] = ptype.example()
        out["input"] = {"type": "object", "properties": props, "example": example}
    output = getattr(run, "__berth_output_schema__", None)
    if output is not None:
        s = output.schema()
        out["output"] = s
    return out


# ---- framing ---------------------------------------------------------------------

def _read_exact(f, n):
    data = f.read(n)
    if data is None or len(data) < n:
        raise EOFError
    return data


def _read_frame(f):
    (hlen,) = _U32.unpack(_read_exact(f, 4))
    header = json.loads(_read_exact(f, hlen)) if hlen else {}
    (blen,) = _U32.unpack(_read_exact(f, 4))
    body = _read_exact(f, blen) if blen else b""
    return header, body


def _write_frame(f, header, body=b""):
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    f.write(b"".join((_U32.pack(len(h)), h, _U32.pack(len(body)), body)))
    f.flush()


# ---- startup -----------------------------------------------------------------------

class StartupError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code, self.message = code, message


class BadRequest(Exception):
    """Raised by Berth's built-in scripts for input the model cannot take: answered 400."""


def _install_berth_module():
    mod = types.ModuleType("berth_worker")
    mod.StartupError, mod.BadRequest = StartupError, BadRequest
    sys.modules["berth_worker"] = mod


def _describe(exc):
    """The error in its own words: type, text, and where it happened."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = ""
    if isinstance(exc, SyntaxError) and exc.filename:
        where = f" ({os.path.basename(exc.filename)}, line {exc.lineno})"
    elif frames:
        last = frames[-1]
        where = f" ({os.path.basename(last.filename)}, line {last.lineno}, in {last.name})"
    text = str(exc) if not isinstance(exc, SyntaxError) else (exc.msg or str(exc))
    return f"{type(exc).__name__}: {text}{where}"


def _load(entry, log):
    script_dir = os.path.dirname(os.path.abspath(entry))
    for p in (os.environ.get("AML_APP_ROOT"), script_dir, os.environ.get("AZUREML_SOURCE_DIRECTORY")):
        if p and p not in sys.path:
            sys.path.append(p)
    name = os.path.splitext(os.path.basename(entry))[0]
    try:
        spec = importlib.util.spec_from_file_location(name, entry)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    except BaseException as exc:  # any failure while importing the user's script
        log.error("Failed to import %s:\n%s", entry, traceback.format_exc())
        msg = f"{os.path.basename(entry)} failed to import: {_describe(exc)}"
        if isinstance(exc, ImportError):
            msg += (f". The interpreter was {sys.executable}: install the package for it, or choose another"
                    " interpreter with `berth serve --python` or BERTH_PYTHON (Debian's packages live in /usr/bin/python3)")
        raise StartupError("UserScriptImportError", msg)
    missing = [f for f in ("init", "run") if not callable(getattr(module, f, None))]
    if missing:
        raise StartupError("UserScriptFunctionNotFound",
                           f"{os.path.basename(entry)} does not define {' or '.join(m + '()' for m in missing)}: "
                           "a scoring script needs both init() and run()")
    return module


def main():
    entry = sys.argv[1]
    log = _setup_logging()
    printer = logging.getLogger("azmlinfsrv.print")
    sys.stdout = _PrintToLog(printer, logging.INFO)
    sys.stderr = _PrintToLog(printer, logging.ERROR)
    _install_shims()
    _install_inference_schema()
    _install_berth_module()
    rin = open(3, "rb", buffering=1 << 16)
    wout = open(4, "wb", buffering=1 << 16)
    try:
        t0 = time.perf_counter()
        module = _load(entry, log)
        t1 = time.perf_counter()
        try:
            module.init()
        except StartupError:
            raise
        except BaseException as exc:
            log.error("User's init function failed:\n%s", traceback.format_exc())
            raise StartupError("UserScriptInitFailed", f"init() in {os.path.basename(entry)} raised {_describe(exc)}")
        t2 = time.perf_counter()
    except StartupError as e:
        _write_frame(wout, {"ready": False, "code": e.code, "message": e.message})
        sys.stdout.flush()
        sys.exit(3)
    sys.stdout.flush()
    run = module.run
    raw = getattr(run, "__berth_rawhttp__", False)
    try:
        wants_headers = "request_headers" in inspect.signature(run).parameters
    except (TypeError, ValueError):
        wants_headers = False
    schema = getattr(run, "__berth_input_schema__", None)
    try:
        swagger = _swagger_schemas(run)
    except Exception:
        log.warning("could not build the swagger schema from the decorators:\n%s", traceback.format_exc())
        swagger = None
    log.info("Worker with pid %d ready for serving traffic", os.getpid())
    log.info("import of %s took %.0f ms, init() took %.0f ms", os.path.basename(entry), (t1 - t0) * 1000, (t2 - t1) * 1000)
    _write_frame(wout, {"ready": True, "pid": os.getpid(), "hdr": bool(raw or wants_headers or schema), "schema": swagger,
                        "import_ms": (t1 - t0) * 1000, "init_ms": (t2 - t1) * 1000})
    _serve(rin, wout, run, raw, wants_headers, schema, log)


def _query_json(query):
    from urllib.parse import parse_qs
    out = {}
    for k, vals in parse_qs(query, keep_blank_values=True).items():
        parsed = []
        for v in vals:
            try:
                parsed.append(json.loads(v))
            except ValueError:
                parsed.append(v)
        out[k] = parsed[0] if len(parsed) == 1 else parsed
    return json.dumps(out)


def _schema_kwargs(run, schema, method, query, headers, body):
    """The keyword arguments of a decorated run() from a JSON object body, or (status, message)."""
    if method == "GET":
        payload = json.loads(_query_json(query))
    else:
        ctype = ""
        for k, v in headers.items():
            if k.lower() == "content-type":
                ctype = v.split(";")[0].strip().lower()
        if ctype != "application/json":
            return None, (415, f"Expected Content-Type: application/json for a run() decorated with @input_schema, got {ctype or 'none'}")
        if not body.strip():
            return None, (400, "The request body is empty: send a JSON dictionary with the inputs of run()")
        try:
            payload = json.loads(body)
        except ValueError as exc:
            return None, (400, f"The request body is not valid JSON: {exc}")
    if not isinstance(payload, dict):
        return None, (400, "POST body should be a JSON dictionary with one key per input of run()")
    try:
        params = inspect.signature(run).parameters
    except (TypeError, ValueError):
        params = {}
    kwargs = {}
    for name, p in params.items():
        if name == "request_headers":
            kwargs[name] = headers
        elif name in payload:
            kwargs[name] = payload[name]
        elif p.default is inspect.Parameter.empty and not (name in schema and schema[name][2]):
            return None, (400, f"The request body has no value for the required input {name!r}")
    return kwargs, None


def _raised_in_user_code(exc, run):
    """Whether exc came from the user's run() rather than from converting its inputs."""
    target = inspect.unwrap(run).__code__
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code is target:
            return True
        tb = tb.tb_next
    return False


def _serve(rin, wout, run, raw, wants_headers, schema, log):
    json_headers = [["Content-Type", "application/json"]]
    while True:
        try:
            req, body = _read_frame(rin)
        except EOFError:
            return
        if req.get("ping"):
            # A liveness check from the server: answered between requests, never by run().
            _write_frame(wout, {"s": 200, "srv": True}, b"")
            continue
        _current["rid"] = req.get("id", NO_REQUEST)
        headers = req.get("h", {})
        method, query = req.get("m", "POST"), req.get("q", "")
        start = time.perf_counter()
        try:
            if raw:
                result = run(AMLRequest(method, "/score", query, headers, body))
            elif schema:
                kwargs, problem = _schema_kwargs(run, schema, method, query, headers, body)
                if problem:
                    _write_frame(wout, {"s": problem[0], "h": json_headers, "srv": True}, json.dumps({"message": problem[1]}).encode())
                    continue
                try:
                    result = run(**kwargs)
                except (ValueError, TypeError) as exc:
                    if not _raised_in_user_code(exc, run):
                        _write_frame(wout, {"s": 400, "h": json_headers, "srv": True},
                                     json.dumps({"message": f"The input does not match the schema of run(): {exc}"}).encode())
                        continue
                    raise
            else:
                if method == "GET":
                    data = _query_json(query)
                else:
                    try:
                        data = body.decode("utf-8")
                    except UnicodeDecodeError as exc:
                        _write_frame(wout, {"s": 400, "h": json_headers, "srv": True},
                                     json.dumps({"message": f"the request body is not valid UTF-8: {exc}"}).encode())
                        continue
                result = run(data, request_headers=headers) if wants_headers else run(data)
            ms = (time.perf_counter() - start) * 1000
            if isinstance(result, AMLResponse):
                hdrs = []
                for k, v in result.headers.items():
                    for part in str(v).split(","):
                        hdrs.append([k, part.strip()])
                _write_frame(wout, {"s": result.status_code, "h": hdrs, "ms": ms}, result.data)
            else:
                _write_frame(wout, {"s": 200, "h": json_headers, "ms": ms}, json.dumps(result, default=_to_json).encode("utf-8"))
        except BadRequest as exc:
            _write_frame(wout, {"s": 400, "h": json_headers, "srv": True}, json.dumps({"message": str(exc)}).encode())
        except Exception as exc:
            ms = (time.perf_counter() - start) * 1000
            log.error("Encountered Exception: %s", traceback.format_exc())
            payload = {"message": "An unexpected error occurred in scoring script. Check the logs for more info.",
                       "exception": {"type": type(exc).__name__, "message": str(exc)}}
            _write_frame(wout, {"s": 500, "h": json_headers, "ms": ms, "failed": True}, json.dumps(payload).encode())
        finally:
            sys.stdout.flush()
            _current["rid"] = NO_REQUEST


if __name__ == "__main__":
    main()
