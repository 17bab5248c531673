# A function URL handler that answers with what the caller asked for: the
# status in ?status=, every x-reply-NAME request header as header NAME, the
# request's cookies set back, the body returned as received (base64 stays
# base64), and what it saw of the request in x-seen-* headers.

import os


def handler(event, context):
    query = event.get("queryStringParameters") or {}
    headers = {k[len("x-reply-"):]: v for k, v in event["headers"].items() if k.startswith("x-reply-")}
    http = event["requestContext"]["http"]
    headers["x-seen-method"] = http["method"]
    headers["x-seen-path"] = event["rawPath"]
    headers["x-seen-query"] = event["rawQueryString"]
    headers["x-seen-version"] = event["version"]
    headers["x-seen-request-id"] = event["requestContext"]["requestId"]
    headers["x-seen-aws-request-id"] = context.aws_request_id
    headers["x-seen-trace"] = event["headers"].get("x-amzn-trace-id", "")
    headers["x-seen-env-trace"] = os.environ.get("_X_AMZN_TRACE_ID", "")
    return {
        "statusCode": int(query.get("status", "200")),
        "headers": headers,
        "cookies": [c + "; Path=/" for c in event.get("cookies", [])],
        "body": event.get("body", ""),
        "isBase64Encoded": event["isBase64Encoded"],
    }
