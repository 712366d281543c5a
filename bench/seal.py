"""Signing throughput: CAdES seals per second and PAdES time per PDF.

    .venv/bin/python bench/seal.py [--seconds 3] [--pdfs 20] [--algorithm ec-p256]

Prints human-readable figures, then one JSON line (last) with every figure. Single
thread, in-process TSA, keys loaded once (as a running node keeps them).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.pdf_samples import multi_page_pdf
from trust_services.cades import CadesSigner, Level
from trust_services.keystore import KeyAlgorithm
from trust_services.pades import PadesLevel, PadesSigner, sign_pdf
from trust_services.pki import OrgPki, init_pki
from trust_services.revocation import PkiRevocationSource
from trust_services.tsa import SerialAllocator, TimestampAuthority

RECORD = {
    "aeo_id": "KZ-AEO-2025-000123",
    "holder": {"tin": "KZ123456789012", "name": "Khorgos Logistics LLP"},
    "status": "valid",
    "aeo_type": "AEOF",
    "valid_until": "2028-03-01",
}


def rate(func: Callable[[], object], seconds: float) -> float:
    """Calls per second of ``func`` over about ``seconds`` (after a short warm-up)."""
    for _ in range(50):
        func()
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(100):
            func()
        count += 100
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - start)


def per_call_ms(func: Callable[[], object], n: int) -> dict[str, float]:
    func()  # warm-up (pyHanko caches the dummy timestamp, imports, ...)
    times = []
    for _ in range(n):
        start = time.perf_counter()
        func()
        times.append((time.perf_counter() - start) * 1000)
    return {"median_ms": statistics.median(times), "p90_ms": sorted(times)[int(0.9 * n) - 1]}


def bench_cades(pki: OrgPki, tsa: TimestampAuthority, seconds: float) -> dict[str, Any]:
    signer = CadesSigner.for_org(pki, timestamper=tsa, revocation=PkiRevocationSource(pki))
    document = os.urandom(2048)
    figures = {
        "cades_bb_per_s": rate(lambda: signer.sign(document), seconds),
        "cades_bb_json_per_s": rate(lambda: signer.sign_json(RECORD), seconds),
        "cades_bt_per_s": rate(lambda: signer.sign(document, Level.B_T), seconds),
        "cades_blt_per_s": rate(lambda: signer.sign(document, Level.B_LT), seconds / 3),
    }
    print("CAdES (single thread, detached, 2 KiB document / small JSON record)")
    print(f"  B-B         {figures['cades_bb_per_s']:9,.0f} seals/s   (target >= 2,000/s)")
    print(f"  B-B JSON    {figures['cades_bb_json_per_s']:9,.0f} seals/s   (RFC 8785 included)")
    print(f"  B-T         {figures['cades_bt_per_s']:9,.0f} seals/s   (in-process TSA)")
    print(f"  B-LT        {figures['cades_blt_per_s']:9,.0f} seals/s   (fresh OCSP + CRL each)")
    return figures


def bench_pades(pki: OrgPki, tsa: TimestampAuthority, n: int) -> dict[str, Any]:
    signer = PadesSigner.for_org(pki, timestamper=tsa, revocation=PkiRevocationSource(pki))
    pdf = multi_page_pdf([f"Customs declaration page {i}" for i in range(1, 4)])
    figures: dict[str, Any] = {"pdf_bytes": len(pdf)}
    print(f"PAdES (pyHanko 0.38, {len(pdf)}-byte 3-page PDF, {n} signatures per level)")
    for level in PadesLevel:
        result = per_call_ms(lambda level=level: sign_pdf(pdf, signer, level), n)  # type: ignore[misc]
        key = level.value.lower().replace("-", "_")
        figures[f"pades_{key}_median_ms"] = result["median_ms"]
        figures[f"pades_{key}_p90_ms"] = result["p90_ms"]
        target = "   (target <= 150 ms)" if level is PadesLevel.B_LTA else ""
        print(
            f"  {level.value:<6} median {result['median_ms']:6.1f} ms   "
            f"p90 {result['p90_ms']:6.1f} ms{target}"
        )
    return figures


def bench_validation(pki: OrgPki, tsa: TimestampAuthority, seconds: float) -> dict[str, Any]:
    """Full CAdES-B-T validations/s with revocation data cached (bench/validate.py has more)."""
    from bench.validate import measure
    from trust_services.fetch import CachingRevocationSource
    from trust_services.validation import CertificateValidator

    source = CachingRevocationSource(PkiRevocationSource(pki))
    signer = CadesSigner.for_org(pki, timestamper=tsa, revocation=source)
    items = []
    for i in range(500):
        data = f'{{"aeo_id": "KZ-AEO-2026-{i:06d}", "status": "valid"}}'.encode()
        items.append((signer.sign(data, Level.B_T), data))
    validator = CertificateValidator([pki.certificate("root")], source=source)
    rate, _count = measure(items, validator, seconds)
    print(f"CAdES-B-T full validation, revocation cached: {rate:8.1f} /s   (target >= 500/s)")
    return {"cades_b_t_validations_per_s": round(rate, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0, help="per CAdES figure")
    parser.add_argument("--pdfs", type=int, default=20, help="PDFs signed per PAdES level")
    parser.add_argument(
        "--algorithm", default=KeyAlgorithm.EC_P256.value, choices=[a.value for a in KeyAlgorithm]
    )
    args = parser.parse_args()
    machine = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "algorithm": args.algorithm,
    }
    print(f"machine: {machine}  (other work on the same cores makes these figures noisy)")
    with tempfile.TemporaryDirectory() as tmp:
        pki = init_pki(
            Path(tmp),
            "KZ-CUSTOMS",
            country="KZ",
            name="KZ Customs (bench)",
            passphrase=b"bench-passphrase",
            algorithm=KeyAlgorithm(args.algorithm),
        )
        tsa = TimestampAuthority(
            pki.key("tsa"),
            pki.certificate("tsa"),
            [pki.certificate("issuing")],
            serials=SerialAllocator(pki.path / "tsa" / "serial"),
        )
        results: dict[str, Any] = {"bench": "seal", **machine}
        results.update(bench_cades(pki, tsa, args.seconds))
        results.update(bench_pades(pki, tsa, args.pdfs))
        results.update(bench_validation(pki, tsa, args.seconds))
    print(json.dumps(results, sort_keys=True))


if __name__ == "__main__":
    main()
