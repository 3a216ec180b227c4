"""bin/vicireg-validate as a command: streams standard input, takes CRLF, ends quietly in a pipe."""
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLI = [sys.executable, os.path.join(ROOT, "bin", "vicireg-validate")]
LINE = b"register => 1234:Zq9pw%d@carrier.example:5060/1234\n"


def start():
    pipe = subprocess.PIPE
    return subprocess.Popen(CLI + ["-"], stdin=pipe, stdout=pipe, stderr=pipe)


def run(args, stdin=b""):
    return subprocess.run(CLI + list(args), input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=120)


def test_crlf_lines_from_stdin_are_read_without_their_cr():
    done = run(["-"], b"1234:Zq9pw@carrier.example\r\nregister => tcp://u:Zq9pw@h\r\n\r\nu:p@h\n")
    assert done.returncode == 0, done.stdout
    assert done.stdout.decode().splitlines() == [
        "OK       register => 1234:****@carrier.example",
        "OK       register => tcp://u:****@h",
        "OK       register => u:****@h"]
    assert done.stderr == b""


def test_a_cr_inside_a_line_or_an_argument_is_still_an_error():
    for done in (run(["-"], b"u:Zq9pw\r@h\r\n"), run(["u:Zq9pw\r@h"])):
        assert done.returncode == 1
        assert b"a line break" in done.stdout and b"Zq9pw" not in done.stdout


def test_undecodable_input_is_refused_not_a_traceback():
    done = run(["--json", "-"], b"u:Zq9\xffpw@h\n")
    assert done.returncode == 1 and done.stderr == b""
    result = json.loads(done.stdout)
    assert "U+FFFD" in result["error"] and "Zq9" not in result["error"]


def _writer(proc, count, close=True):
    """Feed count lines to proc's stdin, stopping quietly when the process goes away."""
    def feed():
        try:
            for i in range(count):
                proc.stdin.write(LINE % i)
            proc.stdin.flush()
            if close:
                proc.stdin.close()
        except (BrokenPipeError, ValueError, OSError):
            pass
    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    return thread


def test_piped_into_head_it_ends_quietly_by_sigpipe():
    proc = start()
    writer = _writer(proc, 200000)
    first = proc.stdout.readline()  # what `head -1` does, then it exits
    proc.stdout.close()
    try:
        status = proc.wait(timeout=60)
    finally:
        proc.kill()
    writer.join(5)
    assert first.startswith(b"OK       register => 1234:****@")
    assert proc.stderr.read() == b""  # no traceback, no "Exception ignored"
    assert status == -signal.SIGPIPE  # 141 in the shell, like other filters


def test_shell_pipeline_into_head():
    script = "seq 300000 | sed 's/.*/u:Zq9pw@h&/' | %s - | head -1; echo \"status=${PIPESTATUS[2]}\"" % (
        " ".join(CLI))
    done = subprocess.run(["bash", "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    assert done.stdout.decode().splitlines() == ["OK       register => u:****@h1", "status=141"]
    assert done.stderr == b""


def _readline(stream, timeout):
    ready, _, _ = select.select([stream], [], [], timeout)
    return stream.readline() if ready else None


def test_answers_each_line_before_the_input_ends():
    proc = start()
    try:
        for i in range(3):
            proc.stdin.write(LINE % i)
            proc.stdin.flush()
            answer = _readline(proc.stdout, 30)
            assert answer is not None, "no answer to line %d while standard input is still open" % i
            assert answer.startswith(b"OK       ")
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()


def _peak_rss_kb(pid):
    with open("/proc/%d/status" % pid) as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


def _wait_for(predicate, timeout):
    deadline = time.time() + timeout
    while not predicate() and time.time() < deadline:
        time.sleep(0.05)
    return predicate()


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc")
def test_memory_stays_flat_over_200k_lines():
    proc = start()
    lines = [0]

    def drain():
        for _ in proc.stdout:
            lines[0] += 1
    threading.Thread(target=drain, daemon=True).start()
    try:
        writer = _writer(proc, 200000, close=False)
        assert _wait_for(lambda: lines[0] >= 1000, 60), "no output while the input is being written"
        early = _peak_rss_kb(proc.pid)
        writer.join(600)
        # Every line answered, standard input still open: the process holds only what it needs now.
        assert _wait_for(lambda: lines[0] == 200000, 600), lines[0]
        late = _peak_rss_kb(proc.pid)
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0
        assert late - early < 8 * 1024, "peak RSS grew from %d kB to %d kB" % (early, late)
    finally:
        proc.kill()


def test_json_output_masks_the_fields_where_the_secret_lies():
    done = run(["--json", "tls://u@dom.example:5082:Zq9pw:Ret77auth@h/100~60"])
    result = json.loads(done.stdout)
    assert result["valid"] and result["line"] == "register => tls://u@dom.example:****@h/100~60"
    fields = result["fields"]
    assert (fields["secret"], fields["authuser"], fields["domain_port"]) == ("****", "****", "****")
    assert (fields["username"], fields["domain"], fields["extension"]) == ("u", "dom.example", "100")


def test_exit_status_for_usage_errors():
    assert run([]).returncode == 2
    assert run(["--protocol", "h323", "u:p@h"]).returncode == 2
