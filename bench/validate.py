"""Validation throughput: full CAdES-B-T validations per second and PAdES per PDF.

    .venv/bin/python bench/validate.py [--seconds 3] [--signatures 500] [--pdfs 10]

"Full" means everything EN 319 102-1 asks of a B-T signature: message digest and
signature, signing-certificate-v2, the signature timestamp (imprint, TSA signature,
ESSCertIDv2, TSA chain with critical id-kp-timeStamping, TSA revocation), the signer's
chain to the trust anchor, validity at the POE, and revocation of every non-anchor
certificate (seal and TSA by OCSP, issuing CA by the root's CRL). Every signature is
distinct (its own data, signature value and timestamp token); revocation data comes
from a :class:`CachingRevocationSource` — fetched once, then cached until nextUpdate, as
:class:`HttpRevocationSource` does online. Single thread, single process.

Prints human-readable figures, then one JSON line (last) with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.pdf_samples import multi_page_pdf
from trust_services.cades import CadesSigner, Level
from trust_services.fetch import CachingRevocationSource
from trust_services.pades import PadesSigner, sign_pdf
from trust_services.pki import init_pki
from trust_services.revocation import PkiRevocationSource
from trust_services.tsa import SerialAllocator, TimestampAuthority
from trust_services.validation import CertificateValidator, Indication, validate_cades
from trust_services.validation.pades import validate_pades


def measure(
    items: list[tuple[bytes, bytes]], validator: CertificateValidator, seconds: float
) -> tuple[float, int]:
    """Validations per second over about ``seconds``, cycling through ``items``."""
    for sig, data in items[:20]:  # warm-up: fills the revocation and path caches
        assert validate_cades(sig, data, validator).indication is Indication.TOTAL_PASSED
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for sig, data in items:
            report = validate_cades(sig, data, validator)
            if report.indication is not Indication.TOTAL_PASSED:
                raise SystemExit(f"validation failed: {report.summary}")
        count += len(items)
    return count / (time.perf_counter() - start), count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--signatures", type=int, default=500)
    parser.add_argument("--pdfs", type=int, default=10)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        pki = init_pki(root, "KZ-CUSTOMS", country="KZ", name="KZ Customs", passphrase=b"bench")
        tsa = TimestampAuthority(
            pki.key("tsa"),
            pki.certificate("tsa"),
            [pki.certificate("issuing")],
            serials=SerialAllocator(root / "tsa.serial"),
        )
        source = CachingRevocationSource(PkiRevocationSource(pki))
        signer = CadesSigner.for_org(pki, timestamper=tsa, revocation=source)
        items = []
        for i in range(args.signatures):
            data = f'{{"aeo_id": "KZ-AEO-2025-{i:06d}", "status": "valid"}}'.encode()
            items.append((signer.sign(data, Level.B_T), data))
        validator = CertificateValidator([pki.certificate("root")], source=source)
        cades_rate, cades_n = measure(items, validator, args.seconds)

        json_items = []
        for i in range(min(args.signatures, 200)):
            record = {"aeo_id": f"KZ-AEO-2025-{i:06d}", "status": "valid", "n": i}
            data = json.dumps(record, indent=1).encode()
            json_items.append((signer.sign_json(data, Level.B_T), data))
        json_rate, _ = measure(json_items, validator, args.seconds / 2)

        lt_items = [(signer.sign(d, Level.B_LT), d) for _s, d in items[:200]]
        offline = CertificateValidator([pki.certificate("root")])
        lt_rate, _ = measure(lt_items, offline, args.seconds / 2)

        pades_signer = PadesSigner.for_org(pki, timestamper=tsa, revocation=source)
        pdf = multi_page_pdf([f"Customs declaration page {n}" for n in range(1, 4)])
        pdfs = {lvl: sign_pdf(pdf, pades_signer, lvl) for lvl in ("B-T", "B-LTA")}
        pades: dict[str, float] = {}
        for lvl, signed in pdfs.items():
            validate_pades(signed, validator)
            start = time.perf_counter()
            for _ in range(args.pdfs):
                (report,) = validate_pades(signed, validator)
                assert report.indication is Indication.TOTAL_PASSED, report.summary
            pades[lvl] = (time.perf_counter() - start) / args.pdfs

    figures: dict[str, Any] = {
        "bench": "validate",
        "cades_b_t_validations_per_s": round(cades_rate, 1),
        "cades_b_t_ms_each": round(1000 / cades_rate, 3),
        "cades_b_t_validated": cades_n,
        "json_seal_b_t_validations_per_s": round(json_rate, 1),
        "cades_b_lt_offline_validations_per_s": round(lt_rate, 1),
        "pades_b_t_ms": round(pades["B-T"] * 1000, 1),
        "pades_b_lta_ms": round(pades["B-LTA"] * 1000, 1),
        "pades_b_t_per_s": round(1 / pades["B-T"], 1),
        "target_cades_per_s": 500,
        "meets_target": cades_rate >= 500,
        "machine": f"{platform.machine()} {os.cpu_count()} cpu, Python {platform.python_version()}",
    }
    print(f"machine: {figures['machine']} ({platform.processor() or platform.platform()})")
    print(f"CAdES-B-T full validation:  {cades_rate:8.1f} /s  ({1000 / cades_rate:.3f} ms each)")
    print(f"JSON seal B-T (RFC 8785):   {json_rate:8.1f} /s")
    print(f"CAdES-B-LT offline:         {lt_rate:8.1f} /s  (embedded OCSP/CRL)")
    print(f"PAdES-B-T validation:       {pades['B-T'] * 1000:8.1f} ms per PDF")
    print(f"PAdES-B-LTA validation:     {pades['B-LTA'] * 1000:8.1f} ms per PDF")
    print(f"target ≥ 500 CAdES-B-T/s:   {'met' if cades_rate >= 500 else 'NOT met'}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
