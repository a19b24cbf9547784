#!/usr/bin/env python3
"""Drives a Bedrock Runtime endpoint (the verbatim emulator) with boto3, an SDK no one here wrote.

Usage: bedrock_sdk.py ENDPOINT_URL

Runs, in this order:
  1. converse                      plain user text
  2. converse x2                   a thinking tool loop: reasoningContent + toolUse, then the
                                   assistant message sent back exactly as boto3 returned it with
                                   a toolResult; the second answer is text
  3. converse_stream               plain user text, every event collected
  4. converse_stream x2            the same thinking tool loop, the assistant message rebuilt
                                   from the stream's deltas
  5. invoke_model                  an Anthropic Messages body
  6. invoke_model_with_response_stream   the same body, every chunk decoded
  7. converse x2                   the thinking tool loop with `us.emulator.redacted`, whose
                                   thinking is redactedContent (a blob boto3 decodes to bytes and
                                   encodes again on the way back)
  8. invoke_model x2               the thinking tool loop in the Anthropic Messages dialect

Prints one JSON object on stdout summarising what was seen, with the values boto3 parsed.
Any failure (a boto3/botocore exception, a missing field, an unexpected value) ends the run
with a message on stderr and a non-zero exit. Only boto3/botocore and the standard library are
used.
"""

import json
import sys
import traceback

import boto3
from botocore.config import Config

ACCESS_KEY_ID = "AKIAVERBATIMEMULATOR"
SECRET_ACCESS_KEY = "verbatim-emulator-secret-access-key"
MODEL = "us.anthropic.claude-sonnet-4-20250514-v1:0"
# The emulator's model whose thinking comes back redacted.
REDACTED_MODEL = "us.emulator.redacted"
THINKING = {"thinking": {"type": "enabled", "budget_tokens": 1024}}
TOOLS = {
    "tools": [
        {
            "toolSpec": {
                "name": "get_weather",
                "description": "The current weather of a city",
                "inputSchema": {
                    "json": {
                        "type": "object",
                        "required": ["city"],
                        "properties": {
                            "city": {"type": "string"},
                            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                        },
                    }
                },
            }
        }
    ]
}


class Failure(Exception):
    """An answer parsed but did not say what it should."""


def check(condition, what):
    if not condition:
        raise Failure(what)


def kinds(content):
    """The member name of each content block (`text`, `toolUse`, `reasoningContent`, ...)."""
    out = []
    for block in content:
        check(len(block) == 1, f"a content block with other than one member: {block!r}")
        out.append(next(iter(block)))
    return out


def client(endpoint):
    return boto3.client(
        "bedrock-runtime",
        region_name="us-west-2",
        endpoint_url=endpoint,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
        config=Config(retries={"max_attempts": 1}, connect_timeout=10, read_timeout=60),
    )


def user_text(text):
    return {"role": "user", "content": [{"text": text}]}


def tool_result(tool_use_id, text):
    return {
        "role": "user",
        "content": [{"toolResult": {"toolUseId": tool_use_id, "content": [{"text": text}]}}],
    }


def with_tools(operation, model, messages):
    """Calls converse or converse_stream with the weather tool and thinking on."""
    return operation(
        modelId=model,
        messages=messages,
        toolConfig=TOOLS,
        additionalModelRequestFields=THINKING,
        inferenceConfig={"maxTokens": 2048},
    )


def converse(bedrock):
    response = bedrock.converse(
        modelId=MODEL,
        messages=[user_text("Hello there")],
        inferenceConfig={"maxTokens": 200},
    )
    message = response["output"]["message"]
    check(message["role"] == "assistant", f"role {message['role']!r}")
    check(kinds(message["content"]) == ["text"], f"content {message['content']!r}")
    usage = response["usage"]
    check(
        usage["inputTokens"] > 0 and usage["outputTokens"] > 0,
        f"usage {usage!r}",
    )
    check(
        usage["totalTokens"] == usage["inputTokens"] + usage["outputTokens"],
        f"usage total {usage!r}",
    )
    return {
        "role": message["role"],
        "kinds": kinds(message["content"]),
        "text": message["content"][0]["text"],
        "stop_reason": response["stopReason"],
        "usage": {k: usage[k] for k in ("inputTokens", "outputTokens", "totalTokens")},
        "latency_ms": response["metrics"]["latencyMs"],
        "request_id": response["ResponseMetadata"]["RequestId"],
        "http_status": response["ResponseMetadata"]["HTTPStatusCode"],
    }


