"""The SageMaker SDK v2, unchanged, runs processing jobs on opensage: SKLearnProcessor with a
local script and input uploaded by the SDK (logs tailed), ScriptProcessor, and
FrameworkProcessor with a source_dir holding a requirements.txt (its runproc.sh unpacks the
code and pip-installs the requirements)."""

from __future__ import annotations

import io
import textwrap
from contextlib import redirect_stdout
from pathlib import Path

from opensage.sdk import fast_polling
from tests.integration.conftest import ROLE, NetworkGuard
from tests.integration.script_jobs import SKLEARN_IMAGE

PREPROCESS = """
    import argparse, glob, os
    import pandas as pd
    from sklearn.model_selection import train_test_split

    parser = argparse.ArgumentParser()
    parser.add_argument("--test-size", type=float, default=0.2)
    args = parser.parse_args()
    frame = pd.concat(pd.read_csv(f) for f in sorted(glob.glob(
        "/opt/ml/processing/input/*.csv")))
    train, test = train_test_split(frame, test_size=args.test_size, random_state=0)
    for name, part in (("train", train), ("test", test)):
        os.makedirs(f"/opt/ml/processing/{name}", exist_ok=True)
        part.to_csv(f"/opt/ml/processing/{name}/{name}.csv", index=False)
    print(f"train rows: {len(train)}, test rows: {len(test)}", flush=True)
"""


def _session():
    import sagemaker

    return sagemaker.Session()


def _read(session, uri: str) -> str:
    bucket, key = uri[5:].split("/", 1)
    s3 = session.boto_session.client("s3")
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()


def _inputs(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    (data / "rows.csv").write_text("x,y\n" + "".join(f"{i},{i % 3}\n" for i in range(40)))
    return data


def test_sklearn_processor_splits_a_csv_and_tails_its_logs(sdk_env: NetworkGuard,
                                                            tmp_path: Path):
    from sagemaker.processing import ProcessingInput, ProcessingOutput
    from sagemaker.sklearn.processing import SKLearnProcessor

    session = _session()
    (tmp_path / "preprocess.py").write_text(textwrap.dedent(PREPROCESS))
    processor = SKLearnProcessor(framework_version="1.2-1", role=ROLE,
                                 instance_type="ml.m5.large", instance_count=1,
                                 sagemaker_session=session)
    printed = io.StringIO()
    with fast_polling(factor=100), redirect_stdout(printed):
        processor.run(code=str(tmp_path / "preprocess.py"),
                      inputs=[ProcessingInput(source=str(_inputs(tmp_path)),
                                              destination="/opt/ml/processing/input")],
                      outputs=[ProcessingOutput(source="/opt/ml/processing/train"),
                               ProcessingOutput(source="/opt/ml/processing/test")],
                      arguments=["--test-size", "0.25"], wait=True, logs=True)
    assert "train rows: 30, test rows: 10" in printed.getvalue()  # tailed from CloudWatch
    job = processor.latest_job.describe()
    assert job["ProcessingJobStatus"] == "Completed"
    assert job["AppSpecification"]["ContainerEntrypoint"] == [
        "python3", "/opt/ml/processing/input/code/preprocess.py"]
    outputs = {o.output_name: o.destination for o in processor.latest_job.outputs}
    train = _read(session, outputs["output-1"] + "/train.csv").splitlines()
    test = _read(session, outputs["output-2"] + "/test.csv").splitlines()
    assert train[0] == test[0] == "x,y" and len(train) == 31 and len(test) == 11
    assert sorted(int(line.split(",")[0]) for line in train[1:] + test[1:]) == list(range(40))


def test_script_processor_runs_python3_from_the_image(sdk_env: NetworkGuard, tmp_path: Path):
    from sagemaker.processing import ProcessingOutput, ScriptProcessor

    session = _session()
    (tmp_path / "version.py").write_text(textwrap.dedent("""
        import sys, sklearn
        with open("/opt/ml/processing/out/version.txt", "w") as f:
            f.write(f"{sklearn.__version__} {sys.argv[1]}")
    """))
    processor = ScriptProcessor(command=["python3"], image_uri=SKLEARN_IMAGE, role=ROLE,
                                instance_type="ml.m5.large", instance_count=1,
                                sagemaker_session=session)
    with fast_polling(factor=100):
        processor.run(code=str(tmp_path / "version.py"), arguments=["hello"],
                      outputs=[ProcessingOutput(source="/opt/ml/processing/out")],
                      wait=True, logs=False)
    assert processor.latest_job.describe()["ProcessingJobStatus"] == "Completed"
    out = processor.latest_job.outputs[0].destination
    version, argument = _read(session, out + "/version.txt").split()
    assert version.startswith("1.2.") and argument == "hello"  # the 1.2-1 environment


def test_framework_processor_installs_requirements_from_source_dir(sdk_env: NetworkGuard,
                                                                     tmp_path: Path):
    from sagemaker.processing import FrameworkProcessor, ProcessingOutput
    from sagemaker.sklearn import SKLearn

    session = _session()
    source = tmp_path / "src"
    source.mkdir()
    (source / "requirements.txt").write_text("tomli-w==1.0.0\n")
    (source / "helpers.py").write_text("GREETING = 'from a helper module'\n")
    (source / "process.py").write_text(textwrap.dedent("""
        import tomli_w
        from helpers import GREETING
        with open("/opt/ml/processing/out/result.toml", "w") as f:
            f.write(tomli_w.dumps({"greeting": GREETING}))
    """))
    processor = FrameworkProcessor(estimator_cls=SKLearn, framework_version="1.2-1",
                                   role=ROLE, instance_type="ml.m5.large", instance_count=1,
                                   sagemaker_session=session)
    with fast_polling(factor=100):
        processor.run(code="process.py", source_dir=str(source),
                      outputs=[ProcessingOutput(source="/opt/ml/processing/out")],
                      wait=True, logs=False)
    job = processor.latest_job.describe()
    assert job["ProcessingJobStatus"] == "Completed", job.get("FailureReason")
    assert job["AppSpecification"]["ContainerEntrypoint"] == [
        "/bin/bash", "/opt/ml/processing/input/entrypoint/runproc.sh"]
    out = processor.latest_job.outputs[0].destination
    assert _read(session, out + "/result.toml") == 'greeting = "from a helper module"\n'
