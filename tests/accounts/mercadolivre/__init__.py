"""Tests of the ML client (accounts/mercadolivre), with ML mocked at the HTTP boundary."""
