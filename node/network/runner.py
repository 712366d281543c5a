"""``caravan network up|down|status``: the generated network as local processes on loopback.

>>> # network = GeneratedNetwork.open(Path("build/network"))
>>> # runner = LocalNetwork(network, FabricBinaries.find(Path("/opt/fabric/bin")))
>>> # runner.up()        # orderers → osnadmin join → chaincode servers → peers → join →
>>> #                    # install, approve by each organisation, commit
>>> # runner.status()    # [ProcessStatus(name='peer0.kz-customs', pid=…, running=True), …]
>>> # runner.down()      # stop everything; ledgers removed unless keep_data

Every step first asks whether it is already done (a live process, a joined channel, an
installed package, an approval, a committed definition), so ``up`` run twice changes
nothing the second time. Pid files and logs live in ``<network>/run``; each process's
data in its own ``data/`` directory next to its configuration.
"""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from cryptography.hazmat.primitives import serialization

from trust_services.errors import TrustServiceError
from trust_services.pki import OrgPki

from ..errors import NodeError
from ..node import passphrase_env, passphrase_for
from ..proposal import SignedProposal
from .consortium import Administration
from .generate import GeneratedNetwork

__all__ = [
    "BINARIES",
    "FabricBinaries",
    "LocalNetwork",
    "NetworkRunError",
    "ProcessStatus",
    "chaincode_server_command",
]

T = TypeVar("T")

#: the Fabric programs ``up`` needs in ``--fabric-bin``
BINARIES = ("peer", "orderer", "configtxgen", "osnadmin")
_CCAAS_PROGRAMS = ("detect", "build", "release")
_READY_TIMEOUT_S = 60.0
_COMMAND_TIMEOUT_S = 120.0
_STOP_TIMEOUT_S = 15.0


class NetworkRunError(NodeError):
    """The local network cannot be started, inspected or stopped (one line)."""

    code = "NETWORK_RUN_FAILED"
    status = 400


@dataclass(frozen=True)
class FabricBinaries:
    """Fabric 2.5 programs and the ccaas external builder (a directory with ``bin/``)."""

    bin_dir: Path
    ccaas_builder: Path

    @classmethod
    def find(cls, bin_dir: Path, ccaas_builder: Path | None = None) -> FabricBinaries:
        """Check ``bin_dir`` has every program; the builder defaults to
        ``<bin_dir>/../builders/ccaas`` (where a Fabric build puts it)."""
        bin_dir = bin_dir.expanduser().absolute()
        if not bin_dir.is_dir():
            raise NetworkRunError(f"--fabric-bin {bin_dir} is not a directory")
        for name in BINARIES:
            path = bin_dir / name
            if not (path.is_file() and os.access(path, os.X_OK)):
                raise NetworkRunError(f"missing Fabric binary {name} in {bin_dir}")
        builder = (ccaas_builder or bin_dir.parent / "builders" / "ccaas").expanduser().absolute()
        for name in _CCAAS_PROGRAMS:
            path = builder / "bin" / name
            if not (path.is_file() and os.access(path, os.X_OK)):
                raise NetworkRunError(
                    f"missing the ccaas external builder: no executable {path} "
                    "(give --ccaas-builder DIR, the directory holding bin/detect, build, release)"
                )
        return cls(bin_dir, builder)

    def __call__(self, name: str) -> str:
        return str(self.bin_dir / name)


@dataclass(frozen=True)
class ProcessStatus:
    name: str
    pid: int | None
    running: bool
    log: Path


def chaincode_server_command(address: str, package_id: str) -> list[str] | None:
    """How a chaincode server is started: Caravan's own (``python -m chaincode.server``)
    when it is installed, else None."""
    if importlib.util.find_spec("chaincode.server.__main__") is None:
        return None
    # configured by the environment the runner sets: CHAINCODE_SERVER_ADDRESS, CHAINCODE_ID
    return [sys.executable, "-m", "chaincode.server"]


