"""The unmodified Python `openai` SDK against Ferry's /v1/responses.

Run by test/responses-python.test.ts with FERRY_BASE_URL (…/v1), FERRY_API_KEY and FERRY_MODEL in
the environment. Prints one JSON line of what it saw; the Node test asserts on it. An unexpected
exception propagates (a traceback and a non-zero exit), so the test shows it.
"""

import hashlib
import json
import os
import pathlib
import sys
import tempfile
import time

import openai

MODEL = os.environ.get("FERRY_MODEL", "gemini-2.0-flash")
client = openai.OpenAI(
    api_key=os.environ["FERRY_API_KEY"],
    base_url=os.environ["FERRY_BASE_URL"],
    max_retries=0,
    timeout=60,
)
results = {"sdk_version": openai.__version__}


def until(fn, what, timeout=20.0):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.1)


# A string input.
r = client.responses.create(model=MODEL, input="Hello from Python", instructions="Be brief.")
results["string"] = {"id": r.id, "status": r.status, "output_text": r.output_text}

# An input_file naming a file uploaded with files.create, polled until processed.
with tempfile.NamedTemporaryFile("wb", suffix=".txt", delete=False) as tmp:
    tmp.write(b"Python notes: the ferry sails at nine.\n")
with open(tmp.name, "rb") as fh:
    uploaded = client.files.create(file=fh, purpose="user_data")
os.unlink(tmp.name)


def file_done():
    f = client.files.retrieve(uploaded.id)
    return f if f.status != "uploaded" else None


processed = until(file_done, "the file to be processed")
r = client.responses.create(
    model=MODEL,
    input=[
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "Summarise the file."},
                {"type": "input_file", "file_id": uploaded.id},
            ],
        }
    ],
)
results["file"] = {
    "file_id": uploaded.id,
    "file_status": processed.status,
    "provider_file": getattr(processed, "provider_file", None),
    "status": r.status,
    "output_text": r.output_text,
}

# A stream, with the SDK's helper.
events = []
with client.responses.stream(model=MODEL, input="stream this back to me from python please") as stream:
    for event in stream:
        events.append({"type": event.type, "seq": event.sequence_number, "delta": getattr(event, "delta", None)})
    final = stream.get_final_response()
results["stream"] = {
    "types": [e["type"] for e in events],
    "sequence_numbers": [e["seq"] for e in events],
    "deltas": "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta"),
    "final_id": final.id,
    "final_status": final.status,
    "final_output_text": final.output_text,
}

# In the background, polled with retrieve.
bg = client.responses.create(model=MODEL, input="in the background from python", background=True)
polls = 0


def finished():
    global polls
    polls += 1
    now = client.responses.retrieve(bg.id)
    return now if now.status not in ("queued", "in_progress") else None


done = until(finished, "the background response")
results["background"] = {
    "id": bg.id,
    "initial_status": bg.status,
    "status": done.status,
    "polls": polls,
    "output_text": done.output_text,
}

# A function call, answered in a second turn by previous_response_id.
tools = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        "strict": False,
    }
]
first = client.responses.create(model=MODEL, input='CALL get_weather {"city":"Lisbon"}', tools=tools)
call = first.output[0]
second = client.responses.create(
    model=MODEL,
    previous_response_id=first.id,
    input=[{"type": "function_call_output", "call_id": call.call_id, "output": json.dumps({"temp": 24})}],
    tools=tools,
)
results["function_call"] = {
    "first_type": call.type,
    "name": getattr(call, "name", None),
    "arguments": json.loads(getattr(call, "arguments", "null")),
    "call_id": getattr(call, "call_id", None),
    "second_status": second.status,
    "second_previous": second.previous_response_id,
    "second_output_text": second.output_text,
}

# The models.
results["models"] = sorted(m.id for m in client.models.list())

# A field Ferry cannot honour.
try:
    client.responses.create(model=MODEL, input="x", extra_body={"foo": 1})
    results["bad_field"] = {"raised": None}
