"""Optionally, the Timestream for LiveAnalytics database and table the connector writes to.

Off by default: ``CreateTimestreamDatabase`` and ``CreateTimestreamTable`` are ``false``, and
the stack then creates nothing here, so a database and table made by hand (or by another stack)
stay untouched. When on, they are named ``DefaultDatabase`` and ``DefaultTable`` and kept when
the stack is deleted (``DeletionPolicy: Retain``): the data outlives the connector.

The table's memory and magnetic retention are parameters; with magnetic-store writes (on by
default when the table is created) it reports the late samples it rejects to an S3 bucket, its
``MagneticStoreRejectedDataLocation``: ``RejectedDataBucketName`` if given, else a bucket the stack
creates (encrypted, private, kept on deletion).
"""
import copy
from typing import List

from deploy.stage import Stage

CREATES_DATABASE, CREATES_TABLE = "CreatesTimestreamDatabase", "CreatesTimestreamTable"
MAGNETIC_WRITES, CREATES_BUCKET = "TableTakesMagneticWrites", "CreatesRejectedDataBucket"
DATABASE, TABLE, BUCKET = "TimestreamDatabase", "TimestreamTable", "RejectedDataBucket"
REJECTED_PREFIX = "timestream-rejected/"
NO_VALUE = {"Ref": "AWS::NoValue"}
BUCKET_PATTERN = r"^([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])?$"
KEPT = {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"}
# Linters warn that Timestream for LiveAnalytics takes no new customers (W3697); these stages
# are for the accounts that use it (README). On the table they also check the bucket
# parameter's empty default as a bucket name (W1030), which the table takes only when given.
EXISTING_CUSTOMERS = {"Metadata": {"cfn-lint": {"config": {"ignore_checks": ["W3697"]}}}}
TABLE_LINT = {"Metadata": {"cfn-lint": {"config": {"ignore_checks": ["W3697", "W1030"]}}}}


def _switch(description: str, default: str = "false") -> dict:
    return {"Type": "String", "Default": default, "AllowedValues": ["true", "false"],
            "Description": description}


def parameters() -> dict:
    """Whether to create the database and the table, and the table's settings."""
    return {
        "CreateTimestreamDatabase": _switch(
            "true: the stack creates the database DefaultDatabase (kept when the stack is "
            "deleted); false: it exists already."),
        "CreateTimestreamTable": _switch(
            "true: the stack creates the table DefaultTable (kept when the stack is deleted); "
            "false: it exists already and is left as it is."),
        "MemoryStoreRetentionHours": {
            "Type": "Number", "Default": 24, "MinValue": 1, "MaxValue": 8766,
            "Description": "A created table's memory store retention, in hours."},
        "MagneticStoreRetentionDays": {
            "Type": "Number", "Default": 365, "MinValue": 1, "MaxValue": 73000,
            "Description": "A created table's magnetic store retention, in days."},
        "EnableMagneticStoreWrites": _switch(
            "A created table takes samples older than its memory store retention into its "
            "magnetic store.", default="true"),
        "RejectedDataBucketName": {
            "Type": "String", "Default": "", "AllowedPattern": BUCKET_PATTERN,
            "Description": "An existing S3 bucket for a created table's reports of the late "
                           "samples it rejects; empty: the stack creates one."},
    }


def _true(name: str) -> dict:
    return {"Fn::Equals": [{"Ref": name}, "true"]}


def conditions() -> dict:
    """Which of the database, the table, its magnetic writes and the bucket the stack makes."""
    return {
        CREATES_DATABASE: _true("CreateTimestreamDatabase"),
        CREATES_TABLE: _true("CreateTimestreamTable"),
        MAGNETIC_WRITES: {"Fn::And": [{"Condition": CREATES_TABLE},
                                      _true("EnableMagneticStoreWrites")]},
        CREATES_BUCKET: {"Fn::And": [{"Condition": MAGNETIC_WRITES},
                                     {"Fn::Equals": [{"Ref": "RejectedDataBucketName"}, ""]}]},
    }


def bucket_name() -> dict:
    """The rejected-data bucket: the one given, else the stack's."""
    return {"Fn::If": [CREATES_BUCKET, {"Ref": BUCKET}, {"Ref": "RejectedDataBucketName"}]}


def resources() -> dict:
    """The database, the table and the bucket, each under its condition."""
    database_name = {"Fn::If": [CREATES_DATABASE, {"Ref": DATABASE}, {"Ref": "DefaultDatabase"}]}
    magnetic = {"Fn::If": [MAGNETIC_WRITES, {
        "EnableMagneticStoreWrites": True,
        "MagneticStoreRejectedDataLocation": {"S3Configuration": {
            "BucketName": bucket_name(), "ObjectKeyPrefix": REJECTED_PREFIX,
            "EncryptionOption": "SSE_S3"}}}, {"EnableMagneticStoreWrites": False}]}
    return {
        DATABASE: {"Type": "AWS::Timestream::Database", "Condition": CREATES_DATABASE, **KEPT,
                   **EXISTING_CUSTOMERS,
                   "Properties": {"DatabaseName": {"Ref": "DefaultDatabase"}}},
        TABLE: {"Type": "AWS::Timestream::Table", "Condition": CREATES_TABLE, **KEPT,
                **TABLE_LINT,
                "Properties": {
                    "DatabaseName": database_name, "TableName": {"Ref": "DefaultTable"},
                    "RetentionProperties": {
                        "MemoryStoreRetentionPeriodInHours": {"Ref": "MemoryStoreRetentionHours"},
                        "MagneticStoreRetentionPeriodInDays": {
                            "Ref": "MagneticStoreRetentionDays"}},
                    "MagneticStoreWriteProperties": magnetic}},
        BUCKET: {"Type": "AWS::S3::Bucket", "Condition": CREATES_BUCKET, **KEPT, "Properties": {
            "BucketEncryption": {"ServerSideEncryptionConfiguration": [
                {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]},
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True}}},
    }


def outputs() -> dict:
    """Where a created table reports the late samples it rejects."""
    return {"RejectedDataLocation": {
        "Condition": MAGNETIC_WRITES,
        "Description": "Where the table reports the late samples it rejects.",
        "Value": {"Fn::Sub": ["s3://${Bucket}/" + REJECTED_PREFIX, {"Bucket": bucket_name()}]}}}


def adapt_merge_template(template: dict) -> dict:
    """The Timestream merge template with the optional database, table and bucket."""
    template = copy.deepcopy(template)
    template["Parameters"].update(parameters())
    template.setdefault("Conditions", {}).update(conditions())
    template["Resources"].update(resources())
    template["Outputs"].update(outputs())
    return template


def deployment_statements(stage: Stage, account: str, region: str,
                          stack_name: str) -> List[dict]:
    """What the stack managing them needs besides the stack's list and the database and table
    statements every Timestream stage's deployer has (CloudFormation calls Timestream and S3 as
    the deploying user): updating and tagging the database and table, the stack's rejected-data
    bucket (named after the stack; emptied and removed with `aws s3 rb --force` when cleaning
    up), and writing to the bucket a table reports to, which Timestream checks when the table
    is created."""
    database = f"arn:aws:timestream:{region}:{account}:database/{stage.database}"
    bucket = f"arn:aws:s3:::{stack_name.lower()}-{BUCKET.lower()}-*"
    return [
        {"Sid": "StackManagesTheDatabaseAndTable", "Effect": "Allow",
         "Action": ["timestream:UpdateDatabase", "timestream:UpdateTable",
                    "timestream:ListTagsForResource", "timestream:TagResource",
                    "timestream:UntagResource"],
         "Resource": [database, f"{database}/table/{stage.table}"]},
        {"Sid": "RejectedDataBucket", "Effect": "Allow",
         "Action": ["s3:CreateBucket", "s3:PutEncryptionConfiguration",
                    "s3:PutBucketPublicAccessBlock", "s3:GetBucketAcl", "s3:ListBucket",
                    "s3:DeleteBucket"],
         "Resource": bucket},
        {"Sid": "RejectedDataReports", "Effect": "Allow",
         "Action": ["s3:PutObject", "s3:DeleteObject"],
         "Resource": bucket + "/*"},
    ]
