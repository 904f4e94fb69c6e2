#!/usr/bin/env python3
"""Fault-injecting HTTP/1.1 proxy in front of an S3 server (moto_server), for ObjectStore tests.

Usage:
    python3 tools/s3_fault_proxy.py --upstream http://127.0.0.1:5000 [--port 0] [--verify-checksums]

Prints "PORT <n>" on stdout once listening on 127.0.0.1:<n>, then serves until killed.
Every request is forwarded to --upstream unless a fault rule matches it.

Control endpoints (on the proxy itself):
    POST /__proxy__/rules   body: JSON list of rules; replaces the rules and clears the log
    GET  /__proxy__/log     JSON list of {"method", "path", "query", "action", "headers",
                            "access_key_id", "bytes"} for every request ("bytes": the
                            request body's length); "headers" holds only
                            x-amz-server-side-encryption* and If-None-Match; "access_key_id" is
                            the key id in the SigV4 Authorization header's Credential= (not a
                            secret: it names the credential a request was signed with)

A rule matches a request when every given condition holds:
    "method": "PUT"                     HTTP method
    "query_has": ["partNumber"]         these query parameters are present
    "query": {"partNumber": "2"}        these parameters have these values
    "path_contains": "key-name"         substring of the path
    "skip": 1                           let the first N matching requests through (default 0)
    "times": 2                          apply to the next N matches (default 1; -1 = always)
and does one "action":
    "status"    answer {"status": 503, "code": "SlowDown"} with an S3 <Error> body, not forwarded
    "reset"     read the request, then reset the TCP connection (RST), not forwarded
    "delay"     sleep {"seconds": 3} before forwarding (the client times out first)
    "error200"  answer 200 with an <Error><Code>InternalError</Code> body, not forwarded
                (S3 does this for a CompleteMultipartUpload that fails after the 200 is sent)
    "corrupt"   flip one byte of the request body, then forward (as if damaged in transit)
    "respond"   answer {"status": 200, "body": "<xml…>", "headers": {…}}, not forwarded

--verify-checksums makes the proxy check, like AWS S3 does and moto does not, the
Content-MD5, x-amz-checksum-crc32c, x-amz-checksum-sha256 and x-amz-content-sha256 headers of
every request with a body; a mismatch is answered 400 BadDigest (or XAmzContentSHA256Mismatch)
without forwarding.
"""
import argparse
import base64
import hashlib
import http.client
import json
import signal
import socket
import struct
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

