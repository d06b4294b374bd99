"""Re-export of registry.samples for the tests."""

from registry.samples import business_licence_record, data_asset_record, make_uscc  # noqa: F401
