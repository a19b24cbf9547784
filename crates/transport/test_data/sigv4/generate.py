"""Generates sigv4.json: what botocore signs for Bedrock Runtime requests.

Run once with botocore from PyPI (the expectations were made with botocore 1.44.5):

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install botocore==1.44.5
    /tmp/venv/bin/python crates/transport/test_data/sigv4/generate.py > crates/transport/test_data/sigv4/sigv4.json

A real botocore client serialises each call (so the URL is botocore's own percent-encoding of
the model id) and signs it at a fixed time; a `before-send` hook captures the signed request
and answers it locally, so nothing leaves the machine. The credentials are made up.
"""

import datetime
import json
import sys
from unittest import mock

import botocore
import botocore.auth
import botocore.awsrequest
import botocore.session

TIME = datetime.datetime(2026, 11, 22, 12, 34, 56)
ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = "IQoJb3JpZ2luX2VjEXAMPLETOKEN//////////wEaCXVzLWVhc3QtMSJHMEUCIQD"
BODY = {"messages": [{"role": "user", "content": [{"text": "Hello"}]}]}
INVOKE_BODY = {
    "anthropic_version": "bedrock-2023-05-31",
    "max_tokens": 64,
    "messages": [{"role": "user", "content": "Hello"}],
}
ARN = (
    "arn:aws:bedrock:us-east-1:123456789012:inference-profile/"
    "us.anthropic.claude-3-7-sonnet-20250219-v1:0"
)

CASES = [
    ("converse", "us-east-1", "us.anthropic.claude-sonnet-4-20250514-v1:0", None),
    ("converse_stream", "us-west-2", "anthropic.claude-3-haiku-20240307-v1:0", None),
    ("converse", "us-east-1", ARN, None),
    ("converse_stream", "eu-central-1", "eu.anthropic.claude-sonnet-4-6", TOKEN),
    ("invoke_model", "us-east-1", ARN, TOKEN),
    ("invoke_model_with_response_stream", "ap-northeast-1", "apac.anthropic.claude-sonnet-4-20250514-v1:0", None),
]

OPERATIONS = {
    "converse": "converse",
    "converse_stream": "converse-stream",
    "invoke_model": "invoke",
    "invoke_model_with_response_stream": "invoke-with-response-stream",
}


def capture(method, region, model_id, token):
    session = botocore.session.get_session()
    client = session.create_client(
        "bedrock-runtime",
        region_name=region,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        aws_session_token=token,
    )
    captured = {}

    def before_send(request, **_):
        captured["request"] = request
        # Answer locally with an error so the client stops here.
        raise RuntimeError("captured")

    client.meta.events.register("before-send.*", before_send)
    if method.startswith("invoke"):
        body = json.dumps(INVOKE_BODY, separators=(",", ":"))
        kwargs = {"modelId": model_id, "body": body.encode(), "contentType": "application/json"}
    else:
        kwargs = dict(BODY, modelId=model_id)
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=TIME):
        try:
            getattr(client, method)(**kwargs)
        except RuntimeError:
            pass
    request = captured["request"]
    body = request.body if isinstance(request.body, bytes) else (request.body or b"")
    if isinstance(body, str):
        body = body.encode()
    headers = {k.lower(): (v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()}
    auth = headers["authorization"]
    signed = auth.split("SignedHeaders=")[1].split(",")[0]
    return {
        "name": f"{OPERATIONS[method]} {model_id} in {region}" + (" with a session token" if token else ""),
        "operation": OPERATIONS[method],
        "region": region,
        "model_id": model_id,
        "url": request.url,
        "body": body.decode(),
        "content_type": headers.get("content-type"),
        "access_key_id": ACCESS_KEY,
        "secret_access_key": SECRET_KEY,
        "session_token": token,
        "time": TIME.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "signed_headers": signed,
        "expected": {
            "authorization": auth,
            "x-amz-date": headers["x-amz-date"],
            "x-amz-security-token": headers.get("x-amz-security-token"),
        },
    }


def main():
    cases = [capture(*case) for case in CASES]
    json.dump({"botocore": botocore.__version__, "cases": cases}, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
