"""Drives an icebox server with boto3 and prints what it saw as one JSON object.

Usage: boto_client.py ENDPOINT_URL FUNCTION_NAME ZIP_PATH

The Go test (clients_test.go) makes the assertions; this script only calls
the API the way a boto3 user would and reports the results. An unexpected
exception ends it with a traceback and a non-zero exit status.
"""

import base64
import io
import json
import sys
import zipfile

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

ROLE = "arn:aws:iam::000000000000:role/lambda-role"


def tiny_zip():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        info = zipfile.ZipInfo("bootstrap")
        info.external_attr = 0o755 << 16
        z.writestr(info, "#!/bin/sh\nexit 0\n")
    return buf.getvalue()


def client_error(call, **kwargs):
    try:
        call(**kwargs)
    except ClientError as e:
        return {
            "Code": e.response["Error"]["Code"],
            "Message": e.response["Error"].get("Message", ""),
            "HTTPStatusCode": e.response["ResponseMetadata"]["HTTPStatusCode"],
        }
    return None


def status(resp):
    return resp["ResponseMetadata"]["HTTPStatusCode"]


def main():
    endpoint, name, zip_path = sys.argv[1:4]
    with open(zip_path, "rb") as f:
        code = f.read()
    client = boto3.client(
        "lambda",
        endpoint_url=endpoint,
        region_name="us-east-1",
        config=Config(retries={"total_max_attempts": 1}),
    )
    report = {}

    created = client.create_function(
        FunctionName=name,
        Runtime="provided.al2023",
        Handler="bootstrap",
        Role=ROLE,
        Code={"ZipFile": code},
        Environment={"Variables": {"FROM": "boto3"}},
    )
    report["create"] = {
        "status": status(created),
        "FunctionArn": created["FunctionArn"],
        "CodeSha256": created["CodeSha256"],
        "CodeSize": created["CodeSize"],
        "State": created["State"],
        "MemorySize": created["MemorySize"],
        "RevisionId": created["RevisionId"],
    }

    ok = client.invoke(
        FunctionName=name, Payload=json.dumps({"action": "boto"}), LogType="Tail"
    )
    report["invoke"] = {
        "status": ok["StatusCode"],
        "FunctionError": ok.get("FunctionError"),
        "ExecutedVersion": ok.get("ExecutedVersion"),
        "Payload": json.loads(ok["Payload"].read()),
        "Log": base64.b64decode(ok.get("LogResult", "")).decode(),
    }

    failed = client.invoke(FunctionName=name, Payload=b'{"action":"fail"}')
    report["invoke_fail"] = {
        "status": failed["StatusCode"],
        "FunctionError": failed.get("FunctionError"),
        "Payload": json.loads(failed["Payload"].read()),
    }

    conf = client.get_function_configuration(FunctionName=name)
    report["config"] = {
        "FunctionName": conf["FunctionName"],
        "Environment": conf.get("Environment", {}).get("Variables", {}),
        "RevisionId": conf["RevisionId"],
        "Timeout": conf["Timeout"],
    }

    for suffix in ("p1", "p2"):
        client.create_function(
            FunctionName=name + "-" + suffix,
            Runtime="provided.al2023",
            Handler="bootstrap",
            Role=ROLE,
            Code={"ZipFile": tiny_zip()},
        )
    pages = []
    paginator = client.get_paginator("list_functions")
    for page in paginator.paginate(PaginationConfig={"PageSize": 1}):
        pages.append([f["FunctionName"] for f in page["Functions"]])
    report["list_pages"] = pages

    report["invoke_bad_payload"] = client_error(
        client.invoke, FunctionName=name, Payload=b"not json"
    )
    deleted = client.delete_function(FunctionName=name)
    report["delete_status"] = status(deleted)
    report["get_deleted"] = client_error(client.get_function, FunctionName=name)
    report["invoke_deleted"] = client_error(client.invoke, FunctionName=name)

    json.dump(report, sys.stdout)


if __name__ == "__main__":
    main()
