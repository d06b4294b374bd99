"""One exception tree under CertledgerVerifyError."""

from verifier import errors


def test_hierarchy():
    root = errors.CertledgerVerifyError
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), root)
    assert issubclass(errors.NumberOutOfRange, errors.InvalidDocument)
    assert issubclass(errors.RedactionError, errors.InvalidDocument)
    for name in ("BundleSignatureError", "UnsupportedBundle", "MalformedBundle"):
        assert issubclass(getattr(errors, name), errors.InvalidBundle)
    assert issubclass(errors.InvalidDocument, ValueError)
    assert not issubclass(errors.InvalidBundle, errors.InvalidDocument)
