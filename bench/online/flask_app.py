"""Baseline with the Azure inference server's architecture: a Flask app that imports a
score.py, calls init() once per worker and run() per request, served by gunicorn sync
workers. Configured by env: BENCH_SCRIPT (path of score.py)."""
import importlib.util
import json
import os

from flask import Flask, Response, request

spec = importlib.util.spec_from_file_location("score", os.environ["BENCH_SCRIPT"])
score = importlib.util.module_from_spec(spec)
spec.loader.exec_module(score)
score.init()

app = Flask(__name__)


@app.route("/", methods=["GET"])
def health():
    return "Healthy"


@app.route("/score", methods=["POST"])
def run():
    result = score.run(request.get_data(as_text=True))
    return Response(json.dumps(result), status=200, mimetype="application/json")
