"""``csonboard events list|show``: readable for people, JSON for scripts."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from conftest import base_env
from csonboard.cli import main
from csonboard.ledger import Ledger
from test_ledger import incoming


def seeded(tmp_path: Path) -> dict[str, str]:
    env = base_env(tmp_path)
    ledger = Ledger.open(f"sqlite:///{tmp_path}/data/ledger.db")
    ledger.upgrade()
    ledger.events.add(incoming("evt_one"))
    ledger.events.add(incoming("evt_two"))
    ledger.events.claim("evt_two", "w", 60)
    ledger.events.fail("evt_two", "w", "ComputeStacks POST /api/orders: 503", None)
    ledger.close()
    return env


def test_list_shows_a_table_with_errors_of_dead_events(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["events", "list"], env=seeded(tmp_path))

    assert result.exit_code == 0, result.output
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["RECEIVED", "EVENT", "TYPE", "STATUS", "TRIES", "RESULT"]
    assert len(rows) == 2
    assert any("evt_two" in row and "dead" in row and "503" in row for row in rows)


def test_list_filters_and_speaks_json(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["events", "list", "--status", "dead", "--json"], env=seeded(tmp_path)
    )

    assert result.exit_code == 0
    listed = json.loads(result.stdout)
    assert [(e["id"], e["status"], e["attempts"]) for e in listed] == [("evt_two", "dead", 1)]
    assert "body" not in listed[0]


def test_show_gives_every_field_and_the_body_on_request(tmp_path: Path) -> None:
    env = seeded(tmp_path)
    shown = CliRunner().invoke(main, ["events", "show", "evt_two"], env=env)
    as_json = CliRunner().invoke(main, ["events", "show", "evt_one", "--json", "--body"], env=env)

    assert shown.exit_code == 0
    assert "last_error:" in shown.stdout and "ComputeStacks POST /api/orders: 503" in shown.stdout
    assert json.loads(as_json.stdout)["body"] == '{"id": "evt_1"}'


def test_show_names_another_body_that_came_under_the_same_id(tmp_path: Path) -> None:
    env = seeded(tmp_path)
    ledger = Ledger.open(f"sqlite:///{tmp_path}/data/ledger.db")
    assert not ledger.events.add(incoming("evt_one", body=b'{"id": "evt_one", "forged": 1}'))
    ledger.close()

    shown = CliRunner().invoke(main, ["events", "show", "evt_one"], env=env)
    as_json = CliRunner().invoke(main, ["events", "show", "evt_one", "--json", "--body"], env=env)

    assert shown.exit_code == 0
    assert "conflict:" in shown.stdout and "kept, never processed" in shown.stdout
    [conflict] = json.loads(as_json.stdout)["conflicts"]
    assert conflict["body"] == '{"id": "evt_one", "forged": 1}'
    assert json.loads(as_json.stdout)["body"] == '{"id": "evt_1"}'  # the stored one stands


def test_show_of_an_unknown_event_fails_with_status_1(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["events", "show", "evt_nope"], env=seeded(tmp_path))
    assert result.exit_code == 1
    assert result.stderr.strip() == "csonboard: no event evt_nope in the ledger"
