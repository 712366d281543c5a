"""``caravan network generate``: everything Fabric needs, from the consortium definition.

>>> # consortium = load_consortium(Path("network-config/consortium.yaml"))
>>> # network = generate(consortium, Path("build/network"), passphrase=b"…")
>>> # network.peer_dir("KZ-CUSTOMS", "peer0")    # …/fabric/peers/peer0.kz-customs

Layout of the output directory (docs/fabric.md)::

    consortium.yaml                      the definition used (read by `network up`)
    nodes/<org>/                         a Caravan node per administration (ledger: fabric)
        node.yaml  pki/orgs/<MSP>/  wallet/  secrets/ (only with store_passphrase)
    fabric/organizations/<org>/msp/      the organisation's channel MSP (no keys)
    fabric/organizations/<org>/tls-ca.pem        root + issuing CA: trust for its TLS
    fabric/organizations/<org>/users/admin/      the Fabric admin (msp/, tls/)
    fabric/peers/<peer>.<org>/           core.yaml, msp/, tls/ (data/ at run time)
    fabric/orderers/<orderer>.<org>/     orderer.yaml, msp/, tls/ (data/ at run time)
    fabric/configtx/configtx.yaml        the channel (profile Caravan)
    fabric/chaincode/<org>/<label>.tar.gz + package-id   the ccaas package
    connection-profiles/<org>.json       Fabric common connection profiles

Each administration's PKI is created on the first run and reused afterwards; keys and
certificates already there are kept (a running network keeps its identities), the
configuration files are rewritten. Private keys of Fabric processes and of the Fabric
admin are files (Fabric's BCCSP reads them so), 0600 and nowhere else; the Caravan
node's identity keeps its key in the organisation's key store.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from chaincode.server.package import ccaas_package, package_id
from trust_services.errors import TrustServiceError
from trust_services.pki import OrgPki, atomic_write, init_pki

from ..config import IDENTITY_NAME, IndexConfig
from ..wallet import KeyRef, Wallet, WalletEntry
from .consortium import Administration, Consortium, ConsortiumError
from .templates import CCAAS_BUILDER_IN_IMAGE, configtx_header, core_yaml, orderer_yaml

__all__ = ["GenerateError", "GeneratedNetwork", "generate"]

_PEM = serialization.Encoding.PEM
_LOCAL_HOSTS = ("localhost", "127.0.0.1")

NODE_OUS = {
    "NodeOUs": {
        "Enable": True,
        "ClientOUIdentifier": {"OrganizationalUnitIdentifier": "client"},
        "PeerOUIdentifier": {"OrganizationalUnitIdentifier": "peer"},
        "AdminOUIdentifier": {"OrganizationalUnitIdentifier": "admin"},
        "OrdererOUIdentifier": {"OrganizationalUnitIdentifier": "orderer"},
    }
}


class GenerateError(ConsortiumError):
    """The network cannot be generated (an existing PKI that does not fit, a bad output)."""

    code = "GENERATE_FAILED"


@dataclass(frozen=True)
class GeneratedNetwork:
    """Where ``generate`` put things."""

    root: Path
    consortium: Consortium

    @property
    def fabric(self) -> Path:
        return self.root / "fabric"

    def node_dir(self, msp_id: str) -> Path:
        return self.root / "nodes" / self.consortium.administration(msp_id).slug

    def org_dir(self, msp_id: str) -> Path:
        return self.fabric / "organizations" / self.consortium.administration(msp_id).slug

    def peer_dir(self, msp_id: str, peer: str = "peer0") -> Path:
        return self.fabric / "peers" / f"{peer}.{self.consortium.administration(msp_id).slug}"

    def orderer_dir(self, msp_id: str) -> Path:
        return self.fabric / "orderers" / self.consortium.administration(msp_id).orderer_id

    def admin_dir(self, msp_id: str) -> Path:
        return self.org_dir(msp_id) / "users" / "admin"

    def package(self, msp_id: str) -> Path:
        admin = self.consortium.administration(msp_id)
        return self.fabric / "chaincode" / admin.slug / f"{self.consortium.chaincode.label}.tar.gz"

    def package_id(self, msp_id: str) -> str:
        return (self.package(msp_id).parent / "package-id").read_text().strip()

    @property
    def configtx_dir(self) -> Path:
        return self.fabric / "configtx"

    @property
    def genesis_block(self) -> Path:
        return self.fabric / "channel" / f"{self.consortium.channel}.block"

    def connection_profile(self, msp_id: str) -> Path:
        slug = self.consortium.administration(msp_id).slug
        return self.root / "connection-profiles" / f"{slug}.json"

    @classmethod
    def open(cls, root: Path) -> GeneratedNetwork:
        """A generated directory (its ``consortium.yaml``)."""
        from .consortium import load_consortium

        path = root / "consortium.yaml"
        if not path.is_file():
            raise GenerateError(
                f"{root} is not a generated network (no consortium.yaml): run "
                "'caravan network generate' first"
            )
        return cls(root.absolute(), load_consortium(path))


# --------------------------------------------------------------------------- files
def _write(path: Path, data: bytes | str, mode: int = 0o644) -> None:
    atomic_write(path, data.encode() if isinstance(data, str) else data, mode)


def _pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(_PEM) for c in certs)


def _new_key_file(path: Path) -> ec.EllipticCurvePublicKey:
    """An ECDSA P-256 key (what Fabric's BCCSP signs with) as unencrypted PKCS#8, 0600."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(_PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    _write(path, pem, 0o600)
    return key.public_key()


def _load_cert(path: Path) -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (FileNotFoundError, ValueError):
        return None


def _sans(cert: x509.Certificate) -> set[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {str(v) for v in ext.get_values_for_type(x509.DNSName)} | {
        str(v) for v in ext.get_values_for_type(x509.IPAddress)
    }


def _tls_hosts(host: str) -> list[str]:
    hosts = [host, *(h for h in _LOCAL_HOSTS if h != host)]
    return list(dict.fromkeys(hosts))


def _listen_host(host: str) -> str:
    """Listen on the address itself when given one, on every interface for a name."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return "0.0.0.0"  # noqa: S104 - a host name: the machine's own interfaces
    return host


class _Org:
    """One administration's PKI and the Fabric material issued from it."""

    def __init__(self, admin: Administration, pki: OrgPki, org_dir: Path) -> None:
        self.admin = admin
        self.pki = pki
        self.org_dir = org_dir
        self.root = pki.certificate("root")
        self.issuing = pki.certificate("issuing")

    @property
    def ca_bundle(self) -> bytes:
        return _pem(self.root, self.issuing)

    def write_msp(self, msp: Path) -> None:
        """The CA part of an MSP directory (Fabric's layout) with NodeOUs enabled."""
        _write(msp / "cacerts" / "root.pem", _pem(self.root))
        _write(msp / "intermediatecerts" / "issuing.pem", _pem(self.issuing))
        _write(msp / "tlscacerts" / "root.pem", _pem(self.root))
        _write(msp / "tlsintermediatecerts" / "issuing.pem", _pem(self.issuing))
        _write(msp / "config.yaml", yaml.safe_dump(NODE_OUS, sort_keys=False))

    def signing_identity(self, msp: Path, role: str, common_name: str, label: str) -> None:
        """An MSP with a sign certificate of ``role`` (the node OU) and its key file."""
        self.write_msp(msp)
        cert_path = msp / "signcerts" / "cert.pem"
        key_path = msp / "keystore" / "priv_sk"
        if _load_cert(cert_path) is not None and key_path.is_file():
            return
        public_key = _new_key_file(key_path)
        issued = self.pki.issue_fabric_certificate(
            public_key, role=role, common_name=common_name, label=label
        )
        _write(cert_path, _pem(issued.certificate))

    def tls_identity(
        self, tls: Path, role: str, common_name: str, label: str, hosts: Iterable[str], name: str
    ) -> None:
        """``<name>.crt`` (leaf + issuing CA), ``<name>.key`` and ``ca.crt`` in ``tls``."""
        wanted = list(hosts)
        _write(tls / "ca.crt", self.ca_bundle)
        cert_path, key_path = tls / f"{name}.crt", tls / f"{name}.key"
        current = _load_cert(cert_path)
        if current is not None and key_path.is_file() and _sans(current) == set(wanted):
            return
        public_key = _new_key_file(key_path)
        issued = self.pki.issue_fabric_certificate(
            public_key,
            role=role,
            common_name=common_name,
            label=label,
            tls=True,
            tls_hosts=wanted,
        )
        _write(cert_path, _pem(issued.certificate, self.issuing))
        _write(tls / f"{name}-leaf.crt", _pem(issued.certificate))


# --------------------------------------------------------------------------- steps
def _open_or_create_pki(
    admin: Administration, pki_root: Path, passphrase: bytes, step: Callable[[str], None]
) -> OrgPki:
    base_url = f"http://{admin.node.host}:{admin.node.port}/orgs/{admin.msp_id}"
    try:
        if (pki_root / "orgs" / admin.msp_id / "org.json").is_file():
            pki = OrgPki(pki_root, admin.msp_id)
            if pki.config.country != admin.country:
                raise GenerateError(
                    f"the PKI of {admin.msp_id} in {pki_root} is for country "
                    f"{pki.config.country}, the consortium says {admin.country}"
                )
            step(f"reusing the PKI of {admin.msp_id}")
            pki.unlock(passphrase)
            pki.key("issuing")  # a wrong passphrase fails here
            return pki
        step(f"creating the PKI of {admin.msp_id}")
        return init_pki(
            pki_root,
            admin.msp_id,
            country=admin.country,
            name=admin.name,
            passphrase=passphrase,
            base_url=base_url,
        )
    except TrustServiceError as exc:
        raise GenerateError(f"{admin.msp_id}: {exc}") from None


def _wallet(org: _Org, node_dir: Path, step: Callable[[str], None]) -> str:
    """The node's wallet: admin and officer (ledger members) and the node identity, a
    Fabric client (OU=client) whose key stays in the organisation's key store."""
    wallet = Wallet(node_dir / "wallet")
    slug = org.admin.slug
    for role in ("admin", "officer"):
        name = f"{slug}-{role}"
        if name not in wallet:
            step(f"issuing {name}")
            wallet.issue(org.pki, name, role=role)
    node_name = f"{slug}-node"
    if not IDENTITY_NAME.match(node_name):
        raise GenerateError(f"{org.admin.msp_id}: no valid wallet name for its node identity")
    if node_name not in wallet:
        step(f"issuing {node_name} (Fabric client)")
        key = org.pki.new_key(node_name)
        issued = org.pki.issue_fabric_certificate(
            key.public_key(),
            role="client",
            common_name=f"{org.admin.name} Caravan node",
            label=node_name,
            member_role="node",
        )
        wallet.add(
            WalletEntry(
                node_name,
                org.admin.msp_id,
                "node",
                None,
                issued.certificate,
                (org.issuing,),
                KeyRef(org.admin.msp_id, node_name),
            )
        )
    return node_name


class _NoAliases(yaml.SafeDumper):
    """No YAML anchors: each organisation is written out where it is used."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _configtx(consortium: Consortium, net: GeneratedNetwork) -> str:
    def org_entry(admin: Administration) -> dict[str, Any]:
        m = admin.msp_id

        def sig(*roles: str) -> dict[str, str]:
            rule = ", ".join(f"'{m}.{r}'" for r in roles)
            return {"Type": "Signature", "Rule": f"OR({rule})"}

        return {
            "Name": m,
            "ID": m,
            "MSPDir": f"../organizations/{admin.slug}/msp",
            "Policies": {
                "Readers": sig("admin", "peer", "client", "orderer"),
                "Writers": sig("admin", "client", "orderer"),
                "Admins": sig("admin"),
                "Endorsement": sig("peer"),
            },
            "OrdererEndpoints": [admin.orderer.address],
            "AnchorPeers": [{"Host": admin.peers[0].host, "Port": admin.peers[0].port}],
        }

    def meta(rule: str) -> dict[str, str]:
        return {"Type": "ImplicitMeta", "Rule": rule}

    orgs = [org_entry(a) for a in consortium.administrations]
    consenters = [
        {
            "Host": a.orderer.host,
            "Port": a.orderer.port,
            "ClientTLSCert": f"../orderers/{a.orderer_id}/tls/server-leaf.crt",
            "ServerTLSCert": f"../orderers/{a.orderer_id}/tls/server-leaf.crt",
        }
        for a in consortium.administrations
    ]
    common = {"Readers": meta("ANY Readers"), "Writers": meta("ANY Writers")}
    profile = {
        "Policies": {**common, "Admins": meta("MAJORITY Admins")},
        "Capabilities": {"V2_0": True},
        "Orderer": {
            "OrdererType": "etcdraft",
            "BatchTimeout": consortium.orderers.batch_timeout,
            "BatchSize": {
                "MaxMessageCount": consortium.orderers.max_message_count,
                "AbsoluteMaxBytes": "10 MB",
                "PreferredMaxBytes": "2 MB",
            },
            "MaxChannels": 0,
            "EtcdRaft": {
                "Consenters": consenters,
                "Options": {
                    "TickInterval": "500ms",
                    "ElectionTick": 10,
                    "HeartbeatTick": 1,
                    "MaxInflightBlocks": 5,
                    "SnapshotIntervalSize": "16 MB",
                },
            },
            "Organizations": orgs,
            "Policies": {
                **common,
                "Admins": meta("MAJORITY Admins"),
                "BlockValidation": meta("ANY Writers"),
            },
            "Capabilities": {"V2_0": True},
        },
        "Application": {
            "Organizations": orgs,
            "Policies": {
                **common,
                "Admins": meta("MAJORITY Admins"),
                "LifecycleEndorsement": meta(consortium.chaincode.lifecycle_policy),
                "Endorsement": meta(consortium.chaincode.endorsement_policy),
            },
            "Capabilities": {"V2_5": True},
        },
    }
    doc = {"Organizations": orgs, "Profiles": {"Caravan": profile}}
    body = yaml.dump(doc, Dumper=_NoAliases, sort_keys=False, default_flow_style=False)
    return configtx_header(consortium.channel) + body


def _connection_profile(
    consortium: Consortium, admin: Administration, orgs: dict[str, _Org]
) -> dict[str, Any]:
    """A Fabric common connection profile as seen from ``admin``."""
    peers: dict[str, Any] = {}
    orderers: dict[str, Any] = {}
    organizations: dict[str, Any] = {}
    for other in consortium.administrations:
        bundle = orgs[other.msp_id].ca_bundle.decode("ascii")
        organizations[other.msp_id] = {
            "mspid": other.msp_id,
            "peers": [other.peer_id(p) for p in other.peers],
        }
        for peer in other.peers:
            peers[other.peer_id(peer)] = {
                "url": f"grpcs://{peer.address}",
                "tlsCACerts": {"pem": bundle},
                "grpcOptions": {"ssl-target-name-override": peer.host},
            }
        orderers[other.orderer_id] = {
            "url": f"grpcs://{other.orderer.address}",
            "tlsCACerts": {"pem": bundle},
            "grpcOptions": {"ssl-target-name-override": other.orderer.host},
        }
    return {
        "name": f"caravan-{admin.slug}",
        "version": "1.0.0",
        "client": {"organization": admin.msp_id},
        "channels": {
            consortium.channel: {
                "orderers": list(orderers),
                "peers": {p: {"endorsingPeer": True, "ledgerQuery": True} for p in peers},
            }
        },
        "organizations": organizations,
        "peers": peers,
        "orderers": orderers,
    }


def _node_yaml(
    admin: Administration, consortium: Consortium, node_identity: str, index_url: str | None
) -> str:
    """node.yaml of the administration's Caravan node: ``ledger: backend: fabric``
    through its first peer's Gateway (docs/node.md, docs/fabric.md)."""
    peer = admin.peers[0]
    data: dict[str, Any] = {
        "version": 1,
        "channel": consortium.channel,
        "listen": {"host": admin.node.host, "port": admin.node.port},
        "ledger": {
            "backend": "fabric",
            "node_identity": node_identity,
            "msp_id": admin.msp_id,
            "chaincode": consortium.chaincode.name,
            "peer": {
                "endpoint": peer.address,
                "tls_ca": "fabric/tls-ca.pem",
                "server_name": peer.host,
            },
        },
        "orgs": [{"org": admin.msp_id, "country": admin.country, "name": admin.name}],
    }
    if index_url is not None:
        data["index"] = {"url": index_url.replace("{org}", admin.slug.replace("-", "_"))}
    header = (
        f"# The Caravan node of {admin.msp_id} on the Fabric network "
        "(generated by `caravan network generate`).\n"
        f"# Its Fabric identity is the wallet entry {node_identity} (OU=client); it submits\n"
        f"# through the Gateway of {admin.peer_id(peer)}.\n"
    )
    return header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def generate(
    consortium: Consortium,
    out: Path,
    passphrase: bytes,
    *,
    store_passphrase: bool = False,
    ccaas_builder: str = CCAAS_BUILDER_IN_IMAGE,
    index_url: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> GeneratedNetwork:
    """Write (or bring up to date) the network in ``out`` from ``consortium``.

    ``index_url`` is each node's index database, ``{org}`` standing for the
    administration (``postgresql://caravan@127.0.0.1:5432/caravan_{org}``); SQLite in
    the node directory when not given."""
    step = progress or (lambda _message: None)
    if index_url is not None:
        try:
            IndexConfig(url=index_url)
        except ValueError:
            raise GenerateError(
                "--index-url must be sqlite:///PATH or postgresql://USER@HOST/DB "
                f"(got {index_url!r})"
            ) from None
    if not passphrase:
        raise GenerateError("the key-store passphrase must not be empty")
    if out.exists() and not out.is_dir():
        raise GenerateError(f"{out} exists and is not a directory")
    existing = out / "consortium.yaml"
    if out.is_dir() and any(out.iterdir()) and not existing.is_file():
        raise GenerateError(
            f"{out} is not empty and holds no generated network: give a new or empty --out"
        )
    out = out.absolute()
    net = GeneratedNetwork(out, consortium)
    orgs: dict[str, _Org] = {}
    for admin in consortium.administrations:
        node_dir = net.node_dir(admin.msp_id)
        pki = _open_or_create_pki(admin, node_dir / "pki", passphrase, step)
        org = _Org(admin, pki, net.org_dir(admin.msp_id))
        orgs[admin.msp_id] = org
        try:
            node_identity = _wallet(org, node_dir, step)
            step(f"writing the Fabric MSPs of {admin.msp_id}")
            org.write_msp(org.org_dir / "msp")
            _write(org.org_dir / "tls-ca.pem", org.ca_bundle)
            admin_dir = net.admin_dir(admin.msp_id)
            org.signing_identity(
                admin_dir / "msp",
                "admin",
                f"{admin.name} Fabric admin",
                f"{admin.slug}-fabric-admin",
            )
            org.tls_identity(
                admin_dir / "tls",
                "admin",
                f"{admin.name} Fabric admin TLS",
                f"{admin.slug}-fabric-admin-tls",
                ["localhost"],
                "client",
            )
            for peer in admin.peers:
                pid = admin.peer_id(peer)
                pdir = net.peer_dir(admin.msp_id, peer.name)
                org.signing_identity(pdir / "msp", "peer", pid, f"{pid}")
                org.tls_identity(
                    pdir / "tls", "peer", pid, f"{pid}-tls", _tls_hosts(peer.host), "server"
                )
                others = [p.address for p in admin.peers if p is not peer]
                _write(
                    pdir / "core.yaml",
                    core_yaml(
                        peer_id=pid,
                        msp_id=admin.msp_id,
                        listen_address=f"{_listen_host(peer.host)}:{peer.port}",
                        address=peer.address,
                        chaincode_listen_address=f"{_listen_host(peer.host)}:{peer.chaincode_port}",
                        gossip_bootstrap=" ".join(others) if others else peer.address,
                        operations_address=f"{_listen_host(peer.host)}:{peer.operations_port}",
                        snapshots_dir=str(pdir / "data" / "snapshots"),
                        ccaas_builder=ccaas_builder,
                    ),
                )
            odir = net.orderer_dir(admin.msp_id)
            o = admin.orderer
            org.signing_identity(odir / "msp", "orderer", admin.orderer_id, admin.orderer_id)
            org.tls_identity(
                odir / "tls",
                "orderer",
                admin.orderer_id,
                f"{admin.orderer_id}-tls",
                _tls_hosts(o.host),
                "server",
            )
        except TrustServiceError as exc:
            raise GenerateError(f"{admin.msp_id}: {exc}") from None
        if store_passphrase:
            secret = node_dir / "secrets" / f"{admin.msp_id}.pass"
            secret.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            _write(secret, passphrase, 0o600)
        _write(node_dir / "fabric" / "tls-ca.pem", org.ca_bundle)
        (node_dir / "data").mkdir(exist_ok=True)  # the index (SQLite by default)
        _write(node_dir / "node.yaml", _node_yaml(admin, consortium, node_identity, index_url))

    all_cas = [f"../../organizations/{a.slug}/tls-ca.pem" for a in consortium.administrations]
    for admin in consortium.administrations:
        o = admin.orderer
        _write(
            net.orderer_dir(admin.msp_id) / "orderer.yaml",
            orderer_yaml(
                orderer_id=admin.orderer_id,
                msp_id=admin.msp_id,
                listen_host=_listen_host(o.host),
                port=o.port,
                admin_address=f"{_listen_host(o.host)}:{o.admin_port}",
                operations_address=f"{_listen_host(o.host)}:{o.operations_port}",
                client_root_cas=all_cas,
            ),
        )
        step(f"packaging the chaincode for {admin.msp_id}")
        cc = consortium.chaincode
        tls = {"tls": True, "root_cert": orgs[admin.msp_id].ca_bundle.decode()} if cc.tls else {}
        package = ccaas_package(cc.label, admin.chaincode.address, **tls)
        _write(net.package(admin.msp_id), package)
        pkg_id = package_id(cc.label, package)
        _write(net.package(admin.msp_id).parent / "package-id", pkg_id + "\n")
        profile = _connection_profile(consortium, admin, orgs)
        _write(net.connection_profile(admin.msp_id), json.dumps(profile, indent=2) + "\n")

    step("writing configtx.yaml")
    _write(net.configtx_dir / "configtx.yaml", _configtx(consortium, net))
    _write(
        out / "consortium.yaml",
        "# The consortium definition this network was generated from.\n"
        + yaml.safe_dump(consortium.model_dump(mode="json"), sort_keys=False, allow_unicode=True),
    )
    return net
