"""UpdateEndpointWeightsAndCapacities and application-autoscaling through boto3: a
target-tracking policy scales a real endpoint variant out under load and back in."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError

from tests.integration.test_endpoints import FAST, _services, csv_rows, deploy, make_model

RESOURCE = "endpoint/scaled/variant/AllTraffic"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"


def _variant(sm) -> dict:
    return sm.describe_endpoint(EndpointName="scaled")["ProductionVariants"][0]


def test_weights_capacities_and_target_tracking_scale_out_and_in(sm, s3, client, server):
    aas = client("application-autoscaling")
    artifact, _, rows = make_model()
    deploy(sm, s3, "scaled", artifact)
    sm.create_endpoint(EndpointName="scaled", EndpointConfigName="scaled")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="scaled", WaiterConfig=FAST)

    # UpdateEndpointWeightsAndCapacities: Updating, then InService with the new numbers
    with pytest.raises(ClientError) as bad:
        sm.update_endpoint_weights_and_capacities(EndpointName="scaled", DesiredWeightsAndCapacities=[
            {"VariantName": "nope", "DesiredInstanceCount": 2}])
    assert bad.value.response["Error"]["Code"] == "ValidationException"
    sm.update_endpoint_weights_and_capacities(EndpointName="scaled", DesiredWeightsAndCapacities=[
        {"VariantName": "AllTraffic", "DesiredWeight": 0.5, "DesiredInstanceCount": 2}])
    during = sm.describe_endpoint(EndpointName="scaled")
    if during["EndpointStatus"] == "Updating":
        assert during["ProductionVariants"][0]["DesiredInstanceCount"] == 2
    sm.get_waiter("endpoint_in_service").wait(EndpointName="scaled", WaiterConfig=FAST)
    v = _variant(sm)
    assert (v["CurrentWeight"], v["DesiredWeight"]) == (0.5, 0.5)
    assert (v["CurrentInstanceCount"], v["DesiredInstanceCount"]) == (2, 2)
    runtime = client("sagemaker-runtime")
    for _ in range(4):  # both instances serve
        runtime.invoke_endpoint(EndpointName="scaled", ContentType="text/csv",
                                Body=csv_rows(rows))

    # errors as AWS answers them
    with pytest.raises(ClientError) as missing:
        aas.register_scalable_target(ServiceNamespace="sagemaker", ScalableDimension=DIMENSION,
                                     ResourceId="endpoint/nope/variant/AllTraffic",
                                     MinCapacity=1, MaxCapacity=3)
    assert missing.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(ClientError) as no_target:
        aas.put_scaling_policy(PolicyName="p", ServiceNamespace="sagemaker",
                               ResourceId=RESOURCE, ScalableDimension=DIMENSION,
                               PolicyType="TargetTrackingScaling",
                               TargetTrackingScalingPolicyConfiguration={"TargetValue": 5.0,
                                   "PredefinedMetricSpecification": {
                                       "PredefinedMetricType":
                                           "SageMakerVariantInvocationsPerInstance"}})
    assert no_target.value.response["Error"]["Code"] == "ObjectNotFoundException"

    scaler = _services(server).autoscaling
    scaler.set_interval(0.3, window=2.0)
    try:
        arn = aas.register_scalable_target(
            ServiceNamespace="sagemaker", ResourceId=RESOURCE, ScalableDimension=DIMENSION,
            MinCapacity=1, MaxCapacity=3)["ScalableTargetARN"]
        [target] = aas.describe_scalable_targets(ServiceNamespace="sagemaker",
                                                 ResourceIds=[RESOURCE])["ScalableTargets"]
        assert (target["MinCapacity"], target["MaxCapacity"], target["ScalableTargetARN"]) == (
            1, 3, arn)
        policy = aas.put_scaling_policy(
            PolicyName="invocations", ServiceNamespace="sagemaker", ResourceId=RESOURCE,
            ScalableDimension=DIMENSION, PolicyType="TargetTrackingScaling",
            TargetTrackingScalingPolicyConfiguration={
                "TargetValue": 5.0, "ScaleOutCooldown": 0, "ScaleInCooldown": 1,
                "PredefinedMetricSpecification": {
                    "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}})
        assert policy["PolicyARN"].startswith("arn:aws:autoscaling:")
        [described] = aas.describe_scaling_policies(ServiceNamespace="sagemaker",
                                                    ResourceId=RESOURCE)["ScalingPolicies"]
        assert described["PolicyName"] == "invocations"
        assert described["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == 5.0

        # load: scales out to the maximum
        deadline = time.monotonic() + 30
        while _variant(sm)["CurrentInstanceCount"] < 3:
            assert time.monotonic() < deadline, _variant(sm)
            for _ in range(20):
                runtime.invoke_endpoint(EndpointName="scaled", ContentType="text/csv",
                                        Body=csv_rows(rows))
        assert _variant(sm)["DesiredInstanceCount"] == 3
        # no traffic: back to the minimum
        deadline = time.monotonic() + 30
        while _variant(sm)["CurrentInstanceCount"] > 1:
            assert time.monotonic() < deadline, _variant(sm)
            time.sleep(0.2)
        sm.get_waiter("endpoint_in_service").wait(EndpointName="scaled", WaiterConfig=FAST)
        activities = aas.describe_scaling_activities(ServiceNamespace="sagemaker",
                                                     ResourceId=RESOURCE)["ScalingActivities"]
        assert activities and all(a["StatusCode"] == "Successful" for a in activities)
        assert activities[0]["Description"] == "Setting desired instance count to 1."
        assert any(a["Description"] == "Setting desired instance count to 3." for a in activities)
        assert all(a["EndTime"] >= a["StartTime"] and a["Cause"] for a in activities)
        answer = runtime.invoke_endpoint(EndpointName="scaled", ContentType="text/csv",
                                         Body=csv_rows(rows))
        assert answer["InvokedProductionVariant"] == "AllTraffic"

        aas.delete_scaling_policy(PolicyName="invocations", ServiceNamespace="sagemaker",
                                  ResourceId=RESOURCE, ScalableDimension=DIMENSION)
        assert aas.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"] == []
        aas.deregister_scalable_target(ServiceNamespace="sagemaker", ResourceId=RESOURCE,
                                       ScalableDimension=DIMENSION)
        with pytest.raises(ClientError) as gone:
            aas.deregister_scalable_target(ServiceNamespace="sagemaker", ResourceId=RESOURCE,
                                           ScalableDimension=DIMENSION)
        assert gone.value.response["Error"]["Code"] == "ObjectNotFoundException"
    finally:
        scaler.set_interval(5.0, window=60.0)
    sm.delete_endpoint(EndpointName="scaled")
