import logging

logger = logging.getLogger()
logger.setLevel(logging.INFO)


def handler(event, context):
    print("hello from print", event.get("n"))
    logger.info("processing order %s", event.get("n"))
    logger.debug("not shown at INFO")
    return "logged"
