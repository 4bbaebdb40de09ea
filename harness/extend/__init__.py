"""The plugin system: the hooks a plugin implements (hookspecs), the contracts of each kind and its
capabilities (types, contracts), the registry that loads, checks and builds plugins (registry),
and the plugin names a run falls back to (defaults). Plugins import harness.api, never this."""
