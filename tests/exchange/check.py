#!/usr/bin/env python3
"""Black-box tests of the test exchange (tests/exchange/exchange.c): the
real binary on a free loopback port, driven with real HTTP requests.

    python3 tests/exchange/check.py [--binary build/tests/exchange] [-k NAME]

Builds the binary first when it is missing or older than its source. Ends
with the line "N passed, M failed"; exits non-zero when a test fails.
"""
import argparse
import hashlib
import hmac
import http.client
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SOURCE = os.path.join(HERE, "exchange.c")
BINARY = os.path.join(ROOT, "build", "tests", "exchange")
WARNINGS = ("-Wall -Wextra -Werror -Wshadow -Wstrict-prototypes "
            "-Wmissing-prototypes -Wformat=2")

# The documented Binance signing example.
DOC_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
DOC_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
DOC_QUERY = ("symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1"
             "&price=0.1&recvWindow=5000&timestamp=1499827319559")
DOC_SIGNATURE = ("c8db56825ae71d6d79447849e617115f"
                 "4a920fa2acdcab2b053c4b2838bd6b71")

KEY_A, SECRET_A = "check-key-A", "check-secret-A-0123456789"
KEY_B, SECRET_B = "check-key-B", "check-secret-B-0123456789"
ACCOUNTS = {
    KEY_A: {"secret": SECRET_A, "orders": [
        {"orderId": 101, "symbol": "BTCUSDT", "side": "BUY",
         "price": "65000.00000000", "origQty": "0.00200000"},
        {"orderId": 102, "symbol": "ETHUSDT", "side": "SELL",
         "price": 3500, "origQty": "0.5", "type": "LIMIT_MAKER"},
    ]},
    KEY_B: {"secret": SECRET_B, "orders": [
        {"orderId": 201, "symbol": "BTCUSDT", "side": "SELL",
         "price": "99000.00000000", "origQty": "0.01000000",
         "clientOrderId": "b-btc-1", "time": 1764720000000},
        {"symbol": "BNBUSDT", "side": "BUY", "price": "600.00000000",
         "origQty": "2.00000000"},
    ]},
    DOC_KEY: {"secret": DOC_SECRET, "orders": []},
}
# From tests/exchange/README.md: the built-in demo accounts.
DEMO = {"demo-exch-key-A": "demo-exch-secret-A-not-real",
        "demo-exch-key-B": "demo-exch-secret-B-not-real"}

ORDER_FIELDS = ["symbol", "orderId", "orderListId", "clientOrderId", "price",
                "origQty", "executedQty", "cummulativeQuoteQty", "status",
                "timeInForce", "type", "side", "stopPrice", "icebergQty",
                "time", "updateTime", "isWorking", "workingTime",
                "origQuoteOrderQty", "selfTradePreventionMode"]

TESTS = []
RUNNING = []
SCRATCH = []        # temporary directories, removed at the end


def test(fn):
    TESTS.append(fn)
    return fn


def check(cond, message="check failed"):
    if not cond:
        raise AssertionError(message)


def build_if_needed():
    if os.path.exists(BINARY) and \
            os.path.getmtime(BINARY) >= os.path.getmtime(SOURCE):
        return
    os.makedirs(os.path.dirname(BINARY), exist_ok=True)
    flags = subprocess.run(
        ["pkg-config", "--cflags", "--libs", "libevent", "jansson",
         "openssl"], check=True, capture_output=True, text=True).stdout
    cmd = (["cc", "-O2", "-g", "-std=c11", "-D_GNU_SOURCE"]
           + WARNINGS.split() + [SOURCE] + shlex.split(flags)
           + ["-o", BINARY])
    print("building:", " ".join(cmd))
    subprocess.run(cmd, check=True)


