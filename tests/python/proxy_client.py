#!/usr/bin/env python3
"""One step of a thinking tool loop, through `verbatim serve`, with boto3 unchanged.

Usage: proxy_client.py ENDPOINT_URL STEP STATE_FILE

Steps (the state file carries the conversation from one step to the next, so the proxy can be
stopped and started between them):
  first    asks the question with thinking and the weather tool on; the answer must be
           reasoningContent + toolUse; the conversation so far is written to STATE_FILE
  second   sends the conversation back unchanged with the tool's result; the answer is text
  strip    the same, but the assistant turn's reasoningContent is left out, as frameworks that
           drop thinking do (Bedrock answers that with an invalid signature or a missing
           thinking block)
  blank    the same, with the reasoning text blanked and its signature kept
  broken   sends the conversation with a plain user text in place of the tool result: a tool
           use without its result, which Bedrock refuses

Prints one JSON object on stdout: the stop reason and kinds of the answer, or the error code,
status and message for `broken`. Any other failure exits non-zero with a traceback.
"""

import json
import sys
import traceback

from botocore.exceptions import ClientError

# The same client, model, tool and thinking setting as the boto3 emulator test.
from bedrock_sdk import MODEL, client, kinds, tool_result, user_text, with_tools

QUESTION = user_text("What is the weather in Bergen?")


def call(bedrock, messages):
    return with_tools(bedrock.converse, MODEL, messages)


def main():
    endpoint, step, state_file = sys.argv[1], sys.argv[2], sys.argv[3]
    bedrock = client(endpoint)
    if step == "first":
        response = call(bedrock, [QUESTION])
        assistant = response["output"]["message"]
        with open(state_file, "w") as f:
            json.dump([QUESTION, assistant], f)
        return {
            "stop_reason": response["stopReason"],
            "kinds": kinds(assistant["content"]),
            "session": response["ResponseMetadata"]["HTTPHeaders"].get("x-verbatim-session"),
        }
    with open(state_file) as f:
        messages = json.load(f)
    assistant = messages[1]
    tool_use = next(b["toolUse"] for b in assistant["content"] if "toolUse" in b)
    if step == "strip":
        assistant["content"] = [b for b in assistant["content"] if "reasoningContent" not in b]
    elif step == "blank":
        for block in assistant["content"]:
            if "reasoningContent" in block:
                block["reasoningContent"]["reasoningText"]["text"] = ""
    if step == "broken":
        follow = user_text("Never mind the tool.")
    else:
        follow = tool_result(tool_use["toolUseId"], "Windy, 9 C")
    try:
        response = call(bedrock, messages + [follow])
    except ClientError as error:
        return {
            "code": error.response["Error"]["Code"],
            "message": error.response["Error"]["Message"],
            "status": error.response["ResponseMetadata"]["HTTPStatusCode"],
        }
    answer = response["output"]["message"]
    return {
        "stop_reason": response["stopReason"],
        "kinds": kinds(answer["content"]),
        "text": "".join(b.get("text", "") for b in answer["content"]),
        "session": response["ResponseMetadata"]["HTTPHeaders"].get("x-verbatim-session"),
    }


if __name__ == "__main__":
    try:
        print(json.dumps(main()))
    except Exception:
        traceback.print_exc()
        sys.exit(1)
