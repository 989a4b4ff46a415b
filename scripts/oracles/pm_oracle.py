#!/usr/bin/env python3
"""Independent numpy oracle for Solvent's portfolio margin (DESIGN.md 6.5).

Reads a case (JSON, on stdin or from the file given as the first argument) written by
crates/solvent-risk/tests/pm_numpy_oracle.rs or crates/solvent-risk/benches/portfolio_margin.rs,
recomputes every account's maintenance and initial margin from the raw inputs, and writes the
result as JSON on stdout. Nothing here calls into Rust: Black-76, the implied-volatility solve,
the scenario grid, the volatility shocks, the exposures, the aggregation, the charges and the
cross-underlying offset are all computed again, vectorised with numpy.

The model, as crates/solvent-risk/src/portfolio_margin.rs computes it:
- scenarios per underlying: every standard price move with every volatility shock (weight 1),
  then the extended moves with `extended_vol`, weight `extended_weight` when fixed, else
  `min(1, dampener / |m|)` (1 at m = 0);
- shocked volatility: relative `sigma (1 + up c)` floored at `vol_up_floor`, `sigma (1 - down c)`
  floored at 1% of sigma, with `c = (30 / max(1, dte))^p` (`p` short below 30 days, long from 30
  on); absolute `sigma + up` / `sigma - down` with the same floors;
- USD P&L per unit of exposure: spot, inverse perpetuals and futures `S m`, linear perpetuals and
  futures `mark m`, options `B76(F (1 + m), K, T, shocked) - B76(F, K, T, sigma)`, with
  `F = S exp(r T)`, `DF = exp(-r T)` and sigma the mark's implied volatility (given marks) or the
  surface's (model marks);
- exposure units: `size x contract_size` (linear, options), `size / entry` (inverse perpetuals and
  futures), `amount` (spot);
- per underlying: scan `R_u = max(0, -min_s w_s P&L_s)`, minimum delta
  `(rate |net| + hedged rate min(long, short)) S`, short option minimum `rate x short contracts x
  S` (each a floor or an add-on), roll `|sum amount S roll sqrt(max(T, 1/365))|` (perpetuals one
  day), delta shock `max(0, |net| - threshold) S rate`, liquidity `|D| (half spread + impact
  sqrt(|D| / adv))` with `D = net S`, concentration `max(0, |D| - threshold) rate`;
- across underlyings `R = clamp(sqrt(max(0, sum rho d_u d_v R_u R_v)), (1 - max_offset) sum R_u,
  sum R_u)`, `d = -1` when the worst scenario is a rise else `+1`, unknown pairs `rho = d_u d_v`;
- `MM = R + additive charges + liquidity + concentration`, `IM = im_factor MM`.

Only numpy and scipy (scripts/oracles/requirements.txt).
"""

import json
import sys
from datetime import datetime

import numpy as np
from scipy.optimize import brentq
from scipy.special import ndtr

SECONDS_PER_YEAR = 365.0 * 86400.0
DAYS_PER_YEAR = 365.0
MIN_VOL_FRACTION = 0.01


# ---- Black-76 ------------------------------------------------------------------------------


