"""`verbatim chat` on a terminal: typed at a pseudo-terminal as a person types.

Usage: chat_pty.py BINARY DATA_DIR EMULATOR_URL API_KEY

Types a message, sends it again with the Up arrow, types a line and clears it with Ctrl-C,
then leaves with Ctrl-D. Each key is sent only once the prompt is back, as a person would.
Prints what the terminal showed; exits non-zero when a step does not happen.
"""

import os
import pty
import select
import sys
import time

binary, data, url, key = sys.argv[1:5]
env = {k: v for k, v in os.environ.items() if not k.startswith("VERBATIM_")}
env["NO_COLOR"] = "1"

pid, fd = pty.fork()
if pid == 0:
    os.execve(
        binary,
        [binary, "chat", "--data", data, "--emulator-url", url, "--api-key", key],
        env,
    )

shown = b""
pending = b""


def wait_for(text, timeout=30.0):
    """Reads the terminal until `text` appears; returns what came before it."""
    global shown, pending
    deadline = time.monotonic() + timeout
    while text not in pending:
        left = deadline - time.monotonic()
        ready, _, _ = select.select([fd], [], [], max(left, 0))
        if not ready:
            sys.exit(f"timed out waiting for {text!r}; the terminal showed {shown + pending!r}")
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            chunk = b""
        if not chunk:
            sys.exit(f"the chat ended while waiting for {text!r}; it showed {shown + pending!r}")
        pending += chunk
    at = pending.index(text) + len(text)
    before, pending = pending[:at], pending[at:]
    shown += before
    return before


def type_keys(keys):
    os.write(fd, keys)


PROMPT = b"> "
wait_for(PROMPT)
type_keys(b"hello there\r")
wait_for(b"You said: hello there")
wait_for(PROMPT)
# Up brings back the last line; Enter sends it again.
type_keys(b"\x1b[A")
time.sleep(0.2)
type_keys(b"\r")
wait_for(b"You said: hello there")
wait_for(PROMPT)
# Ctrl-C clears the line typed so far: nothing is sent.
type_keys(b"never sent")
time.sleep(0.2)
type_keys(b"\x03")
wait_for(b"line cleared")
wait_for(PROMPT)
# Ctrl-D on an empty line leaves.
type_keys(b"\x04")
deadline = time.monotonic() + 30
while True:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        break
    if time.monotonic() > deadline:
        os.kill(pid, 9)
        sys.exit(f"the chat did not leave on Ctrl-D; it showed {shown + pending!r}")
    try:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            pending += os.read(fd, 4096)
    except OSError:
        pass
code = os.waitstatus_to_exitcode(status)
sys.stdout.write((shown + pending).decode("utf-8", "replace"))
if code != 0:
    sys.exit(f"the chat exited with {code}")