except openai.BadRequestError as e:
    results["bad_field"] = {"raised": type(e).__name__, "status": e.status_code, "param": e.param, "message": e.message}

# The Uploads API through the SDK's own chunked helper (parts of 20,000 bytes, the md5 checked),
# and a file uploaded with expires_after.
data = b"".join(f"line {i} of a chunked upload\n".encode() for i in range(3000))
with tempfile.NamedTemporaryFile(suffix=".txt", delete=False) as tmp:
    tmp.write(data)
upload = client.uploads.upload_file_chunked(
    file=pathlib.Path(tmp.name),
    mime_type="text/plain",
    purpose="user_data",
    part_size=20_000,
    md5=hashlib.md5(data).hexdigest(),
)
uploaded = until(
    lambda: (lambda f: f if f.status != "uploaded" else None)(client.files.retrieve(upload.file.id)),
    "the uploaded file processed",
)
brief = client.files.create(
    file=("brief.txt", b"short-lived\n"),
    purpose="user_data",
    expires_after={"anchor": "created_at", "seconds": 3600},
)
results["uploads"] = {
    "status": upload.status,
    "bytes": upload.bytes,
    "expected_bytes": len(data),
    "file_status": uploaded.status,
    "file_sha256": getattr(uploaded, "sha256", None),
    "expected_sha256": hashlib.sha256(data).hexdigest(),
    "expires_in": brief.expires_at - brief.created_at,
}

# A larger file through files.create: the SDK sends the purpose first and the length, so Ferry
# sends it on to Gemini while it arrives (an early upload).
big = b"%PDF-1.7\n" + os.urandom(20 * 1024 * 1024)
with tempfile.NamedTemporaryFile(suffix=".pdf", delete=False) as tmp:
    tmp.write(big)
with open(tmp.name, "rb") as fh:
    sent = client.files.create(file=fh, purpose="user_data")
os.unlink(tmp.name)
done = until(
    lambda: (lambda f: f if f.status != "uploaded" else None)(client.files.retrieve(sent.id)),
    "the larger file processed",
)
results["early"] = {
    "file_status": done.status,
    "sha256": getattr(done, "sha256", None),
    "expected_sha256": hashlib.sha256(big).hexdigest(),
}

# A file named by URL instead of sent (Ferry's `url`), through the SDK's generic post: a loopback
# address is refused by the SSRF guard with a 400 naming the field.
try:
    client.post(
        "/files",
        body={"purpose": "user_data", "url": "http://127.0.0.1:9/private.pdf"},
        cast_to=openai.types.FileObject,
    )
    results["by_url"] = {"refused": False}
except openai.BadRequestError as e:
    results["by_url"] = {"refused": True, "param": e.body.get("param"), "code": e.body.get("code")}

# The usage ledger through the SDK's admin resource (the tenant's key as its admin key: it sees its own).
admin = openai.OpenAI(admin_api_key=os.environ["FERRY_API_KEY"], base_url=os.environ["FERRY_BASE_URL"], max_retries=0)
day = int(time.time()) // 86400 * 86400 - 86400
usage = admin.admin.organization.usage.completions(start_time=day, group_by=["model", "service_tier"])
costs = admin.admin.organization.usage.costs(start_time=day, group_by=["line_item"])
rows = [r for b in usage.data for r in b.results]
try:
    admin.admin.organization.usage.completions(start_time=day, bucket_width="7d")
    bad_width = None
except openai.BadRequestError as e:
    bad_width = e.body.get("param")
results["usage"] = {
    "requests": sum(r.num_model_requests for r in rows),
    "input_tokens": sum(r.input_tokens for r in rows),
    "models": sorted({r.model for r in rows}),
    "tiers": sorted({r.service_tier for r in rows}),
    "cost": sum(r.amount.value for b in costs.data for r in b.results),
    "line_items": sorted({r.line_item for b in costs.data for r in b.results}),
    "bad_width_param": bad_width,
}

print(json.dumps(results))
sys.stdout.flush()
