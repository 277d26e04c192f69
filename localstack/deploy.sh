#!/usr/bin/env bash
# Builds template.yaml with `sam build` and deploys it, unchanged, with `sam deploy` to the
# LocalStack-compatible endpoint at AWS_ENDPOINT_URL: the LocalStack of compose.yaml (start it
# first: `docker compose -f localstack/compose.yaml up -d`), or MiniStack (`cargo xtask deploy
# --local` starts one and runs this script). Prints `ready: the bookstore API at URL` at the end.
#
# Environment, all optional:
#   AWS_ENDPOINT_URL        the emulator (http://localhost:4566)
#   STACK_NAME              the CloudFormation stack (bookstore)
#   BOOKS_DB_URL            the books database's nodes, as the functions reach them (compose.yaml's)
#   FUNCTIONS_ENDPOINT_URL  where the functions reach the emulator (the template's
#                           EmulatorEndpointUrl); empty leaves it to the emulator, which tells its
#                           functions (LocalStack and MiniStack set AWS_ENDPOINT_URL for them)
#   BUILD_DIR               sam build's output (.aws-sam/build)
#   SAM, AWS                the SAM CLI and the AWS CLI (the project's pinned ones, through
#                           `cargo xtask tool`, which creates their venv when it is missing)
set -euo pipefail
cd "$(dirname "$0")/.."

export AWS_ENDPOINT_URL=${AWS_ENDPOINT_URL:-http://localhost:4566}
export AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-us-east-1}
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-test}
export AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-test}
stack=${STACK_NAME:-bookstore}
# On compose.yaml's network the nodes have these names.
books_db_url=${BOOKS_DB_URL:-http://raft-1:7001,http://raft-2:7002,http://raft-3:7003}
build_dir=${BUILD_DIR:-.aws-sam/build}
sam=${SAM:-cargo xtask tool sam}
aws=${AWS:-cargo xtask tool aws}

parameters=("BooksDbUrl=$books_db_url")
if [ -n "${FUNCTIONS_ENDPOINT_URL:-}" ]; then
  parameters+=("EmulatorEndpointUrl=$FUNCTIONS_ENDPOINT_URL")
fi

$sam build --build-in-source --template template.yaml --build-dir "$build_dir"
$sam deploy \
  --template-file "$build_dir/template.yaml" \
  --stack-name "$stack" \
  --resolve-s3 \
  --capabilities CAPABILITY_IAM \
  --no-confirm-changeset \
  --no-fail-on-empty-changeset \
  --no-progressbar \
  --parameter-overrides "${parameters[@]}"

# The template's ApiUrl is AWS's, https://{id}.execute-api.{region}.amazonaws.com/{stage}; the
# emulator serves the stage at its path-style URL.
api_url=$($aws cloudformation describe-stacks --stack-name "$stack" \
  --query "Stacks[0].Outputs[?OutputKey=='ApiUrl'].OutputValue" --output text)
api_id=${api_url#https://}
api_id=${api_id%%.execute-api.*}
stage=${api_url##*/}
if [ -z "$api_id" ] || [ "$api_id" = "$api_url" ] || [ -z "$stage" ]; then
  echo "deploy.sh: the stack's ApiUrl output is '$api_url', not an API Gateway URL" >&2
  exit 1
fi
echo "ready: the bookstore API at $AWS_ENDPOINT_URL/restapis/$api_id/$stage/_user_request_"
