"""ISDA SIMM oracle: Open Source Risk Engine's SimmCalculator (pip package
open-source-risk-engine) on a CRIF file, for the tests of crates/solvent-simm and bench/simm.sh.

Usage: simm_ore.py [--post] [--one-day] CRIF.tsv VERSION [VERSION...]
  (VERSION: 2.6, 2.7, 2.8, 2.8+2512; --one-day: the 1-day margin period of risk)

Prints JSON: {"seconds": {version: s}, "results": {version: {netting_set: breakdown}}}, where a
breakdown holds "total", "margin_types" {Delta, Vega, Curvature, BaseCorr, AdditionalIM}, "risk_classes" {rc:
{Delta, Vega, Curvature, BaseCorr, All}} and "product_classes" {pc: {"total", "margin_types", "risk_classes"}}:
ORE's collect ("Call") side, or its "Post" side with --post; result and calculation currency USD,
10-day margin period.
`seconds` is the time ORE takes to load the CRIF and compute SIMM for every netting set.
The bucket of each equity, commodity and credit qualifier is given to ORE's bucket mapper from the CRIF.
"""
import csv
import io
import json
import sys
import time

import ORE

CONFIGS = {
    "2.6": ORE.SimmConfiguration_ISDA_V2_6,
    "2.7": ORE.SimmConfiguration_ISDA_V2_7_2412,
    "2.8": ORE.SimmConfiguration_ISDA_V2_8_2506,
    "2.8+2512": ORE.SimmConfiguration_ISDA_V2_8_2512,
}
R = ORE.CrifRecord
S = ORE.SimmConfiguration
PRODUCT_CLASSES = {
    "RatesFX": R.ProductClass_RatesFX,
    "Credit": R.ProductClass_Credit,
    "Equity": R.ProductClass_Equity,
    "Commodity": R.ProductClass_Commodity,
}
RISK_CLASSES = {
    "InterestRate": S.RiskClass_InterestRate,
    "CreditQualifying": S.RiskClass_CreditQualifying,
    "CreditNonQualifying": S.RiskClass_CreditNonQualifying,
    "Equity": S.RiskClass_Equity,
    "Commodity": S.RiskClass_Commodity,
    "FX": S.RiskClass_FX,
}
MARGIN_TYPES = {
    "Delta": S.MarginType_Delta,
    "Vega": S.MarginType_Vega,
    "Curvature": S.MarginType_Curvature,
    "BaseCorr": S.MarginType_BaseCorr,
    "AdditionalIM": S.MarginType_AdditionalIM,
    "All": S.MarginType_All,
}
BUCKETED = {
    "Risk_Equity": R.RiskType_Equity,
    "Risk_EquityVol": R.RiskType_Equity,
    "Risk_Commodity": R.RiskType_Commodity,
    "Risk_CommodityVol": R.RiskType_Commodity,
    "Risk_CreditQ": R.RiskType_CreditQ,
    "Risk_CreditVol": R.RiskType_CreditQ,
    "Risk_CreditNonQ": R.RiskType_CreditNonQ,
    "Risk_CreditVolNonQ": R.RiskType_CreditNonQ,
}


def get(res, pc, rc, mt):
    return res.get(pc, rc, mt, "All") if res.has(pc, rc, mt, "All") else None


def breakdown(res, pc):
    margin_types = {m: get(res, pc, S.RiskClass_All, v) for m, v in MARGIN_TYPES.items() if m != "All"}
    risk_classes = {}
    for rc_name, rc in RISK_CLASSES.items():
        values = {m: get(res, pc, rc, v) for m, v in MARGIN_TYPES.items()}
        if any(x is not None for x in values.values()):
            risk_classes[rc_name] = values
    return {
        "total": get(res, pc, S.RiskClass_All, S.MarginType_All),
        "margin_types": margin_types,
        "risk_classes": risk_classes,
    }


def run(text, rows, version, side, mpor):
    mapper = ORE.SimmBucketMapperBase()
    for row in rows:
        risk_type = BUCKETED.get(row["RiskType"])
        if risk_type is not None and not mapper.has(risk_type, row["Qualifier"]):
            mapper.addMapping(risk_type, row["Qualifier"], row["Bucket"])
    start = time.perf_counter()
    config = CONFIGS[version](mapper, mpor)
    crif = ORE.Crif()
    crif.setCsvLoaderConfig(config)
    crif.fromCSVString(text)
    calculator = ORE.SimmCalculator(crif, config)
    seconds = time.perf_counter() - start
    out = {}
    for netting_set in sorted({row.get("PortfolioID", "") for row in rows}):
        res = calculator.finalSimmResults(side, ORE.NettingSetDetails(netting_set)).second
        entry = breakdown(res, R.ProductClass_All)
        entry["product_classes"] = {
            name: breakdown(res, pc)
            for name, pc in PRODUCT_CLASSES.items()
            if res.has(pc, S.RiskClass_All, S.MarginType_All, "All")
        }
        out[netting_set] = entry
    return out, seconds


def main():
    args = sys.argv[1:]
    side = S.SimmSide_Call
    mpor = 10
    while args and args[0].startswith("--"):
        if args[0] == "--post":
            side = S.SimmSide_Post
        elif args[0] == "--one-day":
            mpor = 1
        else:
            raise SystemExit(f"unknown option {args[0]}")
        args = args[1:]
    path, versions = args[0], args[1:]
    text = open(path).read()
    rows = list(csv.DictReader(io.StringIO(text), delimiter="\t"))
    results, seconds = {}, {}
    for version in versions:
        results[version], seconds[version] = run(text, rows, version, side, mpor)
    json.dump({"seconds": seconds, "results": results}, sys.stdout)


if __name__ == "__main__":
    main()