def thinking_tool_use(content):
    """Checks [reasoningContent(reasoningText), toolUse] and returns the two blocks."""
    check(kinds(content) == ["reasoningContent", "toolUse"], f"content {content!r}")
    reasoning = content[0]["reasoningContent"]["reasoningText"]
    check(isinstance(reasoning["text"], str) and reasoning["text"], "reasoning text")
    check(isinstance(reasoning["signature"], str) and reasoning["signature"], "signature")
    tool_use = content[1]["toolUse"]
    check(tool_use["name"] == "get_weather", f"tool {tool_use['name']!r}")
    check(isinstance(tool_use["input"], dict), f"input {tool_use['input']!r}")
    check(isinstance(tool_use["input"].get("city"), str), "the arguments satisfy the schema")
    return reasoning, tool_use


def tool_loop(bedrock):
    question = user_text("What is the weather in Lyon?")
    first = with_tools(bedrock.converse, MODEL, [question])
    check(first["stopReason"] == "tool_use", f"first stop reason {first['stopReason']!r}")
    assistant = first["output"]["message"]
    reasoning, tool_use = thinking_tool_use(assistant["content"])
    # The assistant message goes back exactly as boto3 returned it.
    second = with_tools(
        bedrock.converse,
        MODEL,
        [question, assistant, tool_result(tool_use["toolUseId"], "Sunny, 21 C")],
    )
    answer = second["output"]["message"]
    check(kinds(answer["content"]) == ["text"], f"final content {answer['content']!r}")
    return {
        "first_stop_reason": first["stopReason"],
        "first_kinds": kinds(assistant["content"]),
        "reasoning_text": reasoning["text"],
        "signature_length": len(reasoning["signature"]),
        "tool_name": tool_use["name"],
        "tool_use_id": tool_use["toolUseId"],
        "tool_input": tool_use["input"],
        "final_stop_reason": second["stopReason"],
        "final_kinds": kinds(answer["content"]),
        "final_text": answer["content"][0]["text"],
    }


def fold_stream(stream):
    """Folds ConverseStream events into a message; returns (summary, message)."""
    names = []
    blocks = {}
    stop_reason = None
    usage = None
    role = None
    for event in stream:
        check(len(event) == 1, f"an event with other than one member: {event!r}")
        name, body = next(iter(event.items()))
        names.append(name)
        if name == "messageStart":
            role = body["role"]
        elif name == "contentBlockStart":
            start = body["start"]["toolUse"]
            blocks[body["contentBlockIndex"]] = {
                "toolUse": {"toolUseId": start["toolUseId"], "name": start["name"], "input": ""}
            }
        elif name == "contentBlockDelta":
            index = body["contentBlockIndex"]
            delta = body["delta"]
            if "text" in delta:
                block = blocks.setdefault(index, {"text": ""})
                block["text"] += delta["text"]
            elif "reasoningContent" in delta:
                block = blocks.setdefault(
                    index, {"reasoningContent": {"reasoningText": {"text": ""}}}
                )
                reasoning = delta["reasoningContent"]
                if "text" in reasoning:
                    block["reasoningContent"]["reasoningText"]["text"] += reasoning["text"]
                elif "signature" in reasoning:
                    block["reasoningContent"]["reasoningText"]["signature"] = reasoning["signature"]
                else:
                    raise Failure(f"an unexpected reasoning delta {reasoning!r}")
            elif "toolUse" in delta:
                blocks[index]["toolUse"]["input"] += delta["toolUse"]["input"]
            else:
                raise Failure(f"an unexpected delta {delta!r}")
        elif name == "contentBlockStop":
            check(body["contentBlockIndex"] in blocks, f"a stop for no block {body!r}")
        elif name == "messageStop":
            stop_reason = body["stopReason"]
        elif name == "metadata":
            usage = body["usage"]
        else:
            raise Failure(f"an unexpected event {name!r}: {body!r}")
    content = []
    for index in sorted(blocks):
        block = blocks[index]
        if "toolUse" in block:
            block["toolUse"]["input"] = json.loads(block["toolUse"]["input"] or "{}")
        content.append(block)
    check(role == "assistant", f"stream role {role!r}")
    check(usage is not None and usage["outputTokens"] > 0, f"stream usage {usage!r}")
    distinct = []
    for name in names:
        if not distinct or distinct[-1] != name:
            distinct.append(name)
    summary = {
        "events": distinct,
        "event_count": len(names),
        "stop_reason": stop_reason,
        "kinds": kinds(content),
        "usage": {k: usage[k] for k in ("inputTokens", "outputTokens", "totalTokens")},
    }
    return summary, {"role": role, "content": content}


