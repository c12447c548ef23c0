"""After a rollback's restore — written with foreign-key enforcement off
(``session_replication_role = replica``) — the integrity checks verify the restored tables'
foreign keys row by row: a restored order whose customer was deleted since the deploy is an
orphan, and the rollback says so (exit 1) instead of calling the data consistent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from .conftest import copy_example
from .helpers import alembic
from .test_rollback import plan_json, run_safety, the_backup


@pytest.mark.postgres
def test_orphans_restored_under_replica_are_reported(pg_url: sa.URL, tmp_path: Path, engine_for: Any) -> None:
    ini = copy_example("shop", tmp_path / "shop", pg_url)
    engine = engine_for(pg_url)
    alembic(ini, "upgrade", "0001")
    with engine.connect() as conn:
        gone = conn.execute(sa.text("SELECT min(customer_id) FROM orders WHERE status = 'cancelled'")).scalar_one()
    alembic(ini, "upgrade", "0002")  # deletes the cancelled orders
    with engine.begin() as conn:  # since the deploy: the customer and their remaining orders go
        conn.execute(sa.text("DELETE FROM orders WHERE customer_id = :c"), {"c": gone})
        conn.execute(sa.text("DELETE FROM customers WHERE id = :c"), {"c": gone})
    backup_id = the_backup(ini, "0002")
    code = plan_json(ini, backup_id)["confirmation_code"]
    proc = run_safety(ini, "rollback", backup_id, "--confirm", code)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "CHK201" in proc.stdout + proc.stderr
