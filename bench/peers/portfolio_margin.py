#!/usr/bin/env python3
"""Portfolio-margin peer for bench/portfolio_margin.sh: the fastest numpy of Solvent's model
(DESIGN.md 6.5; crates/solvent-risk/benches/portfolio_margin.rs), written as a quant would, with
matrix products. The test oracle (scripts/oracles/pm_oracle.py) stays the oracle: it is run on
the same workload, untimed, and both it and this peer must agree with Rust on every account.

Reads the workload the Rust bench writes (SOLVENT_PM_WORKLOAD: market inputs, parameters, listed
instruments, 10,000 accounts of 10 positions, Rust's MM and IM of every account; the case format
of pm_oracle.py), then times, each the best of several repetitions:
  revaluation  per underlying, every listed instrument's P&L per unit of exposure under each
               scenario: the scenario grid and every option's shocked volatilities as arrays,
               one vectorised Black-76 over options x scenarios (no Python loop over options);
  aggregation  per underlying one matrix product, accounts x (2 x instruments) exposures (the
               positive and the negative parts of each account's units) @ (2 x instruments) x
               (scenarios + 5): the weighted scenario P&L, and the net delta, long delta, short
               delta, roll and short option contracts as extra columns,
               so a single product gives everything that sums over positions; then per account
               the worst scenario (argmin), the contingencies, the cross-underlying offset (a
               quadratic form over the 3 underlyings) and MM, IM, all vectorised. The product is
               tried as a dense BLAS product (numpy `@`), as a sparse one (scipy.sparse CSR;
               10 positions of 278 columns are filled), and with the faster of the two per
               underlying; the fastest counts. It is laid out (columns x accounts) so that the
               reductions over scenarios run over contiguous rows.
The layout of the accounts as exposure matrices is prepared before timing, as Rust prepares each
account's exposures once per change of positions (PreparedExposures). An account holding the
same instrument twice would have the two positions netted here (the hedged-delta charge would
see one); the bench's accounts hold distinct instruments.

Threads: the script runs with whatever BLAS threads its environment gives (bench/portfolio_margin.sh
runs it twice: with OMP/OpenBLAS/MKL variables unset, numpy's default, and with one thread).
Prints `name value` lines.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "oracles"))

import numpy as np  # noqa: E402
import pm_oracle  # noqa: E402
from scipy import sparse  # noqa: E402
from scipy.special import ndtr  # noqa: E402


def best_of(repeats, work):
    """The shortest of `repeats` timings of `work()`, in seconds, and its last result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - start)
    return best, result


# ---- revaluation ---------------------------------------------------------------------------


def black76(f, k, t, vol, df, sign):
    """Discounted Black-76 price, out-of-the-money side plus intrinsic (as pm_oracle)."""
    s = vol * np.sqrt(t)
    intrinsic = np.maximum(sign * (f - k), 0.0)
    otm_sign = np.where(k >= f, 1.0, -1.0)
    d1 = np.log(f / k) / s + 0.5 * s
    otm = otm_sign * (f * ndtr(otm_sign * d1) - k * ndtr(otm_sign * (d1 - s)))
    return df * (intrinsic + np.maximum(otm, 0.0))


def static(case):
    """What does not move with prices: per underlying its instruments' kinds, strikes, times,
    rights, the scenario grid. Parsing the case, not timed."""
    out = []
    for underlying in case["underlyings"]:
        members = [i for i in case["instruments"] if i["underlying"] == underlying["name"]]
        params = underlying["params"]
        moves, shocks, weights, _ = pm_oracle.scenarios(params)
        assert moves[0] <= 0.0, "an account with no P&L has its worst scenario at the first"
        # The scenarios reordered: the ones that are not up moves first, then the up moves.
        order = np.concatenate([np.flatnonzero(moves <= 0.0), np.flatnonzero(moves > 0.0)])
        moves, weights = moves[order], weights[order]
        shocks = [shocks[i] for i in order]
        option = np.array([i["kind"] == "option" for i in members])
        opts = [i for i in members if i["kind"] == "option"]
        years = np.array(
            [pm_oracle.years_between(case["timestamp"], i["expiry"]) if "expiry" in i else 0.0 for i in members]
        )
        future = np.array([i["kind"] == "future" for i in members])
        linear = np.array([i["kind"] in ("perpetual", "future") and i["style"] == "linear" for i in members])
        assert all(i["kind"] != "option" or i["mark_source"] == "model" for i in members), "model marks only"
        out.append(
            {
                "name": underlying["name"],
                "params": params,
                "moves": moves,
                "others": int(np.count_nonzero(moves <= 0.0)),
                "original": np.argsort(order),
                "up": np.array([s == "up" for s in shocks]),
                "down": np.array([s == "down" for s in shocks]),
                "weights": weights,
                "members": [i["name"] for i in members],
                "option": option,
                "strike": np.array([o["strike"] for o in opts]),
                "sign": np.array([1.0 if o["right"] == "call" else -1.0 for o in opts]),
                "time": np.maximum(years[option], 0.0),
                "vol": np.array([o["vol"] for o in opts]),
                "mark": np.array([i["mark"] if linear[j] else 0.0 for j, i in enumerate(members)]),
                "linear": linear,
                "roll_years": np.where(future, np.maximum(years, 1.0 / 365.0), 1.0 / 365.0),
                "delta_one": ~option,
            }
        )
    return out


