#!/usr/bin/env bash
# One JSON-RPC call to the Besu node of the container it runs in (the Besu image has no curl;
# validators 2-4 listen on 127.0.0.1 inside their containers only). Run it through compose:
#
#   docker compose -f docker/compose.yaml exec -T validator2 \
#       bash -s -- qbft_getValidatorsByBlockNumber '["latest"]' < docker/besu-rpc.sh
#
# Prints the JSON response body. Params default to [].
set -euo pipefail
method=${1:?usage: besu-rpc.sh METHOD [JSON-PARAMS]}
params=${2:-[]}
body="{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"${method}\",\"params\":${params}}"
exec 3<>"/dev/tcp/127.0.0.1/${BESU_RPC_PORT:-8545}"
printf 'POST / HTTP/1.0\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s' \
  "${#body}" "$body" >&3
sed '1,/^\r$/d' <&3
echo
