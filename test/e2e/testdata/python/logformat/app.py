import logging
import os

logger = logging.getLogger()
# As on Lambda, where the root logger starts at WARNING; under
# ApplicationLogLevel WARN the platform still drops the INFO records.
logger.setLevel(logging.INFO)


def handler(event, context):
    print("plain print")
    logger.info("first line\nsecond line")
    logger.info("dropped info")
    logger.error("json error %s", event.get("n"))
    return os.environ.get("_X_AMZN_TRACE_ID")
