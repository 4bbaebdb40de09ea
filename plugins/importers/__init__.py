"""Built-in checkpoint importers (``register_importers``): foreign weights -> harness bundles."""
