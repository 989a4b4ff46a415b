"""ISDA SIMM oracle: Open Source Risk Engine's SimmCalculator (pip package
open-source-risk-engine) on a CRIF file, for the tests of crates/solvent-simm and bench/simm.sh.

Usage: simm_ore.py [--post] [--one-day] [--regulations] CRIF.tsv VERSION [VERSION...]
  (VERSION: 2.6, 2.7, 2.8, 2.8+2512 through the package's SimmConfiguration classes; any other
  name ORE's parseSimmVersion reads, e.g. 2.2, 2.3, 2.3.8, 2.5, 2.5A, 2.6.5, through ORE's
  application (OREApp with the SIMM analytic and its "simm" report), which builds the
  configuration with ORE's buildSimmConfiguration; --one-day: the 1-day margin period of risk;
  --regulations: ORE's application from an ore.xml with enforceIMRegulations=Y, each netting
  set's figures those of its winning regulation, named under "regulation"; VERSION as ORE's
  parseSimmVersion reads it, e.g. 2.6 or 2.8+2506; --calculation-currency CCY: ORE's application
  with that calculation currency, results still in USD; --schedule ASOF or
  --schedule-regulations ASOF: Schedule IM (ORE's imschedule analytic and its im_schedule
  report) as of ASOF, the regulations not enforced or enforced; VERSION is then only passed on;
  --result-currency CCY --fx PAIR=RATE...: SIMM in that result currency through ORE's
  application, its market's FX spots the given rates, e.g. --fx EURUSD=1.085)

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


SIDES = {S.SimmSide_Call: "Call", S.SimmSide_Post: "Post"}


def report_columns(report):
    """The columns of an ORE in-memory report, by header."""
    out = {}
    for j in range(report.columns()):
        kind = report.columnType(j)
        if kind == 0:
            values = report.dataAsSize(j)
        elif kind == 1:
            values = report.dataAsReal(j)
        else:
            values = report.dataAsString(j)
        out[report.header(j)] = list(values)
    return out


def run_app(text, rows, version, side, mpor, calculation="USD"):
    """SIMM through ORE's application: the SIMM analytic on the CRIF, in USD (amounts from
    AmountUSD, results in USD), for a calculation currency (USD unless given)."""
    inputs = ORE.InputParameters()
    inputs.setAsOfDate("2024-01-31")
    inputs.setBaseCurrency("USD")
    inputs.setSimmVersion(version)
    inputs.setMporDays(mpor)
    inputs.setCrifFromBuffer(text, "\n", "\t")
    inputs.setSimmCalculationCurrencyCall(calculation)
    inputs.setSimmCalculationCurrencyPost(calculation)
    inputs.setSimmResultCurrency("USD")
    # The SIMM analytic builds a market first; with USD throughout it needs none of it.
    inputs.setConventions("<Conventions/>")
    inputs.setCurveConfigs("<CurveConfiguration/>")
    inputs.setTodaysMarketParams("<TodaysMarket/>")
    inputs.setPricingEngine("<PricingEngines/>")
    inputs.insertAnalytic("SIMM")
    start = time.perf_counter()
    app = ORE.OREApp(inputs, "", 0)
    app.run([], [])
    seconds = time.perf_counter() - start
    errors = list(app.getErrors()) if hasattr(app, "getErrors") else []
    if errors:
        raise SystemExit(f"ORE {version}: {errors}")
    cols = report_columns(app.getReport("simm"))
    figures = {}
    for i in range(len(cols["Portfolio"])):
        if cols["Bucket"][i] != "All" or cols["SimmSide"][i] != SIDES[side]:
            continue
        key = (cols["Portfolio"][i], cols["ProductClass"][i], cols["RiskClass"][i], cols["MarginType"][i])
        figures[key] = cols["InitialMargin"][i]

    def table(ns, pc):
        get = lambda rc, mt: figures.get((ns, pc, rc, mt))
        margin_types = {m: get("All", m) for m in MARGIN_TYPES if m != "All"}
        risk_classes = {}
        for rc in RISK_CLASSES:
            values = {m: get(rc, m) for m in MARGIN_TYPES}
            if any(x is not None for x in values.values()):
                risk_classes[rc] = values
        return {"total": get("All", "All"), "margin_types": margin_types, "risk_classes": risk_classes}

    out = {}
    for netting_set in sorted({row.get("PortfolioID", "") for row in rows}):
        entry = table(netting_set, "All")
        entry["product_classes"] = {
            pc: table(netting_set, pc) for pc in PRODUCT_CLASSES if (netting_set, pc, "All", "All") in figures
        }
        out[netting_set] = entry
    return out, seconds


ORE_XML = """<?xml version="1.0"?>
<ORE>
  <Setup>
    <Parameter name="asofDate">{asof}</Parameter>
    <Parameter name="inputPath">{dir}</Parameter>
    <Parameter name="outputPath">{dir}</Parameter>
    <Parameter name="logFile">log.txt</Parameter>
    <Parameter name="logMask">0</Parameter>
    <Parameter name="baseCurrency">USD</Parameter>
    <Parameter name="conventionsFile">conventions.xml</Parameter>
    <Parameter name="curveConfigFile">curveconfig.xml</Parameter>
    <Parameter name="marketConfigFile">todaysmarket.xml</Parameter>
    <Parameter name="pricingEnginesFile">pricingengine.xml</Parameter>
    <Parameter name="marketDataFile">market.txt</Parameter>
    <Parameter name="fixingDataFile">fixings.txt</Parameter>
  </Setup>
  <Markets/>
  <Analytics>
    <Analytic type="{analytic}">
      <Parameter name="active">Y</Parameter>
      <Parameter name="version">{version}</Parameter>
      <Parameter name="mporDays">{mpor}</Parameter>
      <Parameter name="crif">crif.csv</Parameter>
      <Parameter name="calculationCurrency">USD</Parameter>
      <Parameter name="resultCurrency">{result}</Parameter>
      <Parameter name="enforceIMRegulations">{enforce}</Parameter>
    </Analytic>
  </Analytics>
