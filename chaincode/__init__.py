"""Caravan's contracts: pure, deterministic state transitions over a Stub (docs/chaincode.md).

>>> from chaincode.router import invoke
>>> response = invoke(stub, "GetAeo", ['{"aeo_id": "KZ-AEO-2026-000123"}'])

Imports only the standard library and ``cryptography``: it runs alone in a chaincode
container and, unchanged, inside the embedded ledger.
"""
