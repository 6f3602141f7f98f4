"""The store's migrations, one numbered revision a release: expand first, contract a release later."""
