from azureml.contrib.services.aml_request import AMLRequest, rawhttp
from azureml.contrib.services.aml_response import AMLResponse


def init():
    pass


@rawhttp
def run(request):
    if request.method == "GET":
        if request.args.get("status"):
            resp = AMLResponse("made", 200)
            resp.status = request.args.get("status")
            return resp
        if request.args.get("type"):
            # As Azure's binary-payloads sample does: the type is set after construction.
            resp = AMLResponse(b"\x00\x01", 200)
            resp.mimetype = request.args.get("type")
            return resp
        return AMLResponse("args " + request.args.get("a", ""), 200)
    return AMLResponse(request.get_data(as_text=True).upper(), 418, {"X-Custom": "one, two"})
