# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
DATA_DIR ?= ./data
STAGE ?= dev
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: run test bench cost backfill mutation proto package publish policies clean

# Python 3.11 to 3.13: every dependency installs from wheels there (cramjam 2.12.1, duckdb 2.0
# and google-re2 have none for 3.10 or older; numpy 2.2.6 and cramjam 2.12.1 none for 3.14).
$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 13))' 2>/dev/null || { \
	  echo "error: Python 3.11, 3.12 or 3.13 is needed; '$(PYTHON)' is $$($(PYTHON) --version 2>&1)." \
	    "Name one, e.g. make run PYTHON=python3.12" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Stamp files: reinstall only when the requirement files change.
$(VENV)/.local: requirements.txt requirements-local.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-local.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-local.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.local $@

## run: serve the app on the embedded store (localserver.py: Chalice's local server with body
## limits, chunked bodies, a 1024 backlog and idle timeouts; stage "local", or STAGE=dev...).
# It never reloads: restart `make run` after editing code. IDLE_TIMEOUT_SECONDS closes
# connections that stay silent that long.
IDLE_TIMEOUT_SECONDS ?= 60
RUN_STAGE := $(if $(filter command line environment,$(origin STAGE)),$(STAGE),local)
run: $(VENV)/.local
	DATA_DIR=$(DATA_DIR) $(BIN)/python -m localserver --stage $(RUN_STAGE) --host 127.0.0.1 \
		--port $(PORT) --idle-timeout $(IDLE_TIMEOUT_SECONDS)

# The SAM CLI in its own environment (requirements-sam.txt says why).
SAM_VENV ?= .venv-sam
$(SAM_VENV)/.installed: requirements-sam.txt | $(BIN)/python
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet -r requirements-sam.txt
	touch $@

## test: the whole suite (needs the `prometheus` binary for the end-to-end tests).
test: $(VENV)/.dev $(SAM_VENV)/.installed
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

## bench: write/read throughput against a baseline measured in the same run.
bench: $(VENV)/.dev
	$(BIN)/python -m bench.run

## backfill: copy a Prometheus's history into the connector: FROM=<source Prometheus URL>
## TO=<connector URL> START=<time> END=<time> (Unix seconds or RFC 3339). Optional: MATCH=<selector>,
## TO_USER= and TO_PASSWORD_FILE= (basic auth: IAM keys on the Timestream stages), RATE=<samples/s>,
## SHARDS=4, SLICE=2h, DRY_RUN=1 (count and price, send nothing), CHECKPOINT_DIR=.backfill,
## TIMESTREAM_TABLE=DATABASE.TABLE (or none), IGNORE_RETENTION=1. See docs/backfill.md.
backfill: $(VENV)/.local
	@test -n "$(FROM)" -a -n "$(TO)" -a -n "$(START)" -a -n "$(END)" || { echo "usage: make backfill FROM=http://prometheus:9090 TO=http://127.0.0.1:8000 START=2026-11-01T00:00:00Z END=2026-12-01T00:00:00Z [MATCH='{job=\"node\"}'] [DRY_RUN=1]" >&2; exit 2; }
	$(BIN)/python -m backfill.cli --from "$$FROM" --to "$$TO" --start "$$START" --end "$$END" \
		--match "$$MATCH" --to-user "$$TO_USER" --to-password-file "$$TO_PASSWORD_FILE" \
		$(if $(RATE),--rate $(RATE)) $(if $(SHARDS),--shards $(SHARDS)) $(if $(SLICE),--slice $(SLICE)) \
		$(if $(CHECKPOINT_DIR),--checkpoint-dir "$$CHECKPOINT_DIR") $(if $(TIMESTREAM_TABLE),--timestream-table "$$TIMESTREAM_TABLE") \
		$(if $(filter-out 0,$(DRY_RUN)),--dry-run) $(if $(filter-out 0,$(IGNORE_RETENTION)),--ignore-retention)

## mutation: mutation testing of the core modules (slow; MODULES=... for a subset,
## SAMPLE=N to run only N mutants per module).
mutation: $(VENV)/.dev
	$(BIN)/python -m mutation.run $(if $(SAMPLE),--sample $(SAMPLE)) $(MODULES)

