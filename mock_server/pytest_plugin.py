"""pytest plugin: wavespeed_mock / wavespeed_server fixtures (being written)."""
