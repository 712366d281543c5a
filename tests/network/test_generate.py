"""`network generate`: MSPs issued by each administration's own Caravan PKI, TLS, configtx,
process configurations, connection profiles, node.yaml and the ccaas package."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from node.network.generate import GeneratedNetwork, GenerateError, generate
from tests.conftest import PASSPHRASE
from tests.network.conftest import configtxgen
from tests.tools import require_tool
from trust_services.pki import OrgPki
from trust_services.profiles import ROLE_ATTRIBUTE_OID


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _ou(cert: x509.Certificate) -> list[str]:
    return [
        str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    ]


def _identities(network: GeneratedNetwork) -> list[tuple[str, Path, str]]:
    """(MSP id, MSP directory, node OU) of every Fabric signing identity."""
    out = []
    for admin in network.consortium.administrations:
        m = admin.msp_id
        out.append((m, network.admin_dir(m) / "msp", "admin"))
        out.append((m, network.orderer_dir(m) / "msp", "orderer"))
        out += [(m, network.peer_dir(m, p.name) / "msp", "peer") for p in admin.peers]
    return out


def _org_root(network: GeneratedNetwork, msp_id: str) -> x509.Certificate:
    return _cert(network.node_dir(msp_id) / "pki" / "orgs" / msp_id / "certs" / "root.pem")


def test_identities_chain_to_their_own_caravan_root(network: GeneratedNetwork) -> None:
    openssl = require_tool("openssl")
    identities = _identities(network)
    assert len(identities) == 9
    for msp_id, msp, role in identities:
        root = _cert(msp / "cacerts" / "root.pem")
        assert root == _org_root(network, msp_id), msp
        issuing = _cert(msp / "intermediatecerts" / "issuing.pem")
        leaf = _cert(msp / "signcerts" / "cert.pem")
        leaf.verify_directly_issued_by(issuing)
        issuing.verify_directly_issued_by(root)
        assert _ou(leaf) == [role], msp
        # openssl agrees on the whole path
        result = subprocess.run(
            [
                openssl, "verify", "-CAfile", str(msp / "cacerts" / "root.pem"),
                "-untrusted", str(msp / "intermediatecerts" / "issuing.pem"),
                str(msp / "signcerts" / "cert.pem"),
            ],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        # another administration's root does not certify it
        other = next(a for a in network.consortium.administrations if a.msp_id != msp_id)
        assert _org_root(network, other.msp_id) != root


def test_node_ous_are_enabled_everywhere(network: GeneratedNetwork) -> None:
    msps = [msp for _, msp, _ in _identities(network)] + [
        network.org_dir(a.msp_id) / "msp" for a in network.consortium.administrations
    ]
    for msp in msps:
        config = yaml.safe_load((msp / "config.yaml").read_text())["NodeOUs"]
        assert config["Enable"] is True
        assert {
            k: v["OrganizationalUnitIdentifier"] for k, v in config.items() if k != "Enable"
        } == {
            "ClientOUIdentifier": "client",
            "PeerOUIdentifier": "peer",
            "AdminOUIdentifier": "admin",
            "OrdererOUIdentifier": "orderer",
        }
        for folder in ("cacerts", "intermediatecerts", "tlscacerts", "tlsintermediatecerts"):
            assert list((msp / folder).glob("*.pem")), f"{msp}/{folder}"


def test_keys_are_p256_files_only_where_fabric_reads_them(network: GeneratedNetwork) -> None:
    for _, msp, _ in _identities(network):
        key_path = msp / "keystore" / "priv_sk"
        assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
        key = serialization.load_pem_private_key(key_path.read_bytes(), None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        assert key.curve.name == "secp256r1"
        cert = _cert(msp / "signcerts" / "cert.pem")
        assert cert.public_key() == key.public_key()
    plain_keys = {
        p.relative_to(network.root)
        for p in network.root.rglob("*")
        if p.is_file() and b"-----BEGIN PRIVATE KEY-----" in p.read_bytes()
    }
    expected = {
        p.relative_to(network.root)
        for _, msp, _ in _identities(network)
        for p in [msp / "keystore" / "priv_sk"]
    }
    for admin in network.consortium.administrations:
        m = admin.msp_id
        expected.add((network.admin_dir(m) / "tls" / "client.key").relative_to(network.root))
        expected.add((network.orderer_dir(m) / "tls" / "server.key").relative_to(network.root))
        for peer in admin.peers:
            expected.add(
                (network.peer_dir(m, peer.name) / "tls" / "server.key").relative_to(network.root)
            )
        # the channel MSP and the Caravan node directory hold no plain key
        assert not (network.org_dir(m) / "msp" / "keystore").exists()
    assert plain_keys == expected


def test_tls_certificates_name_their_hosts(network: GeneratedNetwork) -> None:
    openssl = require_tool("openssl")
    for admin in network.consortium.administrations:
        m = admin.msp_id
        for tls, host in [(network.peer_dir(m, p.name) / "tls", p.host) for p in admin.peers] + [
            (network.orderer_dir(m) / "tls", admin.orderer.host)
        ]:
            chain = x509.load_pem_x509_certificates((tls / "server.crt").read_bytes())
            assert len(chain) == 2  # leaf + issuing CA, so clients need only the root
            leaf = chain[0]
            sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            names = {str(v) for v in sans.get_values_for_type(x509.IPAddress)} | set(
                sans.get_values_for_type(x509.DNSName)
            )
            assert {host, "127.0.0.1", "localhost"} <= names
            eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
            assert {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH} <= set(eku)
            key = serialization.load_pem_private_key((tls / "server.key").read_bytes(), None)
            assert key.public_key() == leaf.public_key()
            assert _cert(tls / "server-leaf.crt") == leaf
            result = subprocess.run(
                [
                    openssl, "verify", "-purpose", "sslserver", "-CAfile", str(tls / "ca.crt"),
                    str(tls / "server-leaf.crt"),
                ],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            assert result.returncode == 0, result.stdout + result.stderr


def test_node_identity_is_a_fabric_client_with_its_key_in_the_key_store(
    network: GeneratedNetwork,
) -> None:
    from node.wallet import Wallet

    for admin in network.consortium.administrations:
        node_dir = network.node_dir(admin.msp_id)
        wallet = Wallet(node_dir / "wallet")
        assert wallet.names() == sorted(f"{admin.slug}-{r}" for r in ("admin", "node", "officer"))
        entry = wallet.get(f"{admin.slug}-node")
        assert _ou(entry.certificate) == ["client"]
        attrs = entry.certificate.extensions.get_extension_for_oid(
            x509.ObjectIdentifier(ROLE_ATTRIBUTE_OID)
        ).value
        assert isinstance(attrs, x509.UnrecognizedExtension)
        assert json.loads(attrs.value) == {"attrs": {"role": "node"}}
        pki = OrgPki(node_dir / "pki", admin.msp_id).unlock(PASSPHRASE)
        signer = wallet.signer(entry.name, {admin.msp_id: pki})
        assert signer.msp_id == admin.msp_id
        # nothing about the node's key outside the encrypted key store
        assert not any(
            b"PRIVATE KEY-----" in p.read_bytes() and b"ENCRYPTED" not in p.read_bytes()
            for p in node_dir.rglob("*")
            if p.is_file()
        )


def test_node_yaml_selects_the_fabric_backend(network: GeneratedNetwork) -> None:
    import node.config

    for admin in network.consortium.administrations:
        node_dir = network.node_dir(admin.msp_id)
        data = yaml.safe_load((node_dir / "node.yaml").read_text())
        ledger = data["ledger"]
        assert ledger["backend"] == "fabric"
        assert ledger["msp_id"] == admin.msp_id
        assert ledger["peer"]["endpoint"] == admin.peers[0].address
        assert (node_dir / ledger["peer"]["tls_ca"]).read_bytes() == (
            network.org_dir(admin.msp_id) / "tls-ca.pem"
        ).read_bytes()
        assert data["orgs"] == [{"org": admin.msp_id, "country": admin.country, "name": admin.name}]
        if hasattr(node.config, "PeerConfig"):  # the fabric backend's node.yaml keys
            config = node.config.load_config(node_dir)
            assert config.ledger.backend == "fabric"


def test_process_configuration(network: GeneratedNetwork) -> None:
    for admin in network.consortium.administrations:
        m = admin.msp_id
        peer = admin.peers[0]
        core = yaml.safe_load((network.peer_dir(m, peer.name) / "core.yaml").read_text())
        assert core["peer"]["localMspId"] == m
        assert core["peer"]["address"] == peer.address
        assert core["peer"]["gateway"]["enabled"] is True
        assert core["peer"]["gossip"]["reconnectInterval"] == "5s"
        assert core["peer"]["gossip"]["externalEndpoint"] == peer.address
        assert core["peer"]["tls"]["enabled"] is True
        assert core["chaincode"]["externalBuilders"][0]["name"] == "ccaas_builder"
        assert core["operations"]["listenAddress"] == f"127.0.0.1:{peer.operations_port}"
        orderer = yaml.safe_load((network.orderer_dir(m) / "orderer.yaml").read_text())
        general = orderer["General"]
        assert (general["ListenAddress"], general["ListenPort"]) == (
            "127.0.0.1",
            admin.orderer.port,
        )
        assert general["LocalMSPID"] == m and general["BootstrapMethod"] == "none"
        assert orderer["ChannelParticipation"]["Enabled"] is True
        assert orderer["Admin"]["TLS"]["ClientAuthRequired"] is True
        for ca in general["Cluster"]["RootCAs"]:
            assert (network.orderer_dir(m) / ca).is_file()


def test_configtx_describes_the_channel(network: GeneratedNetwork) -> None:
    configtx = yaml.safe_load((network.configtx_dir / "configtx.yaml").read_text())
    profile = configtx["Profiles"]["Caravan"]
    names = [a.msp_id for a in network.consortium.administrations]
    assert [o["ID"] for o in profile["Application"]["Organizations"]] == names
    assert [o["ID"] for o in profile["Orderer"]["Organizations"]] == names
    assert profile["Orderer"]["OrdererType"] == "etcdraft"
    consenters = profile["Orderer"]["EtcdRaft"]["Consenters"]
    assert [(c["Host"], c["Port"]) for c in consenters] == [
        (a.orderer.host, a.orderer.port) for a in network.consortium.administrations
    ]
    for c in consenters:
        assert (network.configtx_dir / c["ServerTLSCert"]).is_file()
    policies = profile["Application"]["Policies"]
    assert policies["Endorsement"] == {"Type": "ImplicitMeta", "Rule": "MAJORITY Endorsement"}
    assert policies["LifecycleEndorsement"]["Rule"] == "MAJORITY Endorsement"
    assert profile["Capabilities"] == {"V2_0": True}
    assert profile["Orderer"]["Capabilities"] == {"V2_0": True}
    assert profile["Application"]["Capabilities"] == {"V2_5": True}
    for org in profile["Application"]["Organizations"]:
        assert (network.configtx_dir / org["MSPDir"] / "config.yaml").is_file()
        assert org["AnchorPeers"] and org["OrdererEndpoints"]


def test_configtxgen_accepts_it(network: GeneratedNetwork, tmp_path: Path) -> None:
    tool = configtxgen()
    if tool is None:
        pytest.skip("configtxgen not found (set CARAVAN_FABRIC_BIN to Fabric 2.5's bin/)")
    block = tmp_path / "caravan.block"
    result = subprocess.run(
        [tool, "-configPath", str(network.configtx_dir), "-profile", "Caravan",
         "-channelID", "caravan", "-outputBlock", str(block)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    inspected = subprocess.run(
        [tool, "-inspectBlock", str(block)], capture_output=True, text=True, check=False
    )
    assert inspected.returncode == 0, inspected.stderr
    config = json.loads(inspected.stdout)
    groups = config["data"]["data"][0]["payload"]["data"]["config"]["channel_group"]["groups"]
    assert set(groups["Application"]["groups"]) == {"KZ-CUSTOMS", "UZ-CUSTOMS", "KG-CUSTOMS"}


def test_chaincode_package_is_ccaas(network: GeneratedNetwork) -> None:
    ids = set()
    for admin in network.consortium.administrations:
        data = network.package(admin.msp_id).read_bytes()
        package_id = network.package_id(admin.msp_id)
        assert package_id == f"caravan_1.0:{hashlib.sha256(data).hexdigest()}"
        ids.add(package_id)
        with tarfile.open(fileobj=io.BytesIO(data)) as outer:
            assert sorted(outer.getnames()) == ["code.tar.gz", "metadata.json"]
            metadata = json.loads(outer.extractfile("metadata.json").read())  # type: ignore[union-attr]
            code = outer.extractfile("code.tar.gz").read()  # type: ignore[union-attr]
        assert metadata == {"type": "ccaas", "label": "caravan_1.0"}
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(code))) as inner:
            connection = json.loads(inner.extractfile("connection.json").read())  # type: ignore[union-attr]
        assert connection["address"] == admin.chaincode.address
        assert connection["tls_required"] is False
    assert len(ids) == 3  # each administration dials its own chaincode server


def test_connection_profiles(network: GeneratedNetwork) -> None:
    for admin in network.consortium.administrations:
        profile = json.loads(network.connection_profile(admin.msp_id).read_text())
        assert profile["client"]["organization"] == admin.msp_id
        assert set(profile["organizations"]) == {"KZ-CUSTOMS", "UZ-CUSTOMS", "KG-CUSTOMS"}
        peer = profile["peers"][admin.peer_id(admin.peers[0])]
        assert peer["url"] == f"grpcs://{admin.peers[0].address}"
        assert x509.load_pem_x509_certificates(peer["tlsCACerts"]["pem"].encode())[0] == (
            _org_root(network, admin.msp_id)
        )


def test_generate_again_keeps_identities_and_packages(network: GeneratedNetwork) -> None:
    def snapshot() -> dict[str, bytes]:
        files = [msp / "signcerts" / "cert.pem" for _, msp, _ in _identities(network)]
        files += [network.package(a.msp_id) for a in network.consortium.administrations]
        files += [network.configtx_dir / "configtx.yaml"]
        return {str(p): p.read_bytes() for p in files}

    before = snapshot()
    again = generate(network.consortium, network.root, PASSPHRASE)
    assert again.root == network.root
    assert snapshot() == before


def test_refusals(network: GeneratedNetwork, tmp_path: Path) -> None:
    with pytest.raises(GenerateError, match=r"KZ-CUSTOMS: .*(passphrase|decrypt)"):
        generate(network.consortium, network.root, b"not the passphrase")
    (tmp_path / "stuff.txt").write_text("mine")
    with pytest.raises(GenerateError, match="is not empty and holds no generated network"):
        generate(network.consortium, tmp_path, PASSPHRASE)
    with pytest.raises(GenerateError, match="passphrase must not be empty"):
        generate(network.consortium, tmp_path / "new", b"")
    with pytest.raises(GenerateError, match="--index-url must be"):
        generate(network.consortium, tmp_path / "new", PASSPHRASE, index_url="mysql://x/y")
    with pytest.raises(GenerateError, match="is not a generated network"):
        GeneratedNetwork.open(tmp_path)


def test_fabric_certificates_refuse_bad_roles_and_hostless_tls(fresh_pki: OrgPki) -> None:
    from trust_services.errors import PkiError

    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    with pytest.raises(PkiError, match="a Fabric role is one of client, peer, admin, orderer"):
        fresh_pki.issue_fabric_certificate(key, role="member", common_name="x", label="x")
    with pytest.raises(PkiError, match="needs at least one host name"):
        fresh_pki.issue_fabric_certificate(key, role="peer", common_name="x", label="x", tls=True)
    issued = fresh_pki.issue_fabric_certificate(
        key, role="peer", common_name="p", label="p-tls", tls=True, tls_hosts=["::1", "p.kz"]
    )
    sans = issued.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert [str(v) for v in sans.value.get_values_for_type(x509.IPAddress)] == ["::1"]
    assert sans.value.get_values_for_type(x509.DNSName) == ["p.kz"]
    # recorded in the CA's index like every certificate it issues (so it can be revoked)
    assert fresh_pki.issued(issued.serial).profile == "fabric-tls"
    assert fresh_pki.revoke(issued.serial, "key-compromise").status == "revoked"