def revalue(case, statics):
    """Per underlying the (instruments x scenarios) unit P&L, and delta and roll per instrument."""
    rate = case["rate"]
    books = []
    for st, underlying in zip(statics, case["underlyings"]):
        p = st["params"]
        spot = underlying["price"]
        moves = st["moves"]
        n = st["option"].size
        pnl = np.empty((n, moves.size))
        per_unit = np.where(st["linear"], st["mark"], spot)
        pnl[~st["option"]] = per_unit[~st["option"], None] * moves[None, :]
        delta = st["delta_one"].astype(float)
        roll = np.where(st["delta_one"], spot * p["roll_shock"] * np.sqrt(st["roll_years"]), 0.0)
        if st["strike"].size:
            t, vol, k, sign = st["time"], st["vol"], st["strike"], st["sign"]
            f = spot * np.exp(rate * t)
            df = np.exp(-rate * t)
            days = np.maximum(t * 365.0, 1.0)
            scale = (30.0 / days) ** np.where(days < 30.0, p["vol_power_short"], p["vol_power_long"])
            if p["vol_shock_mode"] == "relative":
                up = vol * (1.0 + p["vol_shock_up"] * scale)
                down = vol * (1.0 - p["vol_shock_down"] * scale)
            else:
                up, down = vol + p["vol_shock_up"], vol - p["vol_shock_down"]
            up = np.maximum(up, p["vol_up_floor"])
            down = np.maximum(down, vol * pm_oracle.MIN_VOL_FRACTION)
            shocked = np.where(st["up"][None, :], up[:, None], np.where(st["down"][None, :], down[:, None], vol[:, None]))
            base = black76(f, k, t, vol, df, sign)
            moved = black76(f[:, None] * (1.0 + moves[None, :]), k[:, None], t[:, None], shocked, df[:, None], sign[:, None])
            pnl[st["option"]] = moved - base[:, None]
            s = vol * np.sqrt(t)
            d1 = np.log(f / k) / s + 0.5 * s
            delta[st["option"]] = sign * df * ndtr(sign * d1) * f / spot
        books.append({"pnl": pnl, "delta": delta, "roll": roll, "price": spot})
    return books


# ---- aggregation ---------------------------------------------------------------------------


def held_masks(case, statics):
    """Per underlying, whether each account holds a position on it."""
    of = {name: u for u, st in enumerate(statics) for name in st["members"]}
    held = np.zeros((len(statics), len(case["accounts"])), dtype=bool)
    for a, account in enumerate(case["accounts"]):
        for position in account["positions"]:
            held[of[position["instrument"]], a] = True
    return held


def exposure_matrices(case, statics, as_sparse):
    """Per underlying the positive parts then the negative parts of every account's units per
    instrument: dense (2 instruments x accounts), the right operand of a BLAS product, or CSR
    (accounts x 2 instruments), the left operand of a sparse one. Prepared once per change of
    positions, not timed."""
    index = {}
    for u, st in enumerate(statics):
        for j, name in enumerate(st["members"]):
            index[name] = (u, j)
    instruments = {i["name"]: i for i in case["instruments"]}
    accounts = len(case["accounts"])
    dense = [np.zeros((accounts, 2 * st["option"].size)) for st in statics]
    for a, account in enumerate(case["accounts"]):
        for position in account["positions"]:
            instrument = instruments[position["instrument"]]
            size = float(position["size"])
            if instrument["style"] == "inverse" and instrument["kind"] in ("perpetual", "future"):
                units = size / float(position["entry"])
            else:
                units = size * instrument["contract_size"]
            u, j = index[position["instrument"]]
            n = statics[u]["option"].size
            dense[u][a, j if units > 0.0 else n + j] += units
        assert not account["spot"], "spot balances are not part of the bench workload"
    if as_sparse:
        return [sparse.csr_matrix(m) for m in dense]
    return [np.ascontiguousarray(m.T) for m in dense]


