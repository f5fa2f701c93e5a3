"""Prepare a moto server for the AWS credential tests: an IAM user with an
access key and a role trusting GitHub's OIDC provider, each allowed
ecr:GetAuthorizationToken. Prints one JSON object: the key, the role ARN, and
the ECR password moto hands out (fetched with boto3, which signs as the AWS
SDKs do). Five IAM calls plus the ECR one: the test server's
INITIAL_NO_AUTH_ACTION_COUNT lets exactly the IAM calls through unsigned.

Usage: setup.py ENDPOINT
"""
import json
import sys

import boto3

endpoint = sys.argv[1]
bootstrap = dict(endpoint_url=endpoint, region_name="us-east-1",
                 aws_access_key_id="AKIAIOSFODNN7EXAMPLE", aws_secret_access_key="bootstrap")
iam = boto3.client("iam", **bootstrap)
allow = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow",
    "Action": ["ecr:GetAuthorizationToken", "ecr-public:GetAuthorizationToken"],
    "Resource": "*"}]})
trust = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow",
    "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"},
    "Action": "sts:AssumeRoleWithWebIdentity"}]})
iam.create_user(UserName="promoter")
key = iam.create_access_key(UserName="promoter")["AccessKey"]
iam.put_user_policy(UserName="promoter", PolicyName="ecr", PolicyDocument=allow)
role = iam.create_role(RoleName="promoter", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
iam.put_role_policy(RoleName="promoter", PolicyName="ecr", PolicyDocument=allow)
ecr = boto3.client("ecr", endpoint_url=endpoint, region_name="us-east-1",
                   aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])
token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
import base64
user, password = base64.b64decode(token).decode().split(":", 1)
assert user == "AWS", user
print(json.dumps({"access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"],
                  "role_arn": role, "password": password}))
