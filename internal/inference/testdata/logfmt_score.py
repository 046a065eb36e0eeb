# A script that gives the worker's log handler its own format, with the caller's file
# and line: the worker must keep filling them in.
import logging


def init():
    logging.getLogger().handlers[0].setFormatter(logging.Formatter("%(filename)s:%(lineno)d %(threadName)s %(message)s"))


def run(data):
    logging.info("scored here")
    return data
