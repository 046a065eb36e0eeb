from azureml.contrib.services.aml_request import AMLRequest, rawhttp
from azureml.contrib.services.aml_response import AMLResponse


def init():
    pass


@rawhttp
def run(request):
    if request.method == "GET":
        return AMLResponse("args " + request.args.get("a", ""), 200)
    return AMLResponse(request.get_data(as_text=True).upper(), 418, {"X-Custom": "one, two"})
