"""AWS managed policies SageMaker users attach, shipped as documents.

They follow AWS's published documents, reduced to the services opensage serves (sagemaker,
sagemaker-runtime, s3, iam, sts, logs, cloudwatch, application-autoscaling): statements about
ECR, EC2, Glue, Lambda, KMS, Cognito, marketplace and the like are left out, and so are the
Studio domain/user-profile/app/space statements. What is kept keeps AWS's Sids, actions,
resources and conditions.
"""

from __future__ import annotations

from typing import Any

ARN_PREFIX = "arn:aws:iam::aws:policy/"
_SAGEMAKER_BUCKETS = ["arn:aws:s3:::*SageMaker*", "arn:aws:s3:::*Sagemaker*",
                      "arn:aws:s3:::*sagemaker*"]

MANAGED: dict[str, dict[str, Any]] = {
    "AmazonSageMakerFullAccess": {"Version": "2012-10-17", "Statement": [
        {"Sid": "AllowAllNonAdminSageMakerActions", "Effect": "Allow",
         "Action": ["sagemaker:*", "sagemaker-geospatial:*"],
         "NotResource": ["arn:aws:sagemaker:*:*:domain/*", "arn:aws:sagemaker:*:*:user-profile/*",
                         "arn:aws:sagemaker:*:*:app/*", "arn:aws:sagemaker:*:*:space/*",
                         "arn:aws:sagemaker:*:*:partner-app/*",
                         "arn:aws:sagemaker:*:*:flow-definition/*"]},
        {"Sid": "AllowAWSServiceActions", "Effect": "Allow", "Action": [
            "application-autoscaling:DeleteScalingPolicy",
            "application-autoscaling:DeleteScheduledAction",
            "application-autoscaling:DeregisterScalableTarget",
            "application-autoscaling:DescribeScalableTargets",
            "application-autoscaling:DescribeScalingActivities",
            "application-autoscaling:DescribeScalingPolicies",
            "application-autoscaling:DescribeScheduledActions",
            "application-autoscaling:PutScalingPolicy",
            "application-autoscaling:PutScheduledAction",
            "application-autoscaling:RegisterScalableTarget",
            "cloudwatch:DeleteAlarms", "cloudwatch:DescribeAlarms",
            "cloudwatch:GetMetricData", "cloudwatch:GetMetricStatistics",
            "cloudwatch:ListMetrics", "cloudwatch:PutMetricAlarm", "cloudwatch:PutMetricData",
            "iam:ListRoles", "logs:CreateLogDelivery", "logs:CreateLogGroup",
            "logs:CreateLogStream", "logs:DeleteLogDelivery", "logs:DescribeLogGroups",
            "logs:DescribeLogStreams", "logs:GetLogDelivery", "logs:GetLogEvents",
            "logs:ListLogDeliveries", "logs:PutLogEvents", "logs:PutResourcePolicy",
            "logs:UpdateLogDelivery"], "Resource": "*"},
        {"Sid": "AllowS3ObjectActions", "Effect": "Allow",
         "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject",
                    "s3:AbortMultipartUpload"],
         "Resource": [b + "/*" for b in _SAGEMAKER_BUCKETS]},
        {"Sid": "AllowS3GetObjectWithSageMakerExistingObjectTag", "Effect": "Allow",
         "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::*"],
         "Condition": {"StringEqualsIgnoreCase": {"s3:ExistingObjectTag/SageMaker": "true"}}},
        {"Sid": "AllowS3BucketActions", "Effect": "Allow",
         "Action": ["s3:CreateBucket", "s3:GetBucketLocation", "s3:ListBucket",
                    "s3:ListAllMyBuckets", "s3:GetBucketCors", "s3:PutBucketCors"],
         "Resource": "*"},
        {"Sid": "AllowS3BucketACL", "Effect": "Allow",
         "Action": ["s3:GetBucketAcl", "s3:PutObjectAcl"], "Resource": _SAGEMAKER_BUCKETS},
        {"Sid": "AllowPassRoleForSageMakerRoles", "Effect": "Allow", "Action": ["iam:PassRole"],
         "Resource": "arn:aws:iam::*:role/*AmazonSageMaker*",
         "Condition": {"StringEquals": {"iam:PassedToService": [
             "glue.amazonaws.com", "robomaker.amazonaws.com", "states.amazonaws.com"]}}},
        {"Sid": "AllowPassRoleToSageMaker", "Effect": "Allow", "Action": ["iam:PassRole"],
         "Resource": "arn:aws:iam::*:role/*",
         "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}},
    ]},
    "AmazonSageMakerReadOnly": {"Version": "2012-10-17", "Statement": [
        {"Sid": "AmazonSageMakerDescribeReadOnlyAccess", "Effect": "Allow", "Action": [
            "sagemaker:Describe*", "sagemaker:GetSearchSuggestions",
            "sagemaker:BatchDescribeModelPackage", "sagemaker:GetModelPackageGroupPolicy",
            "sagemaker:GetLineageGroupPolicy", "sagemaker:BatchGetMetrics",
            "sagemaker:BatchGetRecord", "sagemaker:GetRecord", "sagemaker:QueryLineage",
            "sagemaker:Search", "sagemaker:GetScalingConfigurationRecommendation"],
         "Resource": "*"},
        {"Sid": "AmazonSageMakerListOnlyAccess", "Effect": "Allow",
         "Action": ["sagemaker:List*"], "Resource": "*"},
        {"Sid": "AmazonSageMakerUIandMetricsOnlyAccess", "Effect": "Allow", "Action": [
            "application-autoscaling:DescribeScalableTargets",
            "application-autoscaling:DescribeScalingActivities",
            "application-autoscaling:DescribeScalingPolicies",
            "application-autoscaling:DescribeScheduledActions",
            "cloudwatch:DescribeAlarms"], "Resource": "*"},
    ]},
    "AmazonS3FullAccess": {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:*", "s3-object-lambda:*"], "Resource": "*"}]},
    "AmazonS3ReadOnlyAccess": {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:Get*", "s3:List*", "s3:Describe*",
                                       "s3-object-lambda:Get*", "s3-object-lambda:List*"],
         "Resource": "*"}]},
}
