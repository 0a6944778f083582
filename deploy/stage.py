"""Reads a stage of .chalice/config.json: the one source of the deployment settings."""
import json
import os
from typing import NamedTuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(ROOT, ".chalice", "config.json")


class Stage(NamedTuple):
    """What the templates and policies need to know about one stage."""

    name: str
    app_name: str
    api_gateway_stage: str
    database: str
    table: str
    log_level: str
    memory_size: int
    timeout_seconds: int
    policy_file: str
    backend: str = "timestream"  # or "influxdb" (Timestream for InfluxDB: see deploy/influxdb.py)
    auth_mode: str = "basic"  # AUTH_MODE (chalicelib/auth.py): the stage's own, without SigV4

    @property
    def function_name(self) -> str:
        """The Lambda function `chalice deploy` creates."""
        return f"{self.app_name}-{self.name}"


def load_stage(name: str, config_path: str = CONFIG) -> Stage:
    """The named stage; ValueError if it is missing or uses neither Timestream backend."""
    with open(config_path) as handle:
        config = json.load(handle)
    stages = config.get("stages", {})
    if name not in stages:
        raise ValueError(f"no stage {name!r} in {config_path}: choose one of {sorted(stages)}")
    stage = stages[name]
    env = {**config.get("environment_variables", {}), **stage.get("environment_variables", {})}
    backend = env.get("STORAGE_BACKEND")
    if backend not in ("timestream", "influxdb"):
        raise ValueError(f"stage {name!r} does not use Timestream (for LiveAnalytics or for "
                         "InfluxDB): nothing to deploy")
    return Stage(
        name=name,
        app_name=config["app_name"],
        api_gateway_stage=stage.get("api_gateway_stage", config.get("api_gateway_stage", "api")),
        database=env["DEFAULT_DATABASE" if backend == "timestream" else "INFLUXDB_DATABASE"],
        table=env.get("DEFAULT_TABLE", ""),
        log_level=env.get("LOG_LEVEL", "info"),
        memory_size=int(stage.get("lambda_memory_size", config.get("lambda_memory_size", 128))),
        timeout_seconds=int(stage.get("lambda_timeout", config.get("lambda_timeout", 60))),
        policy_file=stage.get("iam_policy_file", "policy-%s.json" % name),
        backend=backend,
        auth_mode=env.get("AUTH_MODE", "role" if backend == "influxdb" else "basic"),
    )
