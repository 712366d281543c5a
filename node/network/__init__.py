"""Fabric network configuration from the consortium definition, and a local runner.

>>> # consortium = load_consortium(Path("network-config/consortium.yaml"))
>>> # network = generate(consortium, Path("build/network"), passphrase=b"…")
>>> # up(network, fabric_bin=Path("/opt/fabric/bin"))   # local processes on loopback
>>> # down(network)

docs/fabric.md walks through it.
"""

from .consortium import Administration, Consortium, ConsortiumError, load_consortium
from .generate import GeneratedNetwork, GenerateError, generate

__all__ = [
    "Administration",
    "Consortium",
    "ConsortiumError",
    "GenerateError",
    "GeneratedNetwork",
    "generate",
    "load_consortium",
]
