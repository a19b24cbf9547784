#!/usr/bin/env python3
"""Drives the verbatim emulator with the Anthropic Python SDK (2.x), a client no one here wrote.

Usage: anthropic_sdk.py ENDPOINT_URL

Two clients, unchanged but for their base URL and credentials:
  - AnthropicBedrock: InvokeModel (`/model/{id}/invoke[-with-response-stream]`), writing
    `anthropic_version: "2026-10-21"` into every body;
  - AnthropicBedrockMantle: the Messages API (`{base}/v1/messages`, base `ENDPOINT_URL/anthropic`),
    with the `anthropic-version` header and SSE streams.

Runs, in this order:
  1. bedrock whole         AnthropicBedrock, API key, plain text
  2. bedrock stream        AnthropicBedrock, SigV4 (service `bedrock`), the same question streamed
  3. bedrock tool loop x2  thinking + a tool call, the assistant content sent back unchanged
  4. mantle whole          Mantle, API key, a bare model id
  5. mantle stream         Mantle, SigV4 (service `bedrock-mantle`), a profile id, streamed
  6. mantle tool loop x2   thinking + a tool call, whole, the content sent back unchanged
  7. mantle stream loop x2 the same loop streamed, the content the stream folded sent back
  8. mantle tampered       the loop's second request with one signature altered: refused
  9. bedrock tampered      the same on InvokeModel: refused

Through `verbatim serve` (VERBATIM_PROXIED=1 in the environment), steps 8 and 9 are accepted:
the proxy restores the stored thinking.

Prints one JSON object on stdout with what the SDK parsed. Any unexpected exception ends the
run with a traceback on stderr and a non-zero exit.
"""

import json
import os
import sys
import traceback

import anthropic
from anthropic import AnthropicBedrock, AnthropicBedrockMantle

API_KEY = "verbatim-emulator-api-key"
ACCESS_KEY_ID = "AKIAVERBATIMEMULATOR"
SECRET_ACCESS_KEY = "verbatim-emulator-secret-access-key"
REGION = "us-east-1"
# Opus 4.7 on InvokeModel by its cross-Region profile id; on mantle by its bare id; Sonnet 5
# by a profile id, as the runtime host takes it.
BEDROCK_MODEL = "global.anthropic.claude-opus-4-7"
MANTLE_MODEL = "anthropic.claude-opus-4-7"
PROFILE_MODEL = "us.anthropic.claude-sonnet-5"
TOOLS = [
    {
        "name": "get_weather",
        "description": "The current weather of a city",
        "input_schema": {
            "type": "object",
            "required": ["city"],
            "properties": {"city": {"type": "string"}},
        },
    }
]
QUESTION = [{"role": "user", "content": "Say hello."}]
WEATHER = [{"role": "user", "content": "What is the weather in Oslo?"}]


def kinds(content):
    return [block.type for block in content]


def text_of(content):
    return "".join(block.text for block in content if block.type == "text")


def whole(client, model):
    message = client.messages.create(model=model, max_tokens=256, messages=QUESTION)
    return {
        "type": message.type,
        "role": message.role,
        "kinds": kinds(message.content),
        "text": text_of(message.content),
        "stop_reason": message.stop_reason,
        "output_tokens": message.usage.output_tokens,
    }


def streamed(client, model):
    events = []
    with client.messages.stream(model=model, max_tokens=256, messages=QUESTION) as stream:
        for event in stream:
            events.append(event.type)
        message = stream.get_final_message()
    return {
        "events": events,
        "kinds": kinds(message.content),
        "text": text_of(message.content),
        "stop_reason": message.stop_reason,
    }


def turn(client, model, messages, stream):
    settings = dict(
        model=model,
        max_tokens=2048,
        thinking={"type": "adaptive"},
        tools=TOOLS,
        messages=messages,
    )
    if not stream:
        return client.messages.create(**settings)
    with client.messages.stream(**settings) as events:
        for _ in events:
            pass
        return events.get_final_message()