def black76(forward, strike, time, vol, discount, sign):
    """Discounted Black-76 price, vectorised: intrinsic plus the out-of-the-money side's value
    (each side computed on its own so neither loses accuracy deep in or out of the money)."""
    forward, strike, time, vol, discount, sign = np.broadcast_arrays(
        *(np.asarray(x, dtype=float) for x in (forward, strike, time, vol, discount, sign))
    )
    s = vol * np.sqrt(time)
    intrinsic = np.maximum(sign * (forward - strike), 0.0)
    otm_sign = np.where(strike >= forward, 1.0, -1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        d1 = np.log(forward / strike) / s + 0.5 * s
        d2 = d1 - s
        otm = otm_sign * (forward * ndtr(otm_sign * d1) - strike * ndtr(otm_sign * d2))
    otm = np.where(s > 0.0, np.maximum(otm, 0.0), 0.0)
    return discount * (intrinsic + otm)


def black76_delta(forward, strike, time, vol, discount, sign):
    """dV/dF (discounted): `DF N(d1)` for a call, `-DF N(-d1)` for a put."""
    s = vol * np.sqrt(time)
    if s <= 0.0:
        return sign * discount if sign * (forward - strike) > 0.0 else 0.0
    d1 = np.log(forward / strike) / s + 0.5 * s
    return sign * discount * ndtr(sign * d1)


def implied_vol(price, forward, strike, time, discount, sign):
    """The volatility at which Black-76 gives `price` (Brent's method on [1e-6, 10])."""

    def error(vol):
        return float(black76(forward, strike, time, vol, discount, sign)) - price

    return brentq(error, 1e-6, 10.0, xtol=1e-15, rtol=4.0 * np.finfo(float).eps, maxiter=500)


# ---- scenarios -----------------------------------------------------------------------------


def scenarios(params):
    """(moves, vol shocks, weights, extended) of one underlying, in Solvent's order."""
    moves, vols, weights, extended = [], [], [], []
    for move in params["price_moves"]:
        for vol in params["vol_shocks"]:
            moves.append(move)
            vols.append(vol)
            weights.append(1.0)
            extended.append(False)
    for move in params["extended_moves"]:
        if params["extended_weight"] is not None:
            weight = params["extended_weight"]
        elif move == 0.0:
            weight = 1.0
        else:
            weight = min(params["extended_dampener"] / abs(move), 1.0)
        moves.append(move)
        vols.append(params["extended_vol"])
        weights.append(weight)
        extended.append(True)
    return np.array(moves), vols, np.array(weights), extended


def shocked_vols(vol, days, shocks, params):
    """The volatility of one option under each scenario's shock."""
    days = max(days, 1.0)
    power = params["vol_power_short"] if days < 30.0 else params["vol_power_long"]
    scale = (30.0 / days) ** power
    relative = params["vol_shock_mode"] == "relative"
    out = np.empty(len(shocks))
    for index, shock in enumerate(shocks):
        if shock == "unchanged":
            out[index] = vol
        elif shock == "up":
            level = vol * (1.0 + params["vol_shock_up"] * scale) if relative else vol + params["vol_shock_up"]
            out[index] = max(level, params["vol_up_floor"])
        else:
            level = vol * (1.0 - params["vol_shock_down"] * scale) if relative else vol - params["vol_shock_down"]
            out[index] = max(level, vol * MIN_VOL_FRACTION)
    return out


# ---- revaluation: every instrument once per scenario ----------------------------------------


def years_between(start, end):
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds() / SECONDS_PER_YEAR


def revalue(case):
    """Per underlying: scenarios and the unit P&L matrix, delta, roll and option flag of each of
    its instruments. Returns (books, locate) with locate[name] = (underlying, row)."""
    rate = case["rate"]
    books, locate = [], {}
    checks = {"max_iv_rel_diff": 0.0, "max_time_abs_diff": 0.0, "scenarios_match": True}
    for u, underlying in enumerate(case["underlyings"]):
        params = underlying["params"]
        spot = underlying["price"]
        moves, vols, weights, extended = scenarios(params)
        given = underlying.get("scenarios")
        if given is not None:
            same = len(given) == len(moves) and all(
                g["price_move"] == m and g["vol"] == v and g["weight"] == w and g["extended"] == e
                for g, m, v, w, e in zip(given, moves, vols, weights, extended)
            )
            checks["scenarios_match"] &= bool(same)
        members = [i for i in case["instruments"] if i["underlying"] == underlying["name"]]
        n = len(members)
        pnl = np.zeros((n, len(moves)))
        delta = np.zeros(n)
        roll = np.zeros(n)
        is_option = np.zeros(n, dtype=bool)
        options = []
        for row, instrument in enumerate(members):
            locate[instrument["name"]] = (u, row)
            kind = instrument["kind"]
            if kind == "spot":
                pnl[row] = spot * moves
                delta[row] = 1.0
            elif kind in ("perpetual", "future"):
                per_unit = spot if instrument["style"] == "inverse" else instrument["mark"]
                pnl[row] = per_unit * moves
                delta[row] = 1.0
                if kind == "future":
                    years = max(years_between(case["timestamp"], instrument["expiry"]), 1.0 / DAYS_PER_YEAR)
                else:
                    years = 1.0 / DAYS_PER_YEAR
                roll[row] = spot * params["roll_shock"] * np.sqrt(years)
            else:
                is_option[row] = True
                options.append((row, instrument))
        if options:
            rows = np.array([row for row, _ in options])
            strike = np.array([o["strike"] for _, o in options])
            sign = np.array([1.0 if o["right"] == "call" else -1.0 for _, o in options])
            time = np.array([max(years_between(case["timestamp"], o["expiry"]), 0.0) for _, o in options])
            forward = spot * np.exp(rate * time)
            discount = np.exp(-rate * time)
            vol = np.empty(len(options))
            for j, (_, o) in enumerate(options):
                checks["max_time_abs_diff"] = max(checks["max_time_abs_diff"], abs(time[j] - o["time"]))
                if o["mark_source"] == "model":
                    vol[j] = o["vol"]
                else:
                    usd = o["mark"] * spot if o["style"] == "inverse" else o["mark"]
                    vol[j] = implied_vol(usd, forward[j], strike[j], time[j], discount[j], sign[j])
                    checks["max_iv_rel_diff"] = max(checks["max_iv_rel_diff"], abs(vol[j] / o["vol"] - 1.0))
            shocked = np.array(
                [shocked_vols(vol[j], time[j] * DAYS_PER_YEAR, vols, params) for j in range(len(options))]
            )
            base = black76(forward, strike, time, vol, discount, sign)
            moved = black76(
                forward[:, None] * (1.0 + moves[None, :]),
                strike[:, None],
                time[:, None],
                shocked,
                discount[:, None],
                sign[:, None],
            )
            pnl[rows] = moved - base[:, None]
            for j, row in enumerate(rows):
                delta[row] = black76_delta(forward[j], strike[j], time[j], vol[j], discount[j], sign[j]) * forward[j] / spot
        books.append(
            {
                "name": underlying["name"],
                "price": spot,
                "params": params,
                "moves": moves,
                "weights": weights,
                "pnl": pnl,
                "delta": delta,
                "roll": roll,
                "is_option": is_option,
            }
        )
    return books, locate, checks


# ---- accounts ------------------------------------------------------------------------------


def layout(case, books, locate):
    """Accounts as padded arrays [accounts x exposures]: underlying, row and units of exposure
    (positions in order, then spot balances, as Solvent lists them)."""
    instruments = {i["name"]: i for i in case["instruments"]}
    accounts = case["accounts"]
    width = max(len(a["positions"]) + len(a["spot"]) for a in accounts)
    under = np.full((len(accounts), width), -1, dtype=np.int64)
    row = np.zeros((len(accounts), width), dtype=np.int64)
    amount = np.zeros((len(accounts), width))
    max_exposure_diff = 0.0
    for a, account in enumerate(accounts):
        k = 0
        mine = []
        for position in account["positions"]:
            instrument = instruments[position["instrument"]]
            size = float(position["size"])
            if instrument["style"] == "inverse" and instrument["kind"] in ("perpetual", "future"):
                units = size / float(position["entry"])
            else:
                units = size * instrument["contract_size"]
            mine.append((instrument["name"], units))
        for balance in account["spot"]:
            mine.append(("spot:" + balance["asset"], float(balance["amount"])))
        for (name, units), (rust_name, rust_units) in zip(mine, account.get("exposures", mine)):
            assert name == rust_name, (name, rust_name)
            if rust_units != 0.0:
                max_exposure_diff = max(max_exposure_diff, abs(units / rust_units - 1.0))
        for name, units in mine:
            under[a, k], row[a, k] = locate[name]
            amount[a, k] = units
            k += 1
    return under, row, amount, max_exposure_diff


def margins(case, books, under, row, amount):
    """MM and IM of every account, vectorised over accounts (one pass per underlying)."""
    report = case["report"]["price_usd"]
    accounts = under.shape[0]
    nu = len(books)
    floored = np.zeros((accounts, nu))
    direction = np.ones((accounts, nu))
    add_ons = np.zeros(accounts)
    worst_index = np.full((accounts, nu), -1, dtype=np.int64)
    for u, book in enumerate(books):
        params = book["params"]
        price = book["price"]
        mask = under == u
        held = mask.any(axis=1)
        units = np.where(mask, amount, 0.0)
        rows = np.where(mask, row, 0)
        pnl = np.zeros((accounts, len(book["moves"])))
        for k in range(units.shape[1]):
            pnl += units[:, k, None] * book["pnl"][rows[:, k]]
        weighted = (pnl / report) * book["weights"][None, :]
        worst = np.argmin(weighted, axis=1)
        worst_pnl = weighted[np.arange(accounts), worst]
        scan = np.maximum(-worst_pnl, 0.0)
        deltas = units * book["delta"][rows]
        net = deltas.sum(axis=1)
        long = np.where(deltas > 0.0, deltas, 0.0).sum(axis=1)
        short = np.where(deltas < 0.0, -deltas, 0.0).sum(axis=1)
        short_contracts = np.where(book["is_option"][rows] & (units < 0.0), -units, 0.0).sum(axis=1)
        roll = (units * book["roll"][rows]).sum(axis=1)
        hedged = np.minimum(long, short)
        min_delta = (params["min_delta_rate"] * np.abs(net) + params["hedged_delta_rate"] * hedged) * price / report
        short_option = params["short_option_minimum"] * short_contracts * price / report
        roll_charge = np.abs(roll) / report
        delta_shock = np.maximum(np.abs(net) - params["delta_shock_threshold"], 0.0) * price * params["delta_shock_rate"] / report
        notional = np.abs(net * price)
        if params["adv_usd"] > 0.0:
            liquidity = notional * (params["half_spread"] + params["impact"] * np.sqrt(notional / params["adv_usd"])) / report
        else:
            liquidity = notional * params["half_spread"] / report
        concentration = np.maximum(notional - params["concentration_threshold_usd"], 0.0) * params["concentration_rate"] / report
        risk = scan.copy()
        additive = roll_charge + delta_shock
        for charge, combine in ((min_delta, params["min_delta_combine"]), (short_option, params["short_option_combine"])):
            if combine == "add":
                additive = additive + charge
            else:
                risk = np.maximum(risk, charge)
        floored[:, u] = np.where(held, risk, 0.0)
        direction[:, u] = np.where(book["moves"][worst] > 0.0, -1.0, 1.0)
        worst_index[:, u] = np.where(held, worst, -1)
        add_ons += np.where(held, additive + liquidity + concentration, 0.0)
    names = [b["name"] for b in books]
    rho = np.full((nu, nu), np.nan)
    np.fill_diagonal(rho, 1.0)
    for first, second, value in case["correlations"]:
        if first in names and second in names:
            i, j = names.index(first), names.index(second)
            rho[i, j] = rho[j, i] = value
    dd = direction[:, :, None] * direction[:, None, :]
    effective = np.where(np.isnan(rho)[None, :, :], dd, rho[None, :, :])
    quadratic = np.einsum("auv,auv,au,av->a", effective, dd, floored, floored)
    summed = floored.sum(axis=1)
    correlated = np.sqrt(np.maximum(quadratic, 0.0))
    combined = np.minimum(np.maximum(correlated, (1.0 - case["max_offset"]) * summed), summed)
    maintenance = combined + add_ons
    return maintenance, case["im_factor"] * maintenance, worst_index


def run(case):
    books, locate, checks = revalue(case)
    under, row, amount, exposure_diff = layout(case, books, locate)
    checks["max_exposure_rel_diff"] = exposure_diff
    mm, im, worst = margins(case, books, under, row, amount)
    return {
        "checks": checks,
        "accounts": [
            {"id": account["id"], "mm": float(m), "im": float(i), "worst": [int(w) for w in ws]}
            for account, m, i, ws in zip(case["accounts"], mm, im, worst)
        ],
    }


def main():
    text = open(sys.argv[1]).read() if len(sys.argv) > 1 else sys.stdin.read()
    json.dump(run(json.loads(text)), sys.stdout)


if __name__ == "__main__":
    main()