def _approvals(output: str) -> dict[str, bool]:
    """The approvals of ``peer lifecycle chaincode checkcommitreadiness --output json``."""
    try:
        approvals = json.loads(output[output.index("{") :])["approvals"]
    except (ValueError, KeyError, TypeError):
        raise NetworkRunError(f"cannot read the commit readiness: {output[:200]}") from None
    return {str(k): bool(v) for k, v in approvals.items()}


def _port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host if host != "localhost" else "127.0.0.1", port)) == 0


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host if host != "localhost" else "127.0.0.1", port))
        except OSError:
            return False
    return True


class LocalNetwork:
    """The network of a generated directory, run as processes of this machine."""

    def __init__(
        self,
        network: GeneratedNetwork,
        binaries: FabricBinaries | None = None,
        *,
        chaincode_command: Callable[[str, str], list[str] | None] = chaincode_server_command,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.network = network
        self.binaries = binaries
        self.chaincode_command = chaincode_command
        self.step = progress or (lambda _message: None)
        self.run_dir = network.root / "run"
        self.consortium = network.consortium
        self._children: dict[str, subprocess.Popen[bytes]] = {}

    # ------------------------------------------------------------------ processes
    def _pid_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def _log(self, name: str) -> Path:
        return self.run_dir / "logs" / f"{name}.log"

    def _alive(self, name: str) -> int | None:
        """The pid of process ``name`` when it runs (checked against its command line)."""
        try:
            record = json.loads(self._pid_file(name).read_text())
            pid, program = int(record["pid"]), str(record["program"])
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return None
        if not any(Path(os.fsdecode(part)).name == program for part in cmdline[:3]):
            return None  # the pid was reused by another program
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{pid}/stat").read_text()
            if stat.rsplit(")", 1)[1].split()[0] == "Z":
                return None
        return pid

    def _spawn(self, name: str, argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> int:
        log = self._log(name)
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            proc = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env={**os.environ, **env},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._children[name] = proc
        record = {"pid": proc.pid, "program": Path(argv[0]).name, "argv": list(argv)}
        self._pid_file(name).write_text(json.dumps(record))
        return proc.pid

    def _wait_port(self, name: str, host: str, port: int) -> None:
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if _port_open(host, port):
                return
            child = self._children.get(name)
            if child is not None and child.poll() is not None:
                raise NetworkRunError(
                    f"{name} exited at start: see {self._log(name)}: {self._tail(name)}"
                )
            time.sleep(0.2)
        raise NetworkRunError(
            f"{name} did not listen on {host}:{port} within "
            f"{_READY_TIMEOUT_S:.0f} s: see {self._log(name)}"
        )

    def _tail(self, name: str) -> str:
        try:
            lines = self._log(name).read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return lines[-1][-300:] if lines else "(empty log)"

    def _start(
        self,
        name: str,
        argv: Sequence[str],
        cwd: Path,
        env: Mapping[str, str],
        ports: Sequence[tuple[str, int]],
    ) -> None:
        if self._alive(name) is not None:
            self.step(f"{name} already runs")
            return
        for host, port in ports:
            if not _port_free(host, port):
                raise NetworkRunError(
                    f"port {host}:{port} for {name} is in use by another program "
                    "(stop it, or give the process another port in consortium.yaml)"
                )
        self.step(f"starting {name}")
        self._spawn(name, argv, cwd, env)
        self._wait_port(name, *ports[0])

    # ------------------------------------------------------------------ fabric CLIs
    def _run(self, argv: Sequence[str], env: Mapping[str, str], what: str) -> str:
        try:
            result = subprocess.run(
                list(argv),
                env={**os.environ, **env},
                capture_output=True,
                text=True,
                timeout=_COMMAND_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise NetworkRunError(f"{what}: no answer within {_COMMAND_TIMEOUT_S:.0f} s") from None
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()
            raise NetworkRunError(f"{what} failed: {detail[-1] if detail else 'no output'}")
        return result.stdout + result.stderr

    def _admin_env(self, admin: Administration) -> dict[str, str]:
        """The environment of the ``peer`` CLI acting as ``admin``'s Fabric admin."""
        net = self.network
        peer = admin.peers[0]
        return {
            "FABRIC_CFG_PATH": str(net.peer_dir(admin.msp_id, peer.name)),
            "CORE_PEER_LOCALMSPID": admin.msp_id,
            "CORE_PEER_MSPCONFIGPATH": str(net.admin_dir(admin.msp_id) / "msp"),
            "CORE_PEER_ADDRESS": peer.address,
            "CORE_PEER_TLS_ENABLED": "true",
            "CORE_PEER_TLS_ROOTCERT_FILE": str(net.org_dir(admin.msp_id) / "tls-ca.pem"),
            "FABRIC_LOGGING_SPEC": "warning",
        }

    def _orderer_flags(self, admin: Administration) -> list[str]:
        return [
            "-o",
            admin.orderer.address,
            "--tls",
            "--cafile",
            str(self.network.org_dir(admin.msp_id) / "tls-ca.pem"),
        ]

    def _osnadmin(self, admin: Administration, *args: str) -> str:
        assert self.binaries is not None
        tls = self.network.admin_dir(admin.msp_id) / "tls"
        return self._run(
            [
                self.binaries("osnadmin"),
                "channel",
                *args,
                "-o",
                f"{admin.orderer.host}:{admin.orderer.admin_port}",
                "--ca-file",
                str(tls / "ca.crt"),
                "--client-cert",
                str(tls / "client.crt"),
                "--client-key",
                str(tls / "client.key"),
            ],
            {},
            f"osnadmin channel {args[0]} on {admin.orderer_id}",
        )

    # ------------------------------------------------------------------ up
    def up(self, *, init_ledger: bool = True, passphrase: bytes | None = None) -> None:
        """Start what is not running and do what is not done. With ``init_ledger`` the
        Caravan ledger's genesis (InitLedger, every administration a founding member) is
        submitted when the key store of the first administration can be opened
        (``passphrase``, CARAVAN_PASSPHRASE_<ORG> or the node's secrets/)."""
        if self.binaries is None:
            raise NetworkRunError("network up needs the Fabric binaries (--fabric-bin DIR)")
        bins = self.binaries
        net, cons = self.network, self.consortium
        self.run_dir.mkdir(parents=True, exist_ok=True)
        block = net.genesis_block
        if not block.is_file():
            self.step(f"creating the genesis block of channel {cons.channel}")
            block.parent.mkdir(parents=True, exist_ok=True)
            self._run(
                [
                    bins("configtxgen"),
                    "-configPath",
                    str(net.configtx_dir),
                    "-profile",
                    "Caravan",
                    "-channelID",
                    cons.channel,
                    "-outputBlock",
                    str(block),
                ],
                {"FABRIC_LOGGING_SPEC": "warning"},
                "configtxgen",
            )
        for admin in cons.administrations:
            o = admin.orderer
            odir = net.orderer_dir(admin.msp_id)
            self._start(
                admin.orderer_id,
                [bins("orderer")],
                odir,
                {"FABRIC_CFG_PATH": str(odir)},
                [(o.host, o.port), (o.host, o.admin_port), (o.host, o.operations_port)],
            )
        for admin in cons.administrations:
            listed = self._osnadmin(admin, "list")
            if f'"name": "{cons.channel}"' in listed or f'"{cons.channel}"' in listed:
                self.step(f"{admin.orderer_id} has joined {cons.channel}")
                continue
            self.step(f"{admin.orderer_id} joins channel {cons.channel}")
            self._osnadmin(admin, "join", "--channelID", cons.channel, "--config-block", str(block))
        for admin in cons.administrations:
            command = self.chaincode_command(admin.chaincode.address, net.package_id(admin.msp_id))
            name = f"chaincode.{admin.slug}"
            if command is None:
                self.step(f"no chaincode server to start for {admin.msp_id} (not installed)")
                continue
            self._start(
                name,
                command,
                net.root,
                {
                    "CHAINCODE_SERVER_ADDRESS": admin.chaincode.address,
                    "CHAINCODE_ID": net.package_id(admin.msp_id),
                    "CORE_CHAINCODE_ID_NAME": net.package_id(admin.msp_id),
                },
                [(admin.chaincode.host, admin.chaincode.port)],
            )
        builders = f"[{{name: ccaas_builder, path: {bins.ccaas_builder}}}]"
        for admin in cons.administrations:
            for peer in admin.peers:
                pdir = net.peer_dir(admin.msp_id, peer.name)
                self._start(
                    admin.peer_id(peer),
                    [bins("peer"), "node", "start"],
                    pdir,
                    {
                        "FABRIC_CFG_PATH": str(pdir),
                        "CORE_CHAINCODE_EXTERNALBUILDERS": builders,
                        "CORE_LEDGER_SNAPSHOTS_ROOTDIR": str(pdir / "data" / "snapshots"),
                    },
                    [
                        (peer.host, peer.port),
                        (peer.host, peer.chaincode_port),
                        (peer.host, peer.operations_port),
                    ],
                )
        for admin in cons.administrations:
            self._join_peers(admin, block)
        self._deploy_chaincode()
        if init_ledger:
            self._init_ledger_if_possible(passphrase)
        self.step("the network is up")

    def _join_peers(self, admin: Administration, block: Path) -> None:
        assert self.binaries is not None
        cons = self.consortium
        for peer in admin.peers:
            env = {**self._admin_env(admin), "CORE_PEER_ADDRESS": peer.address}
            channels = self._run(
                [self.binaries("peer"), "channel", "list"], env, f"peer channel list on {peer}"
            )
            if cons.channel in channels.split():
                self.step(f"{admin.peer_id(peer)} has joined {cons.channel}")
                continue
            self.step(f"{admin.peer_id(peer)} joins channel {cons.channel}")
            self._run(
                [self.binaries("peer"), "channel", "join", "-b", str(block)],
                env,
                f"peer channel join on {admin.peer_id(peer)}",
            )

    def committed_sequence(self, name: str | None = None) -> int | None:
        """The sequence of chaincode ``name``'s definition committed on the channel (default
        the consortium's chaincode), if any."""
        assert self.binaries is not None
        cons = self.consortium
        first = cons.administrations[0]
        try:
            out = self._run(
                [
                    self.binaries("peer"),
                    "lifecycle",
                    "chaincode",
                    "querycommitted",
                    "--channelID",
                    cons.channel,
                    "--name",
                    name or cons.chaincode.name,
                    "--output",
                    "json",
                ],
                self._admin_env(first),
                "peer lifecycle chaincode querycommitted",
            )
        except NetworkRunError as exc:
            if "not found" in str(exc) or "404" in str(exc):
                return None
            raise
        start = out.find("{")
        try:
            return int(json.loads(out[start:])["sequence"])
        except (ValueError, KeyError, TypeError):
            raise NetworkRunError(
                f"cannot read the committed chaincode definition: {out[:200]}"
            ) from None

    def _deploy_chaincode(self) -> None:
        net, cc = self.network, self.consortium.chaincode
        packages = {
            a.msp_id: (net.package(a.msp_id), net.package_id(a.msp_id))
            for a in self.consortium.administrations
        }
        self.deploy_chaincode(cc.name, cc.version, cc.sequence, packages, label=cc.label)

    def deploy_chaincode(
        self,
        name: str,
        version: str,
        sequence: int,
        packages: Mapping[str, tuple[Path, str]],
        *,
        label: str | None = None,
    ) -> None:
        """Deploy a chaincode on the channel with Fabric's lifecycle, as each organisation's
        admin: install each administration's package (``packages``: MSP id -> (ccaas
        package, its package id)) on its peers, approve the definition (``name``,
        ``version``, ``sequence``; the channel's default endorsement policy) for every
        administration and commit it. Each step already done is skipped."""
        assert self.binaries is not None
        peer_bin = self.binaries("peer")
        net, cons = self.network, self.consortium
        label = label or f"{name} {version}"
        definition = [
            "--channelID",
            cons.channel,
            "--name",
            name,
            "--version",
            version,
            "--sequence",
            str(sequence),
        ]
        for admin in cons.administrations:
            package, pkg_id = packages[admin.msp_id]
            for peer in admin.peers:
                env = {**self._admin_env(admin), "CORE_PEER_ADDRESS": peer.address}
                installed = self._run(
                    [peer_bin, "lifecycle", "chaincode", "queryinstalled"],
                    env,
                    f"queryinstalled on {admin.peer_id(peer)}",
                )
                if pkg_id in installed:
                    continue
                self.step(f"installing {label} on {admin.peer_id(peer)}")
                self._run(
                    [peer_bin, "lifecycle", "chaincode", "install", str(package)],
                    env,
                    f"install on {admin.peer_id(peer)}",
                )
        committed = self.committed_sequence(name)
        if committed is not None and committed >= sequence:
            self.step(f"chaincode {name} sequence {committed} is committed")
            return
        for admin in cons.administrations:
            env = self._admin_env(admin)
            readiness = self._run(
                [
                    peer_bin,
                    "lifecycle",
                    "chaincode",
                    "checkcommitreadiness",
                    *definition,
                    "--output",
                    "json",
                ],
                env,
                f"checkcommitreadiness for {admin.msp_id}",
            )
            if _approvals(readiness).get(admin.msp_id):
                self.step(f"{admin.msp_id} has approved {name}")
                continue
            self.step(f"{admin.msp_id} approves {name} {version} (sequence {sequence})")
            self._run(
                [
                    peer_bin,
                    "lifecycle",
                    "chaincode",
                    "approveformyorg",
                    *self._orderer_flags(admin),
                    *definition,
                    "--package-id",
                    packages[admin.msp_id][1],
                    "--waitForEvent",
                ],
                env,
                f"approveformyorg by {admin.msp_id}",
            )
        first = cons.administrations[0]
        targets: list[str] = []
        for admin in cons.administrations:
            targets += [
                "--peerAddresses",
                admin.peers[0].address,
                "--tlsRootCertFiles",
                str(net.org_dir(admin.msp_id) / "tls-ca.pem"),
            ]
        self.step(f"committing {name} on {cons.channel}")
        self._run(
            [
                peer_bin,
                "lifecycle",
                "chaincode",
                "commit",
                *self._orderer_flags(first),
                *definition,
                *targets,
                "--waitForEvent",
            ],
            self._admin_env(first),
            "chaincode commit",
        )

    # ------------------------------------------------------------------ the ledger
    def _init_ledger_if_possible(self, passphrase: bytes | None) -> None:
        first = self.consortium.administrations[0]
        if (
            passphrase is None
            and passphrase_for(self.network.node_dir(first.msp_id), first.msp_id) is None
        ):
            self.step(
                f"the Caravan ledger is not initialised: no passphrase for {first.msp_id} "
                f"(set {passphrase_env(first.msp_id)} or generate with --store-passphrase, "
                "then run up again)"
            )
            return
        self.init_ledger(passphrase)

    def init_ledger(self, passphrase: bytes | None = None) -> SignedProposal | None:
        """Submit the Caravan genesis through the first administration's Caravan node
        identity, signed by its admin; None when the ledger already has members."""
        from chaincode.canonical import canonical_json

        from ..fabric import FabricLedger, PeerConnection
        from ..proposal import make_proposal
        from ..wallet import Wallet

        net, cons = self.network, self.consortium
        first = cons.administrations[0]
        node_dir = net.node_dir(first.msp_id)
        secret = passphrase or passphrase_for(node_dir, first.msp_id)
        if secret is None:
            raise NetworkRunError(f"no passphrase for the key store of {first.msp_id}")
        try:
            pki = OrgPki(node_dir / "pki", first.msp_id).unlock(secret)
            pki.key("issuing")
        except TrustServiceError as exc:
            raise NetworkRunError(f"{first.msp_id}: {exc}") from None
        wallet = Wallet(node_dir / "wallet")
        admin = wallet.signer(f"{first.slug}-admin", {first.msp_id: pki})
        node_signer = wallet.signer(f"{first.slug}-node", {first.msp_id: pki})
        peer = first.peers[0]
        if not _port_open(peer.host, peer.port):
            raise NetworkRunError(
                f"{first.peer_id(peer)} does not answer on {peer.address}: start the network first"
            )
        connection = PeerConnection(
            peer.address,
            tls_ca=(net.org_dir(first.msp_id) / "tls-ca.pem").read_bytes(),
            server_name=peer.host,
        )
        ledger = FabricLedger(
            connection, node_signer, channel=cons.channel, chaincode=cons.chaincode.name
        )
        try:
            members = self._retry(lambda: ledger.evaluate("GetMembers", []), "GetMembers")
            if members.status == 200 and json.loads(members.payload or b"[]"):
                self.step("the Caravan ledger has its members")
                return None
            founding = {"members": [self._member(a) for a in cons.administrations]}
            genesis = make_proposal(
                admin,
                "InitLedger",
                [canonical_json(founding).decode("utf-8")],
                channel=cons.channel,
                timestamp=divmod(time.time_ns(), 10**9),
            )
            self.step("initialising the Caravan ledger (InitLedger, every administration)")
            receipt = self._retry(lambda: ledger.submit(genesis), "InitLedger")
            if receipt.code != "VALID":
                raise NetworkRunError(
                    f"InitLedger was refused: {receipt.code} {receipt.status} {receipt.message}"
                )
            return genesis
        finally:
            ledger.close()

    def _member(self, admin: Administration) -> dict[str, object]:
        pki = OrgPki(self.network.node_dir(admin.msp_id) / "pki", admin.msp_id)
        der = pki.certificate("root").public_bytes(serialization.Encoding.DER)
        return {
            "msp_id": admin.msp_id,
            "country": admin.country,
            "name": admin.name,
            "anchors": [{"kind": "root", "certificate": base64.b64encode(der).decode("ascii")}],
        }

    def _retry(self, call: Callable[[], T], what: str) -> T:
        """Retry while the Gateway warms up (gossip shows it the other organisations'
        peers a few seconds after they join)."""
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while True:
            try:
                return call()
            except NodeError as exc:
                if time.monotonic() > deadline:
                    raise NetworkRunError(f"{what}: {exc}") from None
                time.sleep(1.0)

    # ------------------------------------------------------------------ status, down
    def process_names(self) -> list[str]:
        names: list[str] = []
        for admin in self.consortium.administrations:
            names.append(admin.orderer_id)
            names.append(f"chaincode.{admin.slug}")
            names += [admin.peer_id(p) for p in admin.peers]
        return names

    def status(self) -> list[ProcessStatus]:
        out = []
        for name in self.process_names():
            pid = self._alive(name)
            out.append(ProcessStatus(name, pid, pid is not None, self._log(name)))
        return out

    def down(self, *, keep_data: bool = False) -> list[str]:
        """Stop every process this network started (by its recorded pid, checked against
        its program); unless ``keep_data``, remove ledgers, genesis block and pid files."""
        stopped: list[str] = []
        for name in reversed(self.process_names()):
            pid = self._alive(name)
            if pid is not None:
                self.step(f"stopping {name}")
                self._stop(name, pid)
                stopped.append(name)
            self._pid_file(name).unlink(missing_ok=True)
        if not keep_data:
            net = self.network
            for admin in self.consortium.administrations:
                shutil.rmtree(net.orderer_dir(admin.msp_id) / "data", ignore_errors=True)
                for peer in admin.peers:
                    shutil.rmtree(
                        net.peer_dir(admin.msp_id, peer.name) / "data", ignore_errors=True
                    )
            net.genesis_block.unlink(missing_ok=True)
        return stopped

    def _stop(self, name: str, pid: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + _STOP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._alive(name) is None:
                return
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
