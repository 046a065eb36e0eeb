"""Berth's Python worker: imports a scoring script, calls init() once, then serves
run() for requests framed on file descriptors 3 (in) and 4 (out).

Frame: 4-byte big-endian length of a JSON header, the header, 4-byte big-endian
length of the body, the body. Standard library only.
"""
import collections.abc
import io
import json
import logging
import os
import signal
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
    """The worker's line format, built directly: logging.Formatter's general path (a
    dict format over every record attribute, strftime for every line) costs as much as
    a small model's run() when a script logs a line or two per request."""
    converter = time.gmtime
    default_msec_format = "%s,%03d"
    _second, _stamp = None, ""

    def format(self, record):
        record.levelinitial = record.levelname[:1]
        record.rid = _current["rid"]
        record.message = record.getMessage()
        second = int(record.created)
        if second != self._second:
            self._second, self._stamp = second, time.strftime(self.default_time_format, time.gmtime(second))
        record.asctime = "%s,%03d" % (self._stamp, record.msecs)
        s = "%s %s [%d] %s - [%s] %s" % (record.asctime, record.levelinitial, record.process, record.name,
                                          record.rid, record.message)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        for extra in (record.exc_text, record.stack_info and self.formatStack(record.stack_info)):
            if extra:  # on a line of its own, as logging.Formatter adds them
                s += extra if s.endswith("\n") else "\n" + extra
        return s


class _LineHandler(logging.StreamHandler):
    """Writes each record with one write() so lines from workers never interleave."""

    def emit(self, record):
        try:
            msg = self.format(record) + "\n"
            os.write(2, msg.encode("utf-8", "replace"))
        except Exception:
            self.handleError(record)


class _LeanRecords:
    """While the worker's handler is the only one that formats records (nothing else on
    the root logger or any other logger, no record factory or filters of the script's),
    a line logged on the root logger (logging.info(...), as the Azure samples do) is
    built and written directly: the same line, without a LogRecord and the handler
    chain, which cost twice the line itself. Records also skip the caller's file and
    line and the thread and process names (logging's documented optimisation flags),
    which the worker's format does not use. A score.py that adds a handler, a filter or
    a record factory gets logging's own path back from its next request on."""

    def __init__(self, handler):
        self.handler, self.formatter = handler, handler.formatter
        self.on, self.srcfile = False, logging._srcfile

    def _root_alone(self, root):
        """The cheap part of _alone: the root logger's side."""
        return (len(root.handlers) == 1 and root.handlers[0] is self.handler and self.handler.formatter is self.formatter
                and not root.filters and not self.handler.filters and logging.getLogRecordFactory() is logging.LogRecord)

    def _alone(self):
        if not self._root_alone(logging.getLogger()):
            return False
        for lg in list(logging.Logger.manager.loggerDict.values()):
            for h in getattr(lg, "handlers", ()):
                if not isinstance(h, logging.NullHandler):
                    return False
        return True

    def check(self):
        """Called between requests: cheap while nothing changed."""
        root = logging.getLogger()
        alone = self._root_alone(root)
        if self.on and alone:
            return
        if alone and self._alone():
            logging._srcfile, logging.logThreads, logging.logMultiprocessing = None, False, False
            root._log = self._log
            self.on = True
        elif self.on:
            logging._srcfile, logging.logThreads, logging.logMultiprocessing = self.srcfile, True, True
            del root._log
            self.on = False

    def _log(self, level, msg, args, exc_info=None, extra=None, stack_info=False, stacklevel=1):
        """The root logger's _log while on: the line _Formatter makes of the record."""
        root = logging.root
        if exc_info or extra is not None or stack_info or root.disabled or level < self.handler.level:
            return logging.Logger._log(root, level, msg, args, exc_info, extra, stack_info, stacklevel)
        try:
            text = str(msg)
            if args:
                if len(args) == 1 and isinstance(args[0], collections.abc.Mapping) and args[0]:
                    text = text % args[0]
                else:
                    text = text % args
        except Exception:  # logging's own path reports it, as logging does
            return logging.Logger._log(root, level, msg, args, exc_info, extra, stack_info, stacklevel)
        now = time.time()
        second = int(now)
        f = self.formatter
        if second != f._second:
            f._second, f._stamp = second, time.strftime(f.default_time_format, time.gmtime(second))
        line = "%s,%03d %s [%d] %s - [%s] %s\n" % (f._stamp, int((now - second) * 1000), logging.getLevelName(level)[:1],
                                                   os.getpid(), root.name, _current["rid"], text)
        try:
            os.write(2, line.encode("utf-8", "replace"))
        except OSError:  # logging's own path reports it, as _LineHandler does
            logging.Logger._log(root, level, msg, args, exc_info, extra, stack_info, stacklevel)


