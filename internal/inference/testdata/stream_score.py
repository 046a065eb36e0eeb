import time


def init():
    pass


def run(raw_data):
    if raw_data == "raise":
        return broken()
    return chunks(int(raw_data or "3"))


def chunks(n):
    for i in range(n):
        yield f"chunk {i}\n"
        time.sleep(0.2)


def broken():
    yield "partial\n"
    raise RuntimeError("the generator failed")