## cost: Timestream write and query cost of your traffic. Listen for a minute (point Prometheus's
## remote_write at http://127.0.0.1:$(COST_PORT)/write, its remote_read at .../read), or give
## captured bodies: COST_PAYLOADS="write1 write2 ..." and/or COST_READ_PAYLOADS="read1 ...".
## COST_TCU_HOUR_USD: your region's price of a TCU-hour (else an example price is used).
COST_PORT ?= 9201
COST_SECONDS ?= 60
cost: $(VENV)/.dev
	$(BIN)/python -m bench.cost --seconds $(COST_SECONDS) \
		$(if $(COST_PAYLOADS)$(COST_READ_PAYLOADS),$(COST_PAYLOADS) $(if $(COST_READ_PAYLOADS),--reads $(COST_READ_PAYLOADS)),--listen $(COST_PORT)) \
		$(if $(COST_TCU_HOUR_USD),--tcu-hour-usd $(COST_TCU_HOUR_USD))

## proto: regenerate chalicelib/protocol/prompb/*_pb2.py from the .proto files.
proto: $(VENV)/.dev
	$(BIN)/python -m grpc_tools.protoc -I. --python_out=. --pyi_out=. \
		chalicelib/protocol/prompb/types.proto chalicelib/protocol/prompb/remote.proto chalicelib/protocol/prompb/fastpath.proto \
		chalicelib/protocol/prompb/write_v2.proto tests/support/exposition/metrics.proto

clean:
	rm -rf $(VENV) $(SAM_VENV) out .pytest_cache

## package: `chalice package` for STAGE into out/STAGE (sam.yaml + deployment.zip).
package: $(VENV)/.dev
	$(BIN)/python -m deploy.package --stage $(STAGE)

## publish: package STAGE (default prod) and publish it to the Serverless Application Repository
## in REGION, uploading the code, LICENSE and README to BUCKET (which SAR must be allowed to read:
## see the README). SOURCE_CODE_URL: the public repository (default: the origin remote).
SAM ?= $(SAM_VENV)/bin/sam
PUBLISH_STAGE := $(if $(filter command line environment,$(origin STAGE)),$(STAGE),prod)
VERSION := $(shell sed -n 's/^VERSION = "\(.*\)"$$/\1/p' chalicelib/version.py)
publish: $(VENV)/.dev $(SAM_VENV)/.installed
	@test -n "$(BUCKET)" -a -n "$(REGION)" || { echo "usage: make publish BUCKET=my-sar-bucket REGION=us-east-1 [STAGE=prod] [SOURCE_CODE_URL=https://...]"; exit 2; }
	$(BIN)/python -m deploy.package --stage $(PUBLISH_STAGE)
	$(BIN)/python -m deploy.sar check out/$(PUBLISH_STAGE)/sam.yaml
	cd out/$(PUBLISH_STAGE) && $(SAM) package --template-file sam.yaml --s3-bucket $(BUCKET) \
		--region $(REGION) --output-template-file packaged.yaml
	$(SAM) publish --template out/$(PUBLISH_STAGE)/packaged.yaml --region $(REGION)
	@echo "published version $(VERSION) of out/$(PUBLISH_STAGE)/packaged.yaml in $(REGION)"

## policies: IAM policies for STAGE, ACCOUNT and REGION into out/policies, and the execution
## policy into .chalice/policy-STAGE.json (what chalice deploy attaches). STACK_NAME: the
## `sam deploy --stack-name` the deployment policy covers (default PrometheusTimestreamConnector).
## VPC=1: the deployer may also use the template's VPC parameters (VpcConfig, Timestream endpoints).
## CREATE_TABLE=1: the deployer may also use the template's parameters that create the database, table and rejected-data bucket.
policies: $(VENV)/.dev
	@test -n "$(ACCOUNT)" -a -n "$(REGION)" || { echo "usage: make policies STAGE=dev ACCOUNT=123456789012 REGION=us-east-1 [STACK_NAME=...] [VPC=1] [CREATE_TABLE=1]"; exit 2; }
	$(BIN)/python -m deploy.policies --stage $(STAGE) --account $(ACCOUNT) --region $(REGION) \
		$(if $(SECRET_ARN),--secret-arn $(SECRET_ARN)) $(if $(STACK_NAME),--stack-name $(STACK_NAME)) \
		$(if $(CHALICE_DIR),--chalice-dir $(CHALICE_DIR)) $(if $(VPC),--vpc) $(if $(CREATE_TABLE),--create-table)
