#!/usr/bin/env bash
# Deploys template.yaml to the LocalStack of compose.yaml (start it first:
# `docker compose -f localstack/compose.yaml up -d`). Uses the project's pinned SAM CLI from .venv
# (created by `cargo xtask tool sam --version` if missing). Prints the API's URL at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

export AWS_ENDPOINT_URL=${AWS_ENDPOINT_URL:-http://localhost:4566}
export AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-us-east-1}
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-test}
export AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-test}
stack=${STACK_NAME:-bookstore}
# The functions run in containers on the compose network, where the nodes have these names.
books_db_url=${BOOKS_DB_URL:-http://raft-1:7001,http://raft-2:7002,http://raft-3:7003}

cargo xtask tool sam build --build-in-source --template template.yaml
cargo xtask tool sam deploy \
  --stack-name "$stack" \
  --resolve-s3 \
  --capabilities CAPABILITY_IAM \
  --no-confirm-changeset \
  --no-fail-on-empty-changeset \
  --parameter-overrides "BooksDbUrl=$books_db_url"

api_id=$(cargo xtask tool aws apigateway get-rest-apis --query 'items[0].id' --output text)
echo "ready: $AWS_ENDPOINT_URL/restapis/$api_id/Prod/_user_request_"