def product(exposures, full):
    """(scenarios + 5) x accounts, C order: BLAS `full^T @ E` for dense exposures; for CSR the
    sparse product (accounts x columns) transposed into contiguous rows."""
    if sparse.issparse(exposures):
        return np.ascontiguousarray((exposures @ full).T)
    return np.ascontiguousarray(full.T) @ exposures


def right_hand_sides(case, statics, books):
    """Per underlying the (2 instruments) x (scenarios + 4) matrix the exposures multiply:
    scenario P&L x weight / report price; delta; delta where it is long (positive part rows:
    positive delta, negative part rows: negative delta, the units being negative there);
    minus delta where it is short; roll. Rows 0..n act on the positive parts, n..2n on the
    negative ones."""
    report = case["report"]["price_usd"]
    out = []
    for st, book in zip(statics, books):
        n = st["option"].size
        scen = book["pnl"] * (st["weights"][None, :] / report)
        d = book["delta"]
        pos, neg = np.maximum(d, 0.0), np.minimum(d, 0.0)
        top = np.column_stack([scen, d, pos, -neg, book["roll"]])
        bottom = np.column_stack([scen, d, neg, -pos, book["roll"]])
        out.append(np.vstack([top, bottom]))
    return out


def worst_is_up(scen, others, held, original):
    """Per account (column of `scen`: scenarios x accounts, the `others` scenarios that are not
    up moves first, then the up moves) whether its worst scenario (the first minimum in the
    grid's order, as argmin) is an up move, and the worst P&L: the minima over the two
    contiguous blocks of rows (fast reductions), argmin in the grid's order (`original`, a
    permutation of the rows) only for accounts holding the underlying where they tie. An
    account not holding it has P&L 0 everywhere: its first minimum is the grid's first
    scenario, a fall (checked by `static`)."""
    min_other = scen[:others].min(axis=0)
    min_up = scen[others:].min(axis=0)
    result = min_up < min_other
    ties = np.flatnonzero((min_up == min_other) & held)
    if ties.size:
        result[ties] = original[np.argmin(scen[original][:, ties], axis=0)] >= others
    return result, np.minimum(min_up, min_other)


def margins(case, statics, books, exposures, held):
    """MM and IM of every account: one product per underlying, the rest vectorised. The
    product is taken transposed, (columns x accounts), so that each quantity is a contiguous
    row and each reduction over scenarios runs down contiguous rows."""
    report = case["report"]["price_usd"]
    rhs = right_hand_sides(case, statics, books)
    accounts = held.shape[1]
    nu = len(statics)
    risk = np.empty((nu, accounts))
    direction = np.empty((nu, accounts))
    add_ons = np.zeros(accounts)
    for u, (st, book) in enumerate(zip(statics, books)):
        p = st["params"]
        price = book["price"]
        m = st["moves"].size
        n = st["option"].size
        # The last column counts short option contracts (negative parts of options only).
        full = np.column_stack([rhs[u], np.concatenate([np.zeros(n), -st["option"].astype(float)])])
        out = product(exposures[u], full)  # (scenarios + 5) x accounts
        up, worst = worst_is_up(out[:m], st["others"], held[u], st["original"])
        scan = np.maximum(-worst, 0.0)
        net, long, short, roll, short_contracts = out[m : m + 5]
        hedged = np.minimum(long, short)
        abs_net = np.abs(net)
        min_delta = (p["min_delta_rate"] * abs_net + p["hedged_delta_rate"] * hedged) * (price / report)
        short_option = p["short_option_minimum"] * short_contracts * (price / report)
        additive = np.abs(roll) / report + np.maximum(abs_net - p["delta_shock_threshold"], 0.0) * (
            price * p["delta_shock_rate"] / report
        )
        r = scan
        for charge, combine in ((min_delta, p["min_delta_combine"]), (short_option, p["short_option_combine"])):
            if combine == "add":
                additive = additive + charge
            else:
                r = np.maximum(r, charge)
        notional = abs_net * price
        if p["adv_usd"] > 0.0:
            liquidity = notional * (p["half_spread"] + p["impact"] * np.sqrt(notional / p["adv_usd"])) / report
        else:
            liquidity = notional * (p["half_spread"] / report)
        concentration = np.maximum(notional - p["concentration_threshold_usd"], 0.0) * (p["concentration_rate"] / report)
        risk[u] = r
        direction[u] = np.where(up, -1.0, 1.0)
        add_ons += additive + liquidity + concentration
    # Cross-underlying offset: known pairs x^T rho x with x = d R; unknown pairs R_u R_v.
    names = [st["name"] for st in statics]
    known = np.eye(nu)
    unknown = np.ones((nu, nu)) - np.eye(nu)
    for first, second, value in case["correlations"]:
        if first in names and second in names:
            i, j = names.index(first), names.index(second)
            known[i, j] = known[j, i] = value
            unknown[i, j] = unknown[j, i] = 0.0
    x = direction * risk
    quadratic = ((known @ x) * x).sum(axis=0) + ((unknown @ risk) * risk).sum(axis=0)
    summed = risk.sum(axis=0)
    combined = np.minimum(np.maximum(np.sqrt(np.maximum(quadratic, 0.0)), (1.0 - case["max_offset"]) * summed), summed)
    maintenance = combined + add_ons
    return maintenance, case["im_factor"] * maintenance


