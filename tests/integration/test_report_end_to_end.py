"""Date-range reports (metrics.md "Reports") through real Kafka and Redis.

Shop s1 (Asia/Shanghai, default rules: judge `created`, rule `last`, same day, targets 15 s and
180 s), agents A (小美) and B (阿强); D is today's business day:

- D-3: b1 asks A 10:00, answered 10:00:05, orders and pays 100.00 (outside the report's range).
- D-2: b2 asks A 09:00, answered 09:00:10, orders 11:00 and pays 50.00; b3 asks B 09:30,
  answered 09:30:20; b4 asks B 14:00, never answered; b5 orders and pays 30.00 having asked
  nobody (silent).
- D-1: b6 asks A 10:00, answered 10:00:30, asks again 10:05:00, answered 10:05:04, orders 80.00
  and never pays; b7 asks B 11:00, answered 11:00:03, orders and pays 200.00.
- D: b8 asks A and is answered (the `today` equality).
- D-40: b9 asks A 10:00, answered 10:00:07 — older than every live window, so live it is late;
  `rebuild` restores it into the history.

Hand-computed below: D-2, D-1, and the range D-2..D-1 per agent and for the team.
"""

from __future__ import annotations

import csv
import io
import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from agents.core.report_range import day_text
from config.calendar import calendar_for
from tests.integration.harness import Deployment, chat_message, http_get, http_status, order_event, wait_for

CAL = calendar_for("Asia/Shanghai")
SHOP = "shops:\n  s1:\n    name: 旗舰店\n    agents: {'s1:A': {name: 小美}, 's1:B': {name: 阿强}}\n"
HOUR, MINUTE, SECOND = 3_600_000, 60_000, 1000


def events(now_ms: int) -> list[dict[str, Any]]:
    today = CAL.day(now_ms)
    serial = iter(range(10_000))

    def at(days_ago: int, hours: int, minutes: int = 0, seconds: int = 0) -> int:
        return CAL.day_start_ms(today - days_ago) + hours * HOUR + minutes * MINUTE + seconds * SECOND

    def say(buyer: str, agent: str, sender: str, ts: int) -> dict[str, Any]:
        return chat_message(f"m{next(serial)}", buyer, sender, ts, agent=agent)

    def order(buyer: str, order_id: str, status: str, ts: int, amount: str) -> dict[str, Any]:
        return order_event(f"o{next(serial)}", buyer, order_id, status, ts, amount)

    start = CAL.day_start_ms(today)
    asked = start + (now_ms - start) // 2
    answered = asked + (now_ms - asked) // 2
    return [
        say("tb_b9", "s1:A", "buyer", at(40, 10)),
        say("tb_b9", "s1:A", "agent", at(40, 10, 0, 7)),
        say("tb_b1", "s1:A", "buyer", at(3, 10)),
        say("tb_b1", "s1:A", "agent", at(3, 10, 0, 5)),
        order("tb_b1", "O1", "created", at(3, 10, 30), "100.00"),
        order("tb_b1", "O1", "paid", at(3, 10, 35), "100.00"),
        say("tb_b2", "s1:A", "buyer", at(2, 9)),
        say("tb_b2", "s1:A", "agent", at(2, 9, 0, 10)),
        say("tb_b3", "s1:B", "buyer", at(2, 9, 30)),
        say("tb_b3", "s1:B", "agent", at(2, 9, 30, 20)),
        order("tb_b2", "O2", "created", at(2, 11), "50.00"),
        order("tb_b2", "O2", "paid", at(2, 11, 5), "50.00"),
        say("tb_b4", "s1:B", "buyer", at(2, 14)),
        order("tb_b5", "O5", "created", at(2, 15), "30.00"),
        order("tb_b5", "O5", "paid", at(2, 15, 1), "30.00"),
        say("tb_b6", "s1:A", "buyer", at(1, 10)),
        say("tb_b6", "s1:A", "agent", at(1, 10, 0, 30)),
        say("tb_b6", "s1:A", "buyer", at(1, 10, 5)),
        say("tb_b6", "s1:A", "agent", at(1, 10, 5, 4)),
        say("tb_b7", "s1:B", "buyer", at(1, 11)),
        say("tb_b7", "s1:B", "agent", at(1, 11, 0, 3)),
        order("tb_b7", "O7", "created", at(1, 11, 10), "200.00"),
        order("tb_b6", "O6", "created", at(1, 12), "80.00"),
        order("tb_b7", "O7", "paid", at(1, 11, 20), "200.00"),
        say("tb_b8", "s1:A", "buyer", asked),
        say("tb_b8", "s1:A", "agent", answered),
    ]


