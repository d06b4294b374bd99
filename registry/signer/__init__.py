"""``certledger signer``: the signing service an issuer runs with its own keys (docs/OPERATIONS.md).

The registry never holds these keys: it sends a batch's leaves and gets back the root's signature
and the signed anchor transaction, and sends status transactions to sign. See
:mod:`registry.signer.core` for what is checked, :mod:`registry.signer.server` for the API and
:mod:`registry.signer.log` for the log.
"""