def gap(values, reference):
    """Largest difference relative to the reference (absolute below 1)."""
    return float(np.max(np.abs(values - reference) / np.maximum(np.abs(reference), 1.0)))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("workload")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--label", default="numpy", help="prefix of the timing lines")
    args = parser.parse_args()
    with open(args.workload) as handle:
        case = json.load(handle)

    statics = static(case)
    revaluation_s, books = best_of(args.repeats, lambda: revalue(case, statics))
    results = {}
    held = held_masks(case, statics)
    dense = exposure_matrices(case, statics, as_sparse=False)
    csr = exposure_matrices(case, statics, as_sparse=True)
    # Per underlying, the faster product (timed on the first prices, as a quant would tune it).
    full = [
        np.column_stack([rhs, np.concatenate([np.zeros(st["option"].size), -st["option"].astype(float)])])
        for st, rhs in zip(statics, right_hand_sides(case, statics, books))
    ]
    tuned = [
        d if best_of(args.repeats, lambda: product(d, f))[0] <= best_of(args.repeats, lambda: product(c, f))[0] else c
        for d, c, f in zip(dense, csr, full)
    ]
    for form, exposures in (("dense", dense), ("sparse", csr), ("tuned", tuned)):
        seconds, (mm, im) = best_of(args.repeats, lambda: margins(case, statics, books, exposures, held))
        results[form] = (seconds, mm, im)
    form = min(results, key=lambda f: results[f][0])
    aggregation_s, mm, im = results[form]

    rust_mm = np.array([a["rust"]["mm"] for a in case["accounts"]])
    rust_im = np.array([a["rust"]["im"] for a in case["accounts"]])
    oracle = pm_oracle.run(case)["accounts"]
    oracle_mm = np.array([a["mm"] for a in oracle])
    worst_gap = max(max(gap(r[1], rust_mm), gap(r[2], rust_im)) for r in results.values())
    oracle_gap = gap(oracle_mm, rust_mm)
    accounts = len(case["accounts"])
    positions = sum(len(a["positions"]) for a in case["accounts"])
    scenarios = books[0]["pnl"].shape[1]
    label = args.label
    print(f"instruments {len(case['instruments'])}")
    print(f"accounts {accounts}")
    print(f"{label}_revaluation_s {revaluation_s:.9f}")
    print(f"{label}_aggregation_s {aggregation_s:.9f}")
    print(f"{label}_dense_s {results['dense'][0]:.9f}")
    print(f"{label}_sparse_s {results['sparse'][0]:.9f}")
    print(f"{label}_tuned_s {results['tuned'][0]:.9f}")
    print(f"{label}_form {form}")
    print(f"{label}_tuned_forms {','.join('sparse' if sparse.issparse(e) else 'dense' for e in tuned)}")
    print(f"{label}_ns_per_position_scenario {aggregation_s * 1e9 / (positions * scenarios):.3f}")
    print(f"max_rel_gap_vs_rust {worst_gap:.3e}")
    print(f"oracle_max_rel_gap_vs_rust {oracle_gap:.3e}")
    for index in (0, 1, accounts // 2, accounts - 1):
        print(f"check {case['accounts'][index]['id']} numpy {mm[index]:.6f} rust {rust_mm[index]:.6f}")
    if not worst_gap <= 1e-9:
        sys.exit(f"the numpy peer and Rust disagree: largest relative gap {worst_gap:e}")
    if not oracle_gap <= 1e-9:
        sys.exit(f"the oracle and Rust disagree: largest relative gap {oracle_gap:e}")


if __name__ == "__main__":
    main()
