"""Deployment tooling: the SAM/CloudFormation template and the IAM policies (not shipped to Lambda)."""