_CRC32C_TABLE = None


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), reflected polynomial 0x82F63B78 (RFC 3720 B.4)."""
    global _CRC32C_TABLE
    if _CRC32C_TABLE is None:
        table = []
        for i in range(256):
            c = i
            for _ in range(8):
                c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
            table.append(c)
        _CRC32C_TABLE = table
    t = _CRC32C_TABLE
    crc = 0xFFFFFFFF
    for b in data:
        crc = t[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def crc32c_fast(data: bytes) -> int:
    """CRC-32C of large bodies: the raw CRCs of all 4 KiB chunks are computed in parallel with
    numpy (one table step per byte column), then combined in order with the linear operator
    that advances a CRC state over 4 KiB of zeros (the zlib crc32_combine method)."""
    n = len(data)
    if n < 1 << 16:
        return crc32c(data)
    crc32c(b"")  # build the table
    table = np.array(_CRC32C_TABLE, dtype=np.uint32)
    chunk = 4096
    whole = n // chunk * chunk
    arr = np.frombuffer(data[:whole], dtype=np.uint8).reshape(-1, chunk)
    # raw CRC (no pre/post inversion) of each chunk, all chunks in parallel
    crcs = np.zeros(arr.shape[0], dtype=np.uint32)
    for j in range(chunk):
        crcs = table[(crcs ^ arr[:, j]) & 0xFF] ^ (crcs >> np.uint32(8))
    # combine: crc(A||B) raw = shift(crc(A), len(B)) ^ crc(B) raw, using an operator matrix
    shift = _zeros_operator(chunk)
    state = 0xFFFFFFFF  # initial value, shifted through the data
    for c in crcs.tolist():
        state = _apply(shift, state) ^ c
    # tail
    for b in data[whole:]:
        state = _CRC32C_TABLE[(state ^ b) & 0xFF] ^ (state >> 8)
    return state ^ 0xFFFFFFFF


def _apply(matrix, vec):
    out = 0
    i = 0
    while vec:
        if vec & 1:
            out ^= matrix[i]
        vec >>= 1
        i += 1
    return out


def _zeros_operator(length):
    """The linear operator advancing a raw CRC state over `length` zero bytes."""
    ops = []
    for bit in range(32):
        state = 1 << bit
        for _ in range(length):
            state = _CRC32C_TABLE[state & 0xFF] ^ (state >> 8)
        ops.append(state)
    return ops


def error_xml(code, message):
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        "<RequestId>FAULTPROXY</RequestId></Error>"
    ).encode()


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.rules = []
        self.log = []

    def set_rules(self, rules):
        with self.lock:
            self.rules = [dict(r, _seen=0, _applied=0) for r in rules]
            self.log = []

    def match(self, method, path, query):
        with self.lock:
            for rule in self.rules:
                if "method" in rule and rule["method"] != method:
                    continue
                if any(q not in query for q in rule.get("query_has", [])):
                    continue
                if any(query.get(k) != v for k, v in rule.get("query", {}).items()):
                    continue
                if "path_contains" in rule and rule["path_contains"] not in path:
                    continue
                rule["_seen"] += 1
                if rule["_seen"] <= rule.get("skip", 0):
                    continue
                times = rule.get("times", 1)
                if times != -1 and rule["_applied"] >= times:
                    continue
                rule["_applied"] += 1
                return rule
            return None

    def record(self, entry):
        with self.lock:
            self.log.append(entry)


STATE = State()
ARGS = None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # keep test output quiet
        pass

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status, body, headers=None):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _handle(self):
        parsed = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True))
        body = self._body()
        if parsed.path == "/__proxy__/rules":
            STATE.set_rules(json.loads(body or b"[]"))
            return self._send(200, b"ok")
        if parsed.path == "/__proxy__/log":
            with STATE.lock:
                data = json.dumps(STATE.log).encode()
            return self._send(200, data, {"Content-Type": "application/json"})

        rule = STATE.match(self.command, parsed.path, query)
        action = rule["action"] if rule else "forward"
        # Only these request headers are logged (never Authorization or the security token).
        logged = {k.lower(): v for k, v in self.headers.items()
                  if k.lower().startswith("x-amz-server-side-encryption") or k.lower() == "if-none-match"}
        auth = self.headers.get("Authorization") or ""
        key_id = auth.split("Credential=", 1)[1].split("/", 1)[0] if "Credential=" in auth else None
        STATE.record({"method": self.command, "path": parsed.path, "query": query, "action": action,
                      "headers": logged, "access_key_id": key_id, "bytes": len(body)})
        if action == "status":
            status = rule.get("status", 500)
            return self._send(status, error_xml(rule.get("code", "InternalError"), "injected by s3_fault_proxy"),
                              {"Content-Type": "application/xml", "x-amz-request-id": "FAULTPROXY"})
        if action == "error200":
            return self._send(200, error_xml("InternalError", "injected 200 with Error body"),
                              {"Content-Type": "application/xml"})
        if action == "respond":
            return self._send(rule.get("status", 200), rule.get("body", "").encode(), rule.get("headers", {}))
        if action == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        if action == "delay":
            time.sleep(rule.get("seconds", 3))
        if action == "corrupt" and body:
            body = bytes([body[0] ^ 0xFF]) + body[1:]
        if ARGS.verify_checksums and body:
            problem = verify(self.headers, body)
            if problem:
                STATE.record({"method": self.command, "path": parsed.path, "query": query, "action": "rejected"})
                return self._send(400, error_xml(problem[0], problem[1]), {"Content-Type": "application/xml"})
        self._forward(body)

    def _forward(self, body):
        upstream = urllib.parse.urlsplit(ARGS.upstream)
        conn = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "keep-alive")}
        headers["Content-Length"] = str(len(body))
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() in ("transfer-encoding", "connection", "content-length", "date", "server"):
                continue
            self.send_header(k, v)
        if self.command == "HEAD":
            self.send_header("Content-Length", resp.getheader("Content-Length", "0"))
            self.end_headers()
        else:
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        conn.close()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle


def verify(headers, body):
    md5 = headers.get("Content-MD5")
    if md5 and base64.b64encode(hashlib.md5(body).digest()).decode() != md5:
        return ("BadDigest", "The Content-MD5 you specified did not match what we received.")
    sha = headers.get("x-amz-checksum-sha256")
    if sha and base64.b64encode(hashlib.sha256(body).digest()).decode() != sha:
        return ("BadDigest", "The SHA256 you specified did not match the calculated checksum.")
    crc = headers.get("x-amz-checksum-crc32c")
    if crc and base64.b64encode(crc32c_fast(body).to_bytes(4, "big")).decode() != crc:
        return ("BadDigest", "The CRC32C you specified did not match the calculated checksum.")
    content_sha = headers.get("x-amz-content-sha256")
    if content_sha and len(content_sha) == 64 and hashlib.sha256(body).hexdigest() != content_sha:
        return ("XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match.")
    return None


def main():
    global ARGS
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--verify-checksums", action="store_true")
    parser.add_argument("--rules", default="[]", help="initial rules (JSON list)")
    parser.add_argument("--self-test", action="store_true", help="check the CRC32C code and exit")
    ARGS = parser.parse_args()
    if ARGS.self_test:
        assert crc32c(b"123456789") == 0xE3069283
        data = bytes(range(256)) * 1000 + b"tail"
        assert crc32c_fast(data) == crc32c(data)
        print("ok")
        return
    # A parent that spawned us from a thread with signals blocked passes that mask on.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    STATE.set_rules(json.loads(ARGS.rules))
    server = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    server.daemon_threads = True
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