</ORE>
"""


def run_ore_xml(text, version, mpor, analytic, report, enforce, asof="2024-01-31", result="USD", fx=()):
    """ORE's application from an ore.xml (its Python inputs have no setter for
    enforceIMRegulations): one analytic on the CRIF, written comma-separated with fields quoted
    where they hold commas, as ORE's file reader takes it; `fx`, pairs such as ("EURUSD", 1.085),
    become the market's FX spots for a result currency other than USD. Returns the report's
    columns."""
    import tempfile, os
    with tempfile.TemporaryDirectory() as d:
        spots = "".join(f'<FxSpot pair="{p}">FX/{p[:3]}/{p[3:]}</FxSpot>' for p, _ in fx)
        market = (f'<TodaysMarket><Configuration id="default"><FxSpotsId>default</FxSpotsId></Configuration>'
                  f'<FxSpots id="default">{spots}</FxSpots></TodaysMarket>') if fx else "<TodaysMarket/>"
        quotes = "".join(f"{asof.replace('-', '')} FX/RATE/{p[:3]}/{p[3:]} {r!r}\n" for p, r in fx)
        for name, body in [("conventions.xml", "<Conventions/>"), ("curveconfig.xml", "<CurveConfiguration/>"),
                           ("todaysmarket.xml", market), ("pricingengine.xml", "<PricingEngines/>"),
                           ("market.txt", quotes), ("fixings.txt", "")]:
            with open(os.path.join(d, name), "w") as f:
                f.write(body)
        with open(os.path.join(d, "crif.csv"), "w", newline="") as f:
            table = list(csv.reader(io.StringIO(text), delimiter="\t"))
            csv.writer(f, lineterminator="\n").writerows(table)
        with open(os.path.join(d, "ore.xml"), "w") as f:
            f.write(ORE_XML.format(dir=d, version=version, mpor=mpor, analytic=analytic,
                                   enforce="Y" if enforce else "N", asof=asof, result=result))
        params = ORE.Parameters()
        params.fromFile(os.path.join(d, "ore.xml"))
        start = time.perf_counter()
        app = ORE.OREApp(params)
        app.run()
        seconds = time.perf_counter() - start
        if report not in app.getReportNames():
            log = open(os.path.join(d, "log.txt")).read()
            raise SystemExit(f"ORE {version} {analytic}: no {report} report\n{log[-3000:]}")
        return report_columns(app.getReport(report)), seconds


def run_schedule(text, rows, version, side, mpor, enforce, asof):
    """Schedule IM: ORE's IMScheduleCalculator through its application's imschedule analytic,
    its im_schedule report: per netting set the winning regulation, gross IM per product class
    and in all, gross and net replacement cost, net-to-gross ratio and Schedule IM."""
    cols, seconds = run_ore_xml(text, version, mpor, "imschedule", "im_schedule", enforce, asof)
    out = {}
    for i in range(len(cols["Portfolio"])):
        if cols["Side"][i] != SIDES[side] or cols["Portfolio"][i] == "All":
            continue
        entry = out.setdefault(cols["Portfolio"][i], {"product_classes": {}})
        pc = cols["ProductClass"][i]
        if pc == "All":
            entry.update({"regulation": cols["Regulation"][i], "gross_im": cols["GrossIM"][i],
                          "gross_rc": cols["GrossCurrentRC"][i], "net_rc": cols["NetCurrentRC"][i],
                          "ngr": cols["NetToGrossRatio"][i], "schedule_im": cols["ScheduleIM"][i]})
        else:
            entry["product_classes"][pc] = cols["GrossIM"][i]
    return out, seconds


def run_regulations(text, rows, version, side, mpor, enforce=True, result="USD", fx=()):
    """SIMM through ORE's application from an ore.xml: the regulations enforced (or not), in a
    result currency (USD unless given, with the FX spots `fx`)."""
    cols, seconds = run_ore_xml(text, version, mpor, "simm", "simm", enforce, result=result, fx=fx)
    figures, regulation = {}, {}
    for i in range(len(cols["Portfolio"])):
        if cols["Bucket"][i] != "All" or cols["SimmSide"][i] != SIDES[side]:
            continue
        ns = cols["Portfolio"][i]
        figures[(ns, cols["ProductClass"][i], cols["RiskClass"][i], cols["MarginType"][i])] = cols["InitialMargin"][i]
        regulation[ns] = cols["Regulation"][i]

    def table(ns, pc):
        get = lambda rc, mt: figures.get((ns, pc, rc, mt))
        margin_types = {m: get("All", m) for m in MARGIN_TYPES if m != "All"}
        risk_classes = {}
        for rc in RISK_CLASSES:
            values = {m: get(rc, m) for m in MARGIN_TYPES}
            if any(x is not None for x in values.values()):
                risk_classes[rc] = values
        return {"total": get("All", "All"), "margin_types": margin_types, "risk_classes": risk_classes}

    out = {}
    for netting_set in sorted({row.get("PortfolioID", "") for row in rows}):
        if (netting_set, "All", "All", "All") not in figures:
            continue
        entry = table(netting_set, "All")
        entry["regulation"] = regulation[netting_set]
        entry["product_classes"] = {
            pc: table(netting_set, pc) for pc in PRODUCT_CLASSES if (netting_set, pc, "All", "All") in figures
        }
        out[netting_set] = entry
    return out, seconds


def main():
    args = sys.argv[1:]
    side = S.SimmSide_Call
    mpor = 10
    regulations = False
    calculation = None
    schedule = None
    result = None
    fx = []
    while args and args[0].startswith("--"):
        if args[0] == "--post":
            side = S.SimmSide_Post
        elif args[0] == "--one-day":
            mpor = 1
        elif args[0] == "--regulations":
            regulations = True
        elif args[0] in ("--schedule", "--schedule-regulations"):
            # --schedule ASOF: Schedule IM as of ASOF (YYYY-MM-DD), regulations not enforced;
            # --schedule-regulations ASOF: enforced.
            schedule = (args[1], args[0] == "--schedule-regulations")
            args = args[1:]
        elif args[0] == "--result-currency":
            result = args[1]
            args = args[1:]
        elif args[0] == "--fx":
            pair, rate = args[1].split("=")
            fx.append((pair, float(rate)))
            args = args[1:]
        elif args[0] == "--calculation-currency":
            calculation = args[1]
            args = args[1:]
        else:
            raise SystemExit(f"unknown option {args[0]}")
        args = args[1:]
    path, versions = args[0], args[1:]
    text = open(path).read()
    rows = list(csv.DictReader(io.StringIO(text), delimiter="\t"))
    results, seconds = {}, {}
    for version in versions:
        if result is not None:
            results[version], seconds[version] = run_regulations(text, rows, version, side, mpor, regulations, result, fx)
            continue
        if schedule is not None:
            results[version], seconds[version] = run_schedule(text, rows, version, side, mpor, schedule[1], schedule[0])
            continue
        if calculation is not None:
            results[version], seconds[version] = run_app(text, rows, version, side, mpor, calculation)
            continue
        how = run_regulations if regulations else run if version in CONFIGS else run_app
        results[version], seconds[version] = how(text, rows, version, side, mpor)
    json.dump({"seconds": seconds, "results": results}, sys.stdout)


if __name__ == "__main__":
    main()
