import json
import logging
import os


def init():
    print("echo init done, model dir", os.environ.get("AZUREML_MODEL_DIR"))


calls = 0


def run(raw_data, request_headers):
    global calls
    calls += 1
    print("scoring", len(raw_data), "chars")
    if raw_data == "boom":
        raise ValueError("bad input: boom")
    if raw_data == "die":
        os._exit(7)
    if raw_data.startswith("sleep"):
        import time
        time.sleep(float(raw_data.split()[1]))
        return f"slept, call {calls}"
    if raw_data == "pid":
        return os.getpid()
    if raw_data == "call":
        return f"call {calls}"
    return {"echo": raw_data, "ua": request_headers.get("X-Test", "")}
