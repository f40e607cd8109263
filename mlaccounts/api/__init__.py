"""The REST API of api-contract.md: thin DRF views over accounts.selectors and accounts.services."""
