"""One exception tree for the chain layer; the CLI prints `str(exc)` as a one-line error."""


class LedgerNodeError(Exception):
    """Root of every error the chain layer raises on purpose."""


class AnvilNotInstalled(LedgerNodeError):
    pass


class PortInUse(LedgerNodeError):
    pass


class NodeStartFailed(LedgerNodeError):
    pass


class RpcUnreachable(LedgerNodeError):
    pass


class ManifestError(LedgerNodeError):
    pass


class WrongChain(ManifestError):
    pass


class InsufficientFunds(LedgerNodeError):
    pass
