"""What an S3 bucket policy costs a request under ``--auth sigv4``.

In-process: ``Policies.authorize`` of an IAM user's ``s3:GetObject`` (one identity policy)
on a real database, (a) without the bucket-policy lookup (as before bucket policies), (b) on
a bucket with no policy, (c) on a bucket with a five-statement policy (principals,
``IpAddress``, ``Bool``, ``StringLike``), both from the 5 s cache.

End to end: one sigv4 server, an IAM user's presigned GetObject of a 1 KiB object replayed
over keep-alive connections, on a bucket without a policy and on one with that policy,
alternating rounds, medians compared.

    .venv/bin/python -m benchmarks.bench_bucket_policy [--seconds 3] [--rounds 3]
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
from urllib.parse import urlsplit

import boto3

from opensage.testing import ROOT_KEYS, opensage_server, sigv4_args

ACCOUNT = "123456789012"
IDENTITY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": "*"}]}


def bucket_policy(bucket: str) -> dict[str, Any]:
    user = f"arn:aws:iam::{ACCOUNT}:user/bench"
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "ReadForUser", "Effect": "Allow", "Principal": {"AWS": user},
         "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"},
        {"Sid": "NotFromOutside", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
         "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
         "Condition": {"NotIpAddress": {"aws:SourceIp": ["127.0.0.0/8", "10.0.0.0/8"]}}},
        {"Sid": "NoPlainDeletes", "Effect": "Deny", "Principal": "*",
         "Action": "s3:DeleteObject", "Resource": f"arn:aws:s3:::{bucket}/*",
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        {"Sid": "ListHome", "Effect": "Allow", "Principal": {"AWS": user},
         "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{bucket}",
         "Condition": {"StringLike": {"s3:prefix": ["home/*", "shared/*"]}}},
        {"Sid": "RootAccount", "Effect": "Allow", "Principal": {"AWS": ACCOUNT},
         "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{bucket}/*"}]}


def check_cost(iterations: int = 20000) -> dict[str, float]:
    from opensage.services.iam import IamService, Principal
    from opensage.settings import Settings
    from opensage.store.db import Database
    from opensage.store.objects import ObjectStore

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), port=0, account_id=ACCOUNT)
        db = Database(settings.database_url)
        db.prepare()
        objects = ObjectStore(settings.objects_url, db, region=settings.region)
        iam = IamService(settings, db, objects=objects)
        made = iam.create_user({"UserName": "bench"})["User"]
        iam.policies.put_inline("user", {"UserName": "bench", "PolicyName": "s3",
                                         "PolicyDocument": json.dumps(IDENTITY)})
        principal = Principal("IAMUser", made["Arn"], made["UserId"], ACCOUNT, "bench")
        for name in ("plain", "guarded"):
            objects.create_bucket(name)
        assert iam.bucket_policies is not None
        iam.bucket_policies.put("guarded", json.dumps(bucket_policy("guarded")))
        context = {**iam.policies.base_context(principal), "aws:sourceip": "127.0.0.1"}
        resolver = iam.policies.resource_policy
        out: dict[str, float] = {}
        for label, bucket, lookup in (("identity_only_us", "plain", None),
                                      ("no_bucket_policy_us", "plain", resolver),
                                      ("bucket_policy_us", "guarded", resolver)):
            iam.policies.resource_policy = lookup
            resource = f"arn:aws:s3:::{bucket}/data/k.csv"
            assert iam.policies.authorize(principal, "s3:GetObject", resource, context).allowed
            best = float("inf")
            for _ in range(3):  # best of three: the machine is shared
                started = time.perf_counter()
                for _ in range(iterations):
                    iam.policies.authorize(principal, "s3:GetObject", resource, context)
                best = min(best, (time.perf_counter() - started) / iterations * 1e6)
            out[label] = round(best, 2)
        db.dispose()
        return out


def client(url: str, seconds: float, out: Any) -> None:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port)
    path = f"{parts.path}?{parts.query}"
    count, deadline = 0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        assert response.status == 200, response.status
        count += 1
    out.put(count)


def rate(url: str, seconds: float, clients: int) -> float:
    queue: Any = mp.Queue()
    procs = [mp.Process(target=client, args=(url, seconds, queue)) for _ in range(clients)]
    for p in procs:
        p.start()
    total = sum(queue.get() for _ in procs)
    for p in procs:
        p.join()
    return total / seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(check_cost()))
    with tempfile.TemporaryDirectory() as tmp, opensage_server(
            Path(tmp), *sigv4_args(), "--account-id", ACCOUNT) as url:
        def root(service: str) -> Any:
            return boto3.client(service, endpoint_url=url, region_name="us-east-1",
                                aws_access_key_id=ROOT_KEYS[0],
                                aws_secret_access_key=ROOT_KEYS[1])

        iam, s3 = root("iam"), root("s3")
        iam.create_user(UserName="bench")
        iam.put_user_policy(UserName="bench", PolicyName="s3",
                            PolicyDocument=json.dumps(IDENTITY))
        key = iam.create_access_key(UserName="bench")["AccessKey"]
        user = boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                            aws_access_key_id=key["AccessKeyId"],
                            aws_secret_access_key=key["SecretAccessKey"])
        urls = {}
        for name in ("plain", "guarded"):
            s3.create_bucket(Bucket=name)
            s3.put_object(Bucket=name, Key="data/k.csv", Body=b"x" * 1024)
            urls[name] = user.generate_presigned_url(
                "get_object", Params={"Bucket": name, "Key": "data/k.csv"}, ExpiresIn=3600)
        s3.put_bucket_policy(Bucket="guarded", Policy=json.dumps(bucket_policy("guarded")))
        rates: dict[str, list[float]] = {"plain": [], "guarded": []}
        for _ in range(args.rounds):
            for name in ("plain", "guarded"):
                rates[name].append(round(rate(urls[name], args.seconds, args.clients)))
        plain, guarded = statistics.median(rates["plain"]), statistics.median(rates["guarded"])
        print(json.dumps({"rounds": rates, "plain_median": plain, "guarded_median": guarded,
                          "ratio": round(guarded / plain, 3)}))


if __name__ == "__main__":
    main()
