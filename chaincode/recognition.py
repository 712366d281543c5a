"""Recognition: is the holder of AEO certificate C recognised in country B at time t?

>>> query = {"aeo_id": "KZ-AEO-2025-000123", "country": "UZ", "at": "2026-06-01T00:00:00Z"}
>>> invoke(stub, "IsRecognised", [json.dumps(query)])

Yes when (DOMAIN.md): C is valid at t; an MRA between C's issuing administration and
the administration of B is in force at t; C's type (at t) is among the types B
recognises under that MRA; and the holder consented to MRA data sharing. The answer
carries every reason and the evidence (AEO version and tx id, each MRA's state at t
and tx ids). Cost: one read of the AEO status index, one member read, and a
partial-key scan of the MRAs between the two administrations — no scan of AEOs.
"""

from __future__ import annotations

from typing import Any

from . import registry
from .aeo import AEO_ID, status_at, status_index
from .context import COUNTRY, Context, Fields, one_object
from .mra import mras_between, state_at
from .timeutil import format_time

__all__ = ["FUNCTIONS", "is_recognised"]


def is_recognised(ctx: Context, aeo_id: str, country: str, at: int) -> dict[str, Any]:
    index = status_index(ctx, aeo_id)
    aeo = status_at(index, at)
    when = format_time(at)
    reasons: list[str] = []
    ok = True
    if aeo.status == "valid":
        reasons.append(f"AEO certificate {aeo_id} is valid at {when}")
    else:
        ok = False
        reasons.append(f"AEO certificate {aeo_id} is {aeo.status} at {when}")
    evidence: dict[str, Any] = {
        "aeo": {
            "aeo_id": aeo_id,
            "version": aeo.version,
            "tx_id": aeo.tx_id,
            "status_at": aeo.status,
        },
        "mras": [],
    }
    issuer = index["issuer"]
    if country == index["country"]:
        reasons.append(f"{aeo_id} is a domestic certificate of {country}")
        return {"recognised": ok, "reasons": reasons, "evidence": evidence}
    if not aeo.mra_sharing_consent and aeo.version is not None:
        ok = False
        reasons.append("the holder has not consented to sharing its data with MRA partners")
    partner = registry.member_by_country(ctx, country)
    if partner is None:
        reasons.append(f"no member administration for country {country}")
        return {"recognised": False, "reasons": reasons, "evidence": evidence}
    in_force = []
    for mra in mras_between(ctx, issuer, partner["msp_id"]):
        state = state_at(mra, at)
        evidence["mras"].append(
            {
                "mra_id": mra["mra_id"],
                "state_at": state,
                "tx_ids": [s["tx_id"] for s in mra["steps"]],
            }
        )
        if state == "in_force":
            in_force.append(mra)
    if not in_force:
        ok = False
        reasons.append(f"no MRA between {issuer} and {partner['msp_id']} is in force at {when}")
        return {"recognised": ok, "reasons": reasons, "evidence": evidence}
    covering = [
        m for m in in_force if aeo.aeo_type in m["recognised_types"].get(partner["msp_id"], [])
    ]
    if covering:
        reasons.append(
            f"MRA {covering[0]['mra_id']} is in force and {partner['msp_id']} "
            f"recognises {aeo.aeo_type} under it"
        )
    else:
        ok = False
        names = ", ".join(m["mra_id"] for m in in_force)
        reasons.append(
            f"{partner['msp_id']} does not recognise type {aeo.aeo_type} under MRA {names}"
        )
    return {"recognised": ok, "reasons": reasons, "evidence": evidence}


def check(ctx: Context, args: list[str]) -> Any:
    f = Fields(one_object(args), "query")
    aeo_id = f.text("aeo_id", pattern=AEO_ID)
    country = f.text("country", pattern=COUNTRY)
    at = f.time("at")
    f.done()
    return is_recognised(ctx, aeo_id, country, at)


FUNCTIONS = {"IsRecognised": check}
