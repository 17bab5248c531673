import boto3
import botocore


def handler(event, context):
    # A client is built offline: region and the function's role credentials
    # come from the environment Lambda sets.
    s3 = boto3.client("s3")
    creds = boto3.Session().get_credentials()
    return {
        "boto3": boto3.__version__,
        "botocore": botocore.__version__,
        "boto3_file": boto3.__file__,
        "region": s3.meta.region_name,
        "access_key_prefix": creds.access_key[:4],
    }