def agent(
    c: int,
    r: int,
    fr: float | None,
    resp: float | None,
    w15: int,
    w180: int,
    i: int,
    o: int,
    p: int,
    yuan: float,
) -> dict[str, Any]:
    return {
        "consultations": c,
        "replied_consultations": r,
        "reply_ratio": r / c if c else None,
        "first_response_avg_seconds": fr,
        "response_avg_seconds": resp,
        "replied_within_ratio": {"15": w15 / c if c else None, "180": w180 / c if c else None},
        "inquiries": i,
        "ordered_inquiries": o,
        "paid_inquiries": p,
        "consult_order_ratio": o / i if i else None,
        "consult_pay_ratio": p / i if i else None,
        "order_pay_ratio": p / o if o else None,
        "attributed_sales_yuan": yuan,
        "average_order_value_yuan": round(yuan / p, 2) if p else None,
        "refunded_sales_yuan": 0.0,
        "assisted_paid": 0,
        "assisted_sales_yuan": 0.0,
    }


def team(base: dict[str, Any], orders: int, silent: int, silent_yuan: float) -> dict[str, Any]:
    return base | {
        "orders": orders,
        "silent_orders": silent,
        "silent_share": silent / orders if orders else None,
        "silent_sales_yuan": silent_yuan,
    }


DAY_2 = {
    "s1:A": agent(1, 1, 10.0, 10.0, 1, 1, 1, 1, 1, 50.0),
    "s1:B": agent(2, 1, 20.0, 20.0, 0, 1, 1, 0, 0, 0.0),
}
DAY_2_TEAM = team(agent(3, 2, 15.0, 15.0, 1, 2, 2, 1, 1, 50.0), orders=2, silent=1, silent_yuan=30.0)
DAY_1 = {
    "s1:A": agent(1, 1, 30.0, 17.0, 0, 1, 1, 1, 0, 0.0),
    "s1:B": agent(1, 1, 3.0, 3.0, 1, 1, 1, 1, 1, 200.0),
}
DAY_1_TEAM = team(agent(2, 2, 16.5, 12.333, 1, 2, 2, 2, 1, 200.0), orders=2, silent=0, silent_yuan=0.0)
RANGE = {
    "s1:A": agent(2, 2, 20.0, 14.667, 1, 2, 2, 2, 1, 50.0),
    "s1:B": agent(3, 2, 11.5, 11.5, 1, 2, 2, 1, 1, 200.0),
}
RANGE_TEAM = team(agent(5, 4, 15.75, 13.4, 2, 4, 4, 3, 2, 250.0), orders=4, silent=1, silent_yuan=30.0)


