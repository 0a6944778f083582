"""The IAM action behind every Timestream call the connector can make: the one map the
generated policies (deploy/policies.py, the SAM template) are built from, and that the tests
check the code's recorded calls against (tests/system/test_policies.py).

Sources: Service Authorization Reference, "Actions, resources, and condition keys for Amazon
Timestream" (API operation -> action; CancelQuery and DescribeEndpoints take no resource);
Developer Guide, "Allowing SELECT operations" (SELECT needs ``timestream:Select``; the
metadata statements ``DESCRIBE`` and ``SHOW MEASURES`` need ``timestream:DescribeTable`` and
``timestream:ListMeasures`` on the table).
"""
from typing import Dict, Tuple

TABLE = "table"  # the stage's Timestream table
ANY = "*"        # actions that take no resource

#: (client or "sql", operation or statement kind) -> (IAM action, resource)
ACTIONS: Dict[Tuple[str, str], Tuple[str, str]] = {
    ("timestream-write", "WriteRecords"): ("timestream:WriteRecords", TABLE),
    ("timestream-write", "DescribeTable"): ("timestream:DescribeTable", TABLE),
    ("timestream-write", "DescribeEndpoints"): ("timestream:DescribeEndpoints", ANY),
    ("timestream-query", "DescribeEndpoints"): ("timestream:DescribeEndpoints", ANY),
    ("timestream-query", "CancelQuery"): ("timestream:CancelQuery", ANY),
    # Query is authorized by the statement it runs:
    ("sql", "SELECT"): ("timestream:Select", TABLE),
    ("sql", "SHOW MEASURES"): ("timestream:ListMeasures", TABLE),
}


def statement_kind(sql: str) -> str:
    """``SELECT``, ``SHOW MEASURES``, ...: the kind of statement a Query call runs."""
    words = sql.split()
    if words[:2] == ["SHOW", "MEASURES"]:
        return "SHOW MEASURES"
    return words[0].upper() if words else ""


def actions_on(resource: str) -> list:
    """Every IAM action the connector needs on ``resource`` (TABLE or ANY), sorted."""
    return sorted({action for action, on in ACTIONS.values() if on == resource})