class Exchange:
    """One exchange process on a free port, its output in a file."""

    def __init__(self, *args, accounts=ACCOUNTS):
        self.dir = tempfile.mkdtemp(prefix="exchange-check-")
        SCRATCH.append(self.dir)
        self.log_path = os.path.join(self.dir, "out.log")
        cmd = [BINARY, "--port", "0"] + [str(a) for a in args]
        if accounts is not None:
            path = os.path.join(self.dir, "accounts.json")
            with open(path, "w") as f:
                json.dump(accounts, f)
            cmd += ["--accounts", path]
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        RUNNING.append(self)
        self.port = self.wait_port()

    def output(self):
        with open(self.log_path) as f:
            return f.read()

    def wait_port(self):
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            for line in self.output().splitlines():
                if "listening on http://" in line:
                    return int(line.split("://")[1].split()[0]
                               .rsplit(":", 1)[1])
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError("no startup line: %r" % self.output())

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        if self in RUNNING:
            RUNNING.remove(self)
        return self.proc.returncode

    def request(self, path, method="GET", headers=None, body=None,
                timeout=5):
        conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                          timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, dict(resp.getheaders()), parse(data)
        finally:
            conn.close()

    def signed(self, key, secret, params, **kw):
        return self.request(signed_path(key, secret, params), headers={
            "X-MBX-APIKEY": key}, **kw)

    def control(self, **switches):
        status, _, body = self.request("/__control", "POST",
                                       body=json.dumps(switches))
        check(status == 200, "control %r -> %s %r" % (switches, status, body))
        return body

    def stats(self):
        return self.request("/__stats")[2]


def parse(data):
    try:
        return json.loads(data)
    except ValueError:
        return data


def now_ms():
    return int(time.time() * 1000)


def sign(secret, query):
    return hmac.new(secret.encode(), query.encode(),
                    hashlib.sha256).hexdigest()


def signed_path(key, secret, params, path="/api/v3/openOrders"):
    params = dict(params)
    params.setdefault("recvWindow", 5000)
    params.setdefault("timestamp", now_ms())
    query = urllib.parse.urlencode(params)
    return "%s?%s&signature=%s" % (path, query, sign(secret, query))


def open_orders(ex, key, secret, **params):
    return ex.signed(key, secret, params)


def expect_error(result, status, code):
    got_status, _, body = result
    check(got_status == status and isinstance(body, dict)
          and body.get("code") == code and isinstance(body.get("msg"), str),
          "want %d/%d, got %s %r" % (status, code, got_status, body))


def timed(fn):
    start = time.monotonic()
    result = fn()
    return result, time.monotonic() - start


