def init():
    raise RuntimeError("model missing")

def run(data):
    return data
