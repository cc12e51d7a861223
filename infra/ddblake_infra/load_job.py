"""The Glue full-load job: the table's current items into the lake's raw log, once, before apply.

In one account the job's role exports the table into ``exports/<table>/`` itself (both sources
read an export, so the role has no Scan); across accounts it assumes the producer's read role
(``ddblake_infra.read_role``). Job runs are encrypted by a Glue security configuration and a failed
run notifies the alarm topic.
"""

from __future__ import annotations

from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from ddblake_infra.assets import glue_script, stage_glue_library
from ddblake_infra.lake import EXPORT_OBJECT_ACTIONS, LAKE_READ_WRITE, LakeStorage, lake_key_statement
from ddblake_infra.monitoring import Operations
from ddblake_infra.nag import literal, literal_suffix, suppress, suppress_object_prefixes
from ddblake_infra.read_role import table_read_statements
from ddblake_infra.settings import DeployConfig


def load_job(
    scope: Construct,
    *,
    cfg: DeployConfig,
    lake: LakeStorage,
    ops: Operations,
    table: dynamodb.ITable | None,
    table_key: kms.IKey | None,
) -> tuple[iam.Role, str]:
    """The job, its role and security configuration, and the failed-run notification, in ``scope``.

    Args:
        table, table_key: the table and its key when they are in this account (single-account);
            ``None`` across accounts, where the job assumes the producer's read role.

    Returns:
        The job's role and the job's name.
    """
    account, region, partition = cfg.consumer_account, cfg.region, cfg.partition
    t = cfg.table.name
    job_name = cfg.name("load_job")
    script = s3_assets.Asset(scope, "LoadScript", path=str(glue_script(cfg.load.script, cfg.path)))
    library = s3_assets.Asset(scope, "LoadLibrary", path=str(stage_glue_library()))  # zipped by CDK
    same_account = table is not None and table_key is not None
    statements = [
        iam.PolicyStatement(
            sid="GlueJobLogs",
            actions=[
                "logs:AssociateKmsKey",
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:PutLogEvents",
            ],
            resources=[f"arn:{partition}:logs:{region}:{account}:log-group:/aws-glue/*"],
        ),
        iam.PolicyStatement(
            sid="ReadJobAssets",
            actions=["s3:GetObject"],
            resources=[
                script.bucket.arn_for_objects(script.s3_object_key),
                library.bucket.arn_for_objects(library.s3_object_key),
            ],
        ),
        iam.PolicyStatement(
            sid="LakeBucket",
            actions=["s3:GetBucketLocation", "s3:ListBucket"],
            resources=[lake.bucket.bucket_arn],
        ),
        iam.PolicyStatement(
            # ddblake.gluejob.job puts raw files and never reads or deletes them
            sid="LakeLoadRows",
            actions=["s3:PutObject"],
            resources=[lake.bucket.arn_for_objects(f"raw/{t}/*")],
        ),
        iam.PolicyStatement(
            # the connector's run record, state/load/<table>/glue-connector.json: read, then written
            sid="LakeLoadState",
            actions=["s3:GetObject", "s3:PutObject"],
            resources=[lake.bucket.arn_for_objects(f"state/load/{t}/*")],
        ),
        iam.PolicyStatement(
            # --TempDir: Glue and Spark write, read back and clean up their temporary files there
            sid="GlueTempDir",
            actions=list(LAKE_READ_WRITE),
            resources=[lake.bucket.arn_for_objects(f"glue-temp/{t}/*")],
        ),
        iam.PolicyStatement(
            sid="LakeExports",
            # One account: DynamoDB exports the table with this role's credentials. Across
            # accounts the producer's read role writes the export; this role only reads it.
            actions=list(EXPORT_OBJECT_ACTIONS) if same_account else ["s3:GetObject"],
            resources=[lake.bucket.arn_for_objects(f"exports/{t}/*")],
        ),
        lake_key_statement(lake.key, region),
        iam.PolicyStatement(
            sid="BookmarkAndLogEncryption",
            actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
            resources=[ops.key.key_arn],
        ),
    ]
    if table is not None and table_key is not None:
        statements += table_read_statements(table, table_key, region, scan=False)
    else:
        statements.append(
            iam.PolicyStatement(
                sid="AssumeProducerReadRole", actions=["sts:AssumeRole"], resources=[cfg.read_role_arn]
            )
        )
    role = iam.Role(
        scope,
        "LoadRole",
        role_name=cfg.name("load_role"),
        description=f"ddblake {t}: Glue full-load job {job_name}",
        assumed_by=iam.ServicePrincipal("glue.amazonaws.com").with_conditions(
            {"StringEquals": {"aws:SourceAccount": account}}
        ),
        inline_policies={"load": iam.PolicyDocument(statements=statements)},
    )
    security = glue.CfnSecurityConfiguration(
        scope,
        "LoadSecurity",
        name=cfg.name("load_security_configuration"),
        encryption_configuration=glue.CfnSecurityConfiguration.EncryptionConfigurationProperty(
            s3_encryptions=[
                glue.CfnSecurityConfiguration.S3EncryptionProperty(
                    s3_encryption_mode="SSE-KMS", kms_key_arn=lake.key.key_arn
                )
            ],
            cloud_watch_encryption=glue.CfnSecurityConfiguration.CloudWatchEncryptionProperty(
                cloud_watch_encryption_mode="SSE-KMS", kms_key_arn=ops.key.key_arn
            ),
            job_bookmarks_encryption=glue.CfnSecurityConfiguration.JobBookmarksEncryptionProperty(
                job_bookmarks_encryption_mode="CSE-KMS", kms_key_arn=ops.key.key_arn
            ),
        ),
    )
    load = cfg.load
    keys = [cfg.table.partition_key.name] + ([cfg.table.sort_key.name] if cfg.table.sort_key else [])
    # The job's parameters as ddblake.gluejob.job reads them (docs/deploy.md); a run
    # can override any of them, e.g. --SOURCE export-files --EXPORT_PATH s3://.../AWSDynamoDB/<id>/.
    arguments = {
        "--job-language": "python",
        "--extra-py-files": library.s3_object_url,  # ddblake.gluejob, which the script imports
        "--TempDir": f"s3://{lake.bucket_name}/glue-temp/{t}/",
        "--enable-continuous-cloudwatch-log": "true",
        "--TABLE": t,
        "--LAKE": f"s3://{lake.bucket_name}",
        "--SOURCE": load.source,
        "--KEYS": ",".join(keys),
        "--TABLE_ARN": cfg.table_arn,
        "--EXPORT_BUCKET": lake.bucket_name,
        "--EXPORT_PREFIX": f"exports/{t}/",
    }
    if cfg.cross_account:
        arguments["--ROLE_ARN"] = cfg.read_role_arn
        arguments["--EXPORT_BUCKET_OWNER"] = cfg.consumer_account
    if load.additional_python_modules:
        arguments["--additional-python-modules"] = ",".join(load.additional_python_modules)
    glue.CfnJob(
        scope,
        "LoadJob",
        name=job_name,
        description=f"ddblake full load of DynamoDB table {t} into s3://{lake.bucket_name}/raw/{t}/",
        role=role.role_arn,
        command=glue.CfnJob.JobCommandProperty(
            name="glueetl", python_version="3", script_location=script.s3_object_url
        ),
        glue_version=load.glue_version,
        worker_type=load.worker_type,
        number_of_workers=load.workers,
        timeout=load.timeout_minutes,
        max_retries=0,
        execution_property=glue.CfnJob.ExecutionPropertyProperty(max_concurrent_runs=1),
        security_configuration=security.ref,
        default_arguments=arguments,
    )
    glue_logs = f"arn:{partition}:logs:{region}:{account}:log-group:/aws-glue/*"
    suppress_object_prefixes(
        role,
        [f"raw/{t}/", f"state/load/{t}/", f"glue-temp/{t}/", f"exports/{t}/"],
        "the load writes load rows to the raw log, keeps its resumable state and Spark's temp files, "
        "and reads the table's exports",
    )
    if same_account:
        suppress(
            role,
            "AwsSolutions-IAM5",
            "DescribeExport takes the export's ARN, which DynamoDB names <table ARN>/export/<id> when "
            "the export starts; the wildcard covers this table's exports only.",
            literal_suffix("/export/*"),
        )
    suppress(
        role,
        "AwsSolutions-IAM5",
        "Glue names its log groups itself under /aws-glue/ (prefixed by the security configuration) and "
        "creates their streams per run; the role can only write and encrypt logs there.",
        literal([glue_logs]),
    )
    ops.notify_on_event(
        "LoadFailed",
        description=f"ddblake {t}: Glue job {job_name} failed, timed out or errored",
        pattern={
            "source": ["aws.glue"],
            "detail-type": ["Glue Job State Change"],
            "detail": {"jobName": [job_name], "state": ["FAILED", "TIMEOUT", "ERROR"]},
        },
    )
    return role, job_name
