"""The image classification built-in, in the builtin-torch environment, through boto3 and the
SDK: a ResNet-20 trained from scratch on scikit-learn's digits (8x8 grey, scaled up and made
RGB) reaches well above chance validation accuracy from MXNet image RecordIO (packed here
without MXNet) and from .lst files + PNG images; the endpoint answers PNG images with class
probabilities; batch transform classifies a folder of images; corrupt records, labels out of
range, undecodable or too small images, .lst lines naming missing images and
use_pretrained_model without local weights fail the job naming the record or line."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from opensage.algorithms.image_classification.data import pack_record, write_png
from tests.integration.builtins import (
    BUCKET,
    deploy,
    image,
    invoke,
    metrics,
    model_dir,
    put_objects,
    train,
)
from tests.integration.test_training_jobs import ROLE, wait_for

SIDE = 16
# 3 epochs: validation accuracy 0.20, 0.72, 0.98 from the 1300 RecordIO digits (0.998 after a
# 4th epoch); every assertion below asks for at most 0.8
HPS = {"num_classes": 10, "num_layers": 20, "image_shape": f"3,{SIDE},{SIDE}", "epochs": 3,
       "mini_batch_size": 32, "learning_rate": 0.05, "top_k": 2}


def digits(scale: int) -> tuple[np.ndarray, np.ndarray]:
    """(images as uint8 N x H x W x 3, labels): the digits scaled up ``scale`` times."""
    from sklearn.datasets import load_digits

    data = load_digits()
    grey = (data.images * (255 / 16)).round().astype(np.uint8)
    big = grey.repeat(scale, axis=1).repeat(scale, axis=2)
    return np.repeat(big[..., None], 3, axis=3), data.target.astype(int)


def split(n: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(0).permutation(n)
    return order[:1300], order[1300:]


def rec(images: np.ndarray, labels: np.ndarray) -> bytes:
    return b"".join(pack_record(float(label), write_png(image), i)
                    for i, (image, label) in enumerate(zip(images, labels, strict=True)))


@pytest.fixture(scope="module")
def data() -> dict[str, np.ndarray]:
    images, labels = digits(SIDE // 8)
    train_index, held_out = split(len(labels))
    return {"images": images, "labels": labels, "train": train_index, "held_out": held_out}


def test_image_classification_learns_digits_from_recordio_serves_and_transforms(
        sm, s3, client, data):
    images, labels, tr, ho = data["images"], data["labels"], data["train"], data["held_out"]
    job = train(sm, s3, "image-classification", {**HPS, "num_training_samples": len(tr)},
                {"train": (rec(images[tr], labels[tr]), "application/x-recordio"),
                 "validation": (rec(images[ho], labels[ho]), "application/x-recordio")},
                timeout=300)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    found = metrics(job)
    assert found["validation:accuracy"] >= 0.8, found
    assert found["train:accuracy"] >= 0.5, found

    runtime = client("sagemaker-runtime")
    endpoint = deploy(sm, "image-classification", job, timeout=180)
    right = 0
    for i in ho[:30]:
        body, content_type = invoke(runtime, endpoint, write_png(images[i]), "image/png")
        probabilities = json.loads(body)
        assert content_type == "application/json" and len(probabilities) == 10
        assert abs(sum(probabilities) - 1) < 1e-4
        right += int(np.argmax(probabilities)) == labels[i]
    assert right >= 20
    body, content_type = invoke(runtime, endpoint, write_png(images[ho[0]]),
                                "application/x-image", "application/jsonlines; verbose=true")
    row = json.loads(body)
    assert content_type == "application/jsonlines" and len(row["prediction"]) == 10
    assert row["predicted_label"] == int(np.argmax(row["prediction"]))
    with pytest.raises(runtime.exceptions.ModelError, match="cannot be decoded"):
        invoke(runtime, endpoint, b"not an image", "image/jpeg")
    with pytest.raises(client("sagemaker-runtime").exceptions.ClientError, match="image"):
        invoke(runtime, endpoint, b"1,2,3", "text/csv")

    # batch transform of a folder of images (SplitType None: one image per request)
    name = job["TrainingJobName"]
    for i in ho[:5]:
        s3.put_object(Bucket=BUCKET, Key=f"{name}/transform/in/{i}.png",
                      Body=write_png(images[i]))
    sm.create_transform_job(
        TransformJobName=name, ModelName=name,
        TransformInput={"DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/{name}/transform/in/"}},
            "ContentType": "application/x-image", "SplitType": "None"},
        TransformOutput={"S3OutputPath": f"s3://{BUCKET}/{name}/transform/out/"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1})
    status = sm.describe_transform_job(TransformJobName=name)
    while status["TransformJobStatus"] in ("InProgress", "Stopping"):
        time.sleep(0.1)
        status = sm.describe_transform_job(TransformJobName=name)
    assert status["TransformJobStatus"] == "Completed", status.get("FailureReason")
    for i in ho[:5]:
        out = s3.get_object(Bucket=BUCKET, Key=f"{name}/transform/out/{i}.png.out")["Body"]
        assert len(json.loads(out.read())) == 10

    # incremental training: the model channel holds this job's model.tar.gz
    bucket, key = job["ModelArtifacts"]["S3ModelArtifacts"].removeprefix("s3://").split("/", 1)
    artifact = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    channels = {"train": (rec(images[tr[:300]], labels[tr[:300]]), "application/x-recordio"),
                "validation": (rec(images[ho], labels[ho]), "application/x-recordio"),
                "model": (artifact, "application/x-sagemaker-model")}
    again = train(sm, s3, "image-classification",
                  {**HPS, "num_training_samples": 300, "epochs": 1, "learning_rate": 0.001},
                  channels, timeout=300)
    assert again["TrainingJobStatus"] == "Completed", again.get("FailureReason")
    assert metrics(again)["validation:accuracy"] >= 0.9, metrics(again)  # from scratch: 0.08
    other = train(sm, s3, "image-classification",
                  {**HPS, "num_classes": 11, "num_training_samples": 300, "epochs": 1},
                  channels, timeout=300)
    assert other["TrainingJobStatus"] == "Failed"
    assert "num_classes" in other["FailureReason"] and "incremental" in other["FailureReason"]


def lst_channels(images: np.ndarray, labels: np.ndarray, prefix: str
                 ) -> tuple[dict[str, bytes], dict[str, bytes]]:
    files = {f"{prefix}/{i:04d}.png": write_png(image) for i, image in enumerate(images)}
    lines = "".join(f"{i}\t{label}\t{prefix}/{i:04d}.png\n" for i, label in enumerate(labels))
    return files, {f"{prefix}.lst": lines.encode()}


def test_image_classification_learns_digits_from_lst_and_resized_images(sm, s3, data):
    """32x32 PNG files named by .lst files, resized to 16 on their shortest side."""
    images, labels = digits(4)
    tr, ho = data["train"], data["held_out"]
    train_files, train_lst = lst_channels(images[tr], labels[tr], "train")
    val_files, val_lst = lst_channels(images[ho], labels[ho], "val")
    job = train(sm, s3, "image-classification",
                {**HPS, "num_training_samples": len(tr), "resize": SIDE},
                {"train": (train_files, "application/x-image"),
                 "validation": (val_files, "application/x-image"),
                 "train_lst": (train_lst, "application/x-image"),
                 "validation_lst": (val_lst, "application/x-image")}, timeout=300)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert metrics(job)["validation:accuracy"] >= 0.8, metrics(job)


def test_image_classification_pipe_mode_augmented_manifest_and_augmentation(sm, s3, tmp_path,
                                                                           data):
    """Pipe mode: train from an augmented manifest (AttributeNames source-ref, class; each
    image and its label streamed as RecordIO records), validate on a .rec channel; with
    crop_color_transform augmentation and checkpoint_frequency, as SageMaker's
    augmented-manifest examples configure it."""
    images, labels, tr, ho = data["images"], data["labels"], data["train"], data["held_out"]
    name = f"imgcls-manifest-{time.monotonic_ns() % 10**9}"
    pngs = {f"{name}/images/{i}.png": write_png(images[i]) for i in tr}
    put_objects(s3, pngs)
    lines = [json.dumps({"source-ref": f"s3://{BUCKET}/{key}", "class": int(labels[i])})
             for key, i in zip(pngs, tr, strict=True)]
    s3.put_object(Bucket=BUCKET, Key=f"{name}/train.manifest", Body="\n".join(lines).encode())
    s3.put_object(Bucket=BUCKET, Key=f"{name}/validation/digits.rec",
                  Body=rec(images[ho], labels[ho]))
    sm.create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={"TrainingImage": image("image-classification"),
                                "TrainingInputMode": "Pipe"},
        RoleArn=ROLE,
        InputDataConfig=[
            {"ChannelName": "train", "ContentType": "application/x-recordio",
             "RecordWrapperType": "RecordIO", "DataSource": {"S3DataSource": {
                 "S3DataType": "AugmentedManifestFile", "AttributeNames": ["source-ref", "class"],
                 "S3Uri": f"s3://{BUCKET}/{name}/train.manifest",
                 "S3DataDistributionType": "FullyReplicated"}}},
            {"ChannelName": "validation", "ContentType": "application/x-recordio",
             "DataSource": {"S3DataSource": {
                 "S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/{name}/validation/",
                 "S3DataDistributionType": "FullyReplicated"}}}],
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/output/"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
        StoppingCondition={"MaxRuntimeInSeconds": 600},
        HyperParameters={k: str(v) for k, v in {
            **HPS, "num_training_samples": len(tr), "augmentation_type": "crop_color_transform",
            "epochs": 4, "checkpoint_frequency": 2}.items()})
    job = wait_for(sm, name, timeout=300)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert metrics(job)["validation:accuracy"] >= 0.5, metrics(job)
    files = sorted(p.name for p in model_dir(s3, job, tmp_path / "model").iterdir())
    assert files == ["model_algo-1", "model_algo-1-epoch-0002", "model_algo-1-epoch-0004"]


def test_image_classification_multi_label_with_early_stopping(sm, s3, client, tmp_path, data):
    """multi_label=1 (a 0/1 label vector per image in the IRHeader) with use_weighted_loss: the
    endpoint answers a sigmoid probability per class; early stopping ends the job (a relative
    improvement of 90% is never reached after epoch 1), as the per-epoch model files of
    checkpoint_frequency=1 show."""
    images, labels, tr, ho = data["images"], data["labels"], data["train"], data["held_out"]
    hot = np.eye(10)[labels]

    def multi(index: np.ndarray) -> bytes:
        return b"".join(pack_record(hot[i].tolist(), write_png(images[i]), n)
                        for n, i in enumerate(index))

    job = train(sm, s3, "image-classification",
                {**HPS, "num_training_samples": len(tr), "multi_label": 1, "epochs": 30,
                 "use_weighted_loss": 1, "early_stopping": "true",
                 "early_stopping_min_epochs": 3, "early_stopping_patience": 1,
                 "early_stopping_tolerance": 0.9, "checkpoint_frequency": 1},
                {"train": (multi(tr), "application/x-recordio"),
                 "validation": (multi(ho), "application/x-recordio")}, timeout=300)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    files = sorted(p.name for p in model_dir(s3, job, tmp_path / "model").iterdir())
    assert files == ["model_algo-1", "model_algo-1-epoch-0001", "model_algo-1-epoch-0002",
                     "model_algo-1-epoch-0003"]
    runtime = client("sagemaker-runtime")
    endpoint = deploy(sm, "image-classification", job, timeout=180)
    answers = [json.loads(invoke(runtime, endpoint, write_png(images[i]), "image/png")[0])
               for i in ho[:20]]
    assert all(len(a) == 10 and all(0 <= p <= 1 for p in a) for a in answers)
    assert any(abs(sum(a) - 1) > 0.05 for a in answers)  # sigmoids, not a softmax
    assert sum(int(np.argmax(a)) == labels[i] for a, i in zip(answers, ho[:20], strict=True)) >= 14


def test_image_classification_bad_inputs_fail_the_job_naming_the_record(sm, s3, data):
    images, labels = data["images"][:40], data["labels"][:40]
    good = rec(images, labels)
    hps = {**HPS, "num_training_samples": 40, "epochs": 1}

    def failure(channels: dict) -> str:
        job = train(sm, s3, "image-classification", hps, channels, timeout=120)
        assert job["TrainingJobStatus"] == "Failed"
        return str(job["FailureReason"])

    frames = [pack_record(float(label), write_png(image), i)
              for i, (image, label) in enumerate(zip(images, labels, strict=True))]
    corrupt = b"".join(frames[:2]) + b"\x00" * 8 + b"".join(frames[3:])
    reason = failure({"train": (corrupt, "application/x-recordio"),
                      "validation": (good, "application/x-recordio")})
    assert reason.startswith("ClientError:") and "record 3" in reason and "train" in reason
    out_of_range = [*frames[:4], pack_record(12.0, write_png(images[4]), 4), *frames[5:]]
    reason = failure({"train": (good, "application/x-recordio"),
                      "validation": (b"".join(out_of_range), "application/x-recordio")})
    assert "validation" in reason and "record 5" in reason and "label 12" in reason
    small = [*frames[:6], pack_record(1.0, write_png(images[0][:8, :8]), 6), *frames[7:]]
    reason = failure({"train": (b"".join(small), "application/x-recordio"),
                      "validation": (good, "application/x-recordio")})
    assert "record 7" in reason and "8x8" in reason and "16x16" in reason
    broken = [*frames[:1], pack_record(1.0, b"\x89PNG garbage", 1), *frames[2:]]
    reason = failure({"train": (b"".join(broken), "application/x-recordio"),
                      "validation": (good, "application/x-recordio")})
    assert "record 2" in reason and "cannot be decoded" in reason

    files, lst = lst_channels(images, labels, "train")
    del files["train/0007.png"]
    job = train(sm, s3, "image-classification", {**hps, "resize": SIDE},
                {"train": (files, "application/x-image"),
                 "validation": (good, "application/x-recordio"),
                 "train_lst": (lst, "application/x-image")}, timeout=120)
    assert job["TrainingJobStatus"] == "Failed"
    assert "train.lst line 8" in job["FailureReason"] and "train/0007.png" in job["FailureReason"]

    job = train(sm, s3, "image-classification", {**hps, "use_pretrained_model": 1},
                {"train": (good, "application/x-recordio"),
                 "validation": (good, "application/x-recordio")}, timeout=120)
    assert job["TrainingJobStatus"] == "Failed"
    assert "OPENSAGE_PRETRAINED_MODELS_DIR" in job["FailureReason"], job["FailureReason"]

    with pytest.raises(sm.exceptions.ClientError, match="num_layers"):
        train(sm, s3, "image-classification", {**hps, "num_layers": 19},
              {"train": (good, "application/x-recordio"),
               "validation": (good, "application/x-recordio")})
    with pytest.raises(sm.exceptions.ClientError, match="train_lst"):
        train(sm, s3, "image-classification", {**hps, "resize": SIDE},
              {"train": (files, "application/x-image"),
               "validation": (good, "application/x-recordio")})


def test_sdk_image_classification_estimator_fits_deploys_and_predicts(sdk_env, data):
    """``image_uris.retrieve("image-classification")`` with a generic Estimator on RecordIO
    channels, as SageMaker's image classification examples do; deploy and predict a PNG."""
    import sagemaker
    from sagemaker.deserializers import JSONDeserializer
    from sagemaker.estimator import Estimator
    from sagemaker.inputs import TrainingInput
    from sagemaker.serializers import IdentitySerializer

    from opensage.sdk import fast_polling
    from tests.integration.conftest import ROLE

    session = sagemaker.Session()
    bucket = session.default_bucket()
    image = sagemaker.image_uris.retrieve("image-classification", session.boto_region_name)
    assert image.endswith("/image-classification:1")
    images, labels, tr, ho = data["images"], data["labels"], data["train"], data["held_out"]
    uris = {}
    for channel, index in (("train", tr), ("validation", ho)):
        key = f"imgcls/{channel}/digits.rec"
        session.boto_session.client("s3").put_object(Bucket=bucket, Key=key,
                                                     Body=rec(images[index], labels[index]))
        uris[channel] = TrainingInput(f"s3://{bucket}/{key}",
                                      content_type="application/x-recordio")
    estimator = Estimator(image, ROLE, instance_count=1, instance_type="ml.c5.xlarge",
                          sagemaker_session=session, output_path=f"s3://{bucket}/imgcls/out")
    estimator.set_hyperparameters(**{**HPS, "num_training_samples": len(tr)})
    with fast_polling(factor=100):
        estimator.fit(uris, logs=False)
        predictor = estimator.deploy(1, "ml.m5.large", serializer=IdentitySerializer("image/png"),
                                     deserializer=JSONDeserializer())
    try:
        answers = [predictor.predict(write_png(images[i])) for i in ho[:20]]
    finally:
        with fast_polling(factor=100):
            predictor.delete_endpoint()
    assert all(len(a) == 10 for a in answers)
    assert sum(int(np.argmax(a)) == labels[i] for a, i in zip(answers, ho[:20], strict=True)) >= 15
    final = {m["MetricName"]: m["Value"] for m in session.sagemaker_client.describe_training_job(
        TrainingJobName=estimator.latest_training_job.name)["FinalMetricDataList"]}
    assert final["validation:accuracy"] >= 0.8, final