def converse_stream(bedrock):
    response = bedrock.converse_stream(
        modelId=MODEL,
        messages=[user_text("Hello there")],
        inferenceConfig={"maxTokens": 200},
    )
    summary, message = fold_stream(response["stream"])
    for name in ("messageStart", "contentBlockDelta", "messageStop", "metadata"):
        check(name in summary["events"], f"no {name} in {summary['events']!r}")
    check(summary["kinds"] == ["text"], f"stream content {message!r}")
    summary["text"] = message["content"][0]["text"]
    summary["http_status"] = response["ResponseMetadata"]["HTTPStatusCode"]
    return summary


def stream_tool_loop(bedrock):
    question = user_text("What is the weather in Lyon?")
    first = with_tools(bedrock.converse_stream, MODEL, [question])
    first_summary, assistant = fold_stream(first["stream"])
    check(first_summary["stop_reason"] == "tool_use", f"first {first_summary!r}")
    reasoning, tool_use = thinking_tool_use(assistant["content"])
    second = with_tools(
        bedrock.converse_stream,
        MODEL,
        [question, assistant, tool_result(tool_use["toolUseId"], "Rain, 12 C")],
    )
    second_summary, answer = fold_stream(second["stream"])
    check(second_summary["kinds"] == ["text"], f"final {answer!r}")
    return {
        "first_events": first_summary["events"],
        "first_stop_reason": first_summary["stop_reason"],
        "first_kinds": first_summary["kinds"],
        "signature_length": len(reasoning["signature"]),
        "tool_name": tool_use["name"],
        "tool_input": tool_use["input"],
        "final_stop_reason": second_summary["stop_reason"],
        "final_kinds": second_summary["kinds"],
        "final_text": answer["content"][0]["text"],
    }


def redacted_loop(bedrock):
    """The thinking tool loop with a model whose thinking comes back redacted: boto3 decodes
    `redactedContent` (a blob) to bytes and encodes it again when the message goes back."""
    question = user_text("What is the weather in Lyon?")
    first = with_tools(bedrock.converse, REDACTED_MODEL, [question])
    assistant = first["output"]["message"]
    check(kinds(assistant["content"]) == ["reasoningContent", "toolUse"], f"{assistant!r}")
    redacted = assistant["content"][0]["reasoningContent"]
    check(list(redacted) == ["redactedContent"], f"reasoning {redacted!r}")
    check(isinstance(redacted["redactedContent"], bytes), "redactedContent decodes to bytes")
    tool_use = assistant["content"][1]["toolUse"]
    second = with_tools(
        bedrock.converse,
        REDACTED_MODEL,
        [question, assistant, tool_result(tool_use["toolUseId"], "Windy, 15 C")],
    )
    answer = second["output"]["message"]
    check(kinds(answer["content"]) == ["text"], f"final content {answer['content']!r}")
    return {
        "first_stop_reason": first["stopReason"],
        "first_kinds": kinds(assistant["content"]),
        "reasoning_kinds": list(redacted),
        "redacted_bytes": len(redacted["redactedContent"]),
        "final_stop_reason": second["stopReason"],
        "final_text": answer["content"][0]["text"],
    }


