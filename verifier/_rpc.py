"""Placeholder; replaced below."""
class RpcTrust:  # pragma: no cover
    pass
