"""The connector's own metrics: what each request received, stored, rejected and cost."""