def tool_loop(client, model, stream=False):
    """A thinking tool loop whose assistant content goes back exactly as the SDK returned it."""
    first = turn(client, model, list(WEATHER), stream)
    call = next(block for block in first.content if block.type == "tool_use")
    thinking = next(block for block in first.content if block.type == "thinking")
    messages = WEATHER + [
        {"role": "assistant", "content": first.content},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "Sunny, 21 C"}],
        },
    ]
    final = turn(client, model, messages, stream)
    return {
        "first_stop_reason": first.stop_reason,
        "first_kinds": kinds(first.content),
        "signature_length": len(thinking.signature),
        "tool_name": call.name,
        "tool_input": call.input,
        "final_stop_reason": final.stop_reason,
        "final_kinds": kinds(final.content),
        "final_text": text_of(final.content),
        # For the tampering run: the second request as plain JSON.
        "_replay": [
            messages[0],
            {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
            messages[2],
        ],
    }


def tampered(client, model, replay):
    """The loop's second request with the thinking signature altered by one character.

    Through `verbatim serve` (VERBATIM_PROXIED=1) the proxy puts the stored thinking back, and
    the request is accepted; straight to the emulator it is refused."""
    messages = json.loads(json.dumps(replay))
    block = messages[1]["content"][0]
    assert block["type"] == "thinking", block
    signature = block["signature"]
    block["signature"] = ("B" if signature[0] != "B" else "C") + signature[1:]
    try:
        message = turn(client, model, messages, False)
        if os.environ.get("VERBATIM_PROXIED") == "1":
            return {"status": 200, "stop_reason": message.stop_reason}
    except anthropic.BadRequestError as error:
        body = error.body if isinstance(error.body, dict) else {}
        inner = body.get("error") if isinstance(body.get("error"), dict) else body
        return {"status": error.status_code, "message": inner.get("message"), "body": body}
    raise AssertionError("a tampered signature was accepted")


def main():
    url = sys.argv[1]
    # No retries: a refusal or a fault must show, not be papered over.
    bedrock_key = AnthropicBedrock(api_key=API_KEY, aws_region=REGION, base_url=url, max_retries=0)
    bedrock_signed = AnthropicBedrock(
        aws_access_key=ACCESS_KEY_ID,
        aws_secret_key=SECRET_ACCESS_KEY,
        aws_region=REGION,
        base_url=url,
        max_retries=0,
    )
    mantle_url = f"{url}/anthropic"
    mantle_key = AnthropicBedrockMantle(
        api_key=API_KEY, aws_region=REGION, base_url=mantle_url, max_retries=0
    )
    mantle_signed = AnthropicBedrockMantle(
        aws_access_key=ACCESS_KEY_ID,
        aws_secret_key=SECRET_ACCESS_KEY,
        aws_region=REGION,
        base_url=mantle_url,
        max_retries=0,
    )
    seen = {"anthropic": anthropic.__version__}
    seen["bedrock_whole"] = whole(bedrock_key, BEDROCK_MODEL)
    seen["bedrock_stream"] = streamed(bedrock_signed, BEDROCK_MODEL)
    bedrock_loop = tool_loop(bedrock_key, BEDROCK_MODEL)
    seen["mantle_whole"] = whole(mantle_key, MANTLE_MODEL)
    seen["mantle_stream"] = streamed(mantle_signed, PROFILE_MODEL)
    mantle_loop = tool_loop(mantle_key, MANTLE_MODEL)
    seen["mantle_stream_loop"] = tool_loop(mantle_signed, PROFILE_MODEL, stream=True)
    seen["mantle_tampered"] = tampered(mantle_key, MANTLE_MODEL, mantle_loop["_replay"])
    seen["bedrock_tampered"] = tampered(bedrock_key, BEDROCK_MODEL, bedrock_loop["_replay"])
    for loop in (bedrock_loop, mantle_loop, seen["mantle_stream_loop"]):
        loop.pop("_replay")
    seen["bedrock_tool_loop"] = bedrock_loop
    seen["mantle_tool_loop"] = mantle_loop
    json.dump(seen, sys.stdout)


if __name__ == "__main__":
    try:
        main()
    except Exception:
        traceback.print_exc()
        sys.exit(1)
