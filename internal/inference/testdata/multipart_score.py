"""A @rawhttp script in the shape of Azure's binary-payload samples: one uploaded file in,
processed image out (its bytes reversed); several files in, JSON out; otherwise an echo of
what AMLRequest parsed."""
import json

from azureml.contrib.services.aml_request import AMLRequest, rawhttp
from azureml.contrib.services.aml_response import AMLResponse


def init():
    pass


@rawhttp
def run(request: AMLRequest):
    files = request.files.getlist("file")
    if len(files) == 1:
        data = files[0].read()
        return AMLResponse(data[::-1], 200, response_headers={"Content-Type": "image/png"})
    if request.method == "OPTIONS":
        return AMLResponse("", 204, {"Allow": "POST, OPTIONS", "X-Seen-By": "run"})
    if files:
        return {f.filename: len(f.read()) for f in files}
    if request.args.get("json"):
        return {"json": request.get_json(silent=request.args.get("silent") == "1")}
    if request.args.get("missing"):
        return request.form["nope"]
    return {
        "form": request.form.to_dict(flat=False),
        "args": request.args.to_dict(flat=False),
        "headers": [list(kv) for kv in request.headers if kv[0].startswith("X-")],
        "x_multi": request.headers.get("x-multi"),
        "has_ct": "content-type" in request.headers,
        "mimetype": request.mimetype,
        "url": request.url,
        "data": request.get_data(as_text=True) if request.mimetype == "text/plain" else None,
        "stream": len(request.stream.read()),
        "content_length": request.content_length,
        "host": request.host,
        "remote_addr": request.remote_addr,
    }
