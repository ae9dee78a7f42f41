"""What ``--auth sigv4`` costs: DescribeModel rate with and without it (two server
subprocesses, same run, alternating rounds), and the signature check per request in-process.

The load is a pre-signed DescribeModel sent again and again over keep-alive connections
(SigV4 does not forbid replay within the 15-minute window), so the client spends no time
signing and the figure is the server's.

    .venv/bin/python -m benchmarks.bench_auth [--seconds 5] [--clients 2]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from opensage.testing import ROOT_KEYS, opensage_server, sigv4_args

BODY = json.dumps({"ModelName": "bench-model"}).encode()


def signed_headers(url: str) -> dict[str, str]:
    request = AWSRequest("POST", url + "/", data=BODY, headers={
        "X-Amz-Target": "SageMaker.DescribeModel",
        "Content-Type": "application/x-amz-json-1.1"})
    SigV4Auth(Credentials(*ROOT_KEYS), "sagemaker", "us-east-1").add_auth(request)
    return dict(request.headers)


def client(port: int, headers: dict[str, str], seconds: float, out: Any) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port)
    count, deadline = 0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        conn.request("POST", "/", body=BODY, headers=headers)
        response = conn.getresponse()
        response.read()
        assert response.status == 200, response.status
        count += 1
    out.put(count)


def rate(url: str, headers: dict[str, str], seconds: float, clients: int) -> float:
    return rate_over([int(url.rsplit(":", 1)[1])], headers, seconds, clients)


def rate_over(ports: list[int], headers: dict[str, str], seconds: float,
              clients: int) -> float:
    """Requests/s of ``clients`` processes sending DescribeModel, spread evenly over
    ``ports`` (as a load balancer would)."""
    queue: Any = mp.Queue()
    procs = [mp.Process(target=client, args=(ports[i % len(ports)], headers, seconds, queue))
             for i in range(clients)]
    for p in procs:
        p.start()
    total = sum(queue.get() for _ in procs)
    for p in procs:
        p.join()
    return total / seconds


def prepare(url: str) -> None:
    sm = boto3.client("sagemaker", endpoint_url=url, region_name="us-east-1",
                      aws_access_key_id=ROOT_KEYS[0], aws_secret_access_key=ROOT_KEYS[1])
    sm.create_model(ModelName="bench-model", ExecutionRoleArn="arn:aws:iam::000000000000:role/x",
                    PrimaryContainer={"Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/"
                                               "sagemaker-xgboost:1.7-1"})


def check_cost(iterations: int = 20000) -> dict[str, float]:
    """µs per Verifier.verify of a signed DescribeModel (key cached), and per canonical
    request alone, in this process."""
    from opensage.api.auth import Incoming, Verifier, parse_signed
    from opensage.services.iam import Credential, Principal

    headers = {k.lower(): v for k, v in signed_headers("http://127.0.0.1:1").items()}
    headers["host"] = "127.0.0.1:1"
    principal = Principal("Root", "arn:aws:iam::0:root", "0", "0", "root")
    credential = Credential(ROOT_KEYS[0], ROOT_KEYS[1], principal)

    class Iam:
        def cached(self, key: str) -> Credential:
            return credential

    verifier = Verifier(Iam())  # type: ignore[arg-type]
    request = Incoming("POST", "127.0.0.1:1", "/", [], headers)
    verifier.verify(request, parse_signed(headers, []), credential, BODY)
    started = time.perf_counter()
    for _ in range(iterations):
        verifier.verify(request, parse_signed(headers, []), credential, BODY)
    per = (time.perf_counter() - started) / iterations * 1e6
    return {"verify_us": per}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(check_cost()))
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b, \
            opensage_server(Path(a), "--auth", "none") as plain, \
            opensage_server(Path(b), *sigv4_args()) as signed:
        for url in (plain, signed):
            prepare(url)
        rates: dict[str, list[float]] = {"none": [], "sigv4": []}
        for _ in range(args.rounds):
            rates["none"].append(rate(plain, signed_headers(plain), args.seconds,
                                      args.clients))
            rates["sigv4"].append(rate(signed, signed_headers(signed), args.seconds,
                                       args.clients))
        none, sigv4 = statistics.median(rates["none"]), statistics.median(rates["sigv4"])
        print(json.dumps({"rounds": rates, "none_median": round(none),
                          "sigv4_median": round(sigv4), "ratio": round(sigv4 / none, 3)}))


if __name__ == "__main__":
    main()