def _setup_logging():
    handler = _LineHandler()
    # The format string documents the line (and is what logging.Formatter would do);
    # _Formatter.format builds the same line directly.
    handler.setFormatter(_Formatter("%(asctime)s %(levelinitial)s [%(process)d] %(name)s - [%(rid)s] %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    level = os.environ.get("AZUREML_LOG_LEVEL", "INFO").upper()
    root.setLevel(getattr(logging, level, logging.INFO))
    _lean[0] = _LeanRecords(handler)
    return logging.getLogger("azmlinfsrv")


_lean = [None]  # the _LeanRecords of the worker's handler


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
        if _is_stream(message):
            self.data, self.stream = b"", message  # sent chunk by chunk as run() yields it
            self.status_code = int(status_code)
            self.headers = dict(response_headers or {})
            return
        self.stream = None
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

    def set_data(self, value):
        self.data = value.encode("utf-8") if isinstance(value, str) else bytes(value)

    # Azure's AMLResponse is a Flask Response: scripts set its type after building it
    # (resp.mimetype = "image/jpeg"), which must reach the Content-Type header.
    @property
    def content_type(self):
        for k, v in self.headers.items():
            if k.lower() == "content-type":
                return v
        return None

    @content_type.setter
    def content_type(self, value):
        for k in [k for k in self.headers if k.lower() == "content-type"]:
            del self.headers[k]
        if value is not None:
            self.headers["Content-Type"] = value

    @property
    def mimetype(self):
        ct = self.content_type
        return ct.split(";", 1)[0].strip().lower() if ct else None

    @mimetype.setter
    def mimetype(self, value):
        # As werkzeug does: text types, and a few others, get a charset.
        if value.startswith("text/") or value in _CHARSET_MIMETYPES or (value.startswith("application/") and value.endswith("+xml")):
            value += "; charset=utf-8"
        self.content_type = value

    @property
    def status(self):
        import http.client  # only here: it costs a worker's start more than it is used
        return "%d %s" % (self.status_code, http.client.responses.get(self.status_code, "UNKNOWN").upper())

    @status.setter
    def status(self, value):
        # As werkzeug: 201, or "201 CREATED" (its code counts).
        self.status_code = value if isinstance(value, int) else int(str(value).split()[0])


_CHARSET_MIMETYPES = {"application/ecmascript", "application/javascript", "application/sql", "application/xml",
                      "application/xml-dtd", "application/xml-external-parsed-entity"}


class BadRequest(Exception):
    """Answered with its status (400 unless code says otherwise) and message, before or inside run():
    Berth's built-in scripts raise it for input the model cannot take, AMLRequest for a malformed request."""
    code = 400


class UnsupportedMediaType(BadRequest):
    """get_json() on a body that is not JSON, as Flask answers it: 415."""
    code = 415


class BadRequestKeyError(BadRequest, KeyError):
    """A missing key in request.form/files/args/headers[...]: a KeyError that Flask answers with 400."""

    def __str__(self):
        return f"the request has no {self.args[1]} {self.args[0]!r}" if len(self.args) > 1 else super().__str__()


def _convert(value, type, default):
    """werkzeug's get(..., type=): the value converted, or default when it does not convert."""
    if type is None:
        return value
    try:
        return type(value)
    except (ValueError, TypeError):
        return default


class MultiDict(dict):
    """werkzeug's MultiDict: [key] and get() give the first value, getlist() every value."""

    def __init__(self, pairs=(), kind="key"):
        super().__init__()
        self._lists, self._kind = {}, kind
        for k, v in pairs:
            self._lists.setdefault(k, []).append(v)
            if k not in self:
                dict.__setitem__(self, k, v)

    def __getitem__(self, key):
        if key in self:
            return dict.__getitem__(self, key)
        raise BadRequestKeyError(key, self._kind)

    def get(self, key, default=None, type=None):
        if key not in self:
            return default
        return _convert(dict.__getitem__(self, key), type, default)

    def getlist(self, key, type=None):
        values = list(self._lists.get(key, ()))
        if type is None:
            return values
        out = []
        for v in values:
            try:
                out.append(type(v))
            except (ValueError, TypeError):
                pass
        return out

    def lists(self):
        return [(k, list(v)) for k, v in self._lists.items()]

    def items(self, multi=False):
        return [(k, v) for k, vs in self._lists.items() for v in vs] if multi else list(dict.items(self))

    def values(self):
        return list(dict.values(self))

    def listvalues(self):
        return [list(v) for v in self._lists.values()]

    def to_dict(self, flat=True):
        return dict(dict.items(self)) if flat else {k: list(v) for k, v in self._lists.items()}

    def __setitem__(self, key, value):
        dict.__setitem__(self, key, value)
        self._lists[key] = [value]

    def __repr__(self):
        return f"{type(self).__name__}({self.items(multi=True)!r})"


class Headers:
    """Request headers as Flask has them: iterating yields (name, value) pairs, lookups ignore
    case, and a header sent several times is one value joined with ", "."""

    def __init__(self, items):
        self._items = sorted((str(k), str(v)) for k, v in (items or {}).items())
        self._lower = {k.lower(): v for k, v in self._items}

    def get(self, key, default=None, type=None):
        value = self._lower.get(key.lower())
        if value is None:
            return default
        return _convert(value, type, default)

    def getlist(self, key, type=None):
        value = self.get(key, type=type)
        return [] if value is None else [value]

    get_all = getlist

    def __getitem__(self, key):
        if isinstance(key, int):
            return self._items[key]
        try:
            return self._lower[key.lower()]
        except KeyError:
            raise BadRequestKeyError(key, "header") from None

    def __contains__(self, key):
        return isinstance(key, str) and key.lower() in self._lower

    def __iter__(self):
        return iter(self._items)

    def __len__(self):
        return len(self._items)

    def __bool__(self):
        return bool(self._items)

    def __eq__(self, other):
        return isinstance(other, Headers) and sorted(self._lower.items()) == sorted(other._lower.items())

    def keys(self, lower=False):
        return [k.lower() if lower else k for k, _ in self._items]

    def values(self):
        return [v for _, v in self._items]

    def items(self, lower=False):
        return [(k.lower() if lower else k, v) for k, v in self._items]

    def to_wsgi_list(self):
        return list(self._items)

    def copy(self):
        return Headers(dict(self._items))

    def __str__(self):
        return "".join(f"{k}: {v}\r\n" for k, v in self._items) + "\r\n"

    def __repr__(self):
        return f"Headers({self._items!r})"


class FileStorage:
    """An uploaded file, as werkzeug's FileStorage: read it, or save it to a path or file."""

    def __init__(self, data, filename, name, content_type, headers):
        self.stream = io.BytesIO(data)
        self.filename, self.name, self.content_type = filename, name, content_type
        self.headers = Headers(headers)
        self.mimetype, self.mimetype_params = _parse_options(content_type)
        self.content_length = len(data)

    def save(self, dst, buffer_size=16384):
        if isinstance(dst, (str, bytes, os.PathLike)):
            with open(dst, "wb") as f:
                f.write(self.stream.getvalue())
        else:
            dst.write(self.stream.getvalue())

    def close(self):
        self.stream.close()

    def __getattr__(self, name):
        # read, seek, tell, readline...: a FileStorage is the file, as PIL.Image.open expects.
        if name == "stream":
            raise AttributeError(name)
        return getattr(self.stream, name)

    def __iter__(self):
        return iter(self.stream)

    def __bool__(self):
        return bool(self.filename)

    def __repr__(self):
        return f"<FileStorage: {self.filename!r} ({self.content_type!r})>"


def _parse_options(value):
    """'text/plain; charset=utf-8' as ('text/plain', {'charset': 'utf-8'})."""
    if not value:
        return "", {}
    mimetype, sep, _ = value.partition(";")
    if not sep:
        return mimetype.strip().lower(), {}
    import email.message
    import email.utils
    msg = email.message.Message()
    msg["Content-Type"] = value
    params = msg.get_params() or [("", "")]
    return params[0][0].strip().lower(), {k.lower(): email.utils.collapse_rfc2231_value(v) for k, v in params[1:]}


def _unmangle(text):
    """A header value the bytes parser read with surrogateescape, back as UTF-8 text."""
    if text is None:
        return None
    try:
        return text.encode("ascii", "surrogateescape").decode("utf-8", "replace")
    except UnicodeError:
        return text


def _header(headers, name):
    return next((v for k, v in headers.items() if k.lower() == name.lower()), None)


def _multipart_parts(boundary, body):
    """The parts of a multipart body, each as (header bytes, payload bytes). The body is
    cut at its boundaries with bytes.find: the email parser, line by line, takes seconds on
    a few megabytes of image."""
    sep = b"\n--" + boundary.encode("utf-8")
    body = b"\r\n" + body  # the first boundary may open the body
    at = body.find(sep)
    parts = []
    while True:
        if at < 0:
            raise ValueError("the body has no boundary")
        pos = at + len(sep)
        if body.startswith(b"--", pos):
            return parts
        eol = body.find(b"\n", pos)  # skip transport padding up to the line end
        if eol < 0:
            raise ValueError("the body ends inside a boundary line")
        at = body.find(sep, eol + 1)
        if at < 0:
            raise ValueError("the body has no closing boundary")
        part = body[eol + 1:at - 1 if body[at - 1:at] == b"\r" else at]
        if part.startswith((b"\r\n", b"\n")):  # a part with no headers
            parts.append((b"", part[2 if part.startswith(b"\r\n") else 1:]))
            continue
        head, crlf, payload = part.partition(b"\r\n\r\n")
        if not crlf:
            head, _, payload = part.partition(b"\n\n")
        parts.append((head, payload))


def _parse_multipart(content_type, body):
    """The (form, files) pairs of a multipart/form-data body; each part's headers are read
    by the email package."""
    import email.parser
    import email.policy
    boundary = _parse_options(content_type)[1].get("boundary")
    if not boundary:
        raise ValueError("the Content-Type has no boundary")
    parser = email.parser.BytesHeaderParser(policy=email.policy.compat32)
    form, files = [], []
    for head, data in _multipart_parts(boundary, body):
        headers = {k: _unmangle(v) for k, v in parser.parsebytes(head).raw_items()}
        _, disposition = _parse_options(_header(headers, "Content-Disposition"))
        name = disposition.get("name")
        if name is None:
            continue
        ctype = _header(headers, "Content-Type")
        if "filename" in disposition:
            files.append((name, FileStorage(data, disposition["filename"], name, ctype, headers)))
            continue
        charset = _parse_options(ctype)[1].get("charset") or "utf-8"
        try:
            form.append((name, data.decode(charset, "replace")))
        except LookupError:
            form.append((name, data.decode("utf-8", "replace")))
    return form, files


class AMLRequest:
    """The request handed to a @rawhttp run(): Flask's request, with form fields and
    uploaded files, from the standard library."""

    def __init__(self, method, path, query, headers, body, remote_addr=None):
        self.method = method
        self.path = path
        self.query_string = query.encode("utf-8")
        self.full_path = path + "?" + query
        self.headers = Headers(headers)
        self._body = body
        from urllib.parse import parse_qsl  # online only: batch workers start without it
        self.args = MultiDict(parse_qsl(query, keep_blank_values=True), "query argument")
        self.content_type = self.headers.get("Content-Type")
        self.mimetype, self.mimetype_params = _parse_options(self.content_type)
        self.content_encoding = self.headers.get("Content-Encoding")
        self.content_length = self.headers.get("Content-Length", type=int)
        if self.content_length is None and body:
            self.content_length = len(body)
        self.host = self.headers.get("Host") or "localhost:" + (os.environ.get("SERVER_PORT") or "5001")
        self.scheme = "http"
        self.is_secure = False
        self.script_root = self.root_path = ""
        self.host_url = self.url_root = f"{self.scheme}://{self.host}/"
        self.base_url = f"{self.scheme}://{self.host}{path}"
        self.url = self.base_url + ("?" + query if query else "")
        self.remote_addr = remote_addr
        self._form = self._stream = None

    def _load_form(self):
        form, files = [], []
        try:
            if self.mimetype == "multipart/form-data":
                form, files = _parse_multipart(self.content_type, self._body)
            elif self.mimetype == "application/x-www-form-urlencoded":
                from urllib.parse import parse_qsl
                form = parse_qsl(self._body.decode("utf-8", "replace"), keep_blank_values=True)
        except (ValueError, TypeError, LookupError) as exc:
            # Flask parses forms silently: a malformed body gives empty form and files.
            logging.getLogger("azmlinfsrv").warning("could not parse the %s body: %s", self.mimetype, exc)
        self._form = (MultiDict(form, "form field"), MultiDict(files, "file"))

    @property
    def form(self):
        if self._form is None:
            self._load_form()
        return self._form[0]

    @property
    def files(self):
        if self._form is None:
            self._load_form()
        return self._form[1]

    @property
    def values(self):
        pairs = self.args.items(multi=True)
        if self.method != "GET":
            pairs += self.form.items(multi=True)
        return MultiDict(pairs, "value")

    @property
    def cookies(self):
        import http.cookies
        jar = http.cookies.SimpleCookie()
        try:
            jar.load(self.headers.get("Cookie", ""))
        except http.cookies.CookieError:
            pass
        return MultiDict(((k, m.value) for k, m in jar.items()), "cookie")

    @property
    def user_agent(self):
        return self.headers.get("User-Agent", "")

    @property
    def stream(self):
        if self._stream is None:
            self._stream = io.BytesIO(self._body)
        return self._stream

    input_stream = stream

    @property
    def data(self):
        # As in Flask: a form body is in form and files, not in data.
        if self.mimetype in ("multipart/form-data", "application/x-www-form-urlencoded"):
            return b""
        return self._body

    def get_data(self, cache=True, as_text=False, parse_form_data=False):
        data = self.data if parse_form_data else self._body
        return data.decode("utf-8", "replace") if as_text else data

    @property
    def is_json(self):
        mt = self.mimetype
        return mt == "application/json" or (mt.startswith("application/") and mt.endswith("+json"))

    def get_json(self, force=False, silent=False, cache=True):
        if not (force or self.is_json):
            if silent:
                return None
            raise UnsupportedMediaType("Did not attempt to load JSON data because the request Content-Type "
                                       f"was not 'application/json' (it was {self.content_type or 'none'!r})")
        try:
            return json.loads(self._body)
        except ValueError as exc:
            if silent:
                return None
            raise BadRequest(f"Failed to decode JSON object: {exc}") from exc

    @property
    def json(self):
        return self.get_json()


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


# ---- the azureml.ai.monitoring shim (data collection) -------------------------------
# score.py's Collector(name=...).collect(df) writes JSON lines under the deployment's
# collections folder, as Azure's model data collector writes blobs:
# <dir>/<collection>/YYYY/MM/DD/HH/i<instance>-p<pid>-<seq>.jsonl. Each worker process
# writes its own files (one writer per file: no line of two processes interleaves), each
# record with one os.write on an O_APPEND descriptor, rotated past max_file_bytes.

_AGENT = "berth/azureml-ai-monitoring"
_PARTITIONS = {"Minute": "%Y/%m/%d/%H/%M", "Hour": "%Y/%m/%d/%H", "Day": "%Y/%m/%d", "Month": "%Y/%m", "Year": "%Y"}


class _Sink:
    """This worker's files of the deployment's enabled collections."""

    def __init__(self, cfg):
        import threading
        self.cfg = cfg
        self.enabled = set(cfg.get("collections") or ())
        self.rate = float(cfg.get("sampling_rate") or 1.0)
        self.fmt = _PARTITIONS.get(cfg.get("rolling_rate"), _PARTITIONS["Hour"])
        self.max = int(cfg.get("max_file_bytes") or 64 << 20)
        self.source = "/endpoints/%s/deployments/%s" % (cfg.get("endpoint", ""), cfg.get("deployment", ""))
        self.lock = threading.Lock()
        self.files = {}  # collection -> [partition, fd, size, seq, pid]

    def sampled(self):
        """Whether the current request is collected: berth decides once per request (its
        frame says so), so all collections of a request are written or none are."""
        if _current["rid"] != NO_REQUEST:
            return _current.get("dc", False)
        import random
        return self.rate >= 1 or random.random() < self.rate

    def write(self, collection, line):
        now = time.gmtime()
        part = time.strftime(self.fmt, now)
        with self.lock:
            st = self.files.get(collection)
            pid = os.getpid()
            if st is None or st[0] != part or st[4] != pid or (st[2] > 0 and st[2] + len(line) > self.max):
                st = self._open(collection, part, st, pid, len(line))
                self.files[collection] = st
            view, n = memoryview(line), 0
            while n < len(line):
                n += os.write(st[1], view[n:])
            st[2] += n

    def _open(self, collection, part, old, pid, need):
        if old is not None and old[4] == pid:
            os.close(old[1])
        seq = old[3] + 1 if old is not None and old[0] == part and old[4] == pid else 0
        folder = os.path.join(self.cfg["dir"], collection, *part.split("/"))
        os.makedirs(folder, exist_ok=True)
        while True:
            path = os.path.join(folder, "i%s-p%d-%03d.jsonl" % (self.cfg.get("instance", 0), pid, seq))
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            size = os.fstat(fd).st_size
            if size == 0 or size + need <= self.max:
                return [part, fd, size, seq, pid]
            os.close(fd)
            seq += 1


_sink = [None, False]  # the _Sink of this worker, and whether it was read from the environment


def _get_sink():
    if not _sink[1]:
        _sink[1] = True
        raw = os.environ.get("BERTH_DATA_COLLECTOR")
        if raw:
            try:
                _sink[0] = _Sink(json.loads(raw))
            except (ValueError, KeyError, TypeError) as exc:
                logging.getLogger("azureml.ai.monitoring").error("BERTH_DATA_COLLECTOR is not usable: %s", exc)
    return _sink[0]


class CorrelationContext:
    """What joins the records of one request across collections."""

    def get_id(self):
        raise NotImplementedError

    def get_timestamp(self):
        raise NotImplementedError

    def get_headers(self):
        return {}


class BasicCorrelationContext(CorrelationContext):
    def __init__(self, id=None, timestamp=None, headers=None):
        if id is None:
            import uuid
            id = _current["rid"] if _current["rid"] != NO_REQUEST else str(uuid.uuid4())
        self.id = id
        self.timestamp = int(time.time() * 1000) if timestamp is None else timestamp
        self.headers = headers or {}

    def get_id(self):
        return self.id

    def get_timestamp(self):
        return self.timestamp

    def get_headers(self):
        return self.headers


class Collector:
    """azureml.ai.monitoring.Collector: collect(df) logs a pandas DataFrame's rows to the
    deployment's collection of this name, correlated by the request's x-request-id."""

    def __init__(self, name=None, on_error=None, **kwargs):
        self.name, self.on_error = name, on_error
        self._log = logging.getLogger("azureml.ai.monitoring")
        sink = _get_sink()
        self.enabled = sink is not None and name in sink.enabled
        if not self.enabled:
            self._log.warning("Collector(name=%r) collects nothing: the deployment's data_collector.collections.%s is not enabled", name, name)

    def collect(self, data, correlation_context=None):
        if correlation_context is None:
            correlation_context = BasicCorrelationContext()
        if not self.enabled:
            return correlation_context
        try:
            sink = _sink[0]
            if not sink.sampled():
                return correlation_context
            if type(data).__module__.split(".")[0] != "pandas" or not hasattr(data, "to_json"):
                raise TypeError("Collector.collect() takes a pandas DataFrame, got %s" % type(data).__name__)
            import uuid
            rows = data.to_json(orient="records", date_format="iso")
            rid = _current["rid"] if _current["rid"] != NO_REQUEST else correlation_context.get_id()
            now = time.time()
            head = {"specversion": "1.0", "id": str(uuid.uuid4()), "source": sink.source,
                    "type": "azureml.inference." + self.name, "datacontenttype": "application/json",
                    "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + ".%03dZ" % (int(now * 1000) % 1000)}
            tail = {"correlationid": str(correlation_context.get_id()), "xrequestid": rid, "modelversion": "default",
                    "collectdatatype": type(data).__module__ + "." + type(data).__name__, "agent": _AGENT}
            compact = (",", ":")
            line = json.dumps(head, separators=compact)[:-1] + ',"data":' + rows + "," + json.dumps(tail, separators=compact)[1:] + "\n"
            sink.write(self.name, line.encode("utf-8"))
        except Exception as exc:
            if self.on_error is not None:
                self.on_error(exc)
            else:
                self._log.error("Collector(name=%r).collect failed: %s", self.name, exc)
        return correlation_context


def _install_monitoring():
    names = {"azureml": {}, "azureml.ai": {}, "azureml.ai.monitoring": {
        "Collector": Collector, "BasicCorrelationContext": BasicCorrelationContext, "CorrelationContext": CorrelationContext}}
    names["azureml.ai.monitoring.context"] = {"BasicCorrelationContext": BasicCorrelationContext, "CorrelationContext": CorrelationContext}
    for name, attrs in names.items():
        mod = sys.modules.get(name)
        if mod is None:
            mod = types.ModuleType(name)
            mod.__path__ = []
            sys.modules[name] = mod
        mod.__dict__.update(attrs)
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


# ---- SCORING_TIMEOUT_MS: an alarm interrupts run(), as azmlinfsrv's does ---------------

class ScoringTimeout(BaseException):
    """Raised in run() when SCORING_TIMEOUT_MS passes (a BaseException, so a script's
    `except Exception` does not swallow it)."""


def _on_alarm(signum, frame):
    raise ScoringTimeout()


_armed = [False]  # whether the alarm may be set: without SCORING_TIMEOUT_MS, no syscall per request


def _arm(ms):
    """Starts (ms > 0) or stops (0) the alarm that ends a run() running too long."""
    if (ms or _armed[0]) and hasattr(signal, "setitimer"):
        signal.setitimer(signal.ITIMER_REAL, ms / 1000.0 if ms else 0)
        _armed[0] = bool(ms)


# ---- streaming: run() returned a generator -------------------------------------------

def _is_stream(value):
    """A generator (or any iterator) is streamed; str, bytes, lists and dicts are not."""
    return isinstance(value, types.GeneratorType) or (
        hasattr(value, "__next__") and not isinstance(value, (str, bytes, bytearray, dict, list, tuple)))


def _chunk_bytes(chunk):
    if isinstance(chunk, (bytes, bytearray)):
        return bytes(chunk)
    if isinstance(chunk, str):
        return chunk.encode("utf-8")
    return (json.dumps(chunk, default=_to_json) + "\n").encode("utf-8")


def _stream(wout, resp, hdrs, start, log):
    """Sends a streamed answer: a frame with the status, headers and first chunk, one
    frame per further chunk, then an end frame (with the error if the generator raised)."""
    it = iter(resp.stream)
    try:
        first = next(it, None)
    except Exception as exc:
        log.error("Encountered Exception: %s", traceback.format_exc())
        payload = {"message": "An unexpected error occurred in scoring script. Check the logs for more info.",
                   "exception": {"type": type(exc).__name__, "message": str(exc)}}
        _write_frame(wout, {"s": 500, "h": [["Content-Type", "application/json"]], "failed": True,
                            "ms": (time.perf_counter() - start) * 1000}, json.dumps(payload).encode())
        return
    if not any(k.lower() == "content-type" for k, _ in hdrs):
        kind = "application/octet-stream" if isinstance(first, (bytes, bytearray)) else \
            "text/plain; charset=utf-8" if isinstance(first, str) else "application/jsonl"
        hdrs = hdrs + [["Content-Type", kind]]
    _write_frame(wout, {"s": resp.status_code, "h": hdrs, "stream": True},
                 b"" if first is None else _chunk_bytes(first))
    err = None
    if first is not None:
        try:
            for chunk in it:
                _write_frame(wout, {"chunk": True}, _chunk_bytes(chunk))
        except Exception as exc:
            log.error("Encountered Exception while streaming: %s", traceback.format_exc())
            err = f"{type(exc).__name__}: {exc}"
    end = {"end": True, "ms": (time.perf_counter() - start) * 1000}
    if err:
        end["err"] = err
    _write_frame(wout, end)


# ---- framing ---------------------------------------------------------------------

def _write_frame(f, header, body=b""):
    _write_raw_frame(f, json.dumps(header, separators=(",", ":")).encode("utf-8"), body)


def _write_raw_frame(f, h, body):
    f.write(b"".join((_U32.pack(len(h)), h, _U32.pack(len(body)), body)))
    f.flush()


# The header of the most common answer, run()'s value as JSON, written without json.dumps.
_JSON_OK = b'{"s":200,"h":[["Content-Type","application/json"]],"ms":'


class _FrameReader:
    """Reads request frames from a file descriptor in large reads, so pipelined requests
    that arrive together cost one read. Every answer is still written at once: holding
    one back for the next could make it wait for a slow run()."""

    def __init__(self, fd):
        self.fd, self.buf, self.pos = fd, bytearray(), 0

    def _need(self, n):
        while len(self.buf) - self.pos < n:
            if self.pos:
                del self.buf[:self.pos]
                self.pos = 0
            data = os.read(self.fd, max(1 << 16, n - len(self.buf)))
            if not data:
                raise EOFError
            self.buf += data

    def read(self):
        self._need(4)
        hlen = _U32.unpack_from(self.buf, self.pos)[0]
        self._need(8 + hlen)
        blen = _U32.unpack_from(self.buf, self.pos + 4 + hlen)[0]
        self._need(8 + hlen + blen)
        p = self.pos
        header = json.loads(bytes(self.buf[p + 4:p + 4 + hlen])) if hlen else {}
        body = bytes(self.buf[p + 8 + hlen:p + 8 + hlen + blen])
        self.pos = p + 8 + hlen + blen
        return header, body


# ---- startup -----------------------------------------------------------------------

class StartupError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code, self.message = code, message


def _sklearn_version_note(saved):
    """Names a difference between the scikit-learn an MLflow model was saved with (its
    MLmodel's flavors.sklearn.sklearn_version) and this interpreter's, or returns ""."""
    import sklearn
    if not saved or saved == sklearn.__version__:
        return ""
    return (f"the model was saved with scikit-learn {saved} and this interpreter ({sys.executable}) has "
            f"{sklearn.__version__}: a pickled model may fail to load or predict on another version; run it where "
            f"scikit-learn {saved} is installed (a conda file pinning scikit-learn=={saved}, on an interpreter that "
            f"has it), or save the model again with {sklearn.__version__}")


def _install_berth_module():
    mod = types.ModuleType("berth_worker")
    mod.sklearn_version_note = _sklearn_version_note  # Berth's MLflow scorers
    mod.StartupError, mod.BadRequest = StartupError, BadRequest
    mod.UnsupportedMediaType, mod.BadRequestKeyError = UnsupportedMediaType, BadRequestKeyError
    sys.modules["berth_worker"] = mod


def _describe(exc, entry):
    """The error in its own words: type, text, and where it happened; when that is in a
    library, also the last line of the user's code (entry's folder) that led there."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = ""
    if isinstance(exc, SyntaxError) and exc.filename:
        where = f" ({os.path.basename(exc.filename)}, line {exc.lineno})"
    elif frames:
        last = frames[-1]
        where = f"{os.path.basename(last.filename)}, line {last.lineno}, in {last.name}"
        code_dir = os.path.dirname(os.path.abspath(entry)) + os.sep
        mine = [f for f in frames if os.path.abspath(f.filename).startswith(code_dir)]
        if mine and mine[-1] is not last:
            where += f"; from {os.path.basename(mine[-1].filename)}, line {mine[-1].lineno}, in {mine[-1].name}"
        where = f" ({where})"
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
        msg = f"{os.path.basename(entry)} failed to import: {_describe(exc, entry)}"
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

# ---- batch mode (BERTH_WORKER_MODE=batch): init() once, then run(mini_batch) --------

def _batch_row(item):
    if isinstance(item, (list, tuple)):
        return " ".join(str(x) for x in item)
    return str(item)


def _batch_rows(result):
    """run()'s return value as output rows: (text, number of rows). A DataFrame is written
    without header or index, space-separated (comma-separated when the built-in MLflow
    scorer marks it with attrs["berth_sep"]); a list or array gives one row per element."""
    if result is None:
        return "", 0
    if hasattr(result, "to_csv") and hasattr(result, "columns"):
        if len(result) == 0:
            return "", 0
        sep = getattr(result, "attrs", {}).get("berth_sep", " ")
        text = result.to_csv(sep=sep, header=False, index=False, lineterminator="\n")
        return text, len(result)
    if hasattr(result, "tolist") and not isinstance(result, (str, bytes)):
        result = result.tolist()
    if isinstance(result, (str, bytes)) or not hasattr(result, "__iter__"):
        result = [result]
    rows = [_batch_row(item) for item in result]
    return "".join(r + "\n" for r in rows), len(rows)


def _batch_trace(exc):
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def _batch_main(entry):
    """Serves one mini-batch per request frame: header {"mb": index}, body a JSON list of
    file paths; answers {"items": n} with the rows as body, {"empty": true}, or
    {"failed": true, "message", "trace"}. Output goes to fds 1 and 2 as written."""
    level = sys.argv[3] if len(sys.argv) > 3 and sys.argv[2] == "--logging_level" else "info"
    sys.stdout.reconfigure(line_buffering=True)
    sys.stderr.reconfigure(line_buffering=True)
    logging.basicConfig(stream=sys.stdout, level=getattr(logging, level.upper(), logging.INFO))
    log = logging.getLogger("azureml")
    sys.argv = [entry, "--logging_level", level]
    _install_shims()
    _install_berth_module()
    rin = _FrameReader(3)
    wout = open(4, "wb", buffering=1 << 16)
    try:
        module = _load(entry, log)
        try:
            module.init()
        except BaseException as exc:
            raise StartupError("UserScriptInitFailed", f"init() in {os.path.basename(entry)} raised {_describe(exc, entry)}")
    except StartupError as e:
        cause = e.__context__ or e.__cause__
        trace = _batch_trace(cause) if cause is not None else e.message
        sys.stderr.write(trace)
        _write_frame(wout, {"ready": False, "code": e.code, "message": e.message, "trace": trace})
        sys.exit(3)
    _write_frame(wout, {"ready": True, "pid": os.getpid()})
    while True:
        try:
            req, body = rin.read()
        except EOFError:
            return
        start = time.perf_counter()
        try:
            result = module.run(json.loads(body))
            text, items = _batch_rows(result)
            ans = {"items": items, "empty": items == 0}
        except Exception as exc:
            text, ans = "", {"failed": True, "message": f"{type(exc).__name__}: {exc}", "trace": _batch_trace(exc)}
        ans["mb"] = req.get("mb", 0)
        ans["ms"] = (time.perf_counter() - start) * 1000
        sys.stdout.flush()
        sys.stderr.flush()
        _write_frame(wout, ans, text.encode("utf-8"))


def _batch_fork(entry, n):
    """Forks the n batch workers of a job from this process, which has imported the
    worker once: child i takes fds 3+4i..6+4i as its requests, its answers, its stdout
    and its stderr, and dies with this process (which dies with berth). This process
    only reaps them, and exits after the last."""
    libc = None
    if sys.platform.startswith("linux"):
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
    extra = range(3, 3 + 4 * n)
    sys.stdout.flush()
    sys.stderr.flush()
    children = 0
    parent = os.getpid()
    for i in range(n):
        if os.fork() == 0:
            base = 3 + 4 * i
            for src, dst in ((base, 3), (base + 1, 4), (base + 2, 1), (base + 3, 2)):
                if src != dst:
                    os.dup2(src, dst)
            for fd in extra:
                if fd > 4:
                    os.close(fd)
            if libc is not None:
                libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: die with the forking process
                if os.getppid() != parent:  # it died before prctl took effect
                    os._exit(1)
            # Berth learns the pid first, so it can kill a worker stuck in init().
            h = json.dumps({"pid": os.getpid()}).encode()
            os.write(4, _U32.pack(len(h)) + h + _U32.pack(0))
            try:
                _batch_main(entry)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(0)
        children += 1
    for fd in extra:
        os.close(fd)
    while children:
        try:
            os.wait()
        except ChildProcessError:
            break
        children -= 1
    os._exit(0)


def _batch_policy():
    """Runs this worker under SCHED_BATCH (Linux; any user may choose it for itself), unless
    BERTH_WORKER_SCHED=normal: a worker woken by a new request then does not preempt the
    server thread that feeds it, which goes on handing over the requests it holds. Each
    thread gets the same share of the cores as before; threads started later inherit it."""
    if os.environ.get("BERTH_WORKER_SCHED") == "normal" or not hasattr(os, "SCHED_BATCH"):
        return
    try:
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    except OSError:
        pass  # a seccomp profile may refuse it; the worker runs as before


def main():
    _batch_policy()
    here = globals().get("__file__")  # not set when run with -c
    if here and sys.path and sys.path[0] == os.path.dirname(os.path.abspath(here)):
        sys.path[0] = ""  # run from a file, as with -c: the working directory comes first
    if os.environ.get("BERTH_WORKER_MODE") == "batch":
        n = int(os.environ.pop("BERTH_BATCH_FORK", "0") or 0)
        if n > 0 and hasattr(os, "fork"):
            return _batch_fork(sys.argv[1], n)
        return _batch_main(sys.argv[1])
    global inspect
    import inspect  # online only: batch workers start without it
    if hasattr(signal, "SIGALRM"):
        signal.signal(signal.SIGALRM, _on_alarm)
    entry = sys.argv[1]
    log = _setup_logging()
    printer = logging.getLogger("azmlinfsrv.print")
    sys.stdout = _PrintToLog(printer, logging.INFO)
    sys.stderr = _PrintToLog(printer, logging.ERROR)
    _install_shims()
    _install_inference_schema()
    _install_monitoring()
    _install_berth_module()
    rin = _FrameReader(3)
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
            raise StartupError("UserScriptInitFailed", f"init() in {os.path.basename(entry)} raised {_describe(exc, entry)}")
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
    _write_frame(wout, {"ready": True, "pid": os.getpid(), "hdr": bool(raw or wants_headers or schema), "raw": bool(raw), "schema": swagger,
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
    lean = _lean[0]
    while True:
        if lean is not None:
            lean.check()
        try:
            req, body = rin.read()
        except EOFError:
            return
        if req.get("ping"):
            # A liveness check from the server: answered between requests, never by run().
            _write_frame(wout, {"s": 200, "srv": True}, b"")
            continue
        _current["rid"] = req.get("id", NO_REQUEST)
        _current["dc"] = req.get("dc", False)
        headers = req.get("h", {})
        method, query = req.get("m", "POST"), req.get("q", "")
        start = time.perf_counter()
        timeout_ms = req.get("to", 0)
        _arm(timeout_ms)
        try:
            if raw:
                result = run(AMLRequest(method, "/score", query, headers, body, req.get("ra")))
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
            if _is_stream(result):
                result = AMLResponse(result)
            if isinstance(result, AMLResponse):
                hdrs = []
                for k, v in result.headers.items():
                    for part in str(v).split(","):
                        hdrs.append([k, part.strip()])
                if result.stream is not None:
                    _stream(wout, result, hdrs, start, log)
                    continue
                _write_frame(wout, {"s": result.status_code, "h": hdrs, "ms": ms}, result.data)
            else:
                _write_raw_frame(wout, b"%s%.3f}" % (_JSON_OK, ms), json.dumps(result, default=_to_json).encode("utf-8"))
        except BadRequest as exc:
            _write_frame(wout, {"s": exc.code, "h": json_headers, "srv": True}, json.dumps({"message": str(exc)}).encode())
        except ScoringTimeout:
            # SCORING_TIMEOUT_MS, as azmlinfsrv's alarm: run() is interrupted, the worker lives on.
            log.error("Scoring timeout after %d ms", timeout_ms)
            _write_frame(wout, {"s": 500, "h": json_headers, "ms": (time.perf_counter() - start) * 1000, "failed": True},
                         json.dumps({"message": f"Scoring timeout after {timeout_ms} ms"}).encode())
        except Exception as exc:
            ms = (time.perf_counter() - start) * 1000
            log.error("Encountered Exception: %s", traceback.format_exc())
            payload = {"message": "An unexpected error occurred in scoring script. Check the logs for more info.",
                       "exception": {"type": type(exc).__name__, "message": str(exc)}}
            _write_frame(wout, {"s": 500, "h": json_headers, "ms": ms, "failed": True}, json.dumps(payload).encode())
        finally:
            _arm(0)
            sys.stdout.flush()
            _current["rid"] = NO_REQUEST


if __name__ == "__main__":
    main()