def invoke_tool_loop(bedrock):
    """A thinking tool loop in the Anthropic Messages dialect through invoke_model: the
    assistant content goes back exactly as it was decoded."""
    tools = [
        {
            "name": spec["toolSpec"]["name"],
            "description": spec["toolSpec"]["description"],
            "input_schema": spec["toolSpec"]["inputSchema"]["json"],
        }
        for spec in TOOLS["tools"]
    ]
    messages = [{"role": "user", "content": "What is the weather in Lyon?"}]

    def call():
        body = {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 2048,
            "thinking": THINKING["thinking"],
            "tools": tools,
            "messages": messages,
        }
        response = bedrock.invoke_model(modelId=MODEL, body=json.dumps(body))
        return json.loads(response["body"].read())

    first = call()
    first_types = [block["type"] for block in first["content"]]
    check(first_types == ["thinking", "tool_use"], f"content {first['content']!r}")
    check(first["stop_reason"] == "tool_use", f"stop reason {first['stop_reason']!r}")
    tool_use = first["content"][1]
    messages.append({"role": "assistant", "content": first["content"]})
    messages.append(
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": tool_use["id"], "content": "Fog, 9 C"}
            ],
        }
    )
    second = call()
    second_types = [block["type"] for block in second["content"]]
    check(second_types == ["text"], f"final content {second['content']!r}")
    return {
        "first_stop_reason": first["stop_reason"],
        "first_types": first_types,
        "tool_name": tool_use["name"],
        "tool_input": tool_use["input"],
        "final_stop_reason": second["stop_reason"],
        "final_types": second_types,
        "final_text": second["content"][0]["text"],
    }


def anthropic_body():
    return json.dumps(
        {
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 200,
            "messages": [{"role": "user", "content": "Hello there"}],
        }
    )


def invoke(bedrock):
    response = bedrock.invoke_model(
        modelId=MODEL,
        body=anthropic_body(),
        contentType="application/json",
        accept="application/json",
    )
    body = json.loads(response["body"].read())
    check(body["type"] == "message" and body["role"] == "assistant", f"body {body!r}")
    content_types = [block["type"] for block in body["content"]]
    check(content_types == ["text"], f"content {body['content']!r}")
    return {
        "content_type": response["contentType"],
        "type": body["type"],
        "role": body["role"],
        "content_types": content_types,
        "text": body["content"][0]["text"],
        "stop_reason": body["stop_reason"],
        "usage": body["usage"],
        "http_status": response["ResponseMetadata"]["HTTPStatusCode"],
    }


def invoke_stream(bedrock):
    response = bedrock.invoke_model_with_response_stream(
        modelId=MODEL,
        body=anthropic_body(),
        contentType="application/json",
        accept="application/json",
    )
    types = []
    text = ""
    stop_reason = None
    metrics = None
    for event in response["body"]:
        check(list(event) == ["chunk"], f"an event other than a chunk: {event!r}")
        chunk = json.loads(event["chunk"]["bytes"])
        types.append(chunk["type"])
        if chunk["type"] == "content_block_delta" and chunk["delta"]["type"] == "text_delta":
            text += chunk["delta"]["text"]
        elif chunk["type"] == "message_delta":
            stop_reason = chunk["delta"]["stop_reason"]
        elif chunk["type"] == "message_stop":
            metrics = chunk.get("amazon-bedrock-invocationMetrics")
    check(types[:1] == ["message_start"], f"chunks {types!r}")
    check(types[-1:] == ["message_stop"], f"chunks {types!r}")
    check(text, "no text deltas")
    return {
        "content_type": response["contentType"],
        "chunk_types": types,
        "text": text,
        "stop_reason": stop_reason,
        "invocation_metrics": metrics,
        "http_status": response["ResponseMetadata"]["HTTPStatusCode"],
    }


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: bedrock_sdk.py ENDPOINT_URL\n")
        return 2
    bedrock = client(argv[1])
    summary = {"boto3": boto3.__version__}
    steps = [
        ("converse", converse),
        ("tool_loop", tool_loop),
        ("converse_stream", converse_stream),
        ("stream_tool_loop", stream_tool_loop),
        ("invoke", invoke),
        ("invoke_stream", invoke_stream),
        ("redacted_loop", redacted_loop),
        ("invoke_tool_loop", invoke_tool_loop),
    ]
    for name, step in steps:
        try:
            summary[name] = step(bedrock)
        except Exception as error:  # noqa: BLE001 - every failure is reported, then fatal
            traceback.print_exc(file=sys.stderr)
            sys.stderr.write(f"bedrock_sdk.py: step {name} failed: {type(error).__name__}: {error}\n")
            return 1
    json.dump(summary, sys.stdout, sort_keys=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
