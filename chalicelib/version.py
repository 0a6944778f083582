"""The connector's version: the one place it is written.

The SAM template's ``SemanticVersion`` and ``CONNECTOR_VERSION`` (deploy/package.py),
``make publish`` and the app's ``connector_build_info`` metric all read it.
"""
VERSION = "1.0.0"
