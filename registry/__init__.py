"""certledger registry service: issuers issue, revoke and suspend; regulators trace data flows."""
