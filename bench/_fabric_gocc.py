"""A trivial Go chaincode next to Caravan's on a network from ``caravan network up``,
for bench/fabric.py's comparison (the binary is the user's: nothing is built here).

>>> # with GoChaincode(network, binaries, Path("/opt/gocc")) as gocc:   # deploy + start
>>> #     gocc.pids                  # {"KZ-CUSTOMS": 12345, …} one server per administration
>>> # (stopped at exit; the definition stays committed, a later run reuses it)

The chaincode is chaincode-as-a-service with Fabric's Go shim (``ChaincodeServer``),
configured by ``CHAINCODE_SERVER_ADDRESS`` and ``CHAINCODE_ID``; it must answer
``put(key, value)`` (PutState + one event) and ``get(key)``. Like Caravan's chaincode,
each administration gets its own server and its own ccaas package (its own
``connection.json`` address), installed on its peers, approved by each organisation and
committed with the channel's default endorsement policy
(``/Channel/Application/Endorsement``, the one Caravan's definition uses), through the
``peer`` CLI acting as each organisation's admin — the same environment ``network up``
uses. Packages, ports and logs live under ``<network>/bench/<name>/``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from chaincode.server.package import ccaas_package, connection_json, package_id
from node.network.consortium import Administration
from node.network.generate import GeneratedNetwork
from node.network.runner import FabricBinaries, LocalNetwork, NetworkRunError

__all__ = ["GoChaincode"]

VERSION = "1.0"
SEQUENCE = 1
_READY_S = 20.0


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _listening(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


class GoChaincode:
    """Deploys (once) and runs (while entered) chaincode ``name`` from binary ``program``."""

    def __init__(
        self,
        network: GeneratedNetwork,
        binaries: FabricBinaries,
        program: Path,
        *,
        name: str = "gocc",
        progress: Callable[[str], None] | None = None,
    ) -> None:
        program = program.expanduser().absolute()
        if not (program.is_file() and os.access(program, os.X_OK)):
            raise NetworkRunError(f"--go-chaincode {program} is not an executable file")
        self.network, self.binaries, self.program, self.name = network, binaries, program, name
        self.runner = LocalNetwork(network, binaries, progress=progress)
        self.dir = network.root / "bench" / name
        self.say = progress or (lambda _m: None)
        self.pids: dict[str, int] = {}
        self._procs: list[subprocess.Popen[bytes]] = []

    # ------------------------------------------------------------------ packages
    def _address(self, admin: Administration) -> tuple[str, int]:
        """This administration's server address: chosen once, kept in its package."""
        conn = self.dir / admin.slug / "connection.json"
        if conn.is_file():
            host, port = json.loads(conn.read_text())["address"].rsplit(":", 1)
            return host, int(port)
        host = admin.chaincode.host
        port = _free_port(host)
        conn.parent.mkdir(parents=True, exist_ok=True)
        conn.write_bytes(connection_json(f"{host}:{port}"))
        return host, port

    def _package(self, admin: Administration) -> tuple[Path, str]:
        """(package file, package id) of this administration's ccaas package."""
        host, port = self._address(admin)
        label = f"{self.name}_{VERSION}"
        pkg = self.dir / admin.slug / f"{self.name}.tar.gz"
        if not pkg.is_file():
            pkg.write_bytes(ccaas_package(label, f"{host}:{port}"))
        return pkg, package_id(label, pkg.read_bytes())

    # ------------------------------------------------------------------ lifecycle
    # ------------------------------------------------------------------ processes
    def _start(self, admin: Administration, package_id: str) -> None:
        host, port = self._address(admin)
        if _listening(host, port):
            raise NetworkRunError(f"port {host}:{port} for {self.name} is in use")
        log = self.dir / admin.slug / "server.log"
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [str(self.program)],
                env={
                    **os.environ,
                    "CHAINCODE_SERVER_ADDRESS": f"{host}:{port}",
                    "CHAINCODE_ID": package_id,
                },
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._procs.append(proc)
        self.pids[admin.msp_id] = proc.pid
        deadline = time.monotonic() + _READY_S
        while not _listening(host, port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise NetworkRunError(f"{self.name} for {admin.msp_id} did not start: see {log}")
            time.sleep(0.1)

    def stop(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        self._procs.clear()
        self.pids.clear()

    def __enter__(self) -> GoChaincode:
        try:
            packages = {}
            for admin in self.network.consortium.administrations:
                packages[admin.msp_id] = self._package(admin)
                self._start(admin, packages[admin.msp_id][1])
            self.runner.deploy_chaincode(self.name, VERSION, SEQUENCE, packages)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
