import os
import sys


def handler(event, context):
    cc = context.client_context
    return {
        "event": event,
        "aws_request_id": context.aws_request_id,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "invoked_function_arn": context.invoked_function_arn,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "client_context": None if cc is None else {
            "custom": cc.custom,
            "env": cc.env,
            "installation_id": cc.client.installation_id if cc.client else None,
            "app_title": cc.client.app_title if cc.client else None,
        },
        "identity": {
            "cognito_identity_id": context.identity.cognito_identity_id,
            "cognito_identity_pool_id": context.identity.cognito_identity_pool_id,
        },
        "env": {k: v for k, v in os.environ.items()},
        "cwd": os.getcwd(),
        "sys_path": sys.path,
        "version": "%d.%d" % sys.version_info[:2],
        "uid": os.getuid(),
    }
