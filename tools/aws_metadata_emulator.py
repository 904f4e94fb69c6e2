#!/usr/bin/env python3
"""Emulates the two AWS credential endpoints Tidemark reads, for ObjectStore tests.

Usage:
    python3 tools/aws_metadata_emulator.py --mode imds|ecs [--port 0] [--expiry-seconds 3]
        [--role tidemark-role] [--path /creds] [--auth-token TOKEN]

Binds 127.0.0.1 only, prints "PORT <n>" on stdout once listening, then serves until killed.
Every credential it issues is new: AccessKeyId ASIAEMU<mode><n> (n counts from 1), with
Expiration = now + --expiry-seconds.

--mode imds (EC2 IMDSv2):
    PUT /latest/api/token              needs X-aws-ec2-metadata-token-ttl-seconds (1-21600);
                                       answers a fresh session token
    GET /latest/meta-data/iam/security-credentials/         the role name
    GET /latest/meta-data/iam/security-credentials/<role>   the credential JSON
    Both GETs need X-aws-ec2-metadata-token with a token this emulator issued (and not
    expired), else 401: a client that skips the token flow gets nothing.

--mode ecs (ECS / EKS container credentials):
    GET <--path>                       the credential JSON; with --auth-token the request's
                                       Authorization header must equal it, else 401

Both:
    GET /__emulator__/stats   JSON {"credentials_served", "tokens_issued", "rejected"}
"""
import argparse
import datetime
import json
import secrets
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ARGS = None
LOCK = threading.Lock()
STATS = {"credentials_served": 0, "tokens_issued": 0, "rejected": 0}
TOKENS = {}  # token -> expiry (monotonic)


def iso(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_credentials():
    with LOCK:
        STATS["credentials_served"] += 1
        n = STATS["credentials_served"]
    now = time.time()
    body = {
        "AccessKeyId": "ASIAEMU%s%04d" % (ARGS.mode.upper(), n),
        "SecretAccessKey": secrets.token_hex(20),
        "Token": secrets.token_hex(32),
        "Expiration": iso(now + ARGS.expiry_seconds),
    }
    if ARGS.mode == "imds":
        body.update({"Code": "Success", "LastUpdated": iso(now), "Type": "AWS-HMAC"})
    else:
        body["RoleArn"] = "arn:aws:iam::123456789012:role/" + ARGS.role
    return body


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # keep test output quiet
        pass

    def _send(self, status, body, content_type="text/plain"):
        data = body if isinstance(body, bytes) else body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _reject(self, status, why):
        with LOCK:
            STATS["rejected"] += 1
        self._send(status, why)

    def _drain(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)

    def do_PUT(self):
        self._drain()
        if ARGS.mode != "imds" or self.path != "/latest/api/token":
            return self._reject(404, "not found")
        ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
        if not ttl or not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
            return self._reject(400, "missing or invalid X-aws-ec2-metadata-token-ttl-seconds")
        token = secrets.token_urlsafe(24)
        with LOCK:
            TOKENS[token] = time.monotonic() + int(ttl)
            STATS["tokens_issued"] += 1
        self._send(200, token)

    def do_GET(self):
        self._drain()
        if self.path == "/__emulator__/stats":
            with LOCK:
                data = json.dumps(STATS)
            return self._send(200, data, "application/json")
        if ARGS.mode == "imds":
            token = self.headers.get("X-aws-ec2-metadata-token")
            with LOCK:
                valid = token is not None and TOKENS.get(token, 0) > time.monotonic()
            if not valid:
                return self._reject(401, "missing or invalid X-aws-ec2-metadata-token")
            base = "/latest/meta-data/iam/security-credentials/"
            if self.path == base:
                return self._send(200, ARGS.role)
            if self.path == base + ARGS.role:
                return self._send(200, json.dumps(new_credentials()), "application/json")
            return self._reject(404, "not found")
        if self.path != ARGS.path:
            return self._reject(404, "not found")
        if ARGS.auth_token is not None and self.headers.get("Authorization") != ARGS.auth_token:
            return self._reject(401, "bad Authorization")
        self._send(200, json.dumps(new_credentials()), "application/json")


def main():
    global ARGS
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["imds", "ecs"], required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--expiry-seconds", type=float, default=3600)
    parser.add_argument("--role", default="tidemark-role")
    parser.add_argument("--path", default="/creds")
    parser.add_argument("--auth-token", default=None)
    ARGS = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    server.daemon_threads = True
    print("PORT %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
