import os

TABLE = os.environ["TABLE_NAME"]  # configuration read at import time


def handler(event, context):
    return TABLE