def parallel(ex, path, count):
    threads = [threading.Thread(target=ex.request, args=(path,))
               for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def closed_without_answer(ex, path="/api/v3/ping"):
    try:
        ex.request(path)
    except (http.client.RemoteDisconnected, ConnectionResetError,
            BrokenPipeError):
        return True
    return False


# ---- signing --------------------------------------------------------------

@test
def hmac_matches_documented_example():
    check(sign(DOC_SECRET, DOC_QUERY) == DOC_SIGNATURE)


@test
def server_verifies_documented_signature(ex):
    headers = {"X-MBX-APIKEY": DOC_KEY}
    path = "/api/v3/openOrders?%s&signature=%s" % (DOC_QUERY, DOC_SIGNATURE)
    # The signature is accepted, so the 2017 timestamp is what fails.
    expect_error(ex.request(path, headers=headers), 400, -1021)
    upper = path.replace(DOC_SIGNATURE, DOC_SIGNATURE.upper())
    expect_error(ex.request(upper, headers=headers), 400, -1021)
    bad = path.replace("c8db5682", "c8db5683")
    expect_error(ex.request(bad, headers=headers), 400, -1022)


@test
def signature_not_last_is_removed_wherever_it_is(ex):
    query = "symbol=BTCUSDT&recvWindow=5000&timestamp=%d" % now_ms()
    path = "/api/v3/openOrders?signature=%s&%s" % (sign(SECRET_A, query),
                                                   query)
    status, _, body = ex.request(path, headers={"X-MBX-APIKEY": KEY_A})
    check(status == 200 and [o["orderId"] for o in body] == [101],
          "%s %r" % (status, body))


# ---- public endpoints -----------------------------------------------------

@test
def ping_and_time(ex):
    status, headers, body = ex.request("/api/v3/ping")
    check(status == 200 and body == {}, "%s %r" % (status, body))
    check(headers["Content-Type"].startswith("application/json"))
    before = now_ms()
    status, _, body = ex.request("/api/v3/time")
    check(status == 200 and list(body) == ["serverTime"])
    check(abs(body["serverTime"] - before) < 2000, repr(body))


@test
def exchange_info_all_symbols(ex):
    status, _, body = ex.request("/api/v3/exchangeInfo")
    check(status == 200, status)
    check(body["timezone"] == "UTC" and isinstance(body["serverTime"], int))
    check(len(body["rateLimits"]) >= 1
          and body["rateLimits"][0]["rateLimitType"] == "REQUEST_WEIGHT")
    names = [s["symbol"] for s in body["symbols"]]
    for name in ("BTCUSDT", "ETHUSDT", "BNBUSDT"):
        check(name in names, "%s missing from %r" % (name, names))
    for sym in body["symbols"]:
        check(sym["status"] == "TRADING" and "LIMIT" in sym["orderTypes"])
        check(sym["baseAssetPrecision"] == 8
              and sym["quoteAssetPrecision"] == 8)
        check(sym["baseAsset"] + sym["quoteAsset"] == sym["symbol"])


@test
def exchange_info_btcusdt_filters(ex):
    status, _, body = ex.request("/api/v3/exchangeInfo?symbol=BTCUSDT")
    check(status == 200 and len(body["symbols"]) == 1)
    sym = body["symbols"][0]
    filters = {f["filterType"]: f for f in sym["filters"]}
    check(filters["PRICE_FILTER"] == {
        "filterType": "PRICE_FILTER", "minPrice": "0.01000000",
        "maxPrice": "1000000.00000000", "tickSize": "0.01000000"},
        repr(filters["PRICE_FILTER"]))
    check(filters["LOT_SIZE"] == {
        "filterType": "LOT_SIZE", "minQty": "0.00001000",
        "maxQty": "9000.00000000", "stepSize": "0.00001000"},
        repr(filters["LOT_SIZE"]))
    check(filters["NOTIONAL"]["minNotional"] == "5.00000000")
    check("MARKET_LOT_SIZE" in filters and "MAX_NUM_ORDERS" in filters)
    check((sym["baseAsset"], sym["quoteAsset"]) == ("BTC", "USDT"))


@test
def exchange_info_symbols_list_and_unknown(ex):
    query = urllib.parse.urlencode({"symbols": '["BTCUSDT","ETHUSDT"]'})
    status, _, body = ex.request("/api/v3/exchangeInfo?" + query)
    check(status == 200, "%s %r" % (status, body))
    check([s["symbol"] for s in body["symbols"]] == ["BTCUSDT", "ETHUSDT"])
    eth = {f["filterType"]: f for f in body["symbols"][1]["filters"]}
    check(eth["LOT_SIZE"]["stepSize"] == "0.00010000")
    expect_error(ex.request("/api/v3/exchangeInfo?symbol=NOPEUSDT"),
                 400, -1121)
    query = urllib.parse.urlencode({"symbols": '["BTCUSDT","NOPEUSDT"]'})
    expect_error(ex.request("/api/v3/exchangeInfo?" + query), 400, -1121)
    expect_error(ex.request("/api/v3/exchangeInfo?symbols=BTCUSDT"),
                 400, -1100)


@test
def unknown_path_and_method(ex):
    expect_error(ex.request("/api/v3/nothing"), 404, -1000)
    status, headers, _ = ex.request("/api/v3/ping", "POST", body="")
    check(status == 405 and headers.get("Allow") == "GET", status)


# ---- open orders ----------------------------------------------------------

@test
def each_account_sees_only_its_orders(ex):
    status, _, body = open_orders(ex, KEY_A, SECRET_A)
    check(status == 200, "%s %r" % (status, body))
    check([o["orderId"] for o in body] == [101, 102], repr(body))
    status, _, body = open_orders(ex, KEY_B, SECRET_B)
    check(status == 200 and [o["orderId"] for o in body] == [201, 202],
          repr(body))
    status, _, body = open_orders(ex, KEY_B, SECRET_B, symbol="BTCUSDT")
    check(status == 200 and [o["clientOrderId"] for o in body]
          == ["b-btc-1"], repr(body))
    status, _, body = open_orders(ex, KEY_A, SECRET_A, symbol="BNBUSDT")
    check(status == 200 and body == [], repr(body))
    expect_error(open_orders(ex, KEY_A, SECRET_A, symbol="NOPE"), 400, -1121)


@test
def orders_are_binance_shaped(ex):
    _, _, body = open_orders(ex, KEY_A, SECRET_A, symbol="ETHUSDT")
    order = body[0]
    check(list(order)[:len(ORDER_FIELDS)] == ORDER_FIELDS, list(order))
    check(order["status"] == "NEW" and order["isWorking"] is True)
    check(order["price"] == "3500.00000000" and order["origQty"] == "0.5")
    check(order["type"] == "LIMIT_MAKER" and order["timeInForce"] == "GTC")
    check(order["updateTime"] == order["time"] and order["orderListId"] == -1)
    _, _, body = open_orders(ex, KEY_B, SECRET_B, symbol="BNBUSDT")
    check(body[0]["orderId"] == 202, "next free id: %r" % body[0])
    check(body[0]["origQuoteOrderQty"] == "0.00000000")


@test
def bad_signature_is_rejected(ex):
    before = ex.stats()["signaturesRejected"]
    expect_error(open_orders(ex, KEY_A, SECRET_B), 400, -1022)
    path = signed_path(KEY_A, SECRET_A, {"symbol": "BTCUSDT"})
    tampered = path.replace("BTCUSDT", "ETHUSDT")
    expect_error(ex.request(tampered, headers={"X-MBX-APIKEY": KEY_A}),
                 400, -1022)
    expect_error(ex.request(path.split("&signature=")[0],
                            headers={"X-MBX-APIKEY": KEY_A}), 400, -1102)
    check(ex.stats()["signaturesRejected"] == before + 2)


@test
def timestamp_window(ex):
    expect_error(open_orders(ex, KEY_A, SECRET_A, timestamp=now_ms() - 6000),
                 400, -1021)
    expect_error(open_orders(ex, KEY_A, SECRET_A, timestamp=now_ms() + 2000),
                 400, -1021)
    status, _, _ = open_orders(ex, KEY_A, SECRET_A, recvWindow=10000,
                               timestamp=now_ms() - 7000)
    check(status == 200, status)
    status, _, _ = open_orders(ex, KEY_A, SECRET_A, timestamp=now_ms() + 500)
    check(status == 200, status)
    expect_error(open_orders(ex, KEY_A, SECRET_A, recvWindow=60001),
                 400, -1131)
    expect_error(open_orders(ex, KEY_A, SECRET_A, timestamp="soon"),
                 400, -1102)


@test
def unknown_or_missing_key(ex):
    expect_error(open_orders(ex, "no-such-key", SECRET_A), 401, -2015)
    expect_error(ex.request(signed_path(KEY_A, SECRET_A, {})), 401, -2014)


@test
def builtin_demo_accounts():
    ex = Exchange(accounts=None)
    try:
        seen = []
        for key, secret in DEMO.items():
            status, _, body = open_orders(ex, key, secret)
            check(status == 200 and len(body) >= 2, "%s %r" % (status, body))
            seen.append({o["orderId"] for o in body})
        check(not seen[0] & seen[1], "accounts share orders: %r" % seen)
        check("2 accounts" in ex.output(), ex.output())
    finally:
        ex.stop()


# ---- switches on the command line -----------------------------------------

@test
def cli_latency_delays_without_blocking():
    ex = Exchange("--latency-ms", 300)
    try:
        (status, _, _), took = timed(lambda: ex.request("/api/v3/ping"))
        check(status == 200 and took >= 0.29, "took %.3f s" % took)
        _, took = timed(lambda: parallel(ex, "/api/v3/time", 5))
        check(took < 0.55, "5 parallel requests took %.3f s" % took)
        check(ex.stats()["maxInFlight"] == 5, repr(ex.stats()))
        _, took = timed(ex.stats)
        check(took < 0.2, "stats are not delayed: %.3f s" % took)
    finally:
        ex.stop()


@test
def cli_outage_closes_connections():
    ex = Exchange("--outage")
    try:
        check(closed_without_answer(ex), "got an answer during the outage")
        check(closed_without_answer(ex, "/api/v3/openOrders"))
        stats = ex.stats()
        check(stats["outageClosed"] == 2 and
              stats["requests"]["/api/v3/ping"] == 1, repr(stats))
    finally:
        ex.stop()


@test
def cli_status_429_with_retry_after():
    ex = Exchange("--status", 429)
    try:
        result = open_orders(ex, KEY_A, SECRET_A)
        expect_error(result, 429, -1003)
        check(result[1].get("Retry-After") == "2", repr(result[1]))
        status, _, _ = ex.request("/api/v3/ping")
        check(status == 200, "unsigned endpoints are not forced")
    finally:
        ex.stop()


@test
def cli_error_rate_one_gives_500s():
    ex = Exchange("--error-rate", "1.0")
    try:
        for path in ("/api/v3/ping", "/api/v3/time", "/api/v3/exchangeInfo"):
            expect_error(ex.request(path), 500, -1000)
        check(ex.stats()["errorsInjected"] == 3)
    finally:
        ex.stop()


@test
def cli_error_rate_half_is_roughly_half():
    ex = Exchange("--error-rate", "0.5", "--seed", 7)
    try:
        fails = sum(ex.request("/api/v3/ping")[0] == 500 for _ in range(200))
        check(60 < fails < 140, "%d of 200 failed" % fails)
    finally:
        ex.stop()


@test
def cli_bad_usage_and_bad_accounts():
    for args in (["--port", "x"], ["--error-rate", "2"],
                 ["--status", "200"], ["--nope"]):
        proc = subprocess.run([BINARY] + args, capture_output=True,
                              text=True, timeout=5)
        check(proc.returncode == 2 and "exchange:" in proc.stderr,
              "%r -> %d %r" % (args, proc.returncode, proc.stderr))
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump({"k": {"secret": "s", "orders": [{"symbol": "BTCUSDT"}]}},
                  f)
        f.flush()
        proc = subprocess.run([BINARY, "--port", "0", "--accounts", f.name],
                              capture_output=True, text=True, timeout=5)
    check(proc.returncode == 1 and '"price" is required' in proc.stderr,
          "%d %r" % (proc.returncode, proc.stderr))


# ---- switches at run time -------------------------------------------------

@test
def runtime_control_flips(ex):
    try:
        ex.control(latencyMs=250)
        (status, _, _), took = timed(lambda: ex.request("/api/v3/ping"))
        check(status == 200 and took >= 0.24, "took %.3f s" % took)
        ex.control(latencyMs=0)
        _, took = timed(lambda: ex.request("/api/v3/ping"))
        check(took < 0.2, "latency off, took %.3f s" % took)

        ex.control(status=418, retryAfter=7)
        result = open_orders(ex, KEY_A, SECRET_A)
        expect_error(result, 418, -1003)
        check(result[1].get("Retry-After") == "7")
        ex.control(status=503)
        expect_error(open_orders(ex, KEY_A, SECRET_A), 503, -1008)
        ex.control(status=0)

        ex.control(errorRate=1.0)
        expect_error(ex.request("/api/v3/time"), 500, -1000)
        ex.control(errorRate=0)

        ex.control(outage=True)
        check(closed_without_answer(ex))
        check(ex.request("/__control")[2]["outage"] is True)
        ex.control(outage=False)
        check(open_orders(ex, KEY_A, SECRET_A)[0] == 200)
    finally:
        ex.control(latencyMs=0, status=0, errorRate=0, outage=False,
                   retryAfter=2)


@test
def control_rejects_bad_bodies(ex):
    for body in ('{"latencyMs": -1}', '{"errorRate": 1.5}',
                 '{"status": 200}', '{"outage": 1}', '{"nope": true}',
                 '[1]', 'not json'):
        status, _, reply = ex.request("/__control", "POST", body=body)
        check(status == 400 and reply.get("code") == -1100,
              "%s -> %s %r" % (body, status, reply))
    status, _, reply = ex.request("/__control", "POST",
                                  body='{"latencyMs": 100, "nope": 1}')
    check(status == 400 and ex.request("/__control")[2]["latencyMs"] == 0,
          "a rejected body changes nothing")


@test
def client_gone_before_delayed_answer(ex):
    try:
        ex.control(latencyMs=300)
        for _ in range(3):
            try:
                ex.request("/api/v3/ping", timeout=0.05)
            except OSError:
                pass
        time.sleep(0.4)
        ex.control(latencyMs=0)
        check(ex.request("/api/v3/ping")[0] == 200)
        check(ex.stats()["inFlight"] == 0)
    finally:
        ex.control(latencyMs=0)


# ---- connections, counters, process ---------------------------------------

@test
def keep_alive_connection_is_reused(ex):
    conn = http.client.HTTPConnection("127.0.0.1", ex.port, timeout=5)
    try:
        conn.request("GET", "/api/v3/ping")
        conn.getresponse().read()
        sock = conn.sock
        for _ in range(20):
            conn.request("GET", signed_path(KEY_A, SECRET_A, {}),
                         headers={"X-MBX-APIKEY": KEY_A})
            resp = conn.getresponse()
            resp.read()
            check(resp.status == 200, resp.status)
        check(conn.sock is sock, "the connection was reopened")
    finally:
        conn.close()


@test
def stats_count_requests_per_path(ex):
    ex.control(resetStats=True)
    for _ in range(3):
        ex.request("/api/v3/ping")
    ex.request("/api/v3/exchangeInfo?symbol=BTCUSDT")
    open_orders(ex, KEY_A, SECRET_A)
    open_orders(ex, KEY_A, SECRET_B)
    ex.request("/somewhere")
    stats = ex.stats()
    check(stats["requests"] == {
        "/api/v3/ping": 3, "/api/v3/time": 0, "/api/v3/exchangeInfo": 1,
        "/api/v3/openOrders": 2, "other": 1}, repr(stats))
    check(stats["total"] == 7 and stats["signaturesRejected"] == 1)


@test
def quiet_and_clean_stop():
    ex = Exchange()
    for _ in range(5):
        ex.request("/api/v3/ping")
    code = ex.stop()
    lines = ex.output().splitlines()
    check(code == 0, "exit %s" % code)
    check(len(lines) == 1 and "listening on" in lines[0], repr(lines))
    verbose = Exchange("--verbose")
    verbose.request("/api/v3/ping")
    verbose.stop()
    check("GET /api/v3/ping -> 200" in verbose.output(), verbose.output())


# ---- runner ---------------------------------------------------------------

def main():
    global BINARY
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=BINARY)
    parser.add_argument("-k", default="", help="run tests matching this")
    args = parser.parse_args()
    if args.binary == BINARY:
        build_if_needed()
    BINARY = os.path.abspath(args.binary)

    shared = Exchange()
    passed = failed = 0
    try:
        for fn in TESTS:
            if args.k not in fn.__name__:
                continue
            try:
                if fn.__code__.co_argcount:
                    fn(shared)
                else:
                    fn()
                passed += 1
                print("ok   %s" % fn.__name__)
            except Exception as exc:
                failed += 1
                print("FAIL %s: %s" % (fn.__name__, exc))
                traceback.print_exc(limit=3, file=sys.stdout)
    finally:
        for ex in list(RUNNING):
            ex.stop()
        for path in SCRATCH:
            shutil.rmtree(path, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
