import os


def init():
    pass


def run(raw_data):
    # The scheduling policy of the thread that runs run(), by name.
    names = {os.SCHED_OTHER: "other", os.SCHED_BATCH: "batch", os.SCHED_IDLE: "idle"}
    return names.get(os.sched_getscheduler(0), "unknown")
