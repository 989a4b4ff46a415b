"""The market bench/cluster.sh and bench/standby.sh publish after a population: UPDATES index
updates 200 ms apart (a Gaussian walk of 4 basis points per step, the underlyings in turn), each
followed by three account events (a deposit or a 0.001 BTCUSDT fill, seeded).

Usage: python3 bench/cluster_market.py OPENING.jsonl MARKET.jsonl UPDATES
"""
import json, random, sys
from datetime import datetime, timedelta
opening = [json.loads(line) for line in open(sys.argv[1])]
updates = int(sys.argv[3])
index = {e["underlying"]: float(e["price"]) for e in opening if e["type"] == "index_price"}
ids = sorted({e["account"] for e in opening if "account" in e})
ts = datetime.fromisoformat(opening[-1]["ts"].replace("Z", "+00:00"))
rng = random.Random(13)
names = sorted(index)
with open(sys.argv[2], "w") as out:
    for step in range(updates):
        ts += timedelta(milliseconds=200)
        stamp = ts.isoformat().replace("+00:00", "Z")
        underlying = names[step % len(names)]
        index[underlying] *= 1 + rng.gauss(0, 0.0004)
        out.write(json.dumps({"seq": 0, "ts": stamp, "type": "index_price",
                              "underlying": underlying, "price": f"{index[underlying]:.2f}"}) + "\n")
        # Trading between the updates: three account events per update.
        for _ in range(3):
            account = rng.choice(ids)
            if rng.random() < 0.5:
                out.write(json.dumps({"seq": 0, "ts": stamp, "type": "deposit", "account": account,
                                      "asset": "USDT", "amount": str(rng.randint(10, 1000))}) + "\n")
            else:
                out.write(json.dumps({"seq": 0, "ts": stamp, "type": "fill", "account": account,
                                      "instrument": "BTCUSDT", "side": rng.choice(["buy", "sell"]),
                                      "size": "0.001", "price": f"{index['BTC']:.2f}", "fee": "0.05"}) + "\n")
