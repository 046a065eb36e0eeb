# Logs the same lines on the worker's direct path for the root logger and, once a
# filter is added, on logging's own path; run() says which path its lines took.
import logging


class Keep(logging.Filter):
    def filter(self, record):
        return True


def init():
    pass


def run(data):
    direct = "_log" in vars(logging.getLogger())
    logging.info("plain %s", data)
    logging.info("%(k)s=%(v)d", {"k": "key", "v": 7})
    logging.warning("multi\nline é")
    logging.log(25, "custom level")
    logging.debug("not shown")
    logging.info("%d%% done", 5.5)
    if data == "\"switch\"":  # run() gets the body as text
        logging.getLogger().addFilter(Keep())  # logging's own path from the next request on
    return {"direct": direct}
