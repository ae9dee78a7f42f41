"""The IP Insights built-in through the API: learns which /16 subnets each entity uses from
``entity,ip`` CSV, reports validation:discriminator_auc, serves dot products (verbose adds
the embeddings) and refuses malformed addresses."""

from __future__ import annotations

import json

import numpy as np
import pytest

from opensage.algorithms.ipinsights.data import format_ip
from opensage.algorithms.ipinsights.serve import load
from tests.integration.builtins import deploy, invoke, metrics, model_dir, train

ENTITIES, SUBNETS = 200, 100


def traffic(n: int, seed: int) -> tuple[list[str], list[str], np.ndarray]:
    """Each entity logs in from addresses of its own two /16 subnets (out of 100)."""
    rng = np.random.default_rng(0)
    subnets = rng.integers(1, 223, SUBNETS) * 256 + rng.integers(0, 256, SUBNETS)
    own = np.array([rng.choice(SUBNETS, 2, replace=False) for _ in range(ENTITIES)])
    rng = np.random.default_rng(seed)
    entity = rng.integers(0, ENTITIES, n)
    prefix = subnets[own[entity, rng.integers(0, 2, n)]]
    ips = (prefix << 16) + rng.integers(0, 65536, n)
    return [f"user_{e}" for e in entity], [format_ip(ip) for ip in ips], (subnets, own)


def csv_body(entities: list[str], ips: list[str]) -> bytes:
    return "".join(f"{e},{ip}\n" for e, ip in zip(entities, ips, strict=True)).encode()


HPS = {"num_entity_vectors": 500, "vector_dim": 16, "epochs": 5, "learning_rate": 0.01,
       "mini_batch_size": 500}


def test_ipinsights_learns_each_entitys_subnets_and_serves(sm, s3, client, tmp_path):
    entities, ips, (subnets, own) = traffic(8000, seed=1)
    v_entities, v_ips, _ = traffic(2000, seed=2)
    job = train(sm, s3, "ipinsights", HPS,
                {"train": (csv_body(entities, ips), "text/csv"),
                 "validation": (csv_body(v_entities, v_ips), "text/csv")})
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert metrics(job)["validation:discriminator_auc"] > 0.8

    model = load(model_dir(s3, job, tmp_path / "model"))
    rng = np.random.default_rng(3)
    names = [f"user_{e}" for e in range(ENTITIES)]
    usual = [format_ip((int(subnets[own[e, 0]]) << 16) + int(rng.integers(0, 65536)))
             for e in range(ENTITIES)]
    others = [int(s) for s in rng.integers(0, SUBNETS, ENTITIES)]
    foreign = [format_ip((int(subnets[s]) << 16) + int(rng.integers(0, 65536)))
               for s in others]
    usual_score = model.predict(model.check((names, usual)), False)["dot_product"]
    foreign_score = model.predict(model.check((names, foreign)), False)["dot_product"]
    strange = np.array([s not in own[e] for e, s in enumerate(others)])
    assert np.mean(usual_score[strange] > foreign_score[strange]) > 0.9

    runtime = client("sagemaker-runtime")
    endpoint = deploy(sm, "ipinsights", job)
    body, content_type = invoke(runtime, endpoint, csv_body(names[:3], usual[:3]), "text/csv")
    assert content_type == "application/json"
    predictions = json.loads(body)["predictions"]
    assert [p["dot_product"] for p in predictions] == pytest.approx(
        usual_score[:3].tolist(), rel=1e-4)
    assert set(predictions[0]) == {"dot_product"}
    request = json.dumps({"instances": [{"features": [names[0], usual[0]]},
                                        {"features": [names[1], foreign[1]]}]})
    body, _ = invoke(runtime, endpoint, request, "application/json",
                     "application/json; verbose=True")
    verbose = json.loads(body)["predictions"]
    assert len(verbose[0]["entity_embedding"]) == 16 and len(verbose[0]["ip_embedding"]) == 16
    assert verbose[0]["dot_product"] == pytest.approx(
        float(np.dot(verbose[0]["entity_embedding"], verbose[0]["ip_embedding"])), rel=1e-4)
    lines = invoke(runtime, endpoint,
                   "\n".join(json.dumps({"features": [n, ip]})
                             for n, ip in zip(names[:2], usual[:2], strict=True)),
                   "application/jsonlines", "application/jsonlines")[0].decode().splitlines()
    assert [json.loads(line)["dot_product"] for line in lines] == pytest.approx(
        usual_score[:2].tolist(), rel=1e-4)
    # an entity never seen in training gets the out-of-vocabulary vector
    body, _ = invoke(runtime, endpoint, b"somebody_new,10.1.2.3\n", "text/csv")
    assert np.isfinite(json.loads(body)["predictions"][0]["dot_product"])
    with pytest.raises(runtime.exceptions.ModelError, match="IPv4"):
        invoke(runtime, endpoint, b"user_1,10.1.300.4\n", "text/csv")
    with pytest.raises(runtime.exceptions.ModelError, match="two values"):
        invoke(runtime, endpoint, json.dumps({"instances": [{"features": ["user_1"]}]}),
               "application/json")
    with pytest.raises(runtime.exceptions.ClientError, match="415|not supported"):
        invoke(runtime, endpoint, b"\x00", "application/x-recordio-protobuf")


def test_ipinsights_bad_input_fails_the_job_naming_the_line(sm, s3):
    entities, ips, _ = traffic(50, seed=1)
    ips[6] = "10.1.2"
    hps = {"num_entity_vectors": 100, "vector_dim": 8, "epochs": 1}
    job = train(sm, s3, "ipinsights", hps, {"train": (csv_body(entities, ips), "text/csv")})
    assert job["TrainingJobStatus"] == "Failed"
    assert "line 7" in job["FailureReason"] and "10.1.2" in job["FailureReason"]
    ips[6] = "10.1.2.3"
    body = csv_body(entities, ips).replace(b"\n", b",x\n", 1)
    job = train(sm, s3, "ipinsights", hps, {"train": (body, "text/csv")})
    assert job["TrainingJobStatus"] == "Failed" and "line 1" in job["FailureReason"]


def test_ipinsights_rejects_bad_hyperparameters_and_content_types(sm, s3):
    body = csv_body(["a", "b"], ["1.2.3.4", "5.6.7.8"])
    with pytest.raises(sm.exceptions.ClientError, match="vector_dim"):
        train(sm, s3, "ipinsights", {"num_entity_vectors": 10, "vector_dim": 2},
              {"train": (body, "text/csv")})
    with pytest.raises(sm.exceptions.ClientError, match="num_entity_vectors"):
        train(sm, s3, "ipinsights", {"vector_dim": 8}, {"train": (body, "text/csv")})
    with pytest.raises(sm.exceptions.ClientError, match="recordio"):
        train(sm, s3, "ipinsights", {"num_entity_vectors": 10, "vector_dim": 8},
              {"train": (body, "application/x-recordio-protobuf")})
