"""Reads one InvokeWithResponseStream call with boto3 and prints what it saw
as one JSON object: each PayloadChunk with the time it arrived (epoch ms),
and InvokeComplete.

Usage: boto_stream.py ENDPOINT_URL FUNCTION_NAME
"""

import base64
import json
import sys
import time

import boto3
from botocore.config import Config

client = boto3.client("lambda", endpoint_url=sys.argv[1], config=Config(retries={"max_attempts": 1}))
resp = client.invoke_with_response_stream(FunctionName=sys.argv[2], Payload=b"{}", LogType="Tail")
chunks, complete = [], None
for event in resp["EventStream"]:
    if "PayloadChunk" in event:
        chunks.append({"receivedMs": time.time() * 1000, "payload": event["PayloadChunk"]["Payload"].decode()})
    elif "InvokeComplete" in event:
        complete = event["InvokeComplete"]
        if "LogResult" in complete:
            complete["LogResult"] = base64.b64decode(complete["LogResult"]).decode()
print(json.dumps({
    "status": resp["StatusCode"],
    "executedVersion": resp.get("ExecutedVersion"),
    "chunks": chunks,
    "complete": complete,
}))