def http_error(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode()


def by_agent(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["agent"]: row["metrics"] for row in rows}


def assert_close(found: dict[str, Any], expected: dict[str, Any]) -> None:
    """Every field equal; ratios compared as floats (the report computes them from sums)."""
    for key, value in expected.items():
        if isinstance(value, dict):
            assert_close(found[key], value)
        elif isinstance(value, float):
            assert found[key] == pytest.approx(value, abs=1e-9), key
        else:
            assert found[key] == value, key


def metrics_only(body: dict[str, Any]) -> dict[str, Any]:
    """A floor window's fields (the report's `metrics`), without what only the floor has."""
    return {k: v for k, v in body.items() if k not in ("agent", "name")}


def test_reports_by_range_and_day_equal_hand_computed_values_and_the_floor(
    deployment: Deployment, tmp_path: Path
) -> None:
    deployment.config.write_text(deployment.config.read_text() + SHOP)
    created = deployment.cli("topics", "create")
    assert created.returncode == 0, created.stderr
    assert f"{deployment.topics['messages']}: created, retention 101 days" in created.stdout
    now = time.time_ns() // 1_000_000
    today = CAL.day(now)
    last = deployment.produce(events(now), stamped=True)
    _, port = deployment.start_worker()
    deployment.wait_applied(last)
    first, second = day_text(today - 2), day_text(today - 1)
    query = f"/api/v1/report?shop=s1&from={first}&to={second}&by=day"
    wait_for(lambda: http_status(port, query) == 200, timeout=30, what="the report API")

    def check_numbers() -> dict[str, Any]:
        body = json.loads(http_get(port, query))
        assert (body["shop"], body["name"], body["from"], body["to"]) == ("s1", "旗舰店", first, second)
        for agent_id, values in RANGE.items():
            assert_close(by_agent(body["agents"])[agent_id], values)
        assert_close(body["totals"]["metrics"], RANGE_TEAM)
        assert [d["day"] for d in body["days"]] == [first, second]
        for day, rows, totals in zip(body["days"], (DAY_2, DAY_1), (DAY_2_TEAM, DAY_1_TEAM), strict=True):
            for agent_id, values in rows.items():
                assert_close(by_agent(day["agents"])[agent_id], values)
            assert_close(day["totals"]["metrics"], totals)
        return body

    body = check_numbers()
    assert sum(body["totals"]["first_response_buckets"].values()) == 4

    # The CLI's JSON is the API's body; without `by` there are no days.
    cli = deployment.cli(
        "report", "--shop", "s1", "--from", first, "--to", second, "--by", "day", "--format", "json"
    )
    assert cli.returncode == 0, cli.stderr
    assert {**json.loads(cli.stdout), "as_of": 0} == {**body, "as_of": 0}
    plain = json.loads(http_get(port, f"/api/v1/report?shop=s1&from={first}&to={second}"))
    assert "days" not in plain and plain["totals"] == body["totals"]

    # A single day equals the floor's `today`, and the last 28 days equal its `28d`.
    floor = deployment.stats("s1")
    for window, since in (("today", today), ("28d", today - 27)):
        report = json.loads(
            deployment.cli(
                "report",
                "--shop",
                "s1",
                "--from",
                day_text(since),
                "--to",
                day_text(today),
                "--format",
                "json",
            ).stdout
        )
        rows = {row["agent"]: row for row in floor["agents"]}
        assert set(by_agent(report["agents"])) == set(rows)
        for agent_id, metrics in by_agent(report["agents"]).items():
            assert metrics == metrics_only(rows[agent_id]["windows"][window]), (window, agent_id)
        assert report["totals"]["metrics"] == floor["totals"]["windows"][window], window
    assert floor["totals"]["windows"]["today"]["consultations"] == 1

    # Spreadsheets: the same numbers, read back by libraries that share no code with ours.
    sheet = tmp_path / "payroll.csv"
    made = deployment.cli(
        "report", "--shop", "s1", "--from", first, "--to", second, "--format", "csv", "--output", str(sheet)
    )
    assert made.returncode == 0, made.stderr
    raw = sheet.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows_read = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert len(rows_read) == 3  # A, B and the team
    agent_column = next(h for h in rows_read[0] if h.endswith(" agent"))
    pay = next(h for h in rows_read[0] if h.endswith("consult_pay_ratio"))
    sales = next(h for h in rows_read[0] if h.endswith("attributed_sales_yuan"))
    first_response = next(h for h in rows_read[0] if h.endswith("first_response_avg_seconds"))
    assert {row[agent_column]: float(row[sales]) for row in rows_read[:2]} == {"s1:A": 50.0, "s1:B": 200.0}
    assert [float(row[pay]) for row in rows_read] == [0.5, 0.5, 0.5]
    assert [float(row[first_response]) for row in rows_read] == [20.0, 11.5, 15.75]
    assert float(rows_read[2][sales]) == 250.0

    workbook_path = tmp_path / "payroll.xlsx"
    made = deployment.cli(
        "report", "--shop", "s1", "--from", first, "--to", second, "--by", "day", "--format", "xlsx",
        "--output", str(workbook_path),
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    openpyxl = pytest.importorskip("openpyxl")
    workbook = openpyxl.load_workbook(workbook_path)
    assert workbook.sheetnames[1:] == [first, second]
    summary = workbook.worksheets[0]
    header = [cell.value for cell in summary[1]]
    column = header.index(next(h for h in header if h.endswith("attributed_sales_yuan")))
    assert sorted(row[column].value for row in summary.iter_rows(min_row=2)) == [50.0, 200.0, 250.0]
    assert "¥" in summary.cell(row=2, column=column + 1).number_format

    page = http_get(port, f"/report?shop=s1&from={first}&to={second}")
    assert page.count("<svg") >= 3 and "小美" in page

    # Bad requests: one sentence and a non-zero exit, 400 with {"error"}, no file written.
    out = tmp_path / "never.csv"
    oldest = day_text(today - 92)
    bad = [
        (["--from", "2026-13-01"], "from=2026-13-01", "is not a date"),
        (["--from", second, "--to", first], f"from={second}&to={first}", "is after"),
        (
            ["--from", day_text(today - 93), "--to", oldest],
            f"from={day_text(today - 93)}",
            "outside the retention",
        ),
        (["--by", "week"], "by=week", "only choice is 'day'"),
        (["--to", day_text(today + 1)], f"to={day_text(today + 1)}", "in the future"),
    ]
    for args, params, words in bad:
        result = deployment.cli("report", "--shop", "s1", *args, "--format", "csv", "--output", str(out))
        assert result.returncode != 0 and words in result.stderr, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert not out.exists() and not list(tmp_path.glob(".never.csv*"))
        status, answer = http_error(port, f"/api/v1/report?shop=s1&{params}")
        assert status == 400 and words in json.loads(answer)["error"], (params, answer)
    unknown = deployment.cli("report", "--shop", "nope", "--output", str(out))
    assert unknown.returncode != 0 and "unknown shop 'nope'" in unknown.stderr and "s1" in unknown.stderr
    assert http_status(port, "/api/v1/report?shop=nope") == 400
    assert not out.exists()

    # History past the live windows: late live, restored by `rebuild`.
    old = day_text(today - 40)
    before = json.loads(http_get(port, f"/api/v1/report?shop=s1&from={old}&to={old}"))
    assert before["totals"]["metrics"]["consultations"] == 0
    deployment.stop_workers()
    rebuilt = deployment.rebuild()
    assert f"history restored from {old}" in rebuilt.stderr, rebuilt.stderr
    _, port = deployment.start_worker()
    deployment.wait_applied(last)
    after = json.loads(http_get(port, f"/api/v1/report?shop=s1&from={old}&to={old}"))
    assert_close(by_agent(after["agents"])["s1:A"], agent(1, 1, 7.0, 7.0, 1, 1, 1, 0, 0, 0.0))
    check_numbers()


def test_topics_create_lengthens_a_v1_retention_and_says_so(deployment: Deployment) -> None:
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=deployment.stack.bootstrap, **deployment.kafka_client_kwargs())
    try:
        thirty = str(30 * 86_400_000)
        for kind in ("messages", "orders"):
            admin.create_topics(
                [NewTopic(deployment.topics[kind], 4, 1, topic_configs={"retention.ms": thirty})]
            )
        created = deployment.cli("topics", "create")
        assert created.returncode == 0, created.stderr
        for kind in ("messages", "orders"):
            line = f"{deployment.topics[kind]}: exists (4 partitions), retention set to 101 days (was 30)"
            assert line in created.stdout, created.stdout
        resource = ConfigResource(
            ConfigResourceType.TOPIC, deployment.topics["messages"], configs=["retention.ms"]
        )
        found = admin.describe_configs([resource], config_filter="all")
        assert found["topic"][deployment.topics["messages"]]["retention.ms"]["value"] == str(101 * 86_400_000)
        again = deployment.cli("topics", "create")  # idempotent: nothing more to change
        assert f"{deployment.topics['messages']}: exists (4 partitions), retention 101 days" in again.stdout
    finally:
        admin.close()
